// kinlet/clock.hpp: the time source behind every time-dependent behaviour
// (arrival timestamps, retention, iterator expiry, AT_TIMESTAMP).
//
// A clock policy is any type with `absl::Time Now() const`. Streams take the
// policy from Traits::Clock and an instance pointer at creation, so one
// ManualClock can drive several streams of one test. Tests advance a
// ManualClock by hand and never sleep.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kinlet {

template <typename C>
concept ClockPolicy = requires(const C& c) {
  { c.Now() } -> std::same_as<absl::Time>;
};

// The wall clock. Thread-safe.
class SystemClock {
 public:
  absl::Time Now() const { return absl::Now(); }
  // The instance streams use when none is given.
  static SystemClock* Default() {
    static SystemClock clock;
    return &clock;
  }
};

// A clock that moves only when told. Thread-safe: Now() may race with
// Advance()/Set(); each call sees either the old or the new time.
class ManualClock {
 public:
  // Starts at 2023-11-14T22:13:20Z unless told otherwise: far from the epoch,
  // so that "one retention period ago" is a valid time.
  explicit ManualClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : now_ns_(absl::ToUnixNanos(start)) {}

  absl::Time Now() const { return absl::FromUnixNanos(now_ns_.load(std::memory_order_acquire)); }
  void Advance(absl::Duration d) {
    now_ns_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_acq_rel);
  }
  void Set(absl::Time t) { now_ns_.store(absl::ToUnixNanos(t), std::memory_order_release); }
  // There is no default instance: a ManualClock must be passed in.
  static ManualClock* Default() { return nullptr; }

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace kinlet
