// Tests of kinlet/retry.hpp: full-jitter exponential backoff, RetryWithBackoff
// over a ManualClock (simulated sleeps), and the stream's retrying puts
// (Stream::PutRecordWithRetry, Stream::PutRecordsWithRetry) at a write limit.
#include "kinlet/retry.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kinlet/stream.hpp"

namespace {

using kinlet::IteratorPosition;
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using Entry = TestStream::Entry;

constexpr char kRateExceeded[] =
    "Rate exceeded for shard shardId-000000000000 in stream retry-stream under account "
    "000000000000.";

kinlet::RetryOptions Options(int max_attempts = 10) {
  kinlet::RetryOptions options;
  options.max_attempts = max_attempts;
  options.initial_backoff = absl::Milliseconds(25);
  options.max_backoff = absl::Seconds(2);
  options.jitter_seed = 1234;
  return options;
}

// The sum of the first `n` delays of a Backoff with `options`.
absl::Duration FirstDelays(const kinlet::RetryOptions& options, int n) {
  kinlet::Backoff backoff(options);
  absl::Duration sum;
  for (int i = 0; i < n; ++i) sum += backoff.Next();
  return sum;
}

// ManualClock keeps whole nanoseconds: allow one per simulated sleep.
bool NearlyEqual(absl::Duration a, absl::Duration b, int sleeps) {
  return absl::AbsDuration(a - b) <= absl::Nanoseconds(sleeps);
}

// A stream of one shard that takes 10 records a second.
std::unique_ptr<TestStream> MakeLimitedStream(kinlet::ManualClock* clock) {
  kinlet::StreamOptions options;
  options.name = "retry-stream";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.limits.write_records_per_second = 10;
  options.shard_capacity_bytes = 4 << 20;
  options.shard_capacity_records = 1024;
  auto stream = TestStream::Create(options, clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

std::string ReadAt(const TestStream& stream, kinlet::SequenceNumber sequence) {
  auto it =
      stream.GetShardIterator("shardId-000000000000", IteratorPosition::AtSequenceNumber(sequence));
  REQUIRE(it.ok());
  auto page = stream.GetRecords(*it, 1);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 1);
  REQUIRE(page->records[0].sequence_number == sequence);
  return page->records[0].data;
}

}  // namespace

TEST_CASE("Backoff is deterministic per seed", "[retry]") {
  kinlet::RetryOptions options = Options();
  kinlet::Backoff a(options);
  kinlet::Backoff b(options);
  std::vector<absl::Duration> first;
  for (int i = 0; i < 40; ++i) {
    first.push_back(a.Next());
    CHECK(b.Next() == first.back());
  }
  options.jitter_seed = 4321;
  kinlet::Backoff other(options);
  std::vector<absl::Duration> second;
  for (int i = 0; i < 40; ++i) second.push_back(other.Next());
  CHECK(first != second);
}

TEST_CASE("Backoff delays lie within [0, min(max, initial * 2^n)]", "[retry]") {
  kinlet::RetryOptions options;
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Seconds(1);
  // Over many seeds, each attempt's delays fill their whole range (full jitter).
  for (int n = 0; n < 12; ++n) {
    const absl::Duration cap =
        std::min(options.max_backoff, options.initial_backoff * (int64_t{1} << n));
    absl::Duration lo = absl::InfiniteDuration();
    absl::Duration hi = absl::ZeroDuration();
    for (uint64_t seed = 1; seed <= 300; ++seed) {
      options.jitter_seed = seed;
      kinlet::Backoff backoff(options);
      absl::Duration d;
      for (int i = 0; i <= n; ++i) d = backoff.Next();
      INFO("attempt " << n << " seed " << seed << " delay " << absl::FormatDuration(d));
      CHECK(d >= absl::ZeroDuration());
      CHECK(d <= cap);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    INFO("attempt " << n);
    CHECK(lo < cap * 0.1);
    CHECK(hi > cap * 0.9);
  }

  SECTION("the cap holds for any number of attempts") {
    options.jitter_seed = 7;
    kinlet::Backoff backoff(options);
    for (int i = 0; i < 200; ++i) {
      const absl::Duration d = backoff.Next();
      CHECK(d >= absl::ZeroDuration());
      CHECK(d <= options.max_backoff);
    }
  }
  SECTION("a zero initial backoff never waits") {
    options.initial_backoff = absl::ZeroDuration();
    kinlet::Backoff backoff(options);
    for (int i = 0; i < 10; ++i) CHECK(backoff.Next() == absl::ZeroDuration());
  }
}

TEST_CASE("RetryWithBackoff retries throttling and sleeps through the clock", "[retry]") {
  kinlet::ManualClock clock;
  const absl::Time t0 = clock.Now();
  const kinlet::RetryOptions options = Options();
  int calls = 0;

  SECTION("a function throttled twice succeeds on its third call") {
    const absl::Status s = kinlet::RetryWithBackoff(clock, options, [&] {
      ++calls;
      return calls <= 2 ? kinlet::ProvisionedThroughputExceeded("x") : absl::OkStatus();
    });
    CHECK(s.ok());
    CHECK(calls == 3);
    const absl::Duration slept = clock.Now() - t0;
    CHECK(slept > absl::ZeroDuration());
    CHECK(slept <= absl::Milliseconds(25 + 50));
    CHECK(NearlyEqual(slept, FirstDelays(options, 2), 2));
  }
  SECTION("a StatusOr result comes back with its value") {
    const absl::StatusOr<int> r =
        kinlet::RetryWithBackoff(clock, options, [&]() -> absl::StatusOr<int> {
          ++calls;
          if (calls == 1) return kinlet::ShardFull("full");
          if (calls == 2) return kinlet::InternalFailure("Internal Service Failure");
          if (calls == 3) return kinlet::Throttled();
          return 42;
        });
    REQUIRE(r.ok());
    CHECK(*r == 42);
    CHECK(calls == 4);
    CHECK(NearlyEqual(clock.Now() - t0, FirstDelays(options, 3), 3));
  }
  SECTION("success at once calls once and never sleeps") {
    CHECK(kinlet::RetryWithBackoff(clock, options, [&] {
            ++calls;
            return absl::OkStatus();
          }).ok());
    CHECK(calls == 1);
    CHECK(clock.Now() == t0);
  }
}

TEST_CASE("RetryWithBackoff stops at once on an error not worth retrying", "[retry]") {
  kinlet::ManualClock clock;
  const absl::Time t0 = clock.Now();
  const absl::Status error =
      GENERATE(kinlet::InvalidArgument("bad"), kinlet::ExpiredIterator("old"),
               kinlet::ResourceNotFound("gone"), absl::InternalError("x"));
  int calls = 0;
  const absl::Status s = kinlet::RetryWithBackoff(clock, Options(), [&] {
    ++calls;
    return error;
  });
  CHECK(s == error);
  CHECK(calls == 1);
  CHECK(clock.Now() == t0);
}

TEST_CASE("RetryWithBackoff stops after max_attempts", "[retry]") {
  kinlet::ManualClock clock;
  const absl::Time t0 = clock.Now();
  const int max_attempts = GENERATE(1, 2, 4, 10);
  const kinlet::RetryOptions options = Options(max_attempts);
  int calls = 0;
  const absl::Status s = kinlet::RetryWithBackoff(clock, options, [&] {
    ++calls;
    return kinlet::ProvisionedThroughputExceeded("x");
  });
  CHECK(kinlet::IsProvisionedThroughputExceeded(s));
  CHECK(std::string(s.message()) == "x");
  CHECK(calls == max_attempts);
  // It sleeps between attempts only, not after the last one.
  CHECK(NearlyEqual(clock.Now() - t0, FirstDelays(options, max_attempts - 1), max_attempts));
}

TEST_CASE("RetryWithBackoff stops before sleeping past the deadline", "[retry]") {
  kinlet::ManualClock clock;
  const absl::Time t0 = clock.Now();
  kinlet::RetryOptions options = Options(1000);
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(40);
  options.deadline = t0 + absl::Milliseconds(200);
  int calls = 0;
  const absl::Status s = kinlet::RetryWithBackoff(clock, options, [&] {
    ++calls;
    return kinlet::ProvisionedThroughputExceeded("x");
  });
  CHECK(kinlet::IsProvisionedThroughputExceeded(s));
  CHECK(clock.Now() <= options.deadline);
  CHECK(calls > 1);
  CHECK(calls < 1000);

  // Exactly: it slept each delay that ended by the deadline, and stopped at
  // the first that would not.
  kinlet::Backoff backoff(options);
  absl::Duration slept;
  int expected_calls = 1;
  for (;;) {
    const absl::Duration d = backoff.Next();
    if (t0 + slept + d > options.deadline) break;
    slept += d;
    ++expected_calls;
  }
  CHECK(calls == expected_calls);
  CHECK(NearlyEqual(clock.Now() - t0, slept, calls));
  // The next delay would have crossed the deadline.
  CHECK(clock.Now() + absl::Milliseconds(40) > options.deadline);

  SECTION("a deadline already passed allows one attempt") {
    clock.Set(t0);
    options.deadline = t0 - absl::Seconds(1);
    calls = 0;
    const absl::Status late = kinlet::RetryWithBackoff(clock, options, [&] {
      ++calls;
      return kinlet::ProvisionedThroughputExceeded("x");
    });
    CHECK(kinlet::IsProvisionedThroughputExceeded(late));
    CHECK(calls == 1);
    CHECK(clock.Now() == t0);
  }
}

TEST_CASE("PutRecordWithRetry waits for a shard at its write limit", "[retry]") {
  kinlet::ManualClock clock;
  auto stream = MakeLimitedStream(&clock);
  const absl::Time t0 = clock.Now();
  for (int i = 0; i < 10; ++i) REQUIRE(stream->PutRecord("k", "v" + std::to_string(i)).ok());
  auto refused = stream->PutRecord("k", "v10");
  REQUIRE_FALSE(refused.ok());
  CHECK(kinlet::IsProvisionedThroughputExceeded(refused.status()));
  CHECK(std::string(refused.status().message()) == kRateExceeded);

  SECTION("with retries it succeeds once a token has refilled") {
    kinlet::RetryOptions retry = Options(100);
    auto put = stream->PutRecordWithRetry("k", "v10", retry);
    REQUIRE(put.ok());
    CHECK(put->shard_id == "shardId-000000000000");
    // One record at 10 records/s refills in 100 ms: the simulated sleeps
    // moved the clock at least that far.
    CHECK(clock.Now() - t0 >= absl::Milliseconds(100));
    CHECK(ReadAt(*stream, put->sequence_number) == "v10");
    const kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
    CHECK(m.incoming_records == 11);
    CHECK(m.put_record_success == 11);
    CHECK(m.write_provisioned_throughput_exceeded >= 2);
  }
  SECTION("one attempt is just PutRecord") {
    auto put = stream->PutRecordWithRetry("k", "v10", Options(1));
    REQUIRE_FALSE(put.ok());
    CHECK(kinlet::IsProvisionedThroughputExceeded(put.status()));
    CHECK(std::string(put.status().message()) == kRateExceeded);
    CHECK(clock.Now() == t0);
  }
  SECTION("a deadline before the refill gives the last error") {
    kinlet::RetryOptions retry = Options(1000);
    retry.initial_backoff = absl::Milliseconds(1);
    retry.max_backoff = absl::Milliseconds(1);
    retry.deadline = t0 + absl::Milliseconds(50);
    auto put = stream->PutRecordWithRetry("k", "v10", retry);
    REQUIRE_FALSE(put.ok());
    CHECK(kinlet::IsProvisionedThroughputExceeded(put.status()));
    CHECK(clock.Now() <= retry.deadline);
    CHECK(stream->GetMetrics().shards[0].incoming_records == 10);
  }
  SECTION("errors not worth retrying return at once") {
    auto put = stream->PutRecordWithRetry("", "v", Options(100));  // empty partition key
    REQUIRE_FALSE(put.ok());
    CHECK(kinlet::IsValidationError(put.status()));
    CHECK(clock.Now() == t0);
  }
}

TEST_CASE("PutRecordsWithRetry fills the result in request order", "[retry]") {
  kinlet::ManualClock clock;
  auto stream = MakeLimitedStream(&clock);
  const absl::Time t0 = clock.Now();
  std::vector<std::string> keys, payloads;
  for (int i = 0; i < 25; ++i) {
    keys.push_back("key-" + std::to_string(i % 3));
    payloads.push_back("payload-" + std::to_string(i));
  }
  std::vector<Entry> entries;
  for (size_t i = 0; i < keys.size(); ++i) entries.push_back(Entry{keys[i], payloads[i], {}});

  SECTION("capacity returns: nothing fails") {
    kinlet::PutRecordsResult result;
    REQUIRE(stream->PutRecordsWithRetry(entries, Options(100), &result).ok());
    CHECK(result.failed_record_count == 0);
    REQUIRE(result.records.size() == entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      INFO("entry " << i);
      REQUIRE(result.records[i].ok());
      CHECK(result.records[i].error_message.empty());
      CHECK(result.records[i].shard_id == "shardId-000000000000");
      CHECK(ReadAt(*stream, result.records[i].sequence_number) == payloads[i]);
    }
    // 15 records beyond the first second's 10 need 1.5 s of refill.
    CHECK(clock.Now() - t0 >= absl::Milliseconds(1500));
    // Each entry was written once.
    const kinlet::ShardMetrics m = stream->GetMetrics().shards[0];
    CHECK(m.incoming_records == 25);
    CHECK(m.put_records_successful_records == 25);
    CHECK(m.put_records_failed_records == m.write_provisioned_throughput_exceeded);
    CHECK(m.put_records_failed_records >= 15);
  }
  SECTION("attempts run out: the failures are reported in place") {
    kinlet::PutRecordsResult result;
    REQUIRE(stream->PutRecordsWithRetry(entries, Options(2), &result).ok());
    REQUIRE(result.records.size() == entries.size());
    int failed = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      const kinlet::PutRecordsResultEntry& r = result.records[i];
      if (r.ok()) {
        CHECK(ReadAt(*stream, r.sequence_number) == payloads[i]);
      } else {
        ++failed;
        CHECK(r.error_code == kinlet::ErrorCode::kProvisionedThroughputExceeded);
        CHECK(r.error_message == kRateExceeded);
      }
    }
    CHECK(result.failed_record_count == failed);
    // The first call took 10; one short sleep cannot refill all 15 others.
    CHECK(failed > 0);
    CHECK(failed <= 15);
    CHECK(stream->GetMetrics().shards[0].incoming_records ==
          static_cast<uint64_t>(entries.size() - static_cast<size_t>(failed)));
  }
  SECTION("no failure: one call, no sleep") {
    kinlet::PutRecordsResult result;
    const std::vector<Entry> few(entries.begin(), entries.begin() + 10);
    REQUIRE(stream->PutRecordsWithRetry(few, Options(100), &result).ok());
    CHECK(result.failed_record_count == 0);
    CHECK(clock.Now() == t0);
  }
  SECTION("request-level errors return at once") {
    kinlet::PutRecordsResult result;
    const absl::Status s =
        stream->PutRecordsWithRetry(std::span<const Entry>(), Options(100), &result);
    CHECK(kinlet::IsValidationError(s));
    CHECK(clock.Now() == t0);
  }
}
