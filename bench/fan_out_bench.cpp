// bench/fan_out_bench.cpp: enhanced fan-out.
//  - PushLatency: time from PutRecord returning (stamped just before it) to a
//    push subscription's callback holding the record, p50/p99/p99.9; the
//    platform's condition-variable wake-up is the baseline in the same binary.
//  - WriterThroughput/N: one writer putting 64-byte records as fast as it can
//    while N registered consumers (0, 1, 4, 16) are attached and drained by one
//    thread through their pull handles (a game loop's pattern, so that 16
//    consumers do not mean 16 threads on two cores). N = 0 is the baseline.
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

void BM_FanOut_WriterThroughput(benchmark::State& state) {
  constexpr int64_t kRecords = 1 << 20;
  const int consumers = static_cast<int>(state.range(0));
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
          if (!subs[i]->Next(&event, absl::ZeroDuration()).ok()) std::abort();
          seen[i] += static_cast<int64_t>(event.records().size());
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
    ->Arg(0)
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
