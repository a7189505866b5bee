// kinlet/detail/reshard_planner.hpp: the decisions behind a stream's
// resharding calls, apart from the stream that applies them:
//  - ReshardChecks: the preconditions of SplitShard, MergeShards,
//    UpdateShardCount and UpdateStreamMode, with AWS's error messages;
//  - PlanUniformScaling: UpdateShardCount's splits and merges;
//  - DayWindow: the rolling 24-hour windows of the per-day limits;
//  - ScalingEventLog: the log every reshard and on-demand decision goes to;
//  - OnDemandScaler: what on-demand mode remembers between evaluations, and
//    one evaluation's decision (the policy itself is on_demand.hpp's
//    PlanOnDemand), which the stream applies under its control lock.
//
// Thread safety: ScalingEventLog has its own lock (never held across a
// reshard, so GetMetrics never waits for one). The others are not
// synchronised: the stream keeps them under its control lock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/shard_set.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/on_demand.hpp"
#include "kinlet/resharding.hpp"
#include "kinlet/shard.hpp"
#include "kinlet/stream_options.hpp"

namespace kinlet::detail {

// The errors of the resharding calls, for the stream `options` describes
// (which must outlive this).
class ReshardChecks {
 public:
  explicit ReshardChecks(const StreamOptions& options) : options_(options) {}

  absl::Status Updating() const {
    return ResourceInUse(absl::StrCat("Stream ", options_.name, " under account ",
                                      options_.account_id,
                                      " not ACTIVE, instead in state UPDATING"));
  }
  static absl::Status NoMetrics() {
    return InvalidArgument(
        "On-demand mode measures write rates with the stream's metrics: it needs "
        "Traits::kMetrics = true.");
  }
  absl::Status OnDemandUnsupported(std::string_view operation) const {
    return ValidationError(absl::StrCat(
        detail::ToAbsl(operation), " is not supported for stream ", options_.name,
        " under account ", options_.account_id,
        " because it is in ON_DEMAND mode. Switch it to PROVISIONED with UpdateStreamMode."));
  }
  absl::Status AlreadyResharded(std::string_view shard_id) const {
    return InvalidArgument(absl::StrCat("Shard ", detail::ToAbsl(shard_id), " in stream ",
                                        options_.name, " under account ", options_.account_id,
                                        " has already been merged or split, and thus is not "
                                        "eligible for merging or splitting."));
  }

  // SplitShard's key rule: S + 1 < k < E for the shard's [S, E].
  absl::Status SplitKey(std::string_view shard_id, HashKeyRange range, HashKey k) const {
    if (range.starting_hash_key + 1 < k && k < range.ending_hash_key) return absl::OkStatus();
    return InvalidArgument(absl::StrCat(
        "NewStartingHashKey ", HashKeyToString(k), " used in SplitShard() on shard ",
        detail::ToAbsl(shard_id), " in stream ", options_.name, " under account ",
        options_.account_id, " is not both greater than one plus the shard's StartingHashKey ",
        HashKeyToString(range.starting_hash_key), " and less than the shard's EndingHashKey ",
        HashKeyToString(range.ending_hash_key), "."));
  }

  // MergeShards's rule: two different shards whose ranges meet.
  absl::Status Adjacent(std::string_view first_id, HashKeyRange a, std::string_view second_id,
                        HashKeyRange b) const {
    const bool adjacent =
        first_id != second_id &&
        ((a.ending_hash_key != kMaxHashKey && a.ending_hash_key + 1 == b.starting_hash_key) ||
         (b.ending_hash_key != kMaxHashKey && b.ending_hash_key + 1 == a.starting_hash_key));
    if (adjacent) return absl::OkStatus();
    return InvalidArgument(absl::StrCat("Shards ", detail::ToAbsl(first_id), " and ",
                                        detail::ToAbsl(second_id), " in stream ", options_.name,
                                        " under account ", options_.account_id,
                                        " are not an adjacent pair of shards eligible for "
                                        "merging"));
  }

  // `held`: shards held now; `indices_taken`: shard ids used so far (of
  // `max_indices`); `created`: shards the operation adds; `open_after`: open
  // shards after it.
  absl::Status ShardLimits(size_t held, uint32_t indices_taken, uint64_t max_indices,
                           int64_t created, int64_t open_after) const {
    if (static_cast<int64_t>(held) + created > options_.max_shard_count) {
      return LimitExceeded(absl::StrCat(
          "This request would exceed the shard limit of ", options_.max_shard_count, " for stream ",
          options_.name,
          " (shards held: open, and closed ones until their records pass retention)."));
    }
    if (static_cast<uint64_t>(indices_taken) + created > max_indices) {
      return LimitExceeded(
          absl::StrCat("Stream ", options_.name, " has used every shard id (", max_indices, ")."));
    }
    if (open_after > options_.max_open_shard_count) {
      return LimitExceeded(absl::StrCat("This request would exceed the open shard limit of ",
                                        options_.max_open_shard_count, " for stream ",
                                        options_.name, "."));
    }
    return absl::OkStatus();
  }

  // UpdateShardCount's target rules (the part that needs no shard table).
  static absl::Status TargetShardCount(int target) {
    if (target >= 1) return absl::OkStatus();
    return ValidationError(absl::StrCat(
        "1 validation error detected: Value '", target,
        "' at 'targetShardCount' failed to satisfy constraint: Member must have value greater "
        "than or equal to 1"));
  }
  static absl::Status ScalingFactor(int current, int64_t target) {
    if (target > 2 * int64_t{current}) {
      return LimitExceeded(absl::StrCat(
          "UpdateShardCount cannot scale up over double your current open shard count. Current "
          "open shard count: ",
          current, " Target shard count: ", target));
    }
    if (2 * target < current) {
      return LimitExceeded(absl::StrCat(
          "UpdateShardCount cannot scale down below half your current open shard count. Current "
          "open shard count: ",
          current, " Target shard count: ", target));
    }
    return absl::OkStatus();
  }
  // `what`: "been scaled" or "switched mode"; `done`: calls within the window.
  absl::Status DailyLimit(std::string_view what, size_t done, int64_t limit) const {
    if (static_cast<int64_t>(done) < limit) return absl::OkStatus();
    return LimitExceeded(absl::StrCat(
        "Stream ", options_.name, " under account ", options_.account_id, " has already ",
        detail::ToAbsl(what), " ", done, " times in the last 24 hours: the limit is ", limit, "."));
  }
  absl::Status AlreadyInMode(StreamMode mode) const {
    return InvalidArgument(absl::StrCat("Stream ", options_.name, " under account ",
                                        options_.account_id, " is already in ",
                                        detail::ToAbsl(StreamModeName(mode)), " mode."));
  }

 private:
  const StreamOptions& options_;
};

// UpdateShardCount's UNIFORM_SCALING plan, applied in order by the stream.
struct UniformScalingPlan {
  // Split the open shard that holds each key, at that key.
  std::vector<HashKey> splits;
  // Then merge the open shard starting at .first with the adjacent one
  // starting at .second (.first is the parent, .second the adjacent parent).
  std::vector<std::pair<HashKey, HashKey>> merges;

  int64_t shards_created() const {
    return 2 * static_cast<int64_t>(splits.size()) + static_cast<int64_t>(merges.size());
  }
};

// With the open shards starting at `current_starts` and the target's uniform
// ranges starting at `target_starts` (both sorted, both from 0): a split at
// every target boundary inside a shard, then, inside each target range, the
// piece at its start absorbs the next piece, one merge after another. Each
// is a real reshard with lineage, so short-lived shards appear, as on AWS.
// (Its shards_created() is UniformScalingShardsCreated's count.)
inline UniformScalingPlan PlanUniformScaling(const std::vector<HashKey>& current_starts,
                                             const std::vector<HashKey>& target_starts) {
  UniformScalingPlan plan;
  for (HashKey boundary : target_starts) {
    if (!std::binary_search(current_starts.begin(), current_starts.end(), boundary)) {
      plan.splits.push_back(boundary);
    }
  }
  std::vector<HashKey> pieces;  // the starts after the splits
  std::set_union(current_starts.begin(), current_starts.end(), target_starts.begin(),
                 target_starts.end(), std::back_inserter(pieces));
  size_t p = 0;
  for (size_t t = 0; t < target_starts.size(); ++t) {
    const HashKey start = target_starts[t];
    while (p < pieces.size() && pieces[p] <= start) ++p;
    while (p < pieces.size() &&
           (t + 1 == target_starts.size() || pieces[p] < target_starts[t + 1])) {
      plan.merges.emplace_back(start, pieces[p]);
      ++p;
    }
  }
  return plan;
}

// The times of the calls within the last 24 hours (a rolling window).
class DayWindow {
 public:
  static constexpr int64_t kDayMs = 24 * 60 * 60 * 1000;

  // Drops the entries older than a day; returns how many remain.
  size_t Prune(int64_t now_ms) {
    while (!times_.empty() && times_.front() <= now_ms - kDayMs) times_.pop_front();
    return times_.size();
  }
  void Add(int64_t now_ms) { times_.push_back(now_ms); }

 private:
  std::deque<int64_t> times_;
};

// The scaling event log: the newest `max_events` events, and counts by kind
// of every event ever logged. Thread-safe (its own lock).
class ScalingEventLog {
 public:
  explicit ScalingEventLog(int max_events) : max_events_(static_cast<size_t>(max_events)) {}

  void Add(ScalingEvent event) {
    detail::MutexLock lock(&mu_);
    ++counts_[static_cast<int>(event.kind)];
    events_.push_back(std::move(event));
    while (events_.size() > max_events_) events_.pop_front();
  }

  // Oldest first.
  std::vector<ScalingEvent> Events() const {
    detail::MutexLock lock(&mu_);
    return std::vector<ScalingEvent>(events_.begin(), events_.end());
  }

  // The events and the counts (by ScalingEvent::Kind), copied at one instant.
  void Copy(std::vector<ScalingEvent>* events, std::vector<uint64_t>* counts) const {
    detail::MutexLock lock(&mu_);
    events->assign(events_.begin(), events_.end());
    counts->assign(counts_, counts_ + kScalingEventKinds);
  }

 private:
  const size_t max_events_;
  mutable detail::Mutex mu_;
  std::deque<ScalingEvent> events_ ABSL_GUARDED_BY(mu_);
  uint64_t counts_[kScalingEventKinds] ABSL_GUARDED_BY(mu_) = {};
};

// On-demand mode's measurements and decisions. Every evaluation interval the
// stream calls Measure, then Decide, applies the decision (logs the reports,
// then splits, then merges, in order), then calls Finish with the open
// shards after it.
template <RecordPayload Payload, StreamTraits Traits>
class OnDemandScaler {
 public:
  using ShardType = Shard<Payload, Traits>;
  using Shards = ShardSet<Payload, Traits>;

  struct Split {
    ShardType* shard;
    HashKey at;  // the new starting hash key (the middle of its range)
    ScalingEvent event;
  };
  struct Merge {
    ShardType* low;
    ShardType* high;
    ScalingEvent event;
  };
  struct Decision {
    std::vector<ScalingEvent> reports;  // hot keys, then shard limits: log these first
    std::vector<Split> splits;          // then apply these in order
    std::vector<Merge> merges;          // then these
    uint64_t total_bytes = 0;           // for Finish
  };

  // A new shard: its first interval starts at `now_ms`.
  void Track(uint32_t index, int64_t now_ms) {
    LoadSnapshot snap;
    snap.at_ms = now_ms;
    loads_[index] = snap;
  }
  // A deleted shard.
  void Forget(uint32_t index) { loads_.erase(index); }

  // Starts measuring afresh (the stream switched to on-demand mode).
  void Reset(const std::vector<ShardType*>& open, uint64_t total_bytes, int64_t now_ms) {
    for (ShardType* shard : open) {
      loads_[shard->index()] = LoadSnapshot{};
      SnapshotLoad(shard, now_ms);
    }
    peaks_.clear();
    last_total_bytes_ = total_bytes;
    last_evaluation_ms_ = now_ms;
  }

  // One evaluation of the on-demand policy (see on_demand.hpp), first half:
  // each open shard's write rates since the last evaluation (and, for one
  // over a split threshold, its busiest partition key). `open`: the open
  // shards in hash key order; `stream_tag`: for reading their rings.
  std::vector<detail::ShardLoad> Measure(const OnDemandOptions& o,
                                         const std::vector<ShardType*>& open, int64_t now_ms,
                                         uint32_t stream_tag) {
    std::vector<detail::ShardLoad> loads(open.size());
    const int64_t scale_down_ms = absl::ToInt64Milliseconds(o.scale_down_after);
    for (size_t i = 0; i < open.size(); ++i) {
      ShardType* shard = open[i];
      LoadSnapshot& snap = loads_[shard->index()];
      detail::ShardLoad& load = loads[i];
      const uint64_t bytes = Shards::IncomingBytes(shard);
      const uint64_t records = Shards::IncomingRecords(shard);
      const double seconds = static_cast<double>(now_ms - snap.at_ms) / 1000.0;
      if (seconds > 0) {
        load.bytes_per_second = static_cast<double>(bytes - snap.bytes) / seconds;
        load.records_per_second = static_cast<double>(records - snap.records) / seconds;
      }
      const bool cold = load.bytes_per_second <= o.merge_bytes_per_second &&
                        load.records_per_second <= o.merge_records_per_second;
      if (!cold) {
        snap.cold_since_ms = -1;
      } else if (snap.cold_since_ms < 0) {
        snap.cold_since_ms = snap.at_ms;  // cold over the whole interval
      }
      load.cold_long_enough = cold && now_ms - snap.cold_since_ms >= scale_down_ms;
      if (detail::OverSplit(o, load.bytes_per_second, load.records_per_second)) {
        const HashKeyRange& r = shard->hash_key_range();
        if (r.starting_hash_key == r.ending_hash_key) {
          // A range of one hash key cannot be split at all.
          load.top_key_bytes_per_second = load.bytes_per_second;
          load.top_key_records_per_second = load.records_per_second;
        } else {
          SampleTopKey(o, shard, snap.position, stream_tag, &load);
        }
      } else {
        snap.hot_key_reported = false;
        snap.limit_reported = false;
      }
    }
    return loads;
  }

  // Second half: the decision for `loads` (Measure's), with `total` the bytes
  // ever written to the stream and `shards_creatable` the shards the stream
  // may still create.
  Decision Decide(const StreamOptions& options, const std::vector<ShardType*>& open,
                  const std::vector<detail::ShardLoad>& loads, uint64_t total,
                  int64_t shards_creatable, int64_t now_ms) {
    const OnDemandOptions& o = options.on_demand;
    Decision decision;
    decision.total_bytes = total;
    const double elapsed = static_cast<double>(now_ms - last_evaluation_ms_) / 1000.0;
    if (elapsed > 0) {
      peaks_.emplace_back(now_ms, static_cast<double>(total - last_total_bytes_) / elapsed);
    }
    const int64_t window_ms = absl::ToInt64Milliseconds(o.peak_window);
    while (!peaks_.empty() && peaks_.front().first < now_ms - window_ms) peaks_.pop_front();
    double peak = 0;
    for (const auto& [at, rate] : peaks_) peak = std::max(peak, rate);
    OnDemandOptions bounded = o;
    bounded.max_shard_count = std::min(o.max_shard_count, options.max_open_shard_count);
    const detail::OnDemandPlan plan = detail::PlanOnDemand(bounded, loads, peak, shards_creatable);
    for (size_t i : plan.hot_keys) {
      LoadSnapshot& snap = loads_[open[i]->index()];
      if (snap.hot_key_reported) continue;
      snap.hot_key_reported = true;
      ScalingEvent e = MeasuredEvent(ScalingEvent::Kind::kHotKey, open[i], loads[i]);
      e.partition_key = loads[i].top_key;
      e.reason = absl::StrCat("partition key '", e.partition_key, "' alone writes ",
                              static_cast<int64_t>(loads[i].top_key_bytes_per_second), " B/s, ",
                              static_cast<int64_t>(loads[i].top_key_records_per_second),
                              " records/s to ", open[i]->shard_id(),
                              ", over the split threshold: splitting cannot spread one key, so "
                              "the shard is not split");
      decision.reports.push_back(std::move(e));
    }
    for (size_t i : plan.limited) {
      LoadSnapshot& snap = loads_[open[i]->index()];
      if (snap.limit_reported) continue;
      snap.limit_reported = true;
      ScalingEvent e = MeasuredEvent(ScalingEvent::Kind::kShardLimitReached, open[i], loads[i]);
      e.reason = absl::StrCat(open[i]->shard_id(),
                              " is over the split threshold, but the stream "
                              "is at its shard limit");
      decision.reports.push_back(std::move(e));
    }
    for (size_t i : plan.splits) {
      ScalingEvent e = MeasuredEvent(ScalingEvent::Kind::kSplit, open[i], loads[i]);
      e.reason = detail::OverSplit(o, loads[i].bytes_per_second, loads[i].records_per_second)
                     ? "write rate over the split threshold"
                     : absl::StrCat("below the capacity floor of ", plan.floor,
                                    " open shards (double the peak of ", static_cast<int64_t>(peak),
                                    " B/s)");
      const HashKeyRange& r = open[i]->hash_key_range();
      decision.splits.push_back(
          Split{open[i], r.starting_hash_key + (r.ending_hash_key - r.starting_hash_key) / 2 + 1,
                std::move(e)});
    }
    for (size_t i : plan.merges) {
      ScalingEvent e = MeasuredEvent(ScalingEvent::Kind::kMerge, open[i], loads[i]);
      e.bytes_per_second += loads[i + 1].bytes_per_second;
      e.records_per_second += loads[i + 1].records_per_second;
      e.reason = "both shards cold for scale_down_after";
      decision.merges.push_back(Merge{open[i], open[i + 1], std::move(e)});
    }
    return decision;
  }

  // Ends an evaluation: `open` (the open shards after the decision) start
  // their next interval; the cold and reported flags are kept.
  void Finish(const std::vector<ShardType*>& open, const Decision& decision, int64_t now_ms) {
    for (ShardType* shard : open) SnapshotLoad(shard, now_ms);
    last_total_bytes_ = decision.total_bytes;
    last_evaluation_ms_ = now_ms;
  }

 private:
  // What the scaler remembers of a shard between evaluations (by shard index).
  struct LoadSnapshot {
    uint64_t bytes = 0;     // IncomingBytes at the last evaluation
    uint64_t records = 0;   // IncomingRecords at the last evaluation
    uint64_t position = 0;  // the shard's end at the last evaluation
    int64_t at_ms = 0;
    int64_t cold_since_ms = -1;  // below the merge rates since (-1: not cold)
    bool hot_key_reported = false;
    bool limit_reported = false;
  };

  // Records `shard`'s counters and end as the start of its next interval.
  void SnapshotLoad(ShardType* shard, int64_t now_ms) {
    LoadSnapshot& snap = loads_[shard->index()];
    snap.bytes = Shards::IncomingBytes(shard);
    snap.records = Shards::IncomingRecords(shard);
    snap.position = shard->log().End();
    snap.at_ms = now_ms;
  }

  template <typename P>
  static double PayloadBytes(const P& p) {
    if constexpr (requires { p.size(); }) {
      return static_cast<double>(p.size());
    } else {
      return static_cast<double>(sizeof(P));
    }
  }

  // Samples the records `shard` took since `from` (its last
  // hot_key_sample_records at most) for its busiest partition key by bytes.
  static void SampleTopKey(const OnDemandOptions& o, const ShardType* shard, uint64_t from,
                           uint32_t stream_tag, detail::ShardLoad* load) {
    const RingLog<Payload>& log = shard->log();
    const uint64_t end = log.End();
    const uint64_t n = static_cast<uint64_t>(o.hot_key_sample_records);
    const uint64_t at = std::max({from, end > n ? end - n : uint64_t{0}, log.Begin()});
    if (at >= end) return;
    GetRecordsResult<Payload> page;
    auto read = log.Read(at, end - at, std::numeric_limits<size_t>::max(), stream_tag,
                         shard->index(), &page);
    if (read.trimmed || page.records.empty()) return;
    absl::flat_hash_map<std::string_view, std::pair<double, double>> by_key;
    double total_bytes = 0;
    for (const Record<Payload>& r : page.records) {
      const double bytes = static_cast<double>(r.partition_key.size()) + PayloadBytes(r.data);
      auto& entry = by_key[r.partition_key];
      entry.first += bytes;
      entry.second += 1;
      total_bytes += bytes;
    }
    auto top = by_key.begin();
    for (auto it = by_key.begin(); it != by_key.end(); ++it) {
      if (it->second.first > top->second.first) top = it;
    }
    load->top_key = std::string(top->first);
    load->top_key_bytes_per_second =
        total_bytes > 0 ? load->bytes_per_second * top->second.first / total_bytes : 0;
    load->top_key_records_per_second =
        load->records_per_second * top->second.second / static_cast<double>(page.records.size());
  }

  static ScalingEvent MeasuredEvent(ScalingEvent::Kind kind, const ShardType* shard,
                                    const detail::ShardLoad& load) {
    ScalingEvent e;
    e.kind = kind;
    e.automatic = true;
    e.parent_shard_ids = {shard->shard_id()};
    e.bytes_per_second = load.bytes_per_second;
    e.records_per_second = load.records_per_second;
    return e;
  }

  // By shard index; node-based: references stay valid while shards are added.
  absl::node_hash_map<uint32_t, LoadSnapshot> loads_;
  // (time, stream write rate) of the evaluations within peak_window.
  std::deque<std::pair<int64_t, double>> peaks_;
  uint64_t last_total_bytes_ = 0;
  int64_t last_evaluation_ms_ = 0;
};

}  // namespace kinlet::detail
