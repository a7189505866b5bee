// kinlet/clock.hpp: the time source behind every time-dependent behaviour
// (arrival timestamps, retention, iterator expiry, AT_TIMESTAMP).
//
// A clock policy is any type with `absl::Time Now() const`. Streams take the
// policy from Traits::Clock and an instance pointer at creation, so one
// ManualClock can drive several streams of one test. Tests advance a
// ManualClock by hand and never sleep.
#pragma once

#include <time.h>

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kinlet/config.hpp"
#include "kinlet/detail/tsc_clock.hpp"

namespace kinlet {

// A clock policy has `absl::Time Now() const`; it may also offer
// `int64_t NowMillis() const` (Unix milliseconds), which kinlet then uses on
// its hot paths instead of converting Now().
template <typename C>
concept ClockPolicy = requires(const C& c) {
  { c.Now() } -> std::same_as<absl::Time>;
};

// Unix milliseconds from any clock policy.
template <ClockPolicy C>
int64_t NowMillis(const C& clock) {
  if constexpr (requires {
                  { clock.NowMillis() } -> std::same_as<int64_t>;
                }) {
    return clock.NowMillis();
  } else {
    return absl::ToUnixMillis(clock.Now());
  }
}

// The wall clock, read from the CPU's time-stamp counter calibrated against
// CLOCK_REALTIME (detail/tsc_clock.hpp): one RDTSC and a few loads a read
// (about 10 ns on AMD EPYC, where RDTSC alone costs that, against 25-33 ns for
// clock_gettime). The default clock of every stream.
//  - Within 1 ms of CLOCK_REALTIME (detail::TscClock::kBoundNs) while the
//    system clock is not stepped; a forward step is followed within one
//    recalibration period (100 ms), a backward one held (never goes back).
//  - Never goes backwards across recalibrations (see detail/tsc_clock.hpp for
//    exactly what is guaranteed).
//  - Falls back to CLOCK_REALTIME (RealtimeClock's source) when the TSC is not
//    invariant, the kernel's clocksource is not tsc, on other architectures,
//    or when the environment says KINLET_CLOCK=realtime.
// The first read in the process calibrates (about 0.5 ms). Thread-safe;
// lock-free after the first read.
class SystemClock {
 public:
  absl::Time Now() const { return absl::FromUnixNanos(detail::TscClock::NowNanos()); }
  ABSL_ATTRIBUTE_ALWAYS_INLINE int64_t NowMillis() const {
    const int64_t ns = detail::TscClock::NowNanos();
    // Floor, as absl::ToUnixMillis. After 1970 (always, in practice) an
    // unsigned division is that floor and costs one multiply.
    if (KINLET_LIKELY(ns >= 0)) return static_cast<int64_t>(static_cast<uint64_t>(ns) / 1000000);
    return ns / 1000000 - (ns % 1000000 < 0 ? 1 : 0);
  }
  // The instance streams use when none is given.
  static SystemClock* Default() {
    static SystemClock clock;
    return &clock;
  }
};

// The plain system clock (std::chrono::system_clock, that is
// clock_gettime(CLOCK_REALTIME): 25-33 ns a read). For Traits::Clock when
// timestamps must follow every step of the system clock at once, backwards
// included. Thread-safe.
class RealtimeClock {
 public:
  absl::Time Now() const { return absl::FromChrono(std::chrono::system_clock::now()); }
  int64_t NowMillis() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static RealtimeClock* Default() {
    static RealtimeClock clock;
    return &clock;
  }
};

// The wall clock read coarsely (CLOCK_REALTIME_COARSE: about 5 ns a read, a
// resolution of one kernel tick, 1 to 4 ms). For the hottest put loops, where
// arrival timestamps may lag by a tick. Thread-safe.
class CoarseSystemClock {
 public:
  absl::Time Now() const {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return absl::TimeFromTimespec(ts);
  }
  int64_t NowMillis() const {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
  }
  static CoarseSystemClock* Default() {
    static CoarseSystemClock clock;
    return &clock;
  }
};

// Waits until `t` by `clock`: a clock with SleepUntil (ManualClock) decides how;
// others sleep for the real difference.
template <ClockPolicy C>
void SleepUntil(C& clock, absl::Time t) {
  if constexpr (requires { clock.SleepUntil(t); }) {
    clock.SleepUntil(t);
  } else {
    const absl::Duration d = t - clock.Now();
    if (d > absl::ZeroDuration()) absl::SleepFor(d);
  }
}

// A clock that moves only when told. Thread-safe: Now() may race with
// Advance()/Set(); each call sees either the old or the new time.
class ManualClock {
 public:
  // Starts at 2023-11-14T22:13:20Z unless told otherwise: far from the epoch,
  // so that "one retention period ago" is a valid time.
  explicit ManualClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : now_ns_(absl::ToUnixNanos(start)) {}

  absl::Time Now() const { return absl::FromUnixNanos(now_ns_.load(std::memory_order_acquire)); }
  int64_t NowMillis() const {
    const int64_t ns = now_ns_.load(std::memory_order_acquire);
    return ns / 1000000 - (ns % 1000000 < 0 ? 1 : 0);  // floor, as absl::ToUnixMillis
  }
  void Advance(absl::Duration d) {
    now_ns_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_acq_rel);
  }
  void Set(absl::Time t) { now_ns_.store(absl::ToUnixNanos(t), std::memory_order_release); }
  // Simulated sleep: moves the clock forward to `t` (never back) and returns
  // at once, so code that waits (retries, waiting puts) runs deterministically
  // in a single-threaded test.
  void SleepUntil(absl::Time t) {
    const int64_t target = absl::ToUnixNanos(t);
    int64_t now = now_ns_.load(std::memory_order_acquire);
    while (now < target && !now_ns_.compare_exchange_weak(now, target, std::memory_order_acq_rel)) {
    }
  }
  // There is no default instance: a ManualClock must be passed in.
  static ManualClock* Default() { return nullptr; }

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace kinlet
