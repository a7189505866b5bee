// Tests of kinlet/metrics.hpp: Stream::GetMetrics (CloudWatch's metrics per
// shard and summed), ToPrometheusText and ComputeHotShardReport.
#include "kinlet/metrics.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "kinlet/stream.hpp"

namespace {

using kinlet::IteratorPosition;
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using Entry = TestStream::Entry;

constexpr char kName[] = "metrics-stream";

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock, int shards = 1,
                                       void (*tweak)(kinlet::StreamOptions&) = nullptr) {
  kinlet::StreamOptions options;
  options.name = kName;
  options.shard_count = shards;
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.max_record_size_bytes = 1024;
  options.shard_capacity_bytes = 64 * 1024;
  options.shard_capacity_records = 1024;
  if (tweak) tweak(options);
  auto stream = TestStream::Create(options, clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

// Options that put a record on shard `index` of a stream of `shards` shards.
kinlet::PutRecordOptions OnShard(int index, int shards) {
  kinlet::PutRecordOptions options;
  options.explicit_hash_key =
      kinlet::InitialHashKeyRanges(shards)[static_cast<size_t>(index)].starting_hash_key;
  return options;
}

kinlet::ShardIterator TrimHorizon(const TestStream& stream, int shard = 0) {
  auto it = stream.GetShardIterator(kinlet::ShardIdFor(static_cast<uint32_t>(shard)),
                                    IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  return *it;
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::string RateExceededMessage(int shard) {
  return "Rate exceeded for shard " + kinlet::ShardIdFor(static_cast<uint32_t>(shard)) +
         " in stream " + kName + " under account 000000000000.";
}

}  // namespace

TEST_CASE("GetMetrics counts IncomingBytes (payload + key) and IncomingRecords per shard",
          "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  REQUIRE(stream->PutRecord("k1", "hello", OnShard(0, 2)).ok());  // 2 + 5 bytes
  REQUIRE(stream->PutRecord("key", "ab", OnShard(1, 2)).ok());    // 3 + 2 bytes
  REQUIRE(stream->PutRecord("key", "ab", OnShard(1, 2)).ok());

  const kinlet::StreamMetrics m = stream->GetMetrics();
  CHECK(m.stream_name == kName);
  CHECK(m.taken_at == clock.Now());
  REQUIRE(m.shards.size() == 2);
  CHECK(m.shards[0].shard_id == "shardId-000000000000");
  CHECK(m.shards[1].shard_id == "shardId-000000000001");
  CHECK(m.shards[0].open);
  CHECK(m.shards[0].incoming_bytes == 7);
  CHECK(m.shards[0].incoming_records == 1);
  CHECK(m.shards[1].incoming_bytes == 10);
  CHECK(m.shards[1].incoming_records == 2);
  CHECK(m.totals.shard_id.empty());
  CHECK(m.totals.incoming_bytes == 17);
  CHECK(m.totals.incoming_records == 3);
  CHECK(m.totals.put_record_success == 3);
  CHECK(m.totals.write_provisioned_throughput_exceeded == 0);
  CHECK(m.totals.shard_full_rejections == 0);

  SECTION("counters are cumulative and each snapshot is a copy") {
    REQUIRE(stream->PutRecord("k1", "hello", OnShard(0, 2)).ok());
    CHECK(m.shards[0].incoming_records == 1);
    const kinlet::StreamMetrics later = stream->GetMetrics();
    CHECK(later.shards[0].incoming_records == 2);
    CHECK(later.shards[0].incoming_bytes == 14);
    CHECK(later.totals.incoming_records == 4);
  }
  SECTION("a partition key counts in bytes, not characters") {
    REQUIRE(stream->PutRecord("\xC3\xA9", "x", OnShard(0, 2)).ok());  // "é": 2 bytes + 1
    CHECK(stream->GetMetrics().shards[0].incoming_bytes == 10);
  }
}

TEST_CASE("GetMetrics tells PutRecord.Success from PutRecords.SuccessfulRecords", "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->PutRecord("a", "1").ok());
  REQUIRE(stream->PutRecord("b", "2").ok());
  const std::string k1 = "c", k2 = "d", k3 = "e", data = "xyz";
  const std::vector<Entry> entries = {{k1, data, {}}, {k2, data, {}}, {k3, data, {}}};
  auto batch = stream->PutRecords(entries);
  REQUIRE(batch.ok());
  REQUIRE(batch->failed_record_count == 0);

  const kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.put_record_success == 2);
  CHECK(m.put_records_successful_records == 3);
  CHECK(m.put_records_failed_records == 0);
  CHECK(m.incoming_records == 5);
  CHECK(m.incoming_bytes == 2 + 2 + 3 * 4);
}

TEST_CASE("GetMetrics counts PutRecords entries refused by a full ring", "[metrics]") {
  kinlet::ManualClock clock;
  auto stream =
      MakeStream(&clock, 1, [](kinlet::StreamOptions& o) { o.shard_capacity_records = 4; });
  std::vector<std::string> payloads;
  for (int i = 0; i < 6; ++i) payloads.push_back("payload-" + std::to_string(i));
  const std::string key = "k";
  std::vector<Entry> entries;
  for (const std::string& p : payloads) entries.push_back(Entry{key, p, {}});

  auto batch = stream->PutRecords(entries);
  REQUIRE(batch.ok());
  CHECK(batch->failed_record_count == 2);
  for (int i = 0; i < 4; ++i) CHECK(batch->records[static_cast<size_t>(i)].ok());
  for (int i = 4; i < 6; ++i) {
    CHECK(batch->records[static_cast<size_t>(i)].error_code == kinlet::ErrorCode::kShardFull);
  }

  kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.put_records_successful_records == 4);
  CHECK(m.put_records_failed_records == 2);
  CHECK(m.shard_full_rejections == 2);
  CHECK(m.write_provisioned_throughput_exceeded == 0);
  CHECK(m.incoming_records == 4);
  CHECK(m.incoming_bytes == 4 * (1 + 9));
  CHECK(m.records_stored == 4);
  CHECK(m.ring_capacity_records == 4);

  SECTION("a refused PutRecord counts as a rejection, not as a PutRecords failure") {
    auto put = stream->PutRecord("k", "more");
    REQUIRE_FALSE(put.ok());
    CHECK(kinlet::IsShardFull(put.status()));
    m = stream->GetMetrics().shards[0];
    CHECK(m.shard_full_rejections == 3);
    CHECK(m.put_record_success == 0);
    CHECK(m.put_records_failed_records == 2);
    CHECK(m.incoming_records == 4);
  }
}

TEST_CASE("GetMetrics counts writes refused by the write limits", "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1, [](kinlet::StreamOptions& o) {
    o.limits = kinlet::ThroughputLimits::Unlimited();
    o.limits.write_records_per_second = 2;
  });
  std::vector<std::string> payloads;
  for (int i = 0; i < 5; ++i) payloads.push_back("p" + std::to_string(i));
  const std::string key = "k";
  std::vector<Entry> entries;
  for (const std::string& p : payloads) entries.push_back(Entry{key, p, {}});

  auto batch = stream->PutRecords(entries);
  REQUIRE(batch.ok());
  CHECK(batch->failed_record_count == 3);
  CHECK(batch->records[0].ok());
  CHECK(batch->records[1].ok());
  for (size_t i = 2; i < 5; ++i) {
    CHECK(batch->records[i].error_code == kinlet::ErrorCode::kProvisionedThroughputExceeded);
    CHECK(batch->records[i].error_message == RateExceededMessage(0));
  }
  kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.put_records_successful_records == 2);
  CHECK(m.put_records_failed_records == 3);
  CHECK(m.write_provisioned_throughput_exceeded == 3);
  CHECK(m.shard_full_rejections == 0);
  CHECK(m.incoming_records == 2);
  CHECK(m.incoming_bytes == 2 * 3);

  SECTION("a throttled PutRecord counts too, and capacity returns with time") {
    auto put = stream->PutRecord("k", "x");
    REQUIRE_FALSE(put.ok());
    CHECK(kinlet::IsProvisionedThroughputExceeded(put.status()));
    CHECK(Msg(put.status()) == RateExceededMessage(0));
    m = stream->GetMetrics().shards[0];
    CHECK(m.write_provisioned_throughput_exceeded == 4);
    CHECK(m.put_record_success == 0);
    CHECK(m.put_records_failed_records == 3);

    clock.Advance(absl::Seconds(1));
    REQUIRE(stream->PutRecord("k", "x").ok());
    m = stream->GetMetrics().shards[0];
    CHECK(m.put_record_success == 1);
    CHECK(m.write_provisioned_throughput_exceeded == 4);
    CHECK(m.incoming_records == 3);
  }
}

TEST_CASE("GetMetrics counts GetRecords calls refused by the read limits", "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1, [](kinlet::StreamOptions& o) {
    o.limits = kinlet::ThroughputLimits::Unlimited();
    o.limits.read_calls_per_second = 1;
  });
  REQUIRE(stream->PutRecord("k", "v").ok());
  const kinlet::ShardIterator it = TrimHorizon(*stream);

  auto first = stream->GetRecords(it);
  REQUIRE(first.ok());
  CHECK(first->records.size() == 1);

  auto second = stream->GetRecords(it);  // same millisecond
  REQUIRE_FALSE(second.ok());
  CHECK(kinlet::IsProvisionedThroughputExceeded(second.status()));
  CHECK(Msg(second.status()) == RateExceededMessage(0));

  kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.read_provisioned_throughput_exceeded == 1);
  CHECK(m.get_records_success == 1);
  CHECK(m.get_records_records == 1);

  REQUIRE_FALSE(stream->GetRecords(it).ok());
  CHECK(stream->GetMetrics().totals.read_provisioned_throughput_exceeded == 2);

  clock.Advance(absl::Seconds(1));
  REQUIRE(stream->GetRecords(it).ok());
  m = stream->GetMetrics().shards[0];
  CHECK(m.read_provisioned_throughput_exceeded == 2);
  CHECK(m.get_records_success == 2);
  CHECK(m.get_records_records == 2);
  // Writes are not read throttles.
  CHECK(m.write_provisioned_throughput_exceeded == 0);
}

TEST_CASE("GetMetrics counts GetRecords.Success, .Bytes and .Records", "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  for (int i = 0; i < 3; ++i) REQUIRE(stream->PutRecord("k", "abc", OnShard(0, 2)).ok());
  REQUIRE(stream->PutRecord("kk", "abcdef", OnShard(1, 2)).ok());

  auto page = stream->GetRecords(TrimHorizon(*stream, 0), /*limit=*/2);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 2);
  kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.get_records_success == 1);
  CHECK(m.get_records_records == 2);
  CHECK(m.get_records_bytes == 8);

  auto rest = stream->GetRecords(*page->next_shard_iterator);
  REQUIRE(rest.ok());
  REQUIRE(rest->records.size() == 1);
  m = stream->GetMetrics().shards[0];
  CHECK(m.get_records_success == 2);
  CHECK(m.get_records_records == 3);
  CHECK(m.get_records_bytes == 12);

  SECTION("an empty page is a success with no records") {
    auto empty = stream->GetRecords(*rest->next_shard_iterator);
    REQUIRE(empty.ok());
    CHECK(empty->records.empty());
    m = stream->GetMetrics().shards[0];
    CHECK(m.get_records_success == 3);
    CHECK(m.get_records_records == 3);
    CHECK(m.get_records_bytes == 12);
  }
  SECTION("a failed call is not a success") {
    clock.Advance(absl::Minutes(6));  // past the iterator TTL
    auto expired = stream->GetRecords(*rest->next_shard_iterator);
    REQUIRE_FALSE(expired.ok());
    CHECK(kinlet::IsExpiredIterator(expired.status()));
    m = stream->GetMetrics().shards[0];
    CHECK(m.get_records_success == 2);
    CHECK(m.read_provisioned_throughput_exceeded == 0);
  }
  SECTION("shards count apart; the totals add them up") {
    REQUIRE(stream->GetRecords(TrimHorizon(*stream, 1)).ok());
    const kinlet::StreamMetrics all = stream->GetMetrics();
    CHECK(all.shards[1].get_records_success == 1);
    CHECK(all.shards[1].get_records_records == 1);
    CHECK(all.shards[1].get_records_bytes == 8);
    CHECK(all.totals.get_records_success == 3);
    CHECK(all.totals.get_records_records == 4);
    CHECK(all.totals.get_records_bytes == 20);
  }
}

TEST_CASE("GetMetrics keeps the maximum GetRecords.IteratorAgeMilliseconds", "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  REQUIRE(stream->PutRecord("k", "first", OnShard(0, 2)).ok());
  REQUIRE(stream->PutRecord("k", "second", OnShard(0, 2)).ok());
  CHECK(stream->GetMetrics().shards[0].get_records_iterator_age_ms_max == 0);
  clock.Advance(absl::Seconds(5));

  // One record of two: the unread one arrived 5 s ago.
  auto page = stream->GetRecords(TrimHorizon(*stream), /*limit=*/1);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 1);
  CHECK(page->millis_behind_latest == 5000);
  kinlet::StreamMetrics m = stream->GetMetrics();
  CHECK(m.shards[0].get_records_iterator_age_ms_max == 5000);
  CHECK(m.shards[1].get_records_iterator_age_ms_max == 0);
  CHECK(m.totals.get_records_iterator_age_ms_max == 5000);

  // Catching up reads age 0, which does not lower the maximum.
  auto rest = stream->GetRecords(*page->next_shard_iterator);
  REQUIRE(rest.ok());
  REQUIRE(rest->records.size() == 1);
  CHECK(rest->millis_behind_latest == 0);
  CHECK(stream->GetMetrics().shards[0].get_records_iterator_age_ms_max == 5000);

  SECTION("a larger age raises it") {
    REQUIRE(stream->PutRecord("k", "third", OnShard(0, 2)).ok());
    REQUIRE(stream->PutRecord("k", "fourth", OnShard(0, 2)).ok());
    clock.Advance(absl::Seconds(7));
    auto old = stream->GetRecords(*rest->next_shard_iterator, /*limit=*/1);
    REQUIRE(old.ok());
    CHECK(stream->GetMetrics().shards[0].get_records_iterator_age_ms_max == 7000);
  }
  SECTION("a smaller age does not lower it") {
    REQUIRE(stream->PutRecord("k", "third", OnShard(0, 2)).ok());
    REQUIRE(stream->PutRecord("k", "fourth", OnShard(0, 2)).ok());
    clock.Advance(absl::Seconds(2));
    auto young = stream->GetRecords(*rest->next_shard_iterator, /*limit=*/1);
    REQUIRE(young.ok());
    CHECK(young->millis_behind_latest == 2000);
    CHECK(stream->GetMetrics().shards[0].get_records_iterator_age_ms_max == 5000);
  }
  SECTION("the totals take the maximum over shards, not the sum") {
    REQUIRE(stream->PutRecord("k", "a", OnShard(1, 2)).ok());
    REQUIRE(stream->PutRecord("k", "b", OnShard(1, 2)).ok());
    clock.Advance(absl::Seconds(3));
    REQUIRE(stream->GetRecords(TrimHorizon(*stream, 1), /*limit=*/1).ok());
    m = stream->GetMetrics();
    CHECK(m.shards[1].get_records_iterator_age_ms_max == 3000);
    CHECK(m.totals.get_records_iterator_age_ms_max == 5000);
  }
}

TEST_CASE("GetMetrics measures GetRecords.Latency only when asked to", "[metrics]") {
  kinlet::ManualClock clock;
  const bool measure = GENERATE(false, true);
  void (*tweak)(kinlet::StreamOptions&) = nullptr;
  if (measure) tweak = [](kinlet::StreamOptions& o) { o.measure_get_records_latency = true; };
  auto stream = MakeStream(&clock, 1, tweak);
  for (int i = 0; i < 100; ++i) REQUIRE(stream->PutRecord("k", "v" + std::to_string(i)).ok());
  kinlet::ShardIterator it = TrimHorizon(*stream);
  for (int i = 0; i < 100; ++i) {
    auto page = stream->GetRecords(it, /*limit=*/1);
    REQUIRE(page.ok());
    it = *page->next_shard_iterator;
  }
  const kinlet::StreamMetrics m = stream->GetMetrics();
  CHECK(m.shards[0].get_records_success == 100);
  if (measure) {
    CHECK(m.shards[0].get_records_latency_ns_total > 0);
    CHECK(m.totals.get_records_latency_ns_total == m.shards[0].get_records_latency_ns_total);
  } else {
    CHECK(m.shards[0].get_records_latency_ns_total == 0);
    CHECK(m.totals.get_records_latency_ns_total == 0);
  }
}

TEST_CASE("GetMetrics counts records expired by retention", "[metrics]") {
  kinlet::ManualClock clock;
  auto stream =
      MakeStream(&clock, 1, [](kinlet::StreamOptions& o) { o.retention_period = absl::Hours(1); });
  for (int i = 0; i < 3; ++i) REQUIRE(stream->PutRecord("k", "v").ok());
  kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.records_stored == 3);
  CHECK(m.records_expired == 0);

  clock.Advance(absl::Hours(2));
  // Expired records stop counting as stored at once...
  CHECK(stream->GetMetrics().shards[0].records_stored == 0);
  // ...and count as expired once their space is reclaimed.
  CHECK(stream->TrimExpired() == 3);
  m = stream->GetMetrics().shards[0];
  CHECK(m.records_expired == 3);
  CHECK(m.records_stored == 0);
  CHECK(m.ring_bytes_in_use == 0);
  CHECK(m.records_overwritten == 0);
  CHECK(m.incoming_records == 3);  // IncomingRecords is cumulative

  SECTION("a put into a ring full of expired records reclaims them") {
    auto small = MakeStream(&clock, 1, [](kinlet::StreamOptions& o) {
      o.retention_period = absl::Hours(1);
      o.shard_capacity_records = 4;
    });
    for (int i = 0; i < 4; ++i) REQUIRE(small->PutRecord("k", "v").ok());
    clock.Advance(absl::Hours(2));
    REQUIRE(small->PutRecord("k", "v").ok());
    m = small->GetMetrics().shards[0];
    CHECK(m.records_expired >= 1);
    CHECK(m.records_overwritten == 0);
    CHECK(m.shard_full_rejections == 0);
    CHECK(m.records_stored == 1);
  }
}

TEST_CASE("GetMetrics counts records overwritten under FullPolicy::kOverwrite", "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1, [](kinlet::StreamOptions& o) {
    o.shard_capacity_records = 4;
    o.full_policy = kinlet::FullPolicy::kOverwrite;
  });
  for (int i = 0; i < 6; ++i) REQUIRE(stream->PutRecord("k", "v").ok());
  const kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.records_overwritten == 2);
  CHECK(m.records_expired == 0);
  CHECK(m.shard_full_rejections == 0);
  CHECK(m.records_stored == 4);
  CHECK(m.incoming_records == 6);
  CHECK(m.put_record_success == 6);
}

TEST_CASE("GetMetrics reports ring occupancy and capacity", "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2, [](kinlet::StreamOptions& o) {
    o.shard_capacity_records = 5;  // rounded up to 8
    o.shard_capacity_bytes = 64 * 1024;
  });
  kinlet::StreamMetrics m = stream->GetMetrics();
  CHECK(m.shards[0].ring_capacity_records == 8);
  CHECK(m.shards[0].ring_capacity_bytes == 64 * 1024);
  CHECK(m.shards[0].ring_bytes_in_use == 0);
  CHECK(m.shards[0].records_stored == 0);
  CHECK(m.totals.ring_capacity_records == 16);
  CHECK(m.totals.ring_capacity_bytes == 128 * 1024);

  // A key of 1 byte and a payload of 10, packed and rounded, take 16 bytes of ring each.
  for (int i = 0; i < 3; ++i) REQUIRE(stream->PutRecord("k", "0123456789", OnShard(0, 2)).ok());
  REQUIRE(stream->PutRecord("k", "0123456789", OnShard(1, 2)).ok());
  m = stream->GetMetrics();
  CHECK(m.shards[0].records_stored == 3);
  CHECK(m.shards[0].ring_bytes_in_use == 48);
  CHECK(m.shards[1].records_stored == 1);
  CHECK(m.shards[1].ring_bytes_in_use == 16);
  CHECK(m.totals.records_stored == 4);
  CHECK(m.totals.ring_bytes_in_use == 64);
}

TEST_CASE("ToPrometheusText renders every shard's counters with stream and shard labels",
          "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  for (int i = 0; i < 3; ++i) REQUIRE(stream->PutRecord("key", "abcd", OnShard(0, 2)).ok());
  const std::string text = kinlet::ToPrometheusText(stream->GetMetrics());

  const auto has = [&text](const std::string& line) {
    INFO(line);
    return text.find(line) != std::string::npos;
  };
  CHECK(has("# TYPE kinlet_incoming_bytes_total counter\n"));
  CHECK(has("# TYPE kinlet_incoming_records_total counter\n"));
  CHECK(has("# HELP kinlet_incoming_records_total "));
  CHECK(
      has("\nkinlet_incoming_records_total{stream=\"metrics-stream\",shard=\"shardId-"
          "000000000000\"} 3\n"));
  CHECK(
      has("\nkinlet_incoming_records_total{stream=\"metrics-stream\",shard=\"shardId-"
          "000000000001\"} 0\n"));
  CHECK(
      has("\nkinlet_incoming_bytes_total{stream=\"metrics-stream\",shard=\"shardId-"
          "000000000000\"} 21\n"));
  CHECK(
      has("\nkinlet_put_record_success_total{stream=\"metrics-stream\",shard=\"shardId-"
          "000000000000\"} 3\n"));
  CHECK(has("# TYPE kinlet_get_records_iterator_age_milliseconds gauge\n"));
  CHECK(has("# TYPE kinlet_records_stored gauge\n"));
  CHECK(
      has("\nkinlet_records_stored{stream=\"metrics-stream\",shard=\"shardId-000000000000\"} "
          "3\n"));
  CHECK_FALSE(
      has("kinlet_incoming_records_total{stream=\"metrics-stream\",shard=\"shardId-"
          "000000000000\"} 4\n"));
  CHECK(text.back() == '\n');

  SECTION("values follow the counters") {
    REQUIRE(stream->PutRecord("key", "abcd", OnShard(0, 2)).ok());
    const std::string later = kinlet::ToPrometheusText(stream->GetMetrics());
    CHECK(later.find("kinlet_incoming_records_total{stream=\"metrics-stream\",shard=\"shardId-"
                     "000000000000\"} 4\n") != std::string::npos);
  }
}

TEST_CASE("ComputeHotShardReport shows each shard's share of the traffic in a window",
          "[metrics]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 4);
  // Traffic before the first snapshot is not in the window.
  for (int i = 0; i < 50; ++i) REQUIRE(stream->PutRecord("k", "before", OnShard(0, 4)).ok());
  const kinlet::StreamMetrics before = stream->GetMetrics();
  clock.Advance(absl::Seconds(10));

  const auto sum_shares = [](const kinlet::HotShardReport& r) {
    double bytes = 0, records = 0;
    for (const auto& e : r.shards) {
      bytes += e.bytes_share;
      records += e.records_share;
    }
    CHECK(bytes == Approx(1.0));
    CHECK(records == Approx(1.0));
  };

  SECTION("all traffic on one of 4 shards: skew 4") {
    for (int i = 0; i < 8; ++i) REQUIRE(stream->PutRecord("k", "payload", OnShard(2, 4)).ok());
    const kinlet::HotShardReport r = kinlet::ComputeHotShardReport(before, stream->GetMetrics());
    CHECK(r.window == absl::Seconds(10));
    REQUIRE(r.shards.size() == 4);
    CHECK(r.shards[0].shard_id == "shardId-000000000002");
    CHECK(r.shards[0].records == 8);
    CHECK(r.shards[0].bytes == 8 * 8);
    CHECK(r.shards[0].bytes_share == Approx(1.0));
    CHECK(r.shards[0].records_share == Approx(1.0));
    for (size_t i = 1; i < 4; ++i) {
      CHECK(r.shards[i].bytes == 0);
      CHECK(r.shards[i].records == 0);
      CHECK(r.shards[i].bytes_share == 0);
    }
    sum_shares(r);
    CHECK(r.bytes_skew == Approx(4.0));
    CHECK(r.records_skew == Approx(4.0));
  }
  SECTION("even traffic: skew 1") {
    for (int s = 0; s < 4; ++s) {
      for (int i = 0; i < 5; ++i) REQUIRE(stream->PutRecord("k", "payload", OnShard(s, 4)).ok());
    }
    const kinlet::HotShardReport r = kinlet::ComputeHotShardReport(before, stream->GetMetrics());
    REQUIRE(r.shards.size() == 4);
    for (const auto& e : r.shards) {
      CHECK(e.records == 5);
      CHECK(e.bytes_share == Approx(0.25));
      CHECK(e.records_share == Approx(0.25));
    }
    sum_shares(r);
    CHECK(r.bytes_skew == Approx(1.0));
    CHECK(r.records_skew == Approx(1.0));
  }
  SECTION("skewed traffic: hottest first, skew = max share x open shards") {
    const int counts[4] = {1, 6, 1, 2};  // same record size everywhere
    for (int s = 0; s < 4; ++s) {
      for (int i = 0; i < counts[s]; ++i) {
        REQUIRE(stream->PutRecord("k", "payload", OnShard(s, 4)).ok());
      }
    }
    clock.Advance(absl::Milliseconds(2500));
    const kinlet::StreamMetrics after = stream->GetMetrics();
    const kinlet::HotShardReport r = kinlet::ComputeHotShardReport(before, after);
    CHECK(r.window == absl::Milliseconds(12500));
    CHECK(r.window == after.taken_at - before.taken_at);
    REQUIRE(r.shards.size() == 4);
    CHECK(r.shards[0].shard_id == "shardId-000000000001");
    CHECK(r.shards[0].records_share == Approx(0.6));
    CHECK(r.shards[1].shard_id == "shardId-000000000003");
    CHECK(r.shards[1].records_share == Approx(0.2));
    CHECK(r.shards[2].records_share == Approx(0.1));
    CHECK(r.shards[3].records_share == Approx(0.1));
    for (size_t i = 1; i < 4; ++i) CHECK(r.shards[i - 1].bytes >= r.shards[i].bytes);
    sum_shares(r);
    CHECK(r.records_skew == Approx(0.6 * 4));
    CHECK(r.bytes_skew == Approx(0.6 * 4));
  }
  SECTION("bytes and records are ranked apart") {
    // Shard 0: one big record; shard 3: three small ones.
    const std::string big(300, 'x');
    REQUIRE(stream->PutRecord("k", big, OnShard(0, 4)).ok());
    for (int i = 0; i < 3; ++i) REQUIRE(stream->PutRecord("k", "y", OnShard(3, 4)).ok());
    const kinlet::HotShardReport r = kinlet::ComputeHotShardReport(before, stream->GetMetrics());
    REQUIRE(r.shards.size() == 4);
    CHECK(r.shards[0].shard_id == "shardId-000000000000");  // hottest by bytes
    CHECK(r.shards[0].bytes == 301);
    CHECK(r.shards[0].records == 1);
    CHECK(r.shards[0].bytes_share == Approx(301.0 / 307.0));
    CHECK(r.shards[0].records_share == Approx(0.25));
    CHECK(r.shards[1].shard_id == "shardId-000000000003");
    sum_shares(r);
    CHECK(r.bytes_skew == Approx(4.0 * 301.0 / 307.0));
    CHECK(r.records_skew == Approx(4.0 * 0.75));
  }
}

TEST_CASE("GetRecords.IteratorAgeMilliseconds is a maximum per period plus a current value",
          "[metrics]") {
  // As CloudWatch: an alarm on the maximum clears once readers have caught up
  // for a period; the current value follows the latest GetRecords.
  kinlet::ManualClock clock(absl::FromUnixSeconds(1700000040));  // a minute's start
  auto stream = MakeStream(&clock, 1);
  REQUIRE(stream->PutRecord("k", "old", OnShard(0, 1)).ok());
  REQUIRE(stream->PutRecord("k", "new", OnShard(0, 1)).ok());
  clock.Advance(absl::Seconds(30));
  auto behind = stream->GetRecords(TrimHorizon(*stream), /*limit=*/1);
  REQUIRE(behind.ok());
  REQUIRE(behind->millis_behind_latest == 30000);
  kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.get_records_iterator_age_ms_max == 30000);
  CHECK(m.get_records_iterator_age_ms == 30000);

  // Caught up: the current value drops at once, the maximum stays for its period.
  auto caught_up = stream->GetRecords(*behind->next_shard_iterator);
  REQUIRE(caught_up.ok());
  m = stream->GetMetrics().shards[0];
  CHECK(m.get_records_iterator_age_ms == 0);
  CHECK(m.get_records_iterator_age_ms_max == 30000);
  clock.Advance(absl::Seconds(61));
  CHECK(stream->GetMetrics().shards[0].get_records_iterator_age_ms_max == 30000);

  // Two windows later, with no reader behind since, the maximum has cleared,
  // with or without further reads.
  clock.Advance(absl::Seconds(60));
  CHECK(stream->GetMetrics().shards[0].get_records_iterator_age_ms_max == 0);
  REQUIRE(stream->GetRecords(*caught_up->next_shard_iterator).ok());
  m = stream->GetMetrics().shards[0];
  CHECK(m.get_records_iterator_age_ms_max == 0);
  CHECK(m.get_records_iterator_age_ms == 0);

  // A new lag raises it again; the Prometheus text has both gauges.
  REQUIRE(stream->PutRecord("k", "late", OnShard(0, 1)).ok());
  REQUIRE(stream->PutRecord("k", "later", OnShard(0, 1)).ok());
  clock.Advance(absl::Seconds(4));
  auto lag = stream->GetRecords(TrimHorizon(*stream), /*limit=*/1);
  REQUIRE(lag.ok());
  kinlet::StreamMetrics all = stream->GetMetrics();
  CHECK(all.shards[0].get_records_iterator_age_ms == lag->millis_behind_latest);
  CHECK(all.shards[0].get_records_iterator_age_ms_max == lag->millis_behind_latest);
  CHECK(lag->millis_behind_latest > 0);
  const std::string text = kinlet::ToPrometheusText(all);
  CHECK(text.find("kinlet_get_records_iterator_age_current_milliseconds{stream=") !=
        std::string::npos);
}
