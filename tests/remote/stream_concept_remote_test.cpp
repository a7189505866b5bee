// One concept for both (issue 16): kinlet::remote::RemoteStream satisfies
// KinesisStream and FanOutStream, and the generic StreamConsumer and
// StreamConsumerGroup read every record put over it, against an in-process
// kinlet gateway, in per-shard (and per-key) order, across a SplitShard
// (children after their parent), polling with GetRecords and reading with
// SubscribeToShard.
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "kinlet/consumer.hpp"
#include "kinlet/consumer_group.hpp"
#include "kinlet/gateway/gateway.hpp"
#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/remote/remote_registry.hpp"
#include "kinlet/stream_concept.hpp"
#include "local_endpoint.hpp"
#include "test_credentials.hpp"

namespace {

using kinlet::remote::RemoteStream;

static_assert(kinlet::KinesisStream<RemoteStream>);
static_assert(kinlet::FanOutStream<RemoteStream>);
static_assert(!kinlet::InProcessStream<RemoteStream>);
static_assert(std::is_same_v<kinlet::StreamPayloadT<RemoteStream>, std::string>);
static_assert(
    std::is_same_v<kinlet::StreamIteratorT<RemoteStream>, kinlet::remote::RemoteShardIterator>);

constexpr int kKeys = 16;
constexpr int kPerKey = 20;  // half before the split, half after

using Endpoint = kinlet_test::LocalEndpoint;

std::string Key(int k) { return "key-" + std::to_string(k); }

// Puts records n = first..last-1 of every key (payload "<key> <n>"), key by
// key interleaved, in PutRecords batches: each key's records in order.
void Put(RemoteStream& stream, int first, int last) {
  std::vector<std::pair<std::string, std::string>> records;  // entries view these
  for (int n = first; n < last; ++n) {
    for (int k = 0; k < kKeys; ++k) records.emplace_back(Key(k), Key(k) + " " + std::to_string(n));
  }
  for (size_t at = 0; at < records.size(); at += 64) {
    std::vector<RemoteStream::Entry> entries;
    for (size_t i = at; i < std::min(records.size(), at + 64); ++i) {
      RemoteStream::Entry entry;
      entry.partition_key = records[i].first;
      entry.data = records[i].second;
      entries.push_back(entry);
    }
    kinlet::PutRecordsResult result;
    REQUIRE(stream.PutRecords(entries, &result).ok());
    REQUIRE(result.failed_record_count == 0);
  }
}

// Splits the stream's first shard in the middle of its hash key range;
// returns its id.
std::string SplitFirstShard(RemoteStream& stream) {
  auto shards = stream.ListShards();
  REQUIRE(shards.ok());
  const kinlet::ShardDescription& parent = shards->front();
  const kinlet::HashKeyRange& range = parent.hash_key_range;
  const kinlet::HashKey middle =
      range.starting_hash_key + (range.ending_hash_key - range.starting_hash_key) / 2 + 1;
  absl::Status split = stream.SplitShard(parent.shard_id, middle);
  INFO(split.ToString());
  REQUIRE(split.ok());
  return parent.shard_id;
}

// "<key> <n>" -> (key, n); n = -1 for anything else (which no expected set
// holds). No Catch2 assertion: processors call it on the groups' threads.
std::pair<std::string, int> Parse(const std::string& data) {
  std::vector<std::string> parts = absl::StrSplit(data, ' ');
  int n = -1;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &n)) return {data, -1};
  return {parts[0], n};
}

// What a reader saw, in the order it saw it.
struct Seen {
  struct Item {
    int reader = 0;  // the consumer or processor instance
    std::string shard;
    std::string key;
    int n = 0;
    kinlet::SequenceNumber sequence_number;
    bool shard_end = false;  // the shard was reported ended here (no record)
  };
  std::mutex mu;
  std::vector<Item> items;

  std::set<std::pair<std::string, int>> Records() {
    std::lock_guard<std::mutex> lock(mu);
    std::set<std::pair<std::string, int>> out;
    for (const Item& i : items) {
      if (!i.shard_end) out.emplace(i.key, i.n);
    }
    return out;
  }
};

// Per reader instance: a key's records come in put order without gaps
// (consecutive n: a reader resumes after a checkpoint, then reads in order)
// and a shard's sequence numbers increase. Then: no child record was seen
// before its parent `parent` was reported ended, and every record was seen.
void CheckOrder(Seen& seen, const std::string& parent, const std::set<std::string>& children) {
  std::lock_guard<std::mutex> lock(seen.mu);
  std::map<std::pair<int, std::string>, int> last_n;                       // (reader, key) -> n
  std::map<std::pair<int, std::string>, kinlet::SequenceNumber> last_seq;  // (reader, shard)
  bool parent_ended = false;
  size_t child_records_before_end = 0;
  for (const Seen::Item& i : seen.items) {
    if (i.shard_end) {
      if (i.shard == parent) parent_ended = true;
      continue;
    }
    if (children.contains(i.shard) && !parent_ended) ++child_records_before_end;
    auto [n, first_n] = last_n.try_emplace({i.reader, i.key}, i.n);
    if (!first_n) {
      INFO(i.key << " after " << n->second << " came " << i.n << " (reader " << i.reader << ")");
      CHECK(i.n == n->second + 1);
      n->second = i.n;
    }
    auto [s, first_s] = last_seq.try_emplace({i.reader, i.shard}, i.sequence_number);
    if (!first_s) {
      CHECK(s->second < i.sequence_number);
      s->second = i.sequence_number;
    }
  }
  CHECK(parent_ended);
  CHECK(child_records_before_end == 0);
}

std::set<std::pair<std::string, int>> Expected() {
  std::set<std::pair<std::string, int>> all;
  for (int k = 0; k < kKeys; ++k) {
    for (int n = 0; n < kPerKey; ++n) all.emplace(Key(k), n);
  }
  return all;
}

std::set<std::string> ChildrenOf(RemoteStream& stream, const std::string& parent) {
  auto shards = stream.ListShards();
  REQUIRE(shards.ok());
  std::set<std::string> children;
  for (const kinlet::ShardDescription& d : *shards) {
    if (d.parent_shard_id == parent) children.insert(d.shard_id);
  }
  REQUIRE(children.size() == 2);
  return children;
}

void ConsumerScenario(Endpoint& e, const std::string& name, bool fan_out) {
  std::shared_ptr<RemoteStream> stream = e.Create(name, 2);
  kinlet::ConsumerOptions options;
  options.batch_limit = 50;
  if (fan_out) {
    REQUIRE(stream->RegisterStreamConsumer("reader").ok());
    options.fan_out_consumer = "reader";
  }
  Put(*stream, 0, kPerKey / 2);
  auto consumer = kinlet::MakeConsumer(stream.get(), options);
  INFO(consumer.status().ToString());
  REQUIRE(consumer.ok());
  static_assert(std::is_same_v<decltype(consumer)::value_type::element_type,
                               kinlet::StreamConsumer<RemoteStream>>);

  Seen seen;
  std::string parent;
  std::set<std::string> children;
  const size_t total = size_t{kKeys} * kPerKey;
  kinlet::StreamConsumer<RemoteStream>::Batch batch;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  size_t delivered = 0;
  while (delivered < total && std::chrono::steady_clock::now() < deadline) {
    absl::Status s = (*consumer)->Poll(&batch);
    INFO(s.ToString());
    REQUIRE(s.ok());
    for (const auto& r : batch.records()) {
      auto [key, n] = Parse(r.data);
      seen.items.push_back({0, std::string(batch.shard_id), key, n, r.sequence_number, false});
      ++delivered;
    }
    if (batch.shard_ended) {
      seen.items.push_back({0, std::string(batch.shard_id), "", 0, {}, true});
    }
    if (parent.empty() && delivered >= total / 4) {
      // Mid-read: split a shard, then write the second half.
      parent = SplitFirstShard(*stream);
      children = ChildrenOf(*stream, parent);
      Put(*stream, kPerKey / 2, kPerKey);
    }
    if (batch.records().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE_FALSE(parent.empty());
  // Exactly once: one consumer, no failures.
  CHECK(delivered == total);
  CHECK(seen.Records() == Expected());
  CheckOrder(seen, parent, children);
  // The children are followed once the parent ended.
  std::vector<std::string> followed = (*consumer)->FollowedShards();
  for (const std::string& child : children) {
    CHECK(std::find(followed.begin(), followed.end(), child) != followed.end());
  }
  CHECK(std::find(followed.begin(), followed.end(), parent) == followed.end());
}

// A processor that logs what it sees into `seen` and checkpoints each batch.
class LoggingProcessor : public kinlet::RecordProcessor<std::string> {
 public:
  LoggingProcessor(Seen* seen, int id) : seen_(seen), id_(id) {}
  void ProcessRecords(const kinlet::ProcessRecordsInput<std::string>& input,
                      kinlet::Checkpointer& checkpointer) override {
    {
      std::lock_guard<std::mutex> lock(seen_->mu);
      for (const auto& r : input.records) {
        auto [key, n] = Parse(r.data);
        seen_->items.push_back(
            {id_, std::string(input.shard_id), key, n, r.sequence_number, false});
      }
    }
    (void)checkpointer.Checkpoint();
  }
  void Initialize(const kinlet::InitializationInput& input) override { shard_ = input.shard_id; }
  void ShardEnded(kinlet::Checkpointer& checkpointer) override {
    if (checkpointer.Checkpoint().ok()) {
      std::lock_guard<std::mutex> lock(seen_->mu);
      seen_->items.push_back({id_, shard_, "", 0, {}, true});
    }
  }
  void ShutdownRequested(kinlet::Checkpointer& checkpointer) override {
    (void)checkpointer.Checkpoint();
  }

 private:
  Seen* seen_;
  int id_;
  std::string shard_;
};

void GroupScenario(Endpoint& e, const std::string& name, bool fan_out, int workers) {
  std::shared_ptr<RemoteStream> stream = e.Create(name, 2);
  Put(*stream, 0, kPerKey / 2);
  kinlet::InMemoryCheckpointStore store;
  Seen seen;
  std::atomic<int> next_id{0};
  std::vector<std::unique_ptr<kinlet::StreamConsumerGroup<RemoteStream>>> group;
  for (int w = 0; w < workers; ++w) {
    kinlet::ConsumerGroupOptions options;
    options.application_name = name + "-app";
    options.worker_id = "worker-" + std::to_string(w);
    options.max_records = 25;
    options.enhanced_fan_out = fan_out;
    options.shard_sync_interval = absl::Milliseconds(200);
    options.idle_time_between_reads = absl::Milliseconds(2);
    auto worker = kinlet::MakeConsumerGroup(
        stream.get(), &store,
        [&seen, &next_id] { return std::make_unique<LoggingProcessor>(&seen, next_id++); },
        options);
    INFO(worker.status().ToString());
    REQUIRE(worker.ok());
    (*worker)->Start();
    group.push_back(*std::move(worker));
  }
  auto wait_for = [&](size_t records) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (seen.Records().size() < records && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return seen.Records().size();
  };
  const size_t total = size_t{kKeys} * kPerKey;
  CHECK(wait_for(total / 4) >= total / 4);
  const std::string parent = SplitFirstShard(*stream);
  const std::set<std::string> children = ChildrenOf(*stream, parent);
  Put(*stream, kPerKey / 2, kPerKey);
  CHECK(wait_for(total) == total);
  for (auto& worker : group) {
    INFO(worker->stats().last_error);
    CHECK(worker->RequestShutdown().get().ok());
  }
  CHECK(seen.Records() == Expected());
  CheckOrder(seen, parent, children);
  // Every lease released; the children's checkpoints are past TRIM_HORIZON.
  auto leases = store.ListLeases();
  REQUIRE(leases.ok());
  for (const kinlet::Lease& lease : *leases) {
    CHECK(lease.owner.empty());
    if (children.contains(lease.lease_key)) CHECK(lease.checkpoint != "TRIM_HORIZON");
  }
}

}  // namespace

TEST_CASE("StreamConsumer<RemoteStream> polling reads every record across a split",
          "[remote][remote-concept]") {
  Endpoint e;
  ConsumerScenario(e, "concept-poll", /*fan_out=*/false);
}

TEST_CASE("StreamConsumer<RemoteStream> with SubscribeToShard reads every record across a split",
          "[remote][remote-concept]") {
  Endpoint e;
  ConsumerScenario(e, "concept-fan-out", /*fan_out=*/true);
}

TEST_CASE("StreamConsumerGroup<RemoteStream> polling, two workers, across a split",
          "[remote][remote-concept]") {
  Endpoint e;
  GroupScenario(e, "group-poll", /*fan_out=*/false, /*workers=*/2);
}

TEST_CASE("StreamConsumerGroup<RemoteStream> with enhanced fan-out across a split",
          "[remote][remote-concept]") {
  Endpoint e;
  GroupScenario(e, "group-fan-out", /*fan_out=*/true, /*workers=*/1);
}
