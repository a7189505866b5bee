// ShardLog: append / read / reopen round trips across many segments, the
// arrival-time lookups, retention (DropExpired), paging limits and options.
#include "kinlet/storage/shard_log.hpp"

#include <catch2/catch.hpp>

#include "storage/storage_test_util.hpp"

namespace {

using kinlet::storage::LogRecordView;
using kinlet::storage::RecoveryReport;
using kinlet::storage::ShardLog;
using kinlet::storage::ShardLogOptions;
using namespace kinlet::storage::testing;

std::unique_ptr<ShardLog> OpenOk(const ShardLogOptions& o, uint64_t first = 0,
                                 RecoveryReport* r = nullptr) {
  auto log = ShardLog::Open(o, first, r);
  INFO(log.status().ToString());
  REQUIRE(log.ok());
  return std::move(*log);
}

TEST_CASE("ShardLog round trips records across many segments and a reopen", "[storage]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.sub("shard"));
  const uint64_t first = 1000;
  const uint64_t n = 3000;
  std::vector<Rec> want;
  {
    auto log = OpenOk(o, first);
    CHECK(log->Begin() == first);
    CHECK(log->End() == first);
    CHECK(log->segment_count() == 1);
    for (uint64_t i = first; i < first + n; ++i) {
      want.push_back(MakeRec(i));
      REQUIRE(AppendRec(*log, want.back()).ok());
      CHECK(log->End() == i + 1);
    }
    CHECK(log->segment_count() > 20);
    CHECK(log->bytes_on_disk() ==
          log->segment_count() * kinlet::storage::detail::AlignUp(o.segment_bytes, 4096));
    CHECK(ReadAll(*log, first) == want);
  }
  RecoveryReport report;
  auto log = OpenOk(o, 0, &report);  // first_position is ignored for an existing log
  CHECK(report.records == n);
  CHECK(report.truncated_bytes == 0);
  CHECK(report.lost.empty());
  CHECK(report.notes.empty());
  CHECK(log->Begin() == first);
  CHECK(log->End() == first + n);
  CHECK(ReadAll(*log, first) == want);
  // Reads from every position give that record first.
  for (uint64_t p = first; p < first + n; p += 13) {
    std::vector<Rec> got;
    auto c = log->Read(p, 3, 1 << 20, [&](const LogRecordView& v) {
      got.push_back(Rec{v.position, v.arrival_ms, std::string(v.key), std::string(v.data)});
    });
    REQUIRE(c.ok());
    REQUIRE(*c == std::min<uint64_t>(3, first + n - p));
    CHECK(got[0] == want[p - first]);
  }
  // Appending continues after the reopen, into new segments.
  for (uint64_t i = first + n; i < first + n + 500; ++i) {
    want.push_back(MakeRec(i));
    REQUIRE(AppendRec(*log, want.back()).ok());
  }
  log.reset();
  log = OpenOk(o, 0, &report);
  CHECK(report.records == n + 500);
  CHECK(ReadAll(*log, first, nullptr, 1000) == want);
}

TEST_CASE("ShardLog Read pages by records and bytes, stops at End", "[storage]") {
  TempDir dir;
  auto log = OpenOk(SmallOptions(dir.path()));
  for (uint64_t i = 0; i < 10; ++i) {
    REQUIRE(log->Append(i, 5, "k", std::string(100, 'x')).ok());  // 101 bytes each
  }
  auto count = [&](uint64_t from, size_t max_records, size_t max_bytes) {
    auto c = log->Read(from, max_records, max_bytes, [](const LogRecordView&) {});
    REQUIRE(c.ok());
    return *c;
  };
  CHECK(count(0, 100, 1 << 20) == 10);
  CHECK(count(0, 4, 1 << 20) == 4);
  CHECK(count(0, 100, 303) == 3);
  CHECK(count(0, 100, 302) == 2);
  CHECK(count(0, 100, 1) == 1);  // the first is always given
  CHECK(count(8, 100, 1 << 20) == 2);
  CHECK(count(10, 100, 1 << 20) == 0);
  CHECK(count(1000, 100, 1 << 20) == 0);
  CHECK(count(0, 0, 1 << 20) == 0);
}

TEST_CASE("ShardLog ArrivalAt and LowerBoundArrival search by time", "[storage]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.path());
  auto log = OpenOk(o, 50);
  CHECK(log->LowerBoundArrival(0) == 50);
  CHECK_FALSE(log->ArrivalAt(50).has_value());
  // Arrivals: 100 + 3 * (i / 4): runs of equal times.
  const uint64_t n = 2000;
  auto arrival = [](uint64_t i) { return static_cast<int64_t>(100 + 3 * (i / 4)); };
  for (uint64_t i = 0; i < n; ++i) {
    REQUIRE(log->Append(50 + i, arrival(i), "key", std::string(40 + i % 50, 'p')).ok());
  }
  REQUIRE(log->segment_count() > 5);
  for (int pass = 0; pass < 2; ++pass) {
    for (uint64_t i = 0; i < n; i += 7) {
      auto t = log->ArrivalAt(50 + i);
      REQUIRE(t.has_value());
      CHECK(*t == arrival(i));
    }
    CHECK_FALSE(log->ArrivalAt(49).has_value());
    CHECK_FALSE(log->ArrivalAt(50 + n).has_value());
    CHECK(log->LowerBoundArrival(INT64_MIN) == 50);
    CHECK(log->LowerBoundArrival(100) == 50);
    CHECK(log->LowerBoundArrival(arrival(n - 1) + 1) == 50 + n);
    for (int64_t t = 99; t <= arrival(n - 1) + 1; t += 1) {
      // The first i with arrival(i) >= t.
      uint64_t expect = 0;
      while (expect < n && arrival(expect) < t) ++expect;
      REQUIRE(log->LowerBoundArrival(t) == 50 + expect);
    }
    log.reset();
    log = OpenOk(o);  // the same answers after a reopen (indexes from .idx files)
  }
}

TEST_CASE("ShardLog DropExpired deletes whole expired segments only", "[storage]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.path());
  auto log = OpenOk(o);
  const uint64_t n = 1500;
  for (uint64_t i = 0; i < n; ++i) REQUIRE(AppendRec(*log, MakeRec(i)).ok());
  const size_t segments = log->segment_count();
  const auto files_before = SegmentFiles(dir.path());
  REQUIRE(files_before.size() == segments);
  CHECK(log->DropExpired(MakeRec(0).arrival_ms) == 0);  // nothing arrived before that
  CHECK(log->segment_count() == segments);

  // Expire everything before record 700: whole segments wholly before it go.
  const int64_t cut = MakeRec(700).arrival_ms;
  const uint64_t dropped = log->DropExpired(cut);
  CHECK(dropped > 0);
  CHECK(log->Begin() == dropped);  // the log started at 0
  CHECK(log->Begin() <= 700);
  CHECK(log->segment_count() < segments);
  CHECK(SegmentFiles(dir.path()).size() == log->segment_count());
  // The new oldest segment holds an unexpired record (else it would have gone).
  auto files = SegmentFiles(dir.path());
  CHECK(files.front() != files_before.front());
  auto last_of_first = log->ArrivalAt(log->Begin());
  REQUIRE(last_of_first.has_value());
  // Reads below Begin are TrimmedDataAccess; from Begin on everything is there.
  auto below = log->Read(log->Begin() - 1, 10, 1 << 20, [](const LogRecordView&) {});
  CHECK(kinlet::IsTrimmedDataAccess(below.status()));
  std::vector<Rec> want;
  for (uint64_t i = log->Begin(); i < n; ++i) want.push_back(MakeRec(i));
  CHECK(ReadAll(*log, log->Begin()) == want);
  CHECK(log->LowerBoundArrival(0) == log->Begin());

  // Expiring everything keeps the segment being written.
  log->DropExpired(INT64_MAX);
  CHECK(log->segment_count() == 1);
  CHECK(log->End() == n);
  const uint64_t begin = log->Begin();
  CHECK(begin <= n - 1);
  log.reset();
  RecoveryReport report;
  log = OpenOk(o, 0, &report);
  CHECK(log->Begin() == begin);
  CHECK(log->End() == n);
  CHECK(report.lost.empty());
  CHECK(report.records == n - begin);
}

TEST_CASE("ShardLog validates its options and arguments", "[storage]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.path());
  o.segment_bytes = 4096;  // cannot hold a record of max_record_bytes
  CHECK(kinlet::IsInvalidArgument(ShardLog::Open(o, 0, nullptr).status()));
  o = SmallOptions(dir.path());
  o.directory.clear();
  CHECK(kinlet::IsInvalidArgument(ShardLog::Open(o, 0, nullptr).status()));
  o = SmallOptions(dir.path());
  o.sync = kinlet::SyncPolicy::kInterval;
  o.sync_interval = absl::ZeroDuration();
  CHECK(kinlet::IsInvalidArgument(ShardLog::Open(o, 0, nullptr).status()));

  auto log = OpenOk(SmallOptions(dir.path()));
  CHECK(kinlet::IsInvalidArgument(log->Append(0, 1, "k", std::string(300, 'x'))));
  CHECK(log->End() == 0);
  REQUIRE(log->Append(0, 10, "k", "v").ok());
  CHECK(kinlet::IsInvalidArgument(log->Append(1, 9, "k", "v")));  // arrival went back
  REQUIRE(log->Append(1, 10, "", "").ok());                       // empty key and data
  std::vector<Rec> got = ReadAll(*log, 0);
  REQUIRE(got.size() == 2);
  CHECK(got[1].key.empty());
  CHECK(got[1].data.empty());
  // Seal: later appends refused, reads go on, health stays OK.
  REQUIRE(log->Seal().ok());
  CHECK(kinlet::IsResourceInUse(log->Append(2, 10, "k", "v")));
  CHECK(log->health().ok());
  CHECK(ReadAll(*log, 0).size() == 2);
  log.reset();
  // After a Seal the last segment's index is used, and appends go on after a reopen.
  RecoveryReport report;
  log = OpenOk(SmallOptions(dir.path()), 0, &report);
  CHECK(report.records == 2);
  CHECK(report.notes.empty());
  REQUIRE(log->Append(2, 11, "k", "v2").ok());
  log.reset();
  log = OpenOk(SmallOptions(dir.path()), 0, &report);
  CHECK(report.records == 3);  // the stale index was refused: the segment was scanned
  CHECK(ReadAll(*log, 0).size() == 3);
}

TEST_CASE("ShardLog Remove deletes the log's directory", "[storage]") {
  TempDir dir;
  const std::string d = dir.sub("gone");
  {
    auto log = OpenOk(SmallOptions(d));
    REQUIRE(log->Append(0, 1, "k", "v").ok());
  }
  REQUIRE(ShardLog::Remove(d).ok());
  CHECK_FALSE(std::filesystem::exists(d));
  CHECK(ShardLog::Remove(d).ok());  // already gone
}

}  // namespace
