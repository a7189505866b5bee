// Durable streams through the Stream API: records, lineage, consumers and
// retention survive a close and reopen; old records come from disk through
// GetRecords and Consumer; directory locking; disk faults.
#include <cerrno>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "catch2/catch.hpp"
#include "kinlet/kinlet.hpp"

namespace {

using kinlet::IteratorPosition;
using kinlet::ShardDescription;
using Stream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

// A fresh directory under the system's temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("kinlet-durable-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
                .string();
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

kinlet::StreamOptions Durable(const std::string& dir, int shards = 2) {
  kinlet::StreamOptions o;
  o.name = "durable";
  o.shard_count = shards;
  o.limits = kinlet::ThroughputLimits::Unlimited();
  o.storage.kind = kinlet::StorageKind::kDurable;
  o.storage.directory = dir;
  o.storage.segment_bytes = size_t{1} << 20;
  // A small ring: most reads of old records come from the segment files.
  o.shard_capacity_records = 64;
  return o;
}

// Every record of every shard, from TRIM_HORIZON, by shard id.
std::map<std::string, std::vector<kinlet::Record<std::string>>> ReadAll(Stream& s) {
  std::map<std::string, std::vector<kinlet::Record<std::string>>> out;
  absl::StatusOr<std::vector<ShardDescription>> shards = s.ListShards();
  REQUIRE(shards.ok());
  for (const ShardDescription& d : *shards) {
    absl::StatusOr<kinlet::ShardIterator> it =
        s.GetShardIterator(d.shard_id, IteratorPosition::TrimHorizon());
    REQUIRE(it.ok());
    std::vector<kinlet::Record<std::string>>& records = out[d.shard_id];
    for (;;) {
      absl::StatusOr<kinlet::GetRecordsResult<std::string>> page = s.GetRecords(*it, 100);
      REQUIRE(page.ok());
      for (auto& r : page->records) records.push_back(r);
      if (!page->next_shard_iterator || page->records.empty()) break;
      it = *page->next_shard_iterator;
    }
  }
  return out;
}

std::string Payload(int i) { return "payload-" + std::to_string(i) + std::string(i % 50, 'x'); }

}  // namespace

TEST_CASE("A durable stream reopens with every record and the same sequence numbers",
          "[storage][durable]") {
  TempDir dir;
  kinlet::ManualClock clock;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> written;  // by shard
  std::vector<std::pair<std::string, kinlet::SequenceNumber>> puts;  // shard id, number
  {
    absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(Durable(dir.path()), &clock);
    REQUIRE(s.ok());
    for (int i = 0; i < 500; ++i) {
      const std::string key = "key-" + std::to_string(i % 7);
      absl::StatusOr<kinlet::PutRecordResult> put = (*s)->PutRecord(key, Payload(i));
      REQUIRE(put.ok());
      puts.emplace_back(std::string(put->shard_id), put->sequence_number);
      written[std::string(put->shard_id)].emplace_back(key, Payload(i));
      if (i % 100 == 0) clock.Advance(absl::Seconds(1));
    }
    // Old records come back through the small ring's disk path already.
    auto before = ReadAll(**s);
    for (auto& [shard, records] : written) REQUIRE(before[shard].size() == records.size());
  }
  absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Open(dir.path(), Durable(dir.path()), &clock);
  REQUIRE(s.ok());
  CHECK((*s)->name() == "durable");
  auto after = ReadAll(**s);
  for (auto& [shard, records] : written) {
    REQUIRE(after[shard].size() == records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      CHECK(after[shard][i].partition_key == records[i].first);
      CHECK(after[shard][i].data == records[i].second);
      CHECK(after[shard][i].sequence_number.position() == i);
    }
  }
  // A sequence number issued before the reopen still names its record.
  const auto& [shard_id, sequence_number] = puts[123];
  absl::StatusOr<kinlet::ShardIterator> it =
      (*s)->GetShardIterator(shard_id, IteratorPosition::AtSequenceNumber(sequence_number));
  INFO(it.status().ToString());
  REQUIRE(it.ok());
  absl::StatusOr<kinlet::GetRecordsResult<std::string>> page = (*s)->GetRecords(*it, 1);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 1);
  CHECK(page->records[0].data == Payload(123));
  // New records continue after the stored ones.
  absl::StatusOr<kinlet::PutRecordResult> next = (*s)->PutRecord("key-0", "after reopen");
  REQUIRE(next.ok());
  CHECK(next->sequence_number.position() == written[std::string(next->shard_id)].size());
}

TEST_CASE("A durable stream keeps its lineage, consumers and retention across reshards",
          "[storage][durable]") {
  TempDir dir;
  kinlet::ManualClock clock;
  std::vector<ShardDescription> shards_before;
  std::vector<kinlet::StreamConsumerDescription> consumers_before;
  size_t records = 0;
  {
    absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(Durable(dir.path(), 2), &clock);
    REQUIRE(s.ok());
    auto put_some = [&](int n) {
      for (int i = 0; i < n; ++i) {
        REQUIRE((*s)->PutRecord("k" + std::to_string(records % 13), Payload(records)).ok());
        ++records;
      }
    };
    put_some(100);
    REQUIRE((*s)->SplitShard("shardId-000000000000", kinlet::HashKey(1) << 126).ok());
    put_some(100);
    REQUIRE((*s)->MergeShards("shardId-000000000002", "shardId-000000000003").ok());
    put_some(100);
    REQUIRE((*s)->UpdateShardCount(4).ok());
    put_some(100);
    REQUIRE((*s)->RegisterStreamConsumer("fan-out-app").ok());
    REQUIRE((*s)->AddTagsToStream({{"team", "telemetry"}, {"cost centre", "a=b\nc"}}).ok());
    REQUIRE((*s)->AddTagsToStream({{"temporary", ""}}).ok());
    const std::vector<std::string> remove = {"temporary"};
    REQUIRE((*s)->RemoveTagsFromStream(remove).ok());
    REQUIRE((*s)->IncreaseStreamRetentionPeriod(absl::Hours(48)).ok());
    shards_before = *(*s)->ListShards();
    consumers_before = *(*s)->ListStreamConsumers();
  }
  absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Open(dir.path(), Durable(dir.path()), &clock);
  REQUIRE(s.ok());
  std::vector<ShardDescription> shards_after = *(*s)->ListShards();
  REQUIRE(shards_after.size() == shards_before.size());
  for (size_t i = 0; i < shards_before.size(); ++i) {
    CHECK(shards_after[i].shard_id == shards_before[i].shard_id);
    CHECK(shards_after[i].parent_shard_id == shards_before[i].parent_shard_id);
    CHECK(shards_after[i].adjacent_parent_shard_id == shards_before[i].adjacent_parent_shard_id);
    CHECK(shards_after[i].hash_key_range == shards_before[i].hash_key_range);
    CHECK(shards_after[i].sequence_number_range.starting_sequence_number ==
          shards_before[i].sequence_number_range.starting_sequence_number);
    CHECK(shards_after[i].sequence_number_range.ending_sequence_number ==
          shards_before[i].sequence_number_range.ending_sequence_number);
  }
  CHECK((*s)->open_shard_count() == 4);
  CHECK((*s)->retention_period() == absl::Hours(48));
  const std::map<std::string, std::string> tags = *(*s)->ListTagsForStream();
  CHECK(tags ==
        std::map<std::string, std::string>{{"team", "telemetry"}, {"cost centre", "a=b\nc"}});
  std::vector<kinlet::StreamConsumerDescription> consumers_after = *(*s)->ListStreamConsumers();
  REQUIRE(consumers_after.size() == 1);
  CHECK(consumers_after[0].consumer_arn == consumers_before[0].consumer_arn);
  size_t total = 0;
  for (auto& [shard, recs] : ReadAll(**s)) total += recs.size();
  CHECK(total == records);
  // A closed shard still reports its children at its end.
  absl::StatusOr<kinlet::ShardIterator> it =
      (*s)->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  absl::StatusOr<kinlet::GetRecordsResult<std::string>> page = (*s)->GetRecords(*it, 10000);
  REQUIRE(page.ok());
  CHECK(!page->next_shard_iterator.has_value());
  CHECK(page->child_shards.size() == 2);
  // Resharding goes on with new shard ids after the stored ones.
  absl::Status split = (*s)->SplitShard(
      shards_after.back().shard_id, shards_after.back().hash_key_range.starting_hash_key + 1000);
  INFO(split.ToString());
  REQUIRE(split.ok());
}

TEST_CASE("Retention and ring capacity are independent on a durable stream", "[storage][durable]") {
  TempDir dir;
  kinlet::ManualClock clock;
  kinlet::StreamOptions o = Durable(dir.path(), 1);
  o.shard_capacity_records = 16;  // 16 records in memory, days on disk
  o.retention_period = absl::Hours(72);
  absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(o, &clock);
  REQUIRE(s.ok());
  for (int day = 0; day < 3; ++day) {
    for (int i = 0; i < 200; ++i) REQUIRE((*s)->PutRecord("k", Payload(day * 200 + i)).ok());
    clock.Advance(absl::Hours(24));
  }
  // Three days back: AT_TIMESTAMP two days ago finds the second day's first record.
  absl::StatusOr<kinlet::ShardIterator> it = (*s)->GetShardIterator(
      "shardId-000000000000", IteratorPosition::AtTimestamp(clock.Now() - absl::Hours(48)));
  REQUIRE(it.ok());
  absl::StatusOr<kinlet::GetRecordsResult<std::string>> page = (*s)->GetRecords(*it, 10);
  REQUIRE(page.ok());
  REQUIRE(!page->records.empty());
  CHECK(page->records[0].data == Payload(200));
  CHECK(page->millis_behind_latest > 0);
  // A day later the first day is past retention: TRIM_HORIZON starts after it.
  clock.Advance(absl::Hours(1));
  it = (*s)->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  page = (*s)->GetRecords(*it, 1);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 1);
  CHECK(page->records[0].data == Payload(200));
}

TEST_CASE("A durable stream's directory is locked and checked", "[storage][durable]") {
  TempDir dir;
  kinlet::ManualClock clock;
  absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(Durable(dir.path()), &clock);
  REQUIRE(s.ok());
  // Open twice: refused while the first is open.
  absl::StatusOr<std::unique_ptr<Stream>> again =
      Stream::Open(dir.path(), Durable(dir.path()), &clock);
  CHECK(kinlet::IsResourceInUse(again.status()));
  s->reset();
  // Create over an existing stream: refused.
  CHECK(kinlet::IsResourceInUse(Stream::Create(Durable(dir.path()), &clock).status()));
  // Another name: refused.
  kinlet::StreamOptions other = Durable(dir.path());
  other.name = "another";
  CHECK(kinlet::IsInvalidArgument(Stream::Open(dir.path(), other, &clock).status()));
  // Another payload type: refused.
  CHECK(kinlet::IsInvalidArgument(
      kinlet::Stream<int64_t, kinlet::ManualClockTraits>::Open(dir.path(), {}, &clock).status()));
  // No stream there.
  TempDir empty;
  CHECK(kinlet::IsResourceNotFound(Stream::Open(empty.path(), {}, &clock).status()));
  // No directory given.
  kinlet::StreamOptions none = Durable("");
  CHECK(kinlet::IsInvalidArgument(Stream::Create(none, &clock).status()));
  // Object payloads cannot be stored.
  struct Obj {
    std::string s;
    bool operator==(const Obj&) const = default;
  };
  TempDir objects;
  CHECK(kinlet::IsInvalidArgument(
      kinlet::Stream<Obj, kinlet::ManualClockTraits>::Create(Durable(objects.path()), &clock)
          .status()));
  // The registry reopens it under its stored name.
  kinlet::Registry<std::string, kinlet::ManualClockTraits> registry(&clock);
  absl::StatusOr<std::shared_ptr<Stream>> opened = registry.OpenStream(dir.path());
  REQUIRE(opened.ok());
  CHECK(registry.GetStream("durable").ok());
}

TEST_CASE("A trivially copyable payload is stored and read back", "[storage][durable]") {
  struct Tick {
    int64_t price;
    int32_t size;
    int32_t venue;
  };
  using TickStream = kinlet::Stream<Tick, kinlet::ManualClockTraits>;
  TempDir dir;
  kinlet::ManualClock clock;
  {
    absl::StatusOr<std::unique_ptr<TickStream>> s =
        TickStream::Create(Durable(dir.path(), 1), &clock);
    REQUIRE(s.ok());
    for (int i = 0; i < 300; ++i) REQUIRE((*s)->PutRecord("AAPL", Tick{1000 + i, i, 7}).ok());
  }
  absl::StatusOr<std::unique_ptr<TickStream>> s = TickStream::Open(dir.path(), {}, &clock);
  REQUIRE(s.ok());
  absl::StatusOr<kinlet::ShardIterator> it =
      (*s)->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  absl::StatusOr<kinlet::GetRecordsResult<Tick>> page = (*s)->GetRecords(*it, 10000);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 300);
  CHECK(page->records[299].data.price == 1299);
  CHECK(page->records[299].data.size == 299);
}

TEST_CASE("Disk faults give clear errors and lose nothing acknowledged", "[storage][durable]") {
  TempDir dir;
  kinlet::ManualClock clock;
  std::atomic<int> fail_sync{0};
  std::atomic<int> fail_allocate{0};
  kinlet::StreamOptions o = Durable(dir.path(), 1);
  o.storage.sync = kinlet::SyncPolicy::kEveryPut;
  o.storage.disk_faults = [&](kinlet::DiskOp op, const std::string&) {
    if (op == kinlet::DiskOp::kSync) return fail_sync.load();
    if (op == kinlet::DiskOp::kAllocate) return fail_allocate.load();
    return 0;
  };
  std::vector<std::string> acked;
  {
    absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(o, &clock);
    REQUIRE(s.ok());
    for (int i = 0; i < 50; ++i) {
      REQUIRE((*s)->PutRecord("k", Payload(i)).ok());
      acked.push_back(Payload(i));
    }
    // Out of space for a new segment: a reshard's new shards refuse writes
    // with StorageFailure; nothing is lost.
    fail_allocate = ENOSPC;
    REQUIRE((*s)->SplitShard("shardId-000000000000", kinlet::HashKey(1) << 127).ok());
    absl::StatusOr<kinlet::PutRecordResult> refused = (*s)->PutRecord("k", "no space");
    CHECK(kinlet::IsStorageFailure(refused.status()));
    CHECK(!kinlet::IsRetryableWriteError(refused.status()));
    fail_allocate = 0;
  }
  {
    // Reopened without the fault: every acknowledged record is there.
    o.storage.disk_faults = {};
    absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Open(dir.path(), o, &clock);
    REQUIRE(s.ok());
    auto all = ReadAll(**s);
    REQUIRE(all["shardId-000000000000"].size() == acked.size());
  }
  {
    // An fsync fails under kEveryPut: the put is not acknowledged, the shard
    // refuses writes from then on, and reads go on.
    TempDir dir2;
    kinlet::StreamOptions o2 = o;
    o2.storage.directory = dir2.path();
    o2.storage.disk_faults = [&](kinlet::DiskOp op, const std::string&) {
      return op == kinlet::DiskOp::kSync ? fail_sync.load() : 0;
    };
    absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(o2, &clock);
    REQUIRE(s.ok());
    REQUIRE((*s)->PutRecord("k", "before").ok());
    fail_sync = EIO;
    absl::StatusOr<kinlet::PutRecordResult> failed = (*s)->PutRecord("k", "during");
    CHECK(kinlet::IsStorageFailure(failed.status()));
    fail_sync = 0;
    CHECK(kinlet::IsStorageFailure((*s)->PutRecord("k", "after").status()));
    auto all = ReadAll(**s);
    REQUIRE(!all["shardId-000000000000"].empty());
    CHECK(all["shardId-000000000000"][0].data == "before");
  }
}

TEST_CASE("Group commit: concurrent writers share fsyncs and every record is kept",
          "[storage][durable]") {
  TempDir dir;
  kinlet::ManualClock clock;
  std::atomic<int> syncs{0};
  kinlet::StreamOptions o = Durable(dir.path(), 2);
  o.storage.sync = kinlet::SyncPolicy::kEveryPut;
  o.storage.disk_faults = [&](kinlet::DiskOp op, const std::string&) {
    if (op == kinlet::DiskOp::kSync) syncs.fetch_add(1);
    return 0;
  };
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  {
    absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(o, &clock);
    REQUIRE(s.ok());
    std::vector<std::thread> writers;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          if (!(*s)->PutRecord("w" + std::to_string(t), std::to_string(i)).ok()) ++failures;
        }
      });
    }
    for (std::thread& w : writers) w.join();
    REQUIRE(failures == 0);
  }
  o.storage.disk_faults = {};
  absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Open(dir.path(), o, &clock);
  REQUIRE(s.ok());
  std::map<std::string, int> next;  // per writer key: records in order
  size_t total = 0;
  for (auto& [shard, records] : ReadAll(**s)) {
    for (const auto& r : records) {
      CHECK(r.data == std::to_string(next[r.partition_key]++));
      ++total;
    }
  }
  CHECK(total == kThreads * kPerThread);
  // Every put was synced before it returned; some shared an fsync with
  // others only when they overlapped, so the count is at most one per put.
  CHECK(syncs.load() <= kThreads * kPerThread + 8);
  CHECK(syncs.load() > 0);
}

TEST_CASE("Stream tags follow AWS's limits", "[storage][durable]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions o;
  o.name = "tagged";
  absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(o, &clock);
  REQUIRE(s.ok());
  std::map<std::string, std::string> many;
  for (int i = 0; i < 50; ++i) many["k" + std::to_string(i)] = "v";
  REQUIRE((*s)->AddTagsToStream(many).ok());
  CHECK(kinlet::IsLimitExceeded((*s)->AddTagsToStream({{"one-more", "v"}})));
  CHECK((*s)->AddTagsToStream({{"k7", "replaced"}}).ok());  // replacing adds none
  CHECK((*s)->ListTagsForStream()->at("k7") == "replaced");
  CHECK(kinlet::IsInvalidArgument((*s)->AddTagsToStream({})));
  CHECK(kinlet::IsInvalidArgument((*s)->AddTagsToStream({{"", "v"}})));
  CHECK(kinlet::IsInvalidArgument((*s)->AddTagsToStream({{"k", std::string(257, 'v')}})));
  CHECK((*s)->ListTagsForStream()->size() == 50);
}
