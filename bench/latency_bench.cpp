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
#include "latency.hpp"

namespace {

using bench::kLatencySamples;
using bench::NowNs;
using bench::PacedPuts;
using bench::StampOf;
constexpr int kSamples = kLatencySamples;

void Report(benchmark::State& state, std::vector<int64_t>& samples) {
  bench::ReportLatency(state, samples);
}

// The producer stamps each payload with the time its put returned... as near
// as it can: the stamp is taken just before the put, and the put's own cost is
// measured separately and subtracted (put_ns counter).
// How the reader learns of a record: spinning on GetRecords, spinning on the
// one-load HasRecords and then reading, or blocked in WaitForRecords.
enum class Wait { kSpinGetRecords, kSpinHasRecords, kBlocking };

template <Wait kWait>
void KinletLatency(benchmark::State& state) {
  kinlet::StreamOptions options;
  options.name = "latency";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.full_policy = kinlet::FullPolicy::kOverwrite;
  auto stream = std::move(*kinlet::Stream<std::string>::Create(options));
  auto shard = stream->OpenShards()[0];
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
        if constexpr (kWait == Wait::kBlocking) shard->WaitForRecords(it, absl::Seconds(1));
        if constexpr (kWait == Wait::kSpinHasRecords) {
          while (!shard->HasRecords(it)) {
          }
        }
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

void BM_Latency_KinletSpinning(benchmark::State& state) {
  KinletLatency<Wait::kSpinGetRecords>(state);
}
void BM_Latency_KinletSpinningHasRecords(benchmark::State& state) {
  KinletLatency<Wait::kSpinHasRecords>(state);
}
void BM_Latency_KinletBlocking(benchmark::State& state) { KinletLatency<Wait::kBlocking>(state); }

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

void BM_Latency_CondVarBlocking(benchmark::State& state) { bench::CondVarLatency(state); }

}  // namespace

BENCHMARK(BM_Latency_KinletSpinning)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Latency_KinletSpinningHasRecords)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Latency_MutexDequeSpinning)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Latency_KinletBlocking)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Latency_CondVarBlocking)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
