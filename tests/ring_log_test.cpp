// Tests of kinlet/ring_log.hpp: positions, capacity in records and bytes,
// trimming, and reads that race with the writer.
#include "kinlet/ring_log.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>

namespace {

using Log = kinlet::RingLog<std::string>;
constexpr int64_t kNever = INT64_MIN;  // expire_before: nothing has expired

uint64_t Append(Log& log, std::string_view key, std::string_view data, int64_t arrival = 0,
                bool overwrite = false, int64_t expire_before = kNever) {
  uint64_t pos = UINT64_MAX;
  auto st = log.Append(key, data, arrival, expire_before, overwrite, &pos);
  return st == Log::AppendStatus::kOk ? pos : UINT64_MAX;
}

}  // namespace

TEST_CASE("RingLog assigns contiguous positions and reads them back", "[ring_log]") {
  Log log(16, 4096);
  CHECK(log.capacity_records() == 16);
  CHECK(log.capacity_bytes() == 4096);
  for (uint64_t i = 0; i < 10; ++i) CHECK(Append(log, "k" + std::to_string(i), "v", 100) == i);
  CHECK(log.Begin() == 0);
  CHECK(log.End() == 10);
  kinlet::GetRecordsResult<std::string> page;
  auto out = log.Read(3, 4, SIZE_MAX, 7, 2, &page);
  REQUIRE_FALSE(out.trimmed);
  REQUIRE(out.count == 4);
  CHECK(page.records[0].partition_key == "k3");
  CHECK(page.records[0].sequence_number == kinlet::SequenceNumber(7, 2, 3));
  CHECK(out.bytes == 4 * 3);
  SECTION("reading at the end returns nothing") {
    kinlet::GetRecordsResult<std::string> empty;
    auto none = log.Read(10, 4, SIZE_MAX, 7, 2, &empty);
    CHECK(none.count == 0);
    CHECK_FALSE(none.trimmed);
  }
}

TEST_CASE("RingLog capacities round up to powers of two", "[ring_log]") {
  Log log(10, 1000);
  CHECK(log.capacity_records() == 16);
  CHECK(log.capacity_bytes() == 1024);
  CHECK(Log::Footprint(1, 1) == 8);  // key and payload packed, then rounded to 8
  CHECK(Log::Footprint(8, 9) == 24);
  CHECK(log.Fits(8, 1000));
  CHECK_FALSE(log.Fits(8, 1020));
}

TEST_CASE("RingLog refuses to drop unexpired records unless told to overwrite", "[ring_log]") {
  Log log(4, 4096);
  for (int i = 0; i < 4; ++i) REQUIRE(Append(log, "k", "v", 10 * i) != UINT64_MAX);
  CHECK(Append(log, "k", "v", 50, false, /*expire_before=*/0) == UINT64_MAX);
  CHECK(log.End() == 4);
  SECTION("expired records make room") {
    CHECK(Append(log, "k", "v", 50, false, /*expire_before=*/15) == 4);
    CHECK(log.Begin() == 1);  // only as many expired records as the new one needs
    CHECK(log.expired_records() == 1);
  }
  SECTION("overwrite drops the oldest") {
    CHECK(Append(log, "k", "v", 50, true) == 4);
    CHECK(log.Begin() == 1);
    CHECK(log.overwritten_records() == 1);
  }
}

TEST_CASE("RingLog never splits a record across the end of the byte ring", "[ring_log]") {
  Log log(64, 256);
  std::string data(90, 'x');  // 8 + 96 = 104 bytes each: 2 fit, the third wraps
  for (int i = 0; i < 10; ++i) {
    data[0] = static_cast<char>('a' + i);
    REQUIRE(Append(log, "k", data, 0, true) == static_cast<uint64_t>(i));
    kinlet::GetRecordsResult<std::string> page;
    auto out = log.Read(i, 1, SIZE_MAX, 1, 0, &page);
    REQUIRE(out.count == 1);
    CHECK(page.records[0].data == data);
  }
  CHECK(log.End() - log.Begin() <= 2);
  CHECK(log.bytes_in_use() <= 256);
}

TEST_CASE("RingLog reports a position trimmed before the read", "[ring_log]") {
  Log log(4, 4096);
  for (int i = 0; i < 6; ++i) Append(log, "k", std::to_string(i), 0, true);
  kinlet::GetRecordsResult<std::string> page;
  auto out = log.Read(0, 10, SIZE_MAX, 1, 0, &page);
  CHECK(out.trimmed);
  CHECK(page.records.empty());
  auto ok = log.Read(2, 10, SIZE_MAX, 1, 0, &page);
  CHECK_FALSE(ok.trimmed);
  CHECK(ok.count == 4);
}

TEST_CASE("RingLog TrimExpired drops by arrival and LowerBoundArrival searches", "[ring_log]") {
  Log log(16, 4096);
  for (int i = 0; i < 8; ++i) Append(log, "k", "v", 100 * i);
  CHECK(log.LowerBoundArrival(0) == 0);
  CHECK(log.LowerBoundArrival(250) == 3);
  CHECK(log.LowerBoundArrival(300) == 3);
  CHECK(log.LowerBoundArrival(10000) == 8);
  CHECK(log.ArrivalAt(3) == std::optional<int64_t>(300));
  CHECK(log.TrimExpired(300) == 3);
  CHECK(log.Begin() == 3);
  CHECK_FALSE(log.ArrivalAt(2).has_value());
  CHECK_FALSE(log.ArrivalAt(8).has_value());
  CHECK(log.LowerBoundArrival(0) == 3);
}

TEST_CASE("RingLog stores trivially copyable payloads as bytes", "[ring_log]") {
  struct Point {
    double x;
    int32_t y;
  };
  kinlet::RingLog<Point> log(8, 1024);
  uint64_t pos = 0;
  REQUIRE(log.Append("p", Point{1.5, -7}, 0, kNever, false, &pos) ==
          kinlet::RingLog<Point>::AppendStatus::kOk);
  kinlet::GetRecordsResult<Point> page;
  REQUIRE(log.Read(0, 1, SIZE_MAX, 1, 0, &page).count == 1);
  CHECK(page.records[0].data.x == 1.5);
  CHECK(page.records[0].data.y == -7);
}

TEST_CASE("RingLog readers racing an overwriting writer see whole records or trimmed",
          "[ring_log][concurrency]") {
  Log log(8, 1024);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::string data(40, 'a');
    for (int i = 0; i < 20000; ++i) {
      const char c = static_cast<char>('a' + i % 26);
      std::fill(data.begin(), data.end(), c);
      uint64_t pos;
      log.Append(std::string(1, c), data, 0, INT64_MIN, true, &pos);
    }
    stop.store(true);
  });
  uint64_t torn = 0;
  uint64_t reads = 0;
  kinlet::GetRecordsResult<std::string> page;
  while (!stop.load()) {
    const uint64_t from = log.Begin();
    auto out = log.Read(from, 8, SIZE_MAX, 1, 0, &page);
    if (out.trimmed) continue;
    for (const auto& r : page.records) {
      ++reads;
      // Every byte of a record's payload equals its key: any mix is a torn read.
      if (r.data.size() != 40 || r.partition_key.size() != 1 ||
          r.data.find_first_not_of(r.partition_key[0]) != std::string::npos) {
        ++torn;
      }
    }
    page.records.clear();
  }
  writer.join();
  CHECK(torn == 0);
  CHECK(log.End() == 20000);
}

namespace kinlet::detail {
namespace {

// CopyBytes inlines small copies as overlapping moves: every size copies
// exactly its bytes, none before or after.
TEST_CASE("CopyBytes copies exactly n bytes for every size around its chunk boundaries",
          "[ring_log]") {
  std::string src(300, '\0');
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<char>('a' + i % 26);
  for (size_t n = 0; n <= 260; ++n) {
    std::string dst(n + 32, '#');
    CopyBytes(dst.data() + 16, src.data() + 3, n);
    INFO("n = " << n);
    REQUIRE(dst.substr(0, 16) == std::string(16, '#'));
    REQUIRE(dst.substr(16, n) == src.substr(3, n));
    REQUIRE(dst.substr(16 + n) == std::string(16, '#'));
  }
}

}  // namespace
}  // namespace kinlet::detail

// --- Pins (zero-copy reads) and the trim horizon: issue 14 ------------------

TEST_CASE("RingLog: a pin makes the writer refuse an append that needs its memory, never wait",
          "[ring_log][zero_copy][regression]") {
  // Regression: the writer waited (forever, holding the shard's writer lock)
  // for a pinned reader to go. Now it refuses and drops nothing.
  Log log(16, 4096);  // the reuse horizon moves 16 / 16 = 1 record at a time
  const int pin = log.ClaimPin();
  REQUIRE(pin >= 0);
  for (int i = 0; i < 16; ++i) REQUIRE(Append(log, "k", std::to_string(i), 0, true) != UINT64_MAX);
  SECTION("overwriting") {
    REQUIRE(log.Pin(pin, 0));
    CHECK(Append(log, "k", "x", 0, /*overwrite=*/true) == UINT64_MAX);
    CHECK(log.overwritten_records() == 0);
  }
  SECTION("dropping expired records") {
    REQUIRE(log.Pin(pin, 0));
    CHECK(Append(log, "k", "x", 100, /*overwrite=*/false, /*expire_before=*/50) == UINT64_MAX);
    CHECK(log.expired_records() == 0);
  }
  SECTION("a pin further on holds back only its own records' memory") {
    REQUIRE(log.Pin(pin, 8));
    for (uint64_t p = 16; p < 24; ++p) CHECK(Append(log, "k", "x", 0, true) == p);
    CHECK(log.Begin() == 8);
    CHECK(Append(log, "k", "x", 0, true) == UINT64_MAX);  // would reuse record 8's memory
    kinlet::GetRecordsResult<std::string> page;
    auto read = log.Read(8, 1, SIZE_MAX, 1, 0, &page);
    REQUIRE(read.count == 1);
    CHECK(page.records[0].data == "8");  // intact
    log.Unpin(pin);
    CHECK(Append(log, "k", "x", 0, true) == 24);
    CHECK(log.Begin() == 9);
    log.ReleasePin(pin);
    return;
  }
  // Nothing was dropped for the refused append; unpinned, it goes in.
  CHECK(log.Begin() == 0);
  CHECK(log.End() == 16);
  log.Unpin(pin);
  CHECK(Append(log, "k", "x", 100, true, 50) == 16);
  CHECK(log.Begin() == 1);
  log.ReleasePin(pin);
}

TEST_CASE("RingLog: a released pin slot carries no position", "[ring_log][zero_copy][regression]") {
  // Regression: ReleasePin cleared the claim bit but left the pinned position,
  // which the next claimer of the slot inherited: the writer then waited for it.
  Log log(16, 4096);
  const int pin = log.ClaimPin();
  REQUIRE(pin >= 0);
  for (int i = 0; i < 16; ++i) REQUIRE(Append(log, "k", "v", 0, true) != UINT64_MAX);
  REQUIRE(log.Pin(pin, 0));
  log.ReleasePin(pin);  // released while pinned (a reader gone mid-view)
  const int again = log.ClaimPin();
  CHECK(again == pin);  // the lowest free slot: the same one
  for (uint64_t p = 16; p < 48; ++p) CHECK(Append(log, "k", "v", 0, true) == p);
  log.ReleasePin(again);
}

TEST_CASE("RingLog: a trimmed position cannot be pinned", "[ring_log][zero_copy][regression]") {
  // Regression: TrimExpired moved begin_ but not the reuse horizon, and Pin
  // checked only the horizon, so trimmed records could be lent out.
  Log log(16, 4096);
  for (int i = 0; i < 4; ++i) REQUIRE(Append(log, "k", "v", 10 * i) != UINT64_MAX);
  REQUIRE(log.TrimExpired(15) == 2);
  REQUIRE(log.Begin() == 2);
  REQUIRE(log.ReuseHorizon() == 0);  // trimming reuses no memory
  const int pin = log.ClaimPin();
  REQUIRE(pin >= 0);
  CHECK_FALSE(log.Pin(pin, 0));
  CHECK_FALSE(log.Pin(pin, 1));
  CHECK(log.Pin(pin, 2));
  log.Unpin(pin);
  log.ReleasePin(pin);
}

TEST_CASE("RingLog never shows a trim horizon past the published end", "[ring_log][regression]") {
  // Regression: the unpublished appends of a batch larger than the ring moved
  // begin_ past end_, so TRIM_HORIZON pointed past the end (and GetRecords
  // refused the iterator). Checked after every append a reader could observe.
  Log log(4, 4096);
  for (uint64_t i = 0; i < 12; ++i) {
    uint64_t pos = UINT64_MAX;
    REQUIRE(log.Append("k", std::to_string(i), 0, kNever, /*overwrite=*/true, &pos,
                       /*publish=*/false) == Log::AppendStatus::kOk);
    CHECK(pos == i);
    const uint64_t begin = log.Begin();
    CHECK(begin <= log.End());
    CHECK(log.LowerBoundArrival(INT64_MIN) <= log.End());
  }
  log.Publish();
  CHECK(log.End() == 12);
  CHECK(log.Begin() == 8);
  kinlet::GetRecordsResult<std::string> page;
  auto read = log.Read(log.Begin(), 10, SIZE_MAX, 1, 0, &page);
  REQUIRE(read.count == 4);
  CHECK(page.records[0].data == "8");
}
