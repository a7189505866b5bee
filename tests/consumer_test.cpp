// Tests of kinlet/consumer.hpp: following shards, positions, resume, iterator
// renewal and trimmed-data policies.
#include "kinlet/consumer.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

namespace {

using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using TestConsumer = kinlet::Consumer<std::string, kinlet::ManualClockTraits>;

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock, int shards,
                                       size_t capacity_records = 1024,
                                       kinlet::FullPolicy policy = kinlet::FullPolicy::kReject) {
  kinlet::StreamOptions options;
  options.name = "consumed";
  options.limits = kinlet::ThroughputLimits::Unlimited();  // limits are tested in limits_test
  options.shard_count = shards;
  options.shard_capacity_bytes = 4 << 20;
  options.shard_capacity_records = capacity_records;
  options.full_policy = policy;
  return std::move(*TestStream::Create(options, clock));
}

// Polls until three polls in a row return nothing; returns the data in the
// order the consumer delivered it.
std::vector<std::string> DrainInOrder(TestConsumer& consumer) {
  std::vector<std::string> order;
  kinlet::ConsumerBatch<std::string> batch;
  for (int idle = 0; idle < 3;) {
    REQUIRE(consumer.Poll(&batch).ok());
    if (batch.records().empty()) {
      ++idle;
      continue;
    }
    idle = 0;
    for (const auto& r : batch.records()) order.push_back(r.data);
  }
  return order;
}

// Polls until a full round returns nothing; returns data per shard.
std::map<std::string, std::vector<std::string>> Drain(TestConsumer& consumer) {
  std::map<std::string, std::vector<std::string>> out;
  kinlet::ConsumerBatch<std::string> batch;
  for (int idle = 0; idle < 2;) {
    REQUIRE(consumer.Poll(&batch).ok());
    if (batch.records().empty()) {
      ++idle;
      continue;
    }
    idle = 0;
    for (const auto& r : batch.records()) out[std::string(batch.shard_id)].push_back(r.data);
  }
  return out;
}

}  // namespace

TEST_CASE("A consumer reads every shard, in order per shard", "[consumer]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 4);
  std::map<std::string, std::vector<std::string>> expected;
  for (int i = 0; i < 200; ++i) {
    auto put = stream->PutRecord("key-" + std::to_string(i % 17), std::to_string(i));
    expected[std::string(put->shard_id)].push_back(std::to_string(i));
  }
  kinlet::ConsumerOptions options;
  options.batch_limit = 7;
  auto consumer = TestConsumer::Create(stream.get(), options);
  REQUIRE(consumer.ok());
  CHECK((*consumer)->FollowedShards().size() == 4);
  CHECK(Drain(**consumer) == expected);
  SECTION("it keeps reading what arrives later") {
    auto put = stream->PutRecord("late", "late-record");
    auto more = Drain(**consumer);
    REQUIRE(more[std::string(put->shard_id)].size() == 1);
    CHECK((*consumer)->LastSequenceNumber(put->shard_id) == put->sequence_number);
  }
}

TEST_CASE("A consumer resumes after its checkpoints", "[consumer]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  for (int i = 0; i < 50; ++i) REQUIRE(stream->PutRecord("k" + std::to_string(i), "a").ok());
  auto first = *TestConsumer::Create(stream.get(), {});
  size_t read = 0;
  for (auto& [shard, data] : Drain(*first)) read += data.size();
  CHECK(read == 50);
  auto checkpoints = first->Checkpoints();
  CHECK(checkpoints.size() == 2);
  for (int i = 0; i < 30; ++i) REQUIRE(stream->PutRecord("k" + std::to_string(i), "b").ok());
  kinlet::ConsumerOptions options;
  options.resume_after = checkpoints;
  auto second = *TestConsumer::Create(stream.get(), options);
  size_t resumed = 0;
  for (auto& [shard, data] : Drain(*second)) {
    for (auto& d : data) CHECK(d == "b");
    resumed += data.size();
  }
  CHECK(resumed == 30);
}

TEST_CASE("A consumer can follow chosen shards and start at LATEST", "[consumer]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  REQUIRE(stream->PutRecord("k", "before").ok());
  kinlet::ConsumerOptions options;
  options.shard_ids = {"shardId-000000000001"};
  options.start = kinlet::IteratorPosition::Latest();
  auto consumer = *TestConsumer::Create(stream.get(), options);
  CHECK(consumer->FollowedShards() == std::vector<std::string>{"shardId-000000000001"});
  kinlet::PutRecordOptions to1;
  to1.explicit_hash_key = kinlet::kMaxHashKey;
  kinlet::PutRecordOptions to0;
  to0.explicit_hash_key = 0;
  REQUIRE(stream->PutRecord("k", "one", to1).ok());
  REQUIRE(stream->PutRecord("k", "zero", to0).ok());
  auto got = Drain(*consumer);
  REQUIRE(got.size() == 1);
  CHECK(got["shardId-000000000001"] == std::vector<std::string>{"one"});
  SECTION("bad options are rejected") {
    options.shard_ids = {"shardId-000000000009"};
    CHECK(kinlet::IsResourceNotFound(TestConsumer::Create(stream.get(), options).status()));
    options.shard_ids = {};
    options.batch_limit = 0;
    CHECK(kinlet::IsInvalidArgument(TestConsumer::Create(stream.get(), options).status()));
  }
}

TEST_CASE("A consumer renews expired iterators without losing its place", "[consumer]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  REQUIRE(stream->PutRecord("k", "1").ok());
  auto consumer = *TestConsumer::Create(stream.get(), {});
  CHECK(Drain(*consumer)["shardId-000000000000"].size() == 1);
  clock.Advance(absl::Minutes(10));
  REQUIRE(stream->PutRecord("k", "2").ok());
  auto got = Drain(*consumer);
  CHECK(got["shardId-000000000000"] == std::vector<std::string>{"2"});
  SECTION("also before anything was read") {
    auto fresh = *TestConsumer::Create(stream.get(), {});
    clock.Advance(absl::Minutes(10));
    CHECK(Drain(*fresh)["shardId-000000000000"] == std::vector<std::string>{"1", "2"});
  }
}

TEST_CASE("A consumer reports or skips trimmed data per its policy", "[consumer]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1, 8, kinlet::FullPolicy::kOverwrite);
  REQUIRE(stream->PutRecord("k", "0").ok());
  kinlet::ConsumerOptions options;
  SECTION("kReport returns TrimmedDataAccess until the caller seeks") {
    auto consumer = *TestConsumer::Create(stream.get(), options);
    for (int i = 1; i < 20; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
    kinlet::ConsumerBatch<std::string> batch;
    CHECK(kinlet::IsTrimmedDataAccess(consumer->Poll(&batch)));
    CHECK(kinlet::IsTrimmedDataAccess(consumer->Poll(&batch)));
    auto skipped = consumer->SeekToTrimHorizon("shardId-000000000000");
    REQUIRE(skipped.ok());
    CHECK(*skipped == 12);
    auto got = Drain(*consumer);
    CHECK(got["shardId-000000000000"].front() == "12");
    CHECK(got["shardId-000000000000"].size() == 8);
  }
  SECTION("kSkipToTrimHorizon continues and counts the loss exactly") {
    options.on_trimmed = kinlet::TrimmedPolicy::kSkipToTrimHorizon;
    auto consumer = *TestConsumer::Create(stream.get(), options);
    for (int i = 1; i < 20; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
    kinlet::ConsumerBatch<std::string> batch;
    REQUIRE(consumer->Poll(&batch).ok());
    CHECK(batch.trimmed_records_skipped == 12);
    REQUIRE_FALSE(batch.records().empty());
    CHECK(batch.records().front().data == "12");
    CHECK(consumer->trimmed_records_skipped() == 12);
  }
}

TEST_CASE("A consumer of a deleted stream gets ResourceNotFound", "[consumer]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  auto consumer = *TestConsumer::Create(stream.get(), {});
  stream->MarkDeleted();
  kinlet::ConsumerBatch<std::string> batch;
  CHECK(kinlet::IsResourceNotFound(consumer->Poll(&batch)));
  CHECK(kinlet::IsResourceNotFound(TestConsumer::Create(stream.get(), {}).status()));
}

TEST_CASE("A consumer reads a split parent to its end before its children", "[consumer][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  auto consumer = *TestConsumer::Create(stream.get(), {});
  for (int i = 0; i < 5; ++i) REQUIRE(stream->PutRecord("key", "before-" + std::to_string(i)).ok());
  REQUIRE(stream->SplitShard("shardId-000000000000", kinlet::kMaxHashKey / 2).ok());
  for (int i = 0; i < 5; ++i) REQUIRE(stream->PutRecord("key", "after-" + std::to_string(i)).ok());
  const std::vector<std::string> order = DrainInOrder(*consumer);
  // One partition key: its records stay in order across the reshard.
  CHECK(order == std::vector<std::string>{"before-0", "before-1", "before-2", "before-3",
                                          "before-4", "after-0", "after-1", "after-2", "after-3",
                                          "after-4"});
  CHECK(consumer->FollowedShards().size() == 2);  // the children; the parent is done
}

TEST_CASE("A consumer told not to follow lineage stops at a shard's end and says so",
          "[consumer][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  kinlet::ConsumerOptions options;
  options.follow_lineage = false;
  options.batch_limit = 3;
  auto consumer = *TestConsumer::Create(stream.get(), options);
  for (int i = 0; i < 5; ++i) REQUIRE(stream->PutRecord("key", std::to_string(i)).ok());
  REQUIRE(stream->SplitShard("shardId-000000000000", kinlet::kMaxHashKey / 2).ok());
  REQUIRE(stream->PutRecord("key", "in a child").ok());
  kinlet::ConsumerBatch<std::string> batch;
  REQUIRE(consumer->Poll(&batch).ok());
  CHECK(batch.records().size() == 3);
  CHECK_FALSE(batch.shard_ended);
  REQUIRE(consumer->Poll(&batch).ok());  // the last records, and the end with them
  CHECK(batch.records().size() == 2);
  CHECK(batch.shard_ended);
  CHECK(batch.shard_id == "shardId-000000000000");
  CHECK(consumer->FollowedShards().empty());  // the children are not followed
  REQUIRE(consumer->Poll(&batch).ok());
  CHECK(batch.records().empty());
  CHECK_FALSE(batch.shard_ended);
}

TEST_CASE("A consumer reads both parents of a merge to their ends before the child",
          "[consumer][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  auto consumer = *TestConsumer::Create(stream.get(), {});
  const auto ranges = kinlet::InitialHashKeyRanges(2);
  kinlet::PutRecordOptions low, high;
  low.explicit_hash_key = ranges[0].starting_hash_key;
  high.explicit_hash_key = ranges[1].ending_hash_key;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(stream->PutRecord("a", "a-before-" + std::to_string(i), low).ok());
    REQUIRE(stream->PutRecord("b", "b-before-" + std::to_string(i), high).ok());
  }
  REQUIRE(stream->MergeShards("shardId-000000000000", "shardId-000000000001").ok());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(stream->PutRecord("a", "a-after-" + std::to_string(i), low).ok());
    REQUIRE(stream->PutRecord("b", "b-after-" + std::to_string(i), high).ok());
  }
  const std::vector<std::string> order = DrainInOrder(*consumer);
  REQUIRE(order.size() == 12);
  // Every record of both parents comes before the first record of the child.
  size_t last_before = 0;
  size_t first_after = order.size();
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i].find("before") != std::string::npos) last_before = i;
    if (order[i].find("after") != std::string::npos) first_after = std::min(first_after, i);
  }
  CHECK(last_before < first_after);
  CHECK(std::vector<std::string>(order.begin() + 6, order.end()) ==
        std::vector<std::string>{"a-after-0", "b-after-0", "a-after-1", "b-after-1", "a-after-2",
                                 "b-after-2"});
  CHECK(consumer->FollowedShards() == std::vector<std::string>{"shardId-000000000002"});
}

TEST_CASE("A whole-stream consumer starts at the shards open at its start position",
          "[consumer][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  REQUIRE(stream->PutRecord("k", "old").ok());
  clock.Advance(absl::Seconds(5));
  REQUIRE(stream->SplitShard("shardId-000000000000", kinlet::kMaxHashKey / 2).ok());
  SECTION("TRIM_HORIZON: the root, then its children by lineage") {
    auto consumer = *TestConsumer::Create(stream.get(), {});
    CHECK(consumer->FollowedShards() == std::vector<std::string>{"shardId-000000000000"});
  }
  SECTION("LATEST: the open shards") {
    kinlet::ConsumerOptions options;
    options.start = kinlet::IteratorPosition::Latest();
    auto consumer = *TestConsumer::Create(stream.get(), options);
    CHECK(consumer->FollowedShards() ==
          std::vector<std::string>{"shardId-000000000001", "shardId-000000000002"});
  }
  SECTION("AT_TIMESTAMP of the split itself: the parent only (its children follow)") {
    kinlet::ConsumerOptions options;
    options.start = kinlet::IteratorPosition::AtTimestamp(clock.Now());
    auto consumer = *TestConsumer::Create(stream.get(), options);
    CHECK(consumer->FollowedShards() == std::vector<std::string>{"shardId-000000000000"});
  }
}
