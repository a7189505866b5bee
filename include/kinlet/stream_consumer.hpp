// kinlet/stream_consumer.hpp: a consumer of any KinesisStream
// (stream_concept.hpp) and what every consumer shares: ConsumerOptions,
// ConsumerBatch, TrimmedPolicy.
//
// StreamConsumer<S> follows one shard, some shards or every shard of a stream
// and hands back batches, one shard at a time in round-robin order, with the
// contract described in consumer.hpp (positions, checkpoints, iterator
// renewal, lineage, trimmed data, open backoff). The primary template, here,
// reaches the stream only through its Kinesis operations, so it reads a
// kinlet::remote::RemoteStream as well as an in-process stream; consumer.hpp
// specializes it for kinlet's own Stream, which it reads shard by shard.
//
// Lifetime and thread safety: as consumer.hpp says for Consumer.
#pragma once

#include <algorithm>
#include <atomic>
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
#include "kinlet/record.hpp"
#include "kinlet/resharding.hpp"
#include "kinlet/retry.hpp"
#include "kinlet/shard_iterator.hpp"
#include "kinlet/stream_concept.hpp"
#include "kinlet/stream_options.hpp"

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
  // The backoff between attempts to open a shard refused with a retryable
  // error (see the top of this file): initial_backoff, max_backoff and
  // jitter_seed are used (the seed is mixed with the consumer and the shard);
  // a refused shard is tried until it opens, so max_attempts and deadline are
  // not used.
  RetryOptions open_retry = {};
};

// One Poll's result. `Page` is the stream's page type (S::Page).
template <typename Payload, typename Page = GetRecordsResult<Payload>>
struct ConsumerBatch {
  std::string_view shard_id;  // the shard of every record in `page`
  Page page;
  // Records of `shard_id` skipped because they were trimmed: exactly the
  // records between the consumer's position and where it continued
  // (TrimmedPolicy::kSkipToTrimHorizon; or records a stream that continues
  // from the trim horizon skipped by itself), in both reading modes.
  uint64_t trimmed_records_skipped = 0;
  // The shard was read to its end (closed by a reshard): this batch holds its
  // last records, if any; later Polls never return it again.
  bool shard_ended = false;

  const std::vector<Record<Payload>>& records() const { return page.records; }
};

namespace detail {

// The shards a whole-stream consumer starts with, as the KCL picks them: the
// shards open at the start position (the trim horizon, now for LATEST, or
// the timestamp), minus any whose parent is among them (a reshard at that
// very millisecond): their children follow by lineage. Errors: ListShards's.
template <typename S>
absl::StatusOr<std::vector<ShardDescription>> StartingShards(const S& stream,
                                                             const IteratorPosition& start) {
  ListShardsRequest request;
  request.filter = ShardFilter::AtTrimHorizon();
  if (start.type == ShardIteratorType::kLatest) request.filter = ShardFilter::AtLatest();
  if (start.type == ShardIteratorType::kAtTimestamp) {
    request.filter = ShardFilter::AtTimestamp(start.timestamp);
  }
  absl::StatusOr<std::vector<ShardDescription>> listed = ListAllShards(stream, request);
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

}  // namespace detail

// A consumer of any KinesisStream (stream_concept.hpp). The primary template
// is the generic one (below); kinlet's in-process Stream has its own
// specialization, which reads shards directly (exact trimmed-record counts,
// positions without sequence number arithmetic, zero-copy fan-out).
template <typename S>
class StreamConsumer;

// The generic consumer: any KinesisStream, through its Kinesis operations
// only (ListShards, GetShardIterator, GetRecords; SubscribeToShard for a
// FanOutStream). The same options, Poll contract, checkpoints, open backoff
// and lineage rules as the in-process consumer, with these differences, all
// because Kinesis's sequence numbers are opaque (not contiguous positions):
//  - a position is the last delivered sequence number: an expired iterator is
//    renewed, and a subscription resumed, AFTER_SEQUENCE_NUMBER it;
//  - trimmed data: with kSkipToTrimHorizon the shard continues at its trim
//    horizon, but the number of records skipped is unknown and counted as 0;
//  - a parent shard is "done" for lineage when this consumer read it to its
//    end or ListShards no longer lists it (past retention); a closed parent
//    this consumer does not follow holds its child back until then;
//  - a shard's children come from the last page (childShards), or from
//    ListShards when the endpoint does not send them;
//  - SHARD_END checkpoints are kept until ListShards no longer lists the shard.
// Lifetime and thread safety: as the in-process consumer (one polling thread;
// the stream, unless shared-owned, outlives the consumer).
template <typename S>
class StreamConsumer {
  static_assert(KinesisStream<S>, "StreamConsumer needs a KinesisStream (stream_concept.hpp)");

 public:
  using StreamType = S;
  using Payload = StreamPayloadT<S>;
  using Page = typename S::Page;
  using Iterator = StreamIteratorT<S>;
  using Batch = ConsumerBatch<Payload, Page>;

  // As the in-process Create. Also InvalidArgumentException for fan-out
  // options on a stream without SubscribeToShard.
  static absl::StatusOr<std::unique_ptr<StreamConsumer>> Create(S* stream,
                                                                ConsumerOptions options) {
    if (stream == nullptr) return InvalidArgument("a stream is required");
    if (options.batch_limit < 1 || options.batch_limit > 10000) {
      return InvalidArgument("batch_limit must be between 1 and 10000");
    }
    if constexpr (!FanOutStream<S>) {
      if (!options.fan_out_consumer.empty()) {
        return InvalidArgument("this stream does not offer SubscribeToShard");
      }
    }
    std::unique_ptr<StreamConsumer> consumer(new StreamConsumer(stream, std::move(options)));
    std::vector<ShardDescription> start;
    if (consumer->options_.shard_ids.empty()) {
      absl::StatusOr<std::vector<ShardDescription>> shards =
          detail::StartingShards(*stream, consumer->options_.start);
      if (!shards.ok()) return shards.status();
      start = *std::move(shards);
    } else {
      absl::StatusOr<std::vector<ShardDescription>> all = ListAllShards(*stream);
      if (!all.ok()) return all.status();
      for (const std::string& id : consumer->options_.shard_ids) {
        auto it = std::find_if(all->begin(), all->end(),
                               [&](const ShardDescription& d) { return d.shard_id == id; });
        if (it == all->end()) {
          return ResourceNotFound(absl::StrCat("Shard ", id, " in stream ",
                                               detail::ToAbsl(std::string_view(stream->name())),
                                               " does not exist"));
        }
        start.push_back(*it);
      }
    }
    for (const ShardDescription& d : start) {
      absl::Status s = consumer->Follow(d.shard_id, d.sequence_number_range.ending_sequence_number,
                                        consumer->options_.start, /*open_now=*/true);
      if (!s.ok()) return s;
    }
    return consumer;
  }

  // See the in-process Poll. batch->shard_id is valid until the next Poll.
  // Errors: as there (ResourceNotFoundException comes from the stream's
  // calls once it is deleted).
  absl::Status Poll(Batch* batch) {
    batch->trimmed_records_skipped = 0;
    batch->shard_ended = false;
    batch->shard_id = {};
    ClearPage(batch);
    if (detail::KnownDeleted(*stream_)) {
      return ResourceNotFound(absl::StrCat("Stream ", std::string(stream_->name()), " not found."));
    }
    const int64_t now_ms = NowMs();
    for (size_t tried = 0; tried < active_.size(); ++tried) {
      const size_t at = (cursor_ + tried) % active_.size();
      ShardState& state = *active_[at];
      if (!state.open && !state.finished) {
        if (now_ms < state.retry_at_ms) continue;
        if (absl::Status s = Open(state); !s.ok()) return s;
        if (!state.open) continue;
      }
      if (!state.finished) {
        if (absl::Status s = Read(state, batch); !s.ok()) return s;
      } else {
        ClearPage(batch);
      }
      if (state.finished) {
        ended_shard_id_ = state.shard_id;  // outlives the state FinishShard drops
        batch->shard_id = ended_shard_id_;
        batch->shard_ended = true;
        if (absl::Status s = FinishShard(at); !s.ok()) return s;
        cursor_ = active_.empty() ? 0 : at % active_.size();
        return absl::OkStatus();
      }
      if (!batch->page.records.empty() || batch->trimmed_records_skipped != 0) {
        cursor_ = (at + 1) % active_.size();
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

  std::optional<SequenceNumber> LastSequenceNumber(std::string_view shard_id) const {
    auto it = last_delivered_.find(detail::ToAbsl(shard_id));
    if (it == last_delivered_.end()) return std::nullopt;
    return it->second;
  }
  const absl::flat_hash_map<std::string, SequenceNumber>& Checkpoints() const {
    return last_delivered_;
  }

  // Moves the consumer of `shard_id` to its trim horizon. Returns 0: the
  // number of records skipped is unknown here (see above).
  absl::StatusOr<uint64_t> SeekToTrimHorizon(std::string_view shard_id) {
    for (auto& state : active_) {
      if (state->shard_id != shard_id) continue;
      if (state->finished) return uint64_t{0};
      ToTrimHorizon(*state);
      if (absl::Status s = Open(*state); !s.ok()) return s;
      return uint64_t{0};
    }
    return ResourceNotFound(
        absl::StrCat("Shard ", detail::ToAbsl(shard_id), " is not followed by this consumer"));
  }

  std::vector<std::string> FollowedShards() const {
    std::vector<std::string> ids;
    for (const auto& s : active_) ids.push_back(s->shard_id);
    return ids;
  }
  uint64_t trimmed_records_skipped() const { return 0; }
  uint64_t throttled_reads() const { return throttled_reads_; }
  uint64_t open_retries() const { return open_retries_; }
  size_t tracked_shard_count() const {
    return active_.size() + finished_.size() + last_delivered_.size();
  }

  static absl::StatusOr<std::vector<ShardDescription>> StartingShards(
      S* stream, const IteratorPosition& start) {
    return detail::StartingShards(*stream, start);
  }

 private:
  struct NoSubscription {
    explicit operator bool() const { return false; }
  };
  template <typename T, bool = FanOutStream<T>>
  struct FanOutTypes {
    using Handle = NoSubscription;
    using Event = NoSubscription;
  };
  template <typename T>
  struct FanOutTypes<T, true> {
    using Handle = std::remove_cvref_t<decltype(*std::declval<T&>().SubscribeToShard(
        std::string_view(), std::string_view(), IteratorPosition()))>;
    using Event = typename T::Event;
  };
  using SubscriptionHandle = typename FanOutTypes<S>::Handle;

  struct ShardState {
    std::string shard_id;
    uint32_t index = 0;  // for the jitter seed
    IteratorPosition start;
    std::optional<SequenceNumber> last;  // delivered (or resumed after)
    bool open = false;
    bool finished = false;
    int64_t retry_at_ms = 0;
    Backoff backoff{RetryOptions{}};
    Iterator iterator{};
    SubscriptionHandle subscription;
    std::vector<ChildShard> children;  // reported at its end
  };

  struct Finished {
    std::vector<std::string> waiting_children;
    bool checkpoint_kept = false;
  };

  StreamConsumer(S* stream, ConsumerOptions options)
      : owner_(detail::SharedOwner(stream)),
        stream_(stream),
        options_(std::move(options)),
        salt_(NextSalt()) {}

  static uint64_t NextSalt() {
    static std::atomic<uint64_t> consumers{0};
    return (consumers.fetch_add(1, std::memory_order_relaxed) + 1) * 0xD1B54A32D192ED03ull;
  }

  int64_t NowMs() const { return NowMillis(*stream_->clock()); }

  static void ClearPage(Batch* batch) {
    batch->page.records.clear();
    batch->page.next_shard_iterator.reset();
    batch->page.child_shards.clear();
  }

  static bool IsRetryableOpenError(const absl::Status& s) {
    return IsProvisionedThroughputExceeded(s) || IsResourceInUse(s) || IsInternalFailure(s) ||
           IsLimitExceeded(s);
  }

  Backoff NewBackoff(uint32_t index) const {
    RetryOptions retry = options_.open_retry;
    retry.jitter_seed ^= salt_ ^ ((uint64_t{index} + 1) * 0x9E3779B97F4A7C15ull);
    return Backoff(retry);
  }

  // Where `state` continues: after its last record, else its start.
  static IteratorPosition PositionOf(const ShardState& state) {
    return state.last ? IteratorPosition::AfterSequenceNumber(*state.last) : state.start;
  }

  absl::Status Follow(const std::string& shard_id, const std::optional<SequenceNumber>& ending,
                      const IteratorPosition& start, bool open_now) {
    auto state = std::make_unique<ShardState>();
    state->shard_id = shard_id;
    state->index = next_index_++;
    state->start = start;
    state->backoff = NewBackoff(state->index);
    if (auto it = options_.resume_after.find(shard_id); it != options_.resume_after.end()) {
      const SequenceNumber checkpoint = it->second;
      options_.resume_after.erase(it);
      last_delivered_[shard_id] = checkpoint;
      state->last = checkpoint;
      state->finished = ending && *ending == checkpoint;  // a SHARD_END checkpoint
    }
    active_.push_back(std::move(state));
    if (!open_now || active_.back()->finished) return absl::OkStatus();
    return Open(*active_.back());
  }

  absl::Status Open(ShardState& state) {
    absl::Status s =
        options_.fan_out_consumer.empty() ? OpenIterator(state) : OpenSubscription(state);
    if (s.ok()) {
      state.open = true;
      state.retry_at_ms = 0;
      state.backoff = NewBackoff(state.index);
      return s;
    }
    if (!IsRetryableOpenError(s)) return s;
    ++open_retries_;
    state.retry_at_ms = NowMs() + absl::ToInt64Milliseconds(state.backoff.Next());
    return absl::OkStatus();
  }

  absl::Status OpenIterator(ShardState& state) {
    absl::StatusOr<Iterator> iterator =
        stream_->GetShardIterator(state.shard_id, PositionOf(state));
    if (!iterator.ok()) return iterator.status();
    state.iterator = *std::move(iterator);
    return absl::OkStatus();
  }

  absl::Status OpenSubscription(ShardState& state) {
    if constexpr (FanOutStream<S>) {
      auto subscription =
          stream_->SubscribeToShard(options_.fan_out_consumer, state.shard_id, PositionOf(state));
      if (!subscription.ok()) return subscription.status();
      state.subscription = *std::move(subscription);
      return absl::OkStatus();
    } else {
      (void)state;
      return InvalidArgument("this stream does not offer SubscribeToShard");
    }
  }

  void Delivered(ShardState& state, const SequenceNumber& last) {
    last_delivered_[state.shard_id] = last;
    state.last = last;
  }

  void ToTrimHorizon(ShardState& state) {
    state.open = false;
    state.subscription = {};
    state.last.reset();
    state.start = IteratorPosition::TrimHorizon();
  }

  absl::Status Read(ShardState& state, Batch* batch) {
    if constexpr (FanOutStream<S>) {
      if (state.subscription) return ReadSubscription(state, batch);
    }
    return ReadIterator(state, batch);
  }

  absl::Status ReadIterator(ShardState& state, Batch* batch) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      absl::Status s = stream_->GetRecords(state.iterator, options_.batch_limit, &batch->page);
      if (s.ok()) {
        batch->shard_id = state.shard_id;
        if (!batch->page.records.empty())
          Delivered(state, batch->page.records.back().sequence_number);
        if (batch->page.next_shard_iterator) {
          state.iterator = *batch->page.next_shard_iterator;
        } else {
          state.finished = true;
          state.children = batch->page.child_shards;
        }
        return absl::OkStatus();
      }
      ClearPage(batch);
      if (IsExpiredIterator(s)) {
        state.open = false;
        if (absl::Status again = Open(state); !again.ok()) return again;
        if (!state.open) return absl::OkStatus();
        continue;
      }
      if (IsProvisionedThroughputExceeded(s)) {
        ++throttled_reads_;
        return absl::OkStatus();
      }
      if (IsTrimmedDataAccess(s) && options_.on_trimmed == TrimmedPolicy::kSkipToTrimHorizon) {
        ToTrimHorizon(state);
        if (absl::Status again = Open(state); !again.ok()) return again;
        if (!state.open) return absl::OkStatus();
        continue;
      }
      return s;
    }
    return absl::OkStatus();
  }

  absl::Status ReadSubscription(ShardState& state, Batch* batch) {
    if constexpr (FanOutStream<S>) {
      for (int attempt = 0; attempt < 3; ++attempt) {
        absl::Status s = state.subscription->Next(&event_, absl::ZeroDuration());
        if (s.ok()) {
          batch->shard_id = state.shard_id;
          batch->page.records.swap(event_.page.records);
          batch->page.millis_behind_latest = event_.page.millis_behind_latest;
          if (!batch->page.records.empty()) {
            Delivered(state, batch->page.records.back().sequence_number);
          }
          if (event_.end_of_shard) {
            state.finished = true;
            state.children = event_.page.child_shards;
          }
          return absl::OkStatus();
        }
        const SubscriptionEnd end = state.subscription->end();
        if (end == SubscriptionEnd::kLifetimeElapsed) {
          state.open = false;
          state.subscription = {};
          if (absl::Status again = Open(state); !again.ok()) return again;
          if (!state.open) return absl::OkStatus();
          continue;
        }
        if (end == SubscriptionEnd::kDataTrimmed &&
            options_.on_trimmed == TrimmedPolicy::kSkipToTrimHorizon) {
          ToTrimHorizon(state);
          if (absl::Status again = Open(state); !again.ok()) return again;
          if (!state.open) return absl::OkStatus();
          continue;
        }
        return s;
      }
      return absl::OkStatus();
    } else {
      (void)state;
      (void)batch;
      return absl::OkStatus();
    }
  }

  bool IsFollowed(std::string_view shard_id) const {
    for (const auto& s : active_) {
      if (s->shard_id == shard_id) return true;
    }
    return false;
  }

  void ChildStarted(const std::string& parent, const std::string& child) {
    auto it = finished_.find(parent);
    if (it == finished_.end()) return;
    std::vector<std::string>& waiting = it->second.waiting_children;
    waiting.erase(std::remove(waiting.begin(), waiting.end(), child), waiting.end());
    if (waiting.empty() && !it->second.checkpoint_kept) finished_.erase(it);
  }

  // Drops a shard read to its end, keeps its SHARD_END checkpoint and starts
  // its children whose parents are done. Errors: ListShards's.
  absl::Status FinishShard(size_t at) {
    std::unique_ptr<ShardState> done = std::move(active_[at]);
    active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(at));
    const std::string& id = done->shard_id;
    Finished finished;
    if (done->last) {
      last_delivered_[id] = *done->last;
      finished.checkpoint_kept = true;
    }
    absl::StatusOr<std::vector<ShardDescription>> listed = ListAllShards(*stream_);
    if (!listed.ok()) return listed.status();
    absl::flat_hash_set<std::string> ids;
    for (const ShardDescription& d : *listed) ids.insert(d.shard_id);
    if (options_.follow_lineage) {
      std::vector<ChildShard> children = std::move(done->children);
      if (children.empty()) {  // an endpoint that does not send childShards
        for (const ShardDescription& d : *listed) {
          ChildShard child;
          child.shard_id = d.shard_id;
          for (const auto& parent : {d.parent_shard_id, d.adjacent_parent_shard_id}) {
            if (parent) child.parent_shards.push_back(*parent);
          }
          if (std::find(child.parent_shards.begin(), child.parent_shards.end(), id) !=
              child.parent_shards.end()) {
            children.push_back(std::move(child));
          }
        }
      }
      for (const ChildShard& child : children) {
        if (IsFollowed(child.shard_id) || finished_.contains(child.shard_id)) continue;
        bool parents_done = true;
        for (const std::string& parent : child.parent_shards) {
          if (parent == id || finished_.contains(parent)) continue;
          if (IsFollowed(parent) || ids.contains(parent)) parents_done = false;
        }
        if (!parents_done) {
          finished.waiting_children.push_back(child.shard_id);
          continue;
        }
        for (const std::string& parent : child.parent_shards) {
          if (parent != id) ChildStarted(parent, child.shard_id);
        }
        (void)Follow(child.shard_id, std::nullopt, IteratorPosition::TrimHorizon(),
                     /*open_now=*/false);
      }
    }
    if (finished.checkpoint_kept || !finished.waiting_children.empty()) {
      finished_[id] = std::move(finished);
    }
    // Forget the SHARD_END checkpoints of shards no longer listed.
    for (auto it = finished_.begin(); it != finished_.end();) {
      Finished& f = it->second;
      if (f.checkpoint_kept && it->first != id && !ids.contains(it->first)) {
        last_delivered_.erase(it->first);
        f.checkpoint_kept = false;
      }
      if (!f.checkpoint_kept && f.waiting_children.empty()) {
        finished_.erase(it++);
      } else {
        ++it;
      }
    }
    return absl::OkStatus();
  }

  const std::shared_ptr<S> owner_;
  S* const stream_;
  ConsumerOptions options_;
  const uint64_t salt_;
  uint32_t next_index_ = 0;
  // batch->shard_id of a batch that ended its shard (valid until the next Poll).
  std::string ended_shard_id_;
  std::vector<std::unique_ptr<ShardState>> active_;
  size_t cursor_ = 0;
  absl::flat_hash_map<std::string, SequenceNumber> last_delivered_;
  absl::flat_hash_map<std::string, Finished> finished_;
  uint64_t throttled_reads_ = 0;
  uint64_t open_retries_ = 0;
  typename FanOutTypes<S>::Event event_;  // fan-out mode's reused event
};

// Deduces the consumer type from the stream: MakeConsumer(stream, options).
template <typename S>
absl::StatusOr<std::unique_ptr<StreamConsumer<S>>> MakeConsumer(S* stream,
                                                                ConsumerOptions options) {
  return StreamConsumer<S>::Create(stream, std::move(options));
}

}  // namespace kinlet
