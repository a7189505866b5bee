// kinlet/token_bucket.hpp: the rate limiter behind Kinesis's per-shard limits.
//
// TokenBucket refills continuously at `rate` tokens per second up to `burst`
// tokens, in exact integer arithmetic (milli-tokens per millisecond), so a
// bucket of rate R and burst R allows exactly R units in any one second from
// full and then refills R/1000 per millisecond: the "1-second bucket" AWS's
// observed behaviour matches. A bucket may also be drawn below zero (Charge):
// a read that returns 10 MiB against a 2 MiB/s bucket leaves an 8 MiB debt,
// so calls in the next seconds throttle, as Kinesis documents for GetRecords.
//
// A rate of 0 means unlimited: every TryTake succeeds.
// Thread safety: not synchronised; the owner serialises calls (the shard's
// writer lock for write buckets, its read lock for read buckets).
#pragma once

#include <algorithm>
#include <cstdint>

namespace kinlet {

class TokenBucket {
 public:
  TokenBucket() = default;
  // Starts full at `now_ms`. REQUIRES: rate >= 0, burst >= 0.
  TokenBucket(int64_t rate_per_second, int64_t burst, int64_t now_ms)
      : rate_(rate_per_second),
        burst_milli_(burst * 1000),
        milli_tokens_(burst * 1000),
        last_ms_(now_ms) {}

  bool unlimited() const { return rate_ == 0; }
  int64_t burst() const { return burst_milli_ / 1000; }
  int64_t rate() const { return rate_; }

  // Tokens available at `now_ms` (may be negative after Charge).
  int64_t Available(int64_t now_ms) {
    Refill(now_ms);
    return milli_tokens_ / 1000;
  }

  // True if `n` tokens can be taken at `now_ms` (without taking them).
  bool CanTake(int64_t n, int64_t now_ms) {
    if (unlimited()) return true;
    Refill(now_ms);
    return milli_tokens_ >= n * 1000;
  }

  // Takes `n` tokens if there are that many; else takes nothing.
  bool TryTake(int64_t n, int64_t now_ms) {
    if (!CanTake(n, now_ms)) return false;
    if (!unlimited()) milli_tokens_ -= n * 1000;
    return true;
  }

  // Takes `n` tokens unconditionally; the bucket may go negative (a debt).
  void Charge(int64_t n, int64_t now_ms) {
    if (unlimited()) return;
    Refill(now_ms);
    milli_tokens_ -= n * 1000;
  }

  // True while the bucket is not in debt (a call may proceed).
  bool Positive(int64_t now_ms) {
    if (unlimited()) return true;
    Refill(now_ms);
    return milli_tokens_ > 0;
  }

  // Milliseconds from `now_ms` until `n` tokens are available (0 if now).
  int64_t MillisUntil(int64_t n, int64_t now_ms) {
    if (unlimited()) return 0;
    Refill(now_ms);
    const int64_t missing = n * 1000 - milli_tokens_;
    if (missing <= 0) return 0;
    return (missing + rate_ - 1) / rate_;
  }

 private:
  void Refill(int64_t now_ms) {
    if (now_ms <= last_ms_ || unlimited()) return;  // time never runs backwards for a bucket
    const int64_t elapsed = now_ms - last_ms_;
    last_ms_ = now_ms;
    const int64_t room = burst_milli_ - milli_tokens_;  // milli-tokens until full
    if (room <= 0) return;
    // Compare before multiplying, so that long idle periods cannot overflow.
    milli_tokens_ = elapsed > room / rate_ ? burst_milli_ : milli_tokens_ + elapsed * rate_;
  }

  int64_t rate_ = 0;
  int64_t burst_milli_ = 0;
  int64_t milli_tokens_ = 0;
  int64_t last_ms_ = 0;
};

}  // namespace kinlet
