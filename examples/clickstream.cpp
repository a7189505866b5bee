// clickstream: the main example. Producers put click events to a 4-shard
// stream, a consumer reads every shard, and a replay starts again from a
// sequence number remembered earlier.
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/kinlet.hpp"

int main() {
  kinlet::Registry<std::string> registry;
  kinlet::StreamOptions options;
  options.name = "clickstream-data";
  // In-process speed. Remove this line for Kinesis's per-shard limits
  // (1 MiB/s and 1,000 records/s of writes per shard; see examples/throttling.cpp).
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 4;
  auto created = registry.CreateStream(options);
  if (!created.ok()) {
    std::fprintf(stderr, "CreateStream: %s\n", created.status().ToString().c_str());
    return 1;
  }
  kinlet::Stream<std::string>& stream = **created;

  // The first event, put as with the AWS SDK's PutRecord.
  auto put = stream.PutRecord("user123", R"({"user":"abinaya","event":"viewed_product"})");
  if (!put.ok()) {
    std::fprintf(stderr, "PutRecord: %s\n", put.status().ToString().c_str());
    return 1;
  }
  std::printf("PutRecord user123 -> %.*s, sequence number %s\n",
              static_cast<int>(put->shard_id.size()), put->shard_id.data(),
              put->sequence_number.ToString().c_str());
  const kinlet::SequenceNumber remembered = put->sequence_number;
  const std::string remembered_shard(put->shard_id);

  // Several producers, each a thread with its own users.
  constexpr int kProducers = 3;
  constexpr int kEventsPerProducer = 1000;
  const char* kEvents[] = {"viewed_product", "added_to_cart", "checked_out"};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&stream, &kEvents, p] {
      for (int i = 0; i < kEventsPerProducer; ++i) {
        const std::string user = "user" + std::to_string(p * 10 + i % 10);
        const std::string event = std::string(R"({"user":")") + user + R"(","event":")" +
                                  kEvents[i % 3] + R"(","n":)" + std::to_string(i) + "}";
        auto r = stream.PutRecord(user, event);
        if (!r.ok()) std::fprintf(stderr, "PutRecord: %s\n", r.status().ToString().c_str());
      }
    });
  }
  for (auto& t : producers) t.join();

  // One consumer reads every shard from the trim horizon.
  auto consumer = kinlet::Consumer<std::string>::Create(&stream, {});
  if (!consumer.ok()) {
    std::fprintf(stderr, "Consumer: %s\n", consumer.status().ToString().c_str());
    return 1;
  }
  std::map<std::string, int> per_shard;
  std::map<std::string, int> per_event;
  kinlet::ConsumerBatch<std::string> batch;
  int total = 0;
  for (;;) {
    if (absl::Status s = (*consumer)->Poll(&batch); !s.ok()) {
      std::fprintf(stderr, "Poll: %s\n", s.ToString().c_str());
      return 1;
    }
    if (batch.records().empty()) break;  // every shard is caught up
    for (const auto& record : batch.records()) {
      ++per_shard[std::string(batch.shard_id)];
      for (const char* e : kEvents) {
        if (record.data.find(e) != std::string::npos) ++per_event[e];
      }
      ++total;
    }
  }
  std::printf("Consumer read %d records from %zu shards:\n", total, per_shard.size());
  for (const auto& [shard, n] : per_shard) std::printf("  %s  %5d records\n", shard.c_str(), n);
  for (const auto& [event, n] : per_event) std::printf("  %-15s %5d\n", event.c_str(), n);

  // Replay from the remembered sequence number.
  auto it = stream.GetShardIterator(remembered_shard,
                                    kinlet::IteratorPosition::AtSequenceNumber(remembered));
  if (!it.ok()) {
    std::fprintf(stderr, "GetShardIterator: %s\n", it.status().ToString().c_str());
    return 1;
  }
  auto page = stream.GetRecords(*it, /*limit=*/3);
  if (!page.ok()) {
    std::fprintf(stderr, "GetRecords: %s\n", page.status().ToString().c_str());
    return 1;
  }
  std::printf("Replay of %s from %s:\n", remembered_shard.c_str(), remembered.ToString().c_str());
  for (const auto& record : page->records) {
    std::printf("  %s  %-7s %s\n", record.sequence_number.ToString().c_str(),
                record.partition_key.c_str(), record.data.c_str());
  }
  const bool ok = total == 1 + kProducers * kEventsPerProducer && !page->records.empty() &&
                  page->records[0].partition_key == "user123";
  std::printf("%s\n", ok ? "OK: every record read once, replay starts at the remembered record"
                         : "MISMATCH");
  return ok ? 0 : 1;
}
