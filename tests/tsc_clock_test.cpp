// Tests for kinlet/detail/tsc_clock.hpp, the TSC clock behind SystemClock: its
// bound against CLOCK_REALTIME, monotonicity across recalibrations, steps of
// the system clock, the fallback mode and the KINLET_CLOCK knob. Each test
// configures the process-wide clock (ResetForTest) and restores the default.
#include "kinlet/detail/tsc_clock.hpp"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kinlet/clock.hpp"

namespace {

using kinlet::detail::ClockMode;
using kinlet::detail::RealtimeNanos;
using kinlet::detail::TscClock;
using kinlet::detail::TscClockOptions;

// Applies options for one test; restores the default clock after it.
class ClockConfig {
 public:
  explicit ClockConfig(const TscClockOptions& options) { TscClock::ResetForTest(options); }
  ~ClockConfig() {
    TscClock::SetCalibrationOffsetForTest(0);
    TscClock::ResetForTest(TscClockOptions{});
  }
  ClockConfig(const ClockConfig&) = delete;
  ClockConfig& operator=(const ClockConfig&) = delete;
};

TscClockOptions Tsc(int64_t period_ns, double frequency_error = 0) {
  TscClockOptions options;
  options.force = TscClockOptions::Force::kTsc;
  options.period_ns = period_ns;
  options.frequency_error = frequency_error;
  return options;
}

struct BoundRun {
  int64_t max_error_ns = 0;  // beyond the CLOCK_REALTIME reads bracketing each clock read
  uint64_t recalibrations = 0;
  bool monotonic = true;
};

// Reads the clock between two CLOCK_REALTIME reads (plus `offset_ns`) for
// `duration` and records how far outside the bracket it ever was.
BoundRun MeasureBound(absl::Duration duration, int64_t offset_ns = 0) {
  BoundRun run;
  const uint64_t recalibrations = TscClock::Recalibrations();
  const int64_t end = RealtimeNanos() + absl::ToInt64Nanoseconds(duration);
  int64_t last = 0;
  for (;;) {
    const int64_t before = RealtimeNanos() + offset_ns;
    const int64_t now = TscClock::NowNanos();
    const int64_t after = RealtimeNanos() + offset_ns;
    run.max_error_ns = std::max({run.max_error_ns, before - now, now - after});
    if (now < last) run.monotonic = false;
    last = now;
    if (after - offset_ns > end) break;
  }
  run.recalibrations = TscClock::Recalibrations() - recalibrations;
  return run;
}

bool TscAvailable() { return TscClock::Mode() == ClockMode::kTsc; }

}  // namespace

TEST_CASE("TscClock stays within its bound of CLOCK_REALTIME across recalibrations",
          "[clock][tsc]") {
  const ClockConfig config(Tsc(2'000'000));  // a 2 ms period: 50 recalibrations in 100 ms
  if (!TscAvailable()) {
    WARN("no TSC on this platform: the fallback is CLOCK_REALTIME itself");
    return;
  }
  const BoundRun run = MeasureBound(absl::Milliseconds(100));
  INFO("max error " << run.max_error_ns << " ns, " << run.recalibrations << " recalibrations");
  CHECK(run.recalibrations >= 10);
  CHECK(run.max_error_ns <= TscClock::kBoundNs);
  CHECK(run.monotonic);
}

TEST_CASE("TscClock's bound check catches a wrong frequency", "[clock][tsc]") {
  // Slopes half the true rate: the clock falls 10 ms behind over a 20 ms period.
  const ClockConfig config(Tsc(20'000'000, -0.5));
  if (!TscAvailable()) return;
  const BoundRun run = MeasureBound(absl::Milliseconds(100));
  INFO("max error " << run.max_error_ns << " ns, " << run.recalibrations << " recalibrations");
  CHECK(run.max_error_ns > TscClock::kBoundNs);
  CHECK(run.monotonic);  // still never goes back: it jumps forward at each recalibration
}

TEST_CASE("TscClock never goes back in any thread while recalibrating constantly", "[clock][tsc]") {
  const ClockConfig config(Tsc(50'000));  // recalibrate every 50 us of TSC time
  if (!TscAvailable()) return;
  constexpr int kThreads = 4;
  constexpr int kReads = 200'000;
  const uint64_t recalibrations = TscClock::Recalibrations();
  std::atomic<int> backwards{0};
  std::atomic<int64_t> max_error{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      int64_t last = 0;
      int64_t worst = 0;
      for (int i = 0; i < kReads; ++i) {
        const int64_t now = TscClock::NowNanos();
        if (now < last) backwards.fetch_add(1, std::memory_order_relaxed);
        last = now;
        if (i % 1024 == 0) worst = std::max(worst, std::abs(now - RealtimeNanos()));
      }
      int64_t seen = max_error.load();
      while (seen < worst && !max_error.compare_exchange_weak(seen, worst)) {
      }
    });
  }
  for (std::thread& t : threads) t.join();
  INFO(TscClock::Recalibrations() - recalibrations << " recalibrations, max error "
                                                   << max_error.load() << " ns");
  CHECK(backwards.load() == 0);
  CHECK(TscClock::Recalibrations() - recalibrations >= 20);
}

TEST_CASE("TscClock follows a forward step of the system clock within one period", "[clock][tsc]") {
  const ClockConfig config(Tsc(5'000'000));
  if (!TscAvailable()) return;
  CHECK(MeasureBound(absl::Milliseconds(10)).max_error_ns <= TscClock::kBoundNs);
  const uint64_t steps = TscClock::StepsSeen();
  constexpr int64_t kStep = 50'000'000;  // 50 ms forward
  TscClock::SetCalibrationOffsetForTest(kStep);
  absl::SleepFor(absl::Milliseconds(12));  // two periods: the next read recalibrates
  const BoundRun run = MeasureBound(absl::Milliseconds(20), kStep);
  INFO("max error " << run.max_error_ns << " ns after the step");
  CHECK(run.max_error_ns <= TscClock::kBoundNs);
  CHECK(run.monotonic);
  CHECK(TscClock::StepsSeen() > steps);
}

TEST_CASE("TscClock holds instead of going back when the system clock steps back", "[clock][tsc]") {
  const ClockConfig config(Tsc(2'000'000));
  if (!TscAvailable()) return;
  const int64_t before_step = TscClock::NowNanos();
  constexpr int64_t kStep = -20'000'000;  // 20 ms back
  TscClock::SetCalibrationOffsetForTest(kStep);
  // During the next 20 ms CLOCK_REALTIME (with the offset) is behind what the
  // clock already said: it must hold, never go back.
  const BoundRun holding = MeasureBound(absl::Milliseconds(30), kStep);
  CHECK(holding.monotonic);
  CHECK(TscClock::NowNanos() >= before_step);
  // Caught up: within the bound again.
  const BoundRun after = MeasureBound(absl::Milliseconds(20), kStep);
  INFO("max error " << after.max_error_ns << " ns after catching up");
  CHECK(after.max_error_ns <= TscClock::kBoundNs);
  CHECK(after.monotonic);
}

TEST_CASE("TscClock's fallback mode is CLOCK_REALTIME", "[clock][tsc]") {
  TscClockOptions options;
  options.force = TscClockOptions::Force::kRealtime;
  const ClockConfig config(options);
  CHECK(TscClock::Mode() == ClockMode::kRealtime);
  const uint64_t recalibrations = TscClock::Recalibrations();
  for (int i = 0; i < 1000; ++i) {
    const int64_t before = RealtimeNanos();
    const int64_t now = TscClock::NowNanos();
    const int64_t after = RealtimeNanos();
    REQUIRE(before <= now);
    REQUIRE(now <= after);
  }
  CHECK(TscClock::Recalibrations() == recalibrations);
}

TEST_CASE("KINLET_CLOCK=realtime forces the fallback", "[clock][tsc]") {
  const char* why = nullptr;
  const bool usable = TscClock::TscUsable(&why);
  INFO("TSC usable: " << usable << (why ? " " : "") << (why ? why : ""));
  const ClockMode automatic = usable ? ClockMode::kTsc : ClockMode::kRealtime;
  {
    const ClockConfig config(TscClockOptions{});
    CHECK(TscClock::Mode() == automatic);
  }
  REQUIRE(setenv("KINLET_CLOCK", "realtime", 1) == 0);
  {
    const ClockConfig config(TscClockOptions{});
    CHECK(TscClock::Mode() == ClockMode::kRealtime);
  }
  {
    TscClockOptions options;
    options.honor_env = false;
    const ClockConfig config(options);
    CHECK(TscClock::Mode() == automatic);
  }
  REQUIRE(setenv("KINLET_CLOCK", "tsc", 1) == 0);
  {
    const ClockConfig config(TscClockOptions{});
    CHECK(TscClock::Mode() == automatic);
  }
  REQUIRE(unsetenv("KINLET_CLOCK") == 0);
}

TEST_CASE("SystemClock::NowMillis is Now floored to milliseconds, in both modes", "[clock][tsc]") {
  TscClockOptions options;
  const bool realtime = GENERATE(false, true);
  options.force = realtime ? TscClockOptions::Force::kRealtime : TscClockOptions::Force::kTsc;
  options.period_ns = 1'000'000;
  const ClockConfig config(options);
  const kinlet::SystemClock clock;
  for (int i = 0; i < 100'000; ++i) {
    const absl::Time before = clock.Now();
    const int64_t millis = clock.NowMillis();
    const absl::Time after = clock.Now();
    REQUIRE(absl::ToUnixMillis(before) <= millis);
    REQUIRE(millis <= absl::ToUnixMillis(after));
  }
  // And the same instant converts the same way.
  const int64_t ns = TscClock::NowNanos();
  CHECK(absl::ToUnixMillis(absl::FromUnixNanos(ns)) == ns / 1'000'000);
}

TEST_CASE("RealtimeClock reads CLOCK_REALTIME", "[clock][tsc]") {
  const kinlet::RealtimeClock* clock = kinlet::RealtimeClock::Default();
  REQUIRE(clock == kinlet::RealtimeClock::Default());
  const absl::Time before = absl::FromUnixNanos(RealtimeNanos());
  const absl::Time now = clock->Now();
  const int64_t millis = clock->NowMillis();
  const absl::Time after = absl::FromUnixNanos(RealtimeNanos());
  CHECK(before <= now);
  CHECK(now <= after);
  CHECK(absl::ToUnixMillis(now) <= millis);
  CHECK(millis <= absl::ToUnixMillis(after));
}
