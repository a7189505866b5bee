// Test helper: what every cross-process CheckpointStore passes
// (tests/remote/*_checkpoint_store_test.cpp): the CheckpointStore contract on
// one instance (CheckStoreContract), and a scenario with ConsumerGroups
// (CheckGroupsShareAndTakeOver): two workers, each with its own store
// instance, share a 4-shard stream's leases evenly and see every record; one
// dies without shutting down, and the other takes its leases over after the
// failover time and processes everything (a ManualClock, one thread).
#pragma once

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kinlet/checkpoint_store.hpp"
#include "kinlet/consumer_group.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/stream.hpp"

namespace kinlet_test {

inline kinlet::Lease MakeLease(const std::string& key, uint64_t counter = 0,
                               const std::string& owner = "") {
  kinlet::Lease lease;
  lease.lease_key = key;
  lease.owner = owner;
  lease.lease_counter = counter;
  lease.checkpoint = std::string(kinlet::kCheckpointTrimHorizon);
  return lease;
}

// Creates, lists, conditionally updates and deletes leases on `store`, which
// must be empty: results, ordering, 64-bit counters, removable fields, and
// ConditionalCheckFailed / ResourceNotFound with nothing changed.
inline void CheckStoreContract(kinlet::CheckpointStore& store_ref) {
  kinlet::CheckpointStore* store = &store_ref;
  REQUIRE(store->ListLeases()->empty());

  kinlet::Lease b = MakeLease("shardId-000000000001");
  b.parent_shard_ids = {"shardId-000000000000", "shardId-000000000009"};
  REQUIRE(store->CreateLeaseIfNotExists(b).ok());
  REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000000")).ok());
  // A second create changes nothing.
  REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000001", 7, "x")).ok());
  auto leases = store->ListLeases();
  REQUIRE(leases.ok());
  REQUIRE(leases->size() == 2);
  CHECK(leases->at(0).lease_key == "shardId-000000000000");  // ordered by key
  CHECK(leases->at(1) == b);

  // Conditional update.
  kinlet::Lease taken = b;
  taken.owner = "worker-1";
  taken.lease_counter = 1;
  taken.last_renewal_ms = -5;  // any int64
  taken.owner_switches_since_checkpoint = 1;
  taken.checkpoint = "49590338271490256608559692538361571095921575989136588898";
  REQUIRE(store->UpdateLease(taken, 0).ok());
  CHECK(store->ListLeases()->at(1) == taken);

  absl::Status stale = store->UpdateLease(MakeLease(b.lease_key, 1, "worker-2"), 0);
  CHECK(kinlet::IsConditionalCheckFailed(stale));
  CHECK(stale.message().find("is at counter 1, not 0") != std::string_view::npos);
  CHECK(store->ListLeases()->at(1) == taken);  // unchanged
  CHECK(kinlet::IsResourceNotFound(store->UpdateLease(MakeLease("shardId-404", 1), 0)));
  CHECK(store->ListLeases()->size() == 2);  // the failed update created nothing

  // Counters use all 64 bits; an owner and parents can be removed again.
  kinlet::Lease big = taken;
  big.lease_counter = UINT64_MAX - 1;
  big.owner_switches_since_checkpoint = UINT64_MAX;
  big.last_renewal_ms = INT64_MIN;
  REQUIRE(store->UpdateLease(big, 1).ok());
  CHECK(store->ListLeases()->at(1) == big);
  kinlet::Lease released = big;
  released.owner.clear();
  released.parent_shard_ids.clear();
  released.checkpoint.clear();
  released.lease_counter = UINT64_MAX;
  REQUIRE(store->UpdateLease(released, UINT64_MAX - 1).ok());
  CHECK(store->ListLeases()->at(1) == released);

  // Conditional delete, then the key may be created again.
  CHECK(kinlet::IsConditionalCheckFailed(store->DeleteLease(b.lease_key, 1)));
  CHECK(kinlet::IsResourceNotFound(store->DeleteLease("shardId-404", 0)));
  REQUIRE(store->DeleteLease(b.lease_key, UINT64_MAX).ok());
  REQUIRE(store->ListLeases()->size() == 1);
  CHECK(kinlet::IsResourceNotFound(store->DeleteLease(b.lease_key, UINT64_MAX)));
  REQUIRE(store->CreateLeaseIfNotExists(MakeLease(b.lease_key)).ok());
  CHECK(store->ListLeases()->at(1).lease_counter == 0);
}

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

// Takes `rounds` compare-and-set increments of `key` through `store`,
// retrying on ConditionalCheckFailed. Runs on test threads: no Catch2 macros
// here (they are not thread-safe); returns the first unexpected error.
inline absl::Status Increment(kinlet::CheckpointStore& store, const std::string& key, int rounds,
                              const std::string& owner, std::atomic<int>* conflicts) {
  for (int done = 0; done < rounds;) {
    auto leases = store.ListLeases();
    if (!leases.ok()) return leases.status();
    kinlet::Lease lease;
    for (const kinlet::Lease& l : *leases) {
      if (l.lease_key == key) lease = l;
    }
    const uint64_t expected = lease.lease_counter;
    lease.owner = owner;
    ++lease.lease_counter;
    absl::Status s = store.UpdateLease(lease, expected);
    if (s.ok()) {
      ++done;
    } else if (kinlet::IsConditionalCheckFailed(s)) {
      ++*conflicts;
    } else {
      return s;
    }
  }
  return absl::OkStatus();
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
