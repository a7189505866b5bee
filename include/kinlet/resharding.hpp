// kinlet/resharding.hpp: the shapes of resharding and shard listing:
// ListShards's ShardFilter and paging, UpdateShardCount's result, stream
// modes, and the scaling event log every reshard is recorded in.
//
//   auto page = stream->ListShards({.filter = kinlet::ShardFilter::AtLatest()});
//   stream->UpdateShardCount(8, kinlet::ScalingType::kUniformScaling);
//   for (const kinlet::ScalingEvent& e : stream->ScalingEvents()) ...
//
// Thread safety: plain values; not synchronised. The operations themselves are
// Stream methods (stream.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "kinlet/hash_key.hpp"

namespace kinlet {

// How a stream's capacity is managed (Kinesis StreamModeDetails).
enum class StreamMode {
  kProvisioned,  // the user sets the shards (SplitShard, MergeShards, UpdateShardCount)
  kOnDemand      // the stream splits and merges by itself (see on_demand.hpp)
};

constexpr std::string_view StreamModeName(StreamMode m) {
  return m == StreamMode::kOnDemand ? "ON_DEMAND" : "PROVISIONED";
}

// UpdateShardCount's only scaling type: shards of equal size.
enum class ScalingType { kUniformScaling };

struct UpdateShardCountResult {
  std::string stream_name;
  std::string stream_arn;
  int current_shard_count = 0;  // open shards before the call
  int target_shard_count = 0;
};

// Kinesis ShardFilter. Times are compared with millisecond precision.
struct ShardFilter {
  enum class Type {
    kAfterShardId,     // shards with a later id than `shard_id`, within retention
    kAtTrimHorizon,    // shards that were open at the trim horizon
    kFromTrimHorizon,  // every shard within retention (the default)
    kAtLatest,         // the open shards
    kAtTimestamp,      // shards open at `timestamp` (clamped to the trim horizon)
    kFromTimestamp     // shards open at or after `timestamp` (clamped to the trim horizon)
  };
  Type type = Type::kFromTrimHorizon;
  std::string shard_id;  // kAfterShardId
  absl::Time timestamp;  // kAtTimestamp, kFromTimestamp

  static ShardFilter AfterShardId(std::string id) {
    return {Type::kAfterShardId, std::move(id), {}};
  }
  static ShardFilter AtTrimHorizon() { return {Type::kAtTrimHorizon, {}, {}}; }
  static ShardFilter FromTrimHorizon() { return {Type::kFromTrimHorizon, {}, {}}; }
  static ShardFilter AtLatest() { return {Type::kAtLatest, {}, {}}; }
  static ShardFilter AtTimestamp(absl::Time t) { return {Type::kAtTimestamp, {}, t}; }
  static ShardFilter FromTimestamp(absl::Time t) { return {Type::kFromTimestamp, {}, t}; }
};

constexpr std::string_view ShardFilterTypeName(ShardFilter::Type t) {
  switch (t) {
    case ShardFilter::Type::kAfterShardId:
      return "AFTER_SHARD_ID";
    case ShardFilter::Type::kAtTrimHorizon:
      return "AT_TRIM_HORIZON";
    case ShardFilter::Type::kFromTrimHorizon:
      return "FROM_TRIM_HORIZON";
    case ShardFilter::Type::kAtLatest:
      return "AT_LATEST";
    case ShardFilter::Type::kAtTimestamp:
      return "AT_TIMESTAMP";
    case ShardFilter::Type::kFromTimestamp:
      return "FROM_TIMESTAMP";
  }
  return "";
}

// ListShards input. As Kinesis: `next_token` (from a previous page, valid for
// 5 minutes) excludes every other field; `exclusive_start_shard_id` lists the
// shards after that id; max_results is 1..10000, of which at most 1000 are
// returned per page.
struct ListShardsRequest {
  std::optional<ShardFilter> filter;
  std::string exclusive_start_shard_id;
  std::string next_token;
  int max_results = 1000;
};

// What Stream::ScalingEvents() records: every reshard, mode switch and on-demand
// decision, with the reason for it.
struct ScalingEvent {
  enum class Kind {
    kSplit,              // parent_shard_ids[0] -> child_shard_ids[0..1]
    kMerge,              // parent_shard_ids[0..1] -> child_shard_ids[0]
    kUpdateShardCount,   // a UNIFORM_SCALING call (its splits and merges follow)
    kStreamModeChange,   // UpdateStreamMode
    kHotKey,             // on-demand: one partition key alone saturates a shard; not split
    kShardLimitReached,  // on-demand: a split was wanted but the shard limit is reached
  };
  Kind kind = Kind::kSplit;
  absl::Time time;
  bool automatic = false;  // decided by the on-demand scaler (not a user call)
  std::vector<std::string> parent_shard_ids;
  std::vector<std::string> child_shard_ids;
  // On-demand decisions: the shard's (or the pair's) measured write rate.
  double bytes_per_second = 0;
  double records_per_second = 0;
  std::string partition_key;  // kHotKey: the key
  int open_shard_count = 0;   // after the event
  std::string reason;         // human-readable
};

inline constexpr int kScalingEventKinds = 6;

constexpr std::string_view ScalingEventKindName(ScalingEvent::Kind k) {
  switch (k) {
    case ScalingEvent::Kind::kSplit:
      return "split";
    case ScalingEvent::Kind::kMerge:
      return "merge";
    case ScalingEvent::Kind::kUpdateShardCount:
      return "update_shard_count";
    case ScalingEvent::Kind::kStreamModeChange:
      return "stream_mode_change";
    case ScalingEvent::Kind::kHotKey:
      return "hot_key";
    case ScalingEvent::Kind::kShardLimitReached:
      return "shard_limit_reached";
  }
  return "";
}

namespace detail {

// UNIFORM_SCALING's plan, in counts: with the open shards starting at
// `current_starts` (sorted) and the target's uniform ranges starting at
// `target_starts`, every target boundary that is not a shard start is split
// (two new shards each), then the pieces inside each target range are merged
// pairwise (one new shard per merge). Returns the number of shards created.
inline int64_t UniformScalingShardsCreated(const std::vector<HashKey>& current_starts,
                                           const std::vector<HashKey>& target_starts) {
  int64_t splits = 0;
  size_t i = 0;
  for (HashKey t : target_starts) {
    while (i < current_starts.size() && current_starts[i] < t) ++i;
    if (i == current_starts.size() || current_starts[i] != t) ++splits;
  }
  const int64_t pieces = static_cast<int64_t>(current_starts.size()) + splits;
  const int64_t merges = pieces - static_cast<int64_t>(target_starts.size());
  return 2 * splits + merges;
}

}  // namespace detail
}  // namespace kinlet
