// bench/end_to_end_bench.cpp: records moved from a producer thread to reader
// threads: 1 producer -> 1 reader, and 1 producer -> 4 readers each reading
// everything; kinlet against the mutex + deque baseline in the same run.
// Cross-thread figures depend on the vCPU placement (near/far): compare only
// within one run.
#include <benchmark/benchmark.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "baseline.hpp"
#include "kinlet/kinlet.hpp"

namespace {

// Records per run: 200,000 small ones, or 256 MiB of large ones. The shard's
// ring holds a whole run, as a log that keeps records for replay must.
uint64_t RecordsPerRun(size_t size) { return size <= 1024 ? 200000 : (uint64_t{256} << 20) / size; }

// Moves RecordsPerRun records of `size` bytes from one producer to `readers`
// readers; returns when every reader has read every record.
void RunKinlet(size_t size, int readers) {
  const uint64_t kRecordsPerRun = RecordsPerRun(size);
  kinlet::StreamOptions options;
  options.name = "e2e";
  options.shard_capacity_records = kRecordsPerRun;
  options.shard_capacity_bytes = kRecordsPerRun * (size + 16) + (size_t{2} << 20);
  options.max_record_size_bytes = std::max<size_t>(size + 64, size_t{1} << 20);
  auto stream = std::move(*kinlet::Stream<std::string>::Create(options));
  auto* shard = stream->OpenShards()[0];
  std::vector<std::thread> threads;
  for (int r = 0; r < readers; ++r) {
    threads.emplace_back([&, r] {
      kinlet::GetRecordsResult<std::string> page;
      auto it = *shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
      uint64_t got = 0;
      while (got < kRecordsPerRun) {
        if (!shard->GetRecords(it, 1000, &page).ok()) std::abort();
        got += page.records.size();
        it = *page.next_shard_iterator;
        if (page.records.empty()) std::this_thread::yield();
      }
    });
  }
  const std::string payload(size, 'x');
  for (uint64_t i = 0; i < kRecordsPerRun; ++i) {
    if (!stream->PutRecord("user123", payload).ok()) std::abort();
  }
  for (auto& t : threads) t.join();
}

void RunBaseline(size_t size, int readers) {
  const uint64_t kRecordsPerRun = RecordsPerRun(size);
  bench::MutexDequeLog log;
  std::vector<std::thread> threads;
  for (int r = 0; r < readers; ++r) {
    threads.emplace_back([&] {
      std::vector<bench::BaselineRecord> page;
      uint64_t next = 0;
      while (next < kRecordsPerRun) {
        const uint64_t after = log.Read(next, 1000, &page);
        if (after == next) std::this_thread::yield();
        next = after;
      }
    });
  }
  const std::string payload(size, 'x');
  for (uint64_t i = 0; i < kRecordsPerRun; ++i) log.Append("user123", payload);
  for (auto& t : threads) t.join();
}

void BM_EndToEnd_Kinlet(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int readers = static_cast<int>(state.range(1));
  for (auto _ : state) RunKinlet(size, readers);
  state.SetItemsProcessed(state.iterations() * RecordsPerRun(size));
  state.SetBytesProcessed(state.iterations() * RecordsPerRun(size) * size);
}

void BM_EndToEnd_MutexDeque(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int readers = static_cast<int>(state.range(1));
  for (auto _ : state) RunBaseline(size, readers);
  state.SetItemsProcessed(state.iterations() * RecordsPerRun(size));
  state.SetBytesProcessed(state.iterations() * RecordsPerRun(size) * size);
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
