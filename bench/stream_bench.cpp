// bench/stream_bench.cpp: single-thread PutRecord, PutRecords and GetRecords,
// kinlet against the mutex + deque baseline, in one binary and one run.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "baseline.hpp"
#include "kinlet/kinlet.hpp"

namespace {

template <typename Traits = kinlet::DefaultStreamTraits>
std::unique_ptr<kinlet::Stream<std::string, Traits>> MakeStream(
    int shards, size_t record_bytes,
    kinlet::ThroughputLimits limits = kinlet::ThroughputLimits::Unlimited(),
    size_t ring_bytes = size_t{64} << 20) {
  kinlet::StreamOptions options;
  options.name = "bench";
  options.limits = limits;
  options.shard_count = shards;
  options.shard_capacity_records = 1 << 16;
  options.shard_capacity_bytes = std::max<size_t>(ring_bytes, 8 * record_bytes);
  options.full_policy = kinlet::FullPolicy::kOverwrite;  // a put-only loop never fills up
  return std::move(*kinlet::Stream<std::string, Traits>::Create(options));
}

// Limits on but far above the traffic: every put pays for the bucket checks
// and never throttles.
constexpr kinlet::ThroughputLimits kHighLimits{int64_t{1} << 50, int64_t{1} << 40, int64_t{1} << 40,
                                               int64_t{1} << 50, int64_t{1} << 40};

void BM_PutRecord_Kinlet_LimitsOn(benchmark::State& state) {
  auto stream = MakeStream(1, 64, kHighLimits);
  const std::string payload(64, 'x');
  for (auto _ : state) benchmark::DoNotOptimize(stream->PutRecord("user123", payload));
  state.SetItemsProcessed(state.iterations());
}

void BM_PutRecord_Kinlet_NoMetrics(benchmark::State& state) {
  auto stream = MakeStream<kinlet::NoMetricsTraits>(1, 64);
  const std::string payload(64, 'x');
  for (auto _ : state) benchmark::DoNotOptimize(stream->PutRecord("user123", payload));
  state.SetItemsProcessed(state.iterations());
}

void BM_PutRecord_Kinlet(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  auto stream = MakeStream(1, size);
  const std::string payload(size, 'x');
  for (auto _ : state) benchmark::DoNotOptimize(stream->PutRecord("user123", payload));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
}

void BM_PutRecord_MutexDeque(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  bench::MutexDequeLog log(size >= 65536 ? 1024 : size_t{1} << 16);
  const std::string payload(size, 'x');
  for (auto _ : state) benchmark::DoNotOptimize(log.Append("user123", payload));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size));
}

// Args: shards, ring MiB per shard. The 64 MiB ring streams to memory (the
// write position sweeps it all); a 4 MiB one stays in the caches. 8 shards of
// 8 MiB hold what one shard of 64 MiB holds: the pair compares the routing and
// grouping of a batch over 8 shards with one shard's, memory being equal.
void BM_PutRecords500_Kinlet(benchmark::State& state) {
  auto stream =
      MakeStream(static_cast<int>(state.range(0)), 64, kinlet::ThroughputLimits::Unlimited(),
                 static_cast<size_t>(state.range(1)) << 20);
  const std::string payload(64, 'x');
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) keys.push_back("user" + std::to_string(i));
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> entries;
  for (const auto& k : keys) entries.push_back({k, payload, {}});
  kinlet::PutRecordsResult result;
  // Untimed: sweep every ring once, so that no run pays the kernel's first
  // touch of its pages (a 1-shard run sweeps its ring many times over; an
  // 8-shard one would otherwise spend its time in page faults).
  const size_t ring_bytes = static_cast<size_t>(state.range(1)) << 20;
  for (size_t swept = 0; swept < 2 * ring_bytes * static_cast<size_t>(state.range(0));
       swept += 500 * 80) {
    if (!stream->PutRecords(entries, &result).ok()) std::abort();
  }
  for (auto _ : state) benchmark::DoNotOptimize(stream->PutRecords(entries, &result));
  state.SetItemsProcessed(state.iterations() * 500);
}

void BM_PutRecords500_MutexDeque(benchmark::State& state) {
  bench::MutexDequeLog log(size_t{1} << 16);
  const std::string payload(64, 'x');
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) keys.push_back("user" + std::to_string(i));
  for (auto _ : state) {
    for (const auto& k : keys) benchmark::DoNotOptimize(log.Append(k, payload));
  }
  state.SetItemsProcessed(state.iterations() * 500);
}

void BM_GetRecords_Kinlet(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  auto stream = MakeStream(1, size);
  const std::string payload(size, 'x');
  const int kRecords = size <= 1024 ? 1000 : 100;  // all held by the ring
  for (int i = 0; i < kRecords; ++i) {
    if (!stream->PutRecord("user123", payload).ok()) std::abort();
  }
  auto shard = stream->OpenShards()[0];
  auto start = *shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
  kinlet::GetRecordsResult<std::string> page;
  for (auto _ : state) {
    if (!shard->GetRecords(start, kRecords, &page).ok()) std::abort();
    benchmark::DoNotOptimize(page.records.data());
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * kRecords * static_cast<int64_t>(size));
}

// The same read lending the records in place (GetRecordsView): no copy;
// touches each record's first byte.
void BM_GetRecordsView_Kinlet(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  auto stream = MakeStream(1, size);
  const std::string payload(size, 'x');
  const int kRecords = size <= 1024 ? 1000 : 100;
  for (int i = 0; i < kRecords; ++i) {
    if (!stream->PutRecord("user123", payload).ok()) std::abort();
  }
  auto shard = stream->OpenShards()[0];
  auto start = *shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
  kinlet::GetRecordsView<std::string> page;
  uint64_t touched = 0;
  for (auto _ : state) {
    if (!shard->GetRecords(start, kRecords, &page).ok()) std::abort();
    for (const auto& r : page.records) touched += r.data[0];
  }
  benchmark::DoNotOptimize(touched);
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * kRecords * static_cast<int64_t>(size));
}

void BM_GetRecords_MutexDeque(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  bench::MutexDequeLog log;
  const std::string payload(size, 'x');
  const int kRecords = size <= 1024 ? 1000 : 100;
  for (int i = 0; i < kRecords; ++i) log.Append("user123", payload);
  std::vector<bench::BaselineRecord> page;
  for (auto _ : state) benchmark::DoNotOptimize(log.Read(0, kRecords, &page));
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.SetBytesProcessed(state.iterations() * kRecords * static_cast<int64_t>(size));
}

}  // namespace

BENCHMARK(BM_PutRecord_Kinlet)->Arg(64)->Arg(65536);
BENCHMARK(BM_PutRecord_Kinlet_LimitsOn);
BENCHMARK(BM_PutRecord_Kinlet_NoMetrics);
BENCHMARK(BM_PutRecord_MutexDeque)->Arg(64)->Arg(65536);
BENCHMARK(BM_PutRecords500_Kinlet)
    ->Args({1, 64})
    ->Args({8, 64})
    ->Args({8, 8})
    ->Args({64, 2})
    ->Args({256, 2})
    ->Args({1, 4});
BENCHMARK(BM_PutRecords500_MutexDeque);
BENCHMARK(BM_GetRecords_Kinlet)->Arg(64)->Arg(65536);
BENCHMARK(BM_GetRecordsView_Kinlet)->Arg(64)->Arg(65536);
BENCHMARK(BM_GetRecords_MutexDeque)->Arg(64)->Arg(65536);

BENCHMARK_MAIN();
