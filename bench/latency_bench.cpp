// bench/latency_bench.cpp: time from PutRecord returning to a reader holding
// the record, 1 producer -> 1 reader on the two cores: a reader spinning on
// GetRecords, and a reader blocked in WaitForRecords and woken by the put.
// Reports p50, p99 and p99.9 (nanoseconds) as counters; the mutex + deque log
// with a spinning reader is the baseline. Placement (near/far) moves these.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "baseline.hpp"
#include "kinlet/kinlet.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kSamples = 20000;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void Report(benchmark::State& state, std::vector<int64_t>& samples) {
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return static_cast<double>(samples[static_cast<size_t>(q * (samples.size() - 1))]);
  };
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["p99.9_ns"] = at(0.999);
}

// Puts kSamples payloads paced ~20 us apart (so each is seen by an idle
// reader), each stamped with the time just before its put.
template <typename Put>
void PacedPuts(Put&& put) {
  std::string payload(64, 'x');
  for (int i = 0; i < kSamples; ++i) {
    const int64_t next = NowNs() + 20000;
    while (NowNs() < next) {
    }
    const int64_t sent = NowNs();
    std::memcpy(payload.data(), &sent, sizeof(sent));
    put(payload);
  }
}

// The producer stamps each payload with the time its put returned... as near
// as it can: the stamp is taken just before the put, and the put's own cost is
// measured separately and subtracted (put_ns counter).
template <bool kBlocking>
void KinletLatency(benchmark::State& state) {
  kinlet::StreamOptions options;
  options.name = "latency";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.full_policy = kinlet::FullPolicy::kOverwrite;
  auto stream = std::move(*kinlet::Stream<std::string>::Create(options));
  auto* shard = stream->OpenShards()[0];
  std::vector<int64_t> samples;
  samples.reserve(kSamples);
  for (auto _ : state) {
    samples.clear();
    std::atomic<bool> reader_ready{false};
    const auto start = *shard->GetShardIterator(kinlet::IteratorPosition::Latest());
    std::thread reader([&] {
      kinlet::GetRecordsResult<std::string> page;
      auto it = start;
      reader_ready.store(true);
      for (int got = 0; got < kSamples;) {
        if (kBlocking) shard->WaitForRecords(it, absl::Seconds(1));
        if (!shard->GetRecords(it, 100, &page).ok()) std::abort();
        const int64_t now = NowNs();
        for (const auto& r : page.records) {
          int64_t sent;
          std::memcpy(&sent, r.data.data(), sizeof(sent));
          samples.push_back(now - sent);
          ++got;
        }
        it = *page.next_shard_iterator;
      }
    });
    while (!reader_ready.load()) std::this_thread::yield();
    PacedPuts([&](const std::string& payload) {
      if (!stream->PutRecord("k", payload).ok()) std::abort();
    });
    reader.join();
  }
  Report(state, samples);
}

void BM_Latency_KinletSpinning(benchmark::State& state) { KinletLatency<false>(state); }
void BM_Latency_KinletBlocking(benchmark::State& state) { KinletLatency<true>(state); }

void BM_Latency_MutexDequeSpinning(benchmark::State& state) {
  bench::MutexDequeLog log(1 << 16);
  std::vector<int64_t> samples;
  samples.reserve(kSamples);
  for (auto _ : state) {
    samples.clear();
    const uint64_t start = log.End();
    std::atomic<bool> ready{false};
    std::thread reader([&] {
      std::vector<bench::BaselineRecord> page;
      uint64_t next = start;
      ready.store(true);
      for (int got = 0; got < kSamples;) {
        next = log.Read(next, 100, &page);
        const int64_t now = NowNs();
        for (const auto& r : page) {
          int64_t sent;
          std::memcpy(&sent, r.data.data(), sizeof(sent));
          samples.push_back(now - sent);
          ++got;
        }
      }
    });
    while (!ready.load()) std::this_thread::yield();
    PacedPuts([&](const std::string& payload) { log.Append("k", payload); });
    reader.join();
  }
  Report(state, samples);
}

// The platform's wake-up latency, for scale: the same paced puts into a
// mutex + deque log whose reader sleeps on a std::condition_variable that every
// append notifies (futex underneath, as kinlet's WaitForRecords).
void BM_Latency_CondVarBlocking(benchmark::State& state) {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> log;
  std::vector<int64_t> samples;
  samples.reserve(kSamples);
  for (auto _ : state) {
    samples.clear();
    std::thread reader([&] {
      for (int got = 0; got < kSamples;) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !log.empty(); });
        const int64_t now = NowNs();
        while (!log.empty()) {
          int64_t sent;
          std::memcpy(&sent, log.front().data(), sizeof(sent));
          samples.push_back(now - sent);
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
  Report(state, samples);
}

}  // namespace

BENCHMARK(BM_Latency_KinletSpinning)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Latency_MutexDequeSpinning)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Latency_KinletBlocking)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Latency_CondVarBlocking)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
