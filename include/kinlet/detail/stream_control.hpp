// kinlet/detail/stream_control.hpp: the bodies of Stream's control plane:
// construction, resharding (SplitShard, MergeShards, UpdateShardCount), the
// on-demand scaler's evaluation, stream mode, retention, encryption, tags and
// the reclamation of expired shards. stream.hpp declares and documents each
// of them (errors, thread safety); this file only defines them, so that
// stream.hpp reads as the stream's interface and data path. Every function
// here runs under the stream's control lock (shards_.control_mu_), taken
// here or by its caller as its declaration states; none is on the put path
// except the claimed, rare ScaleOnDemandSlow. Included by stream.hpp.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kinlet/stream.hpp"

namespace kinlet {

template <RecordPayload Payload, StreamTraits Traits>
absl::Status Stream<Payload, Traits>::AddTagsToStream(
    const std::map<std::string, std::string>& tags) {
  if (deleted()) return context_.NotFound();
  if (tags.empty() || tags.size() > 50) {
    return InvalidArgument("Between 1 and 50 tags must be given.");
  }
  for (const auto& [key, value] : tags) {
    if (key.empty() || key.size() > 128 || value.size() > 256) {
      return InvalidArgument(absl::StrCat("Tag key '", key,
                                          "' or its value is invalid: keys have 1 to 128 "
                                          "characters, values at most 256."));
    }
  }
  detail::MutexLock lock(&shards_.control_mu_);
  {
    detail::MutexLock e(&encryption_mu_);
    size_t total = tags_.size();
    for (const auto& [key, value] : tags) total += tags_.contains(key) ? 0 : 1;
    if (total > 50) {
      return LimitExceeded(absl::StrCat("Failed to add tags to stream ", context_.name,
                                        " under account ", context_.account_id,
                                        " because a given stream cannot have more than 50 "
                                        "tags."));
    }
    for (const auto& [key, value] : tags) tags_[key] = value;
  }
  return SaveLocked();
}

template <RecordPayload Payload, StreamTraits Traits>
absl::Status Stream<Payload, Traits>::RemoveTagsFromStream(std::span<const std::string> keys) {
  if (deleted()) return context_.NotFound();
  detail::MutexLock lock(&shards_.control_mu_);
  {
    detail::MutexLock e(&encryption_mu_);
    for (const std::string& key : keys) tags_.erase(key);
  }
  return SaveLocked();
}

template <RecordPayload Payload, StreamTraits Traits>
absl::Status Stream<Payload, Traits>::SplitShard(std::string_view shard_to_split,
                                                 HashKey new_starting_hash_key) {
  absl::StatusOr<ShardHandle> found = GetShard(shard_to_split);
  if (!found.ok()) return found.status();
  ShardType* parent = found->get();
  detail::MutexLock lock(&shards_.control_mu_);
  const int64_t now_ms = context_.NowMs();
  if (absl::Status s = CheckReshardableLocked("SplitShard", now_ms); !s.ok()) return s;
  if (!parent->is_open()) return checks_.AlreadyResharded(parent->shard_id());
  if (absl::Status s =
          checks_.SplitKey(parent->shard_id(), parent->hash_key_range(), new_starting_hash_key);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckShardLimitsLocked(/*created=*/2, /*open_after=*/open_shard_count() + 1);
      !s.ok()) {
    return s;
  }
  SplitLocked(parent, new_starting_hash_key, now_ms, ScalingEvent{});
  MarkUpdatedLocked(now_ms);
  ReclaimLocked(now_ms);
  return absl::OkStatus();
}

template <RecordPayload Payload, StreamTraits Traits>
absl::Status Stream<Payload, Traits>::MergeShards(std::string_view shard_to_merge,
                                                  std::string_view adjacent_shard_to_merge) {
  absl::StatusOr<ShardHandle> first_handle = GetShard(shard_to_merge);
  if (!first_handle.ok()) return first_handle.status();
  absl::StatusOr<ShardHandle> second_handle = GetShard(adjacent_shard_to_merge);
  if (!second_handle.ok()) return second_handle.status();
  ShardType* const first = first_handle->get();
  ShardType* const second = second_handle->get();
  detail::MutexLock lock(&shards_.control_mu_);
  const int64_t now_ms = context_.NowMs();
  if (absl::Status s = CheckReshardableLocked("MergeShards", now_ms); !s.ok()) return s;
  for (ShardType* shard : {first, second}) {
    if (!shard->is_open()) return checks_.AlreadyResharded(shard->shard_id());
  }
  if (absl::Status s = checks_.Adjacent(first->shard_id(), first->hash_key_range(),
                                        second->shard_id(), second->hash_key_range());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckShardLimitsLocked(/*created=*/1, /*open_after=*/0); !s.ok()) return s;
  MergeLocked(first, second, now_ms, ScalingEvent{});
  MarkUpdatedLocked(now_ms);
  ReclaimLocked(now_ms);
  return absl::OkStatus();
}

template <RecordPayload Payload, StreamTraits Traits>
absl::StatusOr<UpdateShardCountResult> Stream<Payload, Traits>::UpdateShardCount(
    int target_shard_count, ScalingType scaling_type) {
  (void)scaling_type;  // UNIFORM_SCALING is the only type
  if (deleted()) return context_.NotFound();
  if (absl::Status s = checks_.TargetShardCount(target_shard_count); !s.ok()) return s;
  detail::MutexLock lock(&shards_.control_mu_);
  const int64_t now_ms = context_.NowMs();
  if (absl::Status s = CheckReshardableLocked("UpdateShardCount", now_ms); !s.ok()) return s;
  const int current = open_shard_count();
  const int64_t target = target_shard_count;
  if (absl::Status s = checks_.ScalingFactor(current, target); !s.ok()) return s;
  if (absl::Status s = checks_.DailyLimit("been scaled", shard_count_updates_.Prune(now_ms),
                                          options_.max_shard_count_updates_per_day);
      !s.ok()) {
    return s;
  }
  std::vector<HashKey> target_starts;
  for (const HashKeyRange& r : InitialHashKeyRanges(target_shard_count)) {
    target_starts.push_back(r.starting_hash_key);
  }
  const int64_t created =
      detail::UniformScalingShardsCreated(shards_.routing()->starts, target_starts);
  if (absl::Status s = CheckShardLimitsLocked(created, target); !s.ok()) return s;
  shard_count_updates_.Add(now_ms);
  ScalingEvent event;
  event.kind = ScalingEvent::Kind::kUpdateShardCount;
  event.reason = absl::StrCat("UpdateShardCount from ", current, " to ", target,
                              " open shards (UNIFORM_SCALING)");
  LogEvent(std::move(event), now_ms);
  const detail::UniformScalingPlan plan =
      detail::PlanUniformScaling(shards_.routing()->starts, target_starts);
  for (HashKey boundary : plan.splits) {
    SplitLocked(Route(boundary), boundary, now_ms, ScalingEvent{});
  }
  for (const auto& [low, high] : plan.merges) {
    MergeLocked(Route(low), Route(high), now_ms, ScalingEvent{});
  }
  MarkUpdatedLocked(now_ms);
  ReclaimLocked(now_ms);
  return UpdateShardCountResult{context_.name, arn_, current, target_shard_count};
}

template <RecordPayload Payload, StreamTraits Traits>
absl::Status Stream<Payload, Traits>::UpdateStreamMode(StreamMode mode) {
  if (deleted()) return context_.NotFound();
  detail::MutexLock lock(&shards_.control_mu_);
  const int64_t now_ms = context_.NowMs();
  if (now_ms < updating_until_ms_.load(std::memory_order_relaxed)) return checks_.Updating();
  if (mode == stream_mode()) return checks_.AlreadyInMode(mode);
  if (mode == StreamMode::kOnDemand && !MetricsEnabled<Traits>()) {
    return detail::ReshardChecks::NoMetrics();
  }
  if (absl::Status s = checks_.DailyLimit("switched mode", mode_updates_.Prune(now_ms),
                                          options_.max_stream_mode_updates_per_day);
      !s.ok()) {
    return s;
  }
  mode_updates_.Add(now_ms);
  SetModeLocked(mode, now_ms);
  ScalingEvent event;
  event.kind = ScalingEvent::Kind::kStreamModeChange;
  event.reason = absl::StrCat("stream mode is now ", detail::ToAbsl(StreamModeName(mode)));
  LogEvent(std::move(event), now_ms);
  MarkUpdatedLocked(now_ms);
  return SaveLocked();
}

template <RecordPayload Payload, StreamTraits Traits>
absl::Status Stream<Payload, Traits>::EvaluateOnDemandScaling() {
  if (deleted()) return context_.NotFound();
  detail::MutexLock lock(&shards_.control_mu_);
  const int64_t now_ms = context_.NowMs();
  if (stream_mode() == StreamMode::kOnDemand) {
    EvaluateOnDemandLocked(now_ms);
    next_scaling_ms_.store(now_ms + OnDemandIntervalMs(), std::memory_order_relaxed);
  }
  ReclaimLocked(now_ms);
  return absl::OkStatus();
}

template <RecordPayload Payload, StreamTraits Traits>
size_t Stream<Payload, Traits>::TrimExpired() {
  const int64_t now_ms = context_.NowMs();
  const int64_t expire_before = context_.ExpireBeforeMs(now_ms);
  size_t dropped = 0;
  for (const ShardHandle& shard : AllShards()) {
    typename ShardType::WriterGuard lock(&shard->write_mu_);
    dropped += shard->log_.TrimExpired(expire_before);
    if (shard->disk_ != nullptr) shard->disk_->DropExpired(expire_before);
  }
  detail::MutexLock lock(&shards_.control_mu_);
  ReclaimLocked(now_ms);
  return dropped;
}

template <RecordPayload Payload, StreamTraits Traits>
Stream<Payload, Traits>::Stream(StreamOptions options, Clock* clock,
                                std::unique_ptr<detail::StreamStore> store,
                                const detail::StoredStream* restore,
                                std::vector<detail::StreamStore::OpenedShard>* restored_shards)
    : options_(std::move(options)),
      context_owner_(std::make_shared<detail::StreamContext<Clock>>()),
      context_(*context_owner_),
      arn_(absl::StrCat("arn:aws:kinesis:", options_.region, ":", options_.account_id, ":stream/",
                        options_.name)),
      store_(std::move(store)),
      shards_(context_owner_, options_.shard_capacity_records,
              options_.EffectiveShardCapacityBytes()),
      checks_(options_),
      consumers_(options_, arn_),
      events_(options_.on_demand.max_scaling_events) {
  context_.name = options_.name;
  context_.account_id = options_.account_id;
  context_.tag = restore != nullptr ? restore->tag : detail::NextStreamTag();
  context_.clock = clock;
  context_.iterator_ttl_ms = absl::ToInt64Milliseconds(options_.iterator_ttl);
  context_.max_get_records_bytes = options_.max_get_records_bytes;
  context_.max_get_records_limit = options_.max_get_records_limit;
  context_.full_policy = options_.full_policy;
  context_.limits = options_.limits;
  context_.measure_latency = options_.measure_get_records_latency;
  context_.trimmed_reads = options_.trimmed_reads;
  context_.retention_ms.store(absl::ToInt64Milliseconds(options_.retention_period),
                              std::memory_order_relaxed);
  created_at_ = clock->Now();
  created_ms_ = context_.NowMs();
  auto table = std::make_unique<RoutingTable>();
  detail::MutexLock lock(&shards_.control_mu_);
  if (store_ != nullptr) {
    detail::DurableStreamOps<Stream>::AttachLocked(*this);
    if (restore != nullptr) {
      if (options_.faults.enabled()) {
        faults_ = std::make_unique<detail::FaultState>(options_.faults);
        context_.faults.store(faults_.get(), std::memory_order_release);
      }
      detail::DurableStreamOps<Stream>::RestoreLocked(*this, *restore, *restored_shards);
      return;
    }
  }
  int shard_count = options_.shard_count;
  if (options_.stream_mode == StreamMode::kOnDemand) {
    shard_count = std::max(shard_count, options_.on_demand.min_shard_count);
  }
  if (options_.faults.enabled()) {
    faults_ = std::make_unique<detail::FaultState>(options_.faults);
    context_.faults.store(faults_.get(), std::memory_order_release);
  }
  for (const HashKeyRange& range : InitialHashKeyRanges(shard_count)) {
    ShardType* shard = AddShardLocked(range, std::nullopt, std::nullopt, created_ms_);
    table->starts.push_back(range.starting_hash_key);
    table->shards.push_back(shard);
  }
  shards_.PublishRoutingLocked(std::move(table));
  SetModeLocked(options_.stream_mode, created_ms_);
}

template <RecordPayload Payload, StreamTraits Traits>
void Stream<Payload, Traits>::ReclaimLocked(int64_t now_ms) {
  const std::vector<uint32_t> deleted = shards_.DeleteExpiredLocked(now_ms);
  if (!deleted.empty()) {
    for (uint32_t index : deleted) scaler_.Forget(index);
    consumers_.ForgetShards(deleted);
    if (store_ != nullptr) {
      for (uint32_t index : deleted) store_->RemoveShard(index);
    }
  }
  shards_.FreeRetiredLocked();
}

template <RecordPayload Payload, StreamTraits Traits>
auto Stream<Payload, Traits>::SplitLocked(ShardType* parent, HashKey k, int64_t now_ms,
                                          ScalingEvent event) -> std::pair<ShardType*, ShardType*> {
  scaler_.Track(shards_.count_locked(), now_ms);
  scaler_.Track(shards_.count_locked() + 1, now_ms);
  const auto [low, high] = shards_.SplitLocked(parent, k, now_ms);
  event.kind = ScalingEvent::Kind::kSplit;
  event.parent_shard_ids = {parent->shard_id()};
  event.child_shard_ids = {low->shard_id(), high->shard_id()};
  LogEvent(std::move(event), now_ms);
  return {low, high};
}

template <RecordPayload Payload, StreamTraits Traits>
auto Stream<Payload, Traits>::MergeLocked(ShardType* parent, ShardType* adjacent, int64_t now_ms,
                                          ScalingEvent event) -> ShardType* {
  scaler_.Track(shards_.count_locked(), now_ms);
  ShardType* child = shards_.MergeLocked(parent, adjacent, now_ms);
  event.kind = ScalingEvent::Kind::kMerge;
  event.parent_shard_ids = {parent->shard_id(), adjacent->shard_id()};
  event.child_shard_ids = {child->shard_id()};
  LogEvent(std::move(event), now_ms);
  return child;
}

template <RecordPayload Payload, StreamTraits Traits>
void Stream<Payload, Traits>::SetModeLocked(StreamMode mode, int64_t now_ms) {
  mode_.store(mode, std::memory_order_relaxed);
  if (mode != StreamMode::kOnDemand) {
    next_scaling_ms_.store(kNever, std::memory_order_relaxed);
    return;
  }
  scaler_.Reset(shards_.routing()->shards, shards_.TotalIncomingBytesLocked(), now_ms);
  next_scaling_ms_.store(now_ms + OnDemandIntervalMs(), std::memory_order_relaxed);
}

template <RecordPayload Payload, StreamTraits Traits>
void Stream<Payload, Traits>::ScaleOnDemandSlow(int64_t now_ms, int64_t due) {
  if (!next_scaling_ms_.compare_exchange_strong(due, now_ms + OnDemandIntervalMs(),
                                                std::memory_order_relaxed)) {
    return;  // another put claimed this evaluation
  }
  detail::MutexLock lock(&shards_.control_mu_);
  if (stream_mode() != StreamMode::kOnDemand || deleted()) return;
  EvaluateOnDemandLocked(now_ms);
  ReclaimLocked(now_ms);
}

template <RecordPayload Payload, StreamTraits Traits>
void Stream<Payload, Traits>::EvaluateOnDemandLocked(int64_t now_ms) {
  const std::vector<ShardType*> open = shards_.routing()->shards;
  const std::vector<detail::ShardLoad> loads =
      scaler_.Measure(options_.on_demand, open, now_ms, context_.tag);
  typename Scaler::Decision decision = scaler_.Decide(
      options_, open, loads, shards_.TotalIncomingBytesLocked(),
      options_.max_shard_count - static_cast<int64_t>(shards_.held_count_locked()), now_ms);
  for (ScalingEvent& e : decision.reports) LogEvent(std::move(e), now_ms);
  for (typename Scaler::Split& split : decision.splits) {
    SplitLocked(split.shard, split.at, now_ms, std::move(split.event));
  }
  for (typename Scaler::Merge& merge : decision.merges) {
    MergeLocked(merge.low, merge.high, now_ms, std::move(merge.event));
  }
  scaler_.Finish(shards_.routing()->shards, decision, now_ms);
}

template <RecordPayload Payload, StreamTraits Traits>
absl::Status Stream<Payload, Traits>::ChangeRetention(absl::Duration period, bool increase) {
  if (deleted()) return context_.NotFound();
  if (period <= absl::ZeroDuration()) {
    return InvalidArgument("Retention period must be positive.");
  }
  detail::MutexLock lock(&shards_.control_mu_);
  const int64_t current = context_.retention_ms.load(std::memory_order_relaxed);
  const int64_t wanted = absl::ToInt64Milliseconds(period);
  if (increase && wanted <= current) {
    return InvalidArgument(absl::StrCat(
        "Requested retention period (", absl::FormatDuration(period), ") for stream ",
        context_.name, " can not be shorter than or equal to the existing retention period (",
        absl::FormatDuration(absl::Milliseconds(current)),
        "). Use DecreaseStreamRetentionPeriod API."));
  }
  if (!increase && wanted >= current) {
    return InvalidArgument(absl::StrCat(
        "Requested retention period (", absl::FormatDuration(period), ") for stream ",
        context_.name, " can not be longer than or equal to the existing retention period (",
        absl::FormatDuration(absl::Milliseconds(current)),
        "). Use IncreaseStreamRetentionPeriod API."));
  }
  if (increase) {
    // What has expired stays expired (AWS never resurrects it).
    const int64_t now_ms = context_.NowMs();
    context_.expired_floor_ms.store(context_.ExpireBeforeMs(now_ms), std::memory_order_relaxed);
  }
  context_.retention_ms.store(wanted, std::memory_order_relaxed);
  ReclaimLocked(context_.NowMs());
  return SaveLocked();
}

template <RecordPayload Payload, StreamTraits Traits>
absl::Status Stream<Payload, Traits>::ChangeEncryption(EncryptionType type, std::string_view key_id,
                                                       bool start) {
  if (deleted()) return context_.NotFound();
  if (type != EncryptionType::kKms) return InvalidArgument("Encryption type must be KMS.");
  if (key_id.empty() || key_id.size() > 2048) {
    return ValidationError(
        "1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member "
        "must have length less than or equal to 2048 and greater than or equal to 1");
  }
  detail::MutexLock lock(&shards_.control_mu_);
  if (store_ != nullptr) {
    if (absl::Status s = detail::DurableStreamOps<Stream>::SetEncryptionLocked(
            *this, start ? std::string(key_id) : std::string());
        !s.ok()) {
      return s;
    }
  }
  {
    detail::MutexLock e(&encryption_mu_);
    encryption_type_ = start ? EncryptionType::kKms : EncryptionType::kNone;
    key_id_ = start ? std::string(key_id) : std::string();
  }
  return SaveLocked();
}

}  // namespace kinlet
