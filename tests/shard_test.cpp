// Tests of kinlet/shard.hpp: a shard read directly, its metadata and stats.
#include "kinlet/shard.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "kinlet/stream.hpp"

namespace {
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
}

TEST_CASE("A shard read directly has the stream's iterator semantics", "[shard]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "direct";
  options.limits = kinlet::ThroughputLimits::Unlimited();  // limits are tested in limits_test
  options.shard_count = 2;
  options.shard_capacity_bytes = 4 << 20;
  auto stream = *TestStream::Create(options, &clock);
  auto shards = stream->OpenShards();
  REQUIRE(shards.size() == 2);
  auto shard = shards[1];
  CHECK(shard->shard_id() == "shardId-000000000001");
  CHECK(shard->index() == 1);
  CHECK(shard->is_open());
  CHECK_FALSE(shard->ending_sequence_number().has_value());
  CHECK(shard->hash_key_range() == kinlet::InitialHashKeyRanges(2)[1]);
  kinlet::PutRecordOptions to1;
  to1.explicit_hash_key = kinlet::kMaxHashKey;
  auto put = stream->PutRecord("k", "direct-read", to1);
  REQUIRE(put->shard_id == shard->shard_id());
  auto it = shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  kinlet::GetRecordsResult<std::string> page;
  REQUIRE(shard->GetRecords(*it, 10, &page).ok());
  REQUIRE(page.records.size() == 1);
  CHECK(page.records[0].data == "direct-read");
  CHECK(page.records[0].sequence_number == put->sequence_number);
  SECTION("an iterator of a sibling shard is rejected") {
    auto sibling = shards[0]->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
    CHECK(kinlet::IsInvalidArgument(shard->GetRecords(*sibling, 1, &page)));
  }
  SECTION("stats count what the shard holds") {
    auto stats = shard->stats();
    CHECK(stats.end_position == 1);
    CHECK(stats.records_stored == 1);
    CHECK(stats.ring_bytes_in_use == 16);  // 1 + 11 bytes packed, rounded to 8
    CHECK(stats.ring_capacity_bytes == 4 << 20);
    CHECK(stats.ring_capacity_records == 1 << 16);
  }
  SECTION("a reused page keeps its record buffers") {
    REQUIRE(stream->PutRecord("k", std::string(100, 'y'), to1).ok());
    REQUIRE(shard->GetRecords(*it, 10, &page).ok());
    REQUIRE(page.records.size() == 2);
    const char* buffer = page.records[1].data.data();
    REQUIRE(shard->GetRecords(*page.next_shard_iterator, 10, &page).ok());
    CHECK(page.records.empty());
    REQUIRE(shard->GetRecords(*it, 10, &page).ok());
    CHECK(page.records[1].data.data() == buffer);
  }
}

TEST_CASE("ShardIdFor pads to twelve digits", "[shard]") {
  CHECK(kinlet::ShardIdFor(0) == "shardId-000000000000");
  CHECK(kinlet::ShardIdFor(123) == "shardId-000000000123");
}

TEST_CASE("WaitForRecords blocks until a put publishes, and times out otherwise",
          "[shard][concurrency]") {
  kinlet::StreamOptions options;
  options.name = "waiting";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  auto stream = *kinlet::Stream<std::string>::Create(options);
  auto shard = stream->OpenShards()[0];
  auto it = *shard->GetShardIterator(kinlet::IteratorPosition::Latest());
  CHECK_FALSE(shard->WaitForRecords(it, absl::Milliseconds(1)));
  SECTION("a put from another thread wakes the waiter") {
    std::atomic<bool> woke{false};
    std::thread reader([&] { woke = shard->WaitForRecords(it, absl::Seconds(30)); });
    REQUIRE(stream->PutRecord("k", "v").ok());
    reader.join();
    CHECK(woke.load());
    CHECK(stream->GetRecords(it, 10)->records.size() == 1);
    CHECK(stream->WaitForRecords(it, absl::ZeroDuration()));  // already there
  }
  SECTION("deleting the stream wakes the waiter") {
    std::atomic<bool> woke{false};
    std::thread reader([&] { woke = shard->WaitForRecords(it, absl::Seconds(30)); });
    stream->MarkDeleted();
    reader.join();
    CHECK(woke.load());
  }
}

TEST_CASE("HasRecords says whether GetRecords has something new: records, a shard end", "[shard]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "has-records";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  auto stream = std::move(*TestStream::Create(options, &clock));
  auto shard = stream->OpenShards()[0];
  auto it = *shard->GetShardIterator(kinlet::IteratorPosition::Latest());
  CHECK_FALSE(shard->HasRecords(it));
  CHECK_FALSE(stream->HasRecords(it));
  REQUIRE(stream->PutRecord("k", "v").ok());
  CHECK(shard->HasRecords(it));
  CHECK(stream->HasRecords(it));
  auto page = *stream->GetRecords(it, 10);
  REQUIRE(page.records.size() == 1);
  it = *page.next_shard_iterator;
  CHECK_FALSE(shard->HasRecords(it));  // caught up again

  SECTION("a closed shard has its end to report") {
    REQUIRE(stream->SplitShard(shard->shard_id(), kinlet::kMaxHashKey / 2).ok());
    CHECK(shard->HasRecords(it));
    CHECK(stream->GetRecords(it, 10)->child_shards.size() == 2);
  }
  SECTION("an iterator of another stream has nothing here") {
    auto other = std::move(*TestStream::Create(options, &clock));
    auto foreign = *other->OpenShards()[0]->GetShardIterator(kinlet::IteratorPosition::Latest());
    REQUIRE(other->PutRecord("k", "v").ok());
    CHECK_FALSE(stream->HasRecords(foreign));
    CHECK(other->HasRecords(foreign));
  }
}

namespace {
struct Lean : kinlet::SingleWriterTraits {
  static constexpr bool kMetrics = false;
};
}  // namespace

TEST_CASE("Single-writer and no-metrics traits keep the stream's semantics", "[shard]") {
  kinlet::StreamOptions options;
  options.name = "lean";
  options.shard_count = 2;
  options.limits = kinlet::ThroughputLimits::Unlimited();
  auto stream = *kinlet::Stream<std::string, Lean>::Create(options);
  for (int i = 0; i < 100; ++i) REQUIRE(stream->PutRecord("k" + std::to_string(i), "v").ok());
  size_t read = 0;
  for (const auto& shard : stream->OpenShards()) {
    auto page =
        shard->GetRecords(*shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon()));
    REQUIRE(page.ok());
    read += page->records.size();
  }
  CHECK(read == 100);
  const auto m = stream->GetMetrics();
  CHECK(m.totals.incoming_records == 0);  // compiled out
  CHECK(m.totals.records_stored == 100);  // ring occupancy is still reported
}
