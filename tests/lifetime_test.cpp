// Handles and memory over time (issue 14, items 2 and 7): every handle a user
// can hold keeps what it points into alive, or fails with
// ResourceNotFoundException, whatever is deleted or destroyed and in whatever
// order (run under AddressSanitizer and ThreadSanitizer by CI); closed shards
// are deleted once past retention and their memory returned; shard memory is
// committed as it fills.
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "catch2/catch.hpp"
#include "kinlet/clock.hpp"
#include "kinlet/detail/epoch.hpp"
#include "kinlet/registry.hpp"
#include "kinlet/stream.hpp"

namespace {

using kinlet::IteratorPosition;
using ManualStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

kinlet::StreamOptions Small(const std::string& name, int shards) {
  kinlet::StreamOptions o;
  o.name = name;
  o.shard_count = shards;
  o.shard_capacity_records = 256;
  o.limits = kinlet::ThroughputLimits::Unlimited();
  return o;
}

// Resident memory of this process, in bytes (Linux; 0 elsewhere).
size_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long pages = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &pages, &resident);
  std::fclose(f);
  return n == 2 ? resident * 4096 : 0;
}

constexpr bool kSanitized =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

}  // namespace

TEST_CASE("Deleting a stream while every kind of handle is in use on other threads", "[lifetime]") {
  kinlet::Registry<std::string> registry;
  auto created = registry.CreateStream(Small("deleted-under-load", 2));
  REQUIRE(created.ok());
  std::shared_ptr<kinlet::Stream<std::string>> stream = *created;
  REQUIRE(stream->RegisterStreamConsumer("watcher").ok());
  auto shard = stream->GetShard("shardId-000000000000");
  REQUIRE(shard.ok());
  kinlet::Stream<std::string>::ShardHandle handle = *shard;

  // A pull subscription waiting in Next, a push subscription delivering, a
  // polling reader on the shard handle and a reader blocked in WaitForRecords.
  auto pull =
      stream->SubscribeToShard("watcher", "shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(pull.ok());
  std::atomic<int> pushed{0};
  std::atomic<bool> push_ended{false};
  absl::Status push_end;
  auto push = stream->SubscribeToShard(
      "watcher", "shardId-000000000001", IteratorPosition::TrimHorizon(),
      [&](const kinlet::SubscribeToShardEvent<std::string>& e) {
        pushed.fetch_add(static_cast<int>(e.records().size()));
      },
      [&](const absl::Status& s) {
        push_end = s;
        push_ended.store(true);
      });
  REQUIRE(push.ok());
  auto latest = handle->GetShardIterator(IteratorPosition::Latest());
  REQUIRE(latest.ok());

  std::atomic<int> pull_not_found{0}, reader_not_found{0}, waiter_done{0};
  std::string last_error;  // the reader's, read after it is joined
  std::thread pull_thread([&, sub = std::move(*pull)]() mutable {
    kinlet::SubscribeToShardEvent<std::string> event;
    for (;;) {
      absl::Status s = sub->Next(&event, absl::Seconds(30));
      if (!s.ok()) {
        if (kinlet::IsResourceNotFound(s)) pull_not_found.fetch_add(1);
        break;
      }
    }
    sub.reset();  // destroyed on this thread, after the deletion
  });
  auto reader_start = handle->GetShardIterator(IteratorPosition::TrimHorizon());
  REQUIRE(reader_start.ok());
  std::thread reader([&, at = *reader_start]() mutable {
    kinlet::GetRecordsResult<std::string> page;
    // Reads until the deletion is seen (bounded: 60 s).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      absl::Status s = handle->GetRecords(at, 100, &page);
      if (kinlet::IsResourceNotFound(s)) {
        reader_not_found.fetch_add(1);
        break;
      }
      if (s.ok() && page.next_shard_iterator) at = *page.next_shard_iterator;
      if (!s.ok()) last_error = s.ToString();
    }
  });
  std::thread waiter([&, s = stream, it = *latest] {
    // Far past the latest record: only the deletion can end this wait.
    kinlet::ShardIterator far = it;
    (void)s->WaitForRecords(far, absl::Seconds(30));
    waiter_done.fetch_add(1);
  });

  for (int i = 0; i < 200; ++i) {
    REQUIRE(stream->PutRecord("k" + std::to_string(i), "payload").ok());
  }
  // Registered consumers make DeleteStream refuse, as AWS, unless enforced.
  CHECK(kinlet::IsResourceInUse(registry.DeleteStream("deleted-under-load")));
  REQUIRE(registry.DeleteStream("deleted-under-load", /*enforce_consumer_deletion=*/true).ok());
  stream.reset();  // the test's own reference goes too: handles hold the rest

  pull_thread.join();
  waiter.join();
  reader.join();
  CHECK(pull_not_found.load() == 1);
  CHECK(waiter_done.load() == 1);
  INFO(last_error);
  CHECK(reader_not_found.load() == 1);
  // The push subscription ends by itself with the stream's deletion.
  for (int i = 0; i < 3000 && !push_ended.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(push_ended.load());
  CHECK(kinlet::IsResourceNotFound(push_end));
  // Every later call through a held handle fails, and nothing dangles.
  CHECK(kinlet::IsResourceNotFound(handle->GetShardIterator(IteratorPosition::Latest()).status()));
  // Destroy the rest on another thread, shard handle first.
  std::thread([h = std::move(handle), p = std::move(*push)]() mutable {
    h.reset();
    p.reset();
  }).join();
}

TEST_CASE("A destroyed stream leaves held shard handles and subscriptions usable", "[lifetime]") {
  kinlet::ManualClock clock;
  auto created = ManualStream::Create(Small("destroyed", 1), &clock);
  REQUIRE(created.ok());
  std::unique_ptr<ManualStream> stream = std::move(*created);
  REQUIRE(stream->PutRecord("k", "v").ok());
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  auto sub = stream->SubscribeToShard("c", "shardId-000000000000", IteratorPosition::TrimHorizon());
  REQUIRE(sub.ok());
  auto handle = stream->GetShard("0");
  REQUIRE(handle.ok());
  auto it = (*handle)->GetShardIterator(IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  stream.reset();

  kinlet::GetRecordsResult<std::string> page;
  CHECK(kinlet::IsResourceNotFound((*handle)->GetRecords(*it, 10, &page)));
  CHECK(
      kinlet::IsResourceNotFound((*handle)->GetShardIterator(IteratorPosition::Latest()).status()));
  CHECK((*handle)->HasRecords(*it));  // GetRecords has something to say: the deletion
  kinlet::SubscribeToShardEvent<std::string> event;
  CHECK(kinlet::IsResourceNotFound((*sub)->Next(&event, absl::Seconds(10))));
  CHECK((*sub)->end() == kinlet::SubscriptionEnd::kStreamDeleted);
}

TEST_CASE("Closed shards are deleted once past retention, ids and limits keep working",
          "[lifetime]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions o = Small("cycles", 1);
  o.retention_period = absl::Hours(1);
  o.max_shard_count = 40;  // far below what 2,000 cycles create
  auto created = ManualStream::Create(o, &clock);
  REQUIRE(created.ok());
  ManualStream& stream = **created;
  std::weak_ptr<ManualStream::ShardType> first_parent = stream.OpenShards()[0];
  const kinlet::HashKey middle = kinlet::kMaxHashKey / 2;

  for (int cycle = 0; cycle < 2000; ++cycle) {
    const std::string open = stream.OpenShards()[0]->shard_id();
    REQUIRE(stream.SplitShard(open, middle).ok());
    auto children = stream.OpenShards();
    REQUIRE(children.size() == 2);
    REQUIRE(stream.PutRecord("key", "value").ok());
    REQUIRE(stream.MergeShards(children[0]->shard_id(), children[1]->shard_id()).ok());
    children.clear();
    clock.Advance(absl::Minutes(10));
    // Six cycles fit in the retention period: at most ~3 shards each, held.
    REQUIRE(stream.held_shard_count() <= 3 * 7 + 1);
  }
  CHECK(first_parent.expired());  // freed, not just hidden
  CHECK(stream.open_shard_count() == 1);
  // The first shard is gone for every call, as AWS: ResourceNotFoundException.
  CHECK(kinlet::IsResourceNotFound(stream.GetShard("shardId-000000000000").status()));
  CHECK(kinlet::IsResourceNotFound(
      stream.GetShardIterator("shardId-000000000000", IteratorPosition::TrimHorizon()).status()));
  // ListShards lists what is held once the due deletions ran; the newest
  // shard id keeps counting up.
  stream.TrimExpired();
  auto listed = stream.ListShards();
  REQUIRE(listed.ok());
  CHECK(static_cast<int>(listed->size()) == stream.held_shard_count());
  CHECK(stream.OpenShards()[0]->shard_id() == kinlet::ShardIdFor(6000));
  // Memory of old shards is returned: the reclamation domain has no open
  // section left behind by any call.
  CHECK(kinlet::detail::EpochDomain::Global().OpenSections() == 0);
}

TEST_CASE("A shard handle held past its shard's deletion stays valid and says so", "[lifetime]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions o = Small("held", 1);
  o.retention_period = absl::Hours(1);
  auto created = ManualStream::Create(o, &clock);
  REQUIRE(created.ok());
  ManualStream& stream = **created;
  REQUIRE(stream.PutRecord("k", "v").ok());
  ManualStream::ShardHandle parent = stream.OpenShards()[0];
  auto it = parent->GetShardIterator(IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  REQUIRE(stream.SplitShard(parent->shard_id(), kinlet::kMaxHashKey / 2).ok());
  kinlet::GetRecordsResult<std::string> page;
  REQUIRE(parent->GetRecords(*it, 10, &page).ok());  // still readable within retention
  CHECK(page.records.size() == 1);
  CHECK(page.child_shards.size() == 2);

  clock.Advance(absl::Hours(1) + absl::Seconds(1));
  CHECK(parent->deleted());                   // gone at once, before the stream frees it
  REQUIRE(stream.PutRecord("k", "v2").ok());  // the first put after the due time frees it
  CHECK(stream.held_shard_count() == 2);
  auto fresh = parent->GetShardIterator(IteratorPosition::TrimHorizon());
  CHECK(kinlet::IsResourceNotFound(fresh.status()));
  auto again = stream.GetShardIterator(parent->shard_id(), IteratorPosition::TrimHorizon());
  CHECK(kinlet::IsResourceNotFound(again.status()));
}

TEST_CASE("UpdateShardCount 1000 -> 2000 -> 1000 -> 2000 with default options", "[lifetime]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions o;
  o.name = "big";
  o.shard_count = 1000;
  o.max_shard_count_updates_per_day = 10;
  if (kSanitized) {  // keep sanitizer heaps (and their shadow memory) small
    o.max_record_size_bytes = 1024;
    o.shard_capacity_bytes = 64 << 10;
    o.shard_capacity_records = 1024;  // TSan shadows every mapping: 5,000 x 1.5 MiB is too much
  }
  const size_t before = ResidentBytes();
  auto created = ManualStream::Create(o, &clock);
  REQUIRE(created.ok());
  ManualStream& stream = **created;
  const size_t after = ResidentBytes();
  // 1,000 shards of 65,536 slots would touch 1.5 GB at creation; committed
  // as they fill, an empty stream costs a small fraction of that.
  INFO("resident growth " << (after - before) / (1 << 20) << " MiB");
  if (!kSanitized) CHECK(after - before < (size_t{256} << 20));

  REQUIRE(stream.UpdateShardCount(2000).ok());
  REQUIRE(stream.UpdateShardCount(1000).ok());
  REQUIRE(stream.UpdateShardCount(2000).ok());  // not stuck at a limit of shards ever created
  CHECK(stream.open_shard_count() == 2000);
  // Once the closed shards pass retention they are deleted and stop counting.
  clock.Advance(o.retention_period + absl::Seconds(1));
  stream.TrimExpired();
  CHECK(stream.held_shard_count() == 2000);
  REQUIRE(stream.UpdateShardCount(1000).ok());
}

TEST_CASE("IncreaseStreamRetentionPeriod never brings back expired records", "[lifetime]") {
  kinlet::ManualClock clock;
  auto created = ManualStream::Create(Small("retention", 1), &clock);
  REQUIRE(created.ok());
  ManualStream& stream = **created;
  REQUIRE(stream.PutRecord("k", "old").ok());
  clock.Advance(absl::Hours(30));  // past the 24-hour retention
  REQUIRE(stream.PutRecord("k", "new").ok());
  REQUIRE(stream.IncreaseStreamRetentionPeriod(absl::Hours(48)).ok());
  auto it = stream.GetShardIterator("0", IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  auto page = stream.GetRecords(*it);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 1);
  CHECK(page->records[0].data == "new");
}

TEST_CASE("A shard's starting sequence number is a valid position at any time", "[lifetime]") {
  kinlet::ManualClock clock;
  auto created = ManualStream::Create(Small("starting", 1), &clock);
  REQUIRE(created.ok());
  ManualStream& stream = **created;
  auto shard = stream.GetShard("0");
  REQUIRE(shard.ok());
  const kinlet::SequenceNumber start = (*shard)->starting_sequence_number();
  auto at = stream.GetShardIterator("0", IteratorPosition::AtSequenceNumber(start));
  REQUIRE(at.ok());  // an empty shard accepts it (AWS does)
  REQUIRE(stream.PutRecord("k", "first").ok());
  auto page = stream.GetRecords(*at);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 1);
  CHECK(page->records[0].data == "first");
  // A shard closed without records (shard 1, split again at once): its
  // ending sequence number is accepted too, AT and AFTER.
  REQUIRE(stream.SplitShard("0", kinlet::kMaxHashKey / 2).ok());
  REQUIRE(stream.SplitShard("1", kinlet::kMaxHashKey / 4).ok());
  auto empty_closed = stream.GetShard("1");
  REQUIRE(empty_closed.ok());
  REQUIRE_FALSE((*empty_closed)->is_open());
  const auto ending = (*empty_closed)->ending_sequence_number();
  REQUIRE(ending.has_value());
  auto at_end = stream.GetShardIterator("1", IteratorPosition::AtSequenceNumber(*ending));
  REQUIRE(at_end.ok());
  REQUIRE(stream.GetShardIterator("1", IteratorPosition::AfterSequenceNumber(*ending)).ok());
  auto end_page = stream.GetRecords(*at_end);
  REQUIRE(end_page.ok());
  CHECK(end_page->records.empty());
  CHECK(end_page->child_shards.size() == 2);  // the end of the closed shard
}

TEST_CASE("TrimmedReads::kContinueFromTrimHorizon reads as Kinesis does", "[lifetime]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions o = Small("kinesis-trim", 1);
  o.trimmed_reads = kinlet::TrimmedReads::kContinueFromTrimHorizon;
  o.retention_period = absl::Hours(1);
  auto created = ManualStream::Create(o, &clock);
  REQUIRE(created.ok());
  ManualStream& stream = **created;
  auto put = stream.PutRecord("k", "expires");
  REQUIRE(put.ok());
  clock.Advance(absl::Minutes(61));
  REQUIRE(stream.PutRecord("k", "kept").ok());
  // An iterator at the expired record (AT_SEQUENCE_NUMBER of a trimmed record).
  auto it = stream.GetShardIterator("0", IteratorPosition::AtSequenceNumber(put->sequence_number));
  REQUIRE(it.ok());
  auto page = stream.GetRecords(*it);
  REQUIRE(page.ok());  // not TrimmedDataAccessException: Kinesis never sends it
  REQUIRE(page->records.size() == 1);
  CHECK(page->records[0].data == "kept");

  // A fan-out subscription at the trimmed record continues from the horizon.
  REQUIRE(stream.RegisterStreamConsumer("c").ok());
  auto sub = stream.SubscribeToShard("c", "shardId-000000000000",
                                     IteratorPosition::AtSequenceNumber(put->sequence_number));
  REQUIRE(sub.ok());
  kinlet::SubscribeToShardEvent<std::string> event;
  REQUIRE((*sub)->Next(&event, absl::ZeroDuration()).ok());
  REQUIRE(event.records().size() == 1);
  CHECK(event.records()[0].data == "kept");
  auto view_sub = stream.SubscribeToShard("c", "shardId-000000000000",
                                          IteratorPosition::AtSequenceNumber(put->sequence_number));
  CHECK(kinlet::IsResourceInUse(view_sub.status()));  // within 5 s of the first: as AWS
  clock.Advance(absl::Seconds(6));
  view_sub = stream.SubscribeToShard("c", "shardId-000000000000",
                                     IteratorPosition::AtSequenceNumber(put->sequence_number));
  REQUIRE(view_sub.ok());
  std::vector<std::string> viewed;
  REQUIRE((*view_sub)
              ->NextView(
                  [&](const kinlet::SubscribeToShardEventView<std::string>& e) {
                    for (const auto& r : e.records) viewed.emplace_back(r.data);
                  },
                  absl::ZeroDuration())
              .ok());
  CHECK(viewed == std::vector<std::string>{"kept"});

  // The loud default reports it.
  auto loud = ManualStream::Create(Small("loud", 1), &clock);
  REQUIRE(loud.ok());
  REQUIRE((*loud)->PutRecord("k", "v").ok());
  auto loud_it = (*loud)->GetShardIterator("0", IteratorPosition::TrimHorizon());
  REQUIRE(loud_it.ok());
  clock.Advance(absl::Hours(25));
  REQUIRE((*loud)->PutRecord("k", "w").ok());
  auto renewed = (*loud)->GetShardIterator(
      "0", IteratorPosition::AtSequenceNumber((*(*loud)->GetShard("0"))->Sequence(0)));
  REQUIRE(renewed.ok());
  CHECK(kinlet::IsTrimmedDataAccess((*loud)->GetRecords(*renewed).status()));
}
