// kinlet/shard.hpp: one shard of a stream: its ring-buffer log, hash key range,
// lineage, sequence range and status.
//
// Shard<Payload, Traits> is handed out by its Stream (Stream::GetShard,
// Stream::OpenShards) and lives as long as the stream. Reading a shard directly
// skips the stream's lookup and is the fastest read path; it has exactly the
// semantics of Stream::GetShardIterator/GetRecords.
//
// Thread safety: every public method is thread-safe. Reads are lock-free and
// never block writers; writes to one shard are serialised by the shard's
// writer lock (held for the copy into the ring only), so records of a shard
// are ordered by the order in which their puts took that lock.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "kinlet/detail/epoch.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/faults.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/metrics.hpp"
#include "kinlet/payload.hpp"
#include "kinlet/record.hpp"
#include "kinlet/records_view.hpp"
#include "kinlet/ring_log.hpp"
#include "kinlet/sequence_number.hpp"
#include "kinlet/shard_iterator.hpp"
#include "kinlet/storage/shard_log.hpp"
#include "kinlet/stream_options.hpp"
#include "kinlet/token_bucket.hpp"
#include "kinlet/traits.hpp"

namespace kinlet {

template <RecordPayload Payload, StreamTraits Traits>
class Stream;
template <RecordPayload Payload, StreamTraits Traits>
class Subscription;
namespace detail {
template <RecordPayload Payload, StreamTraits Traits>
class ShardSet;
template <typename StreamT>
struct DurableStreamOps;
}  // namespace detail

// "shardId-000000000007" for index 7.
inline std::string ShardIdFor(uint32_t index) { return absl::StrFormat("shardId-%012u", index); }

namespace detail {

// Stream-wide settings and state a shard consults. Owned by the stream.
template <typename Clock>
struct StreamContext {
  std::string name;
  std::string account_id;
  uint32_t tag = 0;
  Clock* clock = nullptr;
  int64_t iterator_ttl_ms = 0;
  size_t max_get_records_bytes = 0;
  int max_get_records_limit = 0;
  FullPolicy full_policy = FullPolicy::kReject;
  ThroughputLimits limits;
  bool measure_latency = false;
  // The fault configuration in force, or null (none). Published by
  // Stream::SetFaultInjection with release; loaded with acquire. Configurations
  // are kept alive by the stream until it is destroyed.
  std::atomic<FaultState*> faults{nullptr};
  // Written by Increase/DecreaseStreamRetentionPeriod (relaxed); read by every
  // put and read (relaxed): a stale value for one call is harmless.
  std::atomic<int64_t> retention_ms{0};
  // Records that arrived before it are gone for good, whatever the retention
  // period becomes: IncreaseStreamRetentionPeriod never brings back what had
  // already expired (as AWS). Written by retention changes (relaxed, under
  // the stream's control lock); read with retention_ms.
  std::atomic<int64_t> expired_floor_ms{std::numeric_limits<int64_t>::min()};
  // What a read of trimmed data does (StreamOptions::trimmed_reads).
  TrimmedReads trimmed_reads = TrimmedReads::kReport;
  // Set once by DeleteStream or the stream's destruction (release); read by
  // every call (acquire). Shard and subscription handles share this context,
  // so it outlives the stream while any of them is held.
  std::atomic<bool> deleted{false};

  int64_t NowMs() const { return NowMillis(*clock); }
  int64_t ExpireBeforeMs(int64_t now_ms) const {
    return std::max(now_ms - retention_ms.load(std::memory_order_relaxed),
                    expired_floor_ms.load(std::memory_order_relaxed));
  }
  absl::Status NotFound() const {
    return ResourceNotFound(
        absl::StrCat("Stream ", name, " under account ", account_id, " not found."));
  }
  // AWS's throttling message.
  absl::Status RateExceeded(std::string_view shard_id) const {
    return ProvisionedThroughputExceeded(absl::StrCat("Rate exceeded for shard ", ToAbsl(shard_id),
                                                      " in stream ", name, " under account ",
                                                      account_id, "."));
  }
  FaultState* Faults() const { return faults.load(std::memory_order_acquire); }
  // GetRecords's limit check (ValidationException).
  absl::Status ValidateLimit(int limit) const {
    if (limit >= 1 && limit <= max_get_records_limit) return absl::OkStatus();
    return ValidationError(
        absl::StrCat("1 validation error detected: Value '", limit,
                     "' at 'limit' failed to satisfy constraint: Member must have value ",
                     limit < 1 ? "greater than or equal to 1"
                               : absl::StrCat("less than or equal to ", max_get_records_limit)));
  }
};

// What a shard of a durable stream is built with (detail/stream_store.hpp
// makes it); a default one is an in-memory shard.
struct AttachedLog {
  bool durable = false;
  SyncPolicy sync = SyncPolicy::kNone;
  std::unique_ptr<storage::ShardLog> log;  // null if it could not be created
  absl::Status status;                     // then: why
};

}  // namespace detail

// Counters of one shard, read without locks (each value is current, the set is
// not one snapshot).
struct ShardStats {
  uint64_t trim_horizon_position = 0;  // oldest position still stored
  uint64_t end_position = 0;           // one past the newest record
  uint64_t records_stored = 0;
  uint64_t records_expired = 0;  // trimmed by retention
  // Dropped unexpired by FullPolicy::kOverwrite; for a durable stream, the
  // records its ring evicted to make room (still on disk, still readable).
  uint64_t records_overwritten = 0;
  size_t ring_bytes_in_use = 0;
  size_t ring_capacity_bytes = 0;
  size_t ring_capacity_records = 0;
};

template <RecordPayload Payload, StreamTraits Traits = DefaultStreamTraits>
class Shard : public std::enable_shared_from_this<Shard<Payload, Traits>> {
 public:
  using View = typename PayloadTraits<Payload>::View;
  using Clock = typename Traits::Clock;

  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  const std::string& shard_id() const { return shard_id_; }
  uint32_t index() const { return index_; }
  const HashKeyRange& hash_key_range() const { return range_; }
  const std::optional<std::string>& parent_shard_id() const { return parent_shard_id_; }
  const std::optional<std::string>& adjacent_parent_shard_id() const {
    return adjacent_parent_shard_id_;
  }
  // Open shards take writes; a closed shard (after a reshard) stays readable.
  bool is_open() const { return !closed_.load(std::memory_order_acquire); }
  SequenceNumber starting_sequence_number() const { return Sequence(0); }
  // The last sequence number of a closed shard (its last record's; for a
  // shard closed without records, its starting sequence number, which
  // AT_/AFTER_SEQUENCE_NUMBER accept); empty while open.
  std::optional<SequenceNumber> ending_sequence_number() const {
    if (is_open()) return std::nullopt;
    return Sequence(end_position_ == 0 ? 0 : end_position_ - 1);
  }
  // True once the shard is deleted: it was closed and every record in it is
  // past retention (as AWS deletes such shards; the stream frees it lazily,
  // but it is gone from that instant on). Every call then fails with
  // ResourceNotFoundException; a held handle stays valid.
  bool deleted() const { return GoneAt(context_->NowMs()); }
  // When a closed shard is deleted at the current retention period.
  // REQUIRES: closed.
  int64_t DeletedAtMs() const {
    return closed_ms_ + context_->retention_ms.load(std::memory_order_relaxed) + 1;
  }
  bool GoneAt(int64_t now_ms) const {
    if (reclaimed_.load(std::memory_order_acquire)) return true;
    // closed_ms_ is published by the release store of closed_.
    return closed_.load(std::memory_order_acquire) && closed_ms_ < context_->ExpireBeforeMs(now_ms);
  }
  // When the shard was created, and when a reshard closed it (empty while open).
  absl::Time created_at() const { return absl::FromUnixMillis(created_ms_); }
  std::optional<absl::Time> closed_at() const {
    if (is_open()) return std::nullopt;
    return absl::FromUnixMillis(closed_ms_);
  }
  ShardDescription Describe() const {
    return ShardDescription{shard_id_,
                            parent_shard_id_,
                            adjacent_parent_shard_id_,
                            range_,
                            {starting_sequence_number(), ending_sequence_number()}};
  }
  // The sequence number a record at `position` of this shard has.
  SequenceNumber Sequence(uint64_t position) const {
    return SequenceNumber(context_->tag, index_, position);
  }

  // Returns an iterator for `position`, with Kinesis's rules:
  //  - TRIM_HORIZON: the oldest record within retention;
  //  - LATEST: just after the newest record (what is put after this call is read);
  //  - AT_/AFTER_SEQUENCE_NUMBER: at, or just after, a record of this shard.
  //    InvalidArgumentException if the number is of another shard ("It encodes
  //    shardId-X, while it was used in a call to a shard with shardId-Y"), of
  //    another stream ("did not come from this stream") or not issued yet. A
  //    trimmed number gives an iterator whose GetRecords is TrimmedDataAccess.
  //  - AT_TIMESTAMP: the first record that arrived at or after the time; the
  //    trim horizon if the time is older; InvalidArgumentException if the time
  //    is in the future.
  // ResourceNotFoundException if the stream was deleted. Thread-safe; lock-free.
  //  ProvisionedThroughputExceededException over the stream's
  //  get_shard_iterator_calls_per_second (Kinesis: 5 per shard).
  absl::StatusOr<ShardIterator> GetShardIterator(const IteratorPosition& position) const {
    if (context_->deleted.load(std::memory_order_acquire)) return context_->NotFound();
    const int64_t now_ms = context_->NowMs();
    if (GoneAt(now_ms)) return DeletedError();
    if (context_->limits.get_shard_iterator_calls_per_second > 0) {
      detail::SpinLockGuard lock(&read_mu_);
      if (!iterator_calls_.TryTake(1, now_ms)) return context_->RateExceeded(shard_id_);
    }
    absl::StatusOr<uint64_t> at = ResolvePosition(position, now_ms, "GetShardIterator");
    if (!at.ok()) return at.status();
    return ShardIterator::Issue(context_->tag, index_, *at, now_ms);
  }

  // The children a reshard created from this shard (empty while it is open).
  std::vector<ChildShard> child_shards() const {
    if (is_open()) return {};
    return children_;
  }

 private:
  // The position `position` denotes now, with GetShardIterator's rules and
  // errors (`operation` names the call in messages).
  absl::StatusOr<uint64_t> ResolvePosition(const IteratorPosition& position, int64_t now_ms,
                                           std::string_view operation) const {
    uint64_t at = 0;
    switch (position.type) {
      case ShardIteratorType::kTrimHorizon:
        at = TrimHorizon(now_ms);
        break;
      case ShardIteratorType::kLatest:
        at = log_.End();
        break;
      case ShardIteratorType::kAtSequenceNumber:
      case ShardIteratorType::kAfterSequenceNumber: {
        const SequenceNumber s = position.sequence_number;
        if (s.stream_tag() != context_->tag) {
          return InvalidArgument(absl::StrCat(
              "StartingSequenceNumber ", s.ToString(), " used in ", detail::ToAbsl(operation),
              " on shard ", shard_id_, " in stream ", context_->name, " under account ",
              context_->account_id, " is invalid because it did not come from this stream."));
        }
        if (s.shard_index() != index_) {
          return InvalidArgument(absl::StrCat(
              "Invalid StartingSequenceNumber. It encodes ", ShardIdFor(s.shard_index()),
              ", while it was used in a call to a shard with ", shard_id_));
        }
        // A shard's starting sequence number (and a closed shard's ending
        // one) is valid at any time, even before any record is written.
        const bool boundary =
            s.position() == 0 || (!is_open() && s.position() == end_position_ - 1);
        if (s.position() >= log_.End() && !boundary) {
          return InvalidArgument(
              absl::StrCat("StartingSequenceNumber ", s.ToString(), " used in ",
                           detail::ToAbsl(operation), " on shard ", shard_id_, " in stream ",
                           context_->name, " under account ", context_->account_id,
                           " is invalid: no record with this sequence number has been written."));
        }
        at = s.position() + (position.type == ShardIteratorType::kAfterSequenceNumber ? 1 : 0);
        at = std::min(at, log_.End());
        break;
      }
      case ShardIteratorType::kAtTimestamp: {
        const int64_t t_ms = absl::ToUnixMillis(position.timestamp);
        if (t_ms > now_ms) {
          return InvalidArgument(
              absl::StrCat("The timestampInMillis parameter cannot be greater than the "
                           "currentTimestampInMillis. timestampInMillis: ",
                           t_ms, ", currentTimestampInMillis: ", now_ms));
        }
        at = std::max(LowerBoundArrival(t_ms), TrimHorizon(now_ms));
        break;
      }
    }
    return at;
  }

 public:
  // Reads up to `limit` records from `iterator` into `page` (cleared first;
  // reuse one page so that reads allocate nothing). Sets next_shard_iterator
  // (empty at the end of a closed shard, with child_shards set) and
  // millis_behind_latest. Stops early rather than exceed the stream's
  // max_get_records_bytes (10 MiB by default); always returns at least one
  // record when one is available.
  // Errors: ValidationException for limit outside 1..10000 (the stream's
  // max_get_records_limit); InvalidArgumentException "Invalid ShardIterator."
  // for an iterator that is not authentic or belongs to another stream or
  // shard; ExpiredIteratorException after the iterator TTL;
  // TrimmedDataAccessException if the iterator points at records that
  // retention or ring capacity removed (before or during the read: never
  // torn or skipped data) and the stream's trimmed_reads is kReport (with
  // kContinueFromTrimHorizon the read continues from the trim horizon, as
  // Kinesis); ResourceNotFoundException if the stream or the shard was
  // deleted; ProvisionedThroughputExceededException (and no data) over the
  // shard's read limits, which all polling readers share.
  // Thread-safe; never blocks a writer; lock-free unless read limits are on
  // (then readers of the shard share a short spin lock around the buckets).
  absl::Status GetRecords(const ShardIterator& iterator, int limit,
                          GetRecordsResult<Payload>* page) const {
    return TimedRead(iterator, limit, page);
  }

  // As above, lending the records in place instead of copying them: see
  // records_view.hpp for how long the views stay valid and what the writer
  // does meanwhile. The same records, errors and iterators as the copying
  // form. Releases what `page` held first. Thread-safe (one thread per page);
  // lock-free; allocates nothing in steady state.
  absl::Status GetRecords(const ShardIterator& iterator, int limit,
                          GetRecordsView<Payload>* page) const {
    page->Release();
    return TimedRead(iterator, limit, page);
  }

 private:
  template <typename Page>
  absl::Status TimedRead(const ShardIterator& iterator, int limit, Page* page) const {
    const bool timed = context_->measure_latency;
    const auto start =
        timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    absl::Status status = ReadPage(iterator, limit, page);
    if (KINLET_UNLIKELY(!status.ok())) EmptyPage(page);
    if (timed) {
      read_counters_.latency_ns_total.fetch_add(
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::steady_clock::now() - start)
                                    .count()),
          std::memory_order_relaxed);
    }
    return status;
  }

  static void EmptyPage(GetRecordsResult<Payload>* page) {
    detail::RecordBuffer<Payload>(page).Finish();
  }
  static void EmptyPage(GetRecordsView<Payload>* page) { page->Release(); }

  // The records from `from` into a copying page (ReadFrom) or a lending one
  // (Lend, with the page's pin slot on this shard, claimed if it has none).
  typename RingLog<Payload>::ReadOutcome ReadInto(uint64_t from, size_t max_records,
                                                  size_t max_bytes, int64_t now_ms,
                                                  GetRecordsResult<Payload>* page) const {
    return ReadFrom(from, max_records, max_bytes, now_ms, page);
  }
  typename RingLog<Payload>::ReadOutcome ReadInto(uint64_t from, size_t max_records,
                                                  size_t max_bytes, int64_t now_ms,
                                                  GetRecordsView<Payload>* page) const {
    if constexpr (RingLog<Payload>::kStorage != PayloadStorage::kTrivial) {
      if (page->log_ != &log_) {
        page->GiveBack();
        const int pin = log_.ClaimPin();  // -1 (all taken): copies
        if (pin >= 0) {
          page->owner_ = this->shared_from_this();
          page->log_ = &log_;
          page->pin_ = pin;
        }
      }
    }
    page->views_.clear();
    auto read = Lend(from, max_records, max_bytes, now_ms, page->pin_, &page->copies_,
                     &page->views_, &page->pinned_, &page->copied_);
    page->records = page->views_;
    return read;
  }

 public:
  // Reads up to `max_records` / `max_bytes` from `from` as views, appended to
  // `*views` (zero-copy reads: GetRecordsView and Subscription::NextView).
  // The records are lent in place under `pin` (a pin slot the caller claimed
  // on this shard's log, or -1: none), except those that must be copied into
  // `*copies` (refilled) and viewed there: everything for trivially copyable
  // payloads or without a slot, and the records below the writer's reuse
  // horizon (and on disk). On return `*pinned` says whether `pin` pins the
  // lent records: the caller unpins it (log().Unpin) when done with the
  // views; it is never left pinned with nothing lent. `*copied` grows by the
  // records copied. trimmed / error as ReadFrom, with nothing viewed and
  // nothing pinned. The records are exactly those ReadFrom would copy.
  typename RingLog<Payload>::ReadOutcome Lend(uint64_t from, size_t max_records, size_t max_bytes,
                                              int64_t now_ms, int pin,
                                              GetRecordsResult<Payload>* copies,
                                              std::vector<RecordView<Payload>>* views, bool* pinned,
                                              uint64_t* copied) const {
    using Log = RingLog<Payload>;
    *pinned = false;
    typename Log::ReadOutcome read{};
    const auto copy = [&](size_t n) {
      read = ReadFrom(from, n, max_bytes, now_ms, copies);
      if (read.trimmed || !read.error.ok()) return;
      for (const Record<Payload>& rec : copies->records) {
        views->push_back(RecordView<Payload>{rec.sequence_number, rec.approximate_arrival_timestamp,
                                             rec.partition_key, View(rec.data)});
      }
      *copied += read.count;
    };
    const bool can_lend = Log::kStorage != PayloadStorage::kTrivial && pin >= 0;
    // Records below the writer's reuse horizon cannot be pinned: copy them,
    // then lend the rest in place.
    const uint64_t horizon = log_.ReuseHorizon();
    if (!can_lend || horizon > from) {
      copy(can_lend ? static_cast<size_t>(std::min<uint64_t>(horizon - from, max_records))
                    : max_records);
      if (read.trimmed || !read.error.ok()) return read;
    }
    if constexpr (Log::kStorage != PayloadStorage::kTrivial) {
      // Pin first, then check: a record stored and within retention once
      // pinned stays readable until unpinned. Lend only from where the copy
      // stopped at the horizon (not at a limit or the end).
      const uint64_t at = from + read.count;
      if (can_lend && (read.count == 0 || at == horizon) && read.count < max_records &&
          read.bytes < max_bytes && log_.Pin(pin, at)) {
        if (Expired(at, now_ms)) {
          log_.Unpin(pin);  // trimmed or past retention: as ReadFrom (below)
        } else {
          const auto more = log_.ForEachPinned(
              at, max_records - read.count, max_bytes - read.bytes,
              [&](const typename Log::RecordRef& r) {
                views->push_back(RecordView<Payload>{
                    Sequence(r.position), absl::FromUnixMillis(r.arrival_ms), r.key, r.data});
              },
              /*take_first=*/read.count == 0);
          if (more.count == 0) {
            log_.Unpin(pin);  // nothing lent: pin nothing
          } else {
            *pinned = true;
            read.count += more.count;
            read.bytes += more.bytes;
          }
          if (read.count == 0) return read;  // at the end: nothing to read
        }
      }
    }
    if (!*pinned && read.count == 0) {
      // Could not pin (the horizon moved meanwhile, or `from` is gone): copy,
      // or report what the copy finds.
      views->clear();
      copy(max_records);
    }
    return read;
  }

 private:
  template <typename Page>
  absl::Status ReadPage(const ShardIterator& iterator, int limit, Page* page) const {
    detail::ReadSection section;  // for the fault configuration
    page->next_shard_iterator.reset();
    page->child_shards.clear();
    page->millis_behind_latest = 0;
    if (absl::Status s = context_->ValidateLimit(limit); !s.ok()) return s;
    if (context_->deleted.load(std::memory_order_acquire)) return context_->NotFound();
    if (!iterator.IsAuthentic() || iterator.stream_tag() != context_->tag ||
        iterator.shard_index() != index_ || iterator.position() > log_.End()) {
      return InvalidArgument("Invalid ShardIterator.");
    }
    const int64_t now_ms = context_->NowMs();
    if (GoneAt(now_ms)) return DeletedError();
    const int64_t issued_ms = absl::ToUnixMillis(iterator.issued_at());
    if (now_ms - issued_ms > context_->iterator_ttl_ms) {
      return ExpiredIterator(
          absl::StrCat("Iterator expired. The iterator was created at time ", issued_ms,
                       " while right now it is ", now_ms,
                       " which is further in the future than the tolerated delay of ",
                       context_->iterator_ttl_ms, " milliseconds."));
    }
    size_t max_records = static_cast<size_t>(limit);
    if (detail::FaultState* faults = context_->Faults(); KINLET_UNLIKELY(faults != nullptr)) {
      if (faults->dice.Roll(faults->config.throttle_read_fraction)) {
        read_counters_.throttled.fetch_add(1, std::memory_order_relaxed);
        return context_->RateExceeded(shard_id_);
      }
      if (faults->dice.Roll(faults->config.expire_iterator_fraction)) {
        return ExpiredIterator(absl::StrCat("Iterator expired (injected fault) for shard ",
                                            shard_id_, " in stream ", context_->name, "."));
      }
      if (faults->config.visibility_delay > absl::ZeroDuration()) {
        // Records that arrived within the delay are not visible yet.
        const int64_t visible_before =
            now_ms - absl::ToInt64Milliseconds(faults->config.visibility_delay) + 1;
        const uint64_t visible_end = LowerBoundArrival(visible_before);
        const uint64_t at = iterator.position();
        max_records = visible_end > at ? std::min<uint64_t>(max_records, visible_end - at) : 0;
      }
    }
    const bool read_limited = context_->limits.limits_reads();
    if (read_limited) {
      detail::SpinLockGuard lock(&read_mu_);
      if (!read_bytes_.Positive(now_ms) || !read_calls_.TryTake(1, now_ms)) {
        read_counters_.throttled.fetch_add(1, std::memory_order_relaxed);
        return context_->RateExceeded(shard_id_);
      }
    }
    uint64_t from = iterator.position();
    auto read = ReadInto(from, max_records, context_->max_get_records_bytes, now_ms, page);
    while (read.trimmed && context_->trimmed_reads == TrimmedReads::kContinueFromTrimHorizon) {
      // As Kinesis: continue from the oldest record still stored.
      from = std::max(from, TrimHorizon(now_ms));
      read = ReadInto(from, max_records, context_->max_get_records_bytes, now_ms, page);
    }
    if (read_limited && read.bytes > 0) {
      detail::SpinLockGuard lock(&read_mu_);
      read_bytes_.Charge(static_cast<int64_t>(read.bytes), now_ms);  // may go into debt
    }
    if (KINLET_UNLIKELY(!read.error.ok())) return read.error;
    if (read.trimmed) {
      return TrimmedDataAccess(absl::StrCat(
          "Iterator of shard ", shard_id_, " in stream ", context_->name, " points at position ",
          from, ", which retention or ring capacity has trimmed; the trim horizon is now ",
          TrimHorizon(now_ms), ". Get a new iterator (TRIM_HORIZON)."));
    }
    const uint64_t next = from + read.count;
    const bool closed = closed_.load(std::memory_order_acquire);
    if (closed && next >= end_position_) {
      page->child_shards = children_;
    } else {
      page->next_shard_iterator = ShardIterator::Issue(context_->tag, index_, next, now_ms);
    }
    if (std::optional<int64_t> arrival = ArrivalAt(next)) {
      page->millis_behind_latest = std::max<int64_t>(0, now_ms - *arrival);
    }
    if constexpr (MetricsEnabled<Traits>()) {
      read_counters_.calls.fetch_add(1, std::memory_order_relaxed);
      if (read.count != 0) {
        read_counters_.records.fetch_add(read.count, std::memory_order_relaxed);
        read_counters_.bytes.fetch_add(read.bytes, std::memory_order_relaxed);
      }
      read_counters_.RecordAge(page->millis_behind_latest, now_ms);
    }
    return absl::OkStatus();
  }

 public:
  // Blocks the calling thread until records are readable at `iterator` (or
  // the shard is closed, or the stream deleted), at most `timeout` of real
  // time; returns whether they are. The put that publishes a record wakes the
  // waiter directly (no polling); puts pay nothing while nobody waits. Use it
  // between GetRecords calls instead of spinning or sleeping.
  // Thread-safe; any number of waiters.
  bool WaitForRecords(const ShardIterator& iterator, absl::Duration timeout) const {
    return log_.WaitUntil([&] { return HasRecords(iterator); }, absl::ToChronoNanoseconds(timeout));
  }

  // True if GetRecords(iterator) has something new to say: a record is
  // published at or after the iterator's position, or the shard is closed (its
  // end and children), or the stream deleted. Costs one acquire load while the
  // answer is no (it reads only the line the writer publishes on), so a reader
  // that must see records the moment they land spins on this and calls
  // GetRecords only when it is true. Does not check the iterator (GetRecords
  // does). Thread-safe; lock-free.
  bool HasRecords(const ShardIterator& iterator) const {
    return log_.End() > iterator.position() || closed_.load(std::memory_order_acquire) ||
           context_->deleted.load(std::memory_order_acquire) ||
           reclaimed_.load(std::memory_order_acquire);
  }

  // As above, into a new page.
  absl::StatusOr<GetRecordsResult<Payload>> GetRecords(const ShardIterator& iterator,
                                                       int limit = 10000) const {
    GetRecordsResult<Payload> page;
    absl::Status s = GetRecords(iterator, limit, &page);
    if (!s.ok()) return s;
    return page;
  }

  // The oldest position readable now (records older than the retention period
  // are not readable even before the writer reclaims their space).
  uint64_t TrimHorizon(int64_t now_ms) const {
    return LowerBoundArrival(context_->ExpireBeforeMs(now_ms));
  }

  // The first stored position whose record arrived at or after `t_ms` (in
  // the ring, or on disk for a durable stream), or the end if none.
  uint64_t LowerBoundArrival(int64_t t_ms) const {
    const uint64_t in_ring = log_.LowerBoundArrival(t_ms);
    if (KINLET_LIKELY(disk_ == nullptr)) return in_ring;
    const uint64_t ring_begin = log_.Begin();
    if (in_ring > ring_begin) return in_ring;
    // Every record in the ring qualifies: older ones on disk may too.
    const uint64_t on_disk = std::max(disk_->LowerBoundArrival(t_ms), disk_->Begin());
    return std::min(on_disk, in_ring);
  }

  // Arrival time of the record at `position`, or nullopt if it is not stored.
  std::optional<int64_t> ArrivalAt(uint64_t position) const {
    if (std::optional<int64_t> t = log_.ArrivalAt(position); t || disk_ == nullptr) return t;
    if (position >= log_.End()) return std::nullopt;
    return disk_->ArrivalAt(position);
  }

  // Durable streams: the shard's segment files (null for in-memory streams,
  // and for a durable shard whose log could not be created: it refuses
  // writes with disk_status()). Set at construction, never changed.
  const storage::ShardLog* disk() const { return disk_.get(); }
  bool durable() const { return durable_; }

  ShardStats stats() const {
    ShardStats s;
    s.trim_horizon_position = TrimHorizon(context_->NowMs());
    s.end_position = log_.End();
    s.records_stored = s.end_position - std::min(s.end_position, s.trim_horizon_position);
    s.records_expired = log_.expired_records();
    s.records_overwritten = log_.overwritten_records();
    s.ring_bytes_in_use = log_.bytes_in_use();
    s.ring_capacity_bytes = log_.capacity_bytes();
    s.ring_capacity_records = log_.capacity_records();
    return s;
  }

  const RingLog<Payload>& log() const { return log_; }

  // This shard's metrics (see metrics.hpp). Thread-safe; lock-free.
  ShardMetrics Metrics() const {
    ShardMetrics m;
    m.shard_id = shard_id_;
    m.open = is_open();
    const auto r = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    m.incoming_bytes = r(write_counters_.incoming_bytes);
    m.incoming_records = r(write_counters_.incoming_records);
    m.put_record_success = r(write_counters_.put_record_success);
    m.put_records_successful_records = r(write_counters_.put_records_successful_records);
    m.put_records_failed_records = r(write_counters_.put_records_failed_records);
    m.write_provisioned_throughput_exceeded = r(write_counters_.write_throttled);
    m.shard_full_rejections = r(write_counters_.shard_full);
    m.read_provisioned_throughput_exceeded = r(read_counters_.throttled);
    m.get_records_success = r(read_counters_.calls);
    m.get_records_bytes = r(read_counters_.bytes);
    m.get_records_records = r(read_counters_.records);
    m.get_records_iterator_age_ms_max = read_counters_.iterator_age_ms_max.Max(context_->NowMs());
    m.get_records_iterator_age_ms = read_counters_.iterator_age_ms.load(std::memory_order_relaxed);
    m.get_records_latency_ns_total = r(read_counters_.latency_ns_total);
    const ShardStats s = stats();
    m.records_stored = s.records_stored;
    m.ring_bytes_in_use = s.ring_bytes_in_use;
    m.ring_capacity_bytes = s.ring_capacity_bytes;
    m.ring_capacity_records = s.ring_capacity_records;
    m.records_expired = s.records_expired;
    m.records_overwritten = s.records_overwritten;
    return m;
  }

 private:
  friend class Stream<Payload, Traits>;
  friend class Subscription<Payload, Traits>;
  friend class detail::ShardSet<Payload, Traits>;
  friend struct detail::DurableStreamOps<Stream<Payload, Traits>>;

  enum class AppendOutcome { kOk, kClosed, kFull, kThrottled, kInternalFailure, kStorageFailure };
  // Which API a write came from, for the metrics.
  enum class WriteApi { kPutRecord, kPutRecords };

  Shard(std::shared_ptr<detail::StreamContext<Clock>> context, uint32_t index, HashKeyRange range,
        std::optional<std::string> parent, std::optional<std::string> adjacent_parent,
        size_t capacity_records, size_t capacity_bytes, int64_t created_ms,
        detail::AttachedLog disk = {})
      : context_(std::move(context)),
        index_(index),
        shard_id_(ShardIdFor(index)),
        range_(range),
        parent_shard_id_(std::move(parent)),
        adjacent_parent_shard_id_(std::move(adjacent_parent)),
        created_ms_(created_ms),
        durable_(disk.durable),
        sync_every_put_(disk.durable && disk.sync == SyncPolicy::kEveryPut),
        log_(capacity_records, capacity_bytes),
        disk_(std::move(disk.log)),
        disk_status_(std::move(disk.status)) {
    if (disk_ != nullptr) {
      // A reopened shard continues where its files end.
      const uint64_t end = disk_->End();
      if (end != 0) log_.StartAt(end);
      if (end != 0) last_arrival_ms_ = disk_->ArrivalAt(end - 1).value_or(created_ms);
    }
    const int64_t now_ms = created_ms_;
    const ThroughputLimits& l = context_->limits;
    write_bytes_ = TokenBucket(l.write_bytes_per_second, l.write_bytes_per_second, now_ms);
    write_records_ = TokenBucket(l.write_records_per_second, l.write_records_per_second, now_ms);
    read_calls_ = TokenBucket(l.read_calls_per_second, l.read_calls_per_second, now_ms);
    read_bytes_ = TokenBucket(l.read_bytes_per_second, l.read_bytes_per_second, now_ms);
    iterator_calls_ = TokenBucket(l.get_shard_iterator_calls_per_second,
                                  l.get_shard_iterator_calls_per_second, now_ms);
  }

  // Reads up to `max_records` / `max_bytes` from position `from` into `page`
  // (polling reads and fan-out subscriptions alike). trimmed = true, with an
  // empty page, if `from` has expired or the ring dropped it, before or during
  // the read. Arrival times never decrease, so only `from` needs the expiry check.
  typename RingLog<Payload>::ReadOutcome ReadFrom(uint64_t from, size_t max_records,
                                                  size_t max_bytes, int64_t now_ms,
                                                  GetRecordsResult<Payload>* page) const {
    const bool expired = Expired(from, now_ms);
    typename RingLog<Payload>::ReadOutcome read{};
    if (!expired && from >= log_.Begin() && max_records > 0) {
      read = log_.Read(from, max_records, max_bytes, context_->tag, index_, page);
      // A durable ring evicts to make room: what it dropped meanwhile is on disk.
      if (read.trimmed && disk_ != nullptr) read = ReadDisk(from, max_records, max_bytes, page);
    } else if (!expired && disk_ != nullptr && max_records > 0) {
      read = ReadDisk(from, max_records, max_bytes, page);
    } else {
      detail::RecordBuffer<Payload>(page).Finish();  // an empty page
    }
    if (expired || (disk_ == nullptr && from < log_.Begin())) read = {0, 0, true, {}};
    return read;
  }

  // Reads records older than the ring from the segment files (durable
  // streams), up to the ring's published end.
  typename RingLog<Payload>::ReadOutcome ReadDisk(uint64_t from, size_t max_records,
                                                  size_t max_bytes,
                                                  GetRecordsResult<Payload>* page) const {
    typename RingLog<Payload>::ReadOutcome read{};
    detail::RecordBuffer<Payload> buffer(page);
    const uint64_t end = log_.End();
    if (from < end) {
      if constexpr (RingLog<Payload>::kStorage != PayloadStorage::kObject) {
        bool bad_size = false;
        absl::StatusOr<size_t> n =
            disk_->Read(from, std::min<uint64_t>(max_records, end - from), max_bytes,
                        [&](const storage::LogRecordView& r) {
                          Record<Payload>& rec = buffer.Push();
                          rec.sequence_number = Sequence(r.position);
                          rec.approximate_arrival_timestamp = absl::FromUnixMillis(r.arrival_ms);
                          rec.partition_key.assign(r.key.data(), r.key.size());
                          if (!detail::FillPayload(r.data, &rec.data)) bad_size = true;
                          read.bytes += r.key.size() + r.data.size();
                        });
        if (n.ok() && bad_size) {
          n = DataLoss(absl::StrCat("Shard ", shard_id_, " in stream ", context_->name,
                                    ": a stored record's payload size does not match the "
                                    "stream's payload type"));
        }
        if (n.ok()) {
          read.count = *n;
        } else {
          buffer.Rewind();
          read = {};
          if (IsTrimmedDataAccess(n.status())) {
            read.trimmed = true;
          } else {
            read.error = n.status();
          }
        }
      }
    }
    buffer.Finish();
    return read;
  }

  // True if `from` can no longer be read: trimmed (below the ring's Begin(),
  // by retention or capacity), or its record is older than the retention
  // period. False at or past the end. Copying and zero-copy reads both ask it.
  bool Expired(uint64_t from, int64_t now_ms) const {
    if (from < log_.Begin() && (disk_ == nullptr || from < disk_->Begin())) return true;
    const std::optional<int64_t> arrival = ArrivalAt(from);
    return arrival && *arrival < context_->ExpireBeforeMs(now_ms);
  }

  // Appends one record. REQUIRES: write_mu_ held. `now_ms` is read before the
  // lock is taken; arrival times are made non-decreasing here.
  // Limits are checked before anything is written and charged only after the
  // record is in: a refused write leaves no trace but its metric.
  // kPutRecords appends are not visible to readers until PublishLocked(),
  // which the batch calls once per shard before it releases the lock.
  ABSL_ATTRIBUTE_ALWAYS_INLINE AppendOutcome AppendLocked(std::string_view key, View data,
                                                          int64_t now_ms, SequenceNumber* sequence,
                                                          WriteApi api = WriteApi::kPutRecord)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    if (KINLET_UNLIKELY(closed_.load(std::memory_order_relaxed))) return AppendOutcome::kClosed;
    const int64_t bytes = static_cast<int64_t>(key.size() + PayloadTraits<Payload>::Size(data));
    if (detail::FaultState* faults = context_->Faults(); KINLET_UNLIKELY(faults != nullptr)) {
      if (faults->dice.Roll(faults->config.throttle_put_fraction)) {
        return Refuse(AppendOutcome::kThrottled, api);
      }
      if (api == WriteApi::kPutRecords &&
          faults->dice.Roll(faults->config.internal_failure_fraction)) {
        return Refuse(AppendOutcome::kInternalFailure, api);
      }
    }
    // A record larger than a second's worth of bytes (allowed up to 10 MiB)
    // passes when the bucket is full and leaves it in debt.
    const int64_t byte_gate = write_bytes_.unlimited() ? 0 : std::min(bytes, write_bytes_.burst());
    if (!write_records_.CanTake(1, now_ms) || !write_bytes_.CanTake(byte_gate, now_ms)) {
      return Refuse(AppendOutcome::kThrottled, api);
    }
    if (now_ms > last_arrival_ms_) last_arrival_ms_ = now_ms;
    uint64_t position = 0;
    if (KINLET_UNLIKELY(durable_)) {
      if (AppendOutcome o = AppendDurableLocked(key, data, now_ms, api, &position);
          o != AppendOutcome::kOk) {
        return o;
      }
    } else {
      auto status = log_.Append(key, data, last_arrival_ms_, context_->ExpireBeforeMs(now_ms),
                                context_->full_policy == FullPolicy::kOverwrite, &position,
                                /*publish=*/api == WriteApi::kPutRecord);
      if (KINLET_UNLIKELY(status != RingLog<Payload>::AppendStatus::kOk)) {
        return Refuse(AppendOutcome::kFull, api);
      }
    }
    write_records_.TryTake(1, now_ms);
    write_bytes_.Charge(bytes, now_ms);
    *sequence = Sequence(position);
    if constexpr (MetricsEnabled<Traits>()) {
      using C = detail::WriteCounters;
      C::Add(write_counters_.incoming_records, 1);
      C::Add(write_counters_.incoming_bytes, static_cast<uint64_t>(bytes));
      C::Add(api == WriteApi::kPutRecord ? write_counters_.put_record_success
                                         : write_counters_.put_records_successful_records,
             1);
    }
    return AppendOutcome::kOk;
  }

  // A durable stream's append: into the ring, unpublished (the ring is the
  // cache of the newest records: it evicts the oldest, which are on disk),
  // then into the segment file; if the disk refuses, the ring takes its copy
  // back and nothing is written. A killed process keeps the record once this
  // returns kOk (the bytes are in the page cache); the sync policy is applied
  // after the writer lock is released (SyncAfterPut).
  ABSL_ATTRIBUTE_NOINLINE AppendOutcome AppendDurableLocked(std::string_view key, View data,
                                                            int64_t now_ms, WriteApi api,
                                                            uint64_t* position)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    if (disk_ == nullptr) {
      disk_error_ = disk_status_;
      return Refuse(AppendOutcome::kStorageFailure, api);
    }
    const int64_t expire_before = context_->ExpireBeforeMs(now_ms);
    const typename RingLog<Payload>::WriterMark mark = log_.Mark();
    auto status = log_.Append(key, data, last_arrival_ms_, expire_before, /*overwrite=*/true,
                              position, /*publish=*/false);
    if (KINLET_UNLIKELY(status != RingLog<Payload>::AppendStatus::kOk)) {
      return Refuse(AppendOutcome::kFull, api);  // a pinned reader holds the ring
    }
    absl::Status written =
        disk_->Append(*position, last_arrival_ms_, key, detail::PayloadBytes<Payload>(data));
    if (!written.ok()) {
      log_.Rewind(mark);
      disk_error_ = std::move(written);
      return Refuse(AppendOutcome::kStorageFailure, api);
    }
    if (api == WriteApi::kPutRecord) log_.Publish();
    // Retention deletes whole segments; checking every 1,024 records keeps
    // the put path free of it (reads never return expired records anyway).
    if ((*position & 1023) == 0) disk_->DropExpired(expire_before);
    return AppendOutcome::kOk;
  }

  // Why the last durable append failed (kStorageFailure). REQUIRES: write_mu_.
  absl::Status TakeDiskErrorLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    absl::Status s = std::move(disk_error_);
    disk_error_ = absl::OkStatus();
    if (s.ok())
      s = StorageFailure(absl::StrCat("Shard ", shard_id_, " in stream ", context_->name,
                                      " could not write to disk."));
    return s;
  }

  // Applies the sync policy once the writer lock is released: with
  // SyncPolicy::kEveryPut, waits for the shared fsync that covers every record
  // below `end` (group commit). StorageFailureException if it failed.
  absl::Status SyncAfterPut(uint64_t end) const {
    if (!sync_every_put_ || disk_ == nullptr) return absl::OkStatus();
    return disk_->SyncThrough(end);
  }
  bool sync_every_put() const { return sync_every_put_; }

  // Makes a batch's appends visible. REQUIRES: write_mu_ held.
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) { log_.Publish(); }

  AppendOutcome Refuse(AppendOutcome why, WriteApi api) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    using C = detail::WriteCounters;
    if (why == AppendOutcome::kThrottled) C::Add(write_counters_.write_throttled, 1);
    if (why == AppendOutcome::kFull) C::Add(write_counters_.shard_full, 1);
    if (api == WriteApi::kPutRecords) C::Add(write_counters_.put_records_failed_records, 1);
    return why;
  }

  // Milliseconds until the write buckets could take a record of `bytes`.
  int64_t MillisUntilWritable(int64_t bytes, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    return std::max(write_records_.MillisUntil(1, now_ms), write_bytes_.MillisUntil(bytes, now_ms));
  }

  // Closes the shard to writes; `children` are reported at its end.
  // REQUIRES: write_mu_ held.
  void CloseLocked(std::vector<ChildShard> children, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    children_ = std::move(children);
    end_position_ = log_.End();
    // The segment files are sealed (fsync, index written). A failure leaves
    // the shard readable; its log reports it (disk()->health()).
    if (disk_ != nullptr) (void)disk_->Seal();
    closed_ms_ = now_ms;
    closed_.store(true, std::memory_order_release);  // publishes children_, end_position_
    log_.NotifyWaiters();
  }

  // Deletes the shard (the stream's reclamation of an expired closed shard):
  // every later call fails, blocked readers wake.
  void MarkDeleted() {
    reclaimed_.store(true, std::memory_order_release);
    log_.NotifyWaiters();
  }
  absl::Status DeletedError() const {
    return ResourceNotFound(absl::StrCat("Shard ", shard_id_, " in stream ", context_->name,
                                         " under account ", context_->account_id,
                                         " does not exist: it was closed and all its records "
                                         "are past the retention period."));
  }

  absl::Status FullError() const {
    return ShardFull(absl::StrCat("Shard ", shard_id_, " in stream ", context_->name,
                                  " is full: its ring of ", log_.capacity_records(), " records / ",
                                  log_.capacity_bytes(),
                                  " bytes holds only unexpired records (FullPolicy::kReject)."));
  }

  // Shared with the stream and its other shards and subscriptions: a held
  // shard handle keeps it (and so the deleted flag) alive.
  const std::shared_ptr<detail::StreamContext<Clock>> context_;
  const uint32_t index_;
  const std::string shard_id_;
  const HashKeyRange range_;
  const std::optional<std::string> parent_shard_id_;
  const std::optional<std::string> adjacent_parent_shard_id_;
  const int64_t created_ms_;

  // Writers of this shard take write_mu_ for the append only.
  using WriterLock = typename detail::WriterLockOf<Traits>::type;
  using WriterGuard = detail::LockGuard<WriterLock>;
  alignas(KINLET_CACHE_LINE_SIZE) mutable WriterLock write_mu_;
  int64_t last_arrival_ms_ ABSL_GUARDED_BY(write_mu_) = 0;
  // Durable streams (see AppendDurableLocked); on the writer's line, which
  // every put touches anyway. Set at construction.
  const bool durable_;
  const bool sync_every_put_;
  TokenBucket write_bytes_ ABSL_GUARDED_BY(write_mu_);
  TokenBucket write_records_ ABSL_GUARDED_BY(write_mu_);
  detail::WriteCounters write_counters_;  // written under write_mu_ (see metrics.hpp)

  // Readers take read_mu_ around the read buckets, only when read limits are on.
  alignas(KINLET_CACHE_LINE_SIZE) mutable detail::SpinLock read_mu_;
  mutable TokenBucket read_calls_ ABSL_GUARDED_BY(read_mu_);
  mutable TokenBucket read_bytes_ ABSL_GUARDED_BY(read_mu_);
  mutable TokenBucket iterator_calls_ ABSL_GUARDED_BY(read_mu_);
  mutable detail::ReadCounters read_counters_;

  RingLog<Payload> log_;

  // Durable streams: the segment files. Set at construction.
  const std::unique_ptr<storage::ShardLog> disk_;
  const absl::Status disk_status_;  // why disk_ is null on a durable shard
  absl::Status disk_error_ ABSL_GUARDED_BY(write_mu_);

  // Written once, under write_mu_, before the release store of closed_; read
  // after an acquire load of closed_ that saw true.
  std::vector<ChildShard> children_;
  uint64_t end_position_ = 0;
  int64_t closed_ms_ = 0;
  std::atomic<bool> closed_{false};
  std::atomic<bool> reclaimed_{false};  // set once by MarkDeleted (release)
};

}  // namespace kinlet
