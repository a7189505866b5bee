// bench/end_to_end_bench.cpp: records moved from a producer thread to reader
// threads: 1 producer -> 1 reader, and 1 producer -> 4 readers each reading
// everything; kinlet against the mutex + deque baseline in the same run.
// Cross-thread figures depend on the vCPU placement (near/far): compare only
// within one run, where kinlet and the baseline alternate.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "baseline.hpp"
#include "kinlet/kinlet.hpp"

namespace {

// Records per iteration: 200,000 small ones, or 128 MiB of large ones.
uint64_t RecordsPerRun(size_t size) { return size <= 1024 ? 200000 : (uint64_t{128} << 20) / size; }

// One stream per benchmark, reused by every iteration; its ring holds several
// iterations, so readers never fall behind the ring (checked: a trimmed read
// aborts the benchmark).
std::unique_ptr<kinlet::Stream<std::string>> MakeStream(size_t size) {
  kinlet::StreamOptions options;
  options.name = "e2e";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_records = 4 * RecordsPerRun(size);
  options.shard_capacity_bytes = 4 * RecordsPerRun(size) * (size + 16);
  options.max_record_size_bytes = std::max<size_t>(size + 64, size_t{1} << 20);
  options.full_policy = kinlet::FullPolicy::kOverwrite;
  return std::move(*kinlet::Stream<std::string>::Create(options));
}

void BM_EndToEnd_Kinlet(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int readers = static_cast<int>(state.range(1));
  const uint64_t n = RecordsPerRun(size);
  auto stream = MakeStream(size);
  auto* shard = stream->OpenShards()[0];
  const std::string payload(size, 'x');
  // Warm-up: write the whole ring once, so that no iteration pays first-touch
  // page faults.
  for (uint64_t i = 0; i < 4 * n; ++i) {
    if (!stream->PutRecord("user123", payload).ok()) std::abort();
  }
  std::vector<kinlet::GetRecordsResult<std::string>> pages(static_cast<size_t>(readers));
  for (auto _ : state) {
    const auto start = *shard->GetShardIterator(kinlet::IteratorPosition::Latest());
    std::vector<std::thread> threads;
    for (int r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        auto& page = pages[static_cast<size_t>(r)];
        auto it = start;
        for (uint64_t got = 0; got < n;) {
          if (!shard->GetRecords(it, 1000, &page).ok()) std::abort();
          got += page.records.size();
          it = *page.next_shard_iterator;
          if (page.records.empty()) std::this_thread::yield();
        }
      });
    }
    for (uint64_t i = 0; i < n; ++i) {
      if (!stream->PutRecord("user123", payload).ok()) std::abort();
    }
    for (auto& t : threads) t.join();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * size));
}

void BM_EndToEnd_MutexDeque(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int readers = static_cast<int>(state.range(1));
  const uint64_t n = RecordsPerRun(size);
  bench::MutexDequeLog log(4 * n);
  const std::string payload(size, 'x');
  for (uint64_t i = 0; i < 4 * n; ++i) log.Append("user123", payload);  // same warm-up
  std::vector<std::vector<bench::BaselineRecord>> pages(static_cast<size_t>(readers));
  for (auto _ : state) {
    const uint64_t start = log.End();
    std::vector<std::thread> threads;
    for (int r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        auto& page = pages[static_cast<size_t>(r)];
        for (uint64_t next = start; next < start + n;) {
          const uint64_t after = log.Read(next, 1000, &page);
          if (after == next) std::this_thread::yield();
          next = after;
        }
      });
    }
    for (uint64_t i = 0; i < n; ++i) log.Append("user123", payload);
    for (auto& t : threads) t.join();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * size));
}

}  // namespace

// Interleaved, so that kinlet and the baseline see the same placement drift.
BENCHMARK(BM_EndToEnd_Kinlet)->Args({64, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EndToEnd_MutexDeque)->Args({64, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EndToEnd_Kinlet)->Args({64, 4})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EndToEnd_MutexDeque)->Args({64, 4})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EndToEnd_Kinlet)->Args({65536, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EndToEnd_MutexDeque)->Args({65536, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
