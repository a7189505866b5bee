// fanout: a telemetry stream with three registered consumers reading the same
// shards at their own pace, each with its own read budget: an alerting
// consumer (fast), an aggregator (a little slower) and an archiver (slow).
// Every consumer sees every record; the slow one falls behind (its lag grows)
// without slowing the producer or the others. Prints each consumer's lag.
// The alerting consumer's work is short, so it takes zero-copy events (views of
// the shard's stored bytes, valid during the callback); the slow ones take
// copied events, which they may keep as long as they like.
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
using EventView = kinlet::SubscribeToShardEventView<std::string>;

struct Reader {
  Reader(std::string n, std::chrono::microseconds work)
      : name(std::move(n)), work_per_event(work) {}
  std::string name;
  std::chrono::microseconds work_per_event;  // how long it takes over each event
  std::atomic<uint64_t> records{0};
  std::atomic<int64_t> lag_ms{0};
  std::atomic<uint64_t> alerts{0};  // the alerting consumer's finds
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
    for (const auto& shard : stream->OpenShards()) {
      Reader* r = reader.get();
      const auto start = kinlet::IteratorPosition::TrimHorizon();
      auto sub = r->work_per_event.count() == 0
                     ? stream->SubscribeToShard(r->name, shard->shard_id(), start,
                                                [r](const EventView& event) {  // zero-copy
                                                  for (const auto& record : event.records) {
                                                    if (record.data.front() == '!') ++r->alerts;
                                                  }
                                                  r->records.fetch_add(event.records.size());
                                                  r->lag_ms.store(event.millis_behind_latest);
                                                })
                     : stream->SubscribeToShard(r->name, shard->shard_id(), start,
                                                [r](const Event& event) {  // copies
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
  const std::string alarm = "!" + std::string(499, 'r');  // one reading in 1,000 is an alarm
  const auto start = std::chrono::steady_clock::now();
  uint64_t written = 0;
  for (int tick = 1; tick <= 10; ++tick) {
    for (int i = 0; i < 500; ++i) {
      const std::string& data = written % 1000 == 999 ? alarm : reading;
      if (!stream->PutRecord("sensor-" + std::to_string(i % 100), data).ok()) return 1;
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
  std::printf("  of %llu; alerting found %llu alarms\n", static_cast<unsigned long long>(written),
              static_cast<unsigned long long>(readers[0]->alerts.load()));
  return complete ? 0 : 1;
}
