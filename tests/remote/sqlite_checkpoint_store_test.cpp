// Tests of kinlet/remote/sqlite_checkpoint_store.hpp: CheckpointStore's
// contract (conditional writes on the lease counter, ConditionalCheckFailed,
// ResourceNotFound, conditional delete, create-if-absent), what survives a
// reopen, tables per application, bad input and bad files; contention between
// store instances on one file from several threads and from several processes
// (fork), a process killed with SIGKILL while writing, and ConsumerGroups
// (one store instance each, as separate processes would have) sharing a
// stream's shards, with takeover after a worker dies.
#include "kinlet/remote/sqlite_checkpoint_store.hpp"

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "checkpoint_store_contract.hpp"
#include "kinlet/consumer_group.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/stream.hpp"

namespace {

using kinlet::Lease;
using kinlet::remote::SqliteCheckpointStore;

// A fresh database path, removed (with its -wal and -shm files) at scope exit.
class TempDb {
 public:
  TempDb() {
    static std::atomic<int> n{0};
    path_ = (std::filesystem::temp_directory_path() /
             absl::StrCat("kinlet-sqlite-", ::getpid(), "-", n++, ".db"))
                .string();
  }
  ~TempDb() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::error_code ignored;
      std::filesystem::remove(path_ + suffix, ignored);
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<SqliteCheckpointStore> OpenStore(const std::string& path,
                                                 const std::string& table = "kinlet_leases") {
  kinlet::remote::SqliteCheckpointStoreOptions options;
  options.table = table;
  auto store = SqliteCheckpointStore::Open(path, options);
  REQUIRE(store.ok());
  return std::move(*store);
}

using kinlet_test::MakeLease;

TEST_CASE("SQLite store: the CheckpointStore contract", "[remote][sqlite]") {
  TempDb db;
  auto store = OpenStore(db.path());
  kinlet_test::CheckStoreContract(*store);
}

TEST_CASE("SQLite store: bad input and bad files are clear errors", "[remote][sqlite]") {
  TempDb db;
  auto store = OpenStore(db.path());
  CHECK(kinlet::IsInvalidArgument(store->CreateLeaseIfNotExists(MakeLease(""))));
  Lease bad_parent = MakeLease("s");
  bad_parent.parent_shard_ids = {"a,b"};
  CHECK(kinlet::IsInvalidArgument(store->CreateLeaseIfNotExists(bad_parent)));
  CHECK(kinlet::IsInvalidArgument(store->UpdateLease(bad_parent, 0)));
  CHECK(store->ListLeases()->empty());

  kinlet::remote::SqliteCheckpointStoreOptions options;
  options.table = "leases; DROP TABLE x";
  auto bad_table = SqliteCheckpointStore::Open(db.path(), options);
  REQUIRE_FALSE(bad_table.ok());
  CHECK(kinlet::IsInvalidArgument(bad_table.status()));

  TempDb garbage;
  std::ofstream(garbage.path()) << std::string(4096, 'x');
  auto not_sqlite = SqliteCheckpointStore::Open(garbage.path());
  REQUIRE_FALSE(not_sqlite.ok());
  CHECK(kinlet::IsInternalFailure(not_sqlite.status()));
  CHECK(not_sqlite.status().message().find(garbage.path()) != std::string_view::npos);

  auto no_dir = SqliteCheckpointStore::Open("/nonexistent-dir-kinlet/x.db");
  REQUIRE_FALSE(no_dir.ok());
  CHECK(kinlet::IsInternalFailure(no_dir.status()));
}

TEST_CASE("SQLite store: leases survive a reopen and tables are per application",
          "[remote][sqlite]") {
  TempDb db;
  Lease lease = MakeLease("shardId-000000000003", 0);
  {
    auto store = OpenStore(db.path());
    REQUIRE(store->CreateLeaseIfNotExists(lease).ok());
    lease.owner = "w";
    lease.lease_counter = 1;
    lease.checkpoint = "123";
    REQUIRE(store->UpdateLease(lease, 0).ok());
  }
  auto reopened = OpenStore(db.path());
  REQUIRE(reopened->ListLeases()->size() == 1);
  CHECK(reopened->ListLeases()->at(0) == lease);
  auto other_app = OpenStore(db.path(), "other_app");
  CHECK(other_app->ListLeases()->empty());
  REQUIRE(other_app->CreateLeaseIfNotExists(MakeLease("x")).ok());
  CHECK(reopened->ListLeases()->size() == 1);
}

TEST_CASE("SQLite store: a lock held too long is Unavailable and changes nothing",
          "[remote][sqlite]") {
  TempDb db;
  kinlet::remote::SqliteCheckpointStoreOptions options;
  options.busy_timeout = std::chrono::milliseconds(20);
  auto opened = SqliteCheckpointStore::Open(db.path(), options);
  REQUIRE(opened.ok());
  auto& store = *opened;
  REQUIRE(store->CreateLeaseIfNotExists(MakeLease("l")).ok());
  // Another connection (another process, say) holds the write lock.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(db.path().c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  absl::Status busy = store->UpdateLease(MakeLease("l", 1, "w"), 0);
  CHECK(absl::IsUnavailable(busy));
  CHECK(busy.message().find(db.path()) != std::string_view::npos);
  CHECK(absl::IsUnavailable(store->DeleteLease("l", 0)));
  CHECK(store->ListLeases().ok());  // WAL: readers are not blocked by the writer
  REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_close(other) == SQLITE_OK);
  CHECK(store->ListLeases()->at(0).lease_counter == 0);  // nothing changed
  CHECK(store->UpdateLease(MakeLease("l", 1, "w"), 0).ok());
}

using kinlet_test::Increment;

TEST_CASE("SQLite store: two instances on one file, several threads, no lost update",
          "[remote][sqlite]") {
  TempDb db;
  auto first = OpenStore(db.path());
  auto second = OpenStore(db.path());
  REQUIRE(first->CreateLeaseIfNotExists(MakeLease("shared")).ok());
  constexpr int kThreads = 4, kRounds = 100;
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(kThreads);
  std::atomic<int> conflicts{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      results[t] = Increment(t % 2 == 0 ? *first : *second, "shared", kRounds, absl::StrCat("t", t),
                             &conflicts);
    });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : results) CHECK(s.ok());
  // Every successful conditional write was exactly one increment.
  CHECK(second->ListLeases()->at(0).lease_counter == kThreads * kRounds);
}

TEST_CASE("SQLite store: processes contend for leases without lost updates",
          "[remote][sqlite][process]") {
  TempDb db;
  constexpr int kProcesses = 3, kRounds = 60, kLeases = 2;
  {
    auto store = OpenStore(db.path());
    for (int i = 0; i < kLeases; ++i) {
      REQUIRE(store->CreateLeaseIfNotExists(MakeLease(absl::StrCat("lease-", i))).ok());
    }
  }
  std::vector<pid_t> children;
  std::vector<int> pipes;
  for (int p = 0; p < kProcesses; ++p) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child: its own connection; no Catch2 from here on
      ::close(fds[0]);
      int status = 0;
      auto store = SqliteCheckpointStore::Open(db.path());
      if (!store.ok()) ::_exit(2);
      int done = 0;
      for (int round = 0; round < kRounds * kLeases * 4 && done < kRounds * kLeases; ++round) {
        auto leases = (*store)->ListLeases();
        if (!leases.ok() || leases->size() != kLeases) ::_exit(3);
        Lease lease = leases->at(static_cast<size_t>(round % kLeases));
        const uint64_t expected = lease.lease_counter;
        lease.owner = absl::StrCat("process-", p);
        ++lease.lease_counter;
        absl::Status s = (*store)->UpdateLease(lease, expected);
        if (s.ok()) {
          ++done;
          const std::string line = lease.lease_key + "\n";
          if (::write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            status = 4;
        } else if (!kinlet::IsConditionalCheckFailed(s)) {
          status = 5;
        }
      }
      ::close(fds[1]);
      ::_exit(status);
    }
    ::close(fds[1]);
    children.push_back(pid);
    pipes.push_back(fds[0]);
  }
  std::map<std::string, uint64_t> successes;
  for (int fd : pipes) {
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, n);
    ::close(fd);
    for (absl::string_view key : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      ++successes[std::string(key)];
    }
  }
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto store = OpenStore(db.path());
  auto leases = store->ListLeases();
  REQUIRE(leases.ok());
  uint64_t total = 0;
  for (const Lease& lease : *leases) {
    // Each counter moved by exactly the writes that were told OK.
    CHECK(lease.lease_counter == successes[lease.lease_key]);
    total += lease.lease_counter;
  }
  CHECK(total > 0);
}

TEST_CASE("SQLite store: a process killed while writing leaves a usable store",
          "[remote][sqlite][process]") {
  TempDb db;
  {
    auto store = OpenStore(db.path());
    REQUIRE(store->CreateLeaseIfNotExists(MakeLease("lease")).ok());
  }
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto store = SqliteCheckpointStore::Open(db.path());
    if (!store.ok()) ::_exit(2);
    for (;;) {  // renews forever, until killed
      auto leases = (*store)->ListLeases();
      if (!leases.ok()) ::_exit(3);
      Lease lease = leases->at(0);
      const uint64_t expected = lease.lease_counter;
      lease.owner = "doomed";
      ++lease.lease_counter;
      (void)(*store)->UpdateLease(lease, expected);
    }
  }
  auto store = OpenStore(db.path());
  for (;;) {  // until the child has written a good many times
    auto leases = store->ListLeases();
    REQUIRE(leases.ok());
    if (leases->at(0).lease_counter >= 50) break;
    std::this_thread::yield();
  }
  REQUIRE(::kill(pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  // The survivor takes the lease over with a conditional write on what it reads.
  Lease lease = store->ListLeases()->at(0);
  CHECK(lease.owner == "doomed");
  const uint64_t expected = lease.lease_counter;
  lease.owner = "survivor";
  ++lease.lease_counter;
  REQUIRE(store->UpdateLease(lease, expected).ok());
  auto reopened = OpenStore(db.path());
  CHECK(reopened->ListLeases()->at(0) == lease);
}

TEST_CASE("SQLite store: consumer groups share shards and take over a dead worker's",
          "[remote][sqlite][consumer_group]") {
  TempDb db;
  kinlet_test::CheckGroupsShareAndTakeOver(
      [&] { return std::unique_ptr<kinlet::CheckpointStore>(OpenStore(db.path())); });
}

}  // namespace
