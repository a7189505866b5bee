// bench/push_delivery_bench.cpp: what waiting and push delivery cost (issue 14,
// defect 6): context switches of an idle WaitForRecords waiter, threads added
// by 1,000 push subscriptions, and the time from a put to its push callback
// (p50, p99, p99.9 in nanoseconds) for one subscription.
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/kinlet.hpp"
#include "latency.hpp"

namespace {

int64_t ThreadContextSwitches() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_nvcsw + u.ru_nivcsw;
}

int CountThreads() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// One reader blocked in WaitForRecords for 1 s on a shard nobody writes.
void IdleWaiterContextSwitches(benchmark::State& state) {
  kinlet::StreamOptions options;
  options.name = "idle";
  auto stream = std::move(*kinlet::Stream<std::string>::Create(options));
  const auto it = *stream->OpenShards()[0]->GetShardIterator(kinlet::IteratorPosition::Latest());
  int64_t switches = 0;
  for (auto _ : state) {
    std::thread waiter([&] {
      const int64_t before = ThreadContextSwitches();
      benchmark::DoNotOptimize(stream->WaitForRecords(it, absl::Seconds(1)));
      switches = ThreadContextSwitches() - before;
    });
    waiter.join();
  }
  state.counters["switches_per_idle_s"] = static_cast<double>(switches);
}
BENCHMARK(IdleWaiterContextSwitches)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// 20 consumers x 50 shards = 1,000 push subscriptions, idle for 1 s.
void PushSubscriptionThreads(benchmark::State& state) {
  kinlet::StreamOptions options;
  options.name = "many";
  options.shard_count = 50;
  options.shard_capacity_bytes = 2 << 20;
  options.max_stream_consumers = 20;
  options.limits = kinlet::ThroughputLimits::Unlimited();
  auto stream = std::move(*kinlet::Stream<std::string>::Create(options));
  int added = 0;
  double cpu_ms = 0;
  for (auto _ : state) {
    const int before = CountThreads();
    std::vector<std::unique_ptr<kinlet::Subscription<std::string>>> subs;
    for (int c = 0; c < 20; ++c) {
      const std::string name = "c" + std::to_string(c);
      (void)stream->RegisterStreamConsumer(name);
      for (const auto& shard : stream->OpenShards()) {
        subs.push_back(
            *stream->SubscribeToShard(name, shard->shard_id(), kinlet::IteratorPosition::Latest(),
                                      [](const kinlet::SubscribeToShardEvent<std::string>&) {}));
      }
    }
    rusage u0{}, u1{};
    getrusage(RUSAGE_SELF, &u0);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    getrusage(RUSAGE_SELF, &u1);
    added = CountThreads() - before;
    auto ms = [](const rusage& u) {
      return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
             (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
    };
    cpu_ms = ms(u1) - ms(u0);
    subs.clear();
  }
  state.counters["threads_added"] = added;
  state.counters["idle_cpu_ms_per_s"] = cpu_ms;
}
BENCHMARK(PushSubscriptionThreads)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Paced puts (one every ~20 us) into a shard with one push subscription; each
// sample is the callback's time minus the stamp taken just before the put.
void PutToCallbackLatency(benchmark::State& state) {
  kinlet::StreamOptions options;
  options.name = "latency";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.full_policy = kinlet::FullPolicy::kOverwrite;
  auto stream = std::move(*kinlet::Stream<std::string>::Create(options));
  (void)stream->RegisterStreamConsumer("c");
  std::vector<int64_t> samples;
  samples.reserve(bench::kLatencySamples);
  for (auto _ : state) {
    samples.clear();
    std::atomic<int> got{0};
    auto sub = *stream->SubscribeToShard(
        "c", "shardId-000000000000", kinlet::IteratorPosition::Latest(),
        [&](const kinlet::SubscribeToShardEvent<std::string>& e) {
          const int64_t now = bench::NowNs();
          for (const auto& r : e.records()) samples.push_back(now - bench::StampOf(r.data));
          got.fetch_add(static_cast<int>(e.records().size()), std::memory_order_release);
        });
    bench::PacedPuts([&](const std::string& p) { (void)stream->PutRecord("k", p); });
    while (got.load(std::memory_order_acquire) < bench::kLatencySamples) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    sub.reset();
  }
  bench::ReportLatency(state, samples);
}
BENCHMARK(PutToCallbackLatency)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
