// kinlet/faults.hpp: deterministic fault injection for test harnesses.
//
// FaultInjection makes a stream misbehave on purpose, the way a real Kinesis
// stream sometimes does, so that a user's producer and consumer code can be
// tested against it: throttled puts and reads, InternalFailure on PutRecords
// entries, iterators that expire early, records that become visible late.
// Decisions come from a seeded counter-based generator: the same seed and the
// same sequence of calls give the same faults. Off by default; when off the
// cost is one relaxed load and a predictable branch per call.
// Thread safety: FaultInjection is a plain value; the dice are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace kinlet {

struct FaultInjection {
  uint64_t seed = 0;
  // Fraction of PutRecord calls and PutRecords entries refused with
  // ProvisionedThroughputExceededException (nothing is written).
  double throttle_put_fraction = 0;
  // Fraction of GetRecords calls refused with ProvisionedThroughputExceeded.
  double throttle_read_fraction = 0;
  // Fraction of PutRecords entries failed with InternalFailure (not written).
  double internal_failure_fraction = 0;
  // Fraction of GetRecords calls answered ExpiredIteratorException.
  double expire_iterator_fraction = 0;
  // Records become readable only this long after their arrival.
  absl::Duration visibility_delay = absl::ZeroDuration();

  bool enabled() const {
    return throttle_put_fraction > 0 || throttle_read_fraction > 0 ||
           internal_failure_fraction > 0 || expire_iterator_fraction > 0 ||
           visibility_delay > absl::ZeroDuration();
  }
};

namespace detail {

// Seeded, counter-based dice (SplitMix64 of seed + roll number).
class FaultDice {
 public:
  explicit FaultDice(uint64_t seed) : seed_(seed) {}
  // True with probability `fraction` (0 never rolls: no counter traffic).
  bool Roll(double fraction) {
    if (fraction <= 0) return false;
    if (fraction >= 1) return true;
    uint64_t z =
        seed_ + 0x9E3779B97F4A7C15ull * (rolls_.fetch_add(1, std::memory_order_relaxed) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53 < fraction;
  }

 private:
  const uint64_t seed_;
  std::atomic<uint64_t> rolls_{0};
};

// An immutable fault configuration with its dice, published by the stream.
struct FaultState {
  explicit FaultState(const FaultInjection& f) : config(f), dice(f.seed) {}
  const FaultInjection config;
  FaultDice dice;
};

}  // namespace detail
}  // namespace kinlet
