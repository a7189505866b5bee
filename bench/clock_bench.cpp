// bench/clock_bench.cpp: the cost of one clock read. kinlet's SystemClock (the
// TSC clock, detail/tsc_clock.hpp) beside clock_gettime(CLOCK_REALTIME), the
// coarse clock, std::chrono::system_clock, absl::Now, RDTSC alone (the floor)
// and SystemClock in its fallback mode, in one binary and one run.
#include <benchmark/benchmark.h>
#include <time.h>

#include <chrono>
#include <cstdint>

#include "absl/time/clock.h"
#include "kinlet/clock.hpp"
#include "kinlet/detail/tsc_clock.hpp"

namespace {

using kinlet::detail::TscClock;
using kinlet::detail::TscClockOptions;

// Puts the process-wide clock in `force` mode for one benchmark.
class Mode {
 public:
  explicit Mode(TscClockOptions::Force force) {
    TscClockOptions options;
    options.force = force;
    TscClock::ResetForTest(options);
    TscClock::NowNanos();  // calibrate outside the timed loop
  }
  ~Mode() { TscClock::ResetForTest(TscClockOptions{}); }
  Mode(const Mode&) = delete;
  Mode& operator=(const Mode&) = delete;
};

const char* ModeName() {
  return TscClock::Mode() == kinlet::detail::ClockMode::kTsc ? "tsc" : "realtime";
}

void BM_SystemClock_Now(benchmark::State& state) {
  const Mode mode(TscClockOptions::Force::kAuto);
  const kinlet::SystemClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(clock.Now());
  state.SetLabel(ModeName());
}
BENCHMARK(BM_SystemClock_Now);

void BM_SystemClock_NowMillis(benchmark::State& state) {
  const Mode mode(TscClockOptions::Force::kAuto);
  const kinlet::SystemClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(clock.NowMillis());
  state.SetLabel(ModeName());
}
BENCHMARK(BM_SystemClock_NowMillis);

void BM_SystemClock_NowMillis_Fallback(benchmark::State& state) {
  const Mode mode(TscClockOptions::Force::kRealtime);
  const kinlet::SystemClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(clock.NowMillis());
  state.SetLabel(ModeName());
}
BENCHMARK(BM_SystemClock_NowMillis_Fallback);

void BM_SystemClock_Now_Fallback(benchmark::State& state) {
  const Mode mode(TscClockOptions::Force::kRealtime);
  const kinlet::SystemClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(clock.Now());
  state.SetLabel(ModeName());
}
BENCHMARK(BM_SystemClock_Now_Fallback);

// Two threads reading at once (the line is shared read-only: no contention).
void BM_SystemClock_NowMillis_Threads(benchmark::State& state) {
  const kinlet::SystemClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(clock.NowMillis());
}
BENCHMARK(BM_SystemClock_NowMillis_Threads)->Threads(2);

void BM_RealtimeClock_NowMillis(benchmark::State& state) {
  const kinlet::RealtimeClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(clock.NowMillis());
}
BENCHMARK(BM_RealtimeClock_NowMillis);

void BM_CoarseSystemClock_NowMillis(benchmark::State& state) {
  const kinlet::CoarseSystemClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(clock.NowMillis());
}
BENCHMARK(BM_CoarseSystemClock_NowMillis);

void BM_ClockGettime_Realtime(benchmark::State& state) {
  for (auto _ : state) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(BM_ClockGettime_Realtime);

void BM_ClockGettime_RealtimeCoarse(benchmark::State& state) {
  for (auto _ : state) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(BM_ClockGettime_RealtimeCoarse);

void BM_ChronoSystemClock(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(std::chrono::system_clock::now());
}
BENCHMARK(BM_ChronoSystemClock);

void BM_AbslNow(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(absl::Now());
}
BENCHMARK(BM_AbslNow);

#if KINLET_HAVE_TSC
// The floor: the RDTSC instruction alone.
void BM_Rdtsc(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(__rdtsc());
}
BENCHMARK(BM_Rdtsc);
#endif

}  // namespace
