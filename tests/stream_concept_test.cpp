// Tests of kinlet/stream_concept.hpp: Stream<std::string> satisfies
// KinesisStream (and its refinements); a fake stream that implements only the
// concept (FakeStream: a Stream seen through its public Kinesis operations,
// with opaque text iterators, its own page type and no access to shards)
// satisfies it too, and Consumer, ConsumerGroup and the retrying writes run
// over it: every record delivered once, in per-key order across a reshard,
// checkpoints resumed, leases shared by two workers.
#include "kinlet/stream_concept.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kinlet/checkpoint_store.hpp"
#include "kinlet/consumer.hpp"
#include "kinlet/consumer_group.hpp"
#include "kinlet/put_records.hpp"
#include "kinlet/stream.hpp"

namespace {

using InProcess = kinlet::Stream<std::string>;

// An iterator as a remote endpoint gives it: an opaque string.
struct TextIterator {
  std::string text;
};

// A page of its own type (not GetRecordsResult).
struct FakePage {
  std::vector<kinlet::Record<std::string>> records;
  std::optional<TextIterator> next_shard_iterator;
  std::vector<kinlet::ChildShard> child_shards;
  int64_t millis_behind_latest = 0;
};

// Implements KinesisStream and nothing else, through Stream's public
// operations only (as a remote stream would through the wire).
template <typename Inner>
class BasicFakeStream {
 public:
  using Page = FakePage;
  using Entry = kinlet::PutRecordsRequestEntry<std::string>;
  using View = std::string_view;
  using Clock = typename Inner::Clock;

  explicit BasicFakeStream(Inner* inner) : inner_(inner) {}

  const std::string& name() const { return inner_->name(); }
  Clock* clock() const { return inner_->clock(); }
  absl::StatusOr<kinlet::ListShardsResult> ListShards(
      const kinlet::ListShardsRequest& request) const {
    ++list_calls;
    return inner_->ListShards(request);
  }
  absl::StatusOr<TextIterator> GetShardIterator(std::string_view shard_id,
                                                const kinlet::IteratorPosition& position) const {
    auto iterator = inner_->GetShardIterator(shard_id, position);
    if (!iterator.ok()) return iterator.status();
    return TextIterator{iterator->ToString()};
  }
  absl::Status GetRecords(const TextIterator& iterator, int limit, FakePage* page) const {
    page->records.clear();
    page->next_shard_iterator.reset();
    page->child_shards.clear();
    auto got = inner_->GetRecords(std::string_view(iterator.text), limit);
    if (!got.ok()) return got.status();
    page->records = got->records;
    if (got->next_shard_iterator) {
      page->next_shard_iterator = TextIterator{got->next_shard_iterator->ToString()};
    }
    page->child_shards = got->child_shards;
    page->millis_behind_latest = got->millis_behind_latest;
    return absl::OkStatus();
  }
  absl::StatusOr<kinlet::PutRecordResult> PutRecord(std::string_view key, std::string_view data,
                                                    const kinlet::PutRecordOptions& options = {}) {
    return inner_->PutRecord(key, data, options);
  }
  absl::Status PutRecords(std::span<const Entry> entries, kinlet::PutRecordsResult* result) {
    return inner_->PutRecords(entries, result);
  }

  mutable std::atomic<int> list_calls{0};

 private:
  Inner* inner_;
};

using FakeStream = BasicFakeStream<InProcess>;
using ManualInProcess = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using ManualFakeStream = BasicFakeStream<ManualInProcess>;

static_assert(kinlet::KinesisStream<InProcess>);
static_assert(kinlet::FanOutStream<InProcess>);
static_assert(kinlet::MetricsStream<InProcess>);
static_assert(kinlet::InProcessStream<InProcess>);
static_assert(kinlet::KinesisStream<kinlet::Stream<std::string, kinlet::ManualClockTraits>>);
static_assert(kinlet::KinesisStream<FakeStream>);
static_assert(!kinlet::FanOutStream<FakeStream>);
static_assert(!kinlet::MetricsStream<FakeStream>);
static_assert(!kinlet::InProcessStream<FakeStream>);
static_assert(!kinlet::KinesisStream<int>);
// Today's spelling still names the in-process consumer and group.
static_assert(std::is_same_v<kinlet::Consumer<std::string>, kinlet::StreamConsumer<InProcess>>);
static_assert(
    std::is_same_v<kinlet::ConsumerGroup<std::string>, kinlet::StreamConsumerGroup<InProcess>>);

kinlet::StreamOptions Options(int shards) {
  kinlet::StreamOptions options;
  options.name = "concept";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = shards;
  options.shard_capacity_bytes = 4 << 20;
  return options;
}

std::unique_ptr<InProcess> MakeStream(int shards) {
  auto stream = InProcess::Create(Options(shards));
  REQUIRE(stream.ok());
  return std::move(*stream);
}

// Writes `n` records "key-<i % keys>" = "<i>" from `first`.
template <typename Fake>
void Write(Fake& stream, int first, int n, int keys) {
  for (int i = first; i < first + n; ++i) {
    const std::string key = "key-" + std::to_string(i % keys);
    const std::string data = std::to_string(i);
    REQUIRE(stream.PutRecord(key, data).ok());
  }
}

// Per key, the record numbers in delivery order must increase.
void CheckPerKeyOrder(const std::vector<std::pair<std::string, int>>& delivered) {
  std::map<std::string, int> last;
  for (const auto& [key, value] : delivered) {
    auto [it, first] = last.try_emplace(key, value);
    if (!first) {
      INFO("key " << key << ": " << value << " after " << it->second);
      CHECK(value > it->second);
      it->second = value;
    }
  }
}

}  // namespace

TEST_CASE("A Consumer over a concept-only stream reads every record across a split",
          "[stream_concept][consumer]") {
  auto inner = MakeStream(2);
  FakeStream stream(inner.get());
  Write(stream, 0, 200, 13);
  auto consumer = kinlet::MakeConsumer(&stream, kinlet::ConsumerOptions{});
  REQUIRE(consumer.ok());
  static_assert(
      std::is_same_v<decltype(*consumer), std::unique_ptr<kinlet::StreamConsumer<FakeStream>>&>);

  kinlet::StreamConsumer<FakeStream>::Batch batch;
  std::vector<std::pair<std::string, int>> delivered;
  std::set<std::string> ended;
  auto drain = [&] {
    for (int idle = 0; idle < 3;) {
      REQUIRE((*consumer)->Poll(&batch).ok());
      if (batch.shard_ended) ended.insert(std::string(batch.shard_id));
      if (batch.records().empty() && !batch.shard_ended) {
        ++idle;
        continue;
      }
      idle = 0;
      for (const auto& r : batch.records())
        delivered.emplace_back(r.partition_key, std::stoi(r.data));
    }
  };
  drain();
  REQUIRE(delivered.size() == 200);
  // Split shard 0 mid-run: its children follow by lineage.
  const auto shards = kinlet::ListAllShards(stream);
  REQUIRE(shards.ok());
  const kinlet::HashKeyRange range = shards->front().hash_key_range;
  REQUIRE(inner
              ->SplitShard(
                  shards->front().shard_id,
                  range.starting_hash_key + (range.ending_hash_key - range.starting_hash_key) / 2)
              .ok());
  Write(stream, 200, 300, 13);
  drain();
  CHECK(ended.count(shards->front().shard_id) == 1);
  REQUIRE(delivered.size() == 500);
  std::set<int> unique;
  for (const auto& d : delivered) unique.insert(d.second);
  CHECK(unique.size() == 500);  // none twice, none lost
  CheckPerKeyOrder(delivered);
  CHECK((*consumer)->FollowedShards().size() == 3);  // shard 1 and the two children

  // A consumer resumed from the checkpoints reads only what is new.
  kinlet::ConsumerOptions resumed;
  resumed.resume_after = (*consumer)->Checkpoints();
  Write(stream, 500, 40, 13);
  auto second = kinlet::MakeConsumer(&stream, resumed);
  REQUIRE(second.ok());
  std::vector<int> again;
  for (int idle = 0; idle < 3;) {
    REQUIRE((*second)->Poll(&batch).ok());
    if (batch.records().empty() && !batch.shard_ended) {
      ++idle;
      continue;
    }
    idle = 0;
    for (const auto& r : batch.records()) again.push_back(std::stoi(r.data));
  }
  std::sort(again.begin(), again.end());
  REQUIRE(again.size() == 40);
  CHECK(again.front() == 500);
  CHECK(again.back() == 539);
}

TEST_CASE("The generic Consumer reports errors as the in-process one",
          "[stream_concept][consumer]") {
  auto inner = MakeStream(1);
  FakeStream stream(inner.get());
  kinlet::ConsumerOptions options;
  options.shard_ids = {"shardId-000000000042"};
  auto missing = kinlet::MakeConsumer(&stream, options);
  CHECK(kinlet::IsResourceNotFound(missing.status()));
  kinlet::ConsumerOptions bad;
  bad.batch_limit = 0;
  CHECK(kinlet::IsInvalidArgument(kinlet::MakeConsumer(&stream, bad).status()));
  kinlet::ConsumerOptions fan_out;
  fan_out.fan_out_consumer = "app";  // the fake has no SubscribeToShard
  CHECK(kinlet::IsInvalidArgument(kinlet::MakeConsumer(&stream, fan_out).status()));
}

namespace {

struct Seen {
  std::mutex mu;
  std::vector<std::pair<std::string, int>> delivered;
};

class CountingProcessor : public kinlet::RecordProcessor<std::string> {
 public:
  explicit CountingProcessor(Seen* seen) : seen_(seen) {}
  void ProcessRecords(const kinlet::ProcessRecordsInput<std::string>& input,
                      kinlet::Checkpointer& checkpointer) override {
    {
      std::lock_guard<std::mutex> lock(seen_->mu);
      for (const auto& r : input.records) {
        seen_->delivered.emplace_back(r.partition_key, std::stoi(r.data));
      }
    }
    CHECK(checkpointer.Checkpoint().ok());
  }
  void ShardEnded(kinlet::Checkpointer& checkpointer) override {
    CHECK(checkpointer.Checkpoint().ok());
  }

 private:
  Seen* seen_;
};

}  // namespace

TEST_CASE("A ConsumerGroup over a concept-only stream shares its shards between two workers",
          "[stream_concept][consumer_group]") {
  kinlet::ManualClock clock;
  auto created = ManualInProcess::Create(Options(4), &clock);
  REQUIRE(created.ok());
  std::unique_ptr<ManualInProcess> inner = std::move(*created);
  ManualFakeStream stream(inner.get());
  Write(stream, 0, 400, 17);
  kinlet::InMemoryCheckpointStore store;
  Seen seen;
  std::vector<std::unique_ptr<kinlet::StreamConsumerGroup<ManualFakeStream>>> workers;
  for (int w = 0; w < 2; ++w) {
    kinlet::ConsumerGroupOptions options;
    options.application_name = "concept-app";
    options.worker_id = "worker-" + std::to_string(w);
    auto worker = kinlet::MakeConsumerGroup(
        &stream, &store, [&seen] { return std::make_unique<CountingProcessor>(&seen); }, options);
    REQUIRE(worker.ok());
    workers.push_back(*std::move(worker));
  }
  auto run_until = [&](size_t count) {
    for (int cycle = 0; cycle < 200; ++cycle) {
      clock.Advance(absl::Seconds(1));
      for (auto& w : workers) REQUIRE(w->RunOnce().ok());
      std::lock_guard<std::mutex> lock(seen.mu);
      if (cycle >= 12 && seen.delivered.size() >= count) return;
    }
  };
  run_until(400);
  // The leases spread evenly: 2 each, every shard held by one worker.
  std::set<std::string> held;
  for (auto& w : workers) {
    CHECK(w->HeldShards().size() == 2);
    for (const auto& s : w->HeldShards()) held.insert(s);
  }
  CHECK(held.size() == 4);
  // A merge: the child starts after both parents checkpoint SHARD_END.
  const auto shards = kinlet::ListAllShards(stream);
  REQUIRE(shards.ok());
  REQUIRE(inner->MergeShards((*shards)[0].shard_id, (*shards)[1].shard_id).ok());
  Write(stream, 400, 200, 17);
  run_until(600);
  std::lock_guard<std::mutex> lock(seen.mu);
  std::set<int> unique;
  for (const auto& d : seen.delivered) unique.insert(d.second);
  CHECK(unique.size() == 600);  // every record processed (at least once)
  CheckPerKeyOrder(seen.delivered);
  for (auto& w : workers) CHECK(w->RequestShutdown().get().ok());
}

TEST_CASE("The retrying writes run over a concept-only stream", "[stream_concept][retry]") {
  auto inner = MakeStream(2);
  FakeStream stream(inner.get());
  kinlet::FaultInjection faults;
  faults.seed = 7;
  faults.throttle_put_fraction = 0.5;
  REQUIRE(inner->SetFaultInjection(faults).ok());
  kinlet::RetryOptions retry;
  retry.max_attempts = 60;
  retry.initial_backoff = absl::Microseconds(10);
  retry.max_backoff = absl::Microseconds(100);
  for (int i = 0; i < 20; ++i) {
    const std::string data = std::to_string(i);
    CHECK(kinlet::PutRecordWithRetry(stream, "k", data, retry).ok());
  }
  std::vector<std::string> keys, data;
  for (int i = 0; i < 50; ++i) {
    keys.push_back("key-" + std::to_string(i));
    data.push_back(std::to_string(i));
  }
  std::vector<FakeStream::Entry> entries;
  for (int i = 0; i < 50; ++i) entries.push_back({keys[i], data[i], std::nullopt});
  kinlet::PutRecordsResult result;
  REQUIRE(kinlet::PutRecordsWithRetry(stream, std::span<const FakeStream::Entry>(entries), retry,
                                      &result)
              .ok());
  CHECK(result.failed_record_count == 0);
  REQUIRE(inner->SetFaultInjection({}).ok());
  auto counted = kinlet::ListAllShards(stream);
  REQUIRE(counted.ok());
  // Exactly 70 records were written: none twice.
  auto consumer = kinlet::MakeConsumer(&stream, kinlet::ConsumerOptions{});
  REQUIRE(consumer.ok());
  kinlet::StreamConsumer<FakeStream>::Batch batch;
  size_t total = 0;
  for (int idle = 0; idle < 3;) {
    REQUIRE((*consumer)->Poll(&batch).ok());
    if (batch.records().empty()) {
      ++idle;
      continue;
    }
    idle = 0;
    total += batch.records().size();
  }
  CHECK(total == 70);
}
