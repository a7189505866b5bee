// Tests of kinlet/consumer.hpp under contention, over long reshard histories
// and across stream deletion: children that cannot be opened at once are
// retried, never dropped (issue 14, defect 1); skip counts are exact for every
// start in both reading modes; the per-shard bookkeeping stays bounded; a
// consumer keeps a shared stream alive and fails cleanly once it is deleted.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/consumer.hpp"
#include "kinlet/registry.hpp"

namespace {

using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using TestConsumer = kinlet::Consumer<std::string, kinlet::ManualClockTraits>;
using V = std::vector<std::string>;

constexpr const char* kParent = "shardId-000000000000";
constexpr const char* kLowChild = "shardId-000000000001";

kinlet::PutRecordOptions At(kinlet::HashKey key) {
  kinlet::PutRecordOptions o;
  o.explicit_hash_key = key;
  return o;
}

// What one consumer received, per shard, in delivery order.
struct Received {
  std::map<std::string, V> by_shard;
  size_t total = 0;
  void Add(const kinlet::ConsumerBatch<std::string>& batch) {
    for (const auto& r : batch.records()) {
      by_shard[std::string(batch.shard_id)].push_back(r.data);
      ++total;
    }
  }
};

// One unsplit shard with ten records, split in two, ten more records (five
// per child): what every whole-stream consumer must read.
void PutSplitPut(TestStream& stream) {
  for (int i = 0; i < 10; ++i) REQUIRE(stream.PutRecord("k", "p" + std::to_string(i)).ok());
  REQUIRE(stream.SplitShard(kParent, kinlet::kMaxHashKey / 2).ok());
  for (int i = 0; i < 5; ++i) {
    REQUIRE(stream.PutRecord("k", "lo" + std::to_string(i), At(0)).ok());
    REQUIRE(stream.PutRecord("k", "hi" + std::to_string(i), At(kinlet::kMaxHashKey)).ok());
  }
}

void CheckReadAll(const Received& got) {
  CHECK(got.total == 20);
  CHECK(got.by_shard.at(kParent) == V{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"});
  CHECK(got.by_shard.at(kLowChild) == V{"lo0", "lo1", "lo2", "lo3", "lo4"});
  CHECK(got.by_shard.at("shardId-000000000002") == V{"hi0", "hi1", "hi2", "hi3", "hi4"});
}

// Polls every consumer once per round, the clock advancing `step` a round
// after the first `frozen` rounds, until each has 20 records (or a bound).
void PollAll(kinlet::ManualClock& clock, std::vector<std::unique_ptr<TestConsumer>>& consumers,
             std::vector<Received>& got, int frozen, absl::Duration step) {
  kinlet::ConsumerBatch<std::string> batch;
  for (int round = 0; round < 20000; ++round) {
    bool all = true;
    for (size_t c = 0; c < consumers.size(); ++c) {
      absl::Status s = consumers[c]->Poll(&batch);
      INFO(s.ToString());
      REQUIRE(s.ok());
      got[c].Add(batch);
      all = all && got[c].total >= 20;
    }
    if (all) return;
    if (round >= frozen) clock.Advance(step);
  }
}

}  // namespace

TEST_CASE("Consumers at the default iterator limit read every child of a split",
          "[consumer][reshard][issue14]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "contended";
  options.shard_count = 1;
  // Kinesis's limits: GetShardIterator 5 calls/s per shard, shared by every
  // reader. GetRecords' own limit is lifted so that all eight consumers reach
  // the children at the same instant (and contend for their iterators).
  options.limits = kinlet::ThroughputLimits::Kinesis();
  options.limits.read_calls_per_second = 0;
  options.limits.read_bytes_per_second = 0;
  REQUIRE(options.limits.get_shard_iterator_calls_per_second == 5);
  auto stream = std::move(*TestStream::Create(options, &clock));
  std::vector<std::unique_ptr<TestConsumer>> consumers;
  SECTION("consumers created a second apart") {
    for (int c = 0; c < 8; ++c) {
      auto consumer = TestConsumer::Create(stream.get(), {});
      REQUIRE(consumer.ok());
      consumers.push_back(*std::move(consumer));
      clock.Advance(absl::Seconds(1));
    }
  }
  SECTION("consumers created at one instant (some start throttled)") {
    for (int c = 0; c < 8; ++c) {
      auto consumer = TestConsumer::Create(stream.get(), {});
      REQUIRE(consumer.ok());
      consumers.push_back(*std::move(consumer));
    }
  }
  PutSplitPut(*stream);
  std::vector<Received> got(consumers.size());
  PollAll(clock, consumers, got, /*frozen=*/5, absl::Milliseconds(10));
  uint64_t retries = 0;
  for (size_t c = 0; c < consumers.size(); ++c) {
    INFO("consumer " << c);
    CheckReadAll(got[c]);
    retries += consumers[c]->open_retries();
  }
  CHECK(retries > 0);  // the limit did refuse some opens: they were retried
}

TEST_CASE("Iterator renewals refused by the iterator limit are retried, not returned",
          "[consumer][issue14]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "renewing";
  options.shard_count = 1;
  options.limits = kinlet::ThroughputLimits::Kinesis();
  options.limits.read_calls_per_second = 0;
  options.limits.read_bytes_per_second = 0;
  auto stream = std::move(*TestStream::Create(options, &clock));
  std::vector<std::unique_ptr<TestConsumer>> consumers;
  for (int c = 0; c < 8; ++c) {
    consumers.push_back(*TestConsumer::Create(stream.get(), {}));
    clock.Advance(absl::Seconds(1));
  }
  for (int i = 0; i < 5; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  std::vector<Received> got(consumers.size());
  kinlet::ConsumerBatch<std::string> batch;
  for (size_t c = 0; c < consumers.size(); ++c) {
    REQUIRE(consumers[c]->Poll(&batch).ok());
    got[c].Add(batch);
  }
  // Every iterator expires; eight renewals at one instant, five allowed.
  clock.Advance(absl::Minutes(10));
  for (int i = 5; i < 10; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  for (int round = 0; round < 2000; ++round) {
    bool all = true;
    for (size_t c = 0; c < consumers.size(); ++c) {
      absl::Status s = consumers[c]->Poll(&batch);
      INFO(s.ToString());
      REQUIRE(s.ok());
      got[c].Add(batch);
      all = all && got[c].total >= 10;
    }
    if (all) break;
    if (round >= 3) clock.Advance(absl::Milliseconds(10));
  }
  uint64_t retries = 0;
  for (size_t c = 0; c < consumers.size(); ++c) {
    INFO("consumer " << c);
    CHECK(got[c].by_shard[kParent] == V{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
    retries += consumers[c]->open_retries();
  }
  CHECK(retries >= 3);
}

TEST_CASE("Fan-out consumers read a child whose subscription is first refused as in use",
          "[consumer][reshard][fan_out][issue14]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "contended-efo";
  options.shard_count = 1;
  options.limits = kinlet::ThroughputLimits::Kinesis();
  auto stream = std::move(*TestStream::Create(options, &clock));
  std::vector<std::unique_ptr<TestConsumer>> consumers;
  for (int c = 0; c < 4; ++c) {
    const std::string name = "efo-" + std::to_string(c);
    REQUIRE(stream->RegisterStreamConsumer(name).ok());
    kinlet::ConsumerOptions co;
    co.fan_out_consumer = name;
    auto consumer = TestConsumer::Create(stream.get(), co);
    REQUIRE(consumer.ok());
    consumers.push_back(*std::move(consumer));
  }
  PutSplitPut(*stream);
  // Another reader of each registered consumer holds the low child: the
  // consumers' own subscriptions are refused (ResourceInUse) for 5 seconds.
  std::vector<std::unique_ptr<kinlet::Subscription<std::string, kinlet::ManualClockTraits>>> held;
  for (int c = 0; c < 4; ++c) {
    auto sub = stream->SubscribeToShard("efo-" + std::to_string(c), kLowChild,
                                        kinlet::IteratorPosition::TrimHorizon());
    REQUIRE(sub.ok());
    held.push_back(*std::move(sub));
  }
  std::vector<Received> got(consumers.size());
  PollAll(clock, consumers, got, /*frozen=*/5, absl::Milliseconds(100));
  for (size_t c = 0; c < consumers.size(); ++c) {
    INFO("consumer " << c);
    CheckReadAll(got[c]);
    CHECK(consumers[c]->open_retries() > 0);
  }
}

TEST_CASE("An unrecoverable error of opening a child is returned by Poll",
          "[consumer][reshard][issue14]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "vanishing";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  auto stream = std::move(*TestStream::Create(options, &clock));
  REQUIRE(stream->RegisterStreamConsumer("efo").ok());
  kinlet::ConsumerOptions co;
  co.fan_out_consumer = "efo";
  auto consumer = *TestConsumer::Create(stream.get(), co);
  PutSplitPut(*stream);
  // The registered consumer goes away: subscribing to a child is
  // ResourceNotFound, which no retry cures.
  kinlet::ConsumerBatch<std::string> batch;
  Received got;
  absl::Status s;
  for (int i = 0; i < 5 && s.ok() && !batch.shard_ended; ++i) {
    s = consumer->Poll(&batch);
    got.Add(batch);
  }
  REQUIRE(s.ok());
  REQUIRE(batch.shard_ended);  // the parent: read to its end
  CHECK(got.total == 10);
  REQUIRE(stream->DeregisterStreamConsumer("efo").ok());
  CHECK(kinlet::IsResourceNotFound(consumer->Poll(&batch)));
  CHECK(kinlet::IsResourceNotFound(consumer->Poll(&batch)));  // again: never silently OK
}

TEST_CASE("The skip count is exact for every start, polling and fan-out",
          "[consumer][trimmed][issue14]") {
  const bool fan_out = GENERATE(false, true);
  const auto policy =
      GENERATE(kinlet::TrimmedPolicy::kSkipToTrimHorizon, kinlet::TrimmedPolicy::kReport);
  const int start_kind = GENERATE(0, 1, 2, 3, 4);
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "trimmed";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.retention_period = absl::Hours(1);
  auto stream = std::move(*TestStream::Create(options, &clock));
  REQUIRE(stream->RegisterStreamConsumer("efo").ok());
  // Positions 0..9 at t0, 10..19 at t1 = t0 + 10 min.
  std::vector<kinlet::SequenceNumber> seq;
  for (int i = 0; i < 10; ++i)
    seq.push_back(stream->PutRecord("k", std::to_string(i))->sequence_number);
  clock.Advance(absl::Minutes(10));
  const absl::Time t1 = clock.Now();
  for (int i = 10; i < 20; ++i)
    seq.push_back(stream->PutRecord("k", std::to_string(i))->sequence_number);
  kinlet::ConsumerOptions co;
  co.on_trimmed = policy;
  if (fan_out) co.fan_out_consumer = "efo";
  uint64_t start = 0;
  switch (start_kind) {
    case 0:
      co.start = kinlet::IteratorPosition::TrimHorizon();
      start = 0;
      break;
    case 1:
      co.start = kinlet::IteratorPosition::Latest();
      start = 20;
      break;
    case 2:
      co.start = kinlet::IteratorPosition::AtSequenceNumber(seq[5]);
      start = 5;
      break;
    case 3:
      co.start = kinlet::IteratorPosition::AfterSequenceNumber(seq[5]);
      start = 6;
      break;
    case 4:
      co.start = kinlet::IteratorPosition::AtTimestamp(t1);
      start = 10;
      break;
  }
  INFO("fan_out " << fan_out << " policy " << static_cast<int>(policy) << " start " << start);
  auto consumer = *TestConsumer::Create(stream.get(), co);
  // Positions 20..29 at t2 = t0 + 20 min; at t2 + 55 min only they are left.
  clock.Advance(absl::Minutes(10));
  for (int i = 20; i < 30; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  clock.Advance(absl::Minutes(55));
  const uint64_t expected = start < 20 ? 20 - start : 0;
  kinlet::ConsumerBatch<std::string> batch;
  V data;
  uint64_t skipped_in_batches = 0;
  uint64_t seeked = 0;
  for (int idle = 0; idle < 3;) {
    absl::Status s = consumer->Poll(&batch);
    if (kinlet::IsTrimmedDataAccess(s)) {
      REQUIRE(policy == kinlet::TrimmedPolicy::kReport);
      auto n = consumer->SeekToTrimHorizon(kParent);
      REQUIRE(n.ok());
      seeked += *n;
      continue;
    }
    REQUIRE(s.ok());
    skipped_in_batches += batch.trimmed_records_skipped;
    if (batch.records().empty() && batch.trimmed_records_skipped == 0) {
      ++idle;
      continue;
    }
    idle = 0;
    for (const auto& r : batch.records()) data.push_back(r.data);
  }
  CHECK(data == V{"20", "21", "22", "23", "24", "25", "26", "27", "28", "29"});
  if (policy == kinlet::TrimmedPolicy::kSkipToTrimHorizon) {
    CHECK(skipped_in_batches == expected);
    CHECK(seeked == 0);
  } else {
    CHECK(seeked == expected);
    CHECK(skipped_in_batches == 0);
  }
  CHECK(consumer->trimmed_records_skipped() == expected);
}

TEST_CASE("A consumer's bookkeeping stays bounded over thousands of reshards",
          "[consumer][reshard][issue14]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "churn";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.retention_period = absl::Hours(1);
  options.shard_capacity_records = 16;
  options.max_record_size_bytes = 1024;
  options.shard_capacity_bytes = 16 << 10;
  auto stream = std::move(*TestStream::Create(options, &clock));
  auto consumer = *TestConsumer::Create(stream.get(), {});
  std::map<std::string, int> delivered;                              // data -> times
  std::map<std::string, std::vector<kinlet::SequenceNumber>> order;  // shard -> delivered
  kinlet::ConsumerBatch<std::string> batch;
  const auto drain = [&] {
    for (int idle = 0; idle < 2;) {
      REQUIRE(consumer->Poll(&batch).ok());
      if (batch.records().empty() && !batch.shard_ended) {
        ++idle;
        continue;
      }
      idle = 0;
      for (const auto& r : batch.records()) {
        ++delivered[r.data];
        order[std::string(batch.shard_id)].push_back(r.sequence_number);
      }
    }
  };
  const auto open_shards = [&] {
    kinlet::ListShardsRequest request;
    request.filter = kinlet::ShardFilter::AtLatest();
    auto listed = kinlet::ListAllShards(*stream, request);
    REQUIRE(listed.ok());
    return *listed;
  };
  int put = 0;
  const auto put_to = [&](const kinlet::ShardDescription& d, int n) {
    for (int i = 0; i < n; ++i) {
      REQUIRE(
          stream
              ->PutRecord("k", "r" + std::to_string(put++), At(d.hash_key_range.starting_hash_key))
              .ok());
    }
  };
  constexpr int kCycles = 1500;
  size_t most = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    std::vector<kinlet::ShardDescription> open = open_shards();
    REQUIRE(open.size() == 1);
    put_to(open[0], 3);
    const kinlet::HashKeyRange r = open[0].hash_key_range;
    REQUIRE(stream
                ->SplitShard(open[0].shard_id,
                             r.starting_hash_key + (r.ending_hash_key - r.starting_hash_key) / 2)
                .ok());
    if (cycle % 3 == 0) drain();  // sometimes mid-cycle
    open = open_shards();
    REQUIRE(open.size() == 2);
    put_to(open[0], 2);
    put_to(open[1], 2);
    REQUIRE(stream->MergeShards(open[0].shard_id, open[1].shard_id).ok());
    clock.Advance(absl::Minutes(10));
    drain();
    most = std::max(most, consumer->tracked_shard_count());
  }
  INFO("most tracked " << most);
  // Six cycles (an hour of retention) of finished shards, three per cycle,
  // their checkpoints, and the open shard: never the 4,500 shards seen.
  CHECK(most <= 48);
  CHECK(consumer->Checkpoints().size() <= 24);
  REQUIRE(static_cast<int>(delivered.size()) == put);
  for (const auto& [data, times] : delivered) {
    INFO(data);
    CHECK(times == 1);
  }
  for (const auto& [shard, seqs] : order) {
    INFO(shard);
    for (size_t i = 0; i < seqs.size(); ++i) CHECK(seqs[i].position() == i);
  }
  SECTION("a consumer resumed from its checkpoints reads nothing twice") {
    kinlet::ConsumerOptions options2;
    options2.resume_after = consumer->Checkpoints();
    auto resumed = *TestConsumer::Create(stream.get(), options2);
    const std::vector<kinlet::ShardDescription> open = open_shards();
    put_to(open[0], 1);
    Received got;
    for (int idle = 0; idle < 3;) {
      REQUIRE(resumed->Poll(&batch).ok());
      if (batch.records().empty() && !batch.shard_ended) {
        ++idle;
        continue;
      }
      idle = 0;
      got.Add(batch);
    }
    CHECK(got.total == 1);
    CHECK(got.by_shard[open[0].shard_id] == V{"r" + std::to_string(put - 1)});
  }
}

namespace {

// A consumer over a Registry stream that another thread deletes while it polls.
void DeleteWhilePolling(bool fan_out) {
  kinlet::ManualClock clock;
  kinlet::Registry<std::string, kinlet::ManualClockTraits> registry(&clock);
  kinlet::StreamOptions options;
  options.name = "doomed";
  options.shard_count = 2;
  options.limits = kinlet::ThroughputLimits::Unlimited();
  auto stream = registry.CreateStream(options);
  REQUIRE(stream.ok());
  if (fan_out) REQUIRE((*stream)->RegisterStreamConsumer("efo").ok());
  for (int i = 0; i < 50; ++i) REQUIRE((*stream)->PutRecord("k" + std::to_string(i), "x").ok());
  kinlet::ConsumerOptions co;
  co.batch_limit = 3;
  if (fan_out) co.fan_out_consumer = "efo";
  auto consumer = TestConsumer::Create(stream->get(), co);
  REQUIRE(consumer.ok());
  stream->reset();  // from here the registry and the consumer hold the stream
  std::atomic<bool> polling{false};
  absl::Status deleted;
  std::thread deleter([&] {
    while (!polling.load()) std::this_thread::yield();
    // Registered consumers need EnforceConsumerDeletion, as on AWS.
    deleted = registry.DeleteStream("doomed", /*enforce_consumer_deletion=*/fan_out);
  });
  kinlet::ConsumerBatch<std::string> batch;
  absl::Status s;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (s.ok() && std::chrono::steady_clock::now() < until) {
    s = (*consumer)->Poll(&batch);
    polling.store(true);
  }
  deleter.join();
  CHECK(deleted.ok());
  CHECK(kinlet::IsResourceNotFound(s));
  CHECK(kinlet::IsResourceNotFound((*consumer)->Poll(&batch)));
  consumer->reset();  // the last owner: destroys the stream
}

}  // namespace

TEST_CASE("A consumer keeps a Registry stream alive and fails cleanly once it is deleted",
          "[consumer][registry][issue14]") {
  SECTION("polling") { DeleteWhilePolling(false); }
  SECTION("fan-out") { DeleteWhilePolling(true); }
}
