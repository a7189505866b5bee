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
// Opening a shard (GetShardIterator; SubscribeToShard in fan-out mode) may be
// refused for a while: GetShardIterator's limit (5 calls per second per shard,
// shared by every reader of the stream), a fan-out subscription another reader
// still holds (ResourceInUseException for 5 s), InternalFailure. Such a shard
// stays followed and waits: later Polls try it again, each no earlier than a
// backoff (ConsumerOptions::open_retry, full jitter) after the last refusal, by
// the stream's clock; Poll never sleeps. This holds for the starting shards,
// the children followed by lineage, an expired iterator's renewal and a fan-out
// resubscription. Any other error of opening a shard is returned by Poll (and
// by Create for the starting shards), never dropped.
//
// Per-shard bookkeeping is bounded (tracked_shard_count): a finished shard is
// remembered only while one of its children waits for its other parent, or
// while it still holds a record within retention (its SHARD_END checkpoint, see
// Checkpoints); thousands of reshards over a consumer's life cost nothing more.
//
// Lifetime: a stream owned by a std::shared_ptr (a Registry's) is kept alive by
// its consumers; a stream owned otherwise must outlive them. Deleting the
// stream (Registry::DeleteStream, from any thread) makes every later Poll
// return ResourceNotFoundException; destroying the consumer stays safe.
//
// Thread safety: a Consumer is not thread-safe: one thread polls it. Any number
// of consumers may read one stream at once.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/records_view.hpp"
#include "kinlet/retry.hpp"
#include "kinlet/stream.hpp"
#include "kinlet/stream_concept.hpp"
#include "kinlet/stream_consumer.hpp"

namespace kinlet {

// A batch of Consumer::Poll that lends the records in place (zero-copy
// polling, records_view.hpp): `records()` are views of the shard's storage,
// valid until the next Poll into this batch, page.Release() or the batch's
// destruction; meanwhile they are pinned (see records_view.hpp for what that
// means to writers: release a batch you keep while idle). In fan-out mode,
// and where records_view.hpp says a read copies, the views are of copies the
// batch holds. Reuse one batch: polling then allocates nothing in steady
// state. Not thread-safe: one thread uses a batch.
template <typename Payload>
struct ConsumerBatchView {
  std::string_view shard_id;  // the shard of every record in `page`
  GetRecordsView<Payload> page;
  // As ConsumerBatch.
  uint64_t trimmed_records_skipped = 0;
  bool shard_ended = false;

  std::span<const RecordView<Payload>> records() const { return page.records; }
};

// Today's spelling: the consumer of an in-process stream.
template <RecordPayload Payload, StreamTraits Traits = DefaultStreamTraits>
using Consumer = StreamConsumer<Stream<Payload, Traits>>;

// The in-process consumer (the specialization for Stream<Payload, Traits>).
template <RecordPayload Payload, StreamTraits Traits>
class StreamConsumer<Stream<Payload, Traits>> {
 public:
  using StreamType = Stream<Payload, Traits>;
  using ShardType = Shard<Payload, Traits>;
  // How the consumer holds shards: whatever the stream hands out.
  using ShardHandle = typename StreamType::ShardHandle;

  // Creates a consumer of `stream`. A stream owned by a std::shared_ptr (as a
  // Registry's streams are) is kept alive by the consumer until the consumer
  // is destroyed; a stream owned otherwise (std::unique_ptr, a local) must
  // outlive the consumer. Errors: InvalidArgumentException for batch_limit
  // outside 1..10000 or a null stream; ResourceNotFoundException for an
  // unknown shard id or a deleted stream; the errors of GetShardIterator (or
  // SubscribeToShard in fan-out mode) for the start position, except the
  // retryable ones (throttling, ResourceInUse, ...): such a shard is opened by
  // a later Poll, after a backoff.
  using Batch = ConsumerBatch<Payload>;

  static absl::StatusOr<std::unique_ptr<StreamConsumer>> Create(StreamType* stream,
                                                                ConsumerOptions options) {
    if (stream == nullptr) return InvalidArgument("a stream is required");
    if (options.batch_limit < 1 || options.batch_limit > 10000) {
      return InvalidArgument("batch_limit must be between 1 and 10000");
    }
    std::unique_ptr<StreamConsumer> consumer(new StreamConsumer(stream, std::move(options)));
    std::vector<ShardHandle> start;
    if (consumer->options_.shard_ids.empty()) {
      absl::StatusOr<std::vector<ShardDescription>> shards =
          StartingShards(stream, consumer->options_.start);
      if (!shards.ok()) return shards.status();
      for (const ShardDescription& d : *shards) {
        absl::StatusOr<ShardHandle> shard = stream->GetShard(d.shard_id);
        if (!shard.ok()) return shard.status();
        start.push_back(*std::move(shard));
      }
    } else {
      for (const std::string& id : consumer->options_.shard_ids) {
        absl::StatusOr<ShardHandle> shard = stream->GetShard(id);
        if (!shard.ok()) return shard.status();
        start.push_back(*std::move(shard));
      }
    }
    for (ShardHandle& shard : start) {
      absl::Status s =
          consumer->Follow(std::move(shard), consumer->options_.start, /*open_now=*/true);
      if (!s.ok()) return s;
    }
    return consumer;
  }

  // Fills `batch` with the next records of the next shard (round robin) that
  // has any; leaves batch->records() empty when every followed shard is caught
  // up (or throttled: a shard over its read limits is skipped this round; or
  // waiting to be opened, see the top of this file). A batch that reports
  // skipped records (trimmed_records_skipped) is returned at once, with or
  // without records, so the count is always that of batch.shard_id.
  // Reuse one batch: polling then allocates nothing in steady state.
  // Errors: TrimmedDataAccessException (TrimmedPolicy::kReport; the consumer
  // stays where it was); ResourceNotFoundException once the stream is
  // deleted; the errors of opening a shard that are not retryable
  // (InvalidArgumentException, ...: the next Poll tries it again).
  absl::Status Poll(ConsumerBatch<Payload>* batch) { return PollInto(batch); }
  // As above, lending the records in place instead of copying them (see
  // ConsumerBatchView): the same records, positions, checkpoints and errors.
  absl::Status Poll(ConsumerBatchView<Payload>* batch) { return PollInto(batch); }

 private:
  template <typename Batch>
  absl::Status PollInto(Batch* batch) {
    batch->trimmed_records_skipped = 0;
    batch->shard_ended = false;
    batch->shard_id = {};
    ClearPage(batch);  // no stale records, whatever follows
    if (stream_->deleted()) return StreamDeleted();
    const int64_t now_ms = NowMs();
    for (size_t tried = 0; tried < active_.size(); ++tried) {
      const size_t at = (cursor_ + tried) % active_.size();
      ShardState& state = active_[at];
      if (!state.open && !state.finished) {
        if (now_ms < state.retry_at_ms) continue;  // refused lately: not yet
        if (absl::Status s = Open(state); !s.ok()) return s;
        if (!state.open) continue;  // refused again: backed off further
      }
      if (!state.finished) {
        absl::Status s = Read(state, batch);
        if (!s.ok()) return s;
      } else {
        ClearPage(batch);  // ended without a read (a SHARD_END checkpoint)
      }
      if (state.finished) {
        batch->shard_id = state.shard->shard_id();
        batch->shard_ended = true;
        FinishShard(at);
        cursor_ = active_.empty() ? 0 : at % active_.size();
        return absl::OkStatus();  // may hold the closed shard's last records
      }
      if (!batch->page.records.empty() || batch->trimmed_records_skipped != 0) {
        cursor_ = (at + 1) % active_.size();
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

 public:
  // The last sequence number delivered from `shard_id`, if any (for a shard
  // read to its end: its last record, while Checkpoints() keeps it).
  std::optional<SequenceNumber> LastSequenceNumber(std::string_view shard_id) const {
    auto it = last_delivered_.find(detail::ToAbsl(shard_id));
    if (it == last_delivered_.end()) return std::nullopt;
    return it->second;
  }
  // Checkpoints: pass as resume_after to continue after them. One entry per
  // followed shard that delivered a record, and per shard read to its end
  // that still holds a record within retention: its last sequence number (a
  // SHARD_END checkpoint: a consumer resumed with it reports the shard ended
  // without reading it again). A finished shard's entry is dropped once every
  // record of the shard is past retention (or the shard is gone): a resumed
  // whole-stream consumer no longer starts at such a shard (ListShards no
  // longer lists it), so it cannot read it again. The map is valid until the
  // next Poll.
  const absl::flat_hash_map<std::string, SequenceNumber>& Checkpoints() const {
    return last_delivered_;
  }

  // Moves the consumer of `shard_id` to its trim horizon and returns the
  // number of records skipped. ResourceNotFoundException if not followed;
  // the errors of opening the shard there that are not retryable.
  absl::StatusOr<uint64_t> SeekToTrimHorizon(std::string_view shard_id) {
    for (ShardState& state : active_) {
      if (state.shard->shard_id() != shard_id) continue;
      if (state.finished) return uint64_t{0};
      const uint64_t skipped = SkipToTrimHorizon(state);
      if (absl::Status s = Open(state); !s.ok()) return s;
      return skipped;
    }
    return ResourceNotFound(
        absl::StrCat("Shard ", detail::ToAbsl(shard_id), " is not followed by this consumer"));
  }

  // Shards currently followed (not finished), opened or waiting to be.
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
  // Attempts to open a shard (GetShardIterator, SubscribeToShard) refused
  // with a retryable error since creation; each was retried after a backoff.
  uint64_t open_retries() const { return open_retries_; }
  // For monitoring and tests: the entries of the consumer's per-shard
  // bookkeeping (followed shards, finished shards remembered for lineage or
  // for their SHARD_END checkpoint, checkpoints). Bounded: it holds the
  // followed shards, the finished shards that still hold a record within
  // retention, and finished parents of a merge whose other parent is still
  // read; it does not grow with the number of reshards over the consumer's life.
  size_t tracked_shard_count() const {
    return active_.size() + finished_.size() + last_delivered_.size();
  }

  // The shards a whole-stream consumer starts with (see
  // detail::StartingShards).
  static absl::StatusOr<std::vector<ShardDescription>> StartingShards(
      StreamType* stream, const IteratorPosition& start) {
    return detail::StartingShards(*stream, start);
  }

 private:
  // One followed shard. Its position is `next` once known (position_known):
  // the position of the next record to deliver, in both modes, so that a
  // renewal, a resubscription or a skip starts exactly there and counts
  // exactly what it skips. Before that (never opened yet), it opens at `start`.
  struct ShardState {
    ShardHandle shard;
    IteratorPosition start;
    bool position_known = false;
    uint64_t next = 0;
    // Has a valid iterator (polling) or a live subscription (fan-out). While
    // false, Poll opens it, not before retry_at_ms (stream clock) when the
    // last attempt was refused with a retryable error.
    bool open = false;
    // Read to its end (or resumed with a SHARD_END checkpoint): the next Poll
    // reports it ended and drops it.
    bool finished = false;
    int64_t retry_at_ms = 0;
    Backoff backoff{RetryOptions{}};
    ShardIterator iterator;                                       // polling
    std::unique_ptr<Subscription<Payload, Traits>> subscription;  // fan-out
  };

  // A shard read to its end, remembered while it matters (see
  // tracked_shard_count): its children that wait for their other parent,
  // and whether last_delivered_ keeps its SHARD_END checkpoint.
  struct Finished {
    std::vector<std::string> waiting_children;
    bool checkpoint_kept = false;
  };

  StreamConsumer(StreamType* stream, ConsumerOptions options)
      : owner_(stream->weak_from_this().lock()),
        stream_(stream),
        options_(std::move(options)),
        salt_(NextSalt()) {}

  static uint64_t NextSalt() {
    static std::atomic<uint64_t> consumers{0};
    return (consumers.fetch_add(1, std::memory_order_relaxed) + 1) * 0xD1B54A32D192ED03ull;
  }

  int64_t NowMs() const { return NowMillis(*stream_->clock()); }

  absl::Status StreamDeleted() const {
    return ResourceNotFound(absl::StrCat("Stream ", stream_->name(), " under account ",
                                         stream_->options().account_id, " not found."));
  }

  static void ClearPage(ConsumerBatch<Payload>* batch) {
    detail::RecordBuffer<Payload>(&batch->page).Finish();
    batch->page.next_shard_iterator.reset();
    batch->page.child_shards.clear();
  }
  static void ClearPage(ConsumerBatchView<Payload>* batch) {
    batch->page.Release();
    batch->page.next_shard_iterator.reset();
    batch->page.child_shards.clear();
  }
  // Fan-out mode: the event's records become the batch's (both buffers kept).
  static void TakeEvent(SubscribeToShardEvent<Payload>* event, ConsumerBatch<Payload>* batch) {
    std::swap(batch->page, event->page);
  }
  static void TakeEvent(SubscribeToShardEvent<Payload>* event, ConsumerBatchView<Payload>* batch) {
    detail::RecordsViewAccess::ViewCopies(&event->page, &batch->page);
  }

  // Errors after which opening a shard is worth trying again later.
  static bool IsRetryableOpenError(const absl::Status& s) {
    return IsProvisionedThroughputExceeded(s) || IsResourceInUse(s) || IsInternalFailure(s) ||
           IsLimitExceeded(s);
  }

  // The backoff of one shard: the consumer's options, jitter seeded per
  // consumer and shard so that consumers refused together spread out.
  Backoff NewBackoff(uint32_t shard_index) const {
    RetryOptions retry = options_.open_retry;
    retry.jitter_seed ^= salt_ ^ ((uint64_t{shard_index} + 1) * 0x9E3779B97F4A7C15ull);
    return Backoff(retry);
  }

  // The position `p` of `shard` as a starting position that resolves to
  // exactly `p` (even if trimmed: the read then reports it). Position 0 of a
  // shard still empty is its TRIM_HORIZON.
  static IteratorPosition PositionAt(const ShardType& shard, uint64_t p) {
    if (p < shard.log().End()) return IteratorPosition::AtSequenceNumber(shard.Sequence(p));
    if (p > 0) return IteratorPosition::AfterSequenceNumber(shard.Sequence(p - 1));
    return IteratorPosition::TrimHorizon();
  }

  // True if `checkpoint` is the last record of `shard`, closed: the shard was
  // read to its end (a SHARD_END checkpoint).
  static bool CoversEnd(const ShardType& shard, const SequenceNumber& checkpoint) {
    const std::optional<SequenceNumber> last = shard.ending_sequence_number();
    return last && shard.log().End() > 0 && checkpoint == *last;
  }

  // Follows `shard` from `start`, or after its resume_after checkpoint. With
  // open_now, tries to open it at once and returns an error that is not
  // retryable (the shard stays followed); else the next Poll opens it.
  absl::Status Follow(ShardHandle shard, const IteratorPosition& start, bool open_now) {
    ShardState state;
    state.start = start;
    state.backoff = NewBackoff(shard->index());
    if (auto it = options_.resume_after.find(shard->shard_id());
        it != options_.resume_after.end()) {
      const SequenceNumber checkpoint = it->second;
      options_.resume_after.erase(it);  // used once: the consumer keeps it from now on
      last_delivered_[shard->shard_id()] = checkpoint;
      state.start = IteratorPosition::AfterSequenceNumber(checkpoint);
      state.finished = CoversEnd(*shard, checkpoint);
    }
    state.shard = std::move(shard);
    active_.push_back(std::move(state));
    if (!open_now || active_.back().finished) return absl::OkStatus();
    return Open(active_.back());
  }

  // Opens `state` (an iterator, or a subscription). A retryable refusal
  // schedules the next attempt after a backoff and returns OK with
  // state.open still false; other errors are returned.
  absl::Status Open(ShardState& state) {
    absl::Status s =
        options_.fan_out_consumer.empty() ? OpenIterator(state) : OpenSubscription(state);
    if (s.ok()) {
      state.open = true;
      state.retry_at_ms = 0;
      state.backoff = NewBackoff(state.shard->index());
      return s;
    }
    if (!IsRetryableOpenError(s)) return s;
    ++open_retries_;
    state.retry_at_ms = NowMs() + absl::ToInt64Milliseconds(state.backoff.Next());
    return absl::OkStatus();
  }

  absl::Status OpenIterator(ShardState& state) {
    const ShardType& shard = *state.shard;
    absl::StatusOr<ShardIterator> iterator =
        shard.GetShardIterator(state.position_known ? PositionAt(shard, state.next) : state.start);
    if (!iterator.ok()) return iterator.status();
    if (state.position_known && iterator->position() != state.next) {
      // Position 0 of an empty shard was asked as TRIM_HORIZON, and records
      // arrived and expired since: keep pointing at 0 so the policy sees them.
      iterator = ShardIterator::Issue(iterator->stream_tag(), iterator->shard_index(), state.next,
                                      absl::ToUnixMillis(iterator->issued_at()));
    }
    state.iterator = *iterator;
    state.next = iterator->position();
    state.position_known = true;
    return absl::OkStatus();
  }

  // Subscribes at a position the consumer knows exactly: its `next`, or the
  // start resolved here (TRIM_HORIZON and LATEST from the shard itself,
  // AT_TIMESTAMP through GetShardIterator), so that the skip count is exact.
  absl::Status OpenSubscription(ShardState& state) {
    const ShardType& shard = *state.shard;
    IteratorPosition at = state.start;
    uint64_t resolved = state.next;
    if (state.position_known) {
      at = PositionAt(shard, state.next);
    } else {
      switch (state.start.type) {
        case ShardIteratorType::kTrimHorizon:
          resolved = shard.TrimHorizon(NowMs());
          at = PositionAt(shard, resolved);
          break;
        case ShardIteratorType::kLatest:
          resolved = shard.log().End();
          at = PositionAt(shard, resolved);
          break;
        case ShardIteratorType::kAtSequenceNumber:
        case ShardIteratorType::kAfterSequenceNumber:
          // Checked by SubscribeToShard (another shard's number is refused).
          resolved = state.start.sequence_number.position() +
                     (state.start.type == ShardIteratorType::kAfterSequenceNumber ? 1 : 0);
          break;
        case ShardIteratorType::kAtTimestamp: {
          absl::StatusOr<ShardIterator> iterator = shard.GetShardIterator(state.start);
          if (!iterator.ok()) return iterator.status();
          // Resolved once: a refused subscription is retried at this position.
          state.next = resolved = iterator->position();
          state.position_known = true;
          at = PositionAt(shard, resolved);
          break;
        }
      }
    }
    auto subscription = stream_->SubscribeToShard(options_.fan_out_consumer, shard.shard_id(), at);
    if (!subscription.ok()) return subscription.status();
    state.subscription = *std::move(subscription);
    state.next = resolved;
    state.position_known = true;
    return absl::OkStatus();
  }

  // Records before `first` (the position the stream delivered next) that the
  // consumer never saw: skipped by the stream itself (a stream that continues
  // from the trim horizon as Kinesis does, or a race of a few instructions
  // with retention): counted, whatever the policy.
  template <typename Batch>
  void CountGap(const ShardState& state, uint64_t first, Batch* batch) {
    if (!state.position_known || first <= state.next) return;
    const uint64_t gap = first - state.next;
    batch->trimmed_records_skipped += gap;
    skipped_total_ += gap;
  }

  void Delivered(ShardState& state, const SequenceNumber& last) {
    last_delivered_[state.shard->shard_id()] = last;
    state.next = last.position() + 1;
  }

  template <typename Batch>
  absl::Status Read(ShardState& state, Batch* batch) {
    return state.subscription ? ReadSubscription(state, batch) : ReadIterator(state, batch);
  }

  // Polling mode: one GetRecords (renewing an expired iterator, skipping
  // trimmed data per the policy).
  template <typename Batch>
  absl::Status ReadIterator(ShardState& state, Batch* batch) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      absl::Status s = state.shard->GetRecords(state.iterator, options_.batch_limit, &batch->page);
      if (s.ok()) {
        batch->shard_id = state.shard->shard_id();
        const auto& records = batch->page.records;
        const std::optional<ShardIterator>& after = batch->page.next_shard_iterator;
        CountGap(state,
                 !records.empty() ? records.front().sequence_number.position()
                 : after          ? after->position()
                                  : state.next,
                 batch);
        if (!records.empty()) Delivered(state, records.back().sequence_number);
        if (after) {
          state.iterator = *after;
          state.next = after->position();
        } else {
          state.finished = true;
        }
        return absl::OkStatus();
      }
      if (IsExpiredIterator(s)) {
        // A fresh iterator at the same position (iterators expire; positions
        // don't). GetShardIterator's limit may refuse it for now.
        state.open = false;
        if (absl::Status again = Open(state); !again.ok()) return again;
        if (!state.open) return absl::OkStatus();
        continue;
      }
      if (IsProvisionedThroughputExceeded(s)) {
        // The shard's read limits are spent: nothing from it this round.
        ++throttled_reads_;
        return absl::OkStatus();
      }
      if (IsTrimmedDataAccess(s) && options_.on_trimmed == TrimmedPolicy::kSkipToTrimHorizon) {
        if (absl::Status again = SkipAndReopen(state, batch); !again.ok()) return again;
        if (!state.open) return absl::OkStatus();
        continue;
      }
      return s;
    }
    return absl::OkStatus();
  }

  // TrimmedPolicy::kSkipToTrimHorizon, both modes: counts the records skipped
  // into `batch` and reopens the shard at its trim horizon (state.open stays
  // false if the reopen is deferred by a retryable refusal).
  template <typename Batch>
  absl::Status SkipAndReopen(ShardState& state, Batch* batch) {
    batch->shard_id = state.shard->shard_id();
    batch->trimmed_records_skipped += SkipToTrimHorizon(state);
    return Open(state);
  }

  // Fan-out mode: the next event of the shard's subscription, without
  // waiting (resubscribing after its lifetime, skipping trimmed data per the
  // policy).
  template <typename Batch>
  absl::Status ReadSubscription(ShardState& state, Batch* batch) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      absl::Status s = state.subscription->Next(&event_, absl::ZeroDuration());
      if (s.ok()) {
        TakeEvent(&event_, batch);
        batch->shard_id = state.shard->shard_id();
        const auto& records = batch->page.records;
        if (!records.empty()) {
          CountGap(state, records.front().sequence_number.position(), batch);
          Delivered(state, records.back().sequence_number);
        }
        if (event_.end_of_shard) state.finished = true;
        return absl::OkStatus();
      }
      const SubscriptionEnd end = state.subscription->end();
      if (end == SubscriptionEnd::kLifetimeElapsed) {
        // Subscribe again where this one stopped.
        state.open = false;
        state.subscription.reset();
        if (absl::Status again = Open(state); !again.ok()) return again;
        if (!state.open) return absl::OkStatus();
        continue;
      }
      if (end == SubscriptionEnd::kDataTrimmed &&
          options_.on_trimmed == TrimmedPolicy::kSkipToTrimHorizon) {
        if (absl::Status again = SkipAndReopen(state, batch); !again.ok()) return again;
        if (!state.open) return absl::OkStatus();
        continue;
      }
      return s;
    }
    return absl::OkStatus();
  }

  // Moves `state` to the shard's trim horizon (closing its iterator or
  // subscription: the caller opens it there) and returns the number of
  // records skipped: exactly those between its next position and the horizon.
  uint64_t SkipToTrimHorizon(ShardState& state) {
    state.open = false;
    state.subscription.reset();
    if (!state.position_known) {
      state.start = IteratorPosition::TrimHorizon();  // never opened: nothing skipped
      return 0;
    }
    const uint64_t horizon = state.shard->TrimHorizon(NowMs());
    const uint64_t skipped = horizon > state.next ? horizon - state.next : 0;
    state.next += skipped;
    skipped_total_ += skipped;
    return skipped;
  }

  bool IsFollowed(std::string_view shard_id) const {
    for (const ShardState& s : active_) {
      if (s.shard->shard_id() == shard_id) return true;
    }
    return false;
  }

  // True while the shard `shard_id` holds a record within retention (false
  // for a shard that is gone).
  bool HoldsUnexpired(std::string_view shard_id, int64_t now_ms) const {
    absl::StatusOr<ShardHandle> shard = stream_->GetShard(shard_id);
    return shard.ok() && (*shard)->TrimHorizon(now_ms) < (*shard)->log().End();
  }

  // A parent of a child about to start has been read to its end, or will
  // never be read by this consumer and has nothing to read: closed and
  // empty, every record past retention, or gone.
  // An empty parent is done only once its own parents are (recursively): its
  // ancestors may still hold records of the same keys, which must come first.
  // (Found by the resharding stress test: a merge child started while the
  // split parent of its empty other parent was still being read.)
  bool ParentDone(const std::string& parent, int64_t now_ms) const {
    if (finished_.contains(parent)) return true;
    if (IsFollowed(parent)) return false;
    absl::StatusOr<ShardHandle> shard = stream_->GetShard(parent);
    if (!shard.ok()) return true;  // deleted: it and its ancestors are past retention
    if ((*shard)->is_open() || (*shard)->TrimHorizon(now_ms) < (*shard)->log().End()) {
      return false;
    }
    for (const auto& grandparent :
         {(*shard)->parent_shard_id(), (*shard)->adjacent_parent_shard_id()}) {
      if (grandparent && !ParentDone(*grandparent, now_ms)) return false;
    }
    return true;
  }

  // `child` of the finished shard `parent` has started: `parent` no longer
  // waits for it.
  void ChildStarted(const std::string& parent, const std::string& child) {
    auto it = finished_.find(parent);
    if (it == finished_.end()) return;
    std::vector<std::string>& waiting = it->second.waiting_children;
    waiting.erase(std::remove(waiting.begin(), waiting.end(), child), waiting.end());
    if (waiting.empty() && !it->second.checkpoint_kept) finished_.erase(it);
  }

  // Drops a shard read to its end, keeps its SHARD_END checkpoint (see
  // Checkpoints) and starts its children whose parents are all done (both
  // parents of a merge before the child). A child is only marked followed
  // here: the next Poll opens it, retrying a refusal after a backoff, and
  // reports an error that is not retryable. Then forgets the finished shards
  // that no longer matter, so the bookkeeping stays bounded.
  void FinishShard(size_t at) {
    ShardHandle done = std::move(active_[at].shard);
    active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(at));
    const std::string& id = done->shard_id();
    const int64_t now_ms = NowMs();
    Finished finished;
    if (const std::optional<SequenceNumber> last = done->ending_sequence_number();
        last && done->TrimHorizon(now_ms) < done->log().End()) {
      last_delivered_[id] = *last;  // read (or skipped) to its end
      finished.checkpoint_kept = true;
    } else {
      last_delivered_.erase(id);  // nothing a resumed consumer could read again
    }
    if (options_.follow_lineage) {
      // Children come from the shard itself, so lineage is followed even for
      // shards created after this consumer.
      for (const ChildShard& child : done->child_shards()) {
        if (IsFollowed(child.shard_id) || finished_.contains(child.shard_id)) continue;
        bool parents_done = true;
        for (const std::string& parent : child.parent_shards) {
          if (parent != id && !ParentDone(parent, now_ms)) parents_done = false;
        }
        if (!parents_done) {
          finished.waiting_children.push_back(child.shard_id);
          continue;
        }
        absl::StatusOr<ShardHandle> shard = stream_->GetShard(child.shard_id);
        if (!shard.ok()) continue;  // the stream was deleted: the next Poll says so
        for (const std::string& parent : child.parent_shards) {
          if (parent != id) ChildStarted(parent, child.shard_id);
        }
        // A child is read from its start.
        (void)Follow(*std::move(shard), IteratorPosition::TrimHorizon(), /*open_now=*/false);
      }
    }
    if (finished.checkpoint_kept || !finished.waiting_children.empty()) {
      finished_[id] = std::move(finished);
    }
    Prune(now_ms);
  }

  // Forgets the SHARD_END checkpoints of finished shards whose records are
  // all past retention, and the finished shards that then matter no more.
  void Prune(int64_t now_ms) {
    for (auto it = finished_.begin(); it != finished_.end();) {
      Finished& f = it->second;
      if (f.checkpoint_kept && !HoldsUnexpired(it->first, now_ms)) {
        last_delivered_.erase(it->first);
        f.checkpoint_kept = false;
      }
      if (!f.checkpoint_kept && f.waiting_children.empty()) {
        finished_.erase(it++);
      } else {
        ++it;
      }
    }
  }

  // Keeps a shared-owned stream alive as long as the consumer (null for a
  // stream owned otherwise, which must outlive the consumer). Declared first:
  // destroyed after every subscription and shard handle below.
  const std::shared_ptr<StreamType> owner_;
  StreamType* const stream_;
  ConsumerOptions options_;
  const uint64_t salt_;
  std::vector<ShardState> active_;
  size_t cursor_ = 0;
  absl::flat_hash_map<std::string, SequenceNumber> last_delivered_;
  absl::flat_hash_map<std::string, Finished> finished_;
  SubscribeToShardEvent<Payload> event_;  // fan-out mode's reused event
  uint64_t skipped_total_ = 0;
  uint64_t throttled_reads_ = 0;
  uint64_t open_retries_ = 0;
};

}  // namespace kinlet
