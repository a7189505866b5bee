// Tests of kinlet/consumer_group.hpp, under ManualClock: every record processed
// with checkpoints, lease balancing across 1 -> 4 -> 2 workers, expiry and
// takeover (also of a worker that outlives its lease mid-batch), checkpoint
// validation, parents before children (and the SHARD_END rule), per-key order
// while the stream reshards, restart from a file store, graceful shutdown,
// initial positions, enhanced fan-out delivery and option validation; lease
// cleanup (finished leases deleted once their children started, a bounded
// lease table over thousands of reshards) and a registry stream deleted under
// a running group.
#include "kinlet/consumer_group.hpp"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/registry.hpp"
#include "kinlet/stream.hpp"

namespace {

using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using Group = kinlet::ConsumerGroup<std::string, kinlet::ManualClockTraits>;
using kinlet::SequenceNumber;

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock, int shards) {
  kinlet::StreamOptions options;
  options.name = "grouped";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = shards;
  options.shard_capacity_bytes = 4 << 20;
  options.max_shard_count_updates_per_day = 1000;
  auto stream = TestStream::Create(options, clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

struct Delivery {
  std::string worker;
  std::string shard;
  SequenceNumber sequence;
  std::string key;
  std::string data;
};

// What every processor of a test reports, and how they behave.
struct Journal {
  std::mutex mu;
  std::vector<Delivery> deliveries;
  std::vector<std::string> events;  // "init <shard> <checkpoint>", "lost <shard>", ...
  std::vector<absl::Status> checkpoint_errors;
  bool checkpoint_each_batch = true;
  bool checkpoint_at_shard_end = true;
  bool checkpoint_at_shutdown = true;
  std::function<void()> during_batch;  // runs inside ProcessRecords, once

  std::vector<std::string> Data() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (const auto& d : deliveries) out.push_back(d.data);
    return out;
  }
  size_t Count(const std::string& prefix) {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const auto& e : events) n += e.rfind(prefix, 0) == 0;
    return n;
  }
};

class JournalProcessor : public kinlet::RecordProcessor<std::string> {
 public:
  JournalProcessor(Journal* journal, std::string worker)
      : journal_(journal), worker_(std::move(worker)) {}
  void Initialize(const kinlet::InitializationInput& input) override {
    shard_ = input.shard_id;
    Event("init " + shard_ + " " + input.checkpoint);
  }
  void ProcessRecords(const kinlet::ProcessRecordsInput<std::string>& input,
                      kinlet::Checkpointer& checkpointer) override {
    {
      std::lock_guard<std::mutex> lock(journal_->mu);
      for (const auto& r : input.records) {
        journal_->deliveries.push_back(
            {worker_, std::string(input.shard_id), r.sequence_number, r.partition_key, r.data});
      }
    }
    if (journal_->during_batch) std::exchange(journal_->during_batch, nullptr)();
    if (journal_->checkpoint_each_batch) Checkpoint(checkpointer);
  }
  void LeaseLost() override { Event("lost " + shard_); }
  void ShardEnded(kinlet::Checkpointer& checkpointer) override {
    Event("ended " + shard_);
    if (journal_->checkpoint_at_shard_end) Checkpoint(checkpointer);
  }
  void ShutdownRequested(kinlet::Checkpointer& checkpointer) override {
    Event("shutdown " + shard_);
    if (journal_->checkpoint_at_shutdown) Checkpoint(checkpointer);
  }

 private:
  void Event(std::string e) {
    std::lock_guard<std::mutex> lock(journal_->mu);
    journal_->events.push_back(std::move(e));
  }
  void Checkpoint(kinlet::Checkpointer& checkpointer) {
    absl::Status s = checkpointer.Checkpoint();
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(journal_->mu);
      journal_->checkpoint_errors.push_back(s);
    }
  }
  Journal* journal_;
  std::string worker_;
  std::string shard_;
};

std::unique_ptr<Group> MakeGroup(TestStream* stream, kinlet::CheckpointStore* store,
                                 Journal* journal, std::string worker,
                                 void (*tweak)(kinlet::ConsumerGroupOptions&) = nullptr) {
  kinlet::ConsumerGroupOptions options;
  options.application_name = "app";
  options.worker_id = worker;
  if (tweak) tweak(options);
  auto group = Group::Create(
      stream, store,
      [journal, worker] { return std::make_unique<JournalProcessor>(journal, worker); }, options);
  REQUIRE(group.ok());
  return std::move(*group);
}

std::vector<std::string> Put(TestStream& stream, int n, const std::string& prefix = "r") {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(prefix + std::to_string(i));
    REQUIRE(stream.PutRecord("key-" + std::to_string(i % 13), out.back()).ok());
  }
  return out;
}

std::multiset<std::string> Bag(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

void Cycles(std::initializer_list<Group*> groups, int n) {
  for (int i = 0; i < n; ++i) {
    for (Group* g : groups) REQUIRE(g->RunOnce().ok());
  }
}

std::string TempPath(const std::string& name) {
  static int n = 0;
  return (std::filesystem::temp_directory_path() /
          ("kinlet-group-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" + name))
      .string();
}

}  // namespace

TEST_CASE("One worker processes every shard and checkpoints its progress", "[consumer_group]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 4);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  auto worker = MakeGroup(stream.get(), &store, &journal, "w1");
  const auto sent = Put(*stream, 200);
  Cycles({worker.get()}, 5);
  CHECK(Bag(journal.Data()) == Bag(sent));  // each record exactly once
  CHECK(worker->HeldShards().size() == 4);
  CHECK(worker->stats().records_delivered == 200);
  CHECK(journal.Count("init") == 4);
  const std::vector<kinlet::Lease> leases = *worker->Leases();
  for (const kinlet::Lease& lease : leases) {
    CHECK(lease.owner == "w1");
    // The checkpoint is the shard's last record.
    std::optional<SequenceNumber> newest;
    for (const auto& d : journal.deliveries) {
      if (d.shard == lease.lease_key) newest = d.sequence;
    }
    // (A shard that no key hashed to keeps its initial position.)
    CHECK(lease.checkpoint == (newest ? newest->ToString() : "TRIM_HORIZON"));
  }
  CHECK(journal.checkpoint_errors.empty());
}

TEST_CASE("Leases spread over 1, then 4, then 2 workers", "[consumer_group]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 8);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  auto a = MakeGroup(stream.get(), &store, &journal, "a");
  REQUIRE(a->RunOnce().ok());
  CHECK(a->HeldShards().size() == 8);  // alone: every lease

  auto b = MakeGroup(stream.get(), &store, &journal, "b");
  auto c = MakeGroup(stream.get(), &store, &journal, "c");
  auto d = MakeGroup(stream.get(), &store, &journal, "d");
  for (int round = 0; round < 12; ++round) {
    clock.Advance(absl::Seconds(1));
    Cycles({a.get(), b.get(), c.get(), d.get()}, 1);
  }
  std::set<std::string> all;
  for (Group* g : {a.get(), b.get(), c.get(), d.get()}) {
    CHECK(g->HeldShards().size() == 2);
    for (const auto& s : g->HeldShards()) all.insert(s);
  }
  CHECK(all.size() == 8);  // each shard held by exactly one worker
  CHECK(b->stats().leases_stolen + c->stats().leases_stolen + d->stats().leases_stolen == 6);
  CHECK(a->stats().leases_lost == 6);
  CHECK(journal.Count("lost") == 6);  // a's processors were told

  // c and d stop renewing (a crash): after failover_time a and b share all.
  c.reset();
  d.reset();
  for (int round = 0; round < 15; ++round) {
    clock.Advance(absl::Seconds(1));
    Cycles({a.get(), b.get()}, 1);
  }
  CHECK(a->HeldShards().size() == 4);
  CHECK(b->HeldShards().size() == 4);
  const std::vector<kinlet::Lease> leases = *a->Leases();
  for (const kinlet::Lease& lease : leases) {
    CHECK((lease.owner == "a" || lease.owner == "b"));
    CHECK(lease.lease_counter > 1);
  }
}

TEST_CASE("A worker that outlives its lease mid-batch cannot checkpoint and is told",
          "[consumer_group]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  auto small = [](kinlet::ConsumerGroupOptions& o) { o.max_records = 5; };
  auto a = MakeGroup(stream.get(), &store, &journal, "a", small);
  auto b = MakeGroup(stream.get(), &store, &journal, "b", small);
  const auto sent = Put(*stream, 10);
  REQUIRE(a->RunOnce().ok());  // r0..r4, checkpointed
  // During a's next batch its lease expires and b takes the shard over.
  journal.during_batch = [&] {
    clock.Advance(absl::Seconds(11));
    REQUIRE(b->RunOnce().ok());
  };
  REQUIRE(a->RunOnce().ok());
  CHECK(journal.checkpoint_errors.size() == 1);
  CHECK(kinlet::IsShutdown(journal.checkpoint_errors.at(0)));
  CHECK(journal.Count("lost") == 1);
  CHECK(a->HeldShards().empty());
  CHECK(b->HeldShards() == std::vector<std::string>{"shardId-000000000000"});
  // b resumes after a's last checkpoint (r4): r5..r9 again, nothing before.
  Cycles({b.get()}, 3);
  std::vector<std::string> by_b;
  for (const auto& dl : journal.deliveries) {
    if (dl.worker == "b") by_b.push_back(dl.data);
  }
  CHECK(by_b == std::vector<std::string>{"r5", "r6", "r7", "r8", "r9"});
  CHECK(journal.Count("init shardId-000000000000 " +
                      journal.deliveries.at(4).sequence.ToString()) == 1);
}

TEST_CASE("A worker that stops renewing is taken over after failover_time", "[consumer_group]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  auto a = MakeGroup(stream.get(), &store, &journal, "a");
  auto b = MakeGroup(stream.get(), &store, &journal, "b");
  Cycles({a.get(), b.get(), a.get()}, 1);  // a takes both, b steals one, a notices
  REQUIRE(a->HeldShards().size() == 1);
  REQUIRE(b->HeldShards().size() == 1);
  const size_t b_had = b->HeldShards().size();
  // a stops running; b keeps going. Before failover_time nothing moves.
  clock.Advance(absl::Seconds(9));
  REQUIRE(b->RunOnce().ok());
  CHECK(b->HeldShards().size() == b_had);
  clock.Advance(absl::Seconds(2));
  REQUIRE(b->RunOnce().ok());
  CHECK(b->HeldShards().size() == 2);
  REQUIRE(a->RunOnce().ok());  // a comes back: its lease is gone
  CHECK(a->HeldShards().size() < 2);
}

TEST_CASE("Checkpoints are validated against what was delivered", "[consumer_group]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  kinlet::InMemoryCheckpointStore store;
  std::vector<absl::Status> results;
  std::string last;
  struct Probe : kinlet::RecordProcessor<std::string> {
    std::vector<absl::Status>* results;
    std::string* last;
    std::optional<SequenceNumber>* other;
    void ProcessRecords(const kinlet::ProcessRecordsInput<std::string>& in,
                        kinlet::Checkpointer& cp) override {
      const SequenceNumber first = in.records.front().sequence_number;
      const SequenceNumber newest = in.records.back().sequence_number;
      const SequenceNumber beyond(newest.stream_tag(), newest.shard_index(), newest.position() + 1);
      results->push_back(cp.Checkpoint(beyond));               // not delivered
      results->push_back(cp.Checkpoint(newest));               // fine
      results->push_back(cp.Checkpoint(first));                // backwards
      if (*other) results->push_back(cp.Checkpoint(**other));  // another shard's
      *other = newest;
      results->push_back(cp.Checkpoint());  // the newest again: fine
      *last = cp.last_checkpoint();
    }
    void ShardEnded(kinlet::Checkpointer& cp) override { (void)cp.Checkpoint(); }
  };
  std::optional<SequenceNumber> other;
  kinlet::ConsumerGroupOptions options;
  options.application_name = "app";
  auto group = *Group::Create(
      stream.get(), &store,
      [&] {
        auto p = std::make_unique<Probe>();
        p->results = &results;
        p->last = &last;
        p->other = &other;
        return p;
      },
      options);
  for (int i = 0; i < 40; ++i) REQUIRE(stream->PutRecord("k" + std::to_string(i), "x").ok());
  REQUIRE(group->RunOnce().ok());
  REQUIRE(results.size() == 9);  // two shards: 4 checks, then 5
  CHECK(kinlet::IsInvalidArgument(results[0]));
  CHECK(results[1].ok());
  CHECK(kinlet::IsInvalidArgument(results[2]));
  CHECK(results[3].ok());
  CHECK(kinlet::IsInvalidArgument(results[4]));
  CHECK(results[5].ok());
  CHECK(kinlet::IsInvalidArgument(results[6]));
  CHECK(kinlet::IsInvalidArgument(results[7]));
  CHECK(results[8].ok());
  CHECK(last == other->ToString());
}

TEST_CASE("Children start only after every parent checkpointed SHARD_END",
          "[consumer_group][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  journal.checkpoint_at_shard_end = false;  // the KCL's classic mistake
  auto group = MakeGroup(stream.get(), &store, &journal, "w",
                         [](kinlet::ConsumerGroupOptions& o) { o.max_records = 3; });
  const auto before = Put(*stream, 20, "parent-");
  REQUIRE(stream->MergeShards("shardId-000000000000", "shardId-000000000001").ok());
  const auto after = Put(*stream, 10, "child-");
  Cycles({group.get()}, 20);
  CHECK(Bag(journal.Data()) == Bag(before));  // no child record yet
  CHECK(group->stats().last_error.find("didn't checkpoint at end of shard") != std::string::npos);
  CHECK(journal.Count("ended") >= 2);

  journal.checkpoint_at_shard_end = true;  // fixed: ShardEnded is called again
  Cycles({group.get()}, 20);
  const auto data = journal.Data();
  REQUIRE(data.size() == before.size() + after.size());
  CHECK(Bag(std::vector<std::string>(data.begin(), data.begin() + 20)) == Bag(before));
  CHECK(std::vector<std::string>(data.begin() + 20, data.end()) == after);  // the child, in order
  const std::vector<kinlet::Lease> leases = *group->Leases();
  for (const kinlet::Lease& lease : leases) {
    if (lease.lease_key == "shardId-000000000002") {
      CHECK(lease.parent_shard_ids ==
            std::vector<std::string>{"shardId-000000000000", "shardId-000000000001"});
    } else {
      CHECK(lease.checkpoint == kinlet::kCheckpointShardEnd);
      CHECK(lease.owner.empty());  // released once finished
    }
  }
  CHECK(group->stats().shards_ended == 2);
}

TEST_CASE("Two workers keep per-key order while the stream reshards", "[consumer_group][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  auto a = MakeGroup(stream.get(), &store, &journal, "a");
  auto b = MakeGroup(stream.get(), &store, &journal, "b");
  constexpr int kKeys = 16;
  std::vector<int> next_counter(kKeys, 0);
  int total = 0;
  for (int step = 0; step < 12; ++step) {
    for (int i = 0; i < 50; ++i) {
      const int k = (i * 7 + step) % kKeys;
      REQUIRE(
          stream->PutRecord("key-" + std::to_string(k), std::to_string(next_counter[k]++)).ok());
      ++total;
    }
    auto open = stream->OpenShards();
    if (step % 3 == 0) {
      const auto range = open[0]->hash_key_range();
      REQUIRE(stream
                  ->SplitShard(open[0]->shard_id(),
                               range.starting_hash_key +
                                   (range.ending_hash_key - range.starting_hash_key) / 2)
                  .ok());
    } else if (step % 3 == 1 && open.size() >= 2) {
      REQUIRE(stream->MergeShards(open[0]->shard_id(), open[1]->shard_id()).ok());
    }
    clock.Advance(absl::Seconds(1));
    Cycles({a.get(), b.get()}, 2);
  }
  Cycles({a.get(), b.get()}, 60);
  std::map<std::string, int> seen;
  bool in_order = true;
  for (const auto& d : journal.deliveries) {
    in_order = in_order && d.data == std::to_string(seen[d.key]);
    ++seen[d.key];
  }
  CHECK(in_order);
  CHECK(journal.deliveries.size() == static_cast<size_t>(total));  // no failover: exactly once
  CHECK(a->stats().records_delivered > 0);
  CHECK(b->stats().records_delivered > 0);
}

TEST_CASE("A group destroyed without shutdown resumes from its file store", "[consumer_group]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 3);
  const std::string path = TempPath("restart");
  Journal journal;
  const auto sent = Put(*stream, 300);
  auto options = [](kinlet::ConsumerGroupOptions& o) { o.max_records = 7; };
  std::map<std::string, SequenceNumber> checkpoint_at_crash;
  {
    auto store = *kinlet::FileCheckpointStore::Open(path);
    auto first = MakeGroup(stream.get(), store.get(), &journal, "first", options);
    journal.checkpoint_each_batch = true;
    Cycles({first.get()}, 5);
    journal.checkpoint_each_batch = false;  // the last batches are processed, not checkpointed
    Cycles({first.get()}, 3);
    const std::vector<kinlet::Lease> leases = *store->ListLeases();
    for (const kinlet::Lease& lease : leases) {
      auto checkpoint = SequenceNumber::Parse(lease.checkpoint);
      REQUIRE(checkpoint.ok());  // every shard has made progress
      checkpoint_at_crash.emplace(lease.lease_key, *checkpoint);
    }
  }  // the process "crashes": no shutdown, leases still owned by "first"
  const size_t before_restart = journal.deliveries.size();
  REQUIRE(before_restart < sent.size());
  journal.checkpoint_each_batch = true;
  clock.Advance(absl::Seconds(11));  // the dead worker's leases expire
  auto store = *kinlet::FileCheckpointStore::Open(path);
  auto second = MakeGroup(stream.get(), store.get(), &journal, "second", options);
  Cycles({second.get()}, 40);
  std::map<std::string, int> times;
  for (const auto& d : journal.deliveries) ++times[d.data];
  for (const auto& s : sent) CHECK(times[s] >= 1);  // none skipped
  for (const auto& d : journal.deliveries) {
    if (times[d.data] > 1) {  // duplicates only after the last checkpoint
      CHECK(d.sequence > checkpoint_at_crash.at(d.shard));
    }
  }
  CHECK(journal.deliveries.size() > sent.size());  // the uncheckpointed batches came again
  std::filesystem::remove(path);
}

TEST_CASE("Graceful shutdown lets processors checkpoint and releases the leases",
          "[consumer_group]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  journal.checkpoint_each_batch = false;  // only at shutdown
  auto a = MakeGroup(stream.get(), &store, &journal, "a");
  a->Start();  // its own thread
  const auto sent = Put(*stream, 100);
  for (int i = 0; i < 10000 && journal.Data().size() < sent.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(journal.Data().size() == sent.size());
  auto done = a->RequestShutdown();
  REQUIRE(done.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(done.get().ok());
  CHECK(journal.Count("shutdown") == 2);
  CHECK(journal.checkpoint_errors.empty());
  const std::vector<kinlet::Lease> leases = *store.ListLeases();
  for (const kinlet::Lease& lease : leases) {
    CHECK(lease.owner.empty());
    CHECK(SequenceNumber::Parse(lease.checkpoint).ok());
  }
  CHECK(absl::IsFailedPrecondition(a->RunOnce()));
  // Another worker takes over at once (no failover wait) and delivers nothing again.
  auto b = MakeGroup(stream.get(), &store, &journal, "b");
  REQUIRE(b->RunOnce().ok());
  CHECK(b->HeldShards().size() == 2);
  CHECK(journal.Data().size() == sent.size());
}

TEST_CASE("A new group starts at LATEST or AT_TIMESTAMP when told", "[consumer_group]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2);
  Put(*stream, 10, "old-");
  clock.Advance(absl::Minutes(1));
  const absl::Time cut = clock.Now();
  const auto recent = Put(*stream, 10, "recent-");
  kinlet::InMemoryCheckpointStore at_store;
  Journal at_journal;
  kinlet::ConsumerGroupOptions options;
  options.application_name = "at";
  options.initial_position = kinlet::IteratorPosition::AtTimestamp(cut);
  auto at = *Group::Create(
      stream.get(), &at_store,
      [&] { return std::make_unique<JournalProcessor>(&at_journal, "at"); }, options);
  kinlet::InMemoryCheckpointStore latest_store;
  Journal latest_journal;
  options.application_name = "latest";
  options.initial_position = kinlet::IteratorPosition::Latest();
  auto latest = *Group::Create(
      stream.get(), &latest_store,
      [&] { return std::make_unique<JournalProcessor>(&latest_journal, "latest"); }, options);
  Cycles({at.get(), latest.get()}, 3);
  const auto fresh = Put(*stream, 10, "fresh-");
  Cycles({at.get(), latest.get()}, 3);
  std::vector<std::string> expect = recent;
  expect.insert(expect.end(), fresh.begin(), fresh.end());
  CHECK(Bag(at_journal.Data()) == Bag(expect));
  CHECK(Bag(latest_journal.Data()) == Bag(fresh));
}

TEST_CASE("A group reads through enhanced fan-out when configured", "[consumer_group][fan_out]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 3);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  auto fan = [](kinlet::ConsumerGroupOptions& o) { o.enhanced_fan_out = true; };
  auto a = MakeGroup(stream.get(), &store, &journal, "a", fan);
  auto b = MakeGroup(stream.get(), &store, &journal, "b", fan);
  CHECK(stream->DescribeStreamConsumer("app").ok());  // registered once, shared
  const auto sent = Put(*stream, 150);
  Cycles({a.get(), b.get()}, 10);
  CHECK(Bag(journal.Data()) == Bag(sent));
  CHECK(a->HeldShards().size() + b->HeldShards().size() == 3);
}

TEST_CASE("ConsumerGroup::Create refuses bad options", "[consumer_group]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  kinlet::InMemoryCheckpointStore store;
  auto factory = [] { return std::unique_ptr<kinlet::RecordProcessor<std::string>>(); };
  auto make = [&](void (*tweak)(kinlet::ConsumerGroupOptions&)) {
    kinlet::ConsumerGroupOptions o;
    o.application_name = "app";
    tweak(o);
    return Group::Create(stream.get(), &store, factory, o).status();
  };
  CHECK(make([](kinlet::ConsumerGroupOptions&) {}).ok());
  CHECK(kinlet::IsInvalidArgument(
      make([](kinlet::ConsumerGroupOptions& o) { o.application_name = "bad name"; })));
  CHECK(kinlet::IsInvalidArgument(
      make([](kinlet::ConsumerGroupOptions& o) { o.worker_id = "a,b"; })));
  CHECK(kinlet::IsInvalidArgument(make([](kinlet::ConsumerGroupOptions& o) {
    o.initial_position = kinlet::IteratorPosition::AtSequenceNumber(SequenceNumber(0, 0, 1));
  })));
  CHECK(
      kinlet::IsInvalidArgument(make([](kinlet::ConsumerGroupOptions& o) { o.max_records = 0; })));
  CHECK(kinlet::IsInvalidArgument(
      make([](kinlet::ConsumerGroupOptions& o) { o.failover_time = absl::ZeroDuration(); })));
  CHECK(kinlet::IsInvalidArgument(
      make([](kinlet::ConsumerGroupOptions& o) { o.max_leases_for_worker = 0; })));
  auto generated = Group::Create(stream.get(), &store, factory, [] {
    kinlet::ConsumerGroupOptions o;
    o.application_name = "app";
    return o;
  }());
  REQUIRE(generated.ok());
  CHECK((*generated)->worker_id().rfind("app-worker-", 0) == 0);
}

namespace {

// Splits the first open shard in the middle of its hash key range.
void SplitFirst(TestStream& stream) {
  auto open = stream.OpenShards();
  const auto range = open[0]->hash_key_range();
  REQUIRE(stream
              .SplitShard(
                  open[0]->shard_id(),
                  range.starting_hash_key + (range.ending_hash_key - range.starting_hash_key) / 2)
              .ok());
}
void MergeFirstTwo(TestStream& stream) {
  auto open = stream.OpenShards();
  REQUIRE(open.size() >= 2);
  REQUIRE(stream.MergeShards(open[0]->shard_id(), open[1]->shard_id()).ok());
}
std::set<std::string> LeaseKeys(kinlet::CheckpointStore& store) {
  std::set<std::string> keys;
  const std::vector<kinlet::Lease> leases = *store.ListLeases();
  for (const kinlet::Lease& l : leases) keys.insert(l.lease_key);
  return keys;
}

}  // namespace

TEST_CASE("Finished leases are deleted once their children have started",
          "[consumer_group][reshard]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 1);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  auto group = MakeGroup(stream.get(), &store, &journal, "w");
  auto sent = Put(*stream, 10, "a-");
  Cycles({group.get()}, 3);
  SplitFirst(*stream);  // shardId-0 -> 1, 2
  Cycles({group.get()}, 5);
  // The children have leases but have not started (TRIM_HORIZON): 0 stays.
  CHECK(LeaseKeys(store) == std::set<std::string>{"shardId-000000000000", "shardId-000000000001",
                                                  "shardId-000000000002"});
  for (const auto& r : Put(*stream, 40, "b-")) sent.push_back(r);
  Cycles({group.get()}, 5);          // the children checkpoint
  clock.Advance(absl::Seconds(61));  // the next shard sync
  Cycles({group.get()}, 2);
  CHECK(LeaseKeys(store) == std::set<std::string>{"shardId-000000000001", "shardId-000000000002"});
  CHECK(group->stats().leases_deleted == 1);

  MergeFirstTwo(*stream);  // 1 + 2 -> 3
  Cycles({group.get()}, 5);
  CHECK(LeaseKeys(store) == std::set<std::string>{"shardId-000000000001", "shardId-000000000002",
                                                  "shardId-000000000003"});
  for (const auto& r : Put(*stream, 10, "c-")) sent.push_back(r);
  Cycles({group.get()}, 5);
  clock.Advance(absl::Seconds(61));
  Cycles({group.get()}, 2);
  CHECK(LeaseKeys(store) == std::set<std::string>{"shardId-000000000003"});
  CHECK(group->stats().leases_deleted == 3);
  CHECK(Bag(journal.Data()) == Bag(sent));  // each record exactly once
  CHECK(journal.checkpoint_errors.empty());
}

TEST_CASE("Thousands of reshards keep the lease table and the group's state bounded",
          "[consumer_group][reshard]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "churn";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 1;
  options.max_record_size_bytes = 1024;
  options.shard_capacity_records = 64;
  options.shard_capacity_bytes = 16 << 10;
  auto created = TestStream::Create(options, &clock);
  REQUIRE(created.ok());
  TestStream& stream = **created;
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  auto a = MakeGroup(&stream, &store, &journal, "a");
  auto b = MakeGroup(&stream, &store, &journal, "b");
  constexpr int kCycles = 1000;  // 2,000 reshards, 3,000 shards
  std::vector<std::string> sent;
  size_t most_leases = 0;
  size_t most_held = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    for (const auto& r : Put(stream, 2, absl::StrCat("s", cycle, "-"))) sent.push_back(r);
    SplitFirst(stream);
    Cycles({a.get(), b.get()}, 2);
    for (const auto& r : Put(stream, 2, absl::StrCat("m", cycle, "-"))) sent.push_back(r);
    MergeFirstTwo(stream);
    Cycles({a.get(), b.get()}, 3);
    clock.Advance(absl::Seconds(1));
    most_leases = std::max(most_leases, store.ListLeases()->size());
    most_held = std::max(most_held, a->HeldShards().size() + b->HeldShards().size());
  }
  Cycles({a.get(), b.get()}, 10);
  CHECK(Bag(journal.Data()) == Bag(sent));
  CHECK(most_leases <= 8);  // not 3,001: finished generations are deleted
  CHECK(most_held <= 4);
  CHECK(a->stats().leases_deleted + b->stats().leases_deleted >= 3 * kCycles - 8);
  CHECK(journal.checkpoint_errors.empty());
}

TEST_CASE("A group keeps a deleted registry stream alive and fails its later cycles",
          "[consumer_group][lifetime]") {
  kinlet::ManualClock clock;
  kinlet::Registry<std::string, kinlet::ManualClockTraits> registry(&clock);
  kinlet::StreamOptions options;
  options.name = "doomed";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 2;
  options.max_record_size_bytes = 1024;
  options.shard_capacity_bytes = 1 << 20;
  auto created = registry.CreateStream(options);
  INFO(created.status());
  REQUIRE(created.ok());
  std::shared_ptr<TestStream> stream = *std::move(created);
  kinlet::InMemoryCheckpointStore store;
  Journal journal;
  auto group = MakeGroup(stream.get(), &store, &journal, "w");
  Put(*stream, 50);
  stream.reset();  // the registry and the group own it now

  std::atomic<bool> stop{false};
  std::atomic<int> cycles{0};
  std::thread runner([&] {
    while (!stop.load()) {
      (void)group->RunOnce();
      cycles.fetch_add(1);
    }
  });
  while (cycles.load() < 3) std::this_thread::yield();
  REQUIRE(registry.DeleteStream("doomed").ok());  // while the group runs
  const int at_delete = cycles.load();
  while (cycles.load() < at_delete + 3) std::this_thread::yield();
  stop.store(true);
  runner.join();
  for (int i = 0; i < 3; ++i) CHECK(kinlet::IsResourceNotFound(group->RunOnce()));
  CHECK(group->RequestShutdown().get().ok());  // still safe to shut down
  group.reset();                               // the last owner: the stream goes with it
}
