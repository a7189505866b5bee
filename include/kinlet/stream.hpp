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
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/metrics.hpp"
#include "kinlet/payload.hpp"
#include "kinlet/record.hpp"
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
  static std::atomic<uint32_t> next{
      static_cast<uint32_t>((absl::ToUnixNanos(absl::Now()) >> 10) * 2654435761u) | 1u};
  uint32_t tag;
  do {
    tag = next.fetch_add(0x9E3779B1u, std::memory_order_relaxed);
  } while (tag == 0);
  return tag;
}
}  // namespace detail

template <RecordPayload Payload, StreamTraits Traits = DefaultStreamTraits>
class Stream {
 public:
  using ShardType = Shard<Payload, Traits>;
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
    return std::unique_ptr<Stream>(new Stream(std::move(options), clock));
  }

  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

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
    const HashKey hash = options.explicit_hash_key.has_value()
                             ? *options.explicit_hash_key
                             : Traits::Hasher::Hash(partition_key);
    const int64_t now_ms = context_.NowMs();
    for (;;) {
      ShardType* shard = Route(hash);
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
    std::vector<uint32_t>& route = result->route_;
    constexpr uint32_t kDone = UINT32_MAX;
    auto route_pending = [&] {
      for (size_t i = 0; i < n; ++i) {
        if (route[i] == kDone) continue;
        const Entry& e = entries[i];
        const HashKey hash = e.explicit_hash_key.has_value()
                                 ? *e.explicit_hash_key
                                 : Traits::Hasher::Hash(e.partition_key);
        route[i] = Route(hash)->index();
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

  // ---- Metrics and faults --------------------------------------------------

  // A snapshot of every shard's metrics and their sum (see metrics.hpp).
  // Thread-safe; lock-free.
  StreamMetrics GetMetrics() const {
    StreamMetrics m;
    m.stream_name = context_.name;
    m.taken_at = context_.clock->Now();
    for (ShardType* shard : AllShards()) {
      m.shards.push_back(shard->Metrics());
      m.totals.Accumulate(m.shards.back());
    }
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
    if (!faults.enabled()) {
      context_.faults.store(nullptr, std::memory_order_release);
      return absl::OkStatus();
    }
    fault_history_.push_back(std::make_unique<detail::FaultState>(faults));
    context_.faults.store(fault_history_.back().get(), std::memory_order_release);
    return absl::OkStatus();
  }

  // ---- Reads ----------------------------------------------------------------

  // The shard with this id. Accepts Kinesis's loose forms ("shardId-7", "7").
  // ResourceNotFoundException if there is no such shard or the stream was
  // deleted. Thread-safe; lock-free. The shard lives as long as the stream.
  absl::StatusOr<ShardType*> GetShard(std::string_view shard_id) const {
    if (deleted()) return context_.NotFound();
    std::string_view digits = shard_id;
    if (size_t dash = shard_id.rfind('-'); dash != std::string_view::npos) {
      digits = shard_id.substr(dash + 1);
    }
    uint64_t index = 0;
    bool ok = detail::AllDigits(digits) && digits.size() <= 12;
    for (char c : digits) index = index * 10 + static_cast<uint64_t>(c - '0');
    if (ok && index < shard_count_.load(std::memory_order_acquire)) return ShardAt(index);
    return ResourceNotFound(absl::StrCat("Shard ", detail::ToAbsl(shard_id), " in stream ",
                                         context_.name, " under account ", context_.account_id,
                                         " does not exist"));
  }

  // See Shard::GetShardIterator. Also ResourceNotFoundException for an
  // unknown shard. Thread-safe; lock-free.
  absl::StatusOr<ShardIterator> GetShardIterator(std::string_view shard_id,
                                                 const IteratorPosition& position) const {
    absl::StatusOr<ShardType*> shard = GetShard(shard_id);
    if (!shard.ok()) return shard.status();
    return (*shard)->GetShardIterator(position);
  }

  // See Shard::GetRecords. InvalidArgumentException for an iterator of
  // another stream. Thread-safe; lock-free; allocates nothing when `page` is
  // reused (and its buffers have grown to the records' sizes).
  absl::Status GetRecords(const ShardIterator& iterator, int limit, Page* page) const {
    if (iterator.stream_tag() != context_.tag ||
        iterator.shard_index() >= shard_count_.load(std::memory_order_acquire)) {
      detail::RecordBuffer<Payload>(page).Finish();  // leaves the page empty
      page->next_shard_iterator.reset();
      if (deleted()) return context_.NotFound();
      return InvalidArgument("Invalid ShardIterator.");
    }
    return ShardAt(iterator.shard_index())->GetRecords(iterator, limit, page);
  }
  // See Shard::WaitForRecords. False for an iterator of another stream.
  bool WaitForRecords(const ShardIterator& iterator, absl::Duration timeout) const {
    if (iterator.stream_tag() != context_.tag ||
        iterator.shard_index() >= shard_count_.load(std::memory_order_acquire)) {
      return false;
    }
    return ShardAt(iterator.shard_index())->WaitForRecords(iterator, timeout);
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
  std::vector<ShardType*> OpenShards() const {
    const RoutingTable* table = routing_.load(std::memory_order_acquire);
    return table->shards;
  }
  // Every shard ever created (open and closed), in creation order.
  std::vector<ShardType*> AllShards() const {
    std::vector<ShardType*> out;
    const uint32_t count = shard_count_.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < count; ++i) out.push_back(ShardAt(i));
    return out;
  }
  int open_shard_count() const {
    return static_cast<int>(routing_.load(std::memory_order_acquire)->shards.size());
  }

  // ListShards: every shard (open and closed) in creation order.
  // ResourceNotFoundException if deleted. Thread-safe.
  absl::StatusOr<std::vector<ShardDescription>> ListShards() const {
    if (deleted()) return context_.NotFound();
    std::vector<ShardDescription> out;
    for (ShardType* s : AllShards()) out.push_back(s->Describe());
    return out;
  }

  // DescribeStreamSummary / DescribeStream. ResourceNotFoundException if
  // deleted. Thread-safe.
  absl::StatusOr<StreamDescriptionSummary> DescribeStreamSummary() const {
    if (deleted()) return context_.NotFound();
    StreamDescriptionSummary d;
    d.stream_name = context_.name;
    d.stream_arn = arn_;
    d.stream_status = StreamStatus::kActive;
    d.retention_period = retention_period();
    d.stream_creation_timestamp = created_at_;
    d.open_shard_count = open_shard_count();
    d.max_record_size_bytes = options_.max_record_size_bytes;
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

  // SplitShard: closes the open shard `shard_to_split` and creates two children
  // with the next shard ids, [S, K-1] and [K, E] for the parent's [S, E] and
  // K = new_starting_hash_key, each with parent_shard_id set. Writers switch
  // atomically: each record lands in the parent (before it closes) or in the
  // child that owns its hash key (after), never both. The parent stays
  // readable; at its end GetRecords returns no next iterator and the children.
  // Errors: ResourceNotFoundException (unknown shard, deleted stream);
  // InvalidArgumentException if the shard is closed ("has already been merged
  // or split") or unless S + 1 < K < E (AWS's message); LimitExceededException
  // beyond max_shard_count. Thread-safe; serialised with other control calls.
  absl::Status SplitShard(std::string_view shard_to_split, HashKey new_starting_hash_key) {
    absl::StatusOr<ShardType*> found = GetShard(shard_to_split);
    if (!found.ok()) return found.status();
    ShardType* parent = *found;
    detail::MutexLock lock(&control_mu_);
    if (!parent->is_open()) {
      return InvalidArgument(absl::StrCat("Shard ", parent->shard_id(), " in stream ",
                                          context_.name, " under account ", context_.account_id,
                                          " has already been merged or split, and thus is not "
                                          "eligible for merging or splitting."));
    }
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
    if (shards_.size() + 2 > static_cast<size_t>(options_.max_shard_count)) {
      return LimitExceeded(absl::StrCat("This request would exceed the shard limit of ",
                                        options_.max_shard_count, " for stream ", context_.name,
                                        "."));
    }
    ShardType* low =
        AddShardLocked({range.starting_hash_key, k - 1}, parent->shard_id(), std::nullopt);
    ShardType* high = AddShardLocked({k, range.ending_hash_key}, parent->shard_id(), std::nullopt);
    // New routing first: writers that still route with the old table reach the
    // parent and write there until it closes, then route again.
    auto table = std::make_unique<RoutingTable>();
    for (ShardType* s : routing_.load(std::memory_order_acquire)->shards) {
      if (s == parent) {
        table->starts.push_back(low->hash_key_range().starting_hash_key);
        table->shards.push_back(low);
        table->starts.push_back(high->hash_key_range().starting_hash_key);
        table->shards.push_back(high);
      } else {
        table->starts.push_back(s->hash_key_range().starting_hash_key);
        table->shards.push_back(s);
      }
    }
    PublishRoutingLocked(std::move(table));
    std::vector<ChildShard> children;
    for (ShardType* child : {low, high}) {
      children.push_back(
          ChildShard{child->shard_id(), {parent->shard_id()}, child->hash_key_range()});
    }
    typename ShardType::WriterGuard writer(&parent->write_mu_);
    parent->CloseLocked(std::move(children));
    return absl::OkStatus();
  }

  // Reclaims ring space of expired records on every shard now (puts do it
  // lazily). Returns the number of records dropped. Thread-safe.
  size_t TrimExpired() {
    const int64_t expire_before = context_.ExpireBeforeMs(context_.NowMs());
    size_t dropped = 0;
    for (ShardType* shard : AllShards()) {
      typename ShardType::WriterGuard lock(&shard->write_mu_);
      dropped += shard->log_.TrimExpired(expire_before);
    }
    return dropped;
  }

  // Marks the stream deleted: every later call fails with
  // ResourceNotFoundException. Objects stay valid until the Stream is
  // destroyed, so no reader or writer holds a dangling reference. Used by
  // Registry::DeleteStream. Thread-safe; idempotent.
  void MarkDeleted() {
    context_.deleted.store(true, std::memory_order_release);
    for (ShardType* shard : AllShards()) shard->log().NotifyWaiters();  // wake blocked readers
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
        shard_slots_(new std::atomic<ShardType*>[static_cast<size_t>(options_.max_shard_count)]) {
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
    context_.retention_ms.store(absl::ToInt64Milliseconds(options_.retention_period),
                                std::memory_order_relaxed);
    arn_ = absl::StrCat("arn:aws:kinesis:", options_.region, ":", options_.account_id, ":stream/",
                        options_.name);
    created_at_ = clock->Now();
    auto table = std::make_unique<RoutingTable>();
    detail::MutexLock lock(&control_mu_);
    if (options_.faults.enabled()) {
      fault_history_.push_back(std::make_unique<detail::FaultState>(options_.faults));
      context_.faults.store(fault_history_.back().get(), std::memory_order_release);
    }
    for (const HashKeyRange& range : InitialHashKeyRanges(options_.shard_count)) {
      ShardType* shard = AddShardLocked(range, std::nullopt, std::nullopt);
      table->starts.push_back(range.starting_hash_key);
      table->shards.push_back(shard);
    }
    PublishRoutingLocked(std::move(table));
  }

  ShardType* Route(HashKey hash) const {
    return routing_.load(std::memory_order_acquire)->Find(hash);
  }
  ShardType* ShardAt(uint64_t index) const {
    return shard_slots_[index].load(std::memory_order_acquire);
  }

  ShardType* AddShardLocked(HashKeyRange range, std::optional<std::string> parent,
                            std::optional<std::string> adjacent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const uint32_t index = static_cast<uint32_t>(shards_.size());
    shards_.push_back(std::unique_ptr<ShardType>(
        new ShardType(&context_, index, range, std::move(parent), std::move(adjacent),
                      options_.shard_capacity_records, options_.EffectiveShardCapacityBytes())));
    // Publish the shard before the count that makes it visible.
    shard_slots_[index].store(shards_.back().get(), std::memory_order_release);
    shard_count_.store(index + 1, std::memory_order_release);
    return shards_.back().get();
  }

  void PublishRoutingLocked(std::unique_ptr<RoutingTable> table)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    // Old tables stay alive (a writer may still be routing with one).
    routing_.store(table.get(), std::memory_order_release);
    routing_history_.push_back(std::move(table));
  }

  // `entry`: the PutRecords entry index, or -1 for PutRecord. Messages are
  // built only on failure, so validation allocates nothing.
  absl::Status ValidateRecord(std::string_view key, size_t data_size, int64_t entry) const {
    // The common case, inline: a short ASCII key and a record within the limit.
    if (KINLET_LIKELY(!key.empty() && key.size() <= 256 &&
                      data_size + key.size() <= options_.max_record_size_bytes)) {
      bool ascii = true;
      for (char c : key) ascii &= static_cast<unsigned char>(c) < 0x80;
      if (KINLET_LIKELY(ascii)) return absl::OkStatus();
    }
    return ValidateRecordSlow(key, data_size, entry);
  }

  ABSL_ATTRIBUTE_NOINLINE absl::Status ValidateRecordSlow(std::string_view key, size_t data_size,
                                                          int64_t entry) const {
    // Fast path: short ASCII keys are 1..256 characters and valid UTF-8.
    int64_t chars = static_cast<int64_t>(key.size());
    bool ascii = key.size() <= 256;
    for (size_t i = 0; ascii && i < key.size(); ++i)
      ascii = static_cast<unsigned char>(key[i]) < 0x80;
    if (!ascii) chars = detail::Utf8CodePoints(key);
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
    const bool ours = s.stream_tag() == context_.tag &&
                      s.shard_index() < shard_count_.load(std::memory_order_acquire) &&
                      s.position() < ShardAt(s.shard_index())->log_.End();
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
    context_.retention_ms.store(wanted, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  const StreamOptions options_;
  detail::StreamContext<Clock> context_;
  std::string arn_;
  absl::Time created_at_;

  // shard_slots_[i] is written once (release) before shard_count_ grows past i
  // (release); readers load shard_count_ (acquire), then the slot.
  const std::unique_ptr<std::atomic<ShardType*>[]> shard_slots_;
  std::atomic<uint32_t> shard_count_{0};
  std::atomic<const RoutingTable*> routing_{nullptr};

  // Control plane: creation, resharding, retention changes.
  mutable detail::Mutex control_mu_;
  std::vector<std::unique_ptr<ShardType>> shards_ ABSL_GUARDED_BY(control_mu_);
  std::vector<std::unique_ptr<RoutingTable>> routing_history_ ABSL_GUARDED_BY(control_mu_);
  // Every fault configuration ever published (calls may still hold one).
  std::vector<std::unique_ptr<detail::FaultState>> fault_history_ ABSL_GUARDED_BY(control_mu_);
};

}  // namespace kinlet
