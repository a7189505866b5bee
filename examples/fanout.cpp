// fanout: a telemetry stream with three registered consumers reading the same
// shards at their own pace, each with its own read budget: an alerting
// consumer (fast), an aggregator (a little slower) and an archiver (slow).
// Every consumer sees every record; the slow one falls behind (its lag grows)
// without slowing the producer or the others. Prints each consumer's lag.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/kinlet.hpp"

namespace {

using Stream = kinlet::Stream<std::string>;
using Event = kinlet::SubscribeToShardEvent<std::string>;

struct Reader {
  Reader(std::string n, std::chrono::microseconds work)
      : name(std::move(n)), work_per_event(work) {}
  std::string name;
  std::chrono::microseconds work_per_event;  // how long it takes over each event
  std::atomic<uint64_t> records{0};
  std::atomic<int64_t> lag_ms{0};
  std::vector<std::unique_ptr<kinlet::Subscription<std::string>>> subscriptions;
};

}  // namespace

int main() {
  kinlet::StreamOptions options;
  options.name = "telemetry";
  options.shard_count = 2;
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.limits.subscribe_bytes_per_second = 2 << 20;  // each consumer: 2 MiB/s per shard
  options.max_get_records_bytes = 32 << 10;             // events of at most 32 KiB
  auto stream = std::move(*Stream::Create(options));

  std::vector<std::unique_ptr<Reader>> readers;
  readers.push_back(std::make_unique<Reader>("alerting", std::chrono::microseconds(0)));
  readers.push_back(std::make_unique<Reader>("aggregator", std::chrono::milliseconds(5)));
  readers.push_back(std::make_unique<Reader>("archiver", std::chrono::milliseconds(50)));
  for (auto& reader : readers) {
    auto registered = stream->RegisterStreamConsumer(reader->name);
    if (!registered.ok()) return 1;
    std::printf("registered %s\n", registered->consumer_arn.c_str());
    for (auto* shard : stream->OpenShards()) {
      Reader* r = reader.get();
      auto sub = stream->SubscribeToShard(
          r->name, shard->shard_id(), kinlet::IteratorPosition::TrimHorizon(),
          [r](const Event& event) {  // on this subscription's delivery thread
            r->records.fetch_add(event.records().size());
            r->lag_ms.store(event.millis_behind_latest);
            std::this_thread::sleep_for(r->work_per_event);
          });
      if (!sub.ok()) return 1;
      r->subscriptions.push_back(*std::move(sub));
    }
  }

  // One second of readings from 100 sensors, 500 bytes each, ~2.5 MB/s.
  const std::string reading(500, 'r');
  const auto start = std::chrono::steady_clock::now();
  uint64_t written = 0;
  for (int tick = 1; tick <= 10; ++tick) {
    for (int i = 0; i < 500; ++i) {
      if (!stream->PutRecord("sensor-" + std::to_string(i % 100), reading).ok()) return 1;
      ++written;
    }
    std::this_thread::sleep_until(start + tick * std::chrono::milliseconds(100));
    std::printf("t=%4d ms  written %5llu |", tick * 100, static_cast<unsigned long long>(written));
    for (auto& r : readers) {
      std::printf("  %s %5llu (lag %4lld ms)", r->name.c_str(),
                  static_cast<unsigned long long>(r->records.load()),
                  static_cast<long long>(r->lag_ms.load()));
    }
    std::printf("\n");
  }
  // Let everyone catch up: the archiver is limited by its own budget and its
  // slow processing, not by the others.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool complete = false;
  while (!complete && std::chrono::steady_clock::now() < deadline) {
    complete = true;
    for (auto& r : readers) complete = complete && r->records.load() == written;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::printf("after catching up (%.1f s):",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  for (auto& r : readers) {
    std::printf("  %s %llu", r->name.c_str(), static_cast<unsigned long long>(r->records.load()));
  }
  std::printf("  of %llu\n", static_cast<unsigned long long>(written));
  return complete ? 0 : 1;
}
