// Tests of kinlet/records_view.hpp: GetRecords into a GetRecordsView (zero-copy
// polling reads, issue 18) gives exactly what the copying GetRecords gives,
// lends the shard's own bytes, holds them against the writer until released
// and never makes the writer wait, copies where it cannot lend, and keeps its
// shard alive.
#include "kinlet/records_view.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "kinlet/stream.hpp"
#include "storage/storage_test_util.hpp"

namespace {

using kinlet::IteratorPosition;
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using PageView = kinlet::GetRecordsView<std::string>;
using Page = kinlet::GetRecordsResult<std::string>;
constexpr const char* kShard = "shardId-000000000000";

kinlet::StreamOptions Options(size_t records, kinlet::FullPolicy policy) {
  kinlet::StreamOptions options;
  options.name = "views";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 1;
  options.shard_capacity_bytes = 2 << 20;
  options.shard_capacity_records = records;  // the reuse horizon moves records / 16 at a time
  options.full_policy = policy;
  return options;
}

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock, size_t records = 64,
                                       kinlet::FullPolicy policy = kinlet::FullPolicy::kOverwrite) {
  auto stream = TestStream::Create(Options(records, policy), clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

kinlet::ShardIterator Iterator(TestStream& stream, const IteratorPosition& at) {
  auto it = stream.GetShardIterator(kShard, at);
  REQUIRE(it.ok());
  return *it;
}

// What a page says, in one comparable form.
struct Seen {
  std::vector<std::string> records;  // "position key data arrival"
  std::optional<uint64_t> next;
  int64_t behind = 0;
  std::vector<std::string> children;
  bool operator==(const Seen&) const = default;
};
template <typename P>
Seen Describe(const P& page) {
  Seen s;
  for (const auto& r : page.records) {
    s.records.push_back(std::to_string(r.sequence_number.position()) + " " +
                        std::string(r.partition_key) + " " + std::string(r.data) + " " +
                        std::to_string(absl::ToUnixMillis(r.approximate_arrival_timestamp)));
  }
  if (page.next_shard_iterator) s.next = page.next_shard_iterator->position();
  s.behind = page.millis_behind_latest;
  for (const auto& c : page.child_shards) s.children.push_back(c.shard_id);
  return s;
}

}  // namespace

TEST_CASE("GetRecordsView reads what GetRecords copies, from the shard's own bytes",
          "[zero_copy][records_view]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  for (int i = 0; i < 40; ++i) {
    REQUIRE(stream->PutRecord("k" + std::to_string(i % 3), "value-" + std::to_string(i)).ok());
    clock.Advance(absl::Milliseconds(7));
  }
  const auto it = Iterator(*stream, IteratorPosition::TrimHorizon());
  for (int limit : {1, 5, 40, 10000}) {
    Page copied;
    PageView lent;
    REQUIRE(stream->GetRecords(it, limit, &copied).ok());
    REQUIRE(stream->GetRecords(it, limit, &lent).ok());
    CHECK(Describe(lent) == Describe(copied));
    CHECK(lent.records.size() == static_cast<size_t>(std::min(limit, 40)));
  }
  // In place: the writer has not reused any memory yet, so every record is lent.
  PageView a;
  PageView b;
  REQUIRE(stream->GetRecords(it, 100, &a).ok());
  REQUIRE(stream->GetRecords(it, 100, &b).ok());
  CHECK(a.lent());
  CHECK(a.copied_records() == 0);
  // Two readers see the same stored bytes: one copy serves both.
  REQUIRE(a.records.size() == 40);
  for (size_t i = 0; i < a.records.size(); ++i) {
    CHECK(a.records[i].data.data() == b.records[i].data.data());
    CHECK(a.records[i].partition_key.data() == b.records[i].partition_key.data());
  }
  // The page reads on from its next iterator like any page.
  PageView tail;
  REQUIRE(stream->PutRecord("k", "after").ok());
  REQUIRE(stream->GetRecords(*a.next_shard_iterator, 100, &tail).ok());
  REQUIRE(tail.records.size() == 1);
  CHECK(tail.records[0].data == "after");
}

TEST_CASE("A lent page holds its records against the writer until released, and never blocks it",
          "[zero_copy][records_view]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, /*records=*/64, kinlet::FullPolicy::kOverwrite);
  for (int i = 0; i < 16; ++i) REQUIRE(stream->PutRecord("k", "r" + std::to_string(i)).ok());
  PageView page;
  REQUIRE(stream->GetRecords(Iterator(*stream, IteratorPosition::TrimHorizon()), 100, &page).ok());
  REQUIRE(page.lent());
  REQUIRE(page.records.size() == 16);
  // The writer laps the ring up to the pinned records: under kOverwrite it
  // would drop them, but they are lent, so the put that needs their memory is
  // refused (ShardFull) and nothing is dropped or overwritten.
  int accepted = 0;
  absl::Status refused;
  for (int i = 0; i < 200 && refused.ok(); ++i) {
    auto put = stream->PutRecord("k", "w" + std::to_string(i));
    if (put.ok()) {
      ++accepted;
    } else {
      refused = put.status();
    }
  }
  CHECK(kinlet::IsShardFull(refused));
  CHECK(accepted >= 48 - 4);  // the ring's free room, less at most one horizon step
  for (size_t i = 0; i < page.records.size(); ++i) {
    CHECK(page.records[i].data == "r" + std::to_string(i));  // intact
  }
  // Released: puts go on at once.
  page.Release();
  CHECK(page.records.empty());
  CHECK_FALSE(page.lent());
  for (int i = 0; i < 200; ++i) REQUIRE(stream->PutRecord("k", "x").ok());
}

TEST_CASE("Reading into a lent page again releases what it held", "[zero_copy][records_view]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, /*records=*/64, kinlet::FullPolicy::kOverwrite);
  for (int i = 0; i < 16; ++i) REQUIRE(stream->PutRecord("k", "r").ok());
  PageView page;
  const auto start = Iterator(*stream, IteratorPosition::TrimHorizon());
  REQUIRE(stream->GetRecords(start, 100, &page).ok());
  REQUIRE(page.lent());
  // An empty read (at the tip) holds nothing either.
  REQUIRE(stream->GetRecords(*page.next_shard_iterator, 100, &page).ok());
  CHECK(page.records.empty());
  CHECK_FALSE(page.lent());
  for (int i = 0; i < 300; ++i) REQUIRE(stream->PutRecord("k", "x").ok());
}

TEST_CASE("A lent page answers trimmed positions as the copying read does",
          "[zero_copy][records_view]") {
  kinlet::ManualClock clock;
  SECTION("overwritten by the ring") {
    auto stream = MakeStream(&clock, /*records=*/16, kinlet::FullPolicy::kOverwrite);
    REQUIRE(stream->PutRecord("k", "first").ok());
    const auto it = Iterator(*stream, IteratorPosition::TrimHorizon());
    for (int i = 0; i < 100; ++i) REQUIRE(stream->PutRecord("k", "x").ok());
    PageView lent;
    Page copied;
    CHECK(kinlet::IsTrimmedDataAccess(stream->GetRecords(it, 10, &copied)));
    CHECK(kinlet::IsTrimmedDataAccess(stream->GetRecords(it, 10, &lent)));
    CHECK(lent.records.empty());
    CHECK_FALSE(lent.lent());
  }
  SECTION("past retention") {
    auto stream = MakeStream(&clock);
    REQUIRE(stream->PutRecord("k", "old").ok());
    const auto it = Iterator(*stream, IteratorPosition::TrimHorizon());
    clock.Advance(absl::Hours(25));
    REQUIRE(stream->PutRecord("k", "new").ok());
    auto fresh =
        Iterator(*stream, IteratorPosition::AtSequenceNumber(
                              stream->GetShard(kShard).value()->starting_sequence_number()));
    PageView lent;
    Page copied;
    const absl::Status c = stream->GetRecords(fresh, 10, &copied);
    const absl::Status l = stream->GetRecords(fresh, 10, &lent);
    CHECK(kinlet::ErrorCodeOf(c) == kinlet::ErrorCodeOf(l));
    CHECK(Describe(lent) == Describe(copied));
    (void)it;
  }
  SECTION("continuing from the trim horizon, as Kinesis") {
    auto options = Options(16, kinlet::FullPolicy::kOverwrite);
    options.trimmed_reads = kinlet::TrimmedReads::kContinueFromTrimHorizon;
    auto stream = *TestStream::Create(options, &clock);
    REQUIRE(stream->PutRecord("k", "first").ok());
    const auto it = Iterator(*stream, IteratorPosition::TrimHorizon());
    for (int i = 0; i < 100; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
    PageView lent;
    Page copied;
    REQUIRE(stream->GetRecords(it, 100, &copied).ok());
    REQUIRE(stream->GetRecords(it, 100, &lent).ok());
    CHECK_FALSE(lent.records.empty());
    CHECK(Describe(lent) == Describe(copied));
  }
}

TEST_CASE("A lent page copies what it cannot lend and says so", "[zero_copy][records_view]") {
  kinlet::ManualClock clock;
  SECTION("records the writer may reuse without looking") {
    // A 64-record ring moves its reuse horizon 4 records at a time: the 65th
    // put drops record 0 and lets the writer reuse records below 5 without
    // looking; after the 66th, records 2..4 (the oldest) are copied, the rest lent.
    auto stream = MakeStream(&clock, /*records=*/64, kinlet::FullPolicy::kOverwrite);
    for (int i = 0; i < 66; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
    PageView lent;
    Page copied;
    const auto it = Iterator(*stream, IteratorPosition::TrimHorizon());
    REQUIRE(stream->GetRecords(it, 100, &copied).ok());
    REQUIRE(stream->GetRecords(it, 100, &lent).ok());
    CHECK(Describe(lent) == Describe(copied));
    CHECK(lent.records.size() == 64);
    CHECK(lent.copied_records() == 3);
    CHECK(lent.lent());
  }
  SECTION("when every pin slot of the shard is taken") {
    auto stream = MakeStream(&clock, /*records=*/1024);
    for (int i = 0; i < 10; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
    const auto it = Iterator(*stream, IteratorPosition::TrimHorizon());
    std::vector<PageView> pages(kinlet::RingLog<std::string>::kMaxPins + 1);
    for (PageView& page : pages) REQUIRE(stream->GetRecords(it, 100, &page).ok());
    Page copied;
    REQUIRE(stream->GetRecords(it, 100, &copied).ok());
    size_t copying = 0;
    for (PageView& page : pages) {
      CHECK(Describe(page) == Describe(copied));
      if (!page.lent()) {
        ++copying;
        CHECK(page.copied_records() == 10);
      }
    }
    CHECK(copying == 1);
    // A slot given back (a page destroyed) is taken by the next read.
    pages.front() = PageView();
    REQUIRE(stream->GetRecords(it, 100, &pages.back()).ok());
    CHECK(pages.back().lent());
  }
  SECTION("trivially copyable payloads") {
    struct Point {
      int32_t x, y;
    };
    auto stream = kinlet::Stream<Point, kinlet::ManualClockTraits>::Create(
        Options(64, kinlet::FullPolicy::kOverwrite), &clock);
    REQUIRE(stream.ok());
    REQUIRE((*stream)->PutRecord("k", Point{1, 2}).ok());
    REQUIRE((*stream)->PutRecord("k", Point{3, 4}).ok());
    kinlet::GetRecordsView<Point> page;
    auto it = (*stream)->GetShardIterator(kShard, IteratorPosition::TrimHorizon());
    REQUIRE((*stream)->GetRecords(*it, 10, &page).ok());
    REQUIRE(page.records.size() == 2);
    CHECK(page.records[1].data->x == 3);
    CHECK(page.records[1].data->y == 4);
    CHECK(page.copied_records() == 2);
    CHECK_FALSE(page.lent());
  }
}

TEST_CASE("A lent page fails as the copying read does, and is left empty",
          "[zero_copy][records_view]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->PutRecord("k", "v").ok());
  const auto it = Iterator(*stream, IteratorPosition::TrimHorizon());
  PageView page;
  REQUIRE(stream->GetRecords(it, 10, &page).ok());
  REQUIRE(page.lent());
  CHECK(kinlet::IsValidationError(stream->GetRecords(it, 0, &page)));
  CHECK(page.records.empty());
  CHECK_FALSE(page.lent());
  CHECK_FALSE(page.next_shard_iterator.has_value());
  auto other = MakeStream(&clock);
  CHECK(kinlet::IsInvalidArgument(
      other->GetRecords(Iterator(*stream, IteratorPosition::TrimHorizon()), 10, &page)));
  clock.Advance(absl::Minutes(6));
  CHECK(kinlet::IsExpiredIterator(stream->GetRecords(it, 10, &page)));
  CHECK(page.records.empty());
}

TEST_CASE("A lent page reports a closed shard's end and its children",
          "[zero_copy][records_view]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock);
  REQUIRE(stream->PutRecord("k", "before").ok());
  const auto it = Iterator(*stream, IteratorPosition::TrimHorizon());
  REQUIRE(stream->SplitShard(kShard, kinlet::HashKey(1) << 127).ok());
  PageView lent;
  Page copied;
  REQUIRE(stream->GetRecords(it, 10, &copied).ok());
  REQUIRE(stream->GetRecords(it, 10, &lent).ok());
  CHECK(Describe(lent) == Describe(copied));
  CHECK_FALSE(lent.next_shard_iterator.has_value());
  CHECK(lent.child_shards.size() == 2);
}

TEST_CASE("A lent page keeps its shard alive after the stream is gone, and moves with its views",
          "[zero_copy][records_view][lifetime]") {
  kinlet::ManualClock clock;
  PageView page;
  {
    auto stream = MakeStream(&clock);
    for (int i = 0; i < 5; ++i)
      REQUIRE(stream->PutRecord("key", "payload-" + std::to_string(i)).ok());
    REQUIRE(stream->GetRecords(Iterator(*stream, IteratorPosition::TrimHorizon()), 10, &page).ok());
    REQUIRE(page.lent());
  }  // the stream is destroyed; the page still owns its shard
  const char* before = page.records[0].data.data();
  PageView moved = std::move(page);
  CHECK(page.records.empty());
  CHECK_FALSE(page.lent());
  REQUIRE(moved.records.size() == 5);
  CHECK(moved.lent());
  CHECK(moved.records[0].data.data() == before);
  for (int i = 0; i < 5; ++i) CHECK(moved.records[i].data == "payload-" + std::to_string(i));
}

TEST_CASE("A durable stream's lent page copies the records it reads from disk",
          "[zero_copy][records_view][storage]") {
  kinlet::ManualClock clock;
  kinlet::storage::testing::TempDir dir;
  auto options = Options(8, kinlet::FullPolicy::kOverwrite);
  options.storage.kind = kinlet::StorageKind::kDurable;
  options.storage.directory = dir.sub("stream");
  auto stream = TestStream::Create(options, &clock);
  REQUIRE(stream.ok());
  for (int i = 0; i < 50; ++i) REQUIRE((*stream)->PutRecord("k", "d" + std::to_string(i)).ok());
  const auto it = Iterator(**stream, IteratorPosition::TrimHorizon());
  PageView lent;
  Page copied;
  REQUIRE((*stream)->GetRecords(it, 100, &copied).ok());
  REQUIRE((*stream)->GetRecords(it, 100, &lent).ok());
  REQUIRE(lent.records.size() == 50);
  CHECK(Describe(lent) == Describe(copied));
  CHECK(lent.copied_records() >= 42);  // the ring holds 8: the rest came from disk
  stream->reset();
}
