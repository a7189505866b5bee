// Consumer groups across processes (issue 16): three group_worker processes
// share a 4-shard stream on an in-process kinlet gateway through an SQLite
// lease table; one is SIGKILLed mid-batch; the others take over its leases;
// every record is processed at least once, in per-key order within each
// processor's run; SIGTERM stops the rest cleanly (leases released). And the
// consumer_group example, one program, runs in-process and against the
// gateway.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "dynalite.hpp"
#include "gateway/process_helpers.hpp"
#include "kinlet/gateway/gateway.hpp"
#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/remote/dynamodb_checkpoint_store.hpp"
#include "kinlet/remote/remote_registry.hpp"
#include "kinlet/remote/sqlite_checkpoint_store.hpp"
#include "local_endpoint.hpp"
#include "test_credentials.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using kinlet::remote::RemoteStream;

using kinlet::gateway::testing::Process;
using kinlet::gateway::testing::TempDir;

std::string ReadFile(const std::string& path) {
  return kinlet::gateway::testing::ReadWholeFile(path);
}

// The environment of a worker or example process: this one's minus every
// AWS_* variable, plus `extra`.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("AWS_", 0) != 0) vars.emplace_back(*e);
  }
  vars.insert(vars.end(), extra.begin(), extra.end());
  return vars;
}

using Endpoint = kinlet_test::LocalEndpoint;

// What a client program needs to reach the gateway: the SDKs' variables.
std::vector<std::string> ClientEnv() {
  return {std::string("AWS_ACCESS_KEY_ID=") + kinlet_test::kTestAccessKey,
          std::string("AWS_SECRET_ACCESS_KEY=") + kinlet_test::kTestSecretKey,
          "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"};
}

std::string Key(int k) { return "key-" + std::to_string(k); }

// Puts record n of every key (data "<key> <n>") in one PutRecords call.
void PutRound(RemoteStream& stream, int keys, int n) {
  std::vector<std::pair<std::string, std::string>> records;
  for (int k = 0; k < keys; ++k) records.emplace_back(Key(k), Key(k) + " " + std::to_string(n));
  std::vector<RemoteStream::Entry> entries;
  for (const auto& [key, data] : records) {
    RemoteStream::Entry entry;
    entry.partition_key = key;
    entry.data = data;
    entries.push_back(entry);
  }
  kinlet::PutRecordsResult result;
  REQUIRE(stream.PutRecords(entries, &result).ok());
  REQUIRE(result.failed_record_count == 0);
}

// A worker's output file, parsed: the records it processed, and per-key order
// violations within each processor's run ("init <shard> ..." starts a run).
struct WorkerOutput {
  std::set<std::pair<std::string, int>> records;
  size_t lines = 0;
  std::vector<std::string> order_errors;
  // Per shard, the records after its last "checkpoint" or "init" line: never
  // checkpointed by this worker.
  std::map<std::string, std::vector<std::pair<std::string, int>>> uncheckpointed;
  bool ends_in_record = false;  // the last line is a record (mid-batch)
};

WorkerOutput ParseOutput(const std::string& text) {
  WorkerOutput out;
  std::map<std::string, int> last_n;            // key -> n, in the current run of its shard
  std::map<std::string, std::string> shard_of;  // key -> shard
  for (const std::string& line :
       std::vector<std::string>(absl::StrSplit(text, '\n', absl::SkipEmpty()))) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    out.ends_in_record = false;
    if (f.size() == 2 && f[0] == "checkpoint") {
      out.uncheckpointed[f[1]].clear();
      continue;
    }
    if (f.size() == 3 && f[0] == "init") {
      out.uncheckpointed[f[1]].clear();
      for (auto it = last_n.begin(); it != last_n.end();) {  // a new run of shard f[1]
        it = shard_of[it->first] == f[1] ? last_n.erase(it) : std::next(it);
      }
      continue;
    }
    if (f.size() == 3 && f[0] == "end") continue;
    int n = -1;
    if (f.size() != 4 || f[1] != f[2] || !absl::SimpleAtoi(f[3], &n)) {
      // A line cut short by SIGKILL can only be the last one.
      out.order_errors.push_back("malformed line: " + line);
      continue;
    }
    ++out.lines;
    out.ends_in_record = true;
    out.records.emplace(f[1], n);
    out.uncheckpointed[f[0]].emplace_back(f[1], n);
    shard_of[f[1]] = f[0];
    auto [it, first] = last_n.try_emplace(f[1], n);
    if (!first) {
      if (n != it->second + 1) {
        out.order_errors.push_back(f[1] + ": " + std::to_string(n) + " after " +
                                   std::to_string(it->second));
      }
      it->second = n;
    }
  }
  return out;
}

// The leases whose owner is `worker` (unfinished ones).
size_t LeasesOf(kinlet::CheckpointStore& store, const std::string& worker) {
  auto leases = store.ListLeases();
  if (!leases.ok()) return 0;  // busy: counted again next poll
  size_t n = 0;
  for (const kinlet::Lease& l : *leases) {
    if (l.owner == worker && l.checkpoint != kinlet::kCheckpointShardEnd) ++n;
  }
  return n;
}

}  // namespace

// Three worker processes over one remote stream, leases in the store `spec`
// names (`store` is the test's own view of that table); one is SIGKILLed mid-batch.
void RunThreeWorkers(const std::string& spec, kinlet::CheckpointStore* store_view) {
  Endpoint e;
  TempDir dir;
  kinlet::StreamOptions so;
  so.name = "groups";
  so.shard_count = 4;
  auto created = e.remote->CreateStream(so);
  INFO(created.status().ToString());
  REQUIRE(created.ok());
  RemoteStream& stream = **created;

  kinlet::CheckpointStore* const* store = &store_view;  // read as **store below

  constexpr int kKeys = 24;
  constexpr int kRounds = 60;
  constexpr int kFailoverMs = 1000;
  std::vector<std::string> ids, outs;
  std::vector<std::unique_ptr<Process>> workers;
  for (int w = 0; w < 3; ++w) {
    ids.push_back("worker-" + std::to_string(w));
    outs.push_back(dir.path() + "/" + ids.back() + ".out");
    workers.push_back(std::make_unique<Process>(
        std::vector<std::string>{
            KINLET_GROUP_WORKER, "--endpoint", e.gateway->endpoint(), "--stream", "groups",
            "--store", spec, "--out", outs.back(), "--worker-id", ids.back(), "--failover-ms",
            std::to_string(kFailoverMs), "--max-records", "20", "--record-delay-ms", "2"},
        ChildEnvironment(ClientEnv())));
    REQUIRE(workers.back()->pid() > 0);
  }

  // The first half of the records, while the workers balance the leases.
  int round = 0;
  for (; round < kRounds / 2; ++round) {
    PutRound(stream, kKeys, round);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Once every worker holds a lease and the victim has processed records, it
  // is SIGKILLed while records flow (its batches take ~2 ms a record).
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  auto balanced = [&] {
    for (const std::string& id : ids) {
      if (LeasesOf(**store, id) == 0) return false;
    }
    return ParseOutput(ReadFile(outs[0])).lines > 0;
  };
  while (!balanced() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  INFO("worker-0: " << workers[0]->err() << " worker-1: " << workers[1]->err());
  REQUIRE(balanced());
  PutRound(stream, kKeys, round++);
  // Mid-batch: right after it wrote a record line (it sleeps 2 ms after each,
  // so its "checkpoint" line is not near).
  const auto mid_batch_deadline = Clock::now() + std::chrono::seconds(5);
  while (!ParseOutput(ReadFile(outs[0])).ends_in_record && Clock::now() < mid_batch_deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  workers[0]->Signal(SIGKILL);
  CHECK(workers[0]->Wait(std::chrono::seconds(5)).exit_code == -1);  // killed, not exited
  const size_t victim_leases = LeasesOf(**store, ids[0]);
  CHECK(victim_leases > 0);  // its leases are still in its name: nobody released them

  // The rest of the records; the survivors take the victim's leases over once
  // they expire (failover time 1 s; the deadline is generous).
  for (; round < kRounds; ++round) {
    PutRound(stream, kKeys, round);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto takeover_deadline = Clock::now() + std::chrono::seconds(30);
  while (LeasesOf(**store, ids[0]) != 0 && Clock::now() < takeover_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(LeasesOf(**store, ids[0]) == 0);
  {
    auto leases = (*store)->ListLeases();
    REQUIRE(leases.ok());
    CHECK(leases->size() == 4);
    for (const kinlet::Lease& l : *leases) {
      INFO(l.lease_key << " owner " << l.owner);
      CHECK((l.owner == ids[1] || l.owner == ids[2]));
    }
  }

  // Every record processed at least once: the union of the output files.
  std::set<std::pair<std::string, int>> expected;
  for (int k = 0; k < kKeys; ++k) {
    for (int n = 0; n < kRounds; ++n) expected.emplace(Key(k), n);
  }
  auto processed = [&] {
    std::set<std::pair<std::string, int>> all;
    for (const std::string& out : outs) {
      WorkerOutput o = ParseOutput(ReadFile(out));
      all.insert(o.records.begin(), o.records.end());
    }
    return all;
  };
  const auto done_deadline = Clock::now() + std::chrono::seconds(30);
  while (processed() != expected && Clock::now() < done_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(processed() == expected);
  // What the victim processed without checkpointing was processed again by
  // the survivors that took its leases over.
  {
    const WorkerOutput victim = ParseOutput(ReadFile(outs[0]));
    std::set<std::pair<std::string, int>> survivors;
    for (size_t w = 1; w < outs.size(); ++w) {
      WorkerOutput o = ParseOutput(ReadFile(outs[w]));
      survivors.insert(o.records.begin(), o.records.end());
    }
    size_t redone = 0;
    for (const auto& [shard, records] : victim.uncheckpointed) {
      for (const auto& record : records) {
        INFO("killed worker's uncheckpointed " << record.first << " " << record.second << " of "
                                               << shard);
        CHECK(survivors.contains(record));
        ++redone;
      }
    }
    if (redone == 0) WARN("the kill came between batches this time");
  }

  // SIGTERM: the survivors checkpoint, release their leases and exit 0.
  for (int w = 1; w < 3; ++w) workers[w]->Signal(SIGTERM);
  for (int w = 1; w < 3; ++w) {
    INFO(ids[w] << " stderr: " << workers[w]->err());
    CHECK(workers[w]->Wait(std::chrono::seconds(30)).exit_code == 0);
    CHECK(workers[w]->out().find("stopped") != std::string::npos);
  }
  auto leases = (*store)->ListLeases();
  REQUIRE(leases.ok());
  for (const kinlet::Lease& l : *leases) {
    INFO(l.lease_key);
    CHECK(l.owner.empty());
    CHECK(l.checkpoint != kinlet::kCheckpointTrimHorizon);
  }

  // Per-key order within each processor's run, in every worker's output (the
  // victim's too: its last line may be cut short by the kill).
  for (size_t w = 0; w < outs.size(); ++w) {
    WorkerOutput o = ParseOutput(ReadFile(outs[w]));
    INFO(ids[w] << " processed " << o.lines << " records");
    CHECK(o.lines > 0);
    if (w == 0 && o.order_errors.size() == 1 && o.order_errors[0].rfind("malformed line", 0) == 0) {
      continue;  // the line being written when SIGKILL came
    }
    for (const std::string& error : o.order_errors) FAIL_CHECK(error);
  }
}

TEST_CASE("Consumer group across processes: SIGKILL one of three workers, SQLite leases",
          "[remote][remote-groups]") {
  TempDir dir;
  const std::string db = dir.path() + "/leases.db";
  auto store = kinlet::remote::SqliteCheckpointStore::Open(db);
  REQUIRE(store.ok());
  RunThreeWorkers("sqlite:" + db, store->get());
}

TEST_CASE("Consumer group across processes: SIGKILL one of three workers, DynamoDB leases",
          "[remote][remote-groups][dynamodb]") {
  auto dynalite = kinlet_test::StartDynalite();
  if (dynalite == nullptr) return;  // WARNed (or failed) by StartDynalite
  kinlet::remote::DynamoDbCheckpointStoreOptions options;
  options.table = "groups-app";
  options.remote.endpoint = dynalite->endpoint();
  options.remote.credentials = kinlet_test::TestCredentials();
  auto store = kinlet::remote::DynamoDbCheckpointStore::Open(std::move(options));
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  RunThreeWorkers("dynamodb:groups-app@" + dynalite->endpoint(), store->get());
}

TEST_CASE("A worker refuses an unknown store and bad flags", "[remote][remote-groups]") {
  TempDir dir;
  Process no_flags({KINLET_GROUP_WORKER}, ChildEnvironment(ClientEnv()));
  CHECK(no_flags.Wait(std::chrono::seconds(10)).exit_code == 2);
  Endpoint e;
  kinlet::StreamOptions so;
  so.name = "flags";
  REQUIRE(e.remote->CreateStream(so).ok());
  for (const std::string store : {"dynamodb:leases@http://127.0.0.1:1", "etcd:x"}) {
    Process bad({KINLET_GROUP_WORKER, "--endpoint", e.gateway->endpoint(), "--stream", "flags",
                 "--store", store, "--out", dir.path() + "/out", "--worker-id", "w"},
                ChildEnvironment(ClientEnv()));
    CHECK(bad.Wait(std::chrono::seconds(10)).exit_code == 1);
    CHECK(bad.err().find("--store " + store) != std::string::npos);
  }
}

#ifdef KINLET_CONSUMER_GROUP_EXAMPLE
TEST_CASE("The consumer_group example runs unchanged in-process and against an endpoint",
          "[remote][remote-groups]") {
  TempDir dir;
  {
    Process in_process({KINLET_CONSUMER_GROUP_EXAMPLE, dir.path() + "/local.checkpoints"},
                       ChildEnvironment(ClientEnv()));
    const int code = in_process.Wait(std::chrono::seconds(60)).exit_code;
    INFO(in_process.out() << in_process.err());
    CHECK(code == 0);
    CHECK(in_process.out().find("in-process stream sentences") != std::string::npos);
    CHECK(in_process.out().find("counts complete") != std::string::npos);
  }
  Endpoint e;
  for (bool by_env : {false, true}) {
    std::vector<std::string> argv = {KINLET_CONSUMER_GROUP_EXAMPLE};
    std::vector<std::string> env = ClientEnv();
    if (by_env) {
      env.push_back("AWS_ENDPOINT_URL_KINESIS=" + e.gateway->endpoint());
    } else {
      argv.insert(argv.end(), {"--endpoint", e.gateway->endpoint()});
    }
    argv.push_back(dir.path() + "/remote.checkpoints");
    Process remote(argv, ChildEnvironment(env));
    const int code = remote.Wait(std::chrono::seconds(60)).exit_code;
    INFO(remote.out() << remote.err());
    CHECK(code == 0);
    CHECK(remote.out().find("remote stream sentences-" + std::to_string(remote.pid()) + " at " +
                            e.gateway->endpoint()) != std::string::npos);
    CHECK(remote.out().find("counts complete") != std::string::npos);
    // It ran on the gateway's streams: created there, deleted at its end.
    auto names = e.remote->ListStreams();
    REQUIRE(names.ok());
    CHECK(names->empty());
  }
}
#endif
