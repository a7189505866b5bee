// Tests of kinlet/resharding.hpp and the resharding calls of Stream: MergeShards,
// UpdateShardCount (UNIFORM_SCALING), the UPDATING window, ListShards with every
// ShardFilter type and paging, DescribeStream's lineage, the scaling event log.
// SplitShard's own rules are in stream_test.cpp; live resharding under load is
// in stress_test.cpp.
#include "kinlet/resharding.hpp"

#include <catch2/catch.hpp>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "kinlet/stream.hpp"

namespace {

using kinlet::IteratorPosition;
using kinlet::ShardFilter;
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

std::unique_ptr<TestStream> MakeStream(kinlet::ManualClock* clock, int shards,
                                       void (*tweak)(kinlet::StreamOptions&) = nullptr) {
  kinlet::StreamOptions options;
  options.name = "reshard";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = shards;
  options.shard_capacity_bytes = 4 << 20;
  options.shard_capacity_records = 256;
  if (tweak) tweak(options);
  auto stream = TestStream::Create(options, clock);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::vector<std::string> Ids(const std::vector<kinlet::ShardDescription>& shards) {
  std::vector<std::string> ids;
  for (const auto& d : shards) ids.push_back(d.shard_id);
  return ids;
}

std::vector<std::string> Listed(TestStream& stream, ShardFilter filter) {
  kinlet::ListShardsRequest request;
  request.filter = filter;
  auto page = stream.ListShards(request);
  REQUIRE(page.ok());
  CHECK(page->next_token.empty());
  return Ids(page->shards);
}

std::vector<kinlet::HashKeyRange> OpenRanges(TestStream& stream) {
  std::vector<kinlet::HashKeyRange> ranges;
  for (const auto& shard : stream.OpenShards()) ranges.push_back(shard->hash_key_range());
  return ranges;
}

kinlet::PutRecordOptions At(kinlet::HashKey hash) {
  kinlet::PutRecordOptions o;
  o.explicit_hash_key = hash;
  return o;
}

}  // namespace

TEST_CASE("MergeShards closes both parents and creates the union child", "[resharding]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 3);
  const auto ranges = kinlet::InitialHashKeyRanges(3);
  auto in0 = stream->PutRecord("k", "in-0", At(ranges[0].starting_hash_key));
  auto in1 = stream->PutRecord("k", "in-1", At(ranges[1].ending_hash_key));
  REQUIRE(in0.ok());
  REQUIRE(in1.ok());
  auto it0 = *stream->GetShardIterator("0", IteratorPosition::TrimHorizon());
  // The higher shard first: AWS accepts either order of an adjacent pair.
  REQUIRE(stream->MergeShards("shardId-000000000001", "shardId-000000000000").ok());
  CHECK(stream->open_shard_count() == 2);
  auto child = *stream->GetShard("shardId-000000000003");
  CHECK(child->hash_key_range() ==
        kinlet::HashKeyRange{ranges[0].starting_hash_key, ranges[1].ending_hash_key});
  CHECK(child->parent_shard_id() == std::optional<std::string>("shardId-000000000001"));
  CHECK(child->adjacent_parent_shard_id() == std::optional<std::string>("shardId-000000000000"));
  CHECK(child->starting_sequence_number() > in1->sequence_number);

  SECTION("both parents are closed at their last record and report the child") {
    auto p0 = *stream->GetShard("0");
    auto p1 = *stream->GetShard("1");
    CHECK_FALSE(p0->is_open());
    CHECK_FALSE(p1->is_open());
    CHECK(p0->ending_sequence_number() == in0->sequence_number);
    CHECK(p1->ending_sequence_number() == in1->sequence_number);
    auto page = stream->GetRecords(it0, 10);
    REQUIRE(page.ok());
    REQUIRE(page->records.size() == 1);
    CHECK(page->records[0].data == "in-0");
    CHECK_FALSE(page->next_shard_iterator.has_value());
    REQUIRE(page->child_shards.size() == 1);
    CHECK(page->child_shards[0].shard_id == "shardId-000000000003");
    CHECK(page->child_shards[0].parent_shards ==
          std::vector<std::string>{"shardId-000000000001", "shardId-000000000000"});
  }
  SECTION("writes to the merged range go to the child, the others stay") {
    CHECK(stream->PutRecord("k", "v", At(ranges[0].starting_hash_key))->shard_id ==
          "shardId-000000000003");
    CHECK(stream->PutRecord("k", "v", At(ranges[1].ending_hash_key))->shard_id ==
          "shardId-000000000003");
    CHECK(stream->PutRecord("k", "v", At(ranges[2].starting_hash_key))->shard_id ==
          "shardId-000000000002");
  }
  SECTION("a closed shard still gives iterators, as AWS does") {
    auto latest = stream->GetShardIterator("1", IteratorPosition::Latest());
    REQUIRE(latest.ok());
    auto end = stream->GetRecords(*latest, 10);
    REQUIRE(end.ok());
    CHECK(end->records.empty());
    CHECK(end->child_shards.size() == 1);
    auto at =
        stream->GetShardIterator("1", IteratorPosition::AtSequenceNumber(in1->sequence_number));
    REQUIRE(at.ok());
    CHECK(stream->GetRecords(*at, 10)->records.at(0).data == "in-1");
  }
  SECTION("the scaling log records the merge") {
    auto events = stream->ScalingEvents();
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == kinlet::ScalingEvent::Kind::kMerge);
    CHECK_FALSE(events[0].automatic);
    CHECK(events[0].child_shard_ids == std::vector<std::string>{"shardId-000000000003"});
    CHECK(events[0].open_shard_count == 2);
  }
}

TEST_CASE("MergeShards refuses what AWS refuses", "[resharding]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 4, [](kinlet::StreamOptions& o) { o.max_shard_count = 6; });
  auto apart = stream->MergeShards("shardId-000000000000", "shardId-000000000002");
  CHECK(kinlet::IsInvalidArgument(apart));
  CHECK_THAT(Msg(apart), Catch::Matchers::Contains("are not an adjacent pair of shards eligible "
                                                   "for merging"));
  CHECK(kinlet::IsInvalidArgument(stream->MergeShards("1", "1")));
  CHECK(kinlet::IsResourceNotFound(stream->MergeShards("1", "shardId-000000000042")));
  REQUIRE(stream->MergeShards("0", "1").ok());
  auto closed = stream->MergeShards("1", "2");
  CHECK(kinlet::IsInvalidArgument(closed));
  CHECK_THAT(Msg(closed), Catch::Matchers::Contains("has already been merged or split"));
  CHECK(kinlet::IsInvalidArgument(
      stream->SplitShard("0", kinlet::InitialHashKeyRanges(4)[0].ending_hash_key / 2)));
  REQUIRE(stream->MergeShards("2", "3").ok());  // the sixth shard
  auto limit = stream->MergeShards("4", "5");
  CHECK(kinlet::IsLimitExceeded(limit));
  CHECK(stream->open_shard_count() == 2);  // nothing changed
}

TEST_CASE("SplitShard counts open shards against max_open_shard_count", "[resharding]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2, [](kinlet::StreamOptions& o) { o.max_open_shard_count = 2; });
  auto r = stream->OpenShards()[0]->hash_key_range();
  CHECK(kinlet::IsLimitExceeded(stream->SplitShard("0", r.ending_hash_key / 2)));
  REQUIRE(stream->MergeShards("0", "1").ok());
  CHECK(stream->SplitShard("2", kinlet::kMaxHashKey / 2).ok());
}

TEST_CASE("UpdateShardCount reaches exactly the uniform ranges of the target", "[resharding]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(
      &clock, 1, [](kinlet::StreamOptions& o) { o.max_shard_count_updates_per_day = 100; });
  // Up, down, odd counts and a non-uniform start (after a user split).
  REQUIRE(stream->SplitShard("0", kinlet::kMaxHashKey / 3).ok());
  for (int target : {4, 3, 5, 7, 4, 2, 1, 2, 3}) {
    CAPTURE(target);
    const int before = stream->open_shard_count();
    auto result = stream->UpdateShardCount(target);
    REQUIRE(result.ok());
    CHECK(result->current_shard_count == before);
    CHECK(result->target_shard_count == target);
    CHECK(result->stream_name == "reshard");
    CHECK(OpenRanges(*stream) == kinlet::InitialHashKeyRanges(target));
  }
  SECTION("every record put in between is readable in exactly one shard, following lineage") {
    std::set<std::string> seen;
    for (const auto& shard : stream->AllShards()) {
      auto it = shard->GetShardIterator(IteratorPosition::TrimHorizon());
      REQUIRE(it.ok());
      auto page = shard->GetRecords(*it, 100);
      REQUIRE(page.ok());
      if (!shard->is_open()) CHECK(!page->child_shards.empty());
    }
    for (int i = 0; i < 50; ++i) {
      REQUIRE(stream->PutRecord("key-" + std::to_string(i), std::to_string(i)).ok());
    }
    for (const auto& shard : stream->OpenShards()) {
      auto page = shard->GetRecords(*shard->GetShardIterator(IteratorPosition::TrimHorizon()), 100);
      for (const auto& r : page->records) CHECK(seen.insert(r.data).second);
    }
    CHECK(seen.size() == 50);
  }
  SECTION("children always have live parents in the description") {
    auto d = stream->DescribeStream();
    REQUIRE(d.ok());
    std::set<std::string> ids;
    for (const auto& s : d->shards) ids.insert(s.shard_id);
    for (const auto& s : d->shards) {
      if (s.parent_shard_id) CHECK(ids.count(*s.parent_shard_id) == 1);
      if (s.adjacent_parent_shard_id) CHECK(ids.count(*s.adjacent_parent_shard_id) == 1);
      CHECK(s.sequence_number_range.ending_sequence_number.has_value() ==
            !stream->GetShard(s.shard_id).value()->is_open());
    }
  }
}

TEST_CASE("UpdateShardCount's bounds and limits are AWS's", "[resharding]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 4);
  auto up = stream->UpdateShardCount(9);
  CHECK(kinlet::IsLimitExceeded(up.status()));
  CHECK_THAT(Msg(up.status()), Catch::Matchers::Contains(
                                   "cannot scale up over double your current open shard count"));
  auto down = stream->UpdateShardCount(1);
  CHECK(kinlet::IsLimitExceeded(down.status()));
  CHECK_THAT(Msg(down.status()), Catch::Matchers::Contains("below half"));
  CHECK(kinlet::IsValidationError(stream->UpdateShardCount(0).status()));
  CHECK(stream->open_shard_count() == 4);

  SECTION("ten scalings per rolling 24 hours") {
    for (int i = 0; i < 10; ++i) {
      REQUIRE(stream->UpdateShardCount(i % 2 == 0 ? 8 : 4).ok());
      clock.Advance(absl::Hours(1));
    }
    auto eleventh = stream->UpdateShardCount(8);
    CHECK(kinlet::IsLimitExceeded(eleventh.status()));
    CHECK_THAT(Msg(eleventh.status()), Catch::Matchers::Contains("24 hours"));
    clock.Advance(absl::Hours(14) + absl::Seconds(1));  // the first call is now a day old
    CHECK(stream->UpdateShardCount(8).ok());
    CHECK(kinlet::IsLimitExceeded(stream->UpdateShardCount(4).status()));
  }
  SECTION("the shard limits bound the plan, checked before any reshard") {
    auto small = MakeStream(&clock, 4, [](kinlet::StreamOptions& o) { o.max_shard_count = 10; });
    CHECK(kinlet::IsLimitExceeded(small->UpdateShardCount(8).status()));  // needs 8 more shards
    CHECK(small->AllShards().size() == 4);
    CHECK(small->UpdateShardCount(2).ok());  // two merges
    auto capped =
        MakeStream(&clock, 4, [](kinlet::StreamOptions& o) { o.max_open_shard_count = 6; });
    CHECK(kinlet::IsLimitExceeded(capped->UpdateShardCount(7).status()));
  }
}

TEST_CASE("A stream stays UPDATING for update_duration: reshards then are ResourceInUse",
          "[resharding]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(&clock, 2,
                           [](kinlet::StreamOptions& o) { o.update_duration = absl::Seconds(30); });
  CHECK(stream->DescribeStreamSummary()->stream_status == kinlet::StreamStatus::kActive);
  REQUIRE(stream->UpdateShardCount(4).ok());
  CHECK(stream->DescribeStreamSummary()->stream_status == kinlet::StreamStatus::kUpdating);
  auto busy = stream->MergeShards("2", "3");
  CHECK(kinlet::IsResourceInUse(busy));
  CHECK_THAT(Msg(busy), Catch::Matchers::Contains("not ACTIVE, instead in state UPDATING"));
  CHECK(kinlet::IsResourceInUse(stream->SplitShard("2", kinlet::kMaxHashKey / 8)));
  CHECK(kinlet::IsResourceInUse(stream->UpdateShardCount(2).status()));
  CHECK(kinlet::IsResourceInUse(stream->UpdateStreamMode(kinlet::StreamMode::kOnDemand)));
  // Reads and writes go on while UPDATING.
  auto put = stream->PutRecord("k", "v");
  REQUIRE(put.ok());
  CHECK(
      stream->GetRecords(*stream->GetShardIterator(put->shard_id, IteratorPosition::TrimHorizon()))
          ->records.size() == 1);
  clock.Advance(absl::Seconds(30));
  CHECK(stream->DescribeStreamSummary()->stream_status == kinlet::StreamStatus::kActive);
  CHECK(stream->UpdateShardCount(2).ok());
}

TEST_CASE("Reshards of an on-demand stream are refused", "[resharding]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream(
      &clock, 4, [](kinlet::StreamOptions& o) { o.stream_mode = kinlet::StreamMode::kOnDemand; });
  auto split = stream->SplitShard("0", kinlet::kMaxHashKey / 8);
  CHECK(kinlet::IsValidationError(split));
  CHECK_THAT(Msg(split), Catch::Matchers::Contains("ON_DEMAND"));
  CHECK(kinlet::IsValidationError(stream->MergeShards("0", "1")));
  CHECK(kinlet::IsValidationError(stream->UpdateShardCount(8).status()));
  REQUIRE(stream->UpdateStreamMode(kinlet::StreamMode::kProvisioned).ok());
  CHECK(stream->MergeShards("0", "1").ok());
}

TEST_CASE("ListShards filters shards as Kinesis's ShardFilter types", "[resharding]") {
  kinlet::ManualClock clock;
  auto stream =
      MakeStream(&clock, 2, [](kinlet::StreamOptions& o) { o.retention_period = absl::Hours(1); });
  const absl::Time t0 = clock.Now();
  clock.Advance(absl::Seconds(10));
  REQUIRE(stream->SplitShard("0", kinlet::InitialHashKeyRanges(2)[0].ending_hash_key / 2).ok());
  clock.Advance(absl::Seconds(10));
  REQUIRE(stream->MergeShards("3", "1").ok());  // shards 2 and 3 came from 0; 4 = 3 + 1
  clock.Advance(absl::Seconds(10));
  using V = std::vector<std::string>;
  auto id = [](int i) { return kinlet::ShardIdFor(static_cast<uint32_t>(i)); };

  CHECK(Listed(*stream, ShardFilter::AtLatest()) == V{id(2), id(4)});
  CHECK(Listed(*stream, ShardFilter::FromTrimHorizon()) == V{id(0), id(1), id(2), id(3), id(4)});
  CHECK(Ids(*stream->ListShards()) == Listed(*stream, ShardFilter::FromTrimHorizon()));
  CHECK(Listed(*stream, ShardFilter::AtTrimHorizon()) == V{id(0), id(1)});
  CHECK(Listed(*stream, ShardFilter::AtTimestamp(t0 + absl::Seconds(15))) ==
        V{id(1), id(2), id(3)});
  CHECK(Listed(*stream, ShardFilter::AtTimestamp(t0 - absl::Hours(5))) == V{id(0), id(1)});
  CHECK(Listed(*stream, ShardFilter::FromTimestamp(t0 + absl::Seconds(15))) ==
        V{id(1), id(2), id(3), id(4)});
  CHECK(Listed(*stream, ShardFilter::AfterShardId("shardId-000000000001")) ==
        V{id(2), id(3), id(4)});

  SECTION("exclusive_start_shard_id and paging with next_token") {
    kinlet::ListShardsRequest request;
    request.exclusive_start_shard_id = "shardId-000000000000";
    request.max_results = 2;
    auto first = stream->ListShards(request);
    REQUIRE(first.ok());
    CHECK(Ids(first->shards) == V{id(1), id(2)});
    REQUIRE_FALSE(first->next_token.empty());
    kinlet::ListShardsRequest next;
    next.next_token = first->next_token;
    next.max_results = 2;
    auto second = stream->ListShards(next);
    REQUIRE(second.ok());
    CHECK(Ids(second->shards) == V{id(3), id(4)});
    CHECK(second->next_token.empty());
    // The token keeps the filter.
    kinlet::ListShardsRequest latest;
    latest.filter = ShardFilter::AtLatest();
    latest.max_results = 1;
    auto one = stream->ListShards(latest);
    REQUIRE(one.ok());
    CHECK(Ids(one->shards) == V{id(2)});
    kinlet::ListShardsRequest rest;
    rest.next_token = one->next_token;
    CHECK(Ids(stream->ListShards(rest)->shards) == V{id(4)});

    SECTION("token errors") {
      kinlet::ListShardsRequest both = next;
      both.filter = ShardFilter::AtLatest();
      CHECK(kinlet::IsInvalidArgument(stream->ListShards(both).status()));
      kinlet::ListShardsRequest forged;
      forged.next_token = "kinlet-ls.1.2.3";
      CHECK(kinlet::IsInvalidArgument(stream->ListShards(forged).status()));
      auto other = MakeStream(&clock, 1);
      CHECK(kinlet::IsInvalidArgument(other->ListShards(next).status()));
      clock.Advance(absl::Seconds(301));
      CHECK(kinlet::IsExpiredNextToken(stream->ListShards(next).status()));
    }
  }
  SECTION("request errors") {
    kinlet::ListShardsRequest bad;
    bad.max_results = 0;
    CHECK(kinlet::IsValidationError(stream->ListShards(bad).status()));
    bad.max_results = 10001;
    CHECK(kinlet::IsValidationError(stream->ListShards(bad).status()));
    kinlet::ListShardsRequest after;
    after.filter = ShardFilter::AfterShardId("");
    CHECK(kinlet::IsInvalidArgument(stream->ListShards(after).status()));
  }
  SECTION("closed shards whose records have all expired are no longer listed") {
    clock.Advance(absl::Hours(1) - absl::Seconds(15));  // now t0 + 1 h + 15 s
    CHECK(Listed(*stream, ShardFilter::FromTrimHorizon()) == V{id(1), id(2), id(3), id(4)});
    CHECK(Listed(*stream, ShardFilter::AtTrimHorizon()) == V{id(1), id(2), id(3)});
    clock.Advance(absl::Seconds(10));
    CHECK(Listed(*stream, ShardFilter::FromTrimHorizon()) == V{id(2), id(4)});
    CHECK(Listed(*stream, ShardFilter::AtTrimHorizon()) == V{id(2), id(4)});
    CHECK(Listed(*stream, ShardFilter::AtTimestamp(t0)) == V{id(2), id(4)});
  }
}

TEST_CASE("The uniform scaling plan counts the shards it creates", "[resharding]") {
  auto starts = [](int n) {
    std::vector<kinlet::HashKey> s;
    for (const auto& r : kinlet::InitialHashKeyRanges(n)) s.push_back(r.starting_hash_key);
    return s;
  };
  CHECK(kinlet::detail::UniformScalingShardsCreated(starts(1), starts(2)) == 2);  // one split
  CHECK(kinlet::detail::UniformScalingShardsCreated(starts(2), starts(4)) == 4);  // two splits
  CHECK(kinlet::detail::UniformScalingShardsCreated(starts(4), starts(2)) == 2);  // two merges
  CHECK(kinlet::detail::UniformScalingShardsCreated(starts(4), starts(4)) == 0);
  // 2 -> 3: boundaries at 1/3 and 2/3 are new (2 splits = 4 shards); then
  // 4 pieces merge into 3 (1 merge).
  CHECK(kinlet::detail::UniformScalingShardsCreated(starts(2), starts(3)) == 5);
  CHECK(kinlet::ShardFilterTypeName(ShardFilter::Type::kFromTimestamp) == "FROM_TIMESTAMP");
  CHECK(kinlet::StreamModeName(kinlet::StreamMode::kOnDemand) == "ON_DEMAND");
}

// detail::PlanUniformScaling (detail/reshard_planner.hpp), separated from
// Stream::UpdateShardCount: applied to a simulated shard layout, it ends at
// exactly the target's uniform ranges, every step is valid (a split inside a
// shard, a merge of adjacent shards), and it creates the shards
// UniformScalingShardsCreated counts (the limit UpdateShardCount checks).
TEST_CASE("PlanUniformScaling reaches the target layout with the counted shards", "[resharding]") {
  using kinlet::HashKey;
  auto starts = [](int n) {
    std::vector<HashKey> s;
    for (const auto& r : kinlet::InitialHashKeyRanges(n)) s.push_back(r.starting_hash_key);
    return s;
  };
  for (int from = 1; from <= 12; ++from) {
    for (int to = (from + 1) / 2; to <= 2 * from; ++to) {
      std::set<HashKey> layout;  // the open shards' starting hash keys
      for (HashKey k : starts(from)) layout.insert(k);
      const std::vector<HashKey> current(layout.begin(), layout.end());
      const kinlet::detail::UniformScalingPlan plan =
          kinlet::detail::PlanUniformScaling(current, starts(to));
      for (HashKey k : plan.splits) {
        INFO(from << " -> " << to);
        CHECK(layout.count(k) == 0);  // a split strictly inside a shard
        layout.insert(k);
      }
      for (const auto& [low, high] : plan.merges) {
        INFO(from << " -> " << to);
        auto it = layout.find(low);
        REQUIRE(it != layout.end());
        REQUIRE(std::next(it) != layout.end());
        CHECK(*std::next(it) == high);  // adjacent
        layout.erase(std::next(it));
      }
      CHECK(std::vector<HashKey>(layout.begin(), layout.end()) == starts(to));
      CHECK(plan.shards_created() ==
            kinlet::detail::UniformScalingShardsCreated(current, starts(to)));
    }
  }
}
