// bench/memory_bench.cpp: heap allocations per put and per record read, and
// bytes of memory per stored record beyond its payload and partition key;
// kinlet against the mutex + deque log. Allocations are counted by a replaced
// global operator new in this binary.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "baseline.hpp"
#include "kinlet/kinlet.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<uint64_t> g_allocations{0};
}

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

constexpr int kRecords = 100000;
const std::string kKey = "user-0123456789";  // 15 bytes
const std::string kPayload(64, 'x');

void BM_Memory_Kinlet(benchmark::State& state) {
  for (auto _ : state) {
    kinlet::StreamOptions options;
    options.name = "memory";
    options.limits = kinlet::ThroughputLimits::Unlimited();
    options.shard_capacity_records = 1 << 17;
    options.shard_capacity_bytes = 16 << 20;
    auto stream = std::move(*kinlet::Stream<std::string>::Create(options));
    auto shard = stream->OpenShards()[0];
    kinlet::GetRecordsResult<std::string> page;
    auto it = *shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
    // Warm-up: one full page, so that the page's records have their buffers.
    for (int i = 0; i < 1000; ++i) (void)stream->PutRecord(kKey, kPayload);
    (void)shard->GetRecords(it, 1000, &page);
    it = *page.next_shard_iterator;
    const uint64_t before_puts = g_allocations.load();
    for (int i = 1000; i < kRecords; ++i) (void)stream->PutRecord(kKey, kPayload);
    const uint64_t puts = g_allocations.load() - before_puts;
    const uint64_t before_reads = g_allocations.load();
    for (int got = 1000; got < kRecords;) {
      (void)shard->GetRecords(it, 1000, &page);
      got += static_cast<int>(page.records.size());
      it = *page.next_shard_iterator;
    }
    const uint64_t reads = g_allocations.load() - before_reads;
    const auto stats = shard->stats();
    // Slots (24 B each) plus ring bytes used, less what the records carry.
    const double per_record = (24.0 * static_cast<double>(stats.records_stored) +
                               static_cast<double>(stats.ring_bytes_in_use)) /
                                  static_cast<double>(stats.records_stored) -
                              static_cast<double>(kKey.size() + kPayload.size());
    state.counters["allocs_per_put"] = static_cast<double>(puts) / (kRecords - 1000);
    state.counters["allocs_per_record_read"] = static_cast<double>(reads) / (kRecords - 1000);
    state.counters["overhead_bytes_per_record"] = per_record;
  }
}

void BM_Memory_MutexDeque(benchmark::State& state) {
  for (auto _ : state) {
    bench::MutexDequeLog log;
    std::vector<bench::BaselineRecord> page;
    log.Append(kKey, kPayload);
    log.Read(0, 1000, &page);
    const uint64_t before_puts = g_allocations.load();
    for (int i = 1; i < kRecords; ++i) log.Append(kKey, kPayload);
    const uint64_t puts = g_allocations.load() - before_puts;
    const uint64_t before_reads = g_allocations.load();
    for (uint64_t next = 1; next < kRecords;) next = log.Read(next, 1000, &page);
    const uint64_t reads = g_allocations.load() - before_reads;
    // Each record: the deque element (sequence, arrival, two std::string
    // headers = 80 B) plus two heap blocks (key 15 B fits SSO; payload 64 B in a
    // malloc chunk of 80 B incl. its 8-byte header): estimated, not measured.
    state.counters["allocs_per_put"] = static_cast<double>(puts) / (kRecords - 1);
    state.counters["allocs_per_record_read"] = static_cast<double>(reads) / (kRecords - 1);
    state.counters["overhead_bytes_per_record"] =
        static_cast<double>(sizeof(bench::BaselineRecord) + 80) -
        static_cast<double>(kKey.size() + kPayload.size());
  }
}

}  // namespace

BENCHMARK(BM_Memory_Kinlet)->Iterations(1);
BENCHMARK(BM_Memory_MutexDeque)->Iterations(1);
