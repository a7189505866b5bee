// Tests of kinlet/fan_out.hpp and the enhanced fan-out calls of Stream:
// consumer registration and its limits, SubscribeToShard from every starting
// position, events and continuation, the lifetime and takeover rules, ends by
// deregistration, deletion, shard end and trimming, the per-consumer read
// budget, push delivery (own thread and executor), and Consumer in fan-out mode.
#include "kinlet/fan_out.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/consumer.hpp"
#include "kinlet/stream.hpp"

namespace {

using kinlet::IteratorPosition;
using kinlet::SubscriptionEnd;
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using Event = kinlet::SubscribeToShardEvent<std::string>;
constexpr const char* kShard = "shardId-000000000000";

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock, int shards = 1,
                                       void (*tweak)(kinlet::StreamOptions&) = nullptr) {
  kinlet::StreamOptions options;
  options.name = "fanned";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = shards;
  options.shard_capacity_bytes = 4 << 20;
  options.shard_capacity_records = 1024;
  if (tweak) tweak(options);
  auto stream = TestStream::Create(options, clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

std::vector<std::string> Data(const Event& e) {
  std::vector<std::string> out;
  for (const auto& r : e.records()) out.push_back(r.data);
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("Stream consumers register, describe, list and deregister as on Kinesis", "[fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1, [](kinlet::StreamOptions& o) { o.max_stream_consumers = 2; });
  auto alerts = stream->RegisterStreamConsumer("alerts");
  REQUIRE(alerts.ok());
  CHECK(alerts->consumer_name == "alerts");
  CHECK(alerts->consumer_status == kinlet::ConsumerStatus::kActive);
  CHECK(alerts->stream_arn == stream->arn());
  CHECK(alerts->consumer_arn ==
        stream->arn() + "/consumer/alerts:" +
            std::to_string(absl::ToUnixSeconds(alerts->consumer_creation_timestamp)));
  CHECK(kinlet::IsResourceInUse(stream->RegisterStreamConsumer("alerts").status()));
  CHECK(kinlet::IsValidationError(stream->RegisterStreamConsumer("no spaces").status()));
  CHECK(kinlet::IsValidationError(stream->RegisterStreamConsumer("").status()));
  REQUIRE(stream->RegisterStreamConsumer("archive").ok());
  CHECK(kinlet::IsLimitExceeded(stream->RegisterStreamConsumer("third").status()));
  CHECK(stream->DescribeStreamSummary()->consumer_count == 2);

  CHECK(stream->DescribeStreamConsumer("alerts")->consumer_arn == alerts->consumer_arn);
  CHECK(stream->DescribeStreamConsumer(alerts->consumer_arn)->consumer_name == "alerts");
  CHECK(kinlet::IsResourceNotFound(stream->DescribeStreamConsumer("nobody").status()));
  auto listed = stream->ListStreamConsumers();
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[1].consumer_name == "archive");

  REQUIRE(stream->DeregisterStreamConsumer(alerts->consumer_arn).ok());
  CHECK(kinlet::IsResourceNotFound(stream->DeregisterStreamConsumer("alerts")));
  CHECK(kinlet::IsResourceNotFound(
      stream->SubscribeToShard("alerts", kShard, IteratorPosition::Latest()).status()));
  clock.Advance(absl::Seconds(2));
  auto again = stream->RegisterStreamConsumer("alerts");
  REQUIRE(again.ok());
  CHECK(again->consumer_arn != alerts->consumer_arn);  // a new ARN: another creation time
  stream->MarkDeleted();
  CHECK(kinlet::IsResourceNotFound(stream->ListStreamConsumers().status()));
}

TEST_CASE("SubscribeToShard starts where GetShardIterator would", "[fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto first = stream->PutRecord("k", "a");
  clock.Advance(absl::Seconds(1));
  const absl::Time t = clock.Now();
  REQUIRE(stream->PutRecord("k", "b").ok());
  Event event;
  auto read = [&](const IteratorPosition& start) {
    auto sub = stream->SubscribeToShard("c", kShard, start);
    REQUIRE(sub.ok());
    REQUIRE((*sub)->Next(&event, absl::ZeroDuration()).ok());
    return Data(event);
  };
  CHECK(read(IteratorPosition::TrimHorizon()) == V{"a", "b"});
  clock.Advance(absl::Seconds(5));  // each subscription below takes over the last
  CHECK(read(IteratorPosition::AtSequenceNumber(first->sequence_number)) == V{"a", "b"});
  clock.Advance(absl::Seconds(5));
  CHECK(read(IteratorPosition::AfterSequenceNumber(first->sequence_number)) == V{"b"});
  clock.Advance(absl::Seconds(5));
  CHECK(read(IteratorPosition::AtTimestamp(t)) == V{"b"});
  clock.Advance(absl::Seconds(5));
  CHECK(read(IteratorPosition::Latest()).empty());  // a heartbeat
  CHECK(event.continuation_sequence_number.has_value());
  CHECK(kinlet::IsResourceNotFound(
      stream->SubscribeToShard("c", "shardId-000000000009", IteratorPosition::Latest()).status()));
  clock.Advance(absl::Seconds(5));
  CHECK(kinlet::IsInvalidArgument(
      stream
          ->SubscribeToShard("c", kShard,
                             IteratorPosition::AtTimestamp(clock.Now() + absl::Hours(1)))
          .status()));
}

TEST_CASE("Events carry records, the continuation and the lag", "[fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  Event event;
  REQUIRE(sub->Next(&event, absl::ZeroDuration()).ok());
  CHECK(event.records().empty());  // a heartbeat on an empty shard
  // Nothing before the start: the shard's starting sequence number, flagged
  // (a null continuation would mean the end of the shard).
  CHECK(event.continuation_sequence_number ==
        stream->GetShard(kShard).value()->starting_sequence_number());
  CHECK(event.continuation_at_shard_start);
  CHECK(event.ResumePosition().type == kinlet::ShardIteratorType::kTrimHorizon);
  auto a = stream->PutRecord("k", "a");
  clock.Advance(absl::Seconds(3));
  auto b = stream->PutRecord("k", "b");
  REQUIRE(sub->Next(&event, absl::ZeroDuration()).ok());
  CHECK(Data(event) == V{"a", "b"});
  CHECK(event.continuation_sequence_number == b->sequence_number);
  CHECK(event.millis_behind_latest == 0);
  REQUIRE(sub->Next(&event, absl::ZeroDuration()).ok());  // heartbeat: the same continuation
  CHECK(event.records().empty());
  CHECK(event.continuation_sequence_number == b->sequence_number);
  CHECK(sub->stats().records == 2);
  CHECK(sub->stats().events == 3);

  SECTION("a lagging consumer sees its lag") {
    auto lagging = MakeStream(&clock, 1, [](kinlet::StreamOptions& opt) {
      opt.max_get_records_bytes = 1;  // one record per event
    });
    REQUIRE(lagging->RegisterStreamConsumer("slow").ok());
    REQUIRE(lagging->PutRecord("k", "old").ok());
    clock.Advance(absl::Seconds(7));
    REQUIRE(lagging->PutRecord("k", "new").ok());
    clock.Advance(absl::Seconds(2));
    auto slow = *lagging->SubscribeToShard("slow", kShard, IteratorPosition::TrimHorizon());
    REQUIRE(slow->Next(&event, absl::ZeroDuration()).ok());
    CHECK(Data(event) == V{"old"});
    CHECK(event.millis_behind_latest == 2000);  // "new" has waited 2 s
  }
}

TEST_CASE("A subscription lasts its lifetime: resubscribing continues exactly", "[fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  Event event;
  REQUIRE(stream->PutRecord("k", "1").ok());
  REQUIRE(sub->Next(&event, absl::ZeroDuration()).ok());
  CHECK(Data(event) == V{"1"});
  const IteratorPosition resume = event.ResumePosition();
  REQUIRE(stream->PutRecord("k", "2").ok());
  clock.Advance(absl::Minutes(5));
  absl::Status over = sub->Next(&event, absl::ZeroDuration());
  CHECK(absl::IsOutOfRange(over));
  CHECK(sub->end() == SubscriptionEnd::kLifetimeElapsed);
  CHECK_THAT(std::string(over.message()), Catch::Matchers::Contains("lifetime elapsed"));
  CHECK(absl::IsOutOfRange(sub->Next(&event, absl::ZeroDuration())));  // stays over
  // The last event says where to continue: "2" is delivered, "1" is not again.
  auto again = stream->SubscribeToShard("c", kShard, resume);
  REQUIRE(again.ok());  // the old one ended: no 5-second wait
  REQUIRE((*again)->Next(&event, absl::ZeroDuration()).ok());
  CHECK(Data(event) == V{"2"});
}

TEST_CASE("A second subscription within 5 seconds is ResourceInUse: later it takes over",
          "[fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  REQUIRE(stream->RegisterStreamConsumer("other").ok());
  auto first = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  clock.Advance(absl::Seconds(4));
  auto busy = stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  CHECK(kinlet::IsResourceInUse(busy.status()));
  // Another consumer, or another shard, is not affected.
  CHECK(stream->SubscribeToShard("other", kShard, IteratorPosition::TrimHorizon()).ok());
  clock.Advance(absl::Seconds(1));
  auto second = stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  REQUIRE(second.ok());
  Event event;
  CHECK(kinlet::IsResourceInUse(first->Next(&event, absl::ZeroDuration())));
  CHECK(first->end() == SubscriptionEnd::kTakenOver);
  REQUIRE(stream->PutRecord("k", "v").ok());
  REQUIRE((*second)->Next(&event, absl::ZeroDuration()).ok());
  CHECK(Data(event) == V{"v"});
}

TEST_CASE("Deregistering, deleting and cancelling end subscriptions and wake their waiters",
          "[fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::Latest());
  absl::Status waited;
  auto started = std::chrono::steady_clock::now();
  std::thread waiter([&] {
    Event event;
    for (;;) {  // heartbeats would come every 60 s; the end must come at once
      waited = sub->Next(&event, absl::Seconds(60));
      if (!waited.ok()) return;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  SECTION("deregistration") {
    REQUIRE(stream->DeregisterStreamConsumer("c").ok());
    waiter.join();
    CHECK(kinlet::IsResourceNotFound(waited));
    CHECK(sub->end() == SubscriptionEnd::kConsumerDeregistered);
  }
  SECTION("deletion") {
    stream->MarkDeleted();
    waiter.join();
    CHECK(kinlet::IsResourceNotFound(waited));
    CHECK(sub->end() == SubscriptionEnd::kStreamDeleted);
  }
  SECTION("cancellation") {
    sub->Cancel();
    waiter.join();
    CHECK(absl::IsOutOfRange(waited));
    CHECK(sub->end() == SubscriptionEnd::kCancelled);
  }
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(30));
}

TEST_CASE("At a closed shard's end the final event names the children", "[fan_out][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  REQUIRE(stream->PutRecord("k", "last").ok());
  REQUIRE(stream->SplitShard(kShard, kinlet::kMaxHashKey / 2).ok());
  Event event;
  REQUIRE(sub->Next(&event, absl::ZeroDuration()).ok());
  CHECK(Data(event) == V{"last"});
  CHECK_FALSE(event.end_of_shard);
  REQUIRE(sub->Next(&event, absl::ZeroDuration()).ok());
  CHECK(event.end_of_shard);
  CHECK(event.records().empty());
  CHECK_FALSE(event.continuation_sequence_number.has_value());
  REQUIRE(event.child_shards().size() == 2);
  CHECK(event.child_shards()[0].shard_id == "shardId-000000000001");
  CHECK(absl::IsOutOfRange(sub->Next(&event, absl::ZeroDuration())));
  CHECK(sub->end() == SubscriptionEnd::kShardEnded);
}

TEST_CASE("A subscription whose next record expired ends with TrimmedDataAccess", "[fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1,
                           [](kinlet::StreamOptions& o) { o.retention_period = absl::Minutes(1); });
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  REQUIRE(stream->PutRecord("k", "soon gone").ok());
  clock.Advance(absl::Minutes(2));
  Event event;
  CHECK(kinlet::IsTrimmedDataAccess(sub->Next(&event, absl::ZeroDuration())));
  CHECK(sub->end() == SubscriptionEnd::kDataTrimmed);
}

TEST_CASE("Each consumer has its own read budget per shard", "[fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(
      &clock, 1, [](kinlet::StreamOptions& o) { o.limits.subscribe_bytes_per_second = 1000; });
  REQUIRE(stream->RegisterStreamConsumer("slow").ok());
  REQUIRE(stream->RegisterStreamConsumer("fast").ok());
  for (int i = 0; i < 6; ++i) REQUIRE(stream->PutRecord("k", std::string(499, 'x')).ok());
  auto slow = *stream->SubscribeToShard("slow", kShard, IteratorPosition::TrimHorizon());
  auto fast = *stream->SubscribeToShard("fast", kShard, IteratorPosition::TrimHorizon());
  Event event;
  REQUIRE(slow->Next(&event, absl::ZeroDuration()).ok());
  CHECK(event.records().size() == 6);  // a full budget lets one event overdraw it
  REQUIRE(stream->PutRecord("k", std::string(499, 'y')).ok());
  REQUIRE(slow->Next(&event, absl::Milliseconds(5)).ok());
  CHECK(event.records().empty());  // in debt: it waits (a heartbeat), it does not fail
  CHECK(slow->stats().throttled_waits >= 1);
  // The other consumer's budget is its own.
  REQUIRE(fast->Next(&event, absl::ZeroDuration()).ok());
  CHECK(event.records().size() == 7);
  // Polling readers are not charged either.
  auto it = *stream->GetShardIterator(kShard, IteratorPosition::TrimHorizon());
  CHECK(stream->GetRecords(it, 100)->records.size() == 7);
  clock.Advance(absl::Seconds(3));  // the debt (about 2 kB) is repaid
  REQUIRE(slow->Next(&event, absl::ZeroDuration()).ok());
  CHECK(event.records().size() == 1);
}

TEST_CASE("Push mode delivers every record in order on the delivery thread or an executor",
          "[fan_out]") {
  kinlet::StreamOptions options;
  options.name = "pushed";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_bytes = 4 << 20;
  auto stream = *kinlet::Stream<std::string>::Create(options);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> seen;
  absl::Status ended;
  bool over = false;
  int executed = 0;
  std::deque<std::function<void()>> tasks;
  auto on_event = [&](const kinlet::SubscribeToShardEvent<std::string>& e) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& r : e.records()) seen.push_back(r.data);
    cv.notify_all();
  };
  auto on_end = [&](const absl::Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    ended = s;
    over = true;
    cv.notify_all();
  };
  const bool use_executor = GENERATE(false, true);
  std::thread executor_thread;
  kinlet::Executor executor;
  bool stop_executor = false;
  if (use_executor) {
    executor = [&](std::function<void()> task) {
      std::lock_guard<std::mutex> lock(mu);
      tasks.push_back(std::move(task));
      cv.notify_all();
    };
    executor_thread = std::thread([&] {
      std::unique_lock<std::mutex> lock(mu);
      for (;;) {
        cv.wait(lock, [&] { return stop_executor || !tasks.empty(); });
        if (tasks.empty()) return;
        auto task = std::move(tasks.front());
        tasks.pop_front();
        ++executed;
        lock.unlock();
        task();
        lock.lock();
      }
    });
  }
  // Copied events, or zero-copy views of the stored records.
  const bool views = GENERATE(false, true);
  auto on_view = [&](const kinlet::SubscribeToShardEventView<std::string>& e) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& r : e.records) seen.emplace_back(r.data);
    cv.notify_all();
  };
  auto sub = views ? stream->SubscribeToShard("c", kShard, IteratorPosition::Latest(), on_view,
                                              on_end, executor)
                   : stream->SubscribeToShard("c", kShard, IteratorPosition::Latest(), on_event,
                                              on_end, executor);
  REQUIRE(sub.ok());
  for (int i = 0; i < 1000; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    CHECK(cv.wait_for(lock, std::chrono::seconds(30), [&] { return seen.size() == 1000; }));
    for (int i = 0; i < 1000 && i < static_cast<int>(seen.size()); ++i) {
      if (seen[static_cast<size_t>(i)] != std::to_string(i)) FAIL("out of order at " << i);
    }
  }
  if (views) CHECK((*sub)->stats().copied_records == 0);  // every record lent in place
  REQUIRE(stream->DeregisterStreamConsumer("c").ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    CHECK(cv.wait_for(lock, std::chrono::seconds(30), [&] { return over; }));
    CHECK(kinlet::IsResourceNotFound(ended));
    if (use_executor) CHECK(executed >= 1);
    stop_executor = true;
    cv.notify_all();
  }
  sub->reset();
  if (executor_thread.joinable()) executor_thread.join();
}

TEST_CASE("Consumer in fan-out mode follows lineage over subscriptions", "[fan_out][consumer]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("efo").ok());
  kinlet::ConsumerOptions options;
  options.fan_out_consumer = "efo";
  auto consumer =
      kinlet::Consumer<std::string, kinlet::ManualClockTraits>::Create(stream.get(), options);
  REQUIRE(consumer.ok());
  for (int i = 0; i < 3; ++i) REQUIRE(stream->PutRecord("key", "before-" + std::to_string(i)).ok());
  REQUIRE(stream->SplitShard(kShard, kinlet::kMaxHashKey / 2).ok());
  for (int i = 0; i < 3; ++i) REQUIRE(stream->PutRecord("key", "after-" + std::to_string(i)).ok());
  std::vector<std::string> order;
  kinlet::ConsumerBatch<std::string> batch;
  for (int idle = 0; idle < 3;) {
    REQUIRE((*consumer)->Poll(&batch).ok());
    if (batch.records().empty()) {
      ++idle;
      continue;
    }
    idle = 0;
    for (const auto& r : batch.records()) order.push_back(r.data);
  }
  CHECK(order == V{"before-0", "before-1", "before-2", "after-0", "after-1", "after-2"});
  CHECK((*consumer)->FollowedShards().size() == 2);
  SECTION("and resubscribes when a subscription's lifetime ends") {
    clock.Advance(absl::Minutes(6));
    REQUIRE(stream->PutRecord("key", "later").ok());
    bool found = false;
    for (int i = 0; i < 4 && !found; ++i) {
      absl::Status s = (*consumer)->Poll(&batch);
      INFO(s.ToString());
      REQUIRE(s.ok());
      for (const auto& r : batch.records()) found = found || r.data == "later";
    }
    CHECK(found);
  }
}

TEST_CASE("Consumers of a shared-handle payload share the payload, not copies of it", "[fan_out]") {
  struct Blob {
    std::string bytes;
  };
  using Shared = std::shared_ptr<const Blob>;
  kinlet::StreamOptions options;
  options.name = "shared";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_bytes = 4 << 20;
  auto stream = *kinlet::Stream<Shared>::Create(options);
  const Shared blob = std::make_shared<const Blob>(Blob{std::string(64 << 10, 'b')});
  std::vector<std::unique_ptr<kinlet::Subscription<Shared>>> subs;
  for (int c = 0; c < 4; ++c) {
    const std::string name = "c" + std::to_string(c);
    REQUIRE(stream->RegisterStreamConsumer(name).ok());
    subs.push_back(*stream->SubscribeToShard(name, kShard, IteratorPosition::TrimHorizon()));
  }
  REQUIRE(stream->PutRecord("k", blob).ok());
  std::vector<kinlet::SubscribeToShardEvent<Shared>> events(subs.size());
  for (size_t c = 0; c < subs.size(); ++c) {
    REQUIRE(subs[c]->Next(&events[c], absl::ZeroDuration()).ok());
    REQUIRE(events[c].records().size() == 1);
    CHECK(events[c].records()[0].data.get() == blob.get());  // the same 64 KiB, not a copy
  }
  CHECK(blob.use_count() >= 1 + static_cast<long>(subs.size()));
}

namespace {
using View = kinlet::SubscribeToShardEventView<std::string>;

// Drains a subscription with NextView: the payloads (copied out) and where
// each was lent from.
struct Viewed {
  std::vector<std::string> data;
  std::vector<const char*> where;
  std::vector<kinlet::SequenceNumber> sequences;
};
Viewed DrainViews(kinlet::Subscription<std::string, kinlet::ManualClockTraits>& sub) {
  Viewed out;
  for (;;) {
    size_t got = 0;
    REQUIRE(sub.NextView(
                   [&](const View& e) {
                     for (const auto& r : e.records) {
                       out.data.emplace_back(r.data);
                       out.where.push_back(r.data.data());
                       out.sequences.push_back(r.sequence_number);
                     }
                     got = e.records.size();
                   },
                   absl::ZeroDuration())
                .ok());
    if (got == 0) return out;
  }
}
}  // namespace

TEST_CASE("Zero-copy events lend every consumer the one stored copy", "[fan_out][zero_copy]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  std::vector<std::unique_ptr<kinlet::Subscription<std::string, kinlet::ManualClockTraits>>> subs;
  for (int c = 0; c < 4; ++c) {
    const std::string name = "viewer" + std::to_string(c);
    REQUIRE(stream->RegisterStreamConsumer(name).ok());
    subs.push_back(*stream->SubscribeToShard(name, kShard, IteratorPosition::TrimHorizon()));
  }
  std::vector<std::string> sent;
  for (int i = 0; i < 50; ++i)
    sent.push_back("payload-" + std::to_string(i) + std::string(40, 'x'));
  for (const auto& s : sent) REQUIRE(stream->PutRecord("k", s).ok());
  const Viewed first = DrainViews(*subs[0]);
  CHECK(first.data == sent);
  for (size_t i = 0; i < sent.size(); ++i) {
    CHECK(first.where[i] != sent[i].data());  // the shard's copy, not the caller's
  }
  for (size_t c = 1; c < subs.size(); ++c) {
    const Viewed other = DrainViews(*subs[c]);
    CHECK(other.data == sent);
    CHECK(other.where == first.where);  // the same bytes: no copy per consumer
    CHECK(other.sequences == first.sequences);
    CHECK(subs[c]->stats().copied_records == 0);
    CHECK(subs[c]->stats().records == sent.size());
  }
  // The same records through the copying Next, for comparison: same sequence numbers.
  REQUIRE(stream->RegisterStreamConsumer("copier").ok());
  auto copier = *stream->SubscribeToShard("copier", kShard, IteratorPosition::TrimHorizon());
  Event event;
  REQUIRE(copier->Next(&event, absl::ZeroDuration()).ok());
  REQUIRE(event.records().size() == sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    CHECK(event.records()[i].sequence_number == first.sequences[i]);
    CHECK(event.records()[i].data.data() != first.where[i]);
  }
}

TEST_CASE("Zero-copy events end, heartbeat and finish a closed shard as copied ones",
          "[fan_out][zero_copy][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  int calls = 0;
  bool ended = false;
  std::vector<std::string> children;
  std::optional<kinlet::SequenceNumber> continuation;
  auto visit = [&](const View& e) {
    ++calls;
    continuation = e.continuation_sequence_number;
    ended = e.end_of_shard;
    for (const auto& c : e.child_shards) children.push_back(c.shard_id);
  };
  REQUIRE(sub->NextView(visit, absl::ZeroDuration()).ok());  // a heartbeat
  CHECK(calls == 1);
  CHECK(continuation.has_value());  // the shard's start: only the final event has none
  auto put = stream->PutRecord("k", "only");
  REQUIRE(put.ok());
  REQUIRE(sub->NextView(visit, absl::ZeroDuration()).ok());
  CHECK(continuation == put->sequence_number);
  REQUIRE(stream->SplitShard(kShard, kinlet::kMaxHashKey / 2).ok());
  REQUIRE(sub->NextView(visit, absl::ZeroDuration()).ok());
  CHECK(ended);
  CHECK_FALSE(continuation.has_value());
  CHECK(children == V{"shardId-000000000001", "shardId-000000000002"});
  const int before = calls;
  CHECK(absl::IsOutOfRange(sub->NextView(visit, absl::ZeroDuration())));
  CHECK(calls == before);  // not called once the subscription is over
}

TEST_CASE("A consumer about to be overtaken gets copies, a pinned view makes the writer refuse",
          "[fan_out][zero_copy]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1, [](kinlet::StreamOptions& o) {
    o.shard_capacity_records = 64;  // reuse horizon moves 64 / 16 = 4 records at a time
    o.full_policy = kinlet::FullPolicy::kOverwrite;
  });
  REQUIRE(stream->RegisterStreamConsumer("late").ok());
  REQUIRE(stream->RegisterStreamConsumer("pinner").ok());
  for (int i = 0; i < 65; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  // Record 0 was overwritten; records 1..4 are within the writer's reuse
  // horizon: they cannot be lent in place, so the late consumer gets copies.
  auto late = *stream->SubscribeToShard("late", kShard, IteratorPosition::TrimHorizon());
  const Viewed viewed = DrainViews(*late);
  REQUIRE(viewed.data.size() == 64);
  CHECK(viewed.data.front() == "1");
  CHECK(viewed.data.back() == "64");
  // Put 65 trimmed record 0 and moved the horizon to 1 + 64 / 16: 1..4 copied.
  CHECK(late->stats().copied_records == 4);

  // A consumer viewing records the writer must reuse does not hold the writer:
  // its puts are refused (ShardFull, nothing dropped) until the visitor
  // returns; the bytes the visitor sees do not change meanwhile.
  auto pinner = *stream->SubscribeToShard("pinner", kShard, IteratorPosition::Latest());
  for (int i = 0; i < 8; ++i) REQUIRE(stream->PutRecord("k", "pinned-" + std::to_string(i)).ok());
  int written = 0;
  absl::Status refused;
  bool intact = true;
  REQUIRE(pinner
              ->NextView(
                  [&](const View& e) {
                    REQUIRE(e.records.size() == 8);
                    // On another thread, as a real writer: it must return.
                    std::thread writer([&] {
                      for (; written < 100; ++written) {
                        refused = stream->PutRecord("k", "new-" + std::to_string(written)).status();
                        if (!refused.ok()) return;
                      }
                    });
                    writer.join();
                    for (size_t i = 0; i < e.records.size(); ++i) {
                      intact = intact && e.records[i].data == "pinned-" + std::to_string(i);
                    }
                  },
                  absl::ZeroDuration())
              .ok());
  // The ring holds 64 records and the pinned ones are 65..72: the writer needs
  // their memory (or a horizon past them) after 52 to 56 more puts, depending
  // on the horizon's phase.
  CHECK(kinlet::IsShardFull(refused));
  CHECK(written >= 52);
  CHECK(written <= 56);
  CHECK(intact);
  CHECK(pinner->stats().copied_records == 0);
  // The visitor returned: the refused put succeeds now, the pinner reads on
  // from where it was (nothing was dropped for the refused put), and the
  // writer goes on.
  REQUIRE(stream->PutRecord("k", "new-" + std::to_string(written)).ok());
  Event event;
  REQUIRE(pinner->Next(&event, absl::ZeroDuration()).ok());
  REQUIRE(event.records().size() == static_cast<size_t>(written) + 1);
  CHECK(event.records().front().data == "new-0");
  CHECK(event.records().back().data == "new-" + std::to_string(written));
  for (int i = written + 1; i < 100; ++i) {
    REQUIRE(stream->PutRecord("k", "new-" + std::to_string(i)).ok());
  }
}

TEST_CASE("Views of object payloads are the stored objects, trivial payloads are copied",
          "[fan_out][zero_copy]") {
  struct Blob {
    std::string bytes;
  };
  using Shared = std::shared_ptr<const Blob>;
  kinlet::StreamOptions options;
  options.name = "objects";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_bytes = 4 << 20;
  auto shared = *kinlet::Stream<Shared>::Create(options);
  REQUIRE(shared->RegisterStreamConsumer("a").ok());
  REQUIRE(shared->RegisterStreamConsumer("b").ok());
  auto a = *shared->SubscribeToShard("a", kShard, IteratorPosition::TrimHorizon());
  auto b = *shared->SubscribeToShard("b", kShard, IteratorPosition::TrimHorizon());
  REQUIRE(shared->PutRecord("k", std::make_shared<const Blob>(Blob{"blob"})).ok());
  const Shared* seen_a = nullptr;
  const Shared* seen_b = nullptr;
  REQUIRE(a->NextView(
               [&](const auto& e) {
                 if (!e.records.empty()) seen_a = &e.records[0].data.get();
               },
               absl::ZeroDuration())
              .ok());
  REQUIRE(b->NextView(
               [&](const auto& e) {
                 if (!e.records.empty()) seen_b = &e.records[0].data.get();
               },
               absl::ZeroDuration())
              .ok());
  CHECK(seen_a != nullptr);
  CHECK(seen_a == seen_b);  // both lent the shard's own handle object
  CHECK(a->stats().copied_records == 0);

  struct Point {
    int x, y;
  };
  auto points = *kinlet::Stream<Point>::Create(options);
  REQUIRE(points->RegisterStreamConsumer("p").ok());
  auto p = *points->SubscribeToShard("p", kShard, IteratorPosition::TrimHorizon());
  REQUIRE(points->PutRecord("k", Point{3, 4}).ok());
  int x = 0;
  REQUIRE(p->NextView(
               [&](const auto& e) {
                 if (!e.records.empty()) x = e.records[0].data->x;
               },
               absl::ZeroDuration())
              .ok());
  CHECK(x == 3);
  CHECK(p->stats().copied_records == 1);
}

TEST_CASE("A refused subscription leaves nothing behind for deregistration to trip on",
          "[fan_out][regression]") {
  // Regression (found by the differential tests): a SubscribeToShard refused for
  // its position left an empty slot that crashed DeregisterStreamConsumer.
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto put = stream->PutRecord("k", "v");
  REQUIRE(put.ok());
  const kinlet::SequenceNumber future(put->sequence_number.stream_tag(), 0, 99);
  CHECK(kinlet::IsInvalidArgument(
      stream->SubscribeToShard("c", kShard, IteratorPosition::AtSequenceNumber(future)).status()));
  CHECK(stream->DeregisterStreamConsumer("c").ok());
}

TEST_CASE("A subscription past its lifetime ended then, whatever happens later",
          "[fan_out][regression]") {
  // Regression (found by the differential tests): a takeover or deregistration
  // long after a subscription's 5 minutes relabelled its end.
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto first = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  clock.Advance(absl::Minutes(6));
  auto second = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  Event event;
  CHECK(absl::IsOutOfRange(first->Next(&event, absl::ZeroDuration())));
  CHECK(first->end() == SubscriptionEnd::kLifetimeElapsed);
  clock.Advance(absl::Minutes(6));
  REQUIRE(stream->DeregisterStreamConsumer("c").ok());
  CHECK(absl::IsOutOfRange(second->Next(&event, absl::ZeroDuration())));
  CHECK(second->end() == SubscriptionEnd::kLifetimeElapsed);
}
