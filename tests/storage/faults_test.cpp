// Disk faults through the DiskFaultHook: ENOSPC at allocation, EIO at fsync
// and at write, a directory that cannot be created, the directory lock, and
// the metadata helpers (WriteFileAtomically, ReadFile).
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "kinlet/storage/detail/directory_lock.hpp"
#include "kinlet/storage/detail/file.hpp"
#include "kinlet/storage/shard_log.hpp"
#include "storage/storage_test_util.hpp"

namespace {

using kinlet::DiskOp;
using kinlet::storage::LogRecordView;
using kinlet::storage::RecoveryReport;
using kinlet::storage::ShardLog;
using kinlet::storage::ShardLogOptions;
using namespace kinlet::storage::testing;
namespace sd = kinlet::storage::detail;

// A hook failing chosen operations with a chosen errno; counts every call.
struct FaultSwitch {
  std::atomic<int> fail_allocate{0};
  std::atomic<int> fail_sync{0};
  std::atomic<int> fail_write{0};
  std::atomic<int> syncs{0};
  kinlet::DiskFaultHook Hook() {
    return [this](DiskOp op, const std::string& path) {
      switch (op) {
        case DiskOp::kAllocate:
          return fail_allocate.load();
        case DiskOp::kSync:
          syncs.fetch_add(1);
          return fail_sync.load();
        case DiskOp::kWrite:  // index files only (a segment's header is written at creation)
          return path.size() > 8 && path.substr(path.size() - 8) == ".idx.tmp" ? fail_write.load()
                                                                               : 0;
        default:
          return 0;
      }
    };
  }
};

TEST_CASE("ENOSPC when a new segment is allocated fails the append, loses nothing",
          "[storage][faults]") {
  TempDir dir;
  FaultSwitch faults;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  o.faults = faults.Hook();
  auto opened = ShardLog::Open(o, 0, nullptr);
  REQUIRE(opened.ok());
  auto log = std::move(*opened);
  faults.fail_allocate = ENOSPC;
  std::vector<Rec> written;
  absl::Status failed;
  for (uint64_t i = 0; i < 1000; ++i) {
    Rec r = MakeRec(i);
    failed = AppendRec(*log, r);
    if (!failed.ok()) break;
    written.push_back(r);
  }
  REQUIRE_FALSE(failed.ok());  // the first segment filled up and the next could not be made
  CHECK(kinlet::IsStorageFailure(failed));
  CHECK(failed.message().find("No space left on device") != std::string_view::npos);
  CHECK(failed.message().find(o.directory) != std::string_view::npos);
  CHECK(log->End() == written.size());
  CHECK(log->health().ok());  // not sticky: nothing was written
  CHECK(ReadAll(*log, 0) == written);
  CHECK(SegmentFiles(o.directory).size() == 1);  // no half-made segment left behind
  // Still failing: still refused; once space is back the same append succeeds.
  CHECK(kinlet::IsStorageFailure(AppendRec(*log, MakeRec(written.size()))));
  faults.fail_allocate = 0;
  for (uint64_t i = written.size(); i < 1000; ++i) {
    written.push_back(MakeRec(i));
    REQUIRE(AppendRec(*log, written.back()).ok());
  }
  CHECK(ReadAll(*log, 0) == written);
  log.reset();
  RecoveryReport report;
  log = std::move(*ShardLog::Open(o, 0, &report));
  CHECK(report.records == 1000);
  CHECK(report.lost.empty());
}

TEST_CASE("EIO at fsync makes the log fail: appends refused, reads go on", "[storage][faults]") {
  TempDir dir;
  FaultSwitch faults;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  o.faults = faults.Hook();
  o.sync = kinlet::SyncPolicy::kEveryPut;
  auto log = std::move(*ShardLog::Open(o, 0, nullptr));
  for (uint64_t i = 0; i < 5; ++i) {
    REQUIRE(AppendRec(*log, MakeRec(i)).ok());
    REQUIRE(log->SyncThrough(i + 1).ok());
  }
  REQUIRE(AppendRec(*log, MakeRec(5)).ok());
  faults.fail_sync = EIO;
  absl::Status s = log->SyncThrough(6);
  CHECK(kinlet::IsStorageFailure(s));
  CHECK(s.message().find("Input/output error") != std::string_view::npos);
  faults.fail_sync = 0;  // never retried and trusted: the failure stays
  CHECK(kinlet::IsStorageFailure(log->SyncThrough(6)));
  CHECK(kinlet::IsStorageFailure(log->health()));
  CHECK(kinlet::IsStorageFailure(AppendRec(*log, MakeRec(6))));
  CHECK(log->End() == 6);
  std::vector<Rec> want;
  for (uint64_t i = 0; i < 6; ++i) want.push_back(MakeRec(i));
  CHECK(ReadAll(*log, 0) == want);
  CHECK(log->ArrivalAt(3).has_value());
}

TEST_CASE("EIO syncing a full segment at a roll fails the log", "[storage][faults]") {
  TempDir dir;
  FaultSwitch faults;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  o.faults = faults.Hook();
  auto log = std::move(*ShardLog::Open(o, 0, nullptr));
  faults.fail_sync = EIO;
  absl::Status failed;
  uint64_t i = 0;
  for (; i < 1000 && failed.ok(); ++i) failed = AppendRec(*log, MakeRec(i));
  CHECK(kinlet::IsStorageFailure(failed));
  CHECK(kinlet::IsStorageFailure(log->health()));
  CHECK(ReadAll(*log, 0).size() == log->End());
}

TEST_CASE("A failed index write is not a failure: the next open scans", "[storage][faults]") {
  TempDir dir;
  FaultSwitch faults;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  o.faults = faults.Hook();
  std::vector<Rec> want;
  {
    auto log = std::move(*ShardLog::Open(o, 0, nullptr));
    faults.fail_write = EIO;
    for (uint64_t i = 0; i < 300; ++i) {
      want.push_back(MakeRec(i));
      REQUIRE(AppendRec(*log, want.back()).ok());
    }
    CHECK(log->health().ok());
    faults.fail_write = 0;
  }
  RecoveryReport report;
  auto log = std::move(*ShardLog::Open(o, 0, &report));
  CHECK(report.records == want.size());
  CHECK_FALSE(report.notes.empty());  // "no index file, segment scanned"
  CHECK(ReadAll(*log, 0) == want);
}

TEST_CASE("A directory that cannot be created is a StorageFailure", "[storage][faults]") {
  TempDir dir;
  Spit(dir.sub("file"), "not a directory");
  ShardLogOptions o = SmallOptions(dir.sub("file") + "/shard");
  auto log = ShardLog::Open(o, 0, nullptr);
  CHECK(kinlet::IsStorageFailure(log.status()));
  CHECK(log.status().message().find(o.directory) != std::string_view::npos);
  // The same through the hook (kCreate on the directory).
  o = SmallOptions(dir.sub("shard"));
  o.faults = [](DiskOp op, const std::string&) { return op == DiskOp::kCreate ? EACCES : 0; };
  CHECK(kinlet::IsStorageFailure(ShardLog::Open(o, 0, nullptr).status()));
}

TEST_CASE("DirectoryLock refuses a second opener", "[storage][faults]") {
  TempDir dir;
  const std::string d = dir.sub("stream");
  auto first = sd::DirectoryLock::Acquire(d);
  REQUIRE(first.ok());
  CHECK(first->held());
  CHECK(std::filesystem::is_directory(d));
  auto second = sd::DirectoryLock::Acquire(d);
  CHECK(kinlet::IsResourceInUse(second.status()));
  CHECK(second.status().message().find("is already open (process " + std::to_string(::getpid())) !=
        std::string_view::npos);
  // Moved, still held; released on destruction.
  sd::DirectoryLock moved = std::move(*first);
  CHECK(kinlet::IsResourceInUse(sd::DirectoryLock::Acquire(d).status()));
  moved.Release();
  auto third = sd::DirectoryLock::Acquire(d);
  CHECK(third.ok());
  Spit(dir.sub("plain"), "x");
  CHECK(kinlet::IsStorageFailure(sd::DirectoryLock::Acquire(dir.sub("plain") + "/d").status()));
}

TEST_CASE("WriteFileAtomically and ReadFile", "[storage][faults]") {
  TempDir dir;
  const std::string path = dir.sub("meta.json");
  CHECK(kinlet::IsResourceNotFound(sd::ReadFile(path).status()));
  REQUIRE(sd::WriteFileAtomically(path, "one", {}).ok());
  CHECK(*sd::ReadFile(path) == "one");
  REQUIRE(sd::WriteFileAtomically(path, std::string(100000, 'z'), {}).ok());
  CHECK(*sd::ReadFile(path) == std::string(100000, 'z'));
  // A failure at any step leaves the old contents and no temporary file.
  for (DiskOp failing : {DiskOp::kCreate, DiskOp::kWrite, DiskOp::kSync, DiskOp::kRename}) {
    auto hook = [failing](DiskOp op, const std::string&) { return op == failing ? EIO : 0; };
    absl::Status s = sd::WriteFileAtomically(path, "two", hook);
    CHECK(kinlet::IsStorageFailure(s));
    CHECK(*sd::ReadFile(path) == std::string(100000, 'z'));
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  }
}

}  // namespace

namespace {

TEST_CASE("A file system without fallocate is named in the error", "[storage][faults]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  o.faults = [](DiskOp op, const std::string&) { return op == DiskOp::kAllocate ? EOPNOTSUPP : 0; };
  auto log = ShardLog::Open(o, 0, nullptr);
  CHECK(kinlet::IsStorageFailure(log.status()));
  CHECK(log.status().message().find("does not support posix_fallocate") != std::string_view::npos);
  CHECK(SegmentFiles(o.directory).empty());
}

}  // namespace
