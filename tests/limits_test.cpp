// Tests of kinlet/limits.hpp as streams enforce it: each per-shard limit at
// and around its boundary, refill over time, partial-failure layout, scaling
// with shard count, and the unlimited preset. All on a ManualClock.
#include "kinlet/limits.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "kinlet/stream.hpp"

namespace {

using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock, kinlet::ThroughputLimits limits,
                                       int shards = 1) {
  kinlet::StreamOptions options;
  options.name = "limited";
  options.shard_count = shards;
  options.limits = limits;
  options.shard_capacity_bytes = 16 << 20;
  return std::move(*TestStream::Create(options, clock));
}

kinlet::PutRecordOptions ToShard(int shard, int shards) {
  kinlet::PutRecordOptions o;
  o.explicit_hash_key = kinlet::InitialHashKeyRanges(shards)[shard].starting_hash_key;
  return o;
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

}  // namespace

TEST_CASE("Kinesis's limits are the default", "[limits]") {
  kinlet::StreamOptions options;
  CHECK(options.limits == kinlet::ThroughputLimits::Kinesis());
  CHECK(options.limits.write_bytes_per_second == 1 << 20);
  CHECK(options.limits.write_records_per_second == 1000);
  CHECK(options.limits.read_calls_per_second == 5);
  CHECK(options.limits.read_bytes_per_second == 2 << 20);
  CHECK(options.limits.get_shard_iterator_calls_per_second == 5);
  CHECK_FALSE(kinlet::ThroughputLimits::Unlimited().limits_writes());
  CHECK_FALSE(kinlet::ThroughputLimits::Unlimited().limits_reads());
}

TEST_CASE("Exactly 1,000 records pass in a second: the next throttles", "[limits]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, kinlet::ThroughputLimits::Kinesis());
  for (int i = 0; i < 1000; ++i) REQUIRE(stream->PutRecord("k", "v").ok());
  auto refused = stream->PutRecord("k", "v");
  CHECK(kinlet::IsProvisionedThroughputExceeded(refused.status()));
  CHECK(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(Msg(refused.status()) ==
        "Rate exceeded for shard shardId-000000000000 in stream limited under account "
        "000000000000.");
  CHECK(stream->GetMetrics().totals.incoming_records == 1000);  // nothing half-applied
  SECTION("one millisecond refills one record") {
    clock.Advance(absl::Milliseconds(1));
    CHECK(stream->PutRecord("k", "v").ok());
    CHECK(kinlet::IsProvisionedThroughputExceeded(stream->PutRecord("k", "v").status()));
  }
  SECTION("a second refills all of them, never more") {
    clock.Advance(absl::Seconds(5));
    for (int i = 0; i < 1000; ++i) REQUIRE(stream->PutRecord("k", "v").ok());
    CHECK_FALSE(stream->PutRecord("k", "v").ok());
  }
}

TEST_CASE("1 MiB per second of payload plus key passes: more throttles", "[limits]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, kinlet::ThroughputLimits::Kinesis());
  const std::string half(512 * 1024 - 1, 'x');  // + 1-byte key = 512 KiB
  REQUIRE(stream->PutRecord("k", half).ok());
  REQUIRE(stream->PutRecord("k", half).ok());
  // The bucket is empty: even an empty payload carries its 1-byte key.
  CHECK(kinlet::IsProvisionedThroughputExceeded(stream->PutRecord("k", "").status()));
  SECTION("the key counts") {
    kinlet::ManualClock clock2;
    auto s2 = MakeStream(&clock2, kinlet::ThroughputLimits::Kinesis());
    const std::string almost(1024 * 1024 - 2, 'x');
    REQUIRE(s2->PutRecord("kk", almost).ok());  // exactly 1 MiB with the key
    CHECK(kinlet::IsProvisionedThroughputExceeded(s2->PutRecord("k", "").status()));
  }
  SECTION("refill is proportional to time") {
    clock.Advance(absl::Milliseconds(500));
    CHECK(stream->PutRecord("k", half).ok());
    CHECK(kinlet::IsProvisionedThroughputExceeded(stream->PutRecord("k", half).status()));
  }
}

TEST_CASE("A throttled PutRecords entry fails alone, in request order", "[limits]") {
  kinlet::ManualClock clock;
  kinlet::ThroughputLimits limits = kinlet::ThroughputLimits::Kinesis();
  limits.write_records_per_second = 3;
  auto stream = MakeStream(&clock, limits, 2);
  // Five entries to shard 0 (only three pass) interleaved with two to shard 1.
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> entries;
  const auto h0 = kinlet::InitialHashKeyRanges(2)[0].starting_hash_key;
  const auto h1 = kinlet::InitialHashKeyRanges(2)[1].starting_hash_key;
  for (int i = 0; i < 7; ++i) entries.push_back({"k", "v", i % 3 == 2 ? h1 : h0});
  auto result = stream->PutRecords(entries);
  REQUIRE(result.ok());
  REQUIRE(result->records.size() == 7);
  CHECK(result->failed_record_count == 2);
  std::vector<bool> ok;
  for (const auto& r : result->records) ok.push_back(r.ok());
  // Shard 0 entries are 0,1,3,4,6: the first three pass; 2 and 5 go to shard 1.
  CHECK(ok == std::vector<bool>{true, true, true, true, false, true, false});
  CHECK(result->records[4].error_code == kinlet::ErrorCode::kProvisionedThroughputExceeded);
  CHECK_THAT(result->records[4].error_message,
             Catch::Matchers::Contains("Rate exceeded for shard shardId-000000000000"));
  CHECK(result->records[5].shard_id == "shardId-000000000001");
  auto m = stream->GetMetrics();
  CHECK(m.shards[0].put_records_failed_records == 2);
  CHECK(m.shards[0].write_provisioned_throughput_exceeded == 2);
}

TEST_CASE("Limits are per shard: adding shards adds capacity", "[limits]") {
  kinlet::ManualClock clock;
  kinlet::ThroughputLimits limits = kinlet::ThroughputLimits::Kinesis();
  limits.write_records_per_second = 10;
  auto one = MakeStream(&clock, limits, 1);
  auto four = MakeStream(&clock, limits, 4);
  int passed_one = 0;
  int passed_four = 0;
  for (int i = 0; i < 100; ++i) {
    passed_one += one->PutRecord("k", "v", ToShard(0, 1)).ok();
    passed_four += four->PutRecord("k", "v", ToShard(i % 4, 4)).ok();
  }
  CHECK(passed_one == 10);
  CHECK(passed_four == 40);
}

TEST_CASE("Polling reads: 5 calls per second shared by every reader", "[limits]") {
  kinlet::ManualClock clock;
  kinlet::ThroughputLimits limits = kinlet::ThroughputLimits::Kinesis();
  limits.get_shard_iterator_calls_per_second = 0;
  auto stream = MakeStream(&clock, limits);
  REQUIRE(stream->PutRecord("k", "v").ok());
  auto a = *stream->GetShardIterator("0", kinlet::IteratorPosition::TrimHorizon());
  auto b = *stream->GetShardIterator("0", kinlet::IteratorPosition::TrimHorizon());
  kinlet::GetRecordsResult<std::string> page;
  for (int i = 0; i < 5; ++i) REQUIRE(stream->GetRecords(i % 2 ? a : b, 10, &page).ok());
  absl::Status s = stream->GetRecords(a, 10, &page);
  CHECK(kinlet::IsProvisionedThroughputExceeded(s));
  CHECK(page.records.empty());  // a throttled call returns no data
  CHECK(stream->GetMetrics().totals.read_provisioned_throughput_exceeded == 1);
  clock.Advance(absl::Milliseconds(200));
  CHECK(stream->GetRecords(b, 10, &page).ok());
}

TEST_CASE("A 10 MiB response throttles reads for the next seconds", "[limits]") {
  kinlet::ManualClock clock;
  kinlet::ThroughputLimits limits = kinlet::ThroughputLimits::Unlimited();
  limits.read_bytes_per_second = 2 << 20;
  limits.read_calls_per_second = 5;
  auto stream = MakeStream(&clock, limits);
  const std::string mib((1 << 20) - 1, 'x');  // + 1-byte key = 1 MiB
  for (int i = 0; i < 11; ++i) REQUIRE(stream->PutRecord("k", mib).ok());
  auto it = *stream->GetShardIterator("0", kinlet::IteratorPosition::TrimHorizon());
  kinlet::GetRecordsResult<std::string> page;
  REQUIRE(stream->GetRecords(it, 100, &page).ok());
  CHECK(page.records.size() == 10);  // the 10 MiB cap per call, keys included
  clock.Advance(absl::Seconds(1));
  CHECK(kinlet::IsProvisionedThroughputExceeded(
      stream->GetRecords(*page.next_shard_iterator, 100, &page)));
  clock.Advance(absl::Seconds(2));  // 3 s after: still in debt (2 MiB - 10 MiB + 6 MiB < 0)
  auto next = *stream->GetShardIterator("0", kinlet::IteratorPosition::Latest());
  CHECK(kinlet::IsProvisionedThroughputExceeded(stream->GetRecords(next, 100, &page)));
  clock.Advance(absl::Seconds(2));  // 5 s after: repaid
  CHECK(stream->GetRecords(next, 100, &page).ok());
}

TEST_CASE("GetShardIterator is limited to 5 calls per second per shard", "[limits]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, kinlet::ThroughputLimits::Kinesis(), 2);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(stream->GetShardIterator("0", kinlet::IteratorPosition::Latest()).ok());
  }
  CHECK(kinlet::IsProvisionedThroughputExceeded(
      stream->GetShardIterator("0", kinlet::IteratorPosition::Latest()).status()));
  CHECK(stream->GetShardIterator("1", kinlet::IteratorPosition::Latest()).ok());  // per shard
  clock.Advance(absl::Milliseconds(200));
  CHECK(stream->GetShardIterator("0", kinlet::IteratorPosition::Latest()).ok());
}

TEST_CASE("Unlimited streams never throttle", "[limits]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, kinlet::ThroughputLimits::Unlimited());
  for (int i = 0; i < 5000; ++i) REQUIRE(stream->PutRecord("k", "v").ok());
  auto it = *stream->GetShardIterator("0", kinlet::IteratorPosition::TrimHorizon());
  kinlet::GetRecordsResult<std::string> page;
  for (int i = 0; i < 50; ++i) REQUIRE(stream->GetRecords(it, 10, &page).ok());
  CHECK(stream->GetMetrics().totals.write_provisioned_throughput_exceeded == 0);
}

TEST_CASE("Negative limits are rejected", "[limits]") {
  kinlet::StreamOptions options;
  options.name = "bad";
  options.limits.write_records_per_second = -1;
  CHECK(kinlet::IsInvalidArgument(kinlet::ValidateStreamOptions(options)));
}

TEST_CASE("A record larger than a second of write bytes passes from a full bucket", "[limits]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "big-records";
  options.max_record_size_bytes = 2 << 20;
  options.shard_capacity_bytes = 64 << 20;
  auto stream = std::move(*TestStream::Create(options, &clock));
  const std::string big(3 << 19, 'x');  // 1.5 MiB against 1 MiB/s
  REQUIRE(stream->PutRecord("k", big).ok());
  // The bucket owes 0.5 MiB: nothing passes until it is repaid and refilled.
  clock.Advance(absl::Milliseconds(400));
  CHECK(kinlet::IsProvisionedThroughputExceeded(stream->PutRecord("k", "v").status()));
  clock.Advance(absl::Milliseconds(600));
  CHECK(stream->PutRecord("k", "v").ok());
  clock.Advance(absl::Seconds(2));
  CHECK(stream->PutRecord("k", big).ok());
}
