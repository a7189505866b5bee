// bench/latency.hpp: what the latency benchmarks share: a nanosecond clock,
// paced stamped puts, percentile counters, and the platform's own wake-up
// latency (a condition variable) as the baseline for blocked readers.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bench {

inline constexpr int kLatencySamples = 20000;

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// p50, p99 and p99.9 of `samples` (nanoseconds) as counters.
inline void ReportLatency(benchmark::State& state, std::vector<int64_t>& samples) {
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return static_cast<double>(samples[static_cast<size_t>(q * (samples.size() - 1))]);
  };
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["p99.9_ns"] = at(0.999);
}

// Puts kLatencySamples 64-byte payloads paced ~20 us apart (so each is seen by
// an idle reader), each stamped with the time just before its put.
template <typename Put>
void PacedPuts(Put&& put) {
  std::string payload(64, 'x');
  for (int i = 0; i < kLatencySamples; ++i) {
    const int64_t next = NowNs() + 20000;
    while (NowNs() < next) {
    }
    const int64_t sent = NowNs();
    std::memcpy(payload.data(), &sent, sizeof(sent));
    put(payload);
  }
}

inline int64_t StampOf(const std::string& payload) {
  int64_t sent;
  std::memcpy(&sent, payload.data(), sizeof(sent));
  return sent;
}

// The platform's wake-up latency, for scale: the same paced puts into a
// mutex + deque log whose reader sleeps on a std::condition_variable that every
// append notifies (a futex underneath, as kinlet's wake-ups).
inline void CondVarLatency(benchmark::State& state) {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> log;
  std::vector<int64_t> samples;
  samples.reserve(kLatencySamples);
  for (auto _ : state) {
    samples.clear();
    std::thread reader([&] {
      for (int got = 0; got < kLatencySamples;) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !log.empty(); });
        const int64_t now = NowNs();
        while (!log.empty()) {
          samples.push_back(now - StampOf(log.front()));
          log.pop_front();
          ++got;
        }
      }
    });
    PacedPuts([&](const std::string& payload) {
      {
        std::lock_guard<std::mutex> lock(mu);
        log.push_back(payload);
      }
      cv.notify_one();
    });
    reader.join();
  }
  ReportLatency(state, samples);
}

}  // namespace bench
