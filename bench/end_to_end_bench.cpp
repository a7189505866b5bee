// bench/end_to_end_bench.cpp: records moved from a producer thread to reader
// threads. 1 producer -> 1 reader (kinlet, kinlet in its fast configuration,
// the mutex + deque log, moodycamel::ConcurrentQueue); 1 producer -> 4 readers
// each reading everything (kinlet, mutex + deque; a queue cannot do this);
// 64 KiB and 1 MiB records against memcpy of the same bytes.
// Cross-thread figures depend on the vCPU placement (near/far): compare only
// within one run, where kinlet and the baselines alternate.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "baseline.hpp"
#include "fast_traits.hpp"
#include "kinlet/kinlet.hpp"
#ifdef KINLET_HAVE_MOODYCAMEL
#include <concurrentqueue.h>
#endif

namespace {

// Records per iteration: 200,000 small ones, or 128 MiB of large ones.
uint64_t RecordsPerRun(size_t size) { return size <= 1024 ? 200000 : (uint64_t{128} << 20) / size; }

// One stream per benchmark, reused by every iteration; its ring holds several
// iterations, so readers never fall behind the ring (a trimmed read aborts).
template <typename Traits>
std::unique_ptr<kinlet::Stream<std::string, Traits>> MakeStream(size_t size) {
  kinlet::StreamOptions options;
  options.name = "e2e";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_records = 4 * RecordsPerRun(size);
  options.shard_capacity_bytes = 4 * RecordsPerRun(size) * (size + 16);
  options.max_record_size_bytes = std::max<size_t>(size + 64, size_t{1} << 20);
  options.full_policy = kinlet::FullPolicy::kOverwrite;
  return std::move(*kinlet::Stream<std::string, Traits>::Create(options));
}

// Puts `records` copies of `payload`. Called once before the timed runs, it
// touches the whole ring, so that no iteration pays first-touch page faults.
template <typename StreamT>
void PutAll(StreamT& stream, uint64_t records, const std::string& payload) {
  for (uint64_t i = 0; i < records; ++i) {
    if (!stream.PutRecord("user123", payload).ok()) std::abort();
  }
}

// The writer's side of an end-to-end run: the seconds PutAll takes.
template <typename StreamT>
double TimedPuts(StreamT& stream, uint64_t records, const std::string& payload) {
  const auto t0 = std::chrono::steady_clock::now();
  PutAll(stream, records, payload);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Records/s and bytes/s for the readers (each reads everything), and the
// writer's own rate.
void ReportEndToEnd(benchmark::State& state, uint64_t n, size_t size, double writer_seconds) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * size));
  state.counters["writer_records_per_second"] =
      static_cast<double>(state.iterations() * n) / writer_seconds;
}

using Clock = std::chrono::steady_clock;

// How a reader waits when a read returns few or no records.
enum class ReaderIdle {
  kYield,     // yield only when a page is empty (a naive poller)
  kBlocking,  // park in WaitForRecords when a page is empty (woken by the put)
  kBackoff,   // kinlet::BackoffIdle, parking in WaitForRecords (the recommended loop)
};

// The BackoffIdle preset a user would pick: Throughput() while every reader
// has a core of its own (the writer keeps one), SharedCores() beyond that.
kinlet::BackoffIdleOptions IdleFor(int readers) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return readers + 1 <= cores ? kinlet::BackoffIdleOptions::Throughput()
                              : kinlet::BackoffIdleOptions::SharedCores();
}

// A polling reader's page: copying (GetRecordsResult) or lending the records
// in place (GetRecordsView, zero-copy: the reader touches each record's first
// byte, as the fan-out view readers do).
template <bool kLend>
using PageFor = std::conditional_t<kLend, kinlet::GetRecordsView<std::string>,
                                   kinlet::GetRecordsResult<std::string>>;

template <typename Traits, ReaderIdle kIdle = ReaderIdle::kBackoff, bool kLend = false>
void EndToEndKinlet(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int readers = static_cast<int>(state.range(1));
  const uint64_t n = RecordsPerRun(size);
  auto stream = MakeStream<Traits>(size);
  auto shard = stream->OpenShards()[0];
  const std::string payload(size, 'x');
  PutAll(*stream, 4 * n, payload);
  std::vector<PageFor<kLend>> pages(static_cast<size_t>(readers));
  double writer_seconds = 0;
  for (auto _ : state) {
    const auto start = *shard->GetShardIterator(kinlet::IteratorPosition::Latest());
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        auto& page = pages[static_cast<size_t>(r)];
        auto it = start;
        kinlet::BackoffIdle idle(IdleFor(readers));
        ready.fetch_add(1);
        uint64_t touched = 0;
        for (uint64_t got = 0; got < n;) {
          if (!shard->GetRecords(it, 1000, &page).ok()) std::abort();
          got += page.records.size();
          if constexpr (kLend) {
            for (const auto& record : page.records) touched += record.data[0];
          }
          it = *page.next_shard_iterator;
          if constexpr (kIdle == ReaderIdle::kBackoff) {
            idle.Idle(page.records.size(), [&](absl::Duration d) { shard->WaitForRecords(it, d); });
          } else if (page.records.empty()) {
            if constexpr (kIdle == ReaderIdle::kBlocking) {
              shard->WaitForRecords(it, absl::Milliseconds(10));
            } else {
              std::this_thread::yield();
            }
          }
        }
        if constexpr (kLend) page.Release();
        benchmark::DoNotOptimize(touched);
      });
    }
    while (ready.load() < readers) std::this_thread::yield();
    writer_seconds += TimedPuts(*stream, n, payload);
    for (auto& t : threads) t.join();
  }
  ReportEndToEnd(state, n, size, writer_seconds);
}

// Enhanced fan-out: each reader is a registered consumer with a pull
// subscription (its own read budget; off here, as all limits), on its own
// thread; `read(subscription, n, readers)` reads n records from it.
template <typename Traits, typename ReadAll>
void EndToEndFanOut(benchmark::State& state, ReadAll read) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int readers = static_cast<int>(state.range(1));
  const uint64_t n = RecordsPerRun(size);
  auto stream = MakeStream<Traits>(size);
  const std::string payload(size, 'x');
  PutAll(*stream, 4 * n, payload);
  for (int r = 0; r < readers; ++r) {
    if (!stream->RegisterStreamConsumer("reader-" + std::to_string(r)).ok()) std::abort();
  }
  double writer_seconds = 0;
  for (auto _ : state) {
    std::vector<std::unique_ptr<kinlet::Subscription<std::string, Traits>>> subs;
    for (int r = 0; r < readers; ++r) {
      subs.push_back(*stream->SubscribeToShard("reader-" + std::to_string(r),
                                               "shardId-000000000000",
                                               kinlet::IteratorPosition::Latest()));
    }
    std::vector<std::thread> threads;
    for (auto& sub : subs) threads.emplace_back([&] { read(*sub, n, readers); });
    writer_seconds += TimedPuts(*stream, n, payload);
    for (auto& t : threads) t.join();
  }
  ReportEndToEnd(state, n, size, writer_seconds);
}

// Copying events, waiting in Next() for the put's wake-up when caught up.
void BM_EndToEnd_KinletFanOut(benchmark::State& state) {
  EndToEndFanOut<kinlet::DefaultStreamTraits>(
      state, [](kinlet::Subscription<std::string>& sub, uint64_t n, int) {
        kinlet::SubscribeToShardEvent<std::string> event;
        for (uint64_t got = 0; got < n;) {
          if (!sub.Next(&event, absl::Milliseconds(10)).ok()) std::abort();
          got += event.records().size();
        }
      });
}

// Zero-copy events: each reader is lent the stored records (NextView) and
// touches each one's first byte, idling with BackoffIdle between polls
// (NextView does not wait), as the polling readers; fast configuration.
void BM_EndToEnd_KinletFanOutViews(benchmark::State& state) {
  EndToEndFanOut<bench::FastTraits>(
      state,
      [](kinlet::Subscription<std::string, bench::FastTraits>& sub, uint64_t n, int readers) {
        kinlet::BackoffIdle idle(IdleFor(readers));
        uint64_t touched = 0;
        for (uint64_t got = 0; got < n;) {
          size_t k = 0;
          const absl::Status s = sub.NextView(
              [&](const kinlet::SubscribeToShardEventView<std::string>& e) {
                k = e.records.size();
                for (const auto& record : e.records) touched += record.data[0];
              },
              absl::ZeroDuration());
          if (!s.ok()) std::abort();
          got += k;
          idle.Idle(k);
        }
        benchmark::DoNotOptimize(touched);
      });
}

void BM_EndToEnd_Kinlet(benchmark::State& state) {
  EndToEndKinlet<kinlet::DefaultStreamTraits>(state);
}
void BM_EndToEnd_KinletFast(benchmark::State& state) { EndToEndKinlet<bench::FastTraits>(state); }
// Zero-copy polling readers (GetRecords into a GetRecordsView), default and
// fast configurations.
void BM_EndToEnd_KinletViews(benchmark::State& state) {
  EndToEndKinlet<kinlet::DefaultStreamTraits, ReaderIdle::kBackoff, /*kLend=*/true>(state);
}
void BM_EndToEnd_KinletFastViews(benchmark::State& state) {
  EndToEndKinlet<bench::FastTraits, ReaderIdle::kBackoff, /*kLend=*/true>(state);
}
void BM_EndToEnd_KinletBlockingReaders(benchmark::State& state) {
  EndToEndKinlet<kinlet::DefaultStreamTraits, ReaderIdle::kBlocking>(state);
}
void BM_EndToEnd_KinletYieldingReaders(benchmark::State& state) {
  EndToEndKinlet<kinlet::DefaultStreamTraits, ReaderIdle::kYield>(state);
}
void BM_EndToEnd_KinletFastYieldingReaders(benchmark::State& state) {
  EndToEndKinlet<bench::FastTraits, ReaderIdle::kYield>(state);
}

void BM_EndToEnd_MutexDeque(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int readers = static_cast<int>(state.range(1));
  const uint64_t n = RecordsPerRun(size);
  bench::MutexDequeLog log(4 * n);
  const std::string payload(size, 'x');
  for (uint64_t i = 0; i < 4 * n; ++i) log.Append("user123", payload);  // same warm-up
  std::vector<std::vector<bench::BaselineRecord>> pages(static_cast<size_t>(readers));
  double writer_seconds = 0;
  for (auto _ : state) {
    const uint64_t start = log.End();
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        auto& page = pages[static_cast<size_t>(r)];
        kinlet::BackoffIdle idle(IdleFor(readers));  // the same waiting as kinlet's readers
        ready.fetch_add(1);
        for (uint64_t next = start; next < start + n;) {
          const uint64_t after = log.Read(next, 1000, &page);
          idle.Idle(after - next);
          next = after;
        }
      });
    }
    while (ready.load() < readers) std::this_thread::yield();
    const auto t0 = Clock::now();
    for (uint64_t i = 0; i < n; ++i) log.Append("user123", payload);
    writer_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    for (auto& t : threads) t.join();
  }
  ReportEndToEnd(state, n, size, writer_seconds);
}

#ifdef KINLET_HAVE_MOODYCAMEL
// The same 64-byte records with their key and timestamp, through a lock-free
// queue (records are gone once read: no replay).
struct QueueItem {
  int64_t arrival_ms;
  char key[16];
  char data[64];
};

template <ReaderIdle kIdle>
void EndToEndMoodycamel(benchmark::State& state) {
  const uint64_t n = RecordsPerRun(64);
  moodycamel::ConcurrentQueue<QueueItem> queue(1 << 16);
  QueueItem item{};
  std::memcpy(item.key, "user123", 7);
  std::memset(item.data, 'x', sizeof(item.data));
  for (auto _ : state) {
    std::thread reader([&] {
      moodycamel::ConsumerToken token(queue);
      std::vector<QueueItem> out(1000);
      kinlet::BackoffIdle idle(IdleFor(1));  // the same waiting as kinlet's readers
      for (uint64_t got = 0; got < n;) {
        const size_t k = queue.try_dequeue_bulk(token, out.begin(), out.size());
        got += k;
        if constexpr (kIdle == ReaderIdle::kBackoff) {
          idle.Idle(k);
        } else if (k == 0) {
          std::this_thread::yield();
        }
      }
    });
    moodycamel::ProducerToken token(queue);
    for (uint64_t i = 0; i < n; ++i) {
      item.arrival_ms = static_cast<int64_t>(i);
      queue.enqueue(token, item);
    }
    reader.join();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * 64));
}
void BM_EndToEnd_Moodycamel(benchmark::State& state) {
  EndToEndMoodycamel<ReaderIdle::kBackoff>(state);
}
void BM_EndToEnd_MoodycamelYielding(benchmark::State& state) {
  EndToEndMoodycamel<ReaderIdle::kYield>(state);
}
#endif

// The physical limit for large records: memcpy of the same sizes into a
// rotating 512 MiB destination (so that, like the ring, it streams to memory).
void BM_Memcpy(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const std::string src(size, 'x');
  const size_t slots = (size_t{512} << 20) / size;
  std::unique_ptr<char[]> dst(new char[slots * size]);
  for (size_t i = 0; i < slots; ++i) std::memset(dst.get() + i * size, 0, size);
  size_t at = 0;
  for (auto _ : state) {
    std::memcpy(dst.get() + at * size, src.data(), size);
    benchmark::DoNotOptimize(dst.get() + at * size);
    at = (at + 1) % slots;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

}  // namespace

#define KINLET_E2E(name, ...) \
  BENCHMARK(name)->Args({__VA_ARGS__})->Unit(benchmark::kMillisecond)->UseRealTime()

// Interleaved, so that kinlet and the baselines see the same placement drift.
KINLET_E2E(BM_EndToEnd_Kinlet, 64, 1);
KINLET_E2E(BM_EndToEnd_KinletViews, 64, 1);
KINLET_E2E(BM_EndToEnd_KinletFast, 64, 1);
KINLET_E2E(BM_EndToEnd_KinletFastViews, 64, 1);
KINLET_E2E(BM_EndToEnd_MutexDeque, 64, 1);
#ifdef KINLET_HAVE_MOODYCAMEL
KINLET_E2E(BM_EndToEnd_Moodycamel, 64, 1);
#endif
KINLET_E2E(BM_EndToEnd_Kinlet, 64, 0);
KINLET_E2E(BM_EndToEnd_Kinlet, 64, 4);
KINLET_E2E(BM_EndToEnd_KinletViews, 64, 4);
KINLET_E2E(BM_EndToEnd_KinletFast, 64, 0);
KINLET_E2E(BM_EndToEnd_KinletFast, 64, 4);
KINLET_E2E(BM_EndToEnd_KinletFastViews, 64, 4);
KINLET_E2E(BM_EndToEnd_MutexDeque, 64, 4);
KINLET_E2E(BM_EndToEnd_KinletFanOut, 64, 1);
KINLET_E2E(BM_EndToEnd_KinletFanOut, 64, 4);
KINLET_E2E(BM_EndToEnd_KinletFanOutViews, 64, 1);
KINLET_E2E(BM_EndToEnd_KinletFanOutViews, 64, 4);
KINLET_E2E(BM_EndToEnd_KinletBlockingReaders, 64, 1);
KINLET_E2E(BM_EndToEnd_KinletBlockingReaders, 64, 4);
KINLET_E2E(BM_EndToEnd_KinletYieldingReaders, 64, 1);
KINLET_E2E(BM_EndToEnd_KinletFastYieldingReaders, 64, 1);
#ifdef KINLET_HAVE_MOODYCAMEL
KINLET_E2E(BM_EndToEnd_MoodycamelYielding, 64, 1);
#endif
KINLET_E2E(BM_EndToEnd_KinletYieldingReaders, 64, 4);
KINLET_E2E(BM_EndToEnd_KinletFastYieldingReaders, 64, 4);
KINLET_E2E(BM_EndToEnd_Kinlet, 65536, 1);
KINLET_E2E(BM_EndToEnd_MutexDeque, 65536, 1);
KINLET_E2E(BM_EndToEnd_Kinlet, 1 << 20, 1);
BENCHMARK(BM_Memcpy)->Arg(65536)->Arg(1 << 20);

// Sweeps for the plots (bench/plot.py): record size at 1 reader, readers at 64 B.
void SizeSweep(benchmark::internal::Benchmark* b) {
  for (int size : {64, 256, 1024, 4096, 16384, 65536}) b->Args({size, 1});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void ReaderSweep(benchmark::internal::Benchmark* b) {
  for (int readers : {1, 2, 4, 8}) b->Args({64, readers});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(BM_EndToEnd_Kinlet)->Name("Sweep/Kinlet")->Apply(SizeSweep)->Apply(ReaderSweep);
BENCHMARK(BM_EndToEnd_MutexDeque)->Name("Sweep/MutexDeque")->Apply(SizeSweep)->Apply(ReaderSweep);
