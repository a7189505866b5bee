// Tests of kinlet/faults.hpp: injected throttling, InternalFailure, expired
// iterators and late visibility, set at creation or at run time, seeded and
// reproducible; and a retrying producer and a Consumer that survive them all.
#include "kinlet/faults.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kinlet/consumer.hpp"
#include "kinlet/stream.hpp"

namespace {

using kinlet::IteratorPosition;
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using TestConsumer = kinlet::Consumer<std::string, kinlet::ManualClockTraits>;
using Entry = TestStream::Entry;

constexpr char kName[] = "faults-stream";
constexpr char kRateExceeded[] =
    "Rate exceeded for shard shardId-000000000000 in stream faults-stream under account "
    "000000000000.";

kinlet::StreamOptions Options(int shards = 1) {
  kinlet::StreamOptions options;
  options.name = kName;
  options.shard_count = shards;
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_bytes = 4 << 20;
  options.shard_capacity_records = 1 << 14;
  return options;
}

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock,
                                       const kinlet::FaultInjection& faults = {}, int shards = 1) {
  kinlet::StreamOptions options = Options(shards);
  options.faults = faults;
  auto stream = TestStream::Create(options, clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// Every payload stored in shard 0, from its trim horizon, in order (no faults
// may be on while this reads).
std::vector<std::string> ReadAll(const TestStream& stream, int shard = 0) {
  auto it = stream.GetShardIterator(kinlet::ShardIdFor(static_cast<uint32_t>(shard)),
                                    IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  auto page = stream.GetRecords(*it);
  REQUIRE(page.ok());
  std::vector<std::string> out;
  for (const auto& r : page->records) out.push_back(r.data);
  return out;
}

// Which of `n` PutRecord calls were throttled on a fresh stream.
std::vector<bool> ThrottlePattern(const kinlet::FaultInjection& faults, int n) {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, faults);
  std::vector<bool> throttled;
  for (int i = 0; i < n; ++i) {
    auto put = stream->PutRecord("k", "v");
    if (!put.ok()) REQUIRE(kinlet::IsProvisionedThroughputExceeded(put.status()));
    throttled.push_back(!put.ok());
  }
  return throttled;
}

int Count(const std::vector<bool>& v) {
  int n = 0;
  for (bool b : v) n += b ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("FaultInjection is off by default and enabled by any fault", "[faults]") {
  CHECK_FALSE(kinlet::FaultInjection{}.enabled());
  kinlet::FaultInjection f;
  f.seed = 99;  // a seed alone injects nothing
  CHECK_FALSE(f.enabled());
  f.throttle_put_fraction = 0.1;
  CHECK(f.enabled());
  f = {};
  f.throttle_read_fraction = 0.1;
  CHECK(f.enabled());
  f = {};
  f.internal_failure_fraction = 0.1;
  CHECK(f.enabled());
  f = {};
  f.expire_iterator_fraction = 0.1;
  CHECK(f.enabled());
  f = {};
  f.visibility_delay = absl::Milliseconds(1);
  CHECK(f.enabled());
}

TEST_CASE("throttle_put_fraction 1 refuses every put and writes nothing", "[faults]") {
  kinlet::ManualClock clock;
  kinlet::FaultInjection faults;
  faults.throttle_put_fraction = 1;
  auto stream = MakeStream(&clock, faults);

  auto put = stream->PutRecord("k", "v");
  REQUIRE_FALSE(put.ok());
  CHECK(kinlet::IsProvisionedThroughputExceeded(put.status()));
  CHECK(put.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(Msg(put.status()) == kRateExceeded);

  const std::string k1 = "a", k2 = "b", data = "payload";
  const std::vector<Entry> entries = {{k1, data, {}}, {k2, data, {}}};
  auto batch = stream->PutRecords(entries);
  REQUIRE(batch.ok());
  CHECK(batch->failed_record_count == 2);
  for (const auto& r : batch->records) {
    CHECK(r.error_code == kinlet::ErrorCode::kProvisionedThroughputExceeded);
    CHECK(r.error_message == kRateExceeded);
    CHECK(r.shard_id.empty());
  }

  const kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.incoming_records == 0);
  CHECK(m.write_provisioned_throughput_exceeded == 3);
  CHECK(m.put_records_failed_records == 2);
  REQUIRE(stream->SetFaultInjection({}).ok());
  CHECK(ReadAll(*stream).empty());
}

TEST_CASE("SetFaultInjection turns faults on and off at run time", "[faults]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->PutRecord("k", "before").ok());

  kinlet::FaultInjection faults;
  faults.throttle_put_fraction = 1;
  REQUIRE(stream->SetFaultInjection(faults).ok());
  auto refused = stream->PutRecord("k", "during");
  REQUIRE_FALSE(refused.ok());
  CHECK(kinlet::IsProvisionedThroughputExceeded(refused.status()));

  SECTION("a default FaultInjection turns them off") {
    REQUIRE(stream->SetFaultInjection(kinlet::FaultInjection{}).ok());
    REQUIRE(stream->PutRecord("k", "after").ok());
    CHECK(ReadAll(*stream) == std::vector<std::string>{"before", "after"});
  }
  SECTION("a new configuration replaces the old one") {
    kinlet::FaultInjection reads_only;
    reads_only.throttle_read_fraction = 1;
    REQUIRE(stream->SetFaultInjection(reads_only).ok());
    REQUIRE(stream->PutRecord("k", "after").ok());
    auto it = stream->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
    REQUIRE(it.ok());
    CHECK(kinlet::IsProvisionedThroughputExceeded(stream->GetRecords(*it).status()));
  }
  SECTION("faults given at creation can be turned off too") {
    auto faulty = MakeStream(&clock, faults);
    REQUIRE_FALSE(faulty->PutRecord("k", "v").ok());
    REQUIRE(faulty->SetFaultInjection({}).ok());
    CHECK(faulty->PutRecord("k", "v").ok());
  }
}

TEST_CASE("The same seed and the same calls give the same faults", "[faults]") {
  kinlet::FaultInjection faults;
  faults.seed = 42;
  faults.throttle_put_fraction = 0.5;
  const std::vector<bool> first = ThrottlePattern(faults, 200);
  const std::vector<bool> second = ThrottlePattern(faults, 200);
  CHECK(first == second);
  CHECK(Count(first) > 0);
  CHECK(Count(first) < 200);

  faults.seed = 43;
  CHECK(ThrottlePattern(faults, 200) != first);

  SECTION("reads are reproducible too") {
    const auto read_pattern = [](uint64_t seed) {
      kinlet::ManualClock clock;
      kinlet::FaultInjection f;
      f.seed = seed;
      f.throttle_read_fraction = 0.3;
      f.expire_iterator_fraction = 0.3;
      auto stream = MakeStream(&clock, f);
      REQUIRE(stream->PutRecord("k", "v").ok());
      auto it = stream->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
      REQUIRE(it.ok());
      std::vector<int> outcome;  // 0 ok, 1 throttled, 2 expired
      for (int i = 0; i < 200; ++i) {
        absl::Status s = stream->GetRecords(*it).status();
        outcome.push_back(s.ok() ? 0 : kinlet::IsProvisionedThroughputExceeded(s) ? 1 : 2);
        if (!s.ok()) {
          CHECK((kinlet::IsProvisionedThroughputExceeded(s) || kinlet::IsExpiredIterator(s)));
        }
      }
      return outcome;
    };
    const std::vector<int> a = read_pattern(7);
    CHECK(a == read_pattern(7));
    CHECK(a != read_pattern(8));
    CHECK(std::count(a.begin(), a.end(), 0) > 0);
    CHECK(std::count(a.begin(), a.end(), 1) > 0);
    CHECK(std::count(a.begin(), a.end(), 2) > 0);
  }
}

TEST_CASE("throttle_put_fraction 0.5 throttles about half of the puts", "[faults]") {
  kinlet::ManualClock clock;
  kinlet::FaultInjection faults;
  faults.seed = 2024;
  faults.throttle_put_fraction = 0.5;
  auto stream = MakeStream(&clock, faults);
  int throttled = 0;
  std::vector<std::string> written;
  for (int i = 0; i < 1000; ++i) {
    const std::string payload = std::to_string(i);
    auto put = stream->PutRecord("k", payload);
    if (put.ok()) {
      written.push_back(payload);
    } else {
      REQUIRE(kinlet::IsProvisionedThroughputExceeded(put.status()));
      ++throttled;
    }
  }
  CHECK(throttled >= 400);
  CHECK(throttled <= 600);
  CHECK(stream->GetMetrics().shards[0].write_provisioned_throughput_exceeded ==
        static_cast<uint64_t>(throttled));
  REQUIRE(stream->SetFaultInjection({}).ok());
  CHECK(ReadAll(*stream) == written);  // exactly the accepted puts, in order
}

TEST_CASE("internal_failure_fraction fails PutRecords entries with InternalFailure", "[faults]") {
  kinlet::ManualClock clock;
  kinlet::FaultInjection faults;
  faults.seed = 5;
  faults.internal_failure_fraction = 0.5;
  auto stream = MakeStream(&clock, faults);

  std::vector<std::string> payloads;
  for (int i = 0; i < 200; ++i) payloads.push_back("record-" + std::to_string(i));
  const std::string key = "k";
  std::vector<Entry> entries;
  for (const std::string& p : payloads) entries.push_back(Entry{key, p, {}});

  kinlet::PutRecordsResult result;
  REQUIRE(stream->PutRecords(entries, &result).ok());
  REQUIRE(result.records.size() == entries.size());
  std::vector<std::string> written;
  int failed = 0;
  for (size_t i = 0; i < result.records.size(); ++i) {
    const auto& r = result.records[i];
    if (r.ok()) {
      CHECK(r.shard_id == "shardId-000000000000");
      written.push_back(payloads[i]);
    } else {
      ++failed;
      CHECK(r.error_code == kinlet::ErrorCode::kInternalFailure);
      CHECK(r.error_message == "Internal Service Failure");
      CHECK(r.shard_id.empty());
    }
  }
  CHECK(result.failed_record_count == failed);
  CHECK(failed >= 60);
  CHECK(failed <= 140);

  const kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.put_records_failed_records == static_cast<uint64_t>(failed));
  CHECK(m.put_records_successful_records == written.size());
  CHECK(m.write_provisioned_throughput_exceeded == 0);  // not a throttle
  CHECK(m.incoming_records == written.size());

  REQUIRE(stream->SetFaultInjection({}).ok());
  CHECK(ReadAll(*stream) == written);  // failed entries were not written

  SECTION("fraction 1 fails every entry; PutRecord is not affected") {
    kinlet::FaultInjection all;
    all.internal_failure_fraction = 1;
    REQUIRE(stream->SetFaultInjection(all).ok());
    REQUIRE(stream->PutRecords(entries, &result).ok());
    CHECK(result.failed_record_count == 200);
    for (const auto& r : result.records) {
      CHECK(r.error_code == kinlet::ErrorCode::kInternalFailure);
    }
    CHECK(stream->PutRecord("k", "single").ok());
    REQUIRE(stream->SetFaultInjection({}).ok());
    CHECK(ReadAll(*stream).size() == written.size() + 1);
  }
}

TEST_CASE("throttle_read_fraction 1 refuses every GetRecords with an empty page", "[faults]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->PutRecord("k", "one").ok());
  REQUIRE(stream->PutRecord("k", "two").ok());
  auto it = stream->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  TestStream::Page page;
  REQUIRE(stream->GetRecords(*it, 10, &page).ok());
  REQUIRE(page.records.size() == 2);
  REQUIRE(page.next_shard_iterator.has_value());

  kinlet::FaultInjection faults;
  faults.throttle_read_fraction = 1;
  REQUIRE(stream->SetFaultInjection(faults).ok());
  const absl::Status s = stream->GetRecords(*it, 10, &page);
  REQUIRE_FALSE(s.ok());
  CHECK(kinlet::IsProvisionedThroughputExceeded(s));
  CHECK(Msg(s) == kRateExceeded);
  CHECK(page.records.empty());
  CHECK_FALSE(page.next_shard_iterator.has_value());

  kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
  CHECK(m.read_provisioned_throughput_exceeded == 1);
  CHECK(m.get_records_success == 1);
  // Writes are not affected.
  CHECK(stream->PutRecord("k", "three").ok());

  REQUIRE(stream->SetFaultInjection({}).ok());
  auto again = stream->GetRecords(*it);
  REQUIRE(again.ok());
  CHECK(again->records.size() == 3);
}

TEST_CASE("expire_iterator_fraction 1 answers every GetRecords with ExpiredIterator", "[faults]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->PutRecord("k", "v").ok());
  auto it = stream->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());

  kinlet::FaultInjection faults;
  faults.expire_iterator_fraction = 1;
  REQUIRE(stream->SetFaultInjection(faults).ok());
  for (int i = 0; i < 5; ++i) {
    auto page = stream->GetRecords(*it);
    REQUIRE_FALSE(page.ok());
    CHECK(kinlet::IsExpiredIterator(page.status()));
    CHECK(page.status().code() == absl::StatusCode::kFailedPrecondition);
  }
  CHECK(stream->GetMetrics().shards[0].get_records_success == 0);
  CHECK(stream->GetMetrics().shards[0].read_provisioned_throughput_exceeded == 0);

  // The iterator itself is still good once the fault is off.
  REQUIRE(stream->SetFaultInjection({}).ok());
  auto page = stream->GetRecords(*it);
  REQUIRE(page.ok());
  CHECK(page->records.size() == 1);
}

TEST_CASE("visibility_delay hides records until the clock passes the delay", "[faults]") {
  kinlet::ManualClock clock;
  kinlet::FaultInjection faults;
  faults.visibility_delay = absl::Seconds(2);
  auto stream = MakeStream(&clock, faults);
  REQUIRE(stream->PutRecord("k", "first").ok());
  auto it = stream->GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());

  auto now = stream->GetRecords(*it);
  REQUIRE(now.ok());
  CHECK(now->records.empty());
  REQUIRE(now->next_shard_iterator.has_value());

  clock.Advance(absl::Milliseconds(1999));
  auto early = stream->GetRecords(*now->next_shard_iterator);
  REQUIRE(early.ok());
  CHECK(early->records.empty());

  clock.Advance(absl::Milliseconds(2));  // 2001 ms after the put
  auto visible = stream->GetRecords(*early->next_shard_iterator);
  REQUIRE(visible.ok());
  REQUIRE(visible->records.size() == 1);
  CHECK(visible->records[0].data == "first");

  SECTION("each record waits its own delay") {
    REQUIRE(stream->PutRecord("k", "second").ok());  // at +2001 ms
    clock.Advance(absl::Milliseconds(1500));
    REQUIRE(stream->PutRecord("k", "third").ok());  // at +3501 ms
    clock.Advance(absl::Milliseconds(1000));        // +4501: second visible, third not
    auto page = stream->GetRecords(*visible->next_shard_iterator);
    REQUIRE(page.ok());
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].data == "second");
    clock.Advance(absl::Milliseconds(1001));  // +5502
    auto rest = stream->GetRecords(*page->next_shard_iterator);
    REQUIRE(rest.ok());
    REQUIRE(rest->records.size() == 1);
    CHECK(rest->records[0].data == "third");
  }
  SECTION("turning the delay off shows everything at once") {
    REQUIRE(stream->PutRecord("k", "second").ok());
    auto hidden = stream->GetRecords(*visible->next_shard_iterator);
    REQUIRE(hidden.ok());
    CHECK(hidden->records.empty());
    REQUIRE(stream->SetFaultInjection({}).ok());
    auto shown = stream->GetRecords(*visible->next_shard_iterator);
    REQUIRE(shown.ok());
    CHECK(shown->records.size() == 1);
  }
}

TEST_CASE("Fault fractions outside [0, 1] are InvalidArgument", "[faults]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  const double bad = GENERATE(-0.1, 1.5, std::nan(""));
  const int field = GENERATE(0, 1, 2, 3);
  kinlet::FaultInjection faults;
  double* fractions[] = {&faults.throttle_put_fraction, &faults.throttle_read_fraction,
                         &faults.internal_failure_fraction, &faults.expire_iterator_fraction};
  *fractions[field] = bad;
  INFO("field " << field << " = " << bad);

  const absl::Status set = stream->SetFaultInjection(faults);
  CHECK(kinlet::IsInvalidArgument(set));
  CHECK(set.code() == absl::StatusCode::kInvalidArgument);
  // The rejected configuration is not in force.
  CHECK(stream->PutRecord("k", "v").ok());

  kinlet::StreamOptions options = Options();
  options.faults = faults;
  auto created = TestStream::Create(options, &clock);
  REQUIRE_FALSE(created.ok());
  CHECK(kinlet::IsInvalidArgument(created.status()));

  SECTION("the bounds themselves are valid") {
    *fractions[field] = 0;
    CHECK(stream->SetFaultInjection(faults).ok());
    *fractions[field] = 1;
    CHECK(stream->SetFaultInjection(faults).ok());
    options.faults = faults;
    CHECK(TestStream::Create(options, &clock).ok());
  }
}

TEST_CASE("A negative visibility_delay is InvalidArgument", "[faults]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  kinlet::FaultInjection faults;
  faults.visibility_delay = -absl::Milliseconds(1);
  CHECK(kinlet::IsInvalidArgument(stream->SetFaultInjection(faults)));
  kinlet::StreamOptions options = Options();
  options.faults = faults;
  CHECK(kinlet::IsInvalidArgument(TestStream::Create(options, &clock).status()));
}

TEST_CASE("A retrying producer and a Consumer lose and duplicate nothing under faults",
          "[faults]") {
  kinlet::ManualClock clock;
  kinlet::FaultInjection faults;
  faults.seed = 20240601;
  faults.throttle_put_fraction = 0.3;
  faults.internal_failure_fraction = 0.2;
  faults.throttle_read_fraction = 0.3;
  faults.expire_iterator_fraction = 0.2;
  constexpr int kShards = 4;
  auto stream = MakeStream(&clock, faults, kShards);

  constexpr int kRecords = 3000;
  constexpr int kBatch = 50;
  std::vector<std::string> keys, payloads;
  for (int i = 0; i < kRecords; ++i) {
    keys.push_back("user-" + std::to_string(i % 97));
    payloads.push_back("event-" + std::to_string(i));
  }
  kinlet::RetryOptions retry;
  retry.max_attempts = 100;
  retry.initial_backoff = absl::Milliseconds(5);
  retry.max_backoff = absl::Milliseconds(200);

  // Where each record was written, by payload index.
  struct Written {
    std::string shard_id;
    kinlet::SequenceNumber sequence_number;
  };
  std::vector<std::optional<Written>> written(kRecords);
  std::map<std::string, int> delivered;                              // payload -> times
  std::map<std::string, std::vector<kinlet::SequenceNumber>> order;  // shard -> sequence
  auto consumer = TestConsumer::Create(stream.get(), kinlet::ConsumerOptions{});
  REQUIRE(consumer.ok());
  kinlet::ConsumerBatch<std::string> batch;
  int polls = 0;
  const auto poll = [&] {
    ++polls;
    REQUIRE((*consumer)->Poll(&batch).ok());
    for (const auto& r : batch.records()) {
      ++delivered[r.data];
      order[std::string(batch.shard_id)].push_back(r.sequence_number);
    }
  };

  kinlet::PutRecordsResult result;
  for (int start = 0; start < kRecords; start += kBatch) {
    if ((start / kBatch) % 5 == 4) {
      // Every fifth batch goes record by record through PutRecordWithRetry.
      for (int i = start; i < start + kBatch; ++i) {
        const size_t at = static_cast<size_t>(i);
        auto put = stream->PutRecordWithRetry(keys[at], payloads[at], retry);
        REQUIRE(put.ok());
        written[at] = Written{std::string(put->shard_id), put->sequence_number};
      }
    } else {
      std::vector<Entry> entries;
      for (int i = start; i < start + kBatch; ++i) {
        entries.push_back(
            Entry{keys[static_cast<size_t>(i)], payloads[static_cast<size_t>(i)], {}});
      }
      REQUIRE(stream->PutRecordsWithRetry(entries, retry, &result).ok());
      REQUIRE(result.failed_record_count == 0);
      REQUIRE(result.records.size() == entries.size());
      for (int i = start; i < start + kBatch; ++i) {
        const auto& r = result.records[static_cast<size_t>(i - start)];
        REQUIRE(r.ok());
        written[static_cast<size_t>(i)] = Written{std::string(r.shard_id), r.sequence_number};
      }
    }
    for (int i = 0; i < 3; ++i) poll();  // consume while producing
  }
  while (delivered.size() < static_cast<size_t>(kRecords) && polls < 100000) {
    poll();
    clock.Advance(absl::Milliseconds(1));
  }

  // The faults did happen.
  const kinlet::StreamMetrics m = stream->GetMetrics();
  CHECK(m.totals.write_provisioned_throughput_exceeded > 0);
  CHECK(m.totals.put_records_failed_records > 0);
  CHECK(m.totals.read_provisioned_throughput_exceeded > 0);
  CHECK((*consumer)->throttled_reads() > 0);

  // Nothing written twice: the shards hold exactly the records put.
  CHECK(m.totals.incoming_records == static_cast<uint64_t>(kRecords));
  CHECK(m.totals.put_record_success + m.totals.put_records_successful_records ==
        static_cast<uint64_t>(kRecords));
  // Every record read exactly once.
  REQUIRE(delivered.size() == static_cast<size_t>(kRecords));
  for (const auto& [payload, times] : delivered) {
    INFO(payload);
    CHECK(times == 1);
  }
  // In per-shard order, and exactly the records the puts reported for that shard.
  std::map<std::string, std::vector<kinlet::SequenceNumber>> expected;
  for (const auto& w : written) {
    REQUIRE(w.has_value());
    expected[w->shard_id].push_back(w->sequence_number);
  }
  for (auto& [shard, sequence] : expected) std::sort(sequence.begin(), sequence.end());
  CHECK(order.size() == static_cast<size_t>(kShards));
  for (const auto& [shard, sequence] : order) {
    INFO(shard);
    CHECK(std::is_sorted(sequence.begin(), sequence.end()));
    CHECK(std::adjacent_find(sequence.begin(), sequence.end()) == sequence.end());
    CHECK(sequence == expected[shard]);
  }
}
