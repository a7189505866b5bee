// Tests of kinlet/stream.hpp: puts, batch puts, partitioning, iterators,
// GetRecords, retention, description and every bad input the API lists.
#include "kinlet/stream.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

namespace {

using kinlet::IteratorPosition;
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock, int shards = 1,
                                       void (*tweak)(kinlet::StreamOptions&) = nullptr) {
  kinlet::StreamOptions options;
  options.name = "test-stream";
  options.limits = kinlet::ThroughputLimits::Unlimited();  // limits are tested in limits_test
  options.shard_count = shards;
  options.shard_capacity_bytes = 4 << 20;
  options.shard_capacity_records = 1024;
  if (tweak) tweak(options);
  auto stream = TestStream::Create(options, clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

}  // namespace

TEST_CASE("PutRecord returns the shard id and an increasing sequence number", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 4);
  auto first = stream->PutRecord("user123", "a");
  auto second = stream->PutRecord("user123", "b");
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(first->shard_id == second->shard_id);
  CHECK(first->shard_id.substr(0, 8) == "shardId-");
  CHECK(first->shard_id.size() == 20);
  CHECK(second->sequence_number > first->sequence_number);
}

TEST_CASE("The record goes to the open shard whose hash range holds its hash key", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 4);
  auto ranges = kinlet::InitialHashKeyRanges(4);
  for (int i = 0; i < 200; ++i) {
    std::string key = "key-" + std::to_string(i);
    kinlet::HashKey hash = kinlet::Xxh3Hasher::Hash(key);
    auto put = stream->PutRecord(key, "x");
    REQUIRE(put.ok());
    auto shard = stream->GetShard(put->shard_id);
    REQUIRE(shard.ok());
    CHECK((*shard)->hash_key_range().Contains(hash));
  }
  SECTION("an explicit hash key overrides placement but the key is kept") {
    kinlet::PutRecordOptions options;
    options.explicit_hash_key = ranges[3].starting_hash_key;
    auto put = stream->PutRecord("any", "x", options);
    REQUIRE(put.ok());
    CHECK(put->shard_id == "shardId-000000000003");
    options.explicit_hash_key = ranges[2].ending_hash_key;
    CHECK(stream->PutRecord("any", "x", options)->shard_id == "shardId-000000000002");
    options.explicit_hash_key = kinlet::kMaxHashKey;
    CHECK(stream->PutRecord("any", "x", options)->shard_id == "shardId-000000000003");
    options.explicit_hash_key = 0;
    auto zero = stream->PutRecord("kept-key", "x", options);
    CHECK(zero->shard_id == "shardId-000000000000");
    auto it = stream->GetShardIterator(zero->shard_id,
                                       IteratorPosition::AtSequenceNumber(zero->sequence_number));
    auto page = stream->GetRecords(*it, 1);
    REQUIRE(page.ok());
    CHECK(page->records[0].partition_key == "kept-key");
  }
}

TEST_CASE("GetRecords returns what was put, in order, with arrival timestamps", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  std::vector<kinlet::SequenceNumber> seqs;
  for (int i = 0; i < 10; ++i) {
    clock.Advance(absl::Milliseconds(3));
    auto put = stream->PutRecord("k" + std::to_string(i), "payload-" + std::to_string(i));
    REQUIRE(put.ok());
    seqs.push_back(put->sequence_number);
  }
  auto it = stream->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  auto page = stream->GetRecords(*it, 4);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 4);
  for (int i = 0; i < 4; ++i) {
    CHECK(page->records[i].sequence_number == seqs[i]);
    CHECK(page->records[i].partition_key == "k" + std::to_string(i));
    CHECK(page->records[i].data == "payload-" + std::to_string(i));
  }
  CHECK(page->records[0].approximate_arrival_timestamp == clock.Now() - absl::Milliseconds(27));
  CHECK(page->millis_behind_latest == 15);  // record 4 arrived 15 ms ago
  REQUIRE(page->next_shard_iterator.has_value());
  auto rest = stream->GetRecords(*page->next_shard_iterator, 100);
  REQUIRE(rest.ok());
  REQUIRE(rest->records.size() == 6);
  CHECK(rest->records.back().sequence_number == seqs.back());
  CHECK(rest->millis_behind_latest == 0);
  REQUIRE(rest->next_shard_iterator.has_value());
  CHECK(rest->child_shards.empty());
  SECTION("the next iterator never goes backwards and sees new records") {
    auto empty = stream->GetRecords(*rest->next_shard_iterator, 100);
    REQUIRE(empty.ok());
    CHECK(empty->records.empty());
    CHECK(empty->next_shard_iterator->position() == rest->next_shard_iterator->position());
    REQUIRE(stream->PutRecord("late", "z").ok());
    auto late = stream->GetRecords(*empty->next_shard_iterator, 100);
    REQUIRE(late->records.size() == 1);
    CHECK(late->records[0].data == "z");
  }
  SECTION("iterators work in their text form") {
    std::string text = it->ToString();
    auto again = stream->GetRecords(text, 2);
    REQUIRE(again.ok());
    CHECK(again->records.size() == 2);
    CHECK(
        kinlet::IsInvalidArgument(stream->GetRecords(std::string("not-an-iterator"), 2).status()));
  }
}

TEST_CASE("The five iterator types start where Kinesis starts them", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  std::vector<kinlet::SequenceNumber> seqs;
  std::vector<absl::Time> times;
  for (int i = 0; i < 5; ++i) {
    clock.Advance(absl::Seconds(1));
    times.push_back(clock.Now());
    seqs.push_back(stream->PutRecord("k", std::to_string(i))->sequence_number);
  }
  const std::string shard = "shardId-000000000000";
  auto first_data = [&](IteratorPosition p) -> std::string {
    auto it = stream->GetShardIterator(shard, p);
    REQUIRE(it.ok());
    auto page = stream->GetRecords(*it, 1);
    REQUIRE(page.ok());
    return page->records.empty() ? "<none>" : page->records[0].data;
  };
  CHECK(first_data(IteratorPosition::TrimHorizon()) == "0");
  CHECK(first_data(IteratorPosition::AtSequenceNumber(seqs[2])) == "2");
  CHECK(first_data(IteratorPosition::AfterSequenceNumber(seqs[2])) == "3");
  CHECK(first_data(IteratorPosition::AfterSequenceNumber(seqs[4])) == "<none>");
  CHECK(first_data(IteratorPosition::AtTimestamp(times[3])) == "3");
  CHECK(first_data(IteratorPosition::AtTimestamp(times[3] - absl::Milliseconds(500))) == "3");
  CHECK(first_data(IteratorPosition::AtTimestamp(times[0] - absl::Hours(1))) == "0");
  CHECK(first_data(IteratorPosition::AtTimestamp(clock.Now())) == "4");
  SECTION("LATEST sees only what is put after it") {
    auto latest = stream->GetShardIterator(shard, IteratorPosition::Latest());
    REQUIRE(latest.ok());
    CHECK(stream->GetRecords(*latest, 10)->records.empty());
    REQUIRE(stream->PutRecord("k", "after").ok());
    auto page = stream->GetRecords(*latest, 10);
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].data == "after");
  }
  SECTION("AT_TIMESTAMP in the future is invalid") {
    auto it = stream->GetShardIterator(
        shard, IteratorPosition::AtTimestamp(clock.Now() + absl::Milliseconds(1)));
    CHECK(kinlet::IsInvalidArgument(it.status()));
    CHECK_THAT(Msg(it.status()), Catch::Matchers::Contains("cannot be greater than"));
  }
  SECTION("AT_TIMESTAMP before the trim horizon starts at the trim horizon") {
    clock.Advance(absl::Hours(24) - absl::Milliseconds(2500));  // records 0 and 1 expire
    CHECK(first_data(IteratorPosition::AtTimestamp(times[0] - absl::Hours(1))) == "2");
    CHECK(first_data(IteratorPosition::TrimHorizon()) == "2");
  }
}

TEST_CASE("GetShardIterator rejects sequence numbers of other shards and streams", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  auto other = MakeStream(&clock, 2);
  kinlet::PutRecordOptions to0;
  to0.explicit_hash_key = 0;
  auto put = stream->PutRecord("k", "v", to0);
  REQUIRE(put->shard_id == "shardId-000000000000");
  SECTION("another shard") {
    auto it = stream->GetShardIterator("shardId-000000000001",
                                       IteratorPosition::AtSequenceNumber(put->sequence_number));
    CHECK(kinlet::IsInvalidArgument(it.status()));
    CHECK_THAT(Msg(it.status()),
               Catch::Matchers::Contains("It encodes shardId-000000000000, while it was used in "
                                         "a call to a shard with shardId-000000000001"));
  }
  SECTION("another stream") {
    auto it = other->GetShardIterator("shardId-000000000000",
                                      IteratorPosition::AtSequenceNumber(put->sequence_number));
    CHECK(kinlet::IsInvalidArgument(it.status()));
    CHECK_THAT(Msg(it.status()), Catch::Matchers::Contains("did not come from this stream"));
  }
  SECTION("Amazon Kinesis's (a 56-digit number, no kinlet stream's)") {
    auto aws =
        kinlet::SequenceNumber::Parse("49590338271490256608559692538361571095921575989136588898");
    REQUIRE(aws.ok());
    auto it =
        stream->GetShardIterator("shardId-000000000000", IteratorPosition::AtSequenceNumber(*aws));
    CHECK(kinlet::IsInvalidArgument(it.status()));
    CHECK_THAT(Msg(it.status()), Catch::Matchers::Contains("did not come from this stream"));
  }
  SECTION("a number not issued yet") {
    kinlet::SequenceNumber future(put->sequence_number.stream_tag(), 0, 5);
    CHECK(kinlet::IsInvalidArgument(
        stream->GetShardIterator("shardId-000000000000", IteratorPosition::AtSequenceNumber(future))
            .status()));
  }
  SECTION("an unknown shard") {
    auto it = stream->GetShardIterator("shardId-000000000009", IteratorPosition::TrimHorizon());
    CHECK(kinlet::IsResourceNotFound(it.status()));
    CHECK_THAT(Msg(it.status()), Catch::Matchers::Contains("does not exist"));
    CHECK(kinlet::IsResourceNotFound(
        stream->GetShardIterator("bogus", IteratorPosition::TrimHorizon()).status()));
  }
  SECTION("loose shard id forms resolve as in Kinesis") {
    CHECK(stream->GetShardIterator("shardId-1", IteratorPosition::TrimHorizon()).ok());
    CHECK(stream->GetShardIterator("1", IteratorPosition::TrimHorizon()).ok());
    CHECK((*stream->GetShard("foo-0"))->shard_id() == "shardId-000000000000");
  }
}

TEST_CASE("GetRecords validates its limit and its iterator", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  auto other = MakeStream(&clock, 1);
  REQUIRE(stream->PutRecord("k", "v").ok());
  auto it = stream->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  CHECK(kinlet::IsValidationError(stream->GetRecords(*it, 0).status()));
  CHECK(kinlet::IsValidationError(stream->GetRecords(*it, 10001).status()));
  CHECK(stream->GetRecords(*it, 10000).ok());
  CHECK(kinlet::IsInvalidArgument(stream->GetRecords(kinlet::ShardIterator(), 1).status()));
  SECTION("an iterator of another stream") {
    auto foreign = other->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
    auto s = stream->GetRecords(*foreign, 1).status();
    CHECK(kinlet::IsInvalidArgument(s));
    CHECK(Msg(s) == "Invalid ShardIterator.");
  }
  SECTION("a forged iterator") {
    std::string text = it->ToString();
    text[3] = text[3] == 'A' ? 'B' : 'A';  // always a different character: different bytes
    auto forged = kinlet::ShardIterator::Parse(text);
    REQUIRE_FALSE(forged.ok());
    CHECK(kinlet::IsInvalidArgument(forged.status()));
  }
  SECTION("iterators expire after five minutes") {
    clock.Advance(absl::Minutes(5));
    CHECK(stream->GetRecords(*it, 1).ok());
    clock.Advance(absl::Milliseconds(1));
    auto s = stream->GetRecords(*it, 1).status();
    CHECK(kinlet::IsExpiredIterator(s));
    CHECK_THAT(Msg(s), Catch::Matchers::Contains("tolerated delay of 300000 milliseconds"));
  }
  SECTION("each next iterator gets its own five minutes") {
    clock.Advance(absl::Minutes(4));
    auto page = stream->GetRecords(*it, 1);
    REQUIRE(page.ok());
    clock.Advance(absl::Minutes(4));
    CHECK(stream->GetRecords(*page->next_shard_iterator, 1).ok());
  }
}

TEST_CASE("PutRecord rejects bad input with Kinesis errors and writes nothing", "[stream]") {
  kinlet::ManualClock clock;
  auto stream =
      MakeStream(&clock, 1, [](kinlet::StreamOptions& o) { o.max_record_size_bytes = 1000; });
  auto shard = *stream->GetShard("shardId-000000000000");
  CHECK(kinlet::IsValidationError(stream->PutRecord("", "v").status()));
  CHECK(kinlet::IsValidationError(stream->PutRecord(std::string(257, 'k'), "v").status()));
  CHECK(stream->PutRecord(std::string(256, 'k'), "v").ok());
  // 256 characters of 3-byte UTF-8 are fine; 257 are not.
  std::string euro;
  for (int i = 0; i < 256; ++i) euro += "\xE2\x82\xAC";
  CHECK(stream->PutRecord(euro, "v").ok());
  CHECK(kinlet::IsValidationError(stream->PutRecord(euro + "\xE2\x82\xAC", "v").status()));
  CHECK(kinlet::IsInvalidArgument(stream->PutRecord("bad\xC3", "v").status()));
  CHECK(kinlet::IsInvalidArgument(stream->PutRecord("\xC0\x80", "v").status()));      // overlong
  CHECK(kinlet::IsInvalidArgument(stream->PutRecord("\xED\xA0\x80", "v").status()));  // surrogate
  CHECK(kinlet::IsValidationError(stream->PutRecord("k", std::string(1001, 'x')).status()));
  CHECK(kinlet::IsInvalidArgument(stream->PutRecord("kk", std::string(999, 'x')).status()));
  CHECK(stream->PutRecord("k", std::string(999, 'x')).ok());
  CHECK(shard->stats().end_position == 3);
}

TEST_CASE("sequence_number_for_ordering must be a number this stream issued", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  auto other = MakeStream(&clock, 2);
  auto first = stream->PutRecord("k", "1");
  kinlet::PutRecordOptions options;
  options.sequence_number_for_ordering = first->sequence_number;
  auto second = stream->PutRecord("k", "2", options);
  REQUIRE(second.ok());
  CHECK(second->sequence_number > first->sequence_number);
  auto foreign = other->PutRecord("k", "x");
  options.sequence_number_for_ordering = foreign->sequence_number;
  auto s = stream->PutRecord("k", "3", options).status();
  CHECK(kinlet::IsInvalidArgument(s));
  CHECK_THAT(Msg(s), Catch::Matchers::Contains("ExclusiveMinimumSequenceNumber"));
  options.sequence_number_for_ordering = kinlet::SequenceNumber(
      first->sequence_number.stream_tag(), first->sequence_number.shard_index(), 1000);
  CHECK(kinlet::IsInvalidArgument(stream->PutRecord("k", "3", options).status()));
}

TEST_CASE("PutRecords attempts every entry and reports per entry, in order", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 4);
  std::vector<std::string> keys;
  std::vector<std::string> data;
  for (int i = 0; i < 100; ++i) {
    keys.push_back("user-" + std::to_string(i));
    data.push_back(keys.back() + "-data");
  }
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> entries;
  for (int i = 0; i < 100; ++i) entries.push_back({keys[i], data[i], std::nullopt});
  kinlet::PutRecordsResult result;
  REQUIRE(stream->PutRecords(entries, &result).ok());
  REQUIRE(result.records.size() == 100);
  CHECK(result.failed_record_count == 0);
  std::set<std::string_view> shards;
  for (size_t i = 0; i < entries.size(); ++i) {
    REQUIRE(result.records[i].ok());
    shards.insert(result.records[i].shard_id);
    auto it = stream->GetShardIterator(
        result.records[i].shard_id,
        IteratorPosition::AtSequenceNumber(result.records[i].sequence_number));
    auto page = stream->GetRecords(*it, 1);
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].partition_key == keys[i]);
    CHECK(page->records[0].data == keys[i] + "-data");
  }
  CHECK(shards.size() == 4);
  SECTION("entries with one key keep their order") {
    std::vector<kinlet::PutRecordsRequestEntry<std::string>> same = {
        {"same", "1", {}}, {"other", "x", {}}, {"same", "2", {}}, {"same", "3", {}}};
    auto r = stream->PutRecords(same);
    REQUIRE(r.ok());
    CHECK(r->records[0].sequence_number < r->records[2].sequence_number);
    CHECK(r->records[2].sequence_number < r->records[3].sequence_number);
  }
}

TEST_CASE("PutRecords request-level errors fail the whole call", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2, [](kinlet::StreamOptions& o) {
    o.max_put_records_bytes = 1000;
    o.max_record_size_bytes = 600;
  });
  auto total = [&] {
    uint64_t n = 0;
    for (const auto& s : stream->AllShards()) n += s->stats().end_position;
    return n;
  };
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> none;
  CHECK(kinlet::IsValidationError(stream->PutRecords(none).status()));
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> many(501, {"k", "v", {}});
  CHECK(kinlet::IsValidationError(stream->PutRecords(many).status()));
  many.resize(500);
  CHECK(stream->PutRecords(many).ok());
  std::string big(500, 'x');
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> heavy = {{"a", big, {}}, {"b", big, {}}};
  auto s = stream->PutRecords(heavy).status();
  CHECK(kinlet::IsInvalidArgument(s));
  CHECK_THAT(Msg(s), Catch::Matchers::Contains("Records size exceeds"));
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> bad_key = {{"ok", "v", {}},
                                                                      {"", "v", {}}};
  CHECK(kinlet::IsValidationError(stream->PutRecords(bad_key).status()));
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> too_big = {
      {"ok", "v", {}}, {"k", std::string(601, 'x'), {}}};
  CHECK(kinlet::IsValidationError(stream->PutRecords(too_big).status()));
  CHECK(total() == 500);  // only the valid batch was written
}

TEST_CASE("A full ring rejects writes by default and loses nothing acknowledged", "[stream]") {
  kinlet::ManualClock clock;
  auto stream =
      MakeStream(&clock, 1, [](kinlet::StreamOptions& o) { o.shard_capacity_records = 8; });
  for (int i = 0; i < 8; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  auto s = stream->PutRecord("k", "8").status();
  CHECK(kinlet::IsShardFull(s));
  CHECK(s.code() == absl::StatusCode::kResourceExhausted);
  CHECK(kinlet::IsRetryableWriteError(s));
  SECTION("PutRecords fails only the entries that do not fit") {
    auto r = stream->PutRecords({{"k", "a", {}}, {"k", "b", {}}});
    REQUIRE(r.ok());
    CHECK(r->failed_record_count == 2);
    CHECK(r->records[0].error_code == kinlet::ErrorCode::kShardFull);
    CHECK_FALSE(r->records[1].error_message.empty());
  }
  SECTION("every acknowledged record is still readable") {
    auto it = stream->GetShardIterator("0", IteratorPosition::TrimHorizon());
    auto page = stream->GetRecords(*it, 100);
    REQUIRE(page->records.size() == 8);
    CHECK(page->records[7].data == "7");
  }
  SECTION("space frees as records expire") {
    clock.Advance(absl::Hours(25));
    CHECK(stream->PutRecord("k", "8").ok());
  }
}

TEST_CASE("FullPolicy::kOverwrite drops the oldest and readers see TrimmedDataAccess", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1, [](kinlet::StreamOptions& o) {
    o.shard_capacity_records = 8;
    o.full_policy = kinlet::FullPolicy::kOverwrite;
  });
  auto it = stream->GetShardIterator("0", IteratorPosition::TrimHorizon());
  for (int i = 0; i < 20; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  auto s = stream->GetRecords(*it, 100).status();
  CHECK(kinlet::IsTrimmedDataAccess(s));
  CHECK(s.code() == absl::StatusCode::kOutOfRange);
  auto shard = *stream->GetShard("0");
  CHECK(shard->stats().records_overwritten == 12);
  auto fresh = stream->GetShardIterator("0", IteratorPosition::TrimHorizon());
  auto page = stream->GetRecords(*fresh, 100);
  REQUIRE(page->records.size() == 8);
  CHECK(page->records[0].data == "12");
}

TEST_CASE("The byte capacity bounds the ring too", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1, [](kinlet::StreamOptions& o) {
    o.shard_capacity_bytes = 4096;
    o.max_record_size_bytes = 1024;
  });
  int written = 0;
  while (stream->PutRecord("k", std::string(1000, 'x')).ok()) ++written;
  CHECK(written >= 3);
  CHECK(written <= 4);
  CHECK((*stream->GetShard("0"))->stats().ring_bytes_in_use <= 4096);
}

TEST_CASE("Retention trims old records and can be changed at run time", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  auto old = stream->PutRecord("k", "old");
  REQUIRE(old.ok());
  clock.Advance(absl::Hours(2));
  REQUIRE(stream->PutRecord("k", "new").ok());
  auto it = stream->GetShardIterator("0", IteratorPosition::TrimHorizon());
  SECTION("an iterator on expired data gets TrimmedDataAccess, never a silent skip") {
    clock.Advance(absl::Hours(22) + absl::Milliseconds(1));
    auto at_old =
        stream->GetShardIterator("0", IteratorPosition::AtSequenceNumber(old->sequence_number));
    REQUIRE(at_old.ok());
    CHECK(kinlet::IsTrimmedDataAccess(stream->GetRecords(*at_old, 10).status()));
    CHECK(kinlet::IsExpiredIterator(stream->GetRecords(*it, 10).status()));
    auto fresh = stream->GetShardIterator("0", IteratorPosition::TrimHorizon());
    auto page = stream->GetRecords(*fresh, 10);
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].data == "new");
    CHECK(stream->TrimExpired() == 1);
    CHECK((*stream->GetShard("0"))->stats().records_expired == 1);
  }
  SECTION("decreasing retention hides older records at once") {
    REQUIRE(stream->DecreaseStreamRetentionPeriod(absl::Hours(1)).ok());
    CHECK(stream->retention_period() == absl::Hours(1));
    auto fresh = stream->GetShardIterator("0", IteratorPosition::TrimHorizon());
    auto page = stream->GetRecords(*fresh, 10);
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].data == "new");
  }
  SECTION("increasing retention keeps records longer") {
    REQUIRE(stream->IncreaseStreamRetentionPeriod(absl::Hours(48)).ok());
    clock.Advance(absl::Hours(30));
    CHECK(stream->GetRecords(*stream->GetShardIterator("0", IteratorPosition::TrimHorizon()), 10)
              ->records.size() == 2);
  }
  SECTION("the direction rules are Kinesis's") {
    CHECK(kinlet::IsInvalidArgument(stream->IncreaseStreamRetentionPeriod(absl::Hours(24))));
    CHECK(kinlet::IsInvalidArgument(stream->IncreaseStreamRetentionPeriod(absl::Hours(1))));
    CHECK(kinlet::IsInvalidArgument(stream->DecreaseStreamRetentionPeriod(absl::Hours(24))));
    CHECK(kinlet::IsInvalidArgument(stream->DecreaseStreamRetentionPeriod(absl::Hours(48))));
    CHECK(kinlet::IsInvalidArgument(stream->DecreaseStreamRetentionPeriod(absl::ZeroDuration())));
  }
}

TEST_CASE("DescribeStream and ListShards show ranges and sequence ranges", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 3);
  auto d = stream->DescribeStream();
  REQUIRE(d.ok());
  CHECK(d->stream_name == "test-stream");
  CHECK(d->stream_arn == "arn:aws:kinesis:us-east-1:000000000000:stream/test-stream");
  CHECK(d->stream_status == kinlet::StreamStatus::kActive);
  CHECK(d->retention_period == absl::Hours(24));
  CHECK(d->stream_creation_timestamp == clock.Now());
  CHECK(d->open_shard_count == 3);
  REQUIRE(d->shards.size() == 3);
  auto ranges = kinlet::InitialHashKeyRanges(3);
  for (int i = 0; i < 3; ++i) {
    CHECK(d->shards[i].shard_id == kinlet::ShardIdFor(i));
    CHECK(d->shards[i].hash_key_range == ranges[i]);
    CHECK_FALSE(d->shards[i].parent_shard_id.has_value());
    CHECK_FALSE(d->shards[i].sequence_number_range.ending_sequence_number.has_value());
    CHECK(d->shards[i].sequence_number_range.starting_sequence_number.shard_index() ==
          static_cast<uint32_t>(i));
  }
  auto put = stream->PutRecord("k", "v");
  auto shard = *stream->GetShard(put->shard_id);
  CHECK(put->sequence_number >= shard->starting_sequence_number());
  auto summary = stream->DescribeStreamSummary();
  CHECK(summary->open_shard_count == 3);
  CHECK(summary->max_record_size_bytes == size_t{1} << 20);
  CHECK(stream->ListShards()->size() == 3);
}

TEST_CASE("Arrival timestamps never decrease within a shard", "[stream]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  REQUIRE(stream->PutRecord("k", "a").ok());
  clock.Advance(-absl::Seconds(10));  // the wall clock steps back
  REQUIRE(stream->PutRecord("k", "b").ok());
  clock.Advance(absl::Seconds(20));
  auto page = stream->GetRecords(*stream->GetShardIterator("0", IteratorPosition::TrimHorizon()));
  REQUIRE(page->records.size() == 2);
  CHECK(page->records[1].approximate_arrival_timestamp >=
        page->records[0].approximate_arrival_timestamp);
}

TEST_CASE("GetRecords stops at the per-call byte cap but returns at least one record", "[stream]") {
  kinlet::ManualClock clock;
  auto stream =
      MakeStream(&clock, 1, [](kinlet::StreamOptions& o) { o.max_get_records_bytes = 2500; });
  for (int i = 0; i < 5; ++i) REQUIRE(stream->PutRecord("k", std::string(1000, 'a' + i)).ok());
  auto it = stream->GetShardIterator("0", IteratorPosition::TrimHorizon());
  auto page = stream->GetRecords(*it, 100);
  REQUIRE(page.ok());
  CHECK(page->records.size() == 2);
  auto next = stream->GetRecords(*page->next_shard_iterator, 100);
  CHECK(next->records.size() == 2);
  CHECK(next->records[0].data[0] == 'c');
}

TEST_CASE("SplitShard closes the parent: its end reports the children", "[stream][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  auto before = stream->PutRecord("k", "in-parent");
  REQUIRE(before.ok());
  const auto range = kinlet::InitialHashKeyRanges(1)[0];
  const kinlet::HashKey middle = range.ending_hash_key / 2;
  auto it = *stream->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(stream->SplitShard("shardId-000000000000", middle).ok());
  CHECK(stream->open_shard_count() == 2);
  auto parent = *stream->GetShard("shardId-000000000000");
  CHECK_FALSE(parent->is_open());
  REQUIRE(parent->ending_sequence_number().has_value());
  CHECK(*parent->ending_sequence_number() == before->sequence_number);
  SECTION("children take [S, K-1] and [K, E] with the parent's id") {
    auto low = *stream->GetShard("shardId-000000000001");
    auto high = *stream->GetShard("shardId-000000000002");
    CHECK(low->hash_key_range() == kinlet::HashKeyRange{0, middle - 1});
    CHECK(high->hash_key_range() == kinlet::HashKeyRange{middle, kinlet::kMaxHashKey});
    CHECK(low->parent_shard_id() == std::optional<std::string>("shardId-000000000000"));
    CHECK(low->starting_sequence_number() > before->sequence_number);  // child > parent
  }
  SECTION("writes go to the children, by hash key") {
    kinlet::PutRecordOptions hi;
    hi.explicit_hash_key = middle;
    CHECK(stream->PutRecord("k", "v", hi)->shard_id == "shardId-000000000002");
    hi.explicit_hash_key = middle - 1;
    CHECK(stream->PutRecord("k", "v", hi)->shard_id == "shardId-000000000001");
  }
  SECTION("the closed parent is read to its end, then gives no iterator and the children") {
    auto page = stream->GetRecords(it, 100);
    REQUIRE(page.ok());
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].data == "in-parent");
    CHECK_FALSE(page->next_shard_iterator.has_value());
    REQUIRE(page->child_shards.size() == 2);
    CHECK(page->child_shards[0].shard_id == "shardId-000000000001");
    CHECK(page->child_shards[1].parent_shards == std::vector<std::string>{"shardId-000000000000"});
    auto latest = stream->GetShardIterator("shardId-000000000000", IteratorPosition::Latest());
    REQUIRE(latest.ok());
    auto end = stream->GetRecords(*latest, 10);
    CHECK(end->records.empty());
    CHECK_FALSE(end->next_shard_iterator.has_value());
    CHECK(end->child_shards.size() == 2);
  }
  SECTION("AWS's errors") {
    auto closed = stream->SplitShard("shardId-000000000000", middle);
    CHECK(kinlet::IsInvalidArgument(closed));
    CHECK_THAT(Msg(closed), Catch::Matchers::Contains("has already been merged or split"));
    auto low = *stream->GetShard("shardId-000000000001");
    const auto r = low->hash_key_range();
    CHECK(kinlet::IsInvalidArgument(
        stream->SplitShard("shardId-000000000001", r.starting_hash_key + 1)));
    CHECK(kinlet::IsInvalidArgument(stream->SplitShard("shardId-000000000001", r.ending_hash_key)));
    CHECK(stream->SplitShard("shardId-000000000001", r.starting_hash_key + 2).ok());
    CHECK(kinlet::IsResourceNotFound(stream->SplitShard("shardId-000000000099", middle)));
    auto d = stream->DescribeStream();
    CHECK(d->shards.size() == 5);
    CHECK(d->open_shard_count == 3);
  }
}

TEST_CASE("Streams get distinct non-zero tags, so one stream's numbers are refused by another",
          "[stream]") {
  // Regression: the first tag was derived with a signed multiplication that
  // overflowed (undefined behaviour, found by tests/fuzz under UBSan).
  kinlet::StreamOptions options;
  options.name = "tagged";
  auto a = *kinlet::Stream<std::string>::Create(options);
  auto b = *kinlet::Stream<std::string>::Create(options);
  auto put = a->PutRecord("k", "v");
  REQUIRE(put.ok());
  CHECK(put->sequence_number.stream_tag() != 0);
  REQUIRE(b->PutRecord("k", "v").ok());
  auto other = b->GetShardIterator(
      std::string(put->shard_id), kinlet::IteratorPosition::AtSequenceNumber(put->sequence_number));
  CHECK(kinlet::IsInvalidArgument(other.status()));
}
