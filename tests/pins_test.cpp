// Tests of the zero-copy read path against the writer (issue 14): a pin is
// released however a visitor ends, a writer never waits for a pinned reader
// (FullPolicy::kReject and kOverwrite), zero-copy and copying reads agree
// after retention trims a shard, every event but a shard's final one carries a
// continuation, and a batch larger than the ring never makes a TRIM_HORIZON
// iterator fail.
#include <atomic>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/fan_out.hpp"
#include "kinlet/stream.hpp"

namespace {

using kinlet::IteratorPosition;
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
using Event = kinlet::SubscribeToShardEvent<std::string>;
using View = kinlet::SubscribeToShardEventView<std::string>;
constexpr const char* kShard = "shardId-000000000000";

auto MakeStream(kinlet::ManualClock* clock, kinlet::FullPolicy policy, size_t records = 64) {
  kinlet::StreamOptions options;
  options.subscription_lifetime = absl::Hours(48);  // outlives retention: tests move the clock
  options.name = "pins";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 1;
  options.shard_capacity_bytes = 4 << 20;
  options.shard_capacity_records = records;  // the reuse horizon moves records / 16 at a time
  options.full_policy = policy;
  auto stream = TestStream::Create(options, clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

struct Thrown : std::runtime_error {
  Thrown() : std::runtime_error("visitor failed") {}
};

}  // namespace

TEST_CASE("A throwing visitor releases its pin: puts that wrap the ring go on",
          "[fan_out][zero_copy][regression]") {
  // Regression: NextView unpinned only on its normal return; after a throw the
  // writer waited forever (holding the shard's writer lock) at the next wrap.
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, kinlet::FullPolicy::kOverwrite);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  for (int i = 0; i < 8; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  size_t lent = 0;
  CHECK_THROWS_AS(sub->NextView(
                      [&](const View& e) {
                        lent = e.records.size();
                        throw Thrown();
                      },
                      absl::ZeroDuration()),
                  Thrown);
  CHECK(lent == 8);
  CHECK(sub->stats().copied_records == 0);  // they were pinned, not copied
  for (int i = 0; i < 4 * 64; ++i) REQUIRE(stream->PutRecord("k", "more").ok());
  // The subscription itself goes on (it was lapped meanwhile: trimmed).
  Event event;
  CHECK(kinlet::IsTrimmedDataAccess(sub->Next(&event, absl::ZeroDuration())));
}

TEST_CASE("A subscription destroyed after a view leaves no pin for the next one",
          "[fan_out][zero_copy][regression]") {
  // Regression: ReleasePin left the pinned position in the slot, and the next
  // subscription to claim it inherited the pin.
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, kinlet::FullPolicy::kOverwrite);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  for (int i = 0; i < 8; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  {
    auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
    CHECK_THROWS_AS(sub->NextView([](const View&) { throw Thrown(); }, absl::ZeroDuration()),
                    Thrown);
  }  // destroyed after the view
  clock.Advance(absl::Seconds(10));
  auto next = *stream->SubscribeToShard("c", kShard, IteratorPosition::Latest());  // same slot
  // A ring's worth: the writer reuses the memory of records 0..7.
  for (int i = 0; i < 64; ++i) REQUIRE(stream->PutRecord("k", "more").ok());
  size_t viewed = 0;
  REQUIRE(
      next->NextView([&](const View& e) { viewed = e.records.size(); }, absl::ZeroDuration()).ok());
  CHECK(viewed == 64);
}

TEST_CASE("A visitor that blocks never holds the writer: its puts are refused, then go on",
          "[fan_out][zero_copy][regression]") {
  // Regression: a writer that needed a pinned record's memory waited for the
  // visitor, however long it took. Now the put fails with ShardFullException at
  // once (kReject and kOverwrite alike) and drops nothing; once the visitor
  // returns, puts succeed again.
  kinlet::ManualClock clock;
  const auto policy = GENERATE(kinlet::FullPolicy::kReject, kinlet::FullPolicy::kOverwrite);
  INFO((policy == kinlet::FullPolicy::kReject ? "kReject" : "kOverwrite"));
  auto stream = MakeStream(&clock, policy);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::TrimHorizon());
  for (int i = 0; i < 64; ++i) REQUIRE(stream->PutRecord("k", "pinned-" + std::to_string(i)).ok());
  int accepted = 0;
  absl::Status refused;
  bool intact = true;
  size_t lent = 0;
  REQUIRE(sub->NextView(
                 [&](const View& e) {
                   lent = e.records.size();
                   // The ring is full of the records this visitor views. Under
                   // kReject they expire now, so the writer would drop them;
                   // under kOverwrite it drops them anyway. Either way it needs
                   // their memory, and this visitor blocks until the writer,
                   // on its own thread, has returned from its puts.
                   if (policy == kinlet::FullPolicy::kReject) clock.Advance(absl::Hours(25));
                   std::atomic<bool> writer_done{false};
                   std::thread writer([&] {
                     for (; accepted < 1000; ++accepted) {
                       refused = stream->PutRecord("k", "new").status();
                       if (!refused.ok()) break;
                     }
                     writer_done.store(true);
                   });
                   while (!writer_done.load()) std::this_thread::yield();  // the latch
                   writer.join();
                   for (size_t i = 0; i < e.records.size(); ++i) {
                     intact = intact && e.records[i].data == "pinned-" + std::to_string(i);
                   }
                 },
                 absl::ZeroDuration())
              .ok());
  CHECK(lent == 64);
  CHECK(kinlet::IsShardFull(refused));
  CHECK(accepted == 0);  // the very first put needed the pinned record 0's memory
  CHECK(intact);
  auto metrics = stream->GetShard(kShard).value()->Metrics();
  CHECK(metrics.shard_full_rejections == 1);
  // The visitor returned: the refused put goes in, and the reader reads it.
  REQUIRE(stream->PutRecord("k", "after").ok());
  Event event;
  REQUIRE(sub->Next(&event, absl::ZeroDuration()).ok());
  REQUIRE(event.records().size() == 1);
  CHECK(event.records()[0].data == "after");
  CHECK(event.records()[0].sequence_number.position() == 64);
}

TEST_CASE("Zero-copy and copying reads agree after retention trims a shard",
          "[fan_out][zero_copy][regression]") {
  // Regression: after TrimExpired, NextView lent the expired records that Next
  // (correctly) refused with TrimmedDataAccessException.
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, kinlet::FullPolicy::kReject);
  REQUIRE(stream->RegisterStreamConsumer("copy").ok());
  REQUIRE(stream->RegisterStreamConsumer("view").ok());
  auto first = stream->PutRecord("k", "0");
  REQUIRE(first.ok());
  for (int i = 1; i < 3; ++i) REQUIRE(stream->PutRecord("k", std::to_string(i)).ok());
  clock.Advance(absl::Hours(25));
  const bool reclaim = GENERATE(true, false);
  if (reclaim) REQUIRE(stream->TrimExpired() == 3);
  // AT a trimmed number: a subscription whose next record is gone.
  const auto at = IteratorPosition::AtSequenceNumber(first->sequence_number);
  auto copy = *stream->SubscribeToShard("copy", kShard, at);
  auto view = *stream->SubscribeToShard("view", kShard, at);
  Event event;
  CHECK(kinlet::IsTrimmedDataAccess(copy->Next(&event, absl::ZeroDuration())));
  bool visited = false;
  CHECK(kinlet::IsTrimmedDataAccess(
      view->NextView([&](const View&) { visited = true; }, absl::ZeroDuration())));
  CHECK_FALSE(visited);
  CHECK(view->end() == kinlet::SubscriptionEnd::kDataTrimmed);
}

TEST_CASE("Only a shard's final event has no continuation, resuming skips and repeats nothing",
          "[fan_out][regression]") {
  // Regression: a heartbeat with nothing before the start had a null
  // continuation, which consumers (the KCL) read as the end of the shard.
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, kinlet::FullPolicy::kReject);
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  const kinlet::SequenceNumber start = stream->GetShard(kShard).value()->starting_sequence_number();
  const auto start_type =
      GENERATE(kinlet::ShardIteratorType::kTrimHorizon, kinlet::ShardIteratorType::kLatest);
  auto sub = *stream->SubscribeToShard("c", kShard,
                                       start_type == kinlet::ShardIteratorType::kLatest
                                           ? IteratorPosition::Latest()
                                           : IteratorPosition::TrimHorizon());
  Event event;
  REQUIRE(sub->Next(&event, absl::ZeroDuration()).ok());  // a heartbeat on an empty shard
  CHECK(event.records().empty());
  CHECK_FALSE(event.end_of_shard);
  REQUIRE(event.continuation_sequence_number.has_value());
  CHECK(*event.continuation_sequence_number == start);
  CHECK(event.continuation_at_shard_start);
  bool view_ok = false;
  REQUIRE(sub->NextView(
                 [&](const View& e) {
                   view_ok = e.continuation_sequence_number == start &&
                             e.continuation_at_shard_start && e.records.empty();
                 },
                 absl::ZeroDuration())
              .ok());
  CHECK(view_ok);
  const IteratorPosition resume = event.ResumePosition();
  // Record 0 arrives; a subscription resumed from the heartbeat gets it (not
  // skipped: AFTER the starting number would be after record 0 in kinlet).
  REQUIRE(stream->PutRecord("k", "r0").ok());
  REQUIRE(stream->PutRecord("k", "r1").ok());
  clock.Advance(absl::Seconds(6));  // past the takeover guard
  auto resumed = *stream->SubscribeToShard("c", kShard, resume);
  REQUIRE(resumed->Next(&event, absl::ZeroDuration()).ok());
  REQUIRE(event.records().size() == 2);
  CHECK(event.records()[0].data == "r0");
  CHECK(event.continuation_sequence_number == event.records()[1].sequence_number);
  CHECK_FALSE(event.continuation_at_shard_start);
  // Resumed again after the records: nothing repeated.
  REQUIRE(stream->PutRecord("k", "r2").ok());
  clock.Advance(absl::Seconds(6));
  auto again = *stream->SubscribeToShard("c", kShard, event.ResumePosition());
  REQUIRE(again->Next(&event, absl::ZeroDuration()).ok());
  REQUIRE(event.records().size() == 1);
  CHECK(event.records()[0].data == "r2");
  // Only the final event of a closed shard has none.
  REQUIRE(stream->SplitShard(kShard, kinlet::kMaxHashKey / 2).ok());
  REQUIRE(again->Next(&event, absl::ZeroDuration()).ok());
  CHECK(event.end_of_shard);
  CHECK_FALSE(event.continuation_sequence_number.has_value());
  CHECK_FALSE(event.continuation_at_shard_start);
}

TEST_CASE("A batch larger than the ring never makes a TRIM_HORIZON iterator fail",
          "[fan_out][regression]") {
  // Regression: a PutRecords batch of more than a ring in overwrite mode
  // published a trim horizon past the published end; a TRIM_HORIZON iterator
  // issued then pointed past the end and GetRecords refused it.
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, kinlet::FullPolicy::kOverwrite, /*records=*/16);
  std::vector<std::string> data;  // the entries view it
  for (int i = 0; i < 32; ++i) data.push_back("v" + std::to_string(i));
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> batch;
  for (const std::string& d : data) batch.push_back({"k", d, {}});  // 2 rings
  std::atomic<bool> done{false};
  std::atomic<int> batches{0};
  std::thread writer([&] {
    kinlet::PutRecordsResult result;
    for (int i = 0; i < 2000; ++i) {
      if (!stream->PutRecords(batch, &result).ok() || result.failed_record_count != 0) break;
      batches.fetch_add(1);
    }
    done.store(true);
  });
  std::string error;
  int reads = 0;
  kinlet::GetRecordsResult<std::string> page;
  while (!done.load() && error.empty()) {
    auto it = stream->GetShardIterator(kShard, IteratorPosition::TrimHorizon());
    if (!it.ok()) {
      error = it.status().ToString();
      break;
    }
    const absl::Status s = stream->GetRecords(*it, 10000, &page);
    // Trimmed: the writer lapped the reader between the two calls (allowed).
    if (!s.ok() && !kinlet::IsTrimmedDataAccess(s)) error = s.ToString();
    ++reads;
  }
  writer.join();
  CHECK(error == "");
  CHECK(batches.load() == 2000);
  CHECK(reads > 0);
}
