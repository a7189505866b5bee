// Test helper: the scenario every cross-process CheckpointStore passes with
// ConsumerGroups (tests/remote/*_checkpoint_store_test.cpp): two workers, each
// with its own store instance, share a 4-shard stream's leases evenly and see
// every record; one dies without shutting down, and the other takes its
// leases over after the failover time and processes everything. Runs on a
// ManualClock, one thread.
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kinlet/checkpoint_store.hpp"
#include "kinlet/consumer_group.hpp"
#include "kinlet/stream.hpp"

namespace kinlet_test {

using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using Group = kinlet::ConsumerGroup<std::string, kinlet::ManualClockTraits>;

struct Seen {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> records;  // (worker, data)
};

class SeenProcessor : public kinlet::RecordProcessor<std::string> {
 public:
  SeenProcessor(Seen* seen, std::string worker) : seen_(seen), worker_(std::move(worker)) {}
  void ProcessRecords(const kinlet::ProcessRecordsInput<std::string>& input,
                      kinlet::Checkpointer& checkpointer) override {
    {
      std::lock_guard<std::mutex> lock(seen_->mu);
      for (const auto& r : input.records) seen_->records.emplace_back(worker_, r.data);
    }
    (void)checkpointer.Checkpoint();
  }
  void ShardEnded(kinlet::Checkpointer& checkpointer) override { (void)checkpointer.Checkpoint(); }

 private:
  Seen* seen_;
  std::string worker_;
};

inline std::unique_ptr<Group> MakeGroup(TestStream* stream, kinlet::CheckpointStore* store,
                                        Seen* seen, const std::string& worker) {
  kinlet::ConsumerGroupOptions options;
  options.application_name = "app";
  options.worker_id = worker;
  options.max_records = 10;
  auto group = Group::Create(
      stream, store, [seen, worker] { return std::make_unique<SeenProcessor>(seen, worker); },
      options);
  REQUIRE(group.ok());
  return std::move(*group);
}

// `open_store` opens a new instance of the store under test (the same table).
inline void CheckGroupsShareAndTakeOver(
    const std::function<std::unique_ptr<kinlet::CheckpointStore>()>& open_store) {
  kinlet::ManualClock clock;
  kinlet::StreamOptions stream_options;
  stream_options.name = "grouped";
  stream_options.limits = kinlet::ThroughputLimits::Unlimited();
  stream_options.shard_count = 4;
  auto stream = TestStream::Create(stream_options, &clock);
  REQUIRE(stream.ok());
  std::vector<std::string> sent;
  auto put = [&](int n) {
    for (int i = 0; i < n; ++i) {
      sent.push_back(absl::StrCat("r", sent.size()));
      REQUIRE((*stream)->PutRecord(absl::StrCat("key-", i % 17), sent.back()).ok());
    }
  };
  put(200);

  // Each worker has its own store instance (its own connection or client),
  // as a worker in another process or on another machine would.
  std::unique_ptr<kinlet::CheckpointStore> store_a = open_store();
  std::unique_ptr<kinlet::CheckpointStore> store_b = open_store();
  Seen seen;
  auto a = MakeGroup(stream->get(), store_a.get(), &seen, "a");
  auto b = MakeGroup(stream->get(), store_b.get(), &seen, "b");
  for (int round = 0; round < 12; ++round) {
    clock.Advance(absl::Seconds(1));
    REQUIRE(a->RunOnce().ok());
    REQUIRE(b->RunOnce().ok());
  }
  CHECK(a->HeldShards().size() == 2);
  CHECK(b->HeldShards().size() == 2);
  std::set<std::string> held;
  for (Group* g : {a.get(), b.get()}) {
    for (const auto& s : g->HeldShards()) held.insert(s);
  }
  CHECK(held.size() == 4);  // each shard held by exactly one worker
  {
    std::multiset<std::string> got;
    for (const auto& [worker, data] : seen.records) got.insert(data);
    CHECK(got == std::multiset<std::string>(sent.begin(), sent.end()));
  }

  // b dies (no shutdown); more records arrive; a takes b's leases after
  // failover_time and processes everything, nothing skipped.
  b.reset();
  store_b.reset();
  put(100);
  for (int round = 0; round < 15; ++round) {
    clock.Advance(absl::Seconds(1));
    REQUIRE(a->RunOnce().ok());
  }
  CHECK(a->HeldShards().size() == 4);
  std::set<std::string> got;
  for (const auto& [worker, data] : seen.records) got.insert(data);
  for (const std::string& s : sent) CHECK(got.contains(s));
  auto leases = store_a->ListLeases();
  REQUIRE(leases.ok());
  REQUIRE(leases->size() == 4);
  for (const kinlet::Lease& lease : *leases) CHECK(lease.owner == "a");
}

}  // namespace kinlet_test
