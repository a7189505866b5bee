// kinlet/stream.hpp: a Kinesis data stream inside the process.
//
//   kinlet::StreamOptions options;
//   options.name = "clickstream-data";
//   options.shard_count = 4;
//   auto stream = kinlet::Stream<std::string>::Create(options);
//   auto put = (*stream)->PutRecord("user123", R"({"event":"viewed_product"})");
//   auto it = (*stream)->GetShardIterator(put->shard_id,
//                 kinlet::IteratorPosition::AtSequenceNumber(put->sequence_number));
//   auto page = (*stream)->GetRecords(*it, /*limit=*/100);
//
// Stream<Payload, Traits> partitions the 128-bit hash key space over its open
// shards; each record goes to the open shard whose [starting, ending] hash key
// range holds the hash of its partition key (or its explicit hash key). Shards
// are looked up by binary search over the sorted open ranges.
//
// Thread safety: every public method is thread-safe. Any number of threads may
// put and read at once. Puts to one shard are ordered by the shard's writer
// lock; two puts from one thread with one partition key keep their order.
// Reads never take a lock. The routing table is immutable once published and
// swapped atomically by resharding (release store; writers load with acquire).
//
// Resharding (SplitShard, MergeShards, UpdateShardCount, on-demand mode) is
// live: the new routing table is published first, then each parent is closed
// under its writer lock, so a put lands in the parent (before it closes) or in
// a child (after; the writer that finds its shard closed routes again), never
// both and never neither. Control calls are serialised by one control lock;
// the data path never takes it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kinlet/detail/epoch.hpp"
#include "kinlet/detail/list_shards.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/reshard_planner.hpp"
#include "kinlet/detail/shard_set.hpp"
#include "kinlet/detail/shard_table.hpp"
#include "kinlet/detail/stream_consumers.hpp"
#include "kinlet/detail/stream_store.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/fan_out.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/metrics.hpp"
#include "kinlet/on_demand.hpp"
#include "kinlet/payload.hpp"
#include "kinlet/put_records.hpp"
#include "kinlet/record.hpp"
#include "kinlet/resharding.hpp"
#include "kinlet/retry.hpp"
#include "kinlet/sequence_number.hpp"
#include "kinlet/shard.hpp"
#include "kinlet/shard_iterator.hpp"
#include "kinlet/stream_options.hpp"
#include "kinlet/traits.hpp"

namespace kinlet {

namespace detail {
template <typename StreamT>
struct DurableStreamOps;  // detail/durable_stream.hpp

inline uint32_t NextStreamTag() {
  // Process-unique, and unlikely to repeat across processes, so that sequence
  // numbers and iterators of another stream are recognised.
  // (Unsigned arithmetic: the product overflows 64 bits, which for the signed
  // nanosecond count was undefined behaviour; found by tests/fuzz.)
  static std::atomic<uint32_t> next{
      static_cast<uint32_t>((static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) >> 10) *
                            uint64_t{2654435761u}) |
      1u};
  uint32_t tag;
  do {
    tag = next.fetch_add(0x9E3779B1u, std::memory_order_relaxed);
  } while (tag == 0);
  return tag;
}
}  // namespace detail

template <RecordPayload Payload, StreamTraits Traits = DefaultStreamTraits>
class Stream : public std::enable_shared_from_this<Stream<Payload, Traits>> {
 public:
  using payload_type = Payload;
  using ShardType = Shard<Payload, Traits>;
  // What GetShard, OpenShards and AllShards hand out: an owning handle. The
  // shard it names stays valid while it is held, even after the stream
  // deletes the shard (closed, every record past retention) or is itself
  // deleted or destroyed: every call then fails with
  // ResourceNotFoundException. (The stream's clock must outlive it.)
  using ShardHandle = std::shared_ptr<ShardType>;
  using View = typename PayloadTraits<Payload>::View;
  using Entry = PutRecordsRequestEntry<Payload>;
  using Page = GetRecordsResult<Payload>;
  // A page of zero-copy GetRecords (records_view.hpp).
  using PageView = GetRecordsView<Payload>;
  using Clock = typename Traits::Clock;

  // Creates a stream. InvalidArgumentException/ValidationException for bad
  // options (see ValidateStreamOptions); `clock` must outlive the stream and
  // is required when Traits::Clock has no default instance (ManualClock).
  static absl::StatusOr<std::unique_ptr<Stream>> Create(StreamOptions options,
                                                        Clock* clock = Clock::Default()) {
    if (clock == nullptr) return InvalidArgument("a clock instance is required");
    absl::Status valid = ValidateStreamOptions(options);
    if (!valid.ok()) return valid;
    if (options.stream_mode == StreamMode::kOnDemand && !MetricsEnabled<Traits>()) {
      return NoMetricsError();
    }
    if (options.storage.durable()) {
      return detail::DurableStreamOps<Stream>::Create(std::move(options), clock);
    }
    return std::unique_ptr<Stream>(new Stream(std::move(options), clock));
  }

  // Reopens the durable stream in `directory` (see StorageOptions), in this
  // or a new process: every acknowledged record, its shards with their hash
  // key ranges and lineage, retention, stream mode, registered consumers and
  // encryption, and the sequence numbers it issued. `options` gives the
  // settings that are not the stream's state (limits, ring capacity, sync
  // policy, faults, ...); its storage.directory is set to `directory`; its
  // name, if not empty, must be the stored one. What recovery found (torn
  // tails cut, lost ranges) is in recovery_notes().
  // Errors: ResourceNotFoundException if `directory` holds no stream;
  // ResourceInUseException if it is open (in this or another process);
  // InvalidArgumentException for options that do not fit the stored stream
  // (another name, another payload type) or bad options; DataLossException
  // for metadata that cannot be read; StorageFailureException.
  static absl::StatusOr<std::unique_ptr<Stream>> Open(std::string_view directory,
                                                      StreamOptions options,
                                                      Clock* clock = Clock::Default()) {
    if (clock == nullptr) return InvalidArgument("a clock instance is required");
    return detail::DurableStreamOps<Stream>::Open(directory, std::move(options), clock);
  }

  // Durable streams: what opening the stream found and did, one line each
  // (empty for a new or an in-memory stream).
  std::vector<std::string> recovery_notes() const {
    detail::MutexLock lock(&shards_.control_mu_);
    return store_ != nullptr ? store_->notes() : std::vector<std::string>{};
  }

  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Marks the stream deleted for every handle still held (shards,
  // subscriptions): their calls fail with ResourceNotFoundException.
  ~Stream() {
    context_.deleted.store(true, std::memory_order_release);
    detail::MutexLock lock(&shards_.control_mu_);
    shards_.NotifyAllLocked();
  }

  const std::string& name() const { return context_.name; }
  const std::string& arn() const { return arn_; }
  const StreamOptions& options() const { return options_; }
  Clock* clock() const { return context_.clock; }
  absl::Duration retention_period() const {
    return absl::Milliseconds(context_.retention_ms.load(std::memory_order_relaxed));
  }
  // True once DeleteStream (Registry) has deleted it; every call then fails
  // with ResourceNotFoundException.
  bool deleted() const { return context_.deleted.load(std::memory_order_acquire); }

  // ---- Writes ---------------------------------------------------------------

  // Writes one record to the shard that owns its hash key.
  // Errors: ValidationException for a partition key outside 1..256 characters
  // or a payload over the maximum record size; InvalidArgumentException for a
  // key that is not UTF-8, a key + payload over the maximum record size, or a
  // sequence_number_for_ordering this stream did not issue; ShardFullException
  // when the shard's ring is full of unexpired records (FullPolicy::kReject:
  // nothing is written); ProvisionedThroughputExceededException ("Rate
  // exceeded for shard ...") over the shard's write limits (nothing is
  // written); ResourceNotFoundException after the stream is deleted.
  // Thread-safe. Allocates nothing on success.
  absl::StatusOr<PutRecordResult> PutRecord(std::string_view partition_key, View data,
                                            const PutRecordOptions& options = {}) {
    if (KINLET_UNLIKELY(deleted())) return context_.NotFound();
    const size_t data_size = PayloadTraits<Payload>::Size(data);
    if (absl::Status s = ValidateRecord(partition_key, data_size, /*entry=*/-1);
        KINLET_UNLIKELY(!s.ok())) {
      return s;
    }
    if (options.sequence_number_for_ordering.has_value()) {
      if (absl::Status s = ValidateOrdering(*options.sequence_number_for_ordering); !s.ok()) {
        return s;
      }
    }
    const int64_t now_ms = context_.NowMs();
    MaybeScaleOnDemand(now_ms);
    MaybeReclaim(now_ms);
    detail::ReadSection section;  // the routing table and shard stay alive
    for (;;) {
      ShardType* shard = RouteKey(partition_key, options.explicit_hash_key);
      SequenceNumber sequence;
      typename ShardType::AppendOutcome outcome;
      absl::Status disk_error;
      {
        typename ShardType::WriterGuard lock(&shard->write_mu_);
        outcome = shard->AppendLocked(partition_key, data, now_ms, &sequence);
        if (KINLET_UNLIKELY(outcome == ShardType::AppendOutcome::kStorageFailure)) {
          disk_error = shard->TakeDiskErrorLocked();
        }
      }
      if (KINLET_LIKELY(outcome == ShardType::AppendOutcome::kOk)) {
        if (KINLET_UNLIKELY(shard->sync_every_put())) {
          if (absl::Status s = shard->SyncAfterPut(sequence.position() + 1); !s.ok()) return s;
        }
        return PutRecordResult{shard->shard_id(), sequence};
      }
      if (outcome == ShardType::AppendOutcome::kStorageFailure) return disk_error;
      if (outcome == ShardType::AppendOutcome::kFull) return shard->FullError();
      if (outcome == ShardType::AppendOutcome::kThrottled) {
        return context_.RateExceeded(shard->shard_id());
      }
      // kClosed: a reshard closed the shard after we routed; route again.
    }
  }

  // Writes a batch. Every entry is attempted; `result` gets one entry per
  // request entry, in request order, and failed_record_count. Entries to one
  // shard are written under one acquisition of its lock, in request order.
  // Request-level errors fail the whole call and write nothing:
  // ValidationException for 0 or more than 500 entries (max_put_records_entries)
  // or a bad entry (as PutRecord), InvalidArgumentException "Records size
  // exceeds 5 MB limit" (max_put_records_bytes), ResourceNotFoundException.
  // Per-entry failures (the rest still succeed): ProvisionedThroughputExceeded
  // (the shard's write limits), ShardFull, InternalFailure (injected faults).
  // Thread-safe. Allocates nothing when `result` is reused.
  absl::Status PutRecords(std::span<const Entry> entries, PutRecordsResult* result) {
    result->failed_record_count = 0;
    absl::Status status = WriteBatch(entries, result);
    if (!status.ok()) result->records.clear();
    return status;
  }

 private:
  // PutRecords's body. On error `result->records` may hold garbage: the caller
  // clears it. Entries are kept (not cleared) between calls so that a reused
  // result constructs nothing.
  absl::Status WriteBatch(std::span<const Entry> entries, PutRecordsResult* result);

  // SyncPolicy::kEveryPut: after the entries `group` of a batch are written
  // to `shard` (some may have failed), waits for the fsync covering them; if
  // it fails, those written fail with its StorageFailureException (they may
  // survive a crash, but are not promised to survive a power loss).
  void SyncBatch(ShardType* shard, std::span<const uint32_t> group, PutRecordsResult* result);

 public:
  // As above, returning a new result.
  absl::StatusOr<PutRecordsResult> PutRecords(std::span<const Entry> entries) {
    PutRecordsResult result;
    absl::Status s = PutRecords(entries, &result);
    if (!s.ok()) return s;
    return result;
  }
  absl::StatusOr<PutRecordsResult> PutRecords(std::initializer_list<Entry> entries) {
    return PutRecords(std::span<const Entry>(entries.begin(), entries.size()));
  }

  // PutRecord, retried with exponential backoff and jitter (see retry.hpp) while
  // it is throttled or the shard is full, until it succeeds, attempts run out
  // or the deadline would pass: a put that waits for capacity. Sleeps through
  // the stream's clock (simulated with ManualClock). Errors: the last
  // attempt's. Thread-safe.
  absl::StatusOr<PutRecordResult> PutRecordWithRetry(std::string_view partition_key, View data,
                                                     const RetryOptions& retry = {},
                                                     const PutRecordOptions& options = {}) {
    return RetryWithBackoff(*context_.clock, retry,
                            [&] { return PutRecord(partition_key, data, options); });
  }

  // PutRecords, then again for the entries that failed with a retryable error
  // (throttling, full ring, InternalFailure), with backoff, until none fails or
  // attempts or time run out. `result` holds, in request order, each entry's
  // final outcome. Request-level errors return at once. Entries that succeed
  // are never written twice. Thread-safe.
  absl::Status PutRecordsWithRetry(std::span<const Entry> entries, const RetryOptions& retry,
                                   PutRecordsResult* result) {
    return detail::PutRecordsRetrying(*context_.clock, retry, entries, result,
                                      [&](std::span<const Entry> batch, PutRecordsResult* out) {
                                        return PutRecords(batch, out);
                                      });
  }

  // ---- Enhanced fan-out (see fan_out.hpp) ----------------------------------

  using SubscriptionType = Subscription<Payload, Traits>;
  using Event = SubscribeToShardEvent<Payload>;

  // RegisterStreamConsumer: a named consumer with its own read budget per
  // shard (limits.subscribe_bytes_per_second), ACTIVE at once. Its ARN ends
  // with the creation time in seconds, so a consumer registered again under
  // the same name has another ARN. Errors: ValidationException for a name
  // outside [a-zA-Z0-9_.-]{1,128}; ResourceInUseException if the name is
  // taken; LimitExceededException beyond max_stream_consumers (20);
  // ResourceNotFoundException if the stream was deleted. Thread-safe.
  absl::StatusOr<StreamConsumerDescription> RegisterStreamConsumer(std::string_view consumer_name) {
    if (deleted()) return context_.NotFound();
    absl::StatusOr<StreamConsumerDescription> d =
        consumers_.Register(consumer_name, context_.clock->Now());
    if (d.ok() && store_ != nullptr) {
      detail::MutexLock lock(&shards_.control_mu_);
      if (absl::Status s = SaveLocked(); !s.ok()) return s;
    }
    return d;
  }

  // DeregisterStreamConsumer, by name or ARN: ends its subscriptions
  // (kConsumerDeregistered). ResourceNotFoundException for an unknown
  // consumer or a deleted stream. Thread-safe.
  absl::Status DeregisterStreamConsumer(std::string_view consumer) {
    if (deleted()) return context_.NotFound();
    absl::Status s = consumers_.Deregister(consumer, context_.NowMs(), [&](uint32_t index) {
      detail::ReadSection section;
      if (ShardType* shard = ShardAt(index)) shard->log().NotifyWaiters();
    });
    if (s.ok() && store_ != nullptr) {
      detail::MutexLock lock(&shards_.control_mu_);
      return SaveLocked();
    }
    return s;
  }

  // DescribeStreamConsumer, by name or ARN. ResourceNotFoundException for an
  // unknown consumer or a deleted stream. Thread-safe.
  absl::StatusOr<StreamConsumerDescription> DescribeStreamConsumer(
      std::string_view consumer) const {
    if (deleted()) return context_.NotFound();
    return consumers_.Describe(consumer);
  }

  // ListStreamConsumers, in registration order. ResourceNotFoundException if
  // the stream was deleted. Thread-safe.
  absl::StatusOr<std::vector<StreamConsumerDescription>> ListStreamConsumers() const {
    if (deleted()) return context_.NotFound();
    return consumers_.List();
  }

  // SubscribeToShard, pull mode: a handle whose Next() returns the consumer's
  // events from `start` (any IteratorPosition, with GetShardIterator's rules).
  // Errors: ResourceNotFoundException for an unknown consumer (name or ARN) or
  // shard, or a deleted stream; ResourceInUseException while this consumer's
  // subscription to the shard is active and less than
  // subscription_takeover_after (5 s) old (later, the new one takes over and
  // the old one ends with kTakenOver; an ended one never blocks a new one);
  // InvalidArgumentException for a bad start. Thread-safe.
  absl::StatusOr<std::unique_ptr<SubscriptionType>> SubscribeToShard(
      std::string_view consumer, std::string_view shard_id, const IteratorPosition& start) {
    absl::StatusOr<ShardHandle> shard = GetShard(shard_id);
    if (!shard.ok()) return shard.status();
    const int64_t now_ms = context_.NowMs();
    return consumers_.Subscribe(
        consumer, (*shard)->index(), (*shard)->shard_id(), now_ms,
        [&] { return (*shard)->ResolvePosition(start, now_ms, "SubscribeToShard"); },
        [&] { (*shard)->log().NotifyWaiters(); },
        [&](std::shared_ptr<detail::SubscriptionState> state, std::string_view consumer_arn,
            uint64_t position) {
          return std::unique_ptr<SubscriptionType>(new SubscriptionType(
              *shard, context_owner_, std::move(state), std::string(consumer_arn), position, now_ms,
              absl::ToInt64Milliseconds(options_.subscription_lifetime),
              options_.limits.subscribe_bytes_per_second, options_.max_get_records_bytes));
        });
  }

  // SubscribeToShard, push mode: `on_event` runs for every event with records,
  // for the final event of a closed shard and for heartbeats (every
  // subscription_heartbeat while idle), on the process's shared delivery pool
  // (one thread per core, detail/delivery_pool.hpp: no thread per
  // subscription, none busy while idle), or as tasks on `executor`; one at a
  // time and in order either way. `on_end` runs once with the status that
  // ended it (see Subscription::Next). Destroying the handle cancels it and
  // waits for the callback in progress (see ~Subscription). Errors as the
  // pull form. Thread-safe.
  absl::StatusOr<std::unique_ptr<SubscriptionType>> SubscribeToShard(
      std::string_view consumer, std::string_view shard_id, const IteratorPosition& start,
      typename SubscriptionType::Callback on_event,
      typename SubscriptionType::EndCallback on_end = {}, Executor executor = {}) {
    return SubscribeAndDeliver(consumer, shard_id, start, std::move(on_event), std::move(on_end),
                               std::move(executor));
  }
  // As above, with zero-copy events: `on_event` gets views of the shard's
  // stored records, valid while it runs (see Subscription::NextView: keep it
  // short, do not write to the same shard from it). A lambda must name its
  // parameter type (const SubscribeToShardEventView<Payload>&) to pick this
  // form. Errors as the pull form. Thread-safe.
  absl::StatusOr<std::unique_ptr<SubscriptionType>> SubscribeToShard(
      std::string_view consumer, std::string_view shard_id, const IteratorPosition& start,
      typename SubscriptionType::ViewCallback on_event,
      typename SubscriptionType::EndCallback on_end = {}, Executor executor = {}) {
    return SubscribeAndDeliver(consumer, shard_id, start, std::move(on_event), std::move(on_end),
                               std::move(executor));
  }

 private:
  // The push forms: subscribe, then start the delivery.
  template <typename OnEvent>
  absl::StatusOr<std::unique_ptr<SubscriptionType>> SubscribeAndDeliver(
      std::string_view consumer, std::string_view shard_id, const IteratorPosition& start,
      OnEvent on_event, typename SubscriptionType::EndCallback on_end, Executor executor) {
    absl::StatusOr<std::unique_ptr<SubscriptionType>> sub =
        SubscribeToShard(consumer, shard_id, start);
    if (!sub.ok()) return sub;
    (*sub)->StartDelivery(std::move(on_event), std::move(on_end), std::move(executor),
                          options_.subscription_heartbeat);
    return sub;
  }

 public:
  // ---- Metrics and faults --------------------------------------------------

  // A snapshot of every shard's metrics and their sum (see metrics.hpp), with
  // the scaling event log. Thread-safe; reads the counters without locks and
  // takes the event log's own lock (never held across a reshard) to copy it.
  StreamMetrics GetMetrics() const {
    StreamMetrics m;
    m.stream_name = context_.name;
    m.taken_at = context_.clock->Now();
    for (const ShardHandle& shard : AllShards()) {
      m.shards.push_back(shard->Metrics());
      m.totals.Accumulate(m.shards.back());
    }
    m.open_shard_count = open_shard_count();
    events_.Copy(&m.scaling_events, &m.scaling_event_counts);
    return m;
  }

  // Replaces the injected faults (see faults.hpp); a default FaultInjection
  // turns them off. InvalidArgumentException for fractions outside [0, 1] or
  // a negative delay. Thread-safe: calls in flight see the old or the new one.
  absl::Status SetFaultInjection(const FaultInjection& faults) {
    StreamOptions check = options_;
    check.faults = faults;
    if (absl::Status s = ValidateStreamOptions(check); !s.ok()) return s;
    detail::MutexLock lock(&shards_.control_mu_);
    // The configuration in force is retired, not freed: a call may still hold
    // it (inside a ReadSection) until the next grace period.
    std::unique_ptr<detail::FaultState> next =
        faults.enabled() ? std::make_unique<detail::FaultState>(faults) : nullptr;
    context_.faults.store(next.get(), std::memory_order_release);
    if (faults_ != nullptr) {
      shards_.RetireLocked(std::shared_ptr<detail::FaultState>(faults_.release()));
    }
    faults_ = std::move(next);
    ReclaimLocked(context_.NowMs());
    return absl::OkStatus();
  }

  // ---- Reads ----------------------------------------------------------------

  // The shard with this id. Accepts Kinesis's loose forms ("shardId-7", "7").
  // ResourceNotFoundException if there is no such shard or the stream was
  // deleted, or the shard was deleted (closed and past retention).
  // Thread-safe; lock-free. The handle keeps the shard alive (see ShardHandle).
  absl::StatusOr<ShardHandle> GetShard(std::string_view shard_id) const {
    if (deleted()) return context_.NotFound();
    const std::optional<int64_t> index = ShardIndexOf(shard_id);
    if (index && *index < shards_.count()) {
      detail::ReadSection section;
      ShardType* shard = ShardAt(static_cast<uint64_t>(*index));
      if (shard != nullptr && !shard->GoneAt(context_.NowMs())) return shard->shared_from_this();
    }
    return ResourceNotFound(absl::StrCat("Shard ", detail::ToAbsl(shard_id), " in stream ",
                                         context_.name, " under account ", context_.account_id,
                                         " does not exist"));
  }

  // See Shard::GetShardIterator. Also ResourceNotFoundException for an
  // unknown shard. Thread-safe; lock-free.
  absl::StatusOr<ShardIterator> GetShardIterator(std::string_view shard_id,
                                                 const IteratorPosition& position) const {
    absl::StatusOr<ShardHandle> shard = GetShard(shard_id);
    if (!shard.ok()) return shard.status();
    return (*shard)->GetShardIterator(position);
  }

  // See Shard::GetRecords. InvalidArgumentException for an iterator of
  // another stream. Thread-safe; lock-free; allocates nothing when `page` is
  // reused (and its buffers have grown to the records' sizes).
  absl::Status GetRecords(const ShardIterator& iterator, int limit, Page* page) const {
    return ReadShard(iterator, limit, page);
  }
  // As above, lending the records in place instead of copying them (zero-copy
  // polling; see records_view.hpp for how long the views stay valid and what
  // writers do meanwhile). Same records, errors and iterators. Thread-safe
  // (one thread per page); lock-free; allocates nothing in steady state.
  absl::Status GetRecords(const ShardIterator& iterator, int limit, PageView* page) const {
    return ReadShard(iterator, limit, page);
  }

 private:
  template <typename P>
  absl::Status ReadShard(const ShardIterator& iterator, int limit, P* page) const {
    detail::ReadSection section;
    const ShardType* shard = ShardOf(iterator);
    if (shard == nullptr) {
      if constexpr (std::is_same_v<P, PageView>) {
        page->Release();
      } else {
        detail::RecordBuffer<Payload>(page).Finish();  // leaves the page empty
      }
      page->next_shard_iterator.reset();
      page->child_shards.clear();
      if (absl::Status s = context_.ValidateLimit(limit); !s.ok()) return s;
      if (deleted()) return context_.NotFound();
      if (IsOurs(iterator)) {
        return ResourceNotFound(absl::StrCat("Shard ", ShardIdFor(iterator.shard_index()),
                                             " in stream ", context_.name, " under account ",
                                             context_.account_id, " does not exist"));
      }
      return InvalidArgument("Invalid ShardIterator.");
    }
    return shard->GetRecords(iterator, limit, page);
  }

 public:
  // See Shard::HasRecords. False for an iterator of another stream; true for
  // one of a deleted shard (GetRecords then says so).
  bool HasRecords(const ShardIterator& iterator) const {
    detail::ReadSection section;
    const ShardType* shard = ShardOf(iterator);
    return shard != nullptr ? shard->HasRecords(iterator) : IsOurs(iterator);
  }
  // See Shard::WaitForRecords. False for an iterator of another stream.
  bool WaitForRecords(const ShardIterator& iterator, absl::Duration timeout) const {
    ShardHandle shard;  // held across the wait (never wait inside a ReadSection)
    {
      detail::ReadSection section;
      ShardType* raw = const_cast<ShardType*>(ShardOf(iterator));
      if (raw == nullptr) return IsOurs(iterator);
      shard = raw->shared_from_this();
    }
    return shard->WaitForRecords(iterator, timeout);
  }

  absl::StatusOr<Page> GetRecords(const ShardIterator& iterator, int limit = 10000) const {
    Page page;
    absl::Status s = GetRecords(iterator, limit, &page);
    if (!s.ok()) return s;
    return page;
  }
  // Takes the iterator's text form (ShardIterator::ToString()).
  absl::StatusOr<Page> GetRecords(std::string_view shard_iterator, int limit = 10000) const {
    absl::StatusOr<ShardIterator> it = ShardIterator::Parse(shard_iterator);
    if (!it.ok()) return it.status();
    return GetRecords(*it, limit);
  }

  // ---- Shards and description ----------------------------------------------

  // The open shards, in hash key order. Thread-safe; lock-free.
  std::vector<ShardHandle> OpenShards() const {
    detail::ReadSection section;
    std::vector<ShardHandle> out;
    for (ShardType* shard : shards_.routing()->shards) {
      out.push_back(shard->shared_from_this());
    }
    return out;
  }
  // Every shard the stream holds (open, and closed ones not yet deleted for
  // being past retention), in creation order. Thread-safe; lock-free.
  std::vector<ShardHandle> AllShards() const {
    detail::ReadSection section;
    std::vector<ShardHandle> out;
    for (ShardType* shard : shards_.held()) {
      out.push_back(shard->shared_from_this());
    }
    return out;
  }
  int open_shard_count() const {
    detail::ReadSection section;
    return static_cast<int>(shards_.routing()->shards.size());
  }
  // Shards the stream holds now (open and closed within retention).
  int held_shard_count() const {
    detail::ReadSection section;
    return static_cast<int>(shards_.held().size());
  }

  // ListShards without paging: every shard within retention (open, or closed
  // and still holding unexpired records), in creation order.
  // ResourceNotFoundException if deleted. Thread-safe; lock-free.
  absl::StatusOr<std::vector<ShardDescription>> ListShards() const {
    return ListShardsMatching(ShardFilter::FromTrimHorizon(), /*after_index=*/-1);
  }

  // ListShards as Kinesis, with its ShardFilter types and paging (see
  // ListShardsRequest). Shards whose records have all expired are not listed.
  // Errors: ValidationException for max_results outside 1..10000;
  // InvalidArgumentException for a next_token combined with other fields, a
  // next_token of another stream or malformed, AFTER_SHARD_ID without a shard
  // id; ExpiredNextTokenException for a next_token older than 5 minutes;
  // ResourceNotFoundException if deleted. Thread-safe; lock-free.
  absl::StatusOr<ListShardsResult> ListShards(const ListShardsRequest& request) const {
    if (deleted()) return context_.NotFound();
    return detail::ListShardsPage(request, context_.name, context_.tag, context_.NowMs(),
                                  [&](const ShardFilter& filter, int64_t after) {
                                    return ListShardsMatching(filter, after);
                                  });
  }

  // DescribeStreamSummary / DescribeStream. stream_status is UPDATING for
  // StreamOptions::update_duration after a reshard or mode switch.
  // ResourceNotFoundException if deleted. Thread-safe.
  absl::StatusOr<StreamDescriptionSummary> DescribeStreamSummary() const {
    if (deleted()) return context_.NotFound();
    StreamDescriptionSummary d;
    d.stream_name = context_.name;
    d.stream_arn = arn_;
    d.stream_status = context_.NowMs() < updating_until_ms_.load(std::memory_order_relaxed)
                          ? StreamStatus::kUpdating
                          : StreamStatus::kActive;
    d.retention_period = retention_period();
    d.stream_creation_timestamp = created_at_;
    d.open_shard_count = open_shard_count();
    d.max_record_size_bytes = options_.max_record_size_bytes;
    d.stream_mode = stream_mode();
    d.consumer_count = consumers_.size();
    {
      detail::MutexLock lock(&encryption_mu_);
      d.encryption_type = encryption_type_;
      d.key_id = key_id_;
    }
    return d;
  }

  // ---- Encryption at rest (see storage/encryption.hpp) ----------------------

  // StartStreamEncryption: records put from now on are encrypted at rest with
  // the stream's storage.cipher_factory (AES-256-GCM in kinlet::crypto) under
  // data keys that storage.key_provider makes for `key_id` (the KMS envelope
  // pattern: a data key per segment, stored wrapped). Records already stored
  // stay as they are and stay readable. Descriptions report KMS and the key
  // id. An in-memory stream keeps nothing at rest: it records and reports the
  // setting only, as a test double of AWS. Calling it again with another key
  // switches keys for new records. Errors: InvalidArgumentException for a
  // type other than kKms ("Encryption type must be KMS.") or an empty key id;
  // for a durable stream, InvalidArgumentException without a key provider
  // and a cipher factory, the provider's KMS errors for a key that cannot be
  // used (KMSNotFoundException, KMSDisabledException,
  // KMSAccessDeniedException, KMSInvalidStateException, ...) with nothing
  // changed, and StorageFailureException; ResourceNotFoundException once
  // deleted. Thread-safe; serialised with other control calls.
  absl::Status StartStreamEncryption(EncryptionType type, std::string_view key_id) {
    return ChangeEncryption(type, key_id, /*start=*/true);
  }
  // StopStreamEncryption: records put from now on are stored in plain text;
  // encrypted ones stay encrypted and readable (the key provider must still
  // unwrap their keys). Errors as StartStreamEncryption.
  absl::Status StopStreamEncryption(EncryptionType type, std::string_view key_id) {
    return ChangeEncryption(type, key_id, /*start=*/false);
  }
  EncryptionType encryption_type() const {
    detail::MutexLock lock(&encryption_mu_);
    return encryption_type_;
  }

  // ---- Tags ----------------------------------------------------------------

  // AddTagsToStream: adds `tags`, replacing the values of keys already there.
  // Errors, as AWS: InvalidArgumentException for no tags, a key outside 1..128
  // characters or a value over 256; LimitExceededException if the stream
  // would have more than 50 tags (nothing is added); ResourceNotFoundException
  // once deleted; StorageFailureException if a durable stream could not keep
  // them (they stand in memory). Thread-safe.
  absl::Status AddTagsToStream(const std::map<std::string, std::string>& tags);
  // RemoveTagsFromStream: keys not present are ignored. Errors:
  // ResourceNotFoundException once deleted; StorageFailureException as above.
  absl::Status RemoveTagsFromStream(std::span<const std::string> keys);
  // ListTagsForStream: every tag, by key. ResourceNotFoundException once
  // deleted. Thread-safe; the result is a copy.
  absl::StatusOr<std::map<std::string, std::string>> ListTagsForStream() const {
    if (deleted()) return context_.NotFound();
    detail::MutexLock lock(&encryption_mu_);
    return tags_;
  }
  absl::StatusOr<StreamDescription> DescribeStream() const {
    absl::StatusOr<StreamDescriptionSummary> summary = DescribeStreamSummary();
    if (!summary.ok()) return summary.status();
    StreamDescription d;
    static_cast<StreamDescriptionSummary&>(d) = *std::move(summary);
    d.shards = *ListShards();
    d.options = options_;
    d.options.retention_period = d.retention_period;
    d.options.stream_mode = d.stream_mode;
    return d;
  }

  // Retention changes, with Kinesis's direction rules: Increase needs a longer
  // period and Decrease a shorter one than the current (else
  // InvalidArgumentException); the period must be positive. A decrease hides
  // older records at once; an increase does not bring back trimmed ones.
  // Thread-safe.
  absl::Status IncreaseStreamRetentionPeriod(absl::Duration period) {
    return ChangeRetention(period, /*increase=*/true);
  }
  absl::Status DecreaseStreamRetentionPeriod(absl::Duration period) {
    return ChangeRetention(period, /*increase=*/false);
  }

  // ---- Resharding and capacity modes ---------------------------------------

  // SplitShard: closes the open shard `shard_to_split` and creates two children
  // with the next shard ids, [S, K-1] and [K, E] for the parent's [S, E] and
  // K = new_starting_hash_key, each with parent_shard_id set. Writers switch
  // atomically: each record lands in the parent (before it closes) or in the
  // child that owns its hash key (after), never both. The parent stays
  // readable; at its end GetRecords returns no next iterator and the children.
  // Errors: ResourceNotFoundException (unknown shard, deleted stream);
  // InvalidArgumentException if the shard is closed ("has already been merged
  // or split") or unless S + 1 < K < E (AWS's message); LimitExceededException
  // beyond max_shard_count or max_open_shard_count; ResourceInUseException while
  // the stream is UPDATING (update_duration); ValidationException in
  // on-demand mode. Thread-safe; serialised with other control calls.
  absl::Status SplitShard(std::string_view shard_to_split, HashKey new_starting_hash_key);

  // MergeShards: closes two adjacent open shards (their hash key ranges meet,
  // in either order) and creates one child with the union of their ranges, the
  // next shard id, parent_shard_id = shard_to_merge and adjacent_parent_shard_id
  // = adjacent_shard_to_merge. The parents stay readable; Consumer reads both
  // to their ends before the child. Errors: ResourceNotFoundException (unknown
  // shard, deleted stream); InvalidArgumentException for a closed shard, a
  // shard merged with itself, or shards that are not adjacent (AWS's message);
  // LimitExceededException beyond max_shard_count; ResourceInUseException
  // while UPDATING; ValidationException in on-demand mode. Thread-safe;
  // serialised with other control calls.
  absl::Status MergeShards(std::string_view shard_to_merge,
                           std::string_view adjacent_shard_to_merge);

  // UpdateShardCount with UNIFORM_SCALING: splits and merges (each one a real
  // reshard with lineage, so short-lived shards appear, as on AWS) until the
  // open shards are exactly the `target` equal ranges Kinesis gives a new
  // stream of that many shards. Errors, as AWS: ValidationException for a
  // target below 1 or in on-demand mode; LimitExceededException for a target
  // over double or under half the open shard count, over max_open_shard_count,
  // when the shards it creates would pass max_shard_count, or after
  // max_shard_count_updates_per_day calls within 24 hours;
  // ResourceInUseException while UPDATING; ResourceNotFoundException if
  // deleted. Thread-safe; serialised with other control calls.
  absl::StatusOr<UpdateShardCountResult> UpdateShardCount(
      int target_shard_count, ScalingType scaling_type = ScalingType::kUniformScaling);

  // Switches the capacity mode (UpdateStreamMode). The shards are kept; in
  // on-demand mode the stream then reshards by itself (see on_demand.hpp) and
  // user reshards are refused. Errors: InvalidArgumentException if the stream
  // is already in `mode`, or for on-demand without metrics (Traits::kMetrics
  // false); LimitExceededException after max_stream_mode_updates_per_day
  // switches within 24 hours; ResourceInUseException while UPDATING;
  // ResourceNotFoundException if deleted. Thread-safe.
  absl::Status UpdateStreamMode(StreamMode mode);

  StreamMode stream_mode() const { return mode_.load(std::memory_order_relaxed); }

  // Runs the on-demand scaler now instead of at the next put after its
  // interval: measures every open shard's write rate since the last
  // evaluation and splits or merges (see on_demand.hpp). Useful for an idle
  // stream (no put triggers it) and for tests. Does nothing in provisioned
  // mode. ResourceNotFoundException if deleted. Thread-safe.
  absl::Status EvaluateOnDemandScaling();

  // The scaling event log, oldest first: every split, merge, UpdateShardCount,
  // mode switch and on-demand decision (at most on_demand.max_scaling_events
  // kept). Thread-safe.
  std::vector<ScalingEvent> ScalingEvents() const { return events_.Events(); }

  // Reclaims ring space of expired records on every shard now (puts do it
  // lazily), and deletes closed shards whose records are all past retention
  // (puts and control calls do that when one is due). Returns the number of
  // records dropped from the rings. Thread-safe.
  size_t TrimExpired();

  // Marks the stream deleted: every later call fails with
  // ResourceNotFoundException. Objects stay valid until the Stream is
  // destroyed, so no reader or writer holds a dangling reference. Used by
  // Registry::DeleteStream. Thread-safe; idempotent.
  void MarkDeleted() {
    context_.deleted.store(true, std::memory_order_release);
    next_scaling_ms_.store(kNever, std::memory_order_relaxed);
    for (const ShardHandle& shard : AllShards()) shard->log().NotifyWaiters();  // wake readers
  }

 private:
  using Shards = detail::ShardSet<Payload, Traits>;
  using RoutingTable = typename Shards::RoutingTable;
  using Scaler = detail::OnDemandScaler<Payload, Traits>;
  static constexpr int64_t kNever = Shards::kNever;

  friend struct detail::DurableStreamOps<Stream>;

  // `store`: a durable stream's directory (null: in memory); `restore`: the
  // stream found in it (null: a new stream), with its shards.
  Stream(StreamOptions options, Clock* clock, std::unique_ptr<detail::StreamStore> store = nullptr,
         const detail::StoredStream* restore = nullptr,
         std::vector<detail::StreamStore::OpenedShard>* restored_shards = nullptr);

  ShardType* Route(HashKey hash) const { return shards_.Route(hash); }
  // The open shard for a record (see ShardSet::RouteIn).
  ShardType* RouteKey(std::string_view partition_key,
                      const std::optional<HashKey>& explicit_hash_key) const {
    return RouteIn(shards_.routing(), partition_key, explicit_hash_key);
  }
  static ShardType* RouteIn(const RoutingTable* table, std::string_view partition_key,
                            const std::optional<HashKey>& explicit_hash_key) {
    return Shards::RouteIn(table, partition_key, explicit_hash_key);
  }
  // The shard an iterator of this stream names; nullptr for another stream's
  // or a deleted shard. REQUIRES: inside a ReadSection.
  const ShardType* ShardOf(const ShardIterator& iterator) const {
    if (!IsOurs(iterator)) return nullptr;
    return ShardAt(iterator.shard_index());
  }
  // True if the iterator names a shard this stream created (held or deleted).
  bool IsOurs(const ShardIterator& iterator) const {
    return iterator.stream_tag() == context_.tag && iterator.shard_index() < shards_.count();
  }
  // The shard at `index`, or nullptr if deleted. REQUIRES: inside a
  // ReadSection, or control_mu_ held (only the control plane frees shards).
  ShardType* ShardAt(uint64_t index) const { return shards_.At(index); }

  // A new shard (see ShardSet::AddLocked), measured by the on-demand scaler
  // from its creation.
  ShardType* AddShardLocked(HashKeyRange range, std::optional<std::string> parent,
                            std::optional<std::string> adjacent, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_) {
    scaler_.Track(shards_.count_locked(), now_ms);
    return shards_.AddLocked(range, std::move(parent), std::move(adjacent), now_ms);
  }

  // Deletes the closed shards past retention with their on-demand and fan-out
  // bookkeeping, and frees retired objects after a grace period (see
  // detail/shard_set.hpp). Runs at the end of every control call and from the
  // first put after the due time. Never under a shard's writer lock, never in
  // a section.
  void ReclaimLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_);

  // The hot path's check (one relaxed load and a compare): the first put at
  // or after the due time deletes the expired shards.
  void MaybeReclaim(int64_t now_ms) {
    if (KINLET_LIKELY(!shards_.ReclaimDue(now_ms))) return;
    ReclaimSlow(now_ms);
  }
  ABSL_ATTRIBUTE_NOINLINE void ReclaimSlow(int64_t now_ms) {
    // A control call is running: it reclaims.
    if (!shards_.control_mu_.TryLock()) return;
    ReclaimLocked(now_ms);
    shards_.control_mu_.Unlock();
  }

  // ---- Resharding internals (the checks are detail::ReshardChecks) ---------

  static std::optional<int64_t> ShardIndexOf(std::string_view shard_id) {
    return detail::ShardIndexOf(shard_id);
  }

  static absl::Status NoMetricsError() { return detail::ReshardChecks::NoMetrics(); }

  absl::Status CheckReshardableLocked(std::string_view operation, int64_t now_ms) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_) {
    if (deleted()) return context_.NotFound();
    if (stream_mode() == StreamMode::kOnDemand) return checks_.OnDemandUnsupported(operation);
    if (now_ms < updating_until_ms_.load(std::memory_order_relaxed)) return checks_.Updating();
    return absl::OkStatus();
  }

  // `created`: shards the operation adds; `open_after`: open shards after it.
  absl::Status CheckShardLimitsLocked(int64_t created, int64_t open_after) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_) {
    return checks_.ShardLimits(shards_.held_count_locked(), shards_.count_locked(),
                               detail::ShardTable<ShardType>::kMaxIndices, created, open_after);
  }

  void MarkUpdatedLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_) {
    updating_until_ms_.store(now_ms + absl::ToInt64Milliseconds(options_.update_duration),
                             std::memory_order_relaxed);
  }

  // A split (see ShardSet::SplitLocked), logged with `event`.
  std::pair<ShardType*, ShardType*> SplitLocked(ShardType* parent, HashKey k, int64_t now_ms,
                                                ScalingEvent event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_);

  // A merge (see ShardSet::MergeLocked), logged with `event`.
  ShardType* MergeLocked(ShardType* parent, ShardType* adjacent, int64_t now_ms, ScalingEvent event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_);

  void LogEvent(ScalingEvent event, int64_t now_ms) {
    event.time = absl::FromUnixMillis(now_ms);
    event.open_shard_count = open_shard_count();
    events_.Add(std::move(event));
  }

  // ---- On-demand scaling (the scaler is detail/reshard_planner.hpp) ---------

  int64_t OnDemandIntervalMs() const {
    return std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.on_demand.evaluation_interval));
  }

  void SetModeLocked(StreamMode mode, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_);

  // The hot path's check: one relaxed load and a compare. The first put at or
  // after the due time claims the evaluation (CAS) and runs it.
  void MaybeScaleOnDemand(int64_t now_ms) {
    int64_t due = next_scaling_ms_.load(std::memory_order_relaxed);
    if (KINLET_LIKELY(now_ms < due)) return;
    ScaleOnDemandSlow(now_ms, due);
  }
  ABSL_ATTRIBUTE_NOINLINE void ScaleOnDemandSlow(int64_t now_ms, int64_t due);

  // One evaluation of the on-demand policy: the scaler decides, the stream
  // logs its reports and applies its splits and merges.
  void EvaluateOnDemandLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_);

  // ---- ListShards internals (detail/list_shards.hpp) ------------------------

  absl::StatusOr<std::vector<ShardDescription>> ListShardsMatching(const ShardFilter& filter,
                                                                   int64_t after) const {
    if (deleted()) return context_.NotFound();
    const int64_t now_ms = context_.NowMs();
    const int64_t horizon = std::max(created_ms_, context_.ExpireBeforeMs(now_ms));
    detail::ReadSection section;
    return detail::MatchShards(shards_.held(), filter, after, horizon);
  }

  // See detail::ValidateRecord. `entry`: the PutRecords entry index, or -1
  // for PutRecord.
  absl::Status ValidateRecord(std::string_view key, size_t data_size, int64_t entry) const {
    return detail::ValidateRecord(key, data_size, entry, options_.max_record_size_bytes,
                                  context_.name);
  }

  absl::Status ValidateOrdering(SequenceNumber s) const {
    detail::ReadSection section;
    const ShardType* shard = s.stream_tag() == context_.tag && s.shard_index() < shards_.count()
                                 ? ShardAt(s.shard_index())
                                 : nullptr;
    const bool ours = shard != nullptr && s.position() < shard->log_.End();
    if (ours) return absl::OkStatus();
    return InvalidArgument(absl::StrCat("ExclusiveMinimumSequenceNumber ", s.ToString(),
                                        " used in PutRecord on stream ", context_.name,
                                        " under account ", context_.account_id, " is invalid."));
  }

  absl::Status ChangeRetention(absl::Duration period, bool increase);

  absl::Status ChangeEncryption(EncryptionType type, std::string_view key_id, bool start);

  // Durable streams: writes stream.meta after a change of the stream's state
  // (the change stands in memory either way; StorageFailureException says it
  // was not made durable). OK for in-memory streams.
  absl::Status SaveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shards_.control_mu_) {
    if (store_ == nullptr) return absl::OkStatus();
    return detail::DurableStreamOps<Stream>::SaveLocked(*this);
  }

  const StreamOptions options_;
  // Shared with every shard and subscription (handles may outlive the stream).
  const std::shared_ptr<detail::StreamContext<Clock>> context_owner_;
  detail::StreamContext<Clock>& context_;
  const std::string arn_;
  absl::Time created_at_;

  // A durable stream's directory (null in memory). Declared before shards_,
  // so that it is destroyed after them (it holds the directory's lock). Used
  // under the control lock.
  std::unique_ptr<detail::StreamStore> store_;

  // The shards: the table by index, the routing table and held list in force
  // (lock-free reads), the control lock (shards_.control_mu_: creation,
  // resharding, retention changes, deletion) and retirement. See
  // detail/shard_set.hpp for who writes and reads each.
  Shards shards_;
  const detail::ReshardChecks checks_;
  // The fault configuration in force (calls hold it inside a ReadSection).
  std::unique_ptr<detail::FaultState> faults_ ABSL_GUARDED_BY(shards_.control_mu_);

  int64_t created_ms_ = 0;
  // Written under the control lock (relaxed); read without it (relaxed): a
  // stale value only delays a mode's effect or a status change by one call.
  std::atomic<StreamMode> mode_{StreamMode::kProvisioned};
  std::atomic<int64_t> updating_until_ms_{0};
  // When the next on-demand evaluation is due (kNever in provisioned mode).
  // Loaded relaxed by every put; claimed by CAS (see MaybeScaleOnDemand).
  std::atomic<int64_t> next_scaling_ms_{kNever};
  // On-demand measurements and the rolling windows of the 24-hour limits.
  Scaler scaler_ ABSL_GUARDED_BY(shards_.control_mu_);
  detail::DayWindow shard_count_updates_ ABSL_GUARDED_BY(shards_.control_mu_);
  detail::DayWindow mode_updates_ ABSL_GUARDED_BY(shards_.control_mu_);

  // Encryption at rest as set by Start/StopStreamEncryption, and the tags:
  // written under the control lock and encryption_mu_, read under
  // encryption_mu_ (so that DescribeStreamSummary never waits for a reshard).
  mutable detail::Mutex encryption_mu_;
  EncryptionType encryption_type_ ABSL_GUARDED_BY(encryption_mu_) = EncryptionType::kNone;
  std::string key_id_ ABSL_GUARDED_BY(encryption_mu_);
  std::map<std::string, std::string> tags_ ABSL_GUARDED_BY(encryption_mu_);

  // Registered fan-out consumers (its own lock: never held across a reshard).
  detail::StreamConsumerRegistry consumers_;

  // The scaling event log (its own lock: GetMetrics must not wait for a reshard).
  detail::ScalingEventLog events_;
};

}  // namespace kinlet

#include "kinlet/detail/durable_stream.hpp"  // IWYU pragma: export
#include "kinlet/detail/stream_batch.hpp"    // IWYU pragma: export
#include "kinlet/detail/stream_control.hpp"  // IWYU pragma: export
