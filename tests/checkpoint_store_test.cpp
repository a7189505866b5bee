// Tests of kinlet/checkpoint_store.hpp: the compare-and-set contract of both
// stores, and the file store's durability: reopening, damaged files refused,
// a stale temporary file ignored, invalid fields refused without a change.
#include "kinlet/checkpoint_store.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

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
  SECTION("a truncated file") {
    std::ofstream(path, std::ios::trunc) << text.substr(0, text.size() / 2);
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
