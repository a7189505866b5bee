// kinlet/consumer.hpp: the reader a user would otherwise write by hand.
//
// Consumer<Payload, Traits> follows one shard, some shards or every shard of a
// stream from a starting position and hands back batches, one shard at a time
// in round-robin order. It keeps its position per shard (LastSequenceNumber,
// Checkpoints) so that a later consumer resumes with AFTER_SEQUENCE_NUMBER
// (ConsumerOptions::resume_after), renews expired iterators by itself, follows
// lineage (a child shard is read only after all its parents are read to their
// end) and handles trimmed data per its TrimmedPolicy.
//
// Thread safety: a Consumer is not thread-safe: one thread polls it. Any number
// of consumers may read one stream at once.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/stream.hpp"

namespace kinlet {

enum class TrimmedPolicy {
  kReport,            // Poll returns TrimmedDataAccessException; call SeekToTrimHorizon
  kSkipToTrimHorizon  // continue at the trim horizon and count what was skipped
};

struct ConsumerOptions {
  // Where to start in shards without a resume_after entry.
  IteratorPosition start = IteratorPosition::TrimHorizon();
  // Shards to follow; empty means every shard of the stream (from the shards
  // without parents, following lineage).
  std::vector<std::string> shard_ids;
  // Checkpoints: shard id -> last processed sequence number. Those shards
  // start AFTER_SEQUENCE_NUMBER.
  absl::flat_hash_map<std::string, SequenceNumber> resume_after;
  // Records per batch, 1..10000.
  int batch_limit = 1000;
  TrimmedPolicy on_trimmed = TrimmedPolicy::kReport;
  // Enhanced fan-out: the name or ARN of a registered stream consumer. The
  // consumer then reads with SubscribeToShard (its own read budget per shard,
  // records pushed as they arrive) instead of GetRecords, resubscribes when a
  // subscription's lifetime ends, and follows lineage the same way. Empty:
  // polling with GetRecords.
  std::string fan_out_consumer;
  // False: a shard read to its end is dropped without following its children
  // (a ConsumerGroup, whose leases decide who reads the children, reads one
  // shard per Consumer this way). The batch that ends a shard says so.
  bool follow_lineage = true;
};

// Every page of ListShards(request), in shard order (parents before their
// children). Errors: those of ListShards. Thread-safe as ListShards.
template <typename StreamType>
absl::StatusOr<std::vector<ShardDescription>> ListAllShards(const StreamType& stream,
                                                            ListShardsRequest request = {}) {
  std::vector<ShardDescription> shards;
  for (;;) {
    absl::StatusOr<ListShardsResult> page = stream.ListShards(request);
    if (!page.ok()) return page.status();
    for (ShardDescription& d : page->shards) shards.push_back(std::move(d));
    if (page->next_token.empty()) return shards;
    request = ListShardsRequest{};
    request.next_token = page->next_token;
  }
}

template <typename Payload>
struct ConsumerBatch {
  std::string_view shard_id;  // the shard of every record in `page`
  GetRecordsResult<Payload> page;
  // Records skipped because they were trimmed (TrimmedPolicy::kSkipToTrimHorizon).
  uint64_t trimmed_records_skipped = 0;
  // The shard was read to its end (closed by a reshard): this batch holds its
  // last records, if any; later Polls never return it again.
  bool shard_ended = false;

  const std::vector<Record<Payload>>& records() const { return page.records; }
};

template <RecordPayload Payload, StreamTraits Traits = DefaultStreamTraits>
class Consumer {
 public:
  using StreamType = Stream<Payload, Traits>;
  using ShardType = Shard<Payload, Traits>;

  // Creates a consumer of `stream` (which must outlive it). Errors:
  // InvalidArgumentException for batch_limit outside 1..10000;
  // ResourceNotFoundException for an unknown shard id or a deleted stream;
  // the errors of GetShardIterator for the start position.
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(StreamType* stream,
                                                          ConsumerOptions options) {
    if (options.batch_limit < 1 || options.batch_limit > 10000) {
      return InvalidArgument("batch_limit must be between 1 and 10000");
    }
    std::unique_ptr<Consumer> consumer(new Consumer(stream, std::move(options)));
    std::vector<typename StreamType::ShardHandle> start;
    if (consumer->options_.shard_ids.empty()) {
      absl::StatusOr<std::vector<ShardDescription>> shards =
          StartingShards(stream, consumer->options_.start);
      if (!shards.ok()) return shards.status();
      for (const ShardDescription& d : *shards) start.push_back(*stream->GetShard(d.shard_id));
    } else {
      for (const std::string& id : consumer->options_.shard_ids) {
        absl::StatusOr<typename StreamType::ShardHandle> shard = stream->GetShard(id);
        if (!shard.ok()) return shard.status();
        start.push_back(*shard);
      }
    }
    for (const auto& shard : start) {
      absl::Status s = consumer->Follow(shard);
      if (!s.ok()) return s;
    }
    return consumer;
  }

  // Fills `batch` with the next records of the next shard (round robin) that
  // has any; leaves batch->records() empty when every followed shard is caught
  // up (or throttled: a shard over its read limits is skipped this round).
  // Reuse one batch: polling then allocates nothing in steady state.
  // Errors: TrimmedDataAccessException (TrimmedPolicy::kReport; the consumer
  // stays where it was), ResourceNotFoundException once the stream is deleted.
  absl::Status Poll(ConsumerBatch<Payload>* batch) {
    batch->trimmed_records_skipped = 0;
    batch->shard_ended = false;
    batch->shard_id = {};
    detail::RecordBuffer<Payload>(&batch->page).Finish();  // no stale records, whatever follows
    for (size_t tried = 0; tried < active_.size(); ++tried) {
      const size_t at = (cursor_ + tried) % active_.size();
      ShardState& state = active_[at];
      absl::Status s = ReadShard(state, batch);
      if (!s.ok()) return s;
      if (state.finished) {
        batch->shard_id = state.shard->shard_id();
        batch->shard_ended = true;
        FinishShard(at);
        cursor_ = active_.empty() ? 0 : at % active_.size();
        return absl::OkStatus();  // may hold the closed shard's last records
      }
      if (!batch->page.records.empty()) {
        cursor_ = (at + 1) % active_.size();
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

  // The last sequence number delivered from `shard_id`, if any.
  std::optional<SequenceNumber> LastSequenceNumber(std::string_view shard_id) const {
    auto it = last_delivered_.find(detail::ToAbsl(shard_id));
    if (it == last_delivered_.end()) return std::nullopt;
    return it->second;
  }
  // Every shard's last delivered sequence number: pass as resume_after to
  // continue after them.
  const absl::flat_hash_map<std::string, SequenceNumber>& Checkpoints() const {
    return last_delivered_;
  }

  // Moves the consumer of `shard_id` to its trim horizon and returns the
  // number of records skipped. ResourceNotFoundException if not followed.
  absl::StatusOr<uint64_t> SeekToTrimHorizon(std::string_view shard_id) {
    for (ShardState& state : active_) {
      if (state.shard->shard_id() == shard_id) return SkipToTrimHorizon(state);
    }
    return ResourceNotFound(
        absl::StrCat("Shard ", detail::ToAbsl(shard_id), " is not followed by this consumer"));
  }

  // Shards currently followed (not finished).
  std::vector<std::string> FollowedShards() const {
    std::vector<std::string> ids;
    for (const ShardState& s : active_) ids.push_back(s.shard->shard_id());
    return ids;
  }
  // Records skipped over trimmed data since creation.
  uint64_t trimmed_records_skipped() const { return skipped_total_; }
  // GetRecords calls refused by the shards' read limits since creation (the
  // consumer moves on to the next shard and retries on a later Poll).
  uint64_t throttled_reads() const { return throttled_reads_; }

  // The shards a whole-stream consumer starts with, as the KCL picks them: the
  // shards open at the start position (the trim horizon, now for LATEST, or
  // the timestamp), minus any whose parent is among them (a reshard at that
  // very millisecond): their children follow by lineage.
  static absl::StatusOr<std::vector<ShardDescription>> StartingShards(
      StreamType* stream, const IteratorPosition& start) {
    ListShardsRequest request;
    request.filter = ShardFilter::AtTrimHorizon();
    if (start.type == ShardIteratorType::kLatest) request.filter = ShardFilter::AtLatest();
    if (start.type == ShardIteratorType::kAtTimestamp) {
      request.filter = ShardFilter::AtTimestamp(start.timestamp);
    }
    absl::StatusOr<std::vector<ShardDescription>> listed = ListAllShards(*stream, request);
    if (!listed.ok()) return listed.status();
    std::vector<ShardDescription>& shards = *listed;
    absl::flat_hash_set<std::string> ids;
    for (const ShardDescription& d : shards) ids.insert(d.shard_id);
    std::vector<ShardDescription> roots;
    for (ShardDescription& d : shards) {
      const bool parent_listed =
          (d.parent_shard_id && ids.contains(*d.parent_shard_id)) ||
          (d.adjacent_parent_shard_id && ids.contains(*d.adjacent_parent_shard_id));
      if (!parent_listed) roots.push_back(std::move(d));
    }
    return roots;
  }

 private:
  struct ShardState {
    typename StreamType::ShardHandle shard;
    ShardIterator iterator;
    bool finished = false;
    // Fan-out mode: the live subscription and the next position it delivers.
    std::unique_ptr<Subscription<Payload, Traits>> subscription;
    IteratorPosition start;
  };

  Consumer(StreamType* stream, ConsumerOptions options)
      : stream_(stream), options_(std::move(options)) {}

  absl::Status Follow(typename StreamType::ShardHandle shard) {
    IteratorPosition position = options_.start;
    if (auto it = options_.resume_after.find(shard->shard_id());
        it != options_.resume_after.end()) {
      position = IteratorPosition::AfterSequenceNumber(it->second);
      last_delivered_[shard->shard_id()] = it->second;
    }
    if (!options_.fan_out_consumer.empty()) {
      ShardState state{shard, ShardIterator(), false, nullptr, position};
      if (absl::Status s = Subscribe(state); !s.ok()) return s;
      active_.push_back(std::move(state));
      return absl::OkStatus();
    }
    absl::StatusOr<ShardIterator> iterator = shard->GetShardIterator(position);
    if (!iterator.ok()) return iterator.status();
    active_.push_back(ShardState{shard, *iterator, false, nullptr, {}});
    return absl::OkStatus();
  }

  absl::Status Subscribe(ShardState& state) {
    auto sub =
        stream_->SubscribeToShard(options_.fan_out_consumer, state.shard->shard_id(), state.start);
    if (!sub.ok()) return sub.status();
    state.subscription = *std::move(sub);
    return absl::OkStatus();
  }

  // Fan-out mode's ReadShard: the next event of the shard's subscription,
  // without waiting.
  absl::Status ReadSubscription(ShardState& state, ConsumerBatch<Payload>* batch) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      absl::Status s = state.subscription->Next(&event_, absl::ZeroDuration());
      if (s.ok()) {
        std::swap(batch->page, event_.page);  // hands over the records, keeps both buffers
        batch->shard_id = state.shard->shard_id();
        if (!batch->page.records.empty()) {
          const SequenceNumber last = batch->page.records.back().sequence_number;
          last_delivered_[state.shard->shard_id()] = last;
          state.start = IteratorPosition::AfterSequenceNumber(last);
        }
        if (event_.end_of_shard) state.finished = true;
        return absl::OkStatus();
      }
      const SubscriptionEnd end = state.subscription->end();
      if (end == SubscriptionEnd::kLifetimeElapsed) {
        if (absl::Status again = Subscribe(state); !again.ok()) return again;
        continue;
      }
      if (end == SubscriptionEnd::kDataTrimmed &&
          options_.on_trimmed == TrimmedPolicy::kSkipToTrimHorizon) {
        absl::StatusOr<uint64_t> skipped = SkipToTrimHorizon(state);
        if (!skipped.ok()) return skipped.status();
        batch->trimmed_records_skipped += *skipped;
        continue;
      }
      return s;
    }
    return absl::OkStatus();
  }

  absl::Status ReadShard(ShardState& state, ConsumerBatch<Payload>* batch) {
    if (state.subscription) return ReadSubscription(state, batch);
    for (int attempt = 0; attempt < 3; ++attempt) {
      absl::Status s = state.shard->GetRecords(state.iterator, options_.batch_limit, &batch->page);
      if (s.ok()) {
        batch->shard_id = state.shard->shard_id();
        if (!batch->page.records.empty()) {
          last_delivered_[state.shard->shard_id()] = batch->page.records.back().sequence_number;
        }
        if (batch->page.next_shard_iterator) {
          state.iterator = *batch->page.next_shard_iterator;
        } else {
          state.finished = true;
        }
        return absl::OkStatus();
      }
      if (IsExpiredIterator(s)) {
        absl::Status renewed = Renew(state);
        if (!renewed.ok()) return renewed;
        continue;
      }
      if (IsProvisionedThroughputExceeded(s)) {
        // The shard's read limits are spent: nothing from it this round.
        ++throttled_reads_;
        return absl::OkStatus();
      }
      if (IsTrimmedDataAccess(s) && options_.on_trimmed == TrimmedPolicy::kSkipToTrimHorizon) {
        absl::StatusOr<uint64_t> skipped = SkipToTrimHorizon(state);
        if (!skipped.ok()) return skipped.status();
        batch->trimmed_records_skipped += *skipped;
        continue;
      }
      return s;
    }
    return absl::OkStatus();
  }

  // A fresh iterator at the same position (iterators expire; positions don't).
  absl::Status Renew(ShardState& state) {
    const uint64_t position = state.iterator.position();
    IteratorPosition at =
        position == 0 ? IteratorPosition::TrimHorizon()
                      : IteratorPosition::AfterSequenceNumber(state.shard->Sequence(position - 1));
    absl::StatusOr<ShardIterator> iterator = state.shard->GetShardIterator(at);
    if (!iterator.ok()) return iterator.status();
    if (position == 0 && iterator->position() != 0) {
      // Position 0 was trimmed: keep pointing at it so the policy sees it.
      iterator = ShardIterator::Issue(iterator->stream_tag(), iterator->shard_index(), 0,
                                      absl::ToUnixMillis(iterator->issued_at()));
    }
    state.iterator = *iterator;
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> SkipToTrimHorizon(ShardState& state) {
    if (state.subscription) {
      // Positions: the subscription was at `from`; it restarts at the horizon.
      const uint64_t from = state.start.type == ShardIteratorType::kAfterSequenceNumber
                                ? state.start.sequence_number.position() + 1
                                : 0;
      const uint64_t horizon = state.shard->TrimHorizon(NowMillis(*stream_->clock()));
      state.start = IteratorPosition::TrimHorizon();
      if (absl::Status again = Subscribe(state); !again.ok()) return again;
      const uint64_t skipped = horizon > from ? horizon - from : 0;
      skipped_total_ += skipped;
      return skipped;
    }
    absl::StatusOr<ShardIterator> iterator =
        state.shard->GetShardIterator(IteratorPosition::TrimHorizon());
    if (!iterator.ok()) return iterator.status();
    const uint64_t skipped = iterator->position() > state.iterator.position()
                                 ? iterator->position() - state.iterator.position()
                                 : 0;
    state.iterator = *iterator;
    skipped_total_ += skipped;
    return skipped;
  }

  // Drops a shard read to its end and starts its children whose parents are
  // all finished (both parents of a merge before the child).
  void FinishShard(size_t at) {
    typename StreamType::ShardHandle done = active_[at].shard;
    finished_.insert(done->shard_id());
    active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(at));
    if (!options_.follow_lineage) return;
    // Children come from the stream's shard list, so lineage is followed even
    // for shards created after this consumer.
    for (const auto& child : stream_->AllShards()) {
      const auto& p = child->parent_shard_id();
      const auto& a = child->adjacent_parent_shard_id();
      const bool is_child = (p && *p == done->shard_id()) || (a && *a == done->shard_id());
      if (!is_child || started_.contains(child->shard_id())) continue;
      const bool parents_done = (!p || finished_.contains(*p)) && (!a || finished_.contains(*a));
      if (!parents_done) continue;
      started_.insert(child->shard_id());
      IteratorPosition saved = options_.start;
      options_.start = IteratorPosition::TrimHorizon();  // a child is read from its start
      (void)Follow(child);
      options_.start = saved;
    }
  }

  StreamType* const stream_;
  ConsumerOptions options_;
  std::vector<ShardState> active_;
  size_t cursor_ = 0;
  absl::flat_hash_map<std::string, SequenceNumber> last_delivered_;
  absl::flat_hash_set<std::string> finished_;
  absl::flat_hash_set<std::string> started_;
  SubscribeToShardEvent<Payload> event_;  // fan-out mode's reused event
  uint64_t skipped_total_ = 0;
  uint64_t throttled_reads_ = 0;
};

}  // namespace kinlet
