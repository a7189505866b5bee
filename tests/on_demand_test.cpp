// Tests of kinlet/on_demand.hpp: the on-demand policy as a pure function, and
// on-demand streams under ManualClock: a scripted load (ramp up, hot key, ramp
// down) with the shard counts it must lead to, mode switches and their limits.
#include "kinlet/on_demand.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "kinlet/stream.hpp"

namespace {

using kinlet::ScalingEvent;
using kinlet::detail::ShardLoad;
using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

ShardLoad Load(double bytes, bool cold = false) {
  ShardLoad l;
  l.bytes_per_second = bytes;
  l.cold_long_enough = cold;
  return l;
}

kinlet::OnDemandOptions UnitOptions() {
  kinlet::OnDemandOptions o;
  o.min_shard_count = 1;
  o.max_shard_count = 8;
  o.split_bytes_per_second = 10'000;
  o.split_records_per_second = 1e9;
  o.merge_bytes_per_second = 1'000;
  o.merge_records_per_second = 1e8;
  o.shard_write_bytes_per_second = 20'000;
  return o;
}

// The scripted load's scale: thresholds 100x below AWS's so that minutes of
// simulated traffic stay cheap.
kinlet::StreamOptions ScriptedOptions() {
  kinlet::StreamOptions options;
  options.name = "autoscaled";
  options.stream_mode = kinlet::StreamMode::kOnDemand;
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.retention_period = absl::Minutes(2);
  options.shard_capacity_records = 1 << 15;
  options.shard_capacity_bytes = 8 << 20;
  kinlet::OnDemandOptions& o = options.on_demand;
  o.min_shard_count = 4;
  o.max_shard_count = 64;
  o.evaluation_interval = absl::Seconds(10);
  o.split_bytes_per_second = 10'000;
  o.split_records_per_second = 1e9;
  o.merge_bytes_per_second = 2'000;
  o.merge_records_per_second = 1e8;
  o.scale_down_after = absl::Seconds(60);
  o.shard_write_bytes_per_second = 20'000;
  o.peak_window = absl::Minutes(10);
  return options;
}

// Drives a stream one simulated second at a time: `spread` records/s over 1000
// keys and `hot` records/s on the key "hot", 100-byte payloads. Only puts:
// the scaler runs when a put finds an evaluation due.
struct Driver {
  TestStream* stream;
  kinlet::ManualClock* clock;
  std::string payload = std::string(100, 'x');
  int next_key = 0;
  double window_bytes = 0;  // written in the current 10-second window
  int window_seconds = 0;
  double peak_bytes_per_second = 0;  // highest 10-second average written

  void Run(int seconds, int spread, int hot = 0) {
    for (int s = 0; s < seconds; ++s) {
      for (int i = 0; i < spread; ++i) {
        const std::string key = "key-" + std::to_string(next_key++ % 1000);
        REQUIRE(stream->PutRecord(key, payload).ok());
        window_bytes += static_cast<double>(key.size() + payload.size());
      }
      for (int i = 0; i < hot; ++i) {
        REQUIRE(stream->PutRecord("hot", payload).ok());
        window_bytes += 3 + static_cast<double>(payload.size());
      }
      clock->Advance(absl::Seconds(1));
      if (++window_seconds == 10) {
        peak_bytes_per_second = std::max(peak_bytes_per_second, window_bytes / 10);
        window_bytes = 0;
        window_seconds = 0;
      }
    }
  }
};

std::vector<ScalingEvent> EventsSince(TestStream& stream, size_t from) {
  auto all = stream.ScalingEvents();
  return std::vector<ScalingEvent>(all.begin() + static_cast<std::ptrdiff_t>(from), all.end());
}

}  // namespace

TEST_CASE("PlanOnDemand splits hot shards, not hot keys, within the limits", "[on_demand]") {
  kinlet::OnDemandOptions o = UnitOptions();
  SECTION("a shard over the split rate is split") {
    auto plan = kinlet::detail::PlanOnDemand(o, {Load(15'000), Load(100), Load(100)}, 0, 100);
    CHECK(plan.splits == std::vector<size_t>{0});
    CHECK(plan.merges.empty());
  }
  SECTION("unless one key alone is over it") {
    ShardLoad hot = Load(15'000);
    hot.top_key = "k";
    hot.top_key_bytes_per_second = 12'000;
    auto plan = kinlet::detail::PlanOnDemand(o, {hot, Load(100)}, 0, 100);
    CHECK(plan.splits.empty());
    CHECK(plan.hot_keys == std::vector<size_t>{0});
    hot.top_key_bytes_per_second = 9'000;  // the rest is spread: a split helps
    CHECK(kinlet::detail::PlanOnDemand(o, {hot, Load(100)}, 0, 100).splits ==
          std::vector<size_t>{0});
  }
  SECTION("no split beyond max_shard_count or the shards the stream may still create") {
    o.max_shard_count = 2;
    auto plan = kinlet::detail::PlanOnDemand(o, {Load(15'000), Load(15'000)}, 0, 100);
    CHECK(plan.splits.empty());
    CHECK(plan.limited == std::vector<size_t>{0, 1});
    o.max_shard_count = 8;
    plan = kinlet::detail::PlanOnDemand(o, {Load(15'000), Load(15'000)}, 0, 3);
    CHECK(plan.splits == std::vector<size_t>{0});
    CHECK(plan.limited == std::vector<size_t>{1});
  }
  SECTION("below double the peak, the busiest shards split, one split each") {
    // peak 50 kB/s -> floor ceil(100 / 20) = 5 shards; two shards can only become four.
    auto plan = kinlet::detail::PlanOnDemand(o, {Load(2'000), Load(3'000)}, 50'000, 100);
    CHECK(plan.floor == 5);
    CHECK(plan.splits == std::vector<size_t>{0, 1});
    o.min_shard_count = 3;
    plan = kinlet::detail::PlanOnDemand(o, {Load(2'000), Load(3'000)}, 0, 100);
    CHECK(plan.floor == 3);
    CHECK(plan.splits == std::vector<size_t>{1});
  }
  SECTION("a hot key's shard is not split to reach the floor either") {
    ShardLoad hot = Load(15'000);
    hot.top_key_bytes_per_second = 15'000;
    auto plan = kinlet::detail::PlanOnDemand(o, {hot, Load(100)}, 50'000, 100);
    CHECK(plan.splits == std::vector<size_t>{1});
  }
  SECTION("cold adjacent pairs merge, down to the floor") {
    std::vector<ShardLoad> cold(4, Load(10, true));
    CHECK(kinlet::detail::PlanOnDemand(o, cold, 0, 100).merges == std::vector<size_t>{0, 2});
    o.min_shard_count = 3;
    CHECK(kinlet::detail::PlanOnDemand(o, cold, 0, 100).merges == std::vector<size_t>{0});
    o.min_shard_count = 1;
    cold[1].cold_long_enough = false;  // 0 has no cold neighbour on its left side
    CHECK(kinlet::detail::PlanOnDemand(o, cold, 0, 100).merges == std::vector<size_t>{2});
    // Peak 30 kB/s: floor 3 keeps three of four shards.
    cold[1].cold_long_enough = true;
    CHECK(kinlet::detail::PlanOnDemand(o, cold, 30'000, 100).merges == std::vector<size_t>{0});
  }
  SECTION("a round that splits does not merge") {
    auto plan =
        kinlet::detail::PlanOnDemand(o, {Load(15'000), Load(10, true), Load(10, true)}, 0, 100);
    CHECK(plan.splits == std::vector<size_t>{0});
    CHECK(plan.merges.empty());
  }
}

TEST_CASE("ValidateOnDemandOptions names what is wrong", "[on_demand]") {
  CHECK(kinlet::ValidateOnDemandOptions({}).ok());
  kinlet::OnDemandOptions o;
  o.min_shard_count = 0;
  CHECK(kinlet::IsInvalidArgument(kinlet::ValidateOnDemandOptions(o)));
  o = {};
  o.max_shard_count = 3;  // below min_shard_count (4)
  CHECK(kinlet::IsInvalidArgument(kinlet::ValidateOnDemandOptions(o)));
  o = {};
  o.merge_bytes_per_second = o.split_bytes_per_second;  // would split what it merged
  CHECK(kinlet::IsInvalidArgument(kinlet::ValidateOnDemandOptions(o)));
  o = {};
  o.evaluation_interval = absl::ZeroDuration();
  CHECK(kinlet::IsInvalidArgument(kinlet::ValidateOnDemandOptions(o)));
  kinlet::StreamOptions options;
  options.name = "s";
  options.on_demand.split_bytes_per_second = -1;
  CHECK(kinlet::IsInvalidArgument(kinlet::ValidateStreamOptions(options)));
}

TEST_CASE("An on-demand stream grows with its load, stops at a hot key, shrinks when cold",
          "[on_demand]") {
  kinlet::ManualClock clock;
  auto created = TestStream::Create(ScriptedOptions(), &clock);
  REQUIRE(created.ok());
  TestStream& stream = **created;
  CHECK(stream.open_shard_count() == 4);  // AWS's 4 MiB/s start, at this scale
  CHECK(stream.DescribeStreamSummary()->stream_mode == kinlet::StreamMode::kOnDemand);
  Driver load{&stream, &clock};
  const double capacity = ScriptedOptions().on_demand.shard_write_bytes_per_second;
  auto floor_for = [&](double peak) {
    return std::max(4, static_cast<int>(std::ceil(2 * peak / capacity)));
  };

  // Ramp up: ~21, ~42, ~85 kB/s over 1000 keys.
  load.Run(60, 200);
  load.Run(60, 400);
  load.Run(90, 800);
  const int after_ramp = stream.open_shard_count();
  CHECK(after_ramp >= floor_for(load.peak_bytes_per_second));  // double the peak
  CHECK(after_ramp <= 32);                                     // and no runaway
  {
    const size_t mark = stream.ScalingEvents().size();
    load.Run(30, 800);  // converged: steady load, no more splits
    CHECK(EventsSince(stream, mark).empty());
    CHECK(stream.open_shard_count() == after_ramp);
  }
  for (const ScalingEvent& e : stream.ScalingEvents()) {
    CHECK(e.kind == ScalingEvent::Kind::kSplit);
    CHECK(e.automatic);
  }

  // A hot key: one partition key at ~11.6 kB/s, over the split rate by itself.
  const size_t hot_mark = stream.ScalingEvents().size();
  load.Run(60, 800, 113);
  const int with_hot_key = stream.open_shard_count();
  load.Run(60, 800, 113);
  CHECK(stream.open_shard_count() == with_hot_key);  // it does not split forever
  std::string hot_shard;
  int hot_key_events = 0;
  for (const ScalingEvent& e : EventsSince(stream, hot_mark)) {
    if (e.kind == ScalingEvent::Kind::kHotKey) {
      ++hot_key_events;
      CHECK(e.partition_key == "hot");
      CHECK(e.bytes_per_second > 10'000);
      CHECK_THAT(e.reason, Catch::Matchers::Contains("splitting cannot spread one key"));
      hot_shard = e.parent_shard_ids.at(0);
    }
  }
  CHECK(hot_key_events == 1);  // reported once, not every evaluation
  REQUIRE_FALSE(hot_shard.empty());
  CHECK((*stream.GetShard(hot_shard))->is_open());  // never split
  for (const ScalingEvent& e : EventsSince(stream, hot_mark)) {
    if (e.kind == ScalingEvent::Kind::kSplit) {
      CHECK_THAT(e.reason, Catch::Matchers::Contains("capacity floor"));  // 2 x the new peak
    }
  }
  CHECK(with_hot_key >= floor_for(load.peak_bytes_per_second));

  // Ramp down to ~1 kB/s. The peak is remembered for peak_window (10 min)...
  const int peak_floor = floor_for(load.peak_bytes_per_second);
  load.Run(300, 10);
  CHECK(stream.open_shard_count() >= peak_floor);
  // ...then cold neighbours merge down to min_shard_count.
  load.Run(600, 10);
  CHECK(stream.open_shard_count() == 4);
  int merges = 0;
  for (const ScalingEvent& e : stream.ScalingEvents()) {
    if (e.kind != ScalingEvent::Kind::kMerge) continue;
    ++merges;
    CHECK(e.automatic);
    CHECK(e.bytes_per_second <= 2 * 2'000);
  }
  CHECK(merges >= 1);
  // Every reshard kept the hash key space covered by exactly the open shards.
  kinlet::HashKey next = 0;
  for (const auto& shard : stream.OpenShards()) {
    CHECK(shard->hash_key_range().starting_hash_key == next);
    next = shard->hash_key_range().ending_hash_key + 1;
  }
  CHECK(next == 0);  // wrapped past kMaxHashKey

  SECTION("the metrics carry the log and its counts") {
    auto m = stream.GetMetrics();
    CHECK(m.open_shard_count == 4);
    CHECK(m.scaling_events.size() == stream.ScalingEvents().size());
    CHECK(m.scaling_event_counts.at(static_cast<int>(ScalingEvent::Kind::kMerge)) ==
          static_cast<uint64_t>(merges));
    const std::string text = kinlet::ToPrometheusText(m);
    CHECK_THAT(text, Catch::Matchers::Contains(
                         "kinlet_scaling_events_total{stream=\"autoscaled\",kind=\"hot_key\"} 1"));
    CHECK_THAT(text, Catch::Matchers::Contains("kinlet_open_shards{stream=\"autoscaled\"} 4"));
  }
}

TEST_CASE("An idle on-demand stream scales down when the scaler is run", "[on_demand]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options = ScriptedOptions();
  options.shard_count = 8;  // more than min_shard_count: starts with 8
  options.on_demand.min_shard_count = 2;
  auto stream = TestStream::Create(options, &clock);
  REQUIRE(stream.ok());
  CHECK((*stream)->open_shard_count() == 8);
  clock.Advance(absl::Seconds(59));
  REQUIRE((*stream)->EvaluateOnDemandScaling().ok());
  CHECK((*stream)->open_shard_count() == 8);  // not cold for 60 s yet
  clock.Advance(absl::Seconds(1));
  REQUIRE((*stream)->EvaluateOnDemandScaling().ok());
  CHECK((*stream)->open_shard_count() == 4);
  clock.Advance(absl::Seconds(60));
  REQUIRE((*stream)->EvaluateOnDemandScaling().ok());
  CHECK((*stream)->open_shard_count() == 2);
  clock.Advance(absl::Seconds(600));
  REQUIRE((*stream)->EvaluateOnDemandScaling().ok());
  CHECK((*stream)->open_shard_count() == 2);  // min_shard_count
}

TEST_CASE("UpdateStreamMode switches the mode, keeps the shards, and has AWS's limits",
          "[on_demand]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options = ScriptedOptions();
  options.stream_mode = kinlet::StreamMode::kProvisioned;
  options.shard_count = 2;
  auto created = TestStream::Create(options, &clock);
  REQUIRE(created.ok());
  TestStream& stream = **created;
  CHECK(stream.stream_mode() == kinlet::StreamMode::kProvisioned);
  CHECK(kinlet::IsInvalidArgument(stream.UpdateStreamMode(kinlet::StreamMode::kProvisioned)));
  // Provisioned: hot traffic never reshards.
  Driver load{&stream, &clock};
  load.Run(30, 400);
  CHECK(stream.open_shard_count() == 2);
  REQUIRE(stream.UpdateStreamMode(kinlet::StreamMode::kOnDemand).ok());
  CHECK(stream.open_shard_count() == 2);  // kept; the scaler takes it from here
  CHECK(stream.DescribeStreamSummary()->stream_mode == kinlet::StreamMode::kOnDemand);
  CHECK(stream.DescribeStream()->options.stream_mode == kinlet::StreamMode::kOnDemand);
  load.Run(30, 400);
  CHECK(stream.open_shard_count() >= 4);  // split by puts alone, no explicit call
  REQUIRE(stream.UpdateStreamMode(kinlet::StreamMode::kProvisioned).ok());
  auto third = stream.UpdateStreamMode(kinlet::StreamMode::kOnDemand);
  CHECK(kinlet::IsLimitExceeded(third));
  clock.Advance(absl::Hours(24));
  CHECK(stream.UpdateStreamMode(kinlet::StreamMode::kOnDemand).ok());
  int switches = 0;
  for (const ScalingEvent& e : stream.ScalingEvents()) {
    switches += e.kind == ScalingEvent::Kind::kStreamModeChange;
  }
  CHECK(switches == 3);
}

TEST_CASE("On-demand mode needs the write counters", "[on_demand]") {
  using Uncounted = kinlet::Stream<std::string, kinlet::NoMetricsTraits>;
  kinlet::StreamOptions options;
  options.name = "uncounted";
  options.stream_mode = kinlet::StreamMode::kOnDemand;
  auto refused = Uncounted::Create(options);
  CHECK(kinlet::IsInvalidArgument(refused.status()));
  options.stream_mode = kinlet::StreamMode::kProvisioned;
  auto stream = Uncounted::Create(options);
  REQUIRE(stream.ok());
  CHECK(kinlet::IsInvalidArgument((*stream)->UpdateStreamMode(kinlet::StreamMode::kOnDemand)));
}

TEST_CASE("The on-demand scaler stops at its shard limit and says so once", "[on_demand]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options = ScriptedOptions();
  options.on_demand.max_shard_count = 5;
  auto created = TestStream::Create(options, &clock);
  REQUIRE(created.ok());
  TestStream& stream = **created;
  Driver load{&stream, &clock};
  load.Run(120, 800);  // ~85 kB/s: wants ~10 shards
  CHECK(stream.open_shard_count() == 5);
  int limit_events = 0;
  for (const ScalingEvent& e : stream.ScalingEvents()) {
    if (e.kind != ScalingEvent::Kind::kShardLimitReached) continue;
    ++limit_events;
    CHECK(e.automatic);
    CHECK(e.bytes_per_second > 10'000);
  }
  // One event per hot shard that could not split, not one per evaluation.
  CHECK(limit_events >= 1);
  CHECK(limit_events <= 5);
}
