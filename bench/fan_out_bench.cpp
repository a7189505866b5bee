// bench/fan_out_bench.cpp: enhanced fan-out.
//  - PushLatency: time from PutRecord returning (stamped just before it) to a
//    push subscription's callback holding the record, p50/p99/p99.9; the
//    platform's condition-variable wake-up is the baseline in the same binary.
//  - WriterThroughput/N: one writer putting 64-byte records as fast as it can
//    while N registered consumers (0, 1, 4, 16) are attached and drained by one
//    thread through their pull handles (a game loop's pattern, so that 16
//    consumers do not mean 16 threads on two cores). N = 0 is the baseline.
//    The second argument picks the drainer's call: 0 Next (records copied into
//    each consumer's event), 1 NextView (records lent in place, zero-copy).
//  - Drain/N/size/views: N consumers read 65,536 stored records of `size`
//    bytes (single-threaded, no writer): the per-consumer cost of a copy
//    (views = 0) against lending the one stored copy (views = 1).
// Placement (near/far) moves cross-thread figures: compare within one run.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/kinlet.hpp"
#include "latency.hpp"

namespace {

using Stream = kinlet::Stream<std::string>;

std::unique_ptr<Stream> MakeStream(size_t records) {
  kinlet::StreamOptions options;
  options.name = "fan-out-bench";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_records = records;
  options.shard_capacity_bytes = records * 96;
  return std::move(*Stream::Create(options));
}

void BM_FanOut_PushLatency(benchmark::State& state) {
  auto stream = MakeStream(1 << 16);
  (void)stream->RegisterStreamConsumer("latency");
  std::vector<int64_t> samples;
  samples.reserve(bench::kLatencySamples);
  for (auto _ : state) {
    samples.clear();
    std::atomic<int> got{0};
    auto sub = stream->SubscribeToShard(
        "latency", "shardId-000000000000", kinlet::IteratorPosition::Latest(),
        [&](const kinlet::SubscribeToShardEvent<std::string>& event) {
          const int64_t now = bench::NowNs();
          for (const auto& r : event.records()) samples.push_back(now - bench::StampOf(r.data));
          got.fetch_add(static_cast<int>(event.records().size()), std::memory_order_release);
        });
    if (!sub.ok()) std::abort();
    bench::PacedPuts([&](const std::string& payload) {
      if (!stream->PutRecord("k", payload).ok()) std::abort();
    });
    while (got.load(std::memory_order_acquire) < bench::kLatencySamples) {
      std::this_thread::yield();
    }
    sub->reset();
    // The next iteration subscribes again: past the 5-second takeover window
    // only because this subscription has ended.
  }
  bench::ReportLatency(state, samples);
}

void BM_FanOut_CondVarLatency(benchmark::State& state) { bench::CondVarLatency(state); }

// One pull from `sub`: Next into `event`, or NextView touching each record's
// first payload byte (what a copy touches anyway). Returns the records taken.
int64_t Take(kinlet::Subscription<std::string>& sub, bool views,
             kinlet::SubscribeToShardEvent<std::string>* event) {
  if (!views) {
    if (!sub.Next(event, absl::ZeroDuration()).ok()) std::abort();
    return static_cast<int64_t>(event->records().size());
  }
  int64_t n = 0;
  const absl::Status s = sub.NextView(
      [&](const kinlet::SubscribeToShardEventView<std::string>& e) {
        for (const auto& r : e.records) benchmark::DoNotOptimize(r.data[0]);
        n = static_cast<int64_t>(e.records.size());
      },
      absl::ZeroDuration());
  if (!s.ok()) std::abort();
  return n;
}

void BM_FanOut_Drain(benchmark::State& state) {
  constexpr int64_t kRecords = 1 << 16;
  const int consumers = static_cast<int>(state.range(0));
  const size_t size = static_cast<size_t>(state.range(1));
  const bool views = state.range(2) != 0;
  kinlet::StreamOptions options;
  options.name = "drain-bench";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_records = kRecords;
  options.shard_capacity_bytes = static_cast<size_t>(kRecords) * (size + 64);
  auto stream = std::move(*Stream::Create(options));
  const std::string payload(size, 'p');
  for (int64_t i = 0; i < kRecords; ++i) {
    if (!stream->PutRecord("key", payload).ok()) std::abort();
  }
  for (int c = 0; c < consumers; ++c) (void)stream->RegisterStreamConsumer("c" + std::to_string(c));
  kinlet::SubscribeToShardEvent<std::string> event;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<std::unique_ptr<kinlet::Subscription<std::string>>> subs;
    for (int c = 0; c < consumers; ++c) {
      // Each pass subscribes anew; the last pass's subscriptions have ended.
      subs.push_back(*stream->SubscribeToShard("c" + std::to_string(c), "shardId-000000000000",
                                               kinlet::IteratorPosition::TrimHorizon()));
    }
    state.ResumeTiming();
    for (auto& sub : subs) {
      for (int64_t seen = 0; seen < kRecords;) seen += Take(*sub, views, &event);
    }
    state.PauseTiming();
    subs.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kRecords * consumers);
  state.SetBytesProcessed(state.iterations() * kRecords * consumers * static_cast<int64_t>(size));
}

void BM_FanOut_WriterThroughput(benchmark::State& state) {
  constexpr int64_t kRecords = 1 << 20;
  const int consumers = static_cast<int>(state.range(0));
  const bool views = state.range(1) != 0;
  const std::string payload(64, 'p');
  int64_t delivered_total = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto stream = MakeStream(kRecords);
    std::vector<std::unique_ptr<kinlet::Subscription<std::string>>> subs;
    for (int c = 0; c < consumers; ++c) {
      const std::string name = "consumer-" + std::to_string(c);
      (void)stream->RegisterStreamConsumer(name);
      subs.push_back(*stream->SubscribeToShard(name, "shardId-000000000000",
                                               kinlet::IteratorPosition::TrimHorizon()));
    }
    std::atomic<bool> writing{true};
    std::thread drainer([&] {
      kinlet::SubscribeToShardEvent<std::string> event;
      std::vector<int64_t> seen(subs.size(), 0);
      bool done = subs.empty();
      while (!done) {
        done = !writing.load(std::memory_order_acquire);
        for (size_t i = 0; i < subs.size(); ++i) {
          seen[i] += Take(*subs[i], views, &event);
          if (seen[i] < kRecords) done = false;
        }
      }
      for (int64_t n : seen) delivered_total += n;
    });
    state.ResumeTiming();
    for (int64_t i = 0; i < kRecords; ++i) {
      if (!stream->PutRecord("key", payload).ok()) std::abort();
    }
    state.PauseTiming();
    writing.store(false, std::memory_order_release);
    drainer.join();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  state.counters["delivered"] = static_cast<double>(delivered_total);
}

}  // namespace

BENCHMARK(BM_FanOut_PushLatency)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FanOut_CondVarLatency)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FanOut_WriterThroughput)
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({4, 0})
    ->Args({4, 1})
    ->Args({16, 0})
    ->Args({16, 1})
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FanOut_Drain)
    ->Args({4, 64, 0})
    ->Args({4, 64, 1})
    ->Args({4, 4096, 0})
    ->Args({4, 4096, 1})
    ->Unit(benchmark::kMillisecond);
