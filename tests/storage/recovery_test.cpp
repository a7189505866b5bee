// ShardLog recovery: torn and corrupt tails at every byte offset of the last
// records, corruption in the middle (DataLoss ranges, later records kept),
// corrupt or missing index files (rescan), missing and corrupt segments.
#include <catch2/catch.hpp>

#include "kinlet/storage/shard_log.hpp"
#include "storage/storage_test_util.hpp"

namespace {

using kinlet::storage::LogRecordView;
using kinlet::storage::RecoveryReport;
using kinlet::storage::ShardLog;
using kinlet::storage::ShardLogOptions;
using namespace kinlet::storage::testing;
namespace sd = kinlet::storage::detail;

std::unique_ptr<ShardLog> OpenOk(const ShardLogOptions& o, RecoveryReport* r = nullptr) {
  auto log = ShardLog::Open(o, 0, r);
  INFO(log.status().ToString());
  REQUIRE(log.ok());
  return std::move(*log);
}

// A one-segment log of `n` records; returns its segment bytes and each
// record's frame [offset, offset + 32 + body_len).
struct Written {
  std::string bytes;
  std::vector<std::pair<size_t, size_t>> frames;
  std::vector<Rec> recs;
};

Written WriteOneSegment(const ShardLogOptions& o, uint64_t n) {
  Written w;
  {
    auto log = OpenOk(o);
    for (uint64_t i = 0; i < n; ++i) {
      w.recs.push_back(MakeRec(i));
      REQUIRE(AppendRec(*log, w.recs.back()).ok());
    }
    REQUIRE(log->segment_count() == 1);
  }
  auto files = SegmentFiles(o.directory);
  REQUIRE(files.size() == 1);
  w.bytes = Slurp(files[0]);
  size_t off = sd::kHeaderBytes;
  for (const Rec& r : w.recs) {
    const size_t body = r.key.size() + r.data.size();
    w.frames.emplace_back(off, off + sd::kFrameHeaderBytes + body);
    off += sd::FrameBytes(body);
  }
  return w;
}

// Replaces the log's directory with one segment file of `bytes`.
void Install(const ShardLogOptions& o, std::string_view bytes) {
  std::filesystem::remove_all(o.directory);
  std::filesystem::create_directories(o.directory);
  Spit(o.directory + "/" + sd::SegmentFileName(0), bytes);
}

bool AnyNonZero(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c != 0; });
}

TEST_CASE("Recovery cuts a torn tail at every byte offset of the last records",
          "[storage][recovery]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  const uint64_t n = 12;
  const Written w = WriteOneSegment(o, n);
  const size_t region_begin = w.frames[n - 3].first;
  const size_t region_end = w.frames[n - 1].second;
  for (int variant = 0; variant < 2; ++variant) {  // 0: bytes past t zeroed, 1: file cut at t
    for (size_t t = region_begin; t <= region_end; ++t) {
      INFO("variant " << variant << " cut at " << t);
      std::string bytes = w.bytes;
      if (variant == 0) {
        std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(t), bytes.end(), '\0');
      } else {
        bytes.resize(t);
      }
      Install(o, bytes);
      // A frame survives if all of it is there (a cut file also loses the unaligned tail).
      uint64_t intact = 0;
      while (intact < n && (variant == 0 ? w.frames[intact].second
                                         : sd::AlignUp(w.frames[intact].second, 8)) <= t) {
        ++intact;
      }
      RecoveryReport report;
      auto log = OpenOk(o, &report);
      CHECK(report.records == intact);
      CHECK(report.lost.empty());
      CHECK(log->End() == intact);
      // The torn record's bytes that were there are reported cut (none: nothing to cut).
      const size_t torn_from = intact < n ? w.frames[intact].first : region_end;
      const size_t visible_end = variant == 0 ? t : (t & ~size_t{7});  // a cut file: whole words
      const bool torn_bytes_present =
          visible_end > torn_from &&
          AnyNonZero(std::string_view(bytes).substr(torn_from, visible_end - torn_from));
      CHECK((report.truncated_bytes > 0) == torn_bytes_present);
      CHECK((report.notes.size() == 1) == torn_bytes_present);
      // Nothing half-visible: exactly the intact records, whole.
      absl::Status status;
      std::vector<Rec> got = ReadAll(*log, 0, &status);
      CHECK(status.ok());
      CHECK(got == std::vector<Rec>(w.recs.begin(), w.recs.begin() + static_cast<long>(intact)));
      // The log goes on, and the cut bytes cannot come back.
      {
        REQUIRE(log->Append(intact, w.recs[n - 1].arrival_ms + 1, "new", "record").ok());
        log.reset();
        RecoveryReport again;
        log = OpenOk(o, &again);
        CHECK(again.records == intact + 1);
        CHECK(again.truncated_bytes == 0);
        CHECK(again.notes.empty());
        got = ReadAll(*log, 0);
        REQUIRE(got.size() == intact + 1);
        CHECK(got.back().data == "record");
      }
    }
  }
}

TEST_CASE("Recovery of one corrupt byte at every offset of the last records",
          "[storage][recovery]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  const uint64_t n = 12;
  const Written w = WriteOneSegment(o, n);
  for (size_t at = w.frames[n - 3].first; at < w.frames[n - 1].second; ++at) {
    INFO("corrupt byte at " << at);
    std::string bytes = w.bytes;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x5a);
    Install(o, bytes);
    // Which record's checksummed bytes hold `at` (none: padding).
    int64_t hit = -1;
    for (uint64_t i = 0; i < n; ++i) {
      if (at >= w.frames[i].first && at < w.frames[i].second) hit = static_cast<int64_t>(i);
    }
    RecoveryReport report;
    auto log = OpenOk(o, &report);
    absl::Status status;
    if (hit < 0) {  // padding is not checksummed and never read
      CHECK(report.records == n);
      CHECK(ReadAll(*log, 0) == w.recs);
      continue;
    }
    const uint64_t bad = static_cast<uint64_t>(hit);
    if (bad == n - 1) {
      // The last record: a torn tail, cut and reported.
      CHECK(report.records == n - 1);
      CHECK(report.truncated_bytes > 0);
      CHECK(report.lost.empty());
      CHECK(log->End() == n - 1);
      CHECK(ReadAll(*log, 0, &status) == std::vector<Rec>(w.recs.begin(), w.recs.end() - 1));
      CHECK(status.ok());
    } else {
      // In the middle: that record is lost (DataLoss), the later ones kept.
      CHECK(report.records == n - 1);
      CHECK(report.truncated_bytes == 0);
      REQUIRE(report.lost.size() == 1);
      CHECK(report.lost[0] == std::make_pair(bad, bad + 1));
      CHECK(log->End() == n);
      std::vector<Rec> before = ReadAll(*log, 0, &status);
      CHECK(before == std::vector<Rec>(w.recs.begin(), w.recs.begin() + static_cast<long>(bad)));
      CHECK(kinlet::IsDataLoss(status));
      auto at_bad = log->Read(bad, 10, 1 << 20, [](const LogRecordView&) {});
      CHECK(kinlet::IsDataLoss(at_bad.status()));
      CHECK(ReadAll(*log, bad + 1) ==
            std::vector<Rec>(w.recs.begin() + static_cast<long>(bad) + 1, w.recs.end()));
      CHECK_FALSE(log->ArrivalAt(bad).has_value());
      // Appends go on after the kept records, and the loss is reported again on reopen.
      REQUIRE(log->Append(n, w.recs.back().arrival_ms, "k", "after").ok());
      log.reset();
      log = OpenOk(o, &report);
      CHECK(report.records == n);
      CHECK(report.lost.size() == 1);
    }
  }
}

TEST_CASE("Recovery: corruption in a sealed segment is DataLoss for that record only",
          "[storage][recovery]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  std::vector<Rec> recs;
  {
    auto log = OpenOk(o);
    for (uint64_t i = 0; i < 400; ++i) {
      recs.push_back(MakeRec(i));
      REQUIRE(AppendRec(*log, recs.back()).ok());
    }
    REQUIRE(log->segment_count() >= 3);
  }
  auto files = SegmentFiles(o.directory);
  // Record 5 (in the first, sealed segment): flip a byte of its data.
  std::string bytes = Slurp(files[0]);
  size_t off = sd::kHeaderBytes;
  for (uint64_t i = 0; i < 5; ++i) off += sd::FrameBytes(recs[i].key.size() + recs[i].data.size());
  bytes[off + sd::kFrameHeaderBytes + 2] ^= 1;
  Spit(files[0], bytes);
  RecoveryReport report;
  auto log = OpenOk(o, &report);  // the index is trusted: no scan finds it
  CHECK(report.records == recs.size());
  absl::Status status;
  CHECK(ReadAll(*log, 0, &status) == std::vector<Rec>(recs.begin(), recs.begin() + 5));
  CHECK(kinlet::IsDataLoss(status));
  CHECK(kinlet::IsDataLoss(log->Read(5, 1, 1 << 20, [](const LogRecordView&) {}).status()));
  // The records after it are still found (the reader resynchronises past it).
  CHECK(ReadAll(*log, 6) == std::vector<Rec>(recs.begin() + 6, recs.end()));
  CHECK(ReadAll(*log, 100) == std::vector<Rec>(recs.begin() + 100, recs.end()));
  // Without the index the scan reports it as a lost range.
  std::filesystem::remove(files[0] + ".idx");
  log.reset();
  log = OpenOk(o, &report);
  CHECK(report.records == recs.size() - 1);
  REQUIRE(report.lost.size() == 1);
  CHECK(report.lost[0] == std::make_pair(uint64_t{5}, uint64_t{6}));
  CHECK(ReadAll(*log, 6) == std::vector<Rec>(recs.begin() + 6, recs.end()));
}

TEST_CASE("Recovery rescans a segment whose index is corrupt or missing", "[storage][recovery]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  std::vector<Rec> recs;
  {
    auto log = OpenOk(o);
    for (uint64_t i = 0; i < 600; ++i) {
      recs.push_back(MakeRec(i));
      REQUIRE(AppendRec(*log, recs.back()).ok());
    }
  }
  auto files = SegmentFiles(o.directory);
  REQUIRE(files.size() >= 4);
  const std::string idx0 = files[0] + ".idx";
  const std::string idx1 = files[1] + ".idx";
  const std::string idx2 = files[2] + ".idx";
  REQUIRE(std::filesystem::exists(idx0));
  const std::string good = Slurp(idx1);
  // Every single-byte corruption of an index is refused (then the segment is scanned).
  for (size_t at = 0; at < good.size(); at += 3) {
    std::string bad = good;
    bad[at] ^= 0x10;
    Spit(idx1, bad);
    RecoveryReport report;
    auto log = OpenOk(o, &report);
    INFO("index byte " << at);
    CHECK(report.records == recs.size());
    REQUIRE(report.notes.size() == 1);
    CHECK(report.notes[0].find("index refused") != std::string::npos);
    CHECK(ReadAll(*log, 0, nullptr, 1000) == recs);
    log.reset();
    // The scan rewrote a good index.
    CHECK(Slurp(idx1) == good);
  }
  std::filesystem::remove(idx0);
  Spit(idx2, "short");
  RecoveryReport report;
  auto log = OpenOk(o, &report);
  CHECK(report.records == recs.size());
  CHECK(report.notes.size() == 2);
  CHECK(ReadAll(*log, 0, nullptr, 1000) == recs);
  CHECK(log->LowerBoundArrival(recs[300].arrival_ms) == 300);
}

TEST_CASE("Recovery reports positions of a deleted or corrupt segment as lost",
          "[storage][recovery]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  std::vector<Rec> recs;
  {
    auto log = OpenOk(o);
    for (uint64_t i = 0; i < 600; ++i) {
      recs.push_back(MakeRec(i));
      REQUIRE(AppendRec(*log, recs.back()).ok());
    }
  }
  auto files = SegmentFiles(o.directory);
  REQUIRE(files.size() >= 4);
  uint64_t a = 0;
  uint64_t b = 0;
  REQUIRE(sd::ParseSegmentFileName(std::filesystem::path(files[1]).filename().string(), &a));
  REQUIRE(sd::ParseSegmentFileName(std::filesystem::path(files[2]).filename().string(), &b));
  SECTION("deleted by hand") {
    std::filesystem::remove(files[1]);
    std::filesystem::remove(files[1] + ".idx");
  }
  SECTION("header corrupt") {
    std::string bytes = Slurp(files[1]);
    bytes[20] ^= 1;
    Spit(files[1], bytes);
  }
  RecoveryReport report;
  auto log = OpenOk(o, &report);
  REQUIRE(report.lost.size() == 1);
  CHECK(report.lost[0] == std::make_pair(a, b));
  CHECK(report.records == recs.size() - (b - a));
  CHECK(log->End() == recs.size());
  absl::Status status;
  CHECK(ReadAll(*log, 0, &status) ==
        std::vector<Rec>(recs.begin(), recs.begin() + static_cast<long>(a)));
  CHECK(kinlet::IsDataLoss(status));
  for (uint64_t p = a; p < b; p += 5) {
    CHECK(kinlet::IsDataLoss(log->Read(p, 1, 1 << 20, [](const LogRecordView&) {}).status()));
  }
  CHECK(ReadAll(*log, b) == std::vector<Rec>(recs.begin() + static_cast<long>(b), recs.end()));
}

TEST_CASE("Recovery of a last segment with a corrupt header starts a new one",
          "[storage][recovery]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  {
    auto log = OpenOk(o);
    for (uint64_t i = 0; i < 10; ++i) REQUIRE(AppendRec(*log, MakeRec(i)).ok());
  }
  auto files = SegmentFiles(o.directory);
  REQUIRE(files.size() == 1);
  std::string bytes = Slurp(files[0]);
  bytes[0] ^= 1;
  Spit(files[0], bytes);
  RecoveryReport report;
  auto log = OpenOk(o, &report);
  CHECK(report.records == 0);
  REQUIRE(report.notes.size() == 1);
  CHECK(report.notes[0].find("set aside") != std::string::npos);
  CHECK(std::filesystem::exists(files[0] + ".corrupt"));
  CHECK(log->End() == 0);
  REQUIRE(log->Append(0, 1, "k", "v").ok());
  CHECK(ReadAll(*log, 0).size() == 1);
}

}  // namespace
