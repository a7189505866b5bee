// Tests of zero-copy polling in the readers built on GetRecords (issue 18):
// Consumer::Poll into a ConsumerBatchView delivers exactly what the copying
// Poll delivers (records, shards, lineage, shard ends, skipped counts) and
// lends the records in place; a ConsumerGroup hands a RecordViewProcessor
// views of the shard's storage and pins nothing between cycles.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "kinlet/consumer.hpp"
#include "kinlet/consumer_group.hpp"
#include "kinlet/stream.hpp"

namespace {

using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using TestConsumer = kinlet::Consumer<std::string, kinlet::ManualClockTraits>;
using Group = kinlet::ConsumerGroup<std::string, kinlet::ManualClockTraits>;

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock, int shards, size_t records,
                                       kinlet::FullPolicy policy = kinlet::FullPolicy::kReject) {
  kinlet::StreamOptions options;
  options.name = "viewed";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = shards;
  options.shard_capacity_bytes = 2 << 20;
  options.shard_capacity_records = records;
  options.full_policy = policy;
  auto stream = TestStream::Create(options, clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

// One poll's outcome, comparable between the two batch forms.
template <typename Batch>
std::string Describe(const Batch& b) {
  std::string out = std::string(b.shard_id) + (b.shard_ended ? " ended" : "") + " skipped " +
                    std::to_string(b.trimmed_records_skipped) + ":";
  for (const auto& r : b.records()) {
    out += " " + r.sequence_number.ToString() + "=" + std::string(r.data);
  }
  return out;
}

}  // namespace

TEST_CASE("Consumer polls into a ConsumerBatchView what it polls into a ConsumerBatch",
          "[consumer][zero_copy]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 3, 4096);
  kinlet::ConsumerOptions options;
  options.batch_limit = 7;
  auto copying = TestConsumer::Create(stream.get(), options);
  auto lending = TestConsumer::Create(stream.get(), options);
  REQUIRE(copying.ok());
  REQUIRE(lending.ok());
  kinlet::ConsumerBatch<std::string> copied;
  kinlet::ConsumerBatchView<std::string> lent;
  bool saw_lent = false;
  size_t records = 0;
  for (int round = 0; round < 60; ++round) {
    for (int i = 0; i < 5; ++i) {
      REQUIRE(stream
                  ->PutRecord("key-" + std::to_string((round * 5 + i) % 17),
                              "r" + std::to_string(round) + "." + std::to_string(i))
                  .ok());
    }
    if (round == 20) {
      // Lineage: a split and a merge mid-stream; both consumers follow them.
      REQUIRE(stream->SplitShard("shardId-000000000000", kinlet::HashKey(1) << 125).ok());
    }
    if (round == 40) REQUIRE(stream->UpdateShardCount(2).ok());
    for (int poll = 0; poll < 3; ++poll) {
      REQUIRE((*copying)->Poll(&copied).ok());
      REQUIRE((*lending)->Poll(&lent).ok());
      CHECK(Describe(lent) == Describe(copied));
      if (lent.page.lent()) saw_lent = true;
      records += lent.records().size();
    }
    clock.Advance(absl::Seconds(1));
  }
  for (int poll = 0; poll < 200; ++poll) {
    REQUIRE((*copying)->Poll(&copied).ok());
    REQUIRE((*lending)->Poll(&lent).ok());
    CHECK(Describe(lent) == Describe(copied));
    records += lent.records().size();
  }
  CHECK(records == 300);
  CHECK(saw_lent);
  CHECK((*lending)->Checkpoints() == (*copying)->Checkpoints());
}

TEST_CASE("Consumer in fan-out mode gives a ConsumerBatchView views of its copies",
          "[consumer][zero_copy][fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1, 4096);
  REQUIRE(stream->RegisterStreamConsumer("efo").ok());
  kinlet::ConsumerOptions options;
  options.fan_out_consumer = "efo";
  auto consumer = TestConsumer::Create(stream.get(), options);
  REQUIRE(consumer.ok());
  for (int i = 0; i < 10; ++i) REQUIRE(stream->PutRecord("k", "v" + std::to_string(i)).ok());
  kinlet::ConsumerBatchView<std::string> batch;
  std::vector<std::string> got;
  for (int poll = 0; poll < 5 && got.size() < 10; ++poll) {
    REQUIRE((*consumer)->Poll(&batch).ok());
    for (const auto& r : batch.records()) got.emplace_back(r.data);
  }
  REQUIRE(got.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(got[i] == "v" + std::to_string(i));
  CHECK(batch.page.copied_records() == 10);
  CHECK_FALSE(batch.page.lent());
}

namespace {

struct Seen {
  std::vector<std::string> data;
  std::vector<const char*> addresses;
  int batches = 0;
};

class ViewProcessor : public kinlet::RecordViewProcessor<std::string> {
 public:
  explicit ViewProcessor(Seen* seen) : seen_(seen) {}
  void ProcessRecordViews(const kinlet::ProcessRecordViewsInput<std::string>& input,
                          kinlet::Checkpointer& checkpointer) override {
    ++seen_->batches;
    for (const auto& r : input.records) {
      seen_->data.emplace_back(r.data);
      seen_->addresses.push_back(r.data.data());
    }
    REQUIRE(checkpointer.Checkpoint().ok());
  }
  void ShardEnded(kinlet::Checkpointer& checkpointer) override {
    REQUIRE(checkpointer.Checkpoint().ok());
  }

 private:
  Seen* seen_;
};

}  // namespace

TEST_CASE("A ConsumerGroup lends a RecordViewProcessor the stored records and pins nothing after",
          "[consumer_group][zero_copy]") {
  kinlet::ManualClock clock;
  // kOverwrite: a pin left behind would make puts that lap the ring fail.
  auto stream = MakeStream(&clock, 1, 64, kinlet::FullPolicy::kOverwrite);
  kinlet::InMemoryCheckpointStore store;
  Seen seen;
  kinlet::ConsumerGroupOptions options;
  options.application_name = "views";
  auto group = Group::Create(
      stream.get(), &store, [&] { return std::make_unique<ViewProcessor>(&seen); }, options);
  REQUIRE(group.ok());
  for (int i = 0; i < 20; ++i) REQUIRE(stream->PutRecord("k", "g" + std::to_string(i)).ok());
  for (int cycle = 0; cycle < 3; ++cycle) REQUIRE((*group)->RunOnce().ok());
  REQUIRE(seen.data.size() == 20);
  for (int i = 0; i < 20; ++i) CHECK(seen.data[i] == "g" + std::to_string(i));
  // In place: the addresses are the ring's, which a copying read would not give.
  kinlet::GetRecordsView<std::string> page;
  auto it =
      stream->GetShardIterator("shardId-000000000000", kinlet::IteratorPosition::TrimHorizon());
  REQUIRE(stream->GetRecords(*it, 100, &page).ok());
  REQUIRE(page.records.size() == 20);
  for (int i = 0; i < 20; ++i) CHECK(seen.addresses[i] == page.records[i].data.data());
  const std::string page_last = page.records.back().sequence_number.ToString();
  page.Release();
  // Nothing stays pinned between cycles: puts lap the ring freely.
  for (int i = 0; i < 500; ++i) REQUIRE(stream->PutRecord("k", "lap").ok());
  // The checkpoint is the last record delivered.
  auto leases = (*group)->Leases();
  REQUIRE(leases.ok());
  REQUIRE(leases->size() == 1);
  CHECK(leases->front().checkpoint == page_last);
}
