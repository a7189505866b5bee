// kinlet/on_demand.hpp: on-demand capacity mode: when a stream splits and
// merges its shards by itself.
//
//   kinlet::StreamOptions options;
//   options.name = "telemetry";
//   options.stream_mode = kinlet::StreamMode::kOnDemand;   // starts with 4 shards
//   options.on_demand.evaluation_interval = absl::Seconds(10);
//
// The policy, as AWS describes on-demand mode, made deterministic:
//  - Every evaluation_interval (checked by the first put at or after it, or by
//    Stream::EvaluateOnDemandScaling) the stream measures each open shard's
//    write rate since the last evaluation.
//  - A shard above split_bytes_per_second or split_records_per_second (AWS:
//    500 KB/s) is split at the middle of its hash key range, once per
//    evaluation: every shard keeps double its traffic as headroom.
//  - Unless one partition key alone is above the threshold: splitting cannot
//    spread one key, so the shard is left alone and a kHotKey event names the
//    key (once, until the shard cools down).
//  - The stream keeps at least max(min_shard_count, ceil(2 x peak /
//    shard_write_bytes_per_second)) open shards, where peak is the highest
//    stream write rate seen within peak_window: AWS's "up to double the
//    previous peak" (and 4 MiB/s at the start). Below it, the busiest shards
//    are split.
//  - Two adjacent shards that have both been below the merge thresholds for
//    scale_down_after are merged, down to that floor.
//  - Never beyond max_shard_count open shards (a kShardLimitReached event).
// Every decision is a ScalingEvent (Stream::ScalingEvents, StreamMetrics).
// On-demand mode needs the write counters (Traits::kMetrics true, the default).
//
// Thread safety: plain values and pure functions.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kinlet/errors.hpp"
#include "kinlet/hash_key.hpp"

namespace kinlet {

struct OnDemandOptions {
  // Open shards the stream keeps at least, and starts with: 4 x 1 MiB/s is
  // AWS's starting write capacity of 4 MiB/s.
  int min_shard_count = 4;
  // Open shards the scaler never goes beyond.
  int max_shard_count = 200;
  // How often the scaler measures and decides.
  absl::Duration evaluation_interval = absl::Minutes(1);
  // A shard over either rate is split (AWS: more than 500 KB/s).
  double split_bytes_per_second = 500'000;
  double split_records_per_second = 500;
  // Adjacent shards both under both rates for scale_down_after are merged.
  // Each must be at most half the split rate, so that a merge never makes a
  // shard the next evaluation would split.
  double merge_bytes_per_second = 50'000;
  double merge_records_per_second = 50;
  absl::Duration scale_down_after = absl::Minutes(15);
  // One shard's write capacity, for the double-the-peak floor (Kinesis: 1 MiB/s).
  double shard_write_bytes_per_second = 1 << 20;
  // How long a peak is remembered (AWS: 30 days).
  absl::Duration peak_window = absl::Hours(24 * 30);
  // Records of a hot shard sampled to find its busiest partition key.
  int hot_key_sample_records = 2000;
  // Scaling events kept by the stream (the oldest are dropped).
  int max_scaling_events = 1000;
};

// InvalidArgumentException naming the first bad field.
inline absl::Status ValidateOnDemandOptions(const OnDemandOptions& o) {
  if (o.min_shard_count < 1 || o.max_shard_count < o.min_shard_count) {
    return InvalidArgument("on_demand: need 1 <= min_shard_count <= max_shard_count");
  }
  if (o.evaluation_interval <= absl::ZeroDuration() || o.scale_down_after < absl::ZeroDuration() ||
      o.peak_window <= absl::ZeroDuration()) {
    return InvalidArgument("on_demand: durations must be positive");
  }
  if (!(o.split_bytes_per_second > 0) || !(o.split_records_per_second > 0) ||
      !(o.shard_write_bytes_per_second > 0)) {
    return InvalidArgument("on_demand: split rates and shard capacity must be positive");
  }
  if (!(o.merge_bytes_per_second >= 0 &&
        2 * o.merge_bytes_per_second <= o.split_bytes_per_second) ||
      !(o.merge_records_per_second >= 0 &&
        2 * o.merge_records_per_second <= o.split_records_per_second)) {
    return InvalidArgument("on_demand: merge rates must be within [0, split rate / 2]");
  }
  if (o.hot_key_sample_records < 1 || o.max_scaling_events < 1) {
    return InvalidArgument("on_demand: hot_key_sample_records and max_scaling_events must be >= 1");
  }
  return absl::OkStatus();
}

namespace detail {

// One open shard as the scaler saw it over the last interval.
struct ShardLoad {
  double bytes_per_second = 0;
  double records_per_second = 0;
  // Below the merge thresholds for at least scale_down_after.
  bool cold_long_enough = false;
  // The busiest partition key of the sampled records and its estimated rates
  // (filled only for shards over a split threshold).
  std::string top_key;
  double top_key_bytes_per_second = 0;
  double top_key_records_per_second = 0;
};

// What the scaler does this evaluation; positions index the open shards in
// hash key order.
struct OnDemandPlan {
  std::vector<size_t> splits;
  std::vector<size_t> merges;    // i merges with i + 1
  std::vector<size_t> hot_keys;  // over the threshold because of one key: not split
  std::vector<size_t> limited;   // wanted a split, but the shard limit is reached
  int floor = 0;
};

inline bool OverSplit(const OnDemandOptions& o, double bytes, double records) {
  return bytes > o.split_bytes_per_second || records > o.split_records_per_second;
}

// The decision, a pure function of the loads. `peak_bytes_per_second` is the
// highest stream write rate within peak_window; `shards_creatable` is how many
// more shards the stream may create in total (its max_shard_count).
inline OnDemandPlan PlanOnDemand(const OnDemandOptions& o, const std::vector<ShardLoad>& open,
                                 double peak_bytes_per_second, int64_t shards_creatable) {
  OnDemandPlan plan;
  const int64_t n = static_cast<int64_t>(open.size());
  plan.floor = std::max<int>(
      o.min_shard_count,
      static_cast<int>(std::ceil(2 * peak_bytes_per_second / o.shard_write_bytes_per_second)));
  plan.floor = std::min(plan.floor, o.max_shard_count);
  std::vector<bool> chosen(open.size(), false);
  auto can_split = [&] {
    return n + static_cast<int64_t>(plan.splits.size()) < o.max_shard_count &&
           shards_creatable - 2 * static_cast<int64_t>(plan.splits.size()) >= 2;
  };
  for (size_t i = 0; i < open.size(); ++i) {
    const ShardLoad& s = open[i];
    if (!OverSplit(o, s.bytes_per_second, s.records_per_second)) continue;
    chosen[i] = true;  // split now, or never this round
    if (OverSplit(o, s.top_key_bytes_per_second, s.top_key_records_per_second)) {
      plan.hot_keys.push_back(i);
    } else if (can_split()) {
      plan.splits.push_back(i);
    } else {
      plan.limited.push_back(i);
    }
  }
  // Below the floor: split the busiest remaining shards (one split each; not
  // a hot key's shard, which a split cannot relieve).
  while (n + static_cast<int64_t>(plan.splits.size()) < plan.floor && can_split()) {
    size_t best = open.size();
    for (size_t i = 0; i < open.size(); ++i) {
      if (chosen[i]) continue;
      if (best == open.size() || open[i].bytes_per_second > open[best].bytes_per_second) best = i;
    }
    if (best == open.size()) break;  // every shard split once this round
    chosen[best] = true;
    plan.splits.push_back(best);
  }
  std::sort(plan.splits.begin(), plan.splits.end());
  if (!plan.splits.empty()) return plan;  // scale up or down in one evaluation, not both
  int64_t count = n;
  for (size_t i = 0; i + 1 < open.size() && count - 1 >= plan.floor &&
                     shards_creatable - static_cast<int64_t>(plan.merges.size()) >= 1;) {
    if (open[i].cold_long_enough && open[i + 1].cold_long_enough) {
      plan.merges.push_back(i);
      --count;
      i += 2;
    } else {
      ++i;
    }
  }
  return plan;
}

}  // namespace detail
}  // namespace kinlet
