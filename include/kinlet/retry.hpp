// kinlet/retry.hpp: retrying with exponential backoff and full jitter, as the
// AWS SDKs retry throttled Kinesis calls.
//
// RetryWithBackoff(clock, options, fn) calls fn until it succeeds, fails with
// an error that is not worth retrying (anything but ProvisionedThroughput-
// Exceeded, ShardFull and InternalFailure), runs out of attempts, or would
// sleep past the deadline. Between attempts it sleeps a uniformly random time
// in [0, min(max_backoff, initial_backoff * 2^attempt)] ("full jitter"), drawn
// from a generator seeded with jitter_seed, through the clock policy: with
// ManualClock the sleep is simulated and the whole retry is deterministic.
// Thread safety: stateless functions; `fn` decides.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kinlet/clock.hpp"
#include "kinlet/errors.hpp"

namespace kinlet {

struct RetryOptions {
  int max_attempts = 10;  // including the first; >= 1
  absl::Duration initial_backoff = absl::Milliseconds(25);
  absl::Duration max_backoff = absl::Seconds(2);
  absl::Time deadline = absl::InfiniteFuture();
  uint64_t jitter_seed = 0x5eed;
};

// The delays of successive retries.
class Backoff {
 public:
  explicit Backoff(const RetryOptions& options) : options_(options), state_(options.jitter_seed) {}
  absl::Duration Next() {
    const absl::Duration cap = std::min(
        options_.max_backoff, options_.initial_backoff * (int64_t{1} << std::min(attempt_, 30)));
    ++attempt_;
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double unit = static_cast<double>(z >> 11) * 0x1.0p-53;
    return cap * unit;
  }

 private:
  RetryOptions options_;
  uint64_t state_;
  int attempt_ = 0;
};

namespace detail {
inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace detail

// Calls `fn` (returning absl::Status or absl::StatusOr<T>) with retries; returns
// its last result.
template <ClockPolicy C, typename Fn>
auto RetryWithBackoff(C& clock, const RetryOptions& options, Fn&& fn) -> std::invoke_result_t<Fn&> {
  Backoff backoff(options);
  for (int attempt = 1;; ++attempt) {
    auto result = fn();
    const absl::Status& status = detail::StatusOf(result);
    if (status.ok() || !IsRetryableWriteError(status) || attempt >= options.max_attempts) {
      return result;
    }
    const absl::Time wake = clock.Now() + backoff.Next();
    if (wake > options.deadline) return result;
    SleepUntil(clock, wake);
  }
}

}  // namespace kinlet
