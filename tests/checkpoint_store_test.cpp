// Tests of kinlet/checkpoint_store.hpp: the compare-and-set contract of both
// stores (update and delete), and the file store's durability: reopening,
// damaged files refused, a torn tail cut off at every byte offset, a crash
// losing only renewals, one record per write, compaction, every fsync error
// reported, the version-1 format read, a stale temporary file ignored,
// invalid fields refused without a change.
#include "kinlet/checkpoint_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "kinlet/detail/hash.hpp"

namespace {

// A fresh directory under the system's temporary directory, removed after.
struct TempDir {
  TempDir() {
    static int n = 0;
    path = std::filesystem::temp_directory_path() /
           ("kinlet-store-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string File(const std::string& name) const { return (path / name).string(); }
  std::filesystem::path path;
};

kinlet::Lease MakeLease(std::string key) {
  kinlet::Lease lease;
  lease.lease_key = std::move(key);
  lease.checkpoint = std::string(kinlet::kCheckpointTrimHorizon);
  return lease;
}

}  // namespace

TEST_CASE("Checkpoint stores create once and update only at the expected counter",
          "[checkpoint_store]") {
  TempDir dir;
  const bool file = GENERATE(false, true);
  std::unique_ptr<kinlet::CheckpointStore> store;
  if (file) {
    store = *kinlet::FileCheckpointStore::Open(dir.File("leases"));
  } else {
    store = std::make_unique<kinlet::InMemoryCheckpointStore>();
  }
  kinlet::Lease a = MakeLease("shardId-000000000001");
  a.parent_shard_ids = {"shardId-000000000000"};
  REQUIRE(store->CreateLeaseIfNotExists(a).ok());
  kinlet::Lease again = a;
  again.owner = "someone";
  REQUIRE(store->CreateLeaseIfNotExists(again).ok());  // exists: unchanged
  REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000000")).ok());
  auto listed = *store->ListLeases();
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].lease_key == "shardId-000000000000");  // ordered by key
  CHECK(listed[1] == a);

  kinlet::Lease taken = a;
  taken.owner = "worker-1";
  taken.lease_counter = 1;
  taken.last_renewal_ms = 1234;
  CHECK(kinlet::IsConditionalCheckFailed(store->UpdateLease(taken, 7)));
  REQUIRE(store->UpdateLease(taken, 0).ok());
  CHECK((*store->ListLeases())[1] == taken);
  kinlet::Lease stale = a;
  stale.owner = "worker-2";
  stale.lease_counter = 1;
  CHECK(kinlet::IsConditionalCheckFailed(store->UpdateLease(stale, 0)));  // worker-1 wrote first
  CHECK((*store->ListLeases())[1].owner == "worker-1");
  CHECK(kinlet::IsResourceNotFound(store->UpdateLease(MakeLease("shardId-000000000009"), 0)));
}

TEST_CASE("A file checkpoint store survives reopening and refuses a damaged file",
          "[checkpoint_store]") {
  TempDir dir;
  const std::string path = dir.File("leases");
  {
    auto empty = kinlet::FileCheckpointStore::Open(path);  // no file yet: an empty table
    REQUIRE(empty.ok());
    CHECK((*empty)->ListLeases()->empty());
  }
  std::vector<kinlet::Lease> written;
  {
    auto store = *kinlet::FileCheckpointStore::Open(path);
    for (int i = 0; i < 3; ++i) {
      kinlet::Lease lease = MakeLease("shardId-00000000000" + std::to_string(i));
      REQUIRE(store->CreateLeaseIfNotExists(lease).ok());
    }
    kinlet::Lease done = MakeLease("shardId-000000000000");
    done.owner = "w";
    done.lease_counter = 1;
    done.checkpoint = "49590338271490256608559692538361571095921575989136588898";
    done.last_renewal_ms = 1700000000000;
    done.owner_switches_since_checkpoint = 2;
    REQUIRE(store->UpdateLease(done, 0).ok());
    written = *store->ListLeases();
  }
  // A stale temporary file (a crash between write and rename) is ignored.
  { std::ofstream(path + ".tmp") << "half a table"; }
  auto reopened = kinlet::FileCheckpointStore::Open(path);
  REQUIRE(reopened.ok());
  CHECK(*(*reopened)->ListLeases() == written);

  std::string text;
  {
    std::ifstream in(path);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  SECTION("a changed byte") {
    text[text.find("shardId-000000000001") + 8] = '7';
    std::ofstream(path, std::ios::trunc) << text;
    auto damaged = kinlet::FileCheckpointStore::Open(path);
    CHECK(absl::IsDataLoss(damaged.status()));
  }
  SECTION("a file cut inside its header") {
    // (A file cut inside its records is a torn tail: see the test below.)
    std::ofstream(path, std::ios::trunc) << text.substr(0, 10);
    CHECK(absl::IsDataLoss(kinlet::FileCheckpointStore::Open(path).status()));
  }
}

TEST_CASE("A file checkpoint store refuses fields it cannot store, changing nothing",
          "[checkpoint_store]") {
  TempDir dir;
  auto store = *kinlet::FileCheckpointStore::Open(dir.File("leases"));
  REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000000")).ok());
  kinlet::Lease bad = MakeLease("shardId-000000000000");
  bad.owner = "tab\there";
  bad.lease_counter = 1;
  CHECK(kinlet::IsInvalidArgument(store->UpdateLease(bad, 0)));
  CHECK((*store->ListLeases())[0].owner.empty());
  CHECK((*store->ListLeases())[0].lease_counter == 0);
  auto reopened = *kinlet::FileCheckpointStore::Open(dir.File("leases"));
  CHECK(*reopened->ListLeases() == *store->ListLeases());
}

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Counts the fsyncs a store makes and records, for regular files, the file's
// size at its last fsync: what a machine crash cannot take away.
struct SyncSpy {
  int file_syncs = 0;
  int directory_syncs = 0;
  off_t synced_size = 0;
  bool fail_files = false;
  bool fail_directories = false;
  kinlet::FileCheckpointStoreOptions Options() {
    kinlet::FileCheckpointStoreOptions options;
    options.sync_for_testing = [this](int fd) {
      struct stat st;
      REQUIRE(::fstat(fd, &st) == 0);
      const bool directory = S_ISDIR(st.st_mode);
      if (directory ? fail_directories : fail_files) {
        errno = EIO;
        return -1;
      }
      if (directory) {
        ++directory_syncs;
      } else {
        ++file_syncs;
        synced_size = st.st_size;
      }
      return ::fsync(fd);
    };
    return options;
  }
};

}  // namespace

TEST_CASE("Checkpoint stores delete a lease only at the expected counter", "[checkpoint_store]") {
  TempDir dir;
  const bool file = GENERATE(false, true);
  std::unique_ptr<kinlet::CheckpointStore> store;
  if (file) {
    store = *kinlet::FileCheckpointStore::Open(dir.File("leases"));
  } else {
    store = std::make_unique<kinlet::InMemoryCheckpointStore>();
  }
  REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000000")).ok());
  REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000001")).ok());
  kinlet::Lease taken = MakeLease("shardId-000000000000");
  taken.owner = "w";
  taken.lease_counter = 1;
  REQUIRE(store->UpdateLease(taken, 0).ok());
  CHECK(kinlet::IsConditionalCheckFailed(store->DeleteLease("shardId-000000000000", 0)));
  CHECK(store->ListLeases()->size() == 2);
  REQUIRE(store->DeleteLease("shardId-000000000000", 1).ok());
  CHECK(kinlet::IsResourceNotFound(store->DeleteLease("shardId-000000000000", 1)));
  CHECK(kinlet::IsResourceNotFound(store->UpdateLease(taken, 1)));
  auto listed = *store->ListLeases();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].lease_key == "shardId-000000000001");
  if (file) {
    store.reset();
    auto reopened = *kinlet::FileCheckpointStore::Open(dir.File("leases"));
    CHECK(*reopened->ListLeases() == listed);  // the deletion is durable
    REQUIRE(reopened->CreateLeaseIfNotExists(MakeLease("shardId-000000000000")).ok());
    CHECK(reopened->ListLeases()->size() == 2);
  }
}

TEST_CASE("A file checkpoint store appends one record per write and fsyncs all but renewals",
          "[checkpoint_store]") {
  TempDir dir;
  SyncSpy spy;
  auto store = *kinlet::FileCheckpointStore::Open(dir.File("leases"), spy.Options());
  CHECK(spy.directory_syncs == 1);  // the new file's name is durable
  const int leases = GENERATE(10, 1000);
  for (int i = 0; i < leases; ++i) {
    REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-" + std::to_string(100000 + i))).ok());
  }
  kinlet::Lease lease = (*store->ListLeases())[leases / 2];
  auto write = [&](kinlet::Lease next) {
    next.lease_counter = lease.lease_counter + 1;
    const uint64_t bytes_before = store->log_bytes();
    REQUIRE(store->UpdateLease(next, lease.lease_counter).ok());
    CHECK(store->log_bytes() - bytes_before < 200);  // one record, whatever the number of leases
    lease = next;
  };
  const uint64_t compactions = store->compactions();
  const int file_syncs = spy.file_syncs;
  kinlet::Lease next = lease;
  next.owner = "worker-1";  // a take: fsynced
  write(next);
  CHECK(spy.file_syncs == file_syncs + 1);
  for (int i = 0; i < 50; ++i) {  // renewals: appended, not fsynced
    next = lease;
    next.last_renewal_ms += 1000;
    write(next);
  }
  CHECK(spy.file_syncs == file_syncs + 1);
  next = lease;
  next.checkpoint = "49590338271490256608559692538361571095921575989136588898";  // fsynced
  write(next);
  CHECK(spy.file_syncs == file_syncs + 2);
  CHECK(store->compactions() == compactions);
  CHECK(ReadAll(dir.File("leases")).size() == store->log_bytes());
}

TEST_CASE("A crash loses only the renewals written after the last fsync", "[checkpoint_store]") {
  TempDir dir;
  const std::string path = dir.File("leases");
  SyncSpy spy;
  std::vector<kinlet::Lease> durable;
  std::vector<kinlet::Lease> latest;
  {
    auto store = *kinlet::FileCheckpointStore::Open(path, spy.Options());
    for (int i = 0; i < 3; ++i) {
      REQUIRE(
          store->CreateLeaseIfNotExists(MakeLease("shardId-00000000000" + std::to_string(i))).ok());
    }
    kinlet::Lease a = MakeLease("shardId-000000000001");
    a.owner = "w";
    a.lease_counter = 1;
    REQUIRE(store->UpdateLease(a, 0).ok());
    a.checkpoint = "49590338271490256608559692538361571095921575989136588898";
    a.lease_counter = 2;
    REQUIRE(store->UpdateLease(a, 1).ok());
    durable = *store->ListLeases();
    for (int i = 0; i < 20; ++i) {  // renewals of two leases
      kinlet::Lease r = a;
      r.lease_counter = a.lease_counter + 1;
      r.last_renewal_ms = 1000 * (i + 1);
      REQUIRE(store->UpdateLease(r, a.lease_counter).ok());
      a = r;
    }
    latest = *store->ListLeases();
  }
  REQUIRE(latest != durable);
  // A power loss keeps the file as of its last fsync, at most.
  std::filesystem::resize_file(path, static_cast<uintmax_t>(spy.synced_size));
  auto reopened = kinlet::FileCheckpointStore::Open(path);
  REQUIRE(reopened.ok());
  CHECK(*(*reopened)->ListLeases() == durable);  // the checkpoint is there; renewals are not
}

TEST_CASE("A file checkpoint store cuts a torn last record off at every byte offset",
          "[checkpoint_store]") {
  TempDir dir;
  const std::string path = dir.File("leases");
  const std::string last = GENERATE(std::string("checkpoint"), std::string("renewal"),
                                    std::string("deletion"), std::string("creation"));
  std::vector<kinlet::Lease> before;
  std::vector<kinlet::Lease> after;
  size_t size_before = 0;
  {
    auto store = *kinlet::FileCheckpointStore::Open(path);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(
          store->CreateLeaseIfNotExists(MakeLease("shardId-00000000000" + std::to_string(i))).ok());
    }
    kinlet::Lease a = MakeLease("shardId-000000000001");
    a.owner = "w";
    a.lease_counter = 1;
    REQUIRE(store->UpdateLease(a, 0).ok());
    before = *store->ListLeases();
    size_before = store->log_bytes();
    a.lease_counter = 2;
    if (last == "checkpoint") {
      a.checkpoint = "49590338271490256608559692538361571095921575989136588898";
      REQUIRE(store->UpdateLease(a, 1).ok());
    } else if (last == "renewal") {
      a.last_renewal_ms = 5000;
      REQUIRE(store->UpdateLease(a, 1).ok());
    } else if (last == "deletion") {
      REQUIRE(store->DeleteLease("shardId-000000000001", 1).ok());
    } else {
      REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000003")).ok());
    }
    after = *store->ListLeases();
  }
  const std::string whole = ReadAll(path);
  REQUIRE(whole.size() > size_before);
  for (size_t cut = size_before; cut <= whole.size(); ++cut) {
    INFO("last record: " << last << ", cut at " << cut << " of " << whole.size());
    WriteAll(path, whole.substr(0, cut));
    auto store = kinlet::FileCheckpointStore::Open(path);
    REQUIRE(store.ok());
    if (cut == whole.size()) {
      CHECK(*(*store)->ListLeases() == after);
      CHECK((*store)->recovered_tail_bytes() == 0);
      continue;
    }
    CHECK(*(*store)->ListLeases() == before);  // the unfinished write only
    CHECK((*store)->recovered_tail_bytes() == cut - size_before);
    // The store appends after the cut, and its next write survives reopening.
    REQUIRE((*store)->CreateLeaseIfNotExists(MakeLease("shardId-000000000009")).ok());
    auto expected = *(*store)->ListLeases();
    store->reset();
    auto again = kinlet::FileCheckpointStore::Open(path);
    REQUIRE(again.ok());
    CHECK(*(*again)->ListLeases() == expected);
  }
}

TEST_CASE("A file checkpoint store refuses a record damaged before the tail",
          "[checkpoint_store]") {
  TempDir dir;
  const std::string path = dir.File("leases");
  {
    auto store = *kinlet::FileCheckpointStore::Open(path);
    REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000000")).ok());
    kinlet::Lease a = MakeLease("shardId-000000000000");
    for (uint64_t i = 0; i < 3; ++i) {  // renewals only after the damage
      a.lease_counter = i + 1;
      a.last_renewal_ms = static_cast<int64_t>(i);
      REQUIRE(store->UpdateLease(a, i).ok());
    }
  }
  std::string text = ReadAll(path);
  const size_t at = GENERATE(0, 1, 2);  // which record
  size_t pos = 0;
  for (size_t i = 0; i <= at; ++i) pos = text.find("KLR2", pos + 1);
  SECTION("a changed payload byte") { text[pos + 20] ^= 1; }
  SECTION("a changed length") { text[pos + 4] ^= 1; }
  SECTION("a changed magic") { text[pos] = 'X'; }
  WriteAll(path, text);
  CHECK(absl::IsDataLoss(kinlet::FileCheckpointStore::Open(path).status()));
  CHECK(ReadAll(path) == text);  // nothing overwritten
}

TEST_CASE("A file checkpoint store compacts its log and keeps every lease", "[checkpoint_store]") {
  TempDir dir;
  const std::string path = dir.File("leases");
  SyncSpy spy;
  kinlet::FileCheckpointStoreOptions options = spy.Options();
  options.compaction_factor = 3;
  options.min_compaction_bytes = 4096;
  auto store = *kinlet::FileCheckpointStore::Open(path, options);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-0000000000" + std::to_string(10 + i)))
                .ok());
  }
  std::vector<kinlet::Lease> leases = *store->ListLeases();
  uint64_t largest = 0;
  for (int round = 0; round < 2000; ++round) {
    kinlet::Lease& l = leases[static_cast<size_t>(round) % leases.size()];
    kinlet::Lease next = l;
    ++next.lease_counter;
    next.last_renewal_ms = round;
    REQUIRE(store->UpdateLease(next, l.lease_counter).ok());
    l = next;
    largest = std::max(largest, store->log_bytes());
  }
  REQUIRE(store->DeleteLease(leases.back().lease_key, leases.back().lease_counter).ok());
  leases.pop_back();
  CHECK(store->compactions() > 10);
  CHECK(largest < 3 * 4096 + 4096);  // bounded by the compaction threshold, not by the writes
  CHECK(ReadAll(path).size() == store->log_bytes());
  CHECK(spy.directory_syncs >= static_cast<int>(store->compactions()));
  CHECK(*store->ListLeases() == leases);
  store.reset();
  CHECK(*(*kinlet::FileCheckpointStore::Open(path))->ListLeases() == leases);
}

TEST_CASE("A file checkpoint store reports every fsync error and then refuses writes",
          "[checkpoint_store]") {
  TempDir dir;
  const std::string path = dir.File("leases");
  SyncSpy spy;
  SECTION("the directory's fsync when the file is created") {
    spy.fail_directories = true;
    auto store = kinlet::FileCheckpointStore::Open(path, spy.Options());
    CHECK(absl::IsInternal(store.status()));
  }
  SECTION("the log's fsync of a checkpoint") {
    auto store = *kinlet::FileCheckpointStore::Open(path, spy.Options());
    REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000000")).ok());
    spy.fail_files = true;
    kinlet::Lease a = MakeLease("shardId-000000000000");
    a.checkpoint = "49590338271490256608559692538361571095921575989136588898";
    a.lease_counter = 1;
    CHECK(absl::IsInternal(store->UpdateLease(a, 0)));
    CHECK((*store->ListLeases())[0].lease_counter == 0);  // reported as not done
    spy.fail_files = false;
    // The file's state is uncertain now: later writes are refused, renewals too.
    kinlet::Lease renewal = MakeLease("shardId-000000000000");
    renewal.lease_counter = 1;
    renewal.last_renewal_ms = 1;
    CHECK(absl::IsInternal(store->UpdateLease(renewal, 0)));
    CHECK(absl::IsInternal(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000001"))));
    CHECK(store->ListLeases()->size() == 1);  // reads still work
    store.reset();
    CHECK(kinlet::FileCheckpointStore::Open(path, spy.Options()).ok());  // reopening recovers
  }
  SECTION("the directory's fsync of a compaction") {
    kinlet::FileCheckpointStoreOptions options = spy.Options();
    options.min_compaction_bytes = 0;
    options.compaction_factor = 2;
    auto store = *kinlet::FileCheckpointStore::Open(path, options);
    REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000000")).ok());
    spy.fail_directories = true;
    absl::Status s;
    for (uint64_t i = 0; s.ok() && i < 10; ++i) {
      kinlet::Lease r = MakeLease("shardId-000000000000");
      r.lease_counter = i + 1;
      s = store->UpdateLease(r, i);  // a renewal that grows the log past 2x: compaction
    }
    CHECK(absl::IsInternal(s));
    CHECK(s.message().find("fsync directory") != absl::string_view::npos);
    spy.fail_directories = false;
    kinlet::Lease r = *store->ListLeases()->begin();
    ++r.lease_counter;
    CHECK(absl::IsInternal(store->UpdateLease(r, r.lease_counter - 1)));
  }
}

TEST_CASE("A file checkpoint store reads a version-1 file and rewrites it as a log",
          "[checkpoint_store]") {
  TempDir dir;
  const std::string path = dir.File("leases");
  std::string text =
      "kinlet-checkpoints\t1\n"
      "shardId-000000000000\tw\t3\tSHARD_END\t1700\t1\t\n"
      "shardId-000000000001\t\t0\tTRIM_HORIZON\t0\t0\tshardId-000000000000\n";
  text +=
      "checksum\t" + std::to_string(kinlet::detail::Xxh3_64(text.data(), text.size(), 0)) + "\n";
  WriteAll(path, text);
  auto store = kinlet::FileCheckpointStore::Open(path);
  REQUIRE(store.ok());
  auto leases = *(*store)->ListLeases();
  REQUIRE(leases.size() == 2);
  CHECK(leases[0].owner == "w");
  CHECK(leases[0].lease_counter == 3);
  CHECK(leases[0].checkpoint == "SHARD_END");
  CHECK(leases[0].last_renewal_ms == 1700);
  CHECK(leases[1].parent_shard_ids == std::vector<std::string>{"shardId-000000000000"});
  CHECK(ReadAll(path).rfind("kinlet-checkpoints\t2\n", 0) == 0);
  store->reset();
  CHECK(*(*kinlet::FileCheckpointStore::Open(path))->ListLeases() == leases);
}
