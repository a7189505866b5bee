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
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kinlet/detail/epoch.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/shard_table.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/fan_out.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/metrics.hpp"
#include "kinlet/on_demand.hpp"
#include "kinlet/payload.hpp"
#include "kinlet/record.hpp"
#include "kinlet/resharding.hpp"
#include "kinlet/retry.hpp"
#include "kinlet/sequence_number.hpp"
#include "kinlet/shard.hpp"
#include "kinlet/shard_iterator.hpp"
#include "kinlet/stream_options.hpp"
#include "kinlet/traits.hpp"

namespace kinlet {

struct PutRecordOptions {
  // Places the record by this hash key instead of its partition key's hash.
  std::optional<HashKey> explicit_hash_key;
  // The sequence number of the previous record from this client and key; the
  // new record's number will be greater. Must be a number this stream issued.
  std::optional<SequenceNumber> sequence_number_for_ordering;
};

struct PutRecordResult {
  std::string_view shard_id;  // valid as long as the stream
  SequenceNumber sequence_number;
};

// One entry of PutRecords. It refers to its key and payload (a string_view or
// an ObjectRef): they must stay alive until PutRecords returns, so build
// entries from named objects, not temporaries.
template <typename Payload>
struct PutRecordsRequestEntry {
  std::string_view partition_key;
  typename PayloadTraits<Payload>::View data;
  std::optional<HashKey> explicit_hash_key;
};

struct PutRecordsResultEntry {
  // Set on success.
  std::string_view shard_id;
  SequenceNumber sequence_number;
  // Set on failure: kProvisionedThroughputExceeded (with AWS's "Rate exceeded
  // for shard ..." message), kInternalFailure ("Internal Service Failure", an
  // injected fault) or kShardFull.
  ErrorCode error_code = ErrorCode::kNone;
  std::string error_message;

  bool ok() const { return error_code == ErrorCode::kNone; }
};

// Reuse one result across PutRecords calls: it then allocates nothing.
struct PutRecordsResult {
  int failed_record_count = 0;
  std::vector<PutRecordsResultEntry> records;  // same length and order as the request

 private:
  template <RecordPayload P, StreamTraits T>
  friend class Stream;
  std::vector<uint32_t> route_;  // scratch: shard index per entry
};

namespace detail {
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
    return std::unique_ptr<Stream>(new Stream(std::move(options), clock));
  }

  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Marks the stream deleted for every handle still held (shards,
  // subscriptions): their calls fail with ResourceNotFoundException.
  ~Stream() {
    context_.deleted.store(true, std::memory_order_release);
    detail::MutexLock lock(&control_mu_);
    for (auto& [index, shard] : live_) shard->log().NotifyWaiters();
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
      {
        typename ShardType::WriterGuard lock(&shard->write_mu_);
        outcome = shard->AppendLocked(partition_key, data, now_ms, &sequence);
      }
      if (KINLET_LIKELY(outcome == ShardType::AppendOutcome::kOk)) {
        return PutRecordResult{shard->shard_id(), sequence};
      }
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
  absl::Status WriteBatch(std::span<const Entry> entries, PutRecordsResult* result) {
    if (deleted()) return context_.NotFound();
    const size_t n = entries.size();
    if (n < 1 || n > static_cast<size_t>(options_.max_put_records_entries)) {
      return ValidationError(absl::StrCat(
          "1 validation error detected: Value '[...]' at 'records' failed to satisfy constraint: "
          "Member must have length ",
          n < 1 ? "greater than or equal to 1"
                : absl::StrCat("less than or equal to ", options_.max_put_records_entries)));
    }
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      const size_t size = PayloadTraits<Payload>::Size(entries[i].data);
      if (absl::Status s = ValidateRecord(entries[i].partition_key, size, static_cast<int64_t>(i));
          !s.ok()) {
        return s;
      }
      total += size + entries[i].partition_key.size();
    }
    if (total > options_.max_put_records_bytes) {
      return InvalidArgument(absl::StrCat("Records size exceeds ",
                                          options_.max_put_records_bytes / kMiB, " MB limit"));
    }
    result->records.resize(n);
    result->route_.resize(n);
    const int64_t now_ms = context_.NowMs();
    MaybeScaleOnDemand(now_ms);
    MaybeReclaim(now_ms);
    detail::ReadSection section;  // routing tables and shards stay alive
    std::vector<uint32_t>& route = result->route_;
    constexpr uint32_t kDone = UINT32_MAX;
    auto route_pending = [&] {
      const RoutingTable* table = routing_.load(std::memory_order_acquire);
      for (size_t i = 0; i < n; ++i) {
        if (route[i] == kDone) continue;
        route[i] = RouteIn(table, entries[i].partition_key, entries[i].explicit_hash_key)->index();
      }
    };
    std::fill(route.begin(), route.end(), 0u);
    route_pending();
    for (;;) {
      bool rerouted = false;
      for (size_t i = 0; i < n; ++i) {
        if (route[i] == kDone) continue;
        ShardType* shard = ShardAt(route[i]);
        typename ShardType::WriterGuard lock(&shard->write_mu_);
        const uint32_t index = route[i];
        for (size_t j = i; j < n; ++j) {
          if (route[j] != index) continue;
          PutRecordsResultEntry& out = result->records[j];
          auto outcome =
              shard->AppendLocked(entries[j].partition_key, entries[j].data, now_ms,
                                  &out.sequence_number, ShardType::WriteApi::kPutRecords);
          if (outcome == ShardType::AppendOutcome::kClosed) {
            rerouted = true;  // leave route[j]; routed again below
            break;
          }
          route[j] = kDone;
          if (outcome == ShardType::AppendOutcome::kOk) {
            out.shard_id = shard->shard_id();
            out.error_code = ErrorCode::kNone;
            out.error_message.clear();
          } else {
            out.shard_id = {};
            out.sequence_number = {};
            absl::Status error;
            if (outcome == ShardType::AppendOutcome::kThrottled) {
              error = context_.RateExceeded(shard->shard_id());
            } else if (outcome == ShardType::AppendOutcome::kInternalFailure) {
              error = InternalFailure("Internal Service Failure");
            } else {
              error = shard->FullError();
            }
            out.error_code = ErrorCodeOf(error);
            out.error_message = std::string(error.message());
            ++result->failed_record_count;
          }
        }
        shard->PublishLocked();  // one release store and wake-up per shard
      }
      if (!rerouted) return absl::OkStatus();
      // A reshard closed a shard mid-batch: route the entries not yet written.
      route_pending();
    }
  }

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
    absl::Status status = PutRecords(entries, result);
    if (!status.ok() || result->failed_record_count == 0) return status;
    Backoff backoff(retry);
    std::vector<Entry> pending;
    std::vector<size_t> where;
    PutRecordsResult partial;
    for (int attempt = 2; attempt <= retry.max_attempts && result->failed_record_count > 0;
         ++attempt) {
      const absl::Time wake = context_.clock->Now() + backoff.Next();
      if (wake > retry.deadline) break;
      SleepUntil(*context_.clock, wake);
      pending.clear();
      where.clear();
      for (size_t i = 0; i < result->records.size(); ++i) {
        const PutRecordsResultEntry& r = result->records[i];
        if (!r.ok() && (r.error_code == ErrorCode::kProvisionedThroughputExceeded ||
                        r.error_code == ErrorCode::kShardFull ||
                        r.error_code == ErrorCode::kInternalFailure)) {
          pending.push_back(entries[i]);
          where.push_back(i);
        }
      }
      if (pending.empty()) break;
      status = PutRecords(pending, &partial);
      if (!status.ok()) return status;
      for (size_t k = 0; k < where.size(); ++k) {
        if (partial.records[k].ok()) --result->failed_record_count;
        result->records[where[k]] = std::move(partial.records[k]);
      }
    }
    return absl::OkStatus();
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
    if (!detail::IsResourceName(consumer_name)) {
      return ValidationError(absl::StrCat(
          "1 validation error detected: Value '", detail::ToAbsl(consumer_name),
          "' at 'consumerName' failed to satisfy constraint: Member must satisfy regular "
          "expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128"));
    }
    detail::MutexLock lock(&fanout_mu_);
    for (const auto& c : consumers_) {
      if (c->description.consumer_name == consumer_name) {
        return ResourceInUse(
            absl::StrCat("Consumer ", c->description.consumer_arn, " already exists"));
      }
    }
    if (static_cast<int>(consumers_.size()) >= options_.max_stream_consumers) {
      return LimitExceeded(absl::StrCat("Stream ", context_.name, " under account ",
                                        context_.account_id, " already has ", consumers_.size(),
                                        " registered consumers, the limit."));
    }
    auto entry = std::make_unique<FanOutConsumer>();
    StreamConsumerDescription& d = entry->description;
    d.consumer_name = std::string(consumer_name);
    d.consumer_creation_timestamp = context_.clock->Now();
    d.consumer_arn = absl::StrCat(arn_, "/consumer/", d.consumer_name, ":",
                                  absl::ToUnixSeconds(d.consumer_creation_timestamp));
    d.stream_arn = arn_;
    consumers_.push_back(std::move(entry));
    return d;
  }

  // DeregisterStreamConsumer, by name or ARN: ends its subscriptions
  // (kConsumerDeregistered). ResourceNotFoundException for an unknown
  // consumer or a deleted stream. Thread-safe.
  absl::Status DeregisterStreamConsumer(std::string_view consumer) {
    if (deleted()) return context_.NotFound();
    detail::MutexLock lock(&fanout_mu_);
    for (auto it = consumers_.begin(); it != consumers_.end(); ++it) {
      if (!(*it)->Matches(consumer)) continue;
      const int64_t now_ms = context_.NowMs();
      detail::ReadSection section;
      for (auto& [index, slot] : (*it)->subscriptions) {
        if (slot.state->End(EndOf(slot, SubscriptionEnd::kConsumerDeregistered, now_ms))) {
          if (ShardType* shard = ShardAt(index)) shard->log().NotifyWaiters();
        }
      }
      consumers_.erase(it);
      return absl::OkStatus();
    }
    return ConsumerNotFound(consumer);
  }

  // DescribeStreamConsumer, by name or ARN. ResourceNotFoundException for an
  // unknown consumer or a deleted stream. Thread-safe.
  absl::StatusOr<StreamConsumerDescription> DescribeStreamConsumer(
      std::string_view consumer) const {
    if (deleted()) return context_.NotFound();
    detail::MutexLock lock(&fanout_mu_);
    for (const auto& c : consumers_) {
      if (c->Matches(consumer)) return c->description;
    }
    return ConsumerNotFound(consumer);
  }

  // ListStreamConsumers, in registration order. ResourceNotFoundException if
  // the stream was deleted. Thread-safe.
  absl::StatusOr<std::vector<StreamConsumerDescription>> ListStreamConsumers() const {
    if (deleted()) return context_.NotFound();
    detail::MutexLock lock(&fanout_mu_);
    std::vector<StreamConsumerDescription> out;
    for (const auto& c : consumers_) out.push_back(c->description);
    return out;
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
    detail::MutexLock lock(&fanout_mu_);
    FanOutConsumer* c = nullptr;
    for (const auto& entry : consumers_) {
      if (entry->Matches(consumer)) c = entry.get();
    }
    if (c == nullptr) return ConsumerNotFound(consumer);
    const int64_t now_ms = context_.NowMs();
    // The consumer's latest subscription to the shard, if any. (Looked up, not
    // inserted: a refused subscription must leave no slot behind; an empty
    // slot crashed DeregisterStreamConsumer. Found by the differential tests.)
    auto previous = c->subscriptions.find((*shard)->index());
    const std::shared_ptr<detail::SubscriptionState> old_state =
        previous == c->subscriptions.end() ? nullptr : previous->second.state;
    if (old_state != nullptr && old_state->ended() == SubscriptionEnd::kNone &&
        now_ms - previous->second.subscribed_ms <
            absl::ToInt64Milliseconds(options_.subscription_takeover_after)) {
      return ResourceInUse(absl::StrCat(
          "Another active subscription exists for consumer ", c->description.consumer_arn,
          " and shard ", (*shard)->shard_id(), ": it was made less than ",
          absl::FormatDuration(options_.subscription_takeover_after), " ago."));
    }
    absl::StatusOr<uint64_t> position =
        (*shard)->ResolvePosition(start, now_ms, "SubscribeToShard");
    if (!position.ok()) return position.status();
    if (old_state != nullptr &&
        old_state->End(EndOf(previous->second, SubscriptionEnd::kTakenOver, now_ms))) {
      (*shard)->log().NotifyWaiters();
    }
    typename FanOutConsumer::Slot& slot = c->subscriptions[(*shard)->index()];
    slot.state = std::make_shared<detail::SubscriptionState>();
    slot.subscribed_ms = now_ms;
    return std::unique_ptr<SubscriptionType>(new SubscriptionType(
        *shard, context_owner_, slot.state, c->description.consumer_arn, *position, now_ms,
        absl::ToInt64Milliseconds(options_.subscription_lifetime),
        options_.limits.subscribe_bytes_per_second, options_.max_get_records_bytes));
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
    detail::MutexLock lock(&events_mu_);
    m.scaling_events.assign(events_.begin(), events_.end());
    m.scaling_event_counts.assign(event_counts_, event_counts_ + kScalingEventKinds);
    return m;
  }

  // Replaces the injected faults (see faults.hpp); a default FaultInjection
  // turns them off. InvalidArgumentException for fractions outside [0, 1] or
  // a negative delay. Thread-safe: calls in flight see the old or the new one.
  absl::Status SetFaultInjection(const FaultInjection& faults) {
    StreamOptions check = options_;
    check.faults = faults;
    if (absl::Status s = ValidateStreamOptions(check); !s.ok()) return s;
    detail::MutexLock lock(&control_mu_);
    // The configuration in force is retired, not freed: a call may still hold
    // it (inside a ReadSection) until the next grace period.
    std::unique_ptr<detail::FaultState> next =
        faults.enabled() ? std::make_unique<detail::FaultState>(faults) : nullptr;
    context_.faults.store(next.get(), std::memory_order_release);
    if (faults_ != nullptr)
      retired_.push_back(std::shared_ptr<detail::FaultState>(faults_.release()));
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
    if (index && *index < shard_count_.load(std::memory_order_acquire)) {
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
    detail::ReadSection section;
    const ShardType* shard = ShardOf(iterator);
    if (shard == nullptr) {
      detail::RecordBuffer<Payload>(page).Finish();  // leaves the page empty
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
    for (ShardType* shard : routing_.load(std::memory_order_acquire)->shards) {
      out.push_back(shard->shared_from_this());
    }
    return out;
  }
  // Every shard the stream holds (open, and closed ones not yet deleted for
  // being past retention), in creation order. Thread-safe; lock-free.
  std::vector<ShardHandle> AllShards() const {
    detail::ReadSection section;
    std::vector<ShardHandle> out;
    for (ShardType* shard : *held_.load(std::memory_order_acquire)) {
      out.push_back(shard->shared_from_this());
    }
    return out;
  }
  int open_shard_count() const {
    detail::ReadSection section;
    return static_cast<int>(routing_.load(std::memory_order_acquire)->shards.size());
  }
  // Shards the stream holds now (open and closed within retention).
  int held_shard_count() const {
    detail::ReadSection section;
    return static_cast<int>(held_.load(std::memory_order_acquire)->size());
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
    if (request.max_results < 1 || request.max_results > 10000) {
      return ValidationError(absl::StrCat(
          "1 validation error detected: Value '", request.max_results,
          "' at 'maxResults' failed to satisfy constraint: Member must have value ",
          request.max_results < 1 ? "greater than or equal to 1" : "less than or equal to 10000"));
    }
    ShardFilter filter = request.filter.value_or(ShardFilter::FromTrimHorizon());
    int64_t after = -1;
    const int64_t now_ms = context_.NowMs();
    if (!request.next_token.empty()) {
      if (request.filter || !request.exclusive_start_shard_id.empty()) {
        return InvalidArgument(
            "NextToken cannot be provided together with ShardFilter or ExclusiveStartShardId.");
      }
      absl::Status s = ParseListToken(request.next_token, now_ms, &filter, &after);
      if (!s.ok()) return s;
    } else {
      if (!request.exclusive_start_shard_id.empty()) {
        after = ShardIndexOf(request.exclusive_start_shard_id).value_or(-1);
        if (after < 0) {
          return InvalidArgument(absl::StrCat("ExclusiveStartShardId ",
                                              request.exclusive_start_shard_id, " is invalid."));
        }
      }
      if (filter.type == ShardFilter::Type::kAfterShardId) {
        const std::optional<int64_t> index = ShardIndexOf(filter.shard_id);
        if (!index) {
          return InvalidArgument("ShardFilter of type AFTER_SHARD_ID needs a valid ShardId.");
        }
        after = std::max(after, *index);
      }
    }
    absl::StatusOr<std::vector<ShardDescription>> all = ListShardsMatching(filter, after);
    if (!all.ok()) return all.status();
    ListShardsResult result;
    const size_t page = static_cast<size_t>(std::min(request.max_results, 1000));
    if (all->size() > page) {
      all->resize(page);
      const int64_t last = *ShardIndexOf(all->back().shard_id);
      result.next_token = MakeListToken(filter, last, now_ms);
    }
    result.shards = *std::move(all);
    return result;
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
    {
      detail::MutexLock lock(&fanout_mu_);
      d.consumer_count = static_cast<int>(consumers_.size());
    }
    return d;
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
  absl::Status SplitShard(std::string_view shard_to_split, HashKey new_starting_hash_key) {
    absl::StatusOr<ShardHandle> found = GetShard(shard_to_split);
    if (!found.ok()) return found.status();
    ShardType* parent = found->get();
    detail::MutexLock lock(&control_mu_);
    const int64_t now_ms = context_.NowMs();
    if (absl::Status s = CheckReshardableLocked("SplitShard", now_ms); !s.ok()) return s;
    if (!parent->is_open()) return AlreadyReshardedError(parent);
    const HashKeyRange range = parent->hash_key_range();
    const HashKey k = new_starting_hash_key;
    if (!(range.starting_hash_key + 1 < k && k < range.ending_hash_key)) {
      return InvalidArgument(absl::StrCat(
          "NewStartingHashKey ", HashKeyToString(k), " used in SplitShard() on shard ",
          parent->shard_id(), " in stream ", context_.name, " under account ", context_.account_id,
          " is not both greater than one plus the shard's StartingHashKey ",
          HashKeyToString(range.starting_hash_key), " and less than the shard's EndingHashKey ",
          HashKeyToString(range.ending_hash_key), "."));
    }
    if (absl::Status s =
            CheckShardLimitsLocked(/*created=*/2, /*open_after=*/open_shard_count() + 1);
        !s.ok()) {
      return s;
    }
    SplitLocked(parent, k, now_ms, ScalingEvent{});
    MarkUpdatedLocked(now_ms);
    ReclaimLocked(now_ms);
    return absl::OkStatus();
  }

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
                           std::string_view adjacent_shard_to_merge) {
    absl::StatusOr<ShardHandle> first_handle = GetShard(shard_to_merge);
    if (!first_handle.ok()) return first_handle.status();
    absl::StatusOr<ShardHandle> second_handle = GetShard(adjacent_shard_to_merge);
    if (!second_handle.ok()) return second_handle.status();
    ShardType* const first_shard = first_handle->get();
    ShardType* const second_shard = second_handle->get();
    ShardType* const* first = &first_shard;
    ShardType* const* second = &second_shard;
    detail::MutexLock lock(&control_mu_);
    const int64_t now_ms = context_.NowMs();
    if (absl::Status s = CheckReshardableLocked("MergeShards", now_ms); !s.ok()) return s;
    for (ShardType* shard : {*first, *second}) {
      if (!shard->is_open()) return AlreadyReshardedError(shard);
    }
    const HashKeyRange a = (*first)->hash_key_range();
    const HashKeyRange b = (*second)->hash_key_range();
    const bool adjacent =
        *first != *second &&
        ((a.ending_hash_key != kMaxHashKey && a.ending_hash_key + 1 == b.starting_hash_key) ||
         (b.ending_hash_key != kMaxHashKey && b.ending_hash_key + 1 == a.starting_hash_key));
    if (!adjacent) {
      return InvalidArgument(absl::StrCat("Shards ", (*first)->shard_id(), " and ",
                                          (*second)->shard_id(), " in stream ", context_.name,
                                          " under account ", context_.account_id,
                                          " are not an adjacent pair of shards eligible for "
                                          "merging"));
    }
    if (absl::Status s = CheckShardLimitsLocked(/*created=*/1, /*open_after=*/0); !s.ok()) return s;
    MergeLocked(*first, *second, now_ms, ScalingEvent{});
    MarkUpdatedLocked(now_ms);
    ReclaimLocked(now_ms);
    return absl::OkStatus();
  }

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
      int target_shard_count, ScalingType scaling_type = ScalingType::kUniformScaling) {
    (void)scaling_type;  // UNIFORM_SCALING is the only type
    if (deleted()) return context_.NotFound();
    if (target_shard_count < 1) {
      return ValidationError(absl::StrCat(
          "1 validation error detected: Value '", target_shard_count,
          "' at 'targetShardCount' failed to satisfy constraint: Member must have value greater "
          "than or equal to 1"));
    }
    detail::MutexLock lock(&control_mu_);
    const int64_t now_ms = context_.NowMs();
    if (absl::Status s = CheckReshardableLocked("UpdateShardCount", now_ms); !s.ok()) return s;
    const int current = open_shard_count();
    const int64_t target = target_shard_count;
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
    PruneWindow(&shard_count_updates_, now_ms);
    if (static_cast<int64_t>(shard_count_updates_.size()) >=
        options_.max_shard_count_updates_per_day) {
      return LimitExceeded(absl::StrCat("Stream ", context_.name, " under account ",
                                        context_.account_id, " has already been scaled ",
                                        shard_count_updates_.size(),
                                        " times in the last 24 hours: the limit is ",
                                        options_.max_shard_count_updates_per_day, "."));
    }
    std::vector<HashKey> target_starts;
    for (const HashKeyRange& r : InitialHashKeyRanges(target_shard_count)) {
      target_starts.push_back(r.starting_hash_key);
    }
    const int64_t created = detail::UniformScalingShardsCreated(
        routing_.load(std::memory_order_acquire)->starts, target_starts);
    if (absl::Status s = CheckShardLimitsLocked(created, target); !s.ok()) return s;
    shard_count_updates_.push_back(now_ms);
    ScalingEvent event;
    event.kind = ScalingEvent::Kind::kUpdateShardCount;
    event.reason = absl::StrCat("UpdateShardCount from ", current, " to ", target,
                                " open shards (UNIFORM_SCALING)");
    LogEvent(std::move(event), now_ms);
    // Splits at every target boundary inside a shard...
    for (HashKey boundary : target_starts) {
      ShardType* shard = Route(boundary);
      if (shard->hash_key_range().starting_hash_key != boundary) {
        SplitLocked(shard, boundary, now_ms, ScalingEvent{});
      }
    }
    // ...then one merge after another inside each target range.
    for (size_t t = 0; t < target_starts.size(); ++t) {
      for (;;) {
        ShardType* low = Route(target_starts[t]);
        const HashKey end = low->hash_key_range().ending_hash_key;
        const bool last = t + 1 == target_starts.size();
        if (last ? end == kMaxHashKey : end + 1 == target_starts[t + 1]) break;
        MergeLocked(low, Route(end + 1), now_ms, ScalingEvent{});
      }
    }
    MarkUpdatedLocked(now_ms);
    ReclaimLocked(now_ms);
    return UpdateShardCountResult{context_.name, arn_, current, target_shard_count};
  }

  // Switches the capacity mode (UpdateStreamMode). The shards are kept; in
  // on-demand mode the stream then reshards by itself (see on_demand.hpp) and
  // user reshards are refused. Errors: InvalidArgumentException if the stream
  // is already in `mode`, or for on-demand without metrics (Traits::kMetrics
  // false); LimitExceededException after max_stream_mode_updates_per_day
  // switches within 24 hours; ResourceInUseException while UPDATING;
  // ResourceNotFoundException if deleted. Thread-safe.
  absl::Status UpdateStreamMode(StreamMode mode) {
    if (deleted()) return context_.NotFound();
    detail::MutexLock lock(&control_mu_);
    const int64_t now_ms = context_.NowMs();
    if (now_ms < updating_until_ms_.load(std::memory_order_relaxed)) return UpdatingError();
    if (mode == stream_mode()) {
      return InvalidArgument(absl::StrCat("Stream ", context_.name, " under account ",
                                          context_.account_id, " is already in ",
                                          detail::ToAbsl(StreamModeName(mode)), " mode."));
    }
    if (mode == StreamMode::kOnDemand && !MetricsEnabled<Traits>()) return NoMetricsError();
    PruneWindow(&mode_updates_, now_ms);
    if (static_cast<int64_t>(mode_updates_.size()) >= options_.max_stream_mode_updates_per_day) {
      return LimitExceeded(absl::StrCat("Stream ", context_.name, " under account ",
                                        context_.account_id, " has already switched mode ",
                                        mode_updates_.size(),
                                        " times in the last 24 hours: the limit is ",
                                        options_.max_stream_mode_updates_per_day, "."));
    }
    mode_updates_.push_back(now_ms);
    SetModeLocked(mode, now_ms);
    ScalingEvent event;
    event.kind = ScalingEvent::Kind::kStreamModeChange;
    event.reason = absl::StrCat("stream mode is now ", detail::ToAbsl(StreamModeName(mode)));
    LogEvent(std::move(event), now_ms);
    MarkUpdatedLocked(now_ms);
    return absl::OkStatus();
  }

  StreamMode stream_mode() const { return mode_.load(std::memory_order_relaxed); }

  // Runs the on-demand scaler now instead of at the next put after its
  // interval: measures every open shard's write rate since the last
  // evaluation and splits or merges (see on_demand.hpp). Useful for an idle
  // stream (no put triggers it) and for tests. Does nothing in provisioned
  // mode. ResourceNotFoundException if deleted. Thread-safe.
  absl::Status EvaluateOnDemandScaling() {
    if (deleted()) return context_.NotFound();
    detail::MutexLock lock(&control_mu_);
    const int64_t now_ms = context_.NowMs();
    if (stream_mode() == StreamMode::kOnDemand) {
      EvaluateOnDemandLocked(now_ms);
      next_scaling_ms_.store(now_ms + OnDemandIntervalMs(), std::memory_order_relaxed);
    }
    ReclaimLocked(now_ms);
    return absl::OkStatus();
  }

  // The scaling event log, oldest first: every split, merge, UpdateShardCount,
  // mode switch and on-demand decision (at most on_demand.max_scaling_events
  // kept). Thread-safe.
  std::vector<ScalingEvent> ScalingEvents() const {
    detail::MutexLock lock(&events_mu_);
    return std::vector<ScalingEvent>(events_.begin(), events_.end());
  }

  // Reclaims ring space of expired records on every shard now (puts do it
  // lazily), and deletes closed shards whose records are all past retention
  // (puts and control calls do that when one is due). Returns the number of
  // records dropped from the rings. Thread-safe.
  size_t TrimExpired() {
    const int64_t now_ms = context_.NowMs();
    const int64_t expire_before = context_.ExpireBeforeMs(now_ms);
    size_t dropped = 0;
    for (const ShardHandle& shard : AllShards()) {
      typename ShardType::WriterGuard lock(&shard->write_mu_);
      dropped += shard->log_.TrimExpired(expire_before);
    }
    detail::MutexLock lock(&control_mu_);
    ReclaimLocked(now_ms);
    return dropped;
  }

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
  struct RoutingTable {
    std::vector<HashKey> starts;     // sorted starting hash keys of open shards
    std::vector<ShardType*> shards;  // shards[i] owns [starts[i], starts[i+1])

    ShardType* Find(HashKey hash) const {
      if (shards.size() == 1) return shards[0];
      auto it = std::upper_bound(starts.begin(), starts.end(), hash);
      return shards[static_cast<size_t>(it - starts.begin()) - 1];
    }
  };

  Stream(StreamOptions options, Clock* clock)
      : options_(std::move(options)),
        context_owner_(std::make_shared<detail::StreamContext<Clock>>()),
        context_(*context_owner_) {
    context_.name = options_.name;
    context_.account_id = options_.account_id;
    context_.tag = detail::NextStreamTag();
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
    arn_ = absl::StrCat("arn:aws:kinesis:", options_.region, ":", options_.account_id, ":stream/",
                        options_.name);
    created_at_ = clock->Now();
    created_ms_ = context_.NowMs();
    auto table = std::make_unique<RoutingTable>();
    detail::MutexLock lock(&control_mu_);
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
    PublishRoutingLocked(std::move(table));
    SetModeLocked(options_.stream_mode, created_ms_);
  }

  ShardType* Route(HashKey hash) const {
    return routing_.load(std::memory_order_acquire)->Find(hash);
  }
  // The open shard for a record. With one open shard every key maps to it, so
  // the key is not hashed (the hash is used for nothing else).
  ShardType* RouteKey(std::string_view partition_key,
                      const std::optional<HashKey>& explicit_hash_key) const {
    return RouteIn(routing_.load(std::memory_order_acquire), partition_key, explicit_hash_key);
  }
  static ShardType* RouteIn(const RoutingTable* table, std::string_view partition_key,
                            const std::optional<HashKey>& explicit_hash_key) {
    if (table->shards.size() == 1) return table->shards[0];
    return table->Find(explicit_hash_key.has_value() ? *explicit_hash_key
                                                     : Traits::Hasher::Hash(partition_key));
  }
  // The shard an iterator of this stream names; nullptr for another stream's
  // or a deleted shard. REQUIRES: inside a ReadSection.
  const ShardType* ShardOf(const ShardIterator& iterator) const {
    if (!IsOurs(iterator)) return nullptr;
    return ShardAt(iterator.shard_index());
  }
  // True if the iterator names a shard this stream created (held or deleted).
  bool IsOurs(const ShardIterator& iterator) const {
    return iterator.stream_tag() == context_.tag &&
           iterator.shard_index() < shard_count_.load(std::memory_order_acquire);
  }
  // The shard at `index`, or nullptr if deleted. REQUIRES: inside a
  // ReadSection, or control_mu_ held (only the control plane frees shards).
  ShardType* ShardAt(uint64_t index) const { return table_.Get(index); }

  // `now_ms`: the shard's creation time (the stream's for the first shards,
  // the reshard's for children: a child starts when its parent closes).
  ShardType* AddShardLocked(HashKeyRange range, std::optional<std::string> parent,
                            std::optional<std::string> adjacent, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const uint32_t index = shard_count_.load(std::memory_order_relaxed);
    std::shared_ptr<ShardType> shard(new ShardType(
        context_owner_, index, range, std::move(parent), std::move(adjacent),
        options_.shard_capacity_records, options_.EffectiveShardCapacityBytes(), now_ms));
    LoadSnapshot snap;
    snap.at_ms = now_ms;
    loads_[index] = snap;
    // Publish the shard before the count that makes it visible.
    table_.Set(index, shard.get());
    shard_count_.store(index + 1, std::memory_order_release);
    live_.emplace(index, std::move(shard));
    RepublishHeldLocked();
    return table_.Get(index);
  }

  void PublishRoutingLocked(std::unique_ptr<RoutingTable> table)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    // The old table is retired, not freed: a writer may still be routing with
    // it (inside a ReadSection) until the next grace period (ReclaimLocked).
    routing_.store(table.get(), std::memory_order_release);
    if (routing_owner_ != nullptr) {
      retired_.push_back(std::shared_ptr<RoutingTable>(routing_owner_.release()));
    }
    routing_owner_ = std::move(table);
  }

  // Publishes the list of held shards (AllShards) after a shard is added or
  // deleted; the old list is retired like a routing table.
  void RepublishHeldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    auto list = std::make_unique<std::vector<ShardType*>>();
    list->reserve(live_.size());
    for (const auto& [index, shard] : live_) list->push_back(shard.get());
    held_.store(list.get(), std::memory_order_release);
    if (held_owner_ != nullptr) {
      retired_.push_back(std::shared_ptr<std::vector<ShardType*>>(held_owner_.release()));
    }
    held_owner_ = std::move(list);
  }

  // ---- Deleting expired shards and freeing retired objects -------------------
  //
  // A closed shard whose every record is past retention is deleted, as AWS
  // deletes it: it leaves the shard table and the held list (new lookups no
  // longer find it: ResourceNotFoundException), its on-demand and fan-out
  // bookkeeping goes, and the stream's reference to it is retired. Retired
  // objects (shards, routing tables, held lists, fault configurations, shard
  // table chunks) are freed after a grace period (detail::EpochDomain): no
  // call that reached them through a raw pointer is still running. A shard
  // is then freed with its ring unless a user still holds a handle to it.
  // Runs at the end of every control call and from the first put after
  // next_reclaim_ms_. Never under a shard's writer lock, never in a section.
  void ReclaimLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const int64_t horizon = context_.ExpireBeforeMs(now_ms);
    int64_t next_due = kNever;
    std::vector<uint32_t> deleted;
    for (auto it = live_.begin(); it != live_.end();) {
      ShardType* shard = it->second.get();
      if (shard->is_open()) {
        ++it;
        continue;
      }
      if (shard->closed_ms_ >= horizon) {
        // Due when its newest possible record (closed_ms_) leaves retention.
        const int64_t due = shard->closed_ms_ + (now_ms - horizon) + 1;
        next_due = std::min(next_due, due);
        ++it;
        continue;
      }
      table_.Clear(it->first, shard_count_.load(std::memory_order_relaxed), &retired_);
      loads_.erase(it->first);
      deleted_incoming_bytes_ +=
          shard->write_counters_.incoming_bytes.load(std::memory_order_relaxed);
      shard->MarkDeleted();
      deleted.push_back(it->first);
      retired_.push_back(std::move(it->second));
      it = live_.erase(it);
    }
    next_reclaim_ms_.store(next_due, std::memory_order_relaxed);
    if (!deleted.empty()) {
      RepublishHeldLocked();
      detail::MutexLock lock(&fanout_mu_);
      for (auto& consumer : consumers_) {
        for (uint32_t index : deleted) consumer->subscriptions.erase(index);
      }
    }
    if (!retired_.empty() && detail::EpochDomain::Global().Synchronize()) retired_.clear();
  }

  // The hot path's check (one relaxed load and a compare): the first put at
  // or after the due time deletes the expired shards.
  void MaybeReclaim(int64_t now_ms) {
    if (KINLET_LIKELY(now_ms < next_reclaim_ms_.load(std::memory_order_relaxed))) return;
    ReclaimSlow(now_ms);
  }
  ABSL_ATTRIBUTE_NOINLINE void ReclaimSlow(int64_t now_ms) {
    if (!control_mu_.TryLock()) return;  // a control call is running: it reclaims
    ReclaimLocked(now_ms);
    control_mu_.Unlock();
  }

  // ---- Fan-out internals ------------------------------------------------------

  struct FanOutConsumer {
    struct Slot {
      std::shared_ptr<detail::SubscriptionState> state;
      int64_t subscribed_ms = 0;
    };
    StreamConsumerDescription description;
    absl::flat_hash_map<uint32_t, Slot> subscriptions;  // by shard index: the latest

    bool Matches(std::string_view name_or_arn) const {
      return description.consumer_name == name_or_arn || description.consumer_arn == name_or_arn;
    }
  };

  // Why a subscription ends when `why` happens at `now_ms`: a subscription
  // whose lifetime had already elapsed ended then, whatever comes later (its
  // end is only noticed lazily, by its next call). Found by the differential
  // tests: a takeover 25 hours later reported ResourceInUse.
  SubscriptionEnd EndOf(const typename FanOutConsumer::Slot& slot, SubscriptionEnd why,
                        int64_t now_ms) const {
    return now_ms - slot.subscribed_ms >= absl::ToInt64Milliseconds(options_.subscription_lifetime)
               ? SubscriptionEnd::kLifetimeElapsed
               : why;
  }

  absl::Status ConsumerNotFound(std::string_view consumer) const {
    return ResourceNotFound(absl::StrCat("Consumer ", detail::ToAbsl(consumer), " of stream ",
                                         context_.name, " under account ", context_.account_id,
                                         " not found."));
  }

  // ---- Resharding internals --------------------------------------------------

  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  static constexpr int64_t kDayMs = 24 * 60 * 60 * 1000;

  // The index in a shard id, in Kinesis's loose forms ("shardId-000000000007",
  // "shardId-7", "7"); empty if it has none.
  static std::optional<int64_t> ShardIndexOf(std::string_view shard_id) {
    std::string_view digits = shard_id;
    if (size_t dash = shard_id.rfind('-'); dash != std::string_view::npos) {
      digits = shard_id.substr(dash + 1);
    }
    if (digits.empty() || !detail::AllDigits(digits) || digits.size() > 12) return std::nullopt;
    int64_t index = 0;
    for (char c : digits) index = index * 10 + (c - '0');
    return index;
  }

  absl::Status UpdatingError() const {
    return ResourceInUse(absl::StrCat("Stream ", context_.name, " under account ",
                                      context_.account_id,
                                      " not ACTIVE, instead in state UPDATING"));
  }
  static absl::Status NoMetricsError() {
    return InvalidArgument(
        "On-demand mode measures write rates with the stream's metrics: it needs "
        "Traits::kMetrics = true.");
  }
  absl::Status AlreadyReshardedError(const ShardType* shard) const {
    return InvalidArgument(absl::StrCat("Shard ", shard->shard_id(), " in stream ", context_.name,
                                        " under account ", context_.account_id,
                                        " has already been merged or split, and thus is not "
                                        "eligible for merging or splitting."));
  }

  absl::Status CheckReshardableLocked(std::string_view operation, int64_t now_ms) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    if (deleted()) return context_.NotFound();
    if (stream_mode() == StreamMode::kOnDemand) {
      return ValidationError(absl::StrCat(
          detail::ToAbsl(operation), " is not supported for stream ", context_.name,
          " under account ", context_.account_id,
          " because it is in ON_DEMAND mode. Switch it to PROVISIONED with UpdateStreamMode."));
    }
    if (now_ms < updating_until_ms_.load(std::memory_order_relaxed)) return UpdatingError();
    return absl::OkStatus();
  }

  // `created`: shards the operation adds; `open_after`: open shards after it.
  absl::Status CheckShardLimitsLocked(int64_t created, int64_t open_after) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    if (static_cast<int64_t>(live_.size()) + created > options_.max_shard_count) {
      return LimitExceeded(absl::StrCat(
          "This request would exceed the shard limit of ", options_.max_shard_count, " for stream ",
          context_.name,
          " (shards held: open, and closed ones until their records pass retention)."));
    }
    if (static_cast<uint64_t>(shard_count_.load(std::memory_order_relaxed)) + created >
        detail::ShardTable<ShardType>::kMaxIndices) {
      return LimitExceeded(absl::StrCat("Stream ", context_.name, " has used every shard id (",
                                        detail::ShardTable<ShardType>::kMaxIndices, ")."));
    }
    if (open_after > options_.max_open_shard_count) {
      return LimitExceeded(absl::StrCat("This request would exceed the open shard limit of ",
                                        options_.max_open_shard_count, " for stream ",
                                        context_.name, "."));
    }
    return absl::OkStatus();
  }

  void MarkUpdatedLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    updating_until_ms_.store(now_ms + absl::ToInt64Milliseconds(options_.update_duration),
                             std::memory_order_relaxed);
  }

  // Drops the entries of a rolling 24-hour window that are older than a day.
  static void PruneWindow(std::deque<int64_t>* window, int64_t now_ms) {
    while (!window->empty() && window->front() <= now_ms - kDayMs) window->pop_front();
  }

  // Publishes a routing table in which the consecutive open shards `old` are
  // replaced by `replacement` (all in hash key order).
  void ReplaceRoutesLocked(std::initializer_list<ShardType*> old,
                           std::initializer_list<ShardType*> replacement)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    auto table = std::make_unique<RoutingTable>();
    auto add = [&](ShardType* s) {
      table->starts.push_back(s->hash_key_range().starting_hash_key);
      table->shards.push_back(s);
    };
    bool placed = false;
    for (ShardType* s : routing_.load(std::memory_order_acquire)->shards) {
      if (std::find(old.begin(), old.end(), s) == old.end()) {
        add(s);
      } else if (!placed) {
        for (ShardType* r : replacement) add(r);
        placed = true;
      }
    }
    PublishRoutingLocked(std::move(table));
  }

  // Splits open `parent` into [S, k-1] and [k, E]. REQUIRES S < k <= E.
  // Routing first, then the parent closes: writers that still route with the
  // old table reach the parent and write there until it closes, then route
  // again.
  std::pair<ShardType*, ShardType*> SplitLocked(ShardType* parent, HashKey k, int64_t now_ms,
                                                ScalingEvent event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const HashKeyRange range = parent->hash_key_range();
    ShardType* low =
        AddShardLocked({range.starting_hash_key, k - 1}, parent->shard_id(), std::nullopt, now_ms);
    ShardType* high =
        AddShardLocked({k, range.ending_hash_key}, parent->shard_id(), std::nullopt, now_ms);
    ReplaceRoutesLocked({parent}, {low, high});
    std::vector<ChildShard> children;
    for (ShardType* child : {low, high}) {
      children.push_back(
          ChildShard{child->shard_id(), {parent->shard_id()}, child->hash_key_range()});
    }
    {
      typename ShardType::WriterGuard writer(&parent->write_mu_);
      parent->CloseLocked(std::move(children), now_ms);
    }
    event.kind = ScalingEvent::Kind::kSplit;
    event.parent_shard_ids = {parent->shard_id()};
    event.child_shard_ids = {low->shard_id(), high->shard_id()};
    LogEvent(std::move(event), now_ms);
    return {low, high};
  }

  // Merges the adjacent open shards `parent` and `adjacent` into one child.
  ShardType* MergeLocked(ShardType* parent, ShardType* adjacent, int64_t now_ms, ScalingEvent event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const bool parent_low =
        parent->hash_key_range().starting_hash_key < adjacent->hash_key_range().starting_hash_key;
    ShardType* low = parent_low ? parent : adjacent;
    ShardType* high = parent_low ? adjacent : parent;
    ShardType* child = AddShardLocked(
        {low->hash_key_range().starting_hash_key, high->hash_key_range().ending_hash_key},
        parent->shard_id(), adjacent->shard_id(), now_ms);
    ReplaceRoutesLocked({low, high}, {child});
    const ChildShard reported{
        child->shard_id(), {parent->shard_id(), adjacent->shard_id()}, child->hash_key_range()};
    for (ShardType* p : {parent, adjacent}) {
      typename ShardType::WriterGuard writer(&p->write_mu_);
      p->CloseLocked({reported}, now_ms);
    }
    event.kind = ScalingEvent::Kind::kMerge;
    event.parent_shard_ids = {parent->shard_id(), adjacent->shard_id()};
    event.child_shard_ids = {child->shard_id()};
    LogEvent(std::move(event), now_ms);
    return child;
  }

  void LogEvent(ScalingEvent event, int64_t now_ms) {
    event.time = absl::FromUnixMillis(now_ms);
    event.open_shard_count = open_shard_count();
    detail::MutexLock lock(&events_mu_);
    ++event_counts_[static_cast<int>(event.kind)];
    events_.push_back(std::move(event));
    while (events_.size() > static_cast<size_t>(options_.on_demand.max_scaling_events)) {
      events_.pop_front();
    }
  }

  // ---- On-demand scaling -----------------------------------------------------

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

  int64_t OnDemandIntervalMs() const {
    return std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.on_demand.evaluation_interval));
  }

  void SetModeLocked(StreamMode mode, int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    mode_.store(mode, std::memory_order_relaxed);
    if (mode != StreamMode::kOnDemand) {
      next_scaling_ms_.store(kNever, std::memory_order_relaxed);
      return;
    }
    for (ShardType* shard : routing_.load(std::memory_order_acquire)->shards) {
      loads_[shard->index()] = LoadSnapshot{};
      SnapshotLoadLocked(shard, now_ms);
    }
    peaks_.clear();
    last_total_bytes_ = TotalIncomingBytes();
    last_evaluation_ms_ = now_ms;
    next_scaling_ms_.store(now_ms + OnDemandIntervalMs(), std::memory_order_relaxed);
  }

  // Records `shard`'s counters and end as the start of its next interval.
  void SnapshotLoadLocked(ShardType* shard, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    LoadSnapshot& snap = loads_[shard->index()];
    snap.bytes = shard->write_counters_.incoming_bytes.load(std::memory_order_relaxed);
    snap.records = shard->write_counters_.incoming_records.load(std::memory_order_relaxed);
    snap.position = shard->log_.End();
    snap.at_ms = now_ms;
  }

  // Bytes ever written to the stream (held shards, and deleted ones).
  uint64_t TotalIncomingBytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    uint64_t total = deleted_incoming_bytes_;
    for (const ShardHandle& shard : AllShards()) {
      total += shard->write_counters_.incoming_bytes.load(std::memory_order_relaxed);
    }
    return total;
  }

  // The hot path's check: one relaxed load and a compare. The first put at or
  // after the due time claims the evaluation (CAS) and runs it.
  void MaybeScaleOnDemand(int64_t now_ms) {
    int64_t due = next_scaling_ms_.load(std::memory_order_relaxed);
    if (KINLET_LIKELY(now_ms < due)) return;
    ScaleOnDemandSlow(now_ms, due);
  }
  ABSL_ATTRIBUTE_NOINLINE void ScaleOnDemandSlow(int64_t now_ms, int64_t due) {
    if (!next_scaling_ms_.compare_exchange_strong(due, now_ms + OnDemandIntervalMs(),
                                                  std::memory_order_relaxed)) {
      return;  // another put claimed this evaluation
    }
    detail::MutexLock lock(&control_mu_);
    if (stream_mode() != StreamMode::kOnDemand || deleted()) return;
    EvaluateOnDemandLocked(now_ms);
    ReclaimLocked(now_ms);
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
  void SampleTopKey(ShardType* shard, uint64_t from, detail::ShardLoad* load) const {
    const RingLog<Payload>& log = shard->log_;
    const uint64_t end = log.End();
    const uint64_t n = static_cast<uint64_t>(options_.on_demand.hot_key_sample_records);
    const uint64_t at = std::max({from, end > n ? end - n : uint64_t{0}, log.Begin()});
    if (at >= end) return;
    GetRecordsResult<Payload> page;
    auto read = log.Read(at, end - at, std::numeric_limits<size_t>::max(), context_.tag,
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

  // One evaluation of the on-demand policy (see on_demand.hpp).
  void EvaluateOnDemandLocked(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const OnDemandOptions& o = options_.on_demand;
    const std::vector<ShardType*> open = routing_.load(std::memory_order_acquire)->shards;
    std::vector<detail::ShardLoad> loads(open.size());
    const int64_t scale_down_ms = absl::ToInt64Milliseconds(o.scale_down_after);
    for (size_t i = 0; i < open.size(); ++i) {
      ShardType* shard = open[i];
      LoadSnapshot& snap = loads_[shard->index()];
      detail::ShardLoad& load = loads[i];
      const uint64_t bytes = shard->write_counters_.incoming_bytes.load(std::memory_order_relaxed);
      const uint64_t records =
          shard->write_counters_.incoming_records.load(std::memory_order_relaxed);
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
          SampleTopKey(shard, snap.position, &load);
        }
      } else {
        snap.hot_key_reported = false;
        snap.limit_reported = false;
      }
    }
    const uint64_t total = TotalIncomingBytes();
    const double elapsed = static_cast<double>(now_ms - last_evaluation_ms_) / 1000.0;
    if (elapsed > 0) {
      peaks_.emplace_back(now_ms, static_cast<double>(total - last_total_bytes_) / elapsed);
    }
    const int64_t window_ms = absl::ToInt64Milliseconds(o.peak_window);
    while (!peaks_.empty() && peaks_.front().first < now_ms - window_ms) peaks_.pop_front();
    double peak = 0;
    for (const auto& [at, rate] : peaks_) peak = std::max(peak, rate);
    OnDemandOptions bounded = o;
    bounded.max_shard_count = std::min(o.max_shard_count, options_.max_open_shard_count);
    const detail::OnDemandPlan plan = detail::PlanOnDemand(
        bounded, loads, peak, options_.max_shard_count - static_cast<int64_t>(live_.size()));
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
      LogEvent(std::move(e), now_ms);
    }
    for (size_t i : plan.limited) {
      LoadSnapshot& snap = loads_[open[i]->index()];
      if (snap.limit_reported) continue;
      snap.limit_reported = true;
      ScalingEvent e = MeasuredEvent(ScalingEvent::Kind::kShardLimitReached, open[i], loads[i]);
      e.reason = absl::StrCat(open[i]->shard_id(),
                              " is over the split threshold, but the stream "
                              "is at its shard limit");
      LogEvent(std::move(e), now_ms);
    }
    for (size_t i : plan.splits) {
      ScalingEvent e = MeasuredEvent(ScalingEvent::Kind::kSplit, open[i], loads[i]);
      e.reason = detail::OverSplit(o, loads[i].bytes_per_second, loads[i].records_per_second)
                     ? "write rate over the split threshold"
                     : absl::StrCat("below the capacity floor of ", plan.floor,
                                    " open shards (double the peak of ", static_cast<int64_t>(peak),
                                    " B/s)");
      const HashKeyRange& r = open[i]->hash_key_range();
      SplitLocked(open[i], r.starting_hash_key + (r.ending_hash_key - r.starting_hash_key) / 2 + 1,
                  now_ms, std::move(e));
    }
    for (size_t i : plan.merges) {
      ScalingEvent e = MeasuredEvent(ScalingEvent::Kind::kMerge, open[i], loads[i]);
      e.bytes_per_second += loads[i + 1].bytes_per_second;
      e.records_per_second += loads[i + 1].records_per_second;
      e.reason = "both shards cold for scale_down_after";
      MergeLocked(open[i], open[i + 1], now_ms, std::move(e));
    }
    for (ShardType* shard : routing_.load(std::memory_order_acquire)->shards) {
      SnapshotLoadLocked(shard, now_ms);  // keeps the cold and reported flags
    }
    last_total_bytes_ = total;
    last_evaluation_ms_ = now_ms;
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

  // ---- ListShards internals --------------------------------------------------

  absl::StatusOr<std::vector<ShardDescription>> ListShardsMatching(const ShardFilter& filter,
                                                                   int64_t after) const {
    if (deleted()) return context_.NotFound();
    const int64_t now_ms = context_.NowMs();
    const int64_t horizon = std::max(created_ms_, context_.ExpireBeforeMs(now_ms));
    auto open_at = [](const ShardType* s, int64_t t, std::optional<int64_t> closed) {
      return absl::ToUnixMillis(s->created_at()) <= t && (!closed || *closed >= t);
    };
    std::vector<ShardDescription> out;
    detail::ReadSection section;
    for (const ShardType* s : *held_.load(std::memory_order_acquire)) {
      if (static_cast<int64_t>(s->index()) <= after) continue;
      std::optional<int64_t> closed;
      if (std::optional<absl::Time> at = s->closed_at()) closed = absl::ToUnixMillis(*at);
      if (closed && *closed < horizon) continue;  // expired: every record is past retention
      bool match = true;
      switch (filter.type) {
        case ShardFilter::Type::kAfterShardId:
        case ShardFilter::Type::kFromTrimHorizon:
          break;
        case ShardFilter::Type::kAtLatest:
          match = !closed;
          break;
        case ShardFilter::Type::kAtTrimHorizon:
          match = open_at(s, horizon, closed);
          break;
        case ShardFilter::Type::kAtTimestamp:
          match = open_at(s, std::max(horizon, absl::ToUnixMillis(filter.timestamp)), closed);
          break;
        case ShardFilter::Type::kFromTimestamp:
          match = !closed || *closed >= std::max(horizon, absl::ToUnixMillis(filter.timestamp));
          break;
      }
      if (match) out.push_back(s->Describe());
    }
    return out;
  }

  static constexpr int64_t kListTokenTtlMs = 300'000;

  std::string MakeListToken(const ShardFilter& filter, int64_t last_index, int64_t now_ms) const {
    return absl::StrCat("kinlet-ls.", context_.tag, ".", static_cast<int>(filter.type), ".",
                        absl::ToUnixMillis(filter.timestamp), ".", last_index, ".", now_ms);
  }

  absl::Status ParseListToken(std::string_view token, int64_t now_ms, ShardFilter* filter,
                              int64_t* after) const {
    const absl::Status invalid = InvalidArgument(absl::StrCat(
        "NextToken ", detail::ToAbsl(token), " is invalid for stream ", context_.name, "."));
    const std::vector<absl::string_view> parts = absl::StrSplit(detail::ToAbsl(token), '.');
    if (parts.size() != 6 || parts[0] != "kinlet-ls") return invalid;
    int64_t values[5];
    for (size_t i = 0; i < 5; ++i) {
      if (!absl::SimpleAtoi(parts[i + 1], &values[i])) return invalid;
    }
    if (values[0] != static_cast<int64_t>(context_.tag) || values[1] < 0 || values[1] > 5) {
      return invalid;
    }
    if (now_ms - values[4] > kListTokenTtlMs) {
      return ExpiredNextToken(absl::StrCat("The NextToken has expired: it was issued at ",
                                           values[4], " and tokens are valid for ", kListTokenTtlMs,
                                           " milliseconds."));
    }
    filter->type = static_cast<ShardFilter::Type>(values[1]);
    filter->timestamp = absl::FromUnixMillis(values[2]);
    *after = values[3];
    return absl::OkStatus();
  }

  // `entry`: the PutRecords entry index, or -1 for PutRecord. Messages are
  // built only on failure, so validation allocates nothing.
  absl::Status ValidateRecord(std::string_view key, size_t data_size, int64_t entry) const {
    // The common case, inline: a short ASCII key and a record within the limit.
    if (KINLET_LIKELY(!key.empty() && key.size() <= 256 &&
                      data_size + key.size() <= options_.max_record_size_bytes &&
                      detail::IsAscii(key))) {
      return absl::OkStatus();
    }
    return ValidateRecordSlow(key, data_size, entry);
  }

  ABSL_ATTRIBUTE_NOINLINE absl::Status ValidateRecordSlow(std::string_view key, size_t data_size,
                                                          int64_t entry) const {
    // Fast path: short ASCII keys are 1..256 characters and valid UTF-8.
    int64_t chars = static_cast<int64_t>(key.size());
    if (key.size() > 256 || !detail::IsAscii(key)) chars = detail::Utf8CodePoints(key);
    if (KINLET_LIKELY(chars >= 1 && chars <= 256 &&
                      data_size + key.size() <= options_.max_record_size_bytes)) {
      return absl::OkStatus();
    }
    const std::string field = entry < 0 ? "" : absl::StrCat("records.", entry + 1, ".member.");
    const std::string_view operation = entry < 0 ? "PutRecord" : "PutRecords";
    if (chars < 0) {
      return InvalidArgument(absl::StrCat("Partition key in ", detail::ToAbsl(operation),
                                          " on stream ", context_.name, " is not valid UTF-8."));
    }
    if (chars < 1 || chars > 256) {
      return ValidationError(
          absl::StrCat("1 validation error detected: Value at '", field,
                       "partitionKey' failed to satisfy constraint: Member must have length ",
                       chars < 1 ? "greater than or equal to 1" : "less than or equal to 256"));
    }
    if (data_size > options_.max_record_size_bytes) {
      return ValidationError(absl::StrCat(
          "1 validation error detected: Value at '", field,
          "data' failed to satisfy constraint: Member must have length less than or equal to ",
          options_.max_record_size_bytes));
    }
    if (data_size + key.size() > options_.max_record_size_bytes) {
      return InvalidArgument(absl::StrCat(
          "Record size (data ", data_size, " + partition key ", key.size(),
          " bytes) exceeds the maximum record size of ", options_.max_record_size_bytes,
          " bytes in ", detail::ToAbsl(operation), " on stream ", context_.name, "."));
    }
    return absl::OkStatus();
  }

  absl::Status ValidateOrdering(SequenceNumber s) const {
    detail::ReadSection section;
    const ShardType* shard = s.stream_tag() == context_.tag &&
                                     s.shard_index() < shard_count_.load(std::memory_order_acquire)
                                 ? ShardAt(s.shard_index())
                                 : nullptr;
    const bool ours = shard != nullptr && s.position() < shard->log_.End();
    if (ours) return absl::OkStatus();
    return InvalidArgument(absl::StrCat("ExclusiveMinimumSequenceNumber ", s.ToString(),
                                        " used in PutRecord on stream ", context_.name,
                                        " under account ", context_.account_id, " is invalid."));
  }

  absl::Status ChangeRetention(absl::Duration period, bool increase) {
    if (deleted()) return context_.NotFound();
    if (period <= absl::ZeroDuration()) {
      return InvalidArgument("Retention period must be positive.");
    }
    detail::MutexLock lock(&control_mu_);
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
    return absl::OkStatus();
  }

  const StreamOptions options_;
  // Shared with every shard and subscription (handles may outlive the stream).
  const std::shared_ptr<detail::StreamContext<Clock>> context_owner_;
  detail::StreamContext<Clock>& context_;
  std::string arn_;
  absl::Time created_at_;

  // The shards by index: a slot is set (release) before shard_count_ grows
  // past it (release); readers load shard_count_ (acquire), then the slot,
  // inside a ReadSection. Written by the control plane only.
  detail::ShardTable<ShardType> table_;
  std::atomic<uint32_t> shard_count_{0};  // indices taken so far (ids are never reused)
  // The routing table and the held-shard list in force: published by the
  // control plane (release), loaded by puts and reads (acquire) inside a
  // ReadSection; replaced ones are retired and freed after a grace period.
  std::atomic<const RoutingTable*> routing_{nullptr};
  std::atomic<const std::vector<ShardType*>*> held_{nullptr};

  // Control plane: creation, resharding, retention changes, deletion.
  mutable detail::Mutex control_mu_;
  // The shards held, by index: the stream's own references.
  std::map<uint32_t, std::shared_ptr<ShardType>> live_ ABSL_GUARDED_BY(control_mu_);
  std::unique_ptr<RoutingTable> routing_owner_ ABSL_GUARDED_BY(control_mu_);
  std::unique_ptr<std::vector<ShardType*>> held_owner_ ABSL_GUARDED_BY(control_mu_);
  // The fault configuration in force (calls hold it inside a ReadSection).
  std::unique_ptr<detail::FaultState> faults_ ABSL_GUARDED_BY(control_mu_);
  // Unpublished objects awaiting a grace period (see ReclaimLocked).
  std::vector<std::shared_ptr<void>> retired_ ABSL_GUARDED_BY(control_mu_);

  int64_t created_ms_ = 0;
  // Written under control_mu_ (relaxed); read without it (relaxed): a stale
  // value only delays a mode's effect or a status change by one call.
  std::atomic<StreamMode> mode_{StreamMode::kProvisioned};
  std::atomic<int64_t> updating_until_ms_{0};
  // When the next on-demand evaluation is due (kNever in provisioned mode).
  // Loaded relaxed by every put; claimed by CAS (see MaybeScaleOnDemand).
  std::atomic<int64_t> next_scaling_ms_{kNever};
  // When the next closed shard passes retention (kNever: none closed). Loaded
  // relaxed by every put; written under control_mu_ (see ReclaimLocked).
  std::atomic<int64_t> next_reclaim_ms_{kNever};
  // On-demand measurements and the rolling windows of the 24-hour limits.
  // By shard index; node-based: references stay valid while shards are added.
  absl::node_hash_map<uint32_t, LoadSnapshot> loads_ ABSL_GUARDED_BY(control_mu_);
  std::deque<std::pair<int64_t, double>> peaks_ ABSL_GUARDED_BY(control_mu_);
  uint64_t last_total_bytes_ ABSL_GUARDED_BY(control_mu_) = 0;
  uint64_t deleted_incoming_bytes_ ABSL_GUARDED_BY(control_mu_) = 0;
  int64_t last_evaluation_ms_ ABSL_GUARDED_BY(control_mu_) = 0;
  std::deque<int64_t> shard_count_updates_ ABSL_GUARDED_BY(control_mu_);
  std::deque<int64_t> mode_updates_ ABSL_GUARDED_BY(control_mu_);

  // Registered fan-out consumers (its own lock: never held across a reshard).
  mutable detail::Mutex fanout_mu_;
  std::vector<std::unique_ptr<FanOutConsumer>> consumers_ ABSL_GUARDED_BY(fanout_mu_);

  // The scaling event log (its own lock: GetMetrics must not wait for a reshard).
  mutable detail::Mutex events_mu_;
  std::deque<ScalingEvent> events_ ABSL_GUARDED_BY(events_mu_);
  uint64_t event_counts_[kScalingEventKinds] ABSL_GUARDED_BY(events_mu_) = {};
};

}  // namespace kinlet
