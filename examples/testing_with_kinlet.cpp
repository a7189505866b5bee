// testing_with_kinlet: how to test your own Kinesis producer and consumer code
// against kinlet, deterministically and fast. Copy this pattern:
//  1. Write your code against kinlet::Stream (or a template over the stream
//     type), so tests can hand it a stream on a ManualClock.
//  2. In a test, put the stream at its limits or inject faults, and assert
//     that your code retries and loses nothing.
// Time only moves when the test (or a simulated sleep) moves it: no test here
// sleeps, and every run takes the same path.
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "kinlet/kinlet.hpp"

namespace {

using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

// ---- The user's code under test ---------------------------------------------

// A producer that sends events in batches and retries what fails.
class EventProducer {
 public:
  explicit EventProducer(TestStream* stream) : stream_(stream) {}
  // Returns how many events were acknowledged.
  size_t Send(const std::vector<std::string>& events) {
    // Entries refer to their key and payload: keep both alive for the call.
    std::vector<std::string> users;
    for (const auto& e : events) users.push_back(e.substr(0, e.find(':')));
    std::vector<kinlet::PutRecordsRequestEntry<std::string>> entries;
    for (size_t i = 0; i < events.size(); ++i) entries.push_back({users[i], events[i], {}});
    kinlet::RetryOptions retry;
    retry.max_attempts = 50;
    kinlet::PutRecordsResult result;
    if (!stream_->PutRecordsWithRetry(entries, retry, &result).ok()) return 0;
    return events.size() - static_cast<size_t>(result.failed_record_count);
  }

 private:
  TestStream* stream_;
};

// A consumer that counts events per user.
class EventCounter {
 public:
  explicit EventCounter(TestStream* stream)
      : consumer_(std::move(
            *kinlet::Consumer<std::string, kinlet::ManualClockTraits>::Create(stream, {}))) {}
  // Reads what is available; returns false on an error it cannot handle.
  bool Drain() {
    kinlet::ConsumerBatch<std::string> batch;
    for (int idle = 0; idle < 3;) {
      if (!consumer_->Poll(&batch).ok()) return false;
      if (batch.records().empty()) {
        ++idle;
        continue;
      }
      idle = 0;
      for (const auto& r : batch.records()) ++per_user_[r.partition_key];
    }
    return true;
  }
  const std::map<std::string, int>& per_user() const { return per_user_; }

 private:
  std::unique_ptr<kinlet::Consumer<std::string, kinlet::ManualClockTraits>> consumer_;
  std::map<std::string, int> per_user_;
};

// ---- The tests ----------------------------------------------------------------

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock) {
  kinlet::StreamOptions options;
  options.name = "events";
  options.shard_count = 2;
  options.limits = kinlet::ThroughputLimits::Kinesis();  // the real thing: 1,000 records/s
  return std::move(*TestStream::Create(options, clock));
}

std::vector<std::string> Events(int n) {
  std::vector<std::string> events;
  for (int i = 0; i < n; ++i) events.push_back("user" + std::to_string(i % 7) + ":click");
  return events;
}

}  // namespace

TEST_CASE("The producer rides out throttling at a shard's limit", "[example]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  EventProducer producer(stream.get());
  // 5,000 events in one go: far over two shards' 2,000 records per second.
  const absl::Time start = clock.Now();
  CHECK(producer.Send(Events(500)) == 500);
  size_t sent = 500;
  for (int i = 0; i < 9; ++i) sent += producer.Send(Events(500));
  CHECK(sent == 5000);
  // The retries waited (simulated) for the limits to refill...
  CHECK(clock.Now() - start >= absl::Seconds(1));
  auto metrics = stream->GetMetrics();
  CHECK(metrics.totals.write_provisioned_throughput_exceeded > 0);
  // ...and every event is in the stream exactly once.
  CHECK(metrics.totals.incoming_records == 5000);
}

TEST_CASE("Producer and consumer lose nothing under injected faults", "[example]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  kinlet::FaultInjection faults;
  faults.seed = 42;                        // same seed, same faults, every run
  faults.throttle_put_fraction = 0.2;      // ProvisionedThroughputExceeded
  faults.internal_failure_fraction = 0.1;  // InternalFailure on PutRecords entries
  faults.throttle_read_fraction = 0.3;     // throttled GetRecords
  faults.expire_iterator_fraction = 0.1;   // ExpiredIterator
  REQUIRE(stream->SetFaultInjection(faults).ok());
  EventProducer producer(stream.get());
  EventCounter counter(stream.get());
  size_t sent = 0;
  for (int round = 0; round < 4; ++round) {
    sent += producer.Send(Events(140));
    REQUIRE(counter.Drain());
  }
  // Drain until nothing more arrives (throttled reads are retried on later polls).
  for (int i = 0; i < 20; ++i) {
    clock.Advance(absl::Milliseconds(250));
    REQUIRE(counter.Drain());
  }
  CHECK(sent == 560);
  int total = 0;
  for (const auto& [user, n] : counter.per_user()) total += n;
  CHECK(total == 560);  // every acknowledged event, read once
  CHECK(counter.per_user().size() == 7);
}

TEST_CASE("Iterators expire after five minutes of (simulated) silence", "[example]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  auto it = stream->GetShardIterator("shardId-000000000000", kinlet::IteratorPosition::Latest());
  REQUIRE(it.ok());
  clock.Advance(absl::Minutes(6));
  CHECK(kinlet::IsExpiredIterator(stream->GetRecords(*it, 10).status()));
}
