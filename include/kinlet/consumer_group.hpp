// kinlet/consumer_group.hpp: what the KCL gives Kinesis applications, in
// process: a group of workers shares a stream's shards through leases, one
// record processor per leased shard, with checkpoints that survive restarts.
//
//   kinlet::InMemoryCheckpointStore store;      // or FileCheckpointStore::Open(path)
//   kinlet::ConsumerGroupOptions options;
//   options.application_name = "word-count";
//   auto worker = kinlet::ConsumerGroup<std::string>::Create(
//       stream.get(), &store, [] { return std::make_unique<MyProcessor>(); }, options);
//   (*worker)->Start();                          // or call RunOnce() yourself
//   ...
//   (*worker)->RequestShutdown().wait();         // processors checkpoint, leases released
//
// A ConsumerGroup is one worker (a KCL Worker/Scheduler). Several objects with
// the same application name and store are several workers: they balance the
// shards between them, take over the shards of a worker that stops renewing
// its leases (after failover_time), and steal from a worker holding more than
// its share (max_leases_to_steal_at_one_time per cycle).
//
// Semantics (as the KCL): at-least-once delivery. A processor sees its shard's
// records in order; after a failover or a restart, processing resumes AFTER the
// last checkpoint, so records after it may be delivered again and none before
// it are lost. A child shard is processed only once every parent's lease has
// checkpointed SHARD_END: a processor's ShardEnded must call
// checkpointer.Checkpoint(), or the children never start (the KCL's rule).
// Lease expiry uses the stream's clock, so ManualClock makes failover tests
// deterministic.
//
// Lease cleanup (the KCL's LeaseCleanupManager rule): the lease of a shard
// processed to SHARD_END is deleted from the store, by any worker at its next
// shard sync, once (1) none of its parents has a lease any more, (2) each of
// its children (the shards the stream lists with it as a parent, and the
// leases naming it as one) has a lease whose checkpoint is past TRIM_HORIZON,
// i.e. the child's processing has begun, and (3) no live worker holds it. (1)
// deletes in lineage order, so a deleted lease is never created again (leases
// are created only for the children of leased shards); (2) keeps it until its
// children's leases, which are created from it, exist and have started. So
// the lease table, and what every RunOnce reads of it, holds the unfinished
// shards and the last finished generation, not the stream's whole history.
//
// Lifetime: a group over a stream owned by a std::shared_ptr (every stream of
// a Registry) keeps the stream alive; after Registry::DeleteStream, RunOnce
// fails with ResourceNotFoundException and the group can still be shut down
// or destroyed. A stream owned otherwise (std::unique_ptr) must outlive the
// group.
//
// Thread safety: RunOnce is called by one thread at a time (by the group's own
// thread after Start()); processors run on that thread, one call at a time.
// stats(), HeldShards(), Leases() and RequestShutdown() are thread-safe. Do not
// call the group from inside a processor callback except through its
// Checkpointer.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "kinlet/checkpoint_store.hpp"
#include "kinlet/consumer.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/stream.hpp"
#include "kinlet/stream_concept.hpp"

namespace kinlet {

struct ConsumerGroupOptions {
  // The group's name (Kinesis name rules). With enhanced_fan_out it is also
  // the registered stream consumer's name.
  std::string application_name;
  // This worker's id in the lease table; empty: "<application>-worker-<n>",
  // unique in the process. No tabs, commas or newlines.
  std::string worker_id;
  // Where a new group starts in the shards open at that position:
  // TrimHorizon, Latest or AtTimestamp (the KCL's initialPositionInStream).
  IteratorPosition initial_position = IteratorPosition::TrimHorizon();
  // A lease not renewed for this long is taken over (failoverTimeMillis).
  // Owners renew every failover_time / 3.
  absl::Duration failover_time = absl::Seconds(10);
  int max_leases_for_worker = std::numeric_limits<int>::max();
  int max_leases_to_steal_at_one_time = 1;
  // Records per ProcessRecords call at most, 1..10000.
  int max_records = 10000;
  // Delivery: false polls with GetRecords (sharing each shard's read limits
  // with other readers); true reads through enhanced fan-out, as a stream
  // consumer named application_name (registered if needed).
  bool enhanced_fan_out = false;
  // How often (stream clock) the worker lists shards to create leases for new
  // ones; it also does at its first cycle and after a shard ends.
  absl::Duration shard_sync_interval = absl::Seconds(60);
  // Start() mode: how long (real time) the thread rests after a cycle that
  // delivered nothing.
  absl::Duration idle_time_between_reads = absl::Milliseconds(1);
};

struct InitializationInput {
  std::string shard_id;
  // Where processing resumes: a sentinel (kCheckpointTrimHorizon, ...) or the
  // last checkpointed sequence number (processing continues after it).
  std::string checkpoint;
};

template <typename Payload>
struct ProcessRecordsInput {
  std::string_view shard_id;
  const std::vector<Record<Payload>>& records;  // in shard order, never empty
  int64_t millis_behind_latest;
};

// A worker over any KinesisStream (stream_concept.hpp): kinlet's in-process
// Stream or a remote one; the same leases, store and processors either way.
template <typename S>
class StreamConsumerGroup;

// Today's spelling: a worker over an in-process stream.
template <RecordPayload Payload, StreamTraits Traits = DefaultStreamTraits>
using ConsumerGroup = StreamConsumerGroup<Stream<Payload, Traits>>;

namespace detail {

// A lease this worker holds: its last written state and what was delivered.
struct HeldLease {
  CheckpointStore* store = nullptr;
  Lease lease;  // as this worker last wrote it (its counter is the stored one)
  std::function<int64_t()> now_ms;
  std::optional<SequenceNumber> largest_delivered;
  bool at_shard_end = false;  // read to its end: Checkpoint() writes SHARD_END
  bool lost = false;          // a write found another owner's counter

  // Writes `next` (counter + 1, renewal now) if the lease is still ours.
  absl::Status Write(Lease next) {
    next.lease_counter = lease.lease_counter + 1;
    next.last_renewal_ms = now_ms();
    absl::Status s = store->UpdateLease(next, lease.lease_counter);
    if (s.ok()) {
      lease = std::move(next);
    } else if (IsConditionalCheckFailed(s) || IsResourceNotFound(s)) {
      lost = true;
    }
    return s;
  }
};

}  // namespace detail

// Given to a processor to record its progress (the KCL's
// RecordProcessorCheckpointer). Valid during the callback that receives it.
class Checkpointer {
 public:
  // Checkpoints the last record delivered to the processor; in ShardEnded,
  // SHARD_END (which lets the children start). OK and no write if nothing was
  // delivered yet. Errors as Checkpoint(sequence_number).
  absl::Status Checkpoint() {
    if (handle_->at_shard_end) return Write(std::string(kCheckpointShardEnd));
    if (!handle_->largest_delivered) return handle_->lost ? LeaseLostError() : absl::OkStatus();
    return Checkpoint(*handle_->largest_delivered);
  }

  // Checkpoints `sequence_number`: processing resumes after it. Errors:
  // InvalidArgumentException if it is of another shard, beyond the greatest
  // number delivered to this processor, or before the last checkpoint;
  // ShutdownException if this worker no longer holds the lease (it must stop:
  // LeaseLost follows); the store's errors otherwise.
  absl::Status Checkpoint(const SequenceNumber& sequence_number) {
    if (handle_->lost) return LeaseLostError();
    const std::optional<SequenceNumber>& top = handle_->largest_delivered;
    const std::string text = sequence_number.ToString();
    if (!top || sequence_number.shard_index() != top->shard_index() ||
        sequence_number.stream_tag() != top->stream_tag() || sequence_number > *top) {
      return InvalidArgument(absl::StrCat(
          "Could not checkpoint at sequence number ", text, " of shard ", handle_->lease.lease_key,
          ": it is not a record delivered to this processor (greatest: ",
          top ? top->ToString() : std::string("none"), ")"));
    }
    absl::StatusOr<SequenceNumber> last = SequenceNumber::Parse(handle_->lease.checkpoint);
    if (last.ok() && sequence_number < *last) {
      return InvalidArgument(absl::StrCat("Could not checkpoint at sequence number ", text,
                                          ": it is before the last checkpoint ",
                                          handle_->lease.checkpoint));
    }
    return Write(text);
  }

  // The checkpoint stored for this shard now (a sentinel or a sequence number).
  const std::string& last_checkpoint() const { return handle_->lease.checkpoint; }

 private:
  template <typename S>
  friend class StreamConsumerGroup;
  explicit Checkpointer(detail::HeldLease* handle) : handle_(handle) {}

  absl::Status Write(std::string checkpoint) {
    if (handle_->lost) return LeaseLostError();
    Lease next = handle_->lease;
    next.checkpoint = std::move(checkpoint);
    next.owner_switches_since_checkpoint = 0;
    absl::Status s = handle_->Write(std::move(next));
    if (handle_->lost) return LeaseLostError();
    return s;
  }

  absl::Status LeaseLostError() const {
    return ShutdownError(
        absl::StrCat("Can't update checkpoint - instance doesn't hold the lease "
                     "for this shard (",
                     handle_->lease.lease_key, ")"));
  }

  detail::HeldLease* handle_;
};

// The KCL's ShardRecordProcessor: one instance per shard lease, called on the
// worker's thread, one call at a time, in this order: Initialize, then
// ProcessRecords any number of times, then exactly one of LeaseLost,
// ShardEnded (repeated on later cycles until it checkpoints) or
// ShutdownRequested. Processors may keep state; they are destroyed after the
// last call.
template <typename Payload>
class RecordProcessor {
 public:
  virtual ~RecordProcessor() = default;
  virtual void Initialize(const InitializationInput& input) { (void)input; }
  virtual void ProcessRecords(const ProcessRecordsInput<Payload>& input,
                              Checkpointer& checkpointer) = 0;
  // Another worker holds the lease now: stop; checkpointing is impossible.
  virtual void LeaseLost() {}
  // Every record of the shard was delivered: call checkpointer.Checkpoint().
  virtual void ShardEnded(Checkpointer& checkpointer) = 0;
  // RequestShutdown: the last chance to checkpoint while the lease is held.
  virtual void ShutdownRequested(Checkpointer& checkpointer) { (void)checkpointer; }
};

template <typename Payload>
struct ProcessRecordViewsInput {
  std::string_view shard_id;
  // In shard order, never empty: views of the shard's stored records (or of
  // copies), valid until ProcessRecordViews returns. Copy what must outlive it.
  std::span<const RecordView<Payload>> records;
  int64_t millis_behind_latest;
};

// A processor that takes its records in place (zero-copy): a group over an
// in-process stream polls with GetRecordsView (records_view.hpp) and hands
// ProcessRecordViews views of the shard's own storage instead of copies; the
// records are pinned only while it runs (keep it short: a put that needs
// their memory, a whole ring later, fails with ShardFull meanwhile). Where a
// group cannot lend (fan-out delivery, a remote stream) it gets views of the
// copies. Everything else is as RecordProcessor.
template <typename Payload>
class RecordViewProcessor : public RecordProcessor<Payload> {
 public:
  virtual void ProcessRecordViews(const ProcessRecordViewsInput<Payload>& input,
                                  Checkpointer& checkpointer) = 0;

  // The copying delivery, turned into views of the copies.
  void ProcessRecords(const ProcessRecordsInput<Payload>& input, Checkpointer& checkpointer) final {
    views_.clear();
    for (const Record<Payload>& r : input.records) {
      views_.push_back(RecordView<Payload>{r.sequence_number, r.approximate_arrival_timestamp,
                                           r.partition_key,
                                           typename PayloadTraits<Payload>::View(r.data)});
    }
    ProcessRecordViews(
        ProcessRecordViewsInput<Payload>{input.shard_id, views_, input.millis_behind_latest},
        checkpointer);
  }

 private:
  std::vector<RecordView<Payload>> views_;
};

// Counters of one worker (a snapshot).
struct ConsumerGroupStats {
  size_t leases_held = 0;
  uint64_t leases_taken = 0;   // unowned or expired leases taken
  uint64_t leases_stolen = 0;  // taken from a live worker holding more than its share
  uint64_t leases_lost = 0;    // found taken by another worker
  uint64_t records_delivered = 0;
  uint64_t shards_ended = 0;    // leases that reached SHARD_END here
  uint64_t leases_deleted = 0;  // finished leases this worker deleted (lease cleanup)
  uint64_t trimmed_records_skipped = 0;
  std::string last_error;  // the latest problem (a missing SHARD_END checkpoint, ...)
};

template <typename S>
class StreamConsumerGroup {
  static_assert(KinesisStream<S>, "StreamConsumerGroup needs a KinesisStream (stream_concept.hpp)");

 public:
  using StreamType = S;
  using Payload = StreamPayloadT<S>;
  using Processor = RecordProcessor<Payload>;
  using ProcessorFactory = std::function<std::unique_ptr<Processor>()>;

  // A worker of `options.application_name` on `stream`, keeping its leases in
  // `store` (which must outlive it). A shared-owned stream is kept alive by
  // the group; any other stream must outlive it. Errors: InvalidArgumentException for a bad
  // name, worker id, initial position, failover_time (<= 0), max_records
  // (outside 1..10000) or lease limits (< 0, max_leases_for_worker < 1);
  // ResourceNotFoundException for a deleted stream; with enhanced_fan_out,
  // the errors of RegisterStreamConsumer except ResourceInUse (registered).
  static absl::StatusOr<std::unique_ptr<StreamConsumerGroup>> Create(StreamType* stream,
                                                                     CheckpointStore* store,
                                                                     ProcessorFactory factory,
                                                                     ConsumerGroupOptions options) {
    if (!detail::IsResourceName(options.application_name)) {
      return InvalidArgument("application_name must match [a-zA-Z0-9_.-]{1,128}");
    }
    if (options.worker_id.empty()) {
      static std::atomic<uint64_t> next{0};
      options.worker_id = absl::StrCat(options.application_name, "-worker-", next.fetch_add(1));
    }
    if (options.worker_id.find_first_of("\t\n,") != std::string::npos) {
      return InvalidArgument("worker_id must not contain tabs, commas or newlines");
    }
    const ShardIteratorType type = options.initial_position.type;
    if (type != ShardIteratorType::kTrimHorizon && type != ShardIteratorType::kLatest &&
        type != ShardIteratorType::kAtTimestamp) {
      return InvalidArgument("initial_position must be TRIM_HORIZON, LATEST or AT_TIMESTAMP");
    }
    if (options.failover_time <= absl::ZeroDuration() || options.max_records < 1 ||
        options.max_records > 10000 || options.max_leases_for_worker < 1 ||
        options.max_leases_to_steal_at_one_time < 0 || !factory) {
      return InvalidArgument(
          "failover_time must be positive, max_records 1..10000, max_leases_for_worker >= 1, "
          "max_leases_to_steal_at_one_time >= 0, and a processor factory given");
    }
    if (detail::KnownDeleted(*stream)) {
      return ResourceNotFound(absl::StrCat("Stream ", std::string(stream->name())));
    }
    if (options.enhanced_fan_out) {
      if constexpr (FanOutStream<S>) {
        auto registered = stream->RegisterStreamConsumer(options.application_name);
        if (!registered.ok() && !IsResourceInUse(registered.status())) return registered.status();
      } else {
        return InvalidArgument("enhanced_fan_out needs a stream with SubscribeToShard");
      }
    }
    return std::unique_ptr<StreamConsumerGroup>(
        new StreamConsumerGroup(stream, store, std::move(factory), std::move(options)));
  }

  StreamConsumerGroup(const StreamConsumerGroup&) = delete;
  StreamConsumerGroup& operator=(const StreamConsumerGroup&) = delete;

  // Stops the thread (after the cycle in progress) without telling the
  // processors or releasing the leases: to the other workers this worker
  // crashed, and its leases expire after failover_time. Use RequestShutdown
  // for a clean stop.
  ~StreamConsumerGroup() {
    stop_.store(true, std::memory_order_release);
    if (thread_.joinable()) thread_.join();
  }

  // One cycle: sync shards to leases when due, renew held leases (finding lost
  // ones), take or steal leases toward an even share, then give each held
  // shard's processor its next batch (starting processors whose parents are
  // done, finishing shards that ended). Errors: the store's (the cycle stops
  // there; call again), ResourceNotFoundException once the stream is
  // deleted, FailedPrecondition after shutdown. Problems of one
  // shard (throttling, a missing SHARD_END checkpoint) are not errors: they
  // are retried next cycle and reported in stats().last_error.
  absl::Status RunOnce() {
    if (shut_down_) return absl::FailedPreconditionError("the consumer group was shut down");
    if (detail::KnownDeleted(*stream_)) {
      return Failed(
          ResourceNotFound(absl::StrCat("Stream ", std::string(stream_->name()), " was deleted")));
    }
    const int64_t now = Now();
    delivered_this_cycle_ = false;
    if (need_sync_ ||
        now - last_sync_ms_ >= absl::ToInt64Milliseconds(options_.shard_sync_interval)) {
      if (absl::Status s = SyncShards(now); !s.ok()) return Failed(s);
      need_sync_ = false;
      last_sync_ms_ = now;
    }
    absl::StatusOr<std::vector<Lease>> leases = store_->ListLeases();
    if (!leases.ok()) return Failed(leases.status());
    std::map<std::string, Lease> by_key;
    for (Lease& l : *leases) by_key.emplace(l.lease_key, std::move(l));
    RenewLeases(by_key, now);
    if (absl::Status s = TakeLeases(by_key, now); !s.ok()) return Failed(s);
    for (auto it = held_.begin(); it != held_.end();) {
      const bool keep = Step(it->first, *it->second, by_key);
      it = keep ? std::next(it) : held_.erase(it);
    }
    Publish();
    return absl::OkStatus();
  }

  // Runs RunOnce on the group's own thread until shutdown or destruction,
  // resting idle_time_between_reads after a cycle that delivered nothing.
  // Call once; then do not call RunOnce yourself.
  void Start() {
    thread_ = std::thread([this] {
      while (!stop_.load(std::memory_order_acquire)) {
        if (shutdown_requested_.load(std::memory_order_acquire)) {
          shutdown_done_.set_value(DoShutdown());
          return;
        }
        (void)RunOnce();  // errors are in stats().last_error; the next cycle retries
        if (!delivered_this_cycle_) {
          std::this_thread::sleep_for(absl::ToChronoNanoseconds(options_.idle_time_between_reads));
        }
      }
    });
  }

  // Graceful shutdown: each processor gets ShutdownRequested (and may
  // checkpoint), then the leases are released so other workers take them at
  // once. The future holds the outcome (OK, or the first store error). With
  // Start(), the group's thread does it after its current cycle; otherwise it
  // happens now, on the calling thread (which must be the RunOnce thread).
  // Later calls return the same future. Thread-safe.
  std::shared_future<absl::Status> RequestShutdown() {
    if (!shutdown_requested_.exchange(true) && !thread_.joinable()) {
      shutdown_done_.set_value(DoShutdown());
    }
    return shutdown_future_;
  }

  const std::string& worker_id() const { return options_.worker_id; }
  const std::string& application_name() const { return options_.application_name; }

  // The shards whose leases this worker held at the end of its last cycle.
  // Thread-safe.
  std::vector<std::string> HeldShards() const {
    detail::MutexLock lock(&snapshot_mu_);
    return held_snapshot_;
  }
  // The whole lease table (every worker's leases, counters and checkpoints).
  absl::StatusOr<std::vector<Lease>> Leases() const { return store_->ListLeases(); }
  ConsumerGroupStats stats() const {
    detail::MutexLock lock(&snapshot_mu_);
    return stats_;
  }

 private:
  using ConsumerType = StreamConsumer<S>;

  struct Held : detail::HeldLease {
    std::unique_ptr<Processor> processor;
    // The processor, if it takes records in place and this group can lend.
    RecordViewProcessor<Payload>* view_processor = nullptr;
    std::unique_ptr<ConsumerType> reader;
  };

  // Polling an in-process stream can lend records in place (Consumer's
  // ConsumerBatchView form); other streams copy.
  static constexpr bool kCanLend = requires(ConsumerType & c, ConsumerBatchView<Payload>* b) {
    c.Poll(b);
  };
  enum class Polled { kGoOn, kLost, kShardEnded };

  StreamConsumerGroup(StreamType* stream, CheckpointStore* store, ProcessorFactory factory,
                      ConsumerGroupOptions options)
      : stream_(stream),
        stream_owner_(detail::SharedOwner(stream)),
        store_(store),
        factory_(std::move(factory)),
        options_(std::move(options)),
        failover_ms_(absl::ToInt64Milliseconds(options_.failover_time)),
        shutdown_future_(shutdown_done_.get_future().share()) {}

  int64_t Now() const { return NowMillis(*stream_->clock()); }

  absl::Status Failed(absl::Status s) {
    Note(s.ToString());
    return s;
  }
  void Note(std::string error) {
    detail::MutexLock lock(&snapshot_mu_);
    stats_.last_error = std::move(error);
  }
  template <typename F>
  void Count(F&& update) {
    detail::MutexLock lock(&snapshot_mu_);
    update(stats_);
  }

  // Creates leases for shards that have none: at the group's very start, the
  // shards open at the initial position (with its sentinel); later, every
  // child of a shard with a lease (from TRIM_HORIZON, after its parents).
  // Then deletes the finished leases the cleanup rule allows (see the top).
  absl::Status SyncShards(int64_t now) {
    absl::StatusOr<std::vector<Lease>> existing = store_->ListLeases();
    if (!existing.ok()) return existing.status();
    LeaseTable table;
    for (Lease& l : *existing) {
      std::string key = l.lease_key;
      table.emplace(std::move(key), std::move(l));
    }
    auto create = [&](const ShardDescription& d, std::string_view checkpoint) -> absl::Status {
      Lease lease;
      lease.lease_key = d.shard_id;
      lease.checkpoint = std::string(checkpoint);
      if (d.parent_shard_id) lease.parent_shard_ids.push_back(*d.parent_shard_id);
      if (d.adjacent_parent_shard_id) lease.parent_shard_ids.push_back(*d.adjacent_parent_shard_id);
      absl::Status s = store_->CreateLeaseIfNotExists(lease);
      if (s.ok()) table.emplace(d.shard_id, std::move(lease));
      return s;
    };
    if (table.empty()) {
      absl::StatusOr<std::vector<ShardDescription>> roots =
          ConsumerType::StartingShards(stream_, options_.initial_position);
      if (!roots.ok()) return roots.status();
      for (const ShardDescription& d : *roots) {
        if (absl::Status s = create(d, InitialCheckpoint()); !s.ok()) return s;
      }
    }
    // Children have greater shard ids than their parents: the shards before
    // the oldest leased one are finished history, not listed again.
    ListShardsRequest request;
    if (!table.empty()) request.exclusive_start_shard_id = table.begin()->first;
    absl::StatusOr<std::vector<ShardDescription>> all = ListAllShards(*stream_, request);
    if (!all.ok()) return all.status();
    Children children;                        // of the leased shards
    for (const ShardDescription& d : *all) {  // parents are listed before their children
      bool child_of_leased = false;
      for (const std::optional<std::string>* parent :
           {&d.parent_shard_id, &d.adjacent_parent_shard_id}) {
        if (*parent && table.contains(**parent)) {
          child_of_leased = true;
          children[**parent].insert(d.shard_id);
        }
      }
      if (!child_of_leased || table.contains(d.shard_id)) continue;
      if (absl::Status s = create(d, kCheckpointTrimHorizon); !s.ok()) return s;
    }
    return DeleteFinishedLeases(&table, &children, now);
  }

  using LeaseTable = std::map<std::string, Lease, std::less<>>;
  using Children = std::map<std::string, absl::flat_hash_set<std::string>, std::less<>>;

  // The lease cleanup rule (see the top of the file). `table` is the lease
  // table as last read (deleted leases leave it), `children` the children the
  // stream lists for its leased shards.
  absl::Status DeleteFinishedLeases(LeaseTable* table, Children* children, int64_t now) {
    for (const auto& [key, lease] : *table) {
      for (const std::string& parent : lease.parent_shard_ids) (*children)[parent].insert(key);
    }
    // Key order is creation order (shard ids grow), so parents come before
    // their children and a whole finished lineage goes in one pass.
    for (auto it = table->begin(); it != table->end();) {
      const Lease& lease = it->second;
      if (!Deletable(lease, *table, *children, now)) {
        ++it;
        continue;
      }
      absl::Status s = store_->DeleteLease(lease.lease_key, lease.lease_counter);
      if (s.ok()) {
        Count([](ConsumerGroupStats& st) { ++st.leases_deleted; });
        it = table->erase(it);
      } else if (IsConditionalCheckFailed(s) || IsResourceNotFound(s)) {
        ++it;  // another worker wrote or deleted it since: next sync decides
      } else {
        return s;
      }
    }
    return absl::OkStatus();
  }

  bool Deletable(const Lease& lease, const LeaseTable& table, const Children& children,
                 int64_t now) const {
    if (lease.checkpoint != kCheckpointShardEnd || held_.contains(lease.lease_key)) return false;
    if (!lease.owner.empty() && now - lease.last_renewal_ms <= failover_ms_) return false;
    for (const std::string& parent : lease.parent_shard_ids) {
      if (table.contains(parent)) return false;
    }
    auto kids = children.find(lease.lease_key);
    if (kids == children.end() || kids->second.empty()) return false;
    for (const std::string& child : kids->second) {
      auto c = table.find(child);
      if (c == table.end() || c->second.checkpoint == kCheckpointTrimHorizon) return false;
    }
    return true;
  }

  std::string_view InitialCheckpoint() const {
    switch (options_.initial_position.type) {
      case ShardIteratorType::kLatest:
        return kCheckpointLatest;
      case ShardIteratorType::kAtTimestamp:
        return kCheckpointAtTimestamp;
      default:
        return kCheckpointTrimHorizon;
    }
  }

  IteratorPosition PositionOf(const std::string& checkpoint) const {
    if (checkpoint == kCheckpointLatest) return IteratorPosition::Latest();
    if (checkpoint == kCheckpointAtTimestamp) {
      return IteratorPosition::AtTimestamp(options_.initial_position.timestamp);
    }
    if (absl::StatusOr<SequenceNumber> s = SequenceNumber::Parse(checkpoint); s.ok()) {
      return IteratorPosition::AfterSequenceNumber(*s);
    }
    return IteratorPosition::TrimHorizon();
  }

  // Renews the held leases that are due and drops the ones another worker
  // took (their processors get LeaseLost).
  void RenewLeases(const std::map<std::string, Lease>& by_key, int64_t now) {
    for (auto it = held_.begin(); it != held_.end();) {
      Held& h = *it->second;
      auto listed = by_key.find(it->first);
      bool lost = listed == by_key.end() || listed->second.owner != options_.worker_id ||
                  listed->second.lease_counter != h.lease.lease_counter;
      if (!lost && now - h.lease.last_renewal_ms >= failover_ms_ / 3) {
        (void)h.Write(h.lease);  // a renewal: counter + 1, renewal time now
        lost = h.lost;
      }
      if (lost) {
        Lose(h);
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Lose(Held& h) {
    if (h.processor) h.processor->LeaseLost();
    Count([](ConsumerGroupStats& s) { ++s.leases_lost; });
  }

  // Takes unowned or expired leases up to an even share of the unfinished
  // ones; if there are none, steals from the most loaded live worker.
  absl::Status TakeLeases(const std::map<std::string, Lease>& by_key, int64_t now) {
    std::map<std::string, std::vector<const Lease*>> live;  // owner -> its unfinished leases
    std::vector<const Lease*> available;
    size_t unfinished = 0;
    for (const auto& [key, l] : by_key) {
      if (l.checkpoint == kCheckpointShardEnd) continue;
      ++unfinished;
      if (!l.owner.empty() && now - l.last_renewal_ms <= failover_ms_) {
        live[l.owner].push_back(&l);
      } else if (!held_.contains(key)) {
        available.push_back(&l);
      }
    }
    live[options_.worker_id];  // this worker counts even with nothing yet
    const size_t workers = live.size();
    const size_t target = std::min<size_t>(static_cast<size_t>(options_.max_leases_for_worker),
                                           (unfinished + workers - 1) / workers);
    if (held_.size() >= target) return absl::OkStatus();
    size_t want = target - held_.size();
    // Leases whose parents are finished first, so that work can start.
    std::stable_partition(available.begin(), available.end(),
                          [&](const Lease* l) { return ParentsDone(*l, by_key); });
    for (const Lease* l : available) {
      if (want == 0) break;
      if (Take(*l, now)) {
        --want;
        Count([](ConsumerGroupStats& s) { ++s.leases_taken; });
      }
    }
    if (want == 0 || !available.empty()) return absl::OkStatus();
    // Steal from the most loaded other worker if it holds more than its share.
    const std::vector<const Lease*>* richest = nullptr;
    for (const auto& [owner, leases] : live) {
      if (owner != options_.worker_id && (!richest || leases.size() > richest->size())) {
        richest = &leases;
      }
    }
    if (richest == nullptr) return absl::OkStatus();
    const size_t mine = held_.size();
    if (!(richest->size() > target || (richest->size() == target && mine + 1 < target))) {
      return absl::OkStatus();
    }
    size_t steal =
        std::min<size_t>(want, static_cast<size_t>(options_.max_leases_to_steal_at_one_time));
    for (auto it = richest->rbegin(); it != richest->rend() && steal > 0; ++it) {
      if (Take(**it, now)) {
        --steal;
        Count([](ConsumerGroupStats& s) { ++s.leases_stolen; });
      }
    }
    return absl::OkStatus();
  }

  bool ParentsDone(const Lease& lease, const std::map<std::string, Lease>& by_key) const {
    for (const std::string& parent : lease.parent_shard_ids) {
      auto it = by_key.find(parent);
      if (it != by_key.end() && it->second.checkpoint != kCheckpointShardEnd) return false;
    }
    return true;
  }

  // Conditionally writes this worker as the owner of `observed`.
  bool Take(const Lease& observed, int64_t now) {
    Lease next = observed;
    if (next.owner != options_.worker_id) ++next.owner_switches_since_checkpoint;
    next.owner = options_.worker_id;
    next.lease_counter = observed.lease_counter + 1;
    next.last_renewal_ms = now;
    if (!store_->UpdateLease(next, observed.lease_counter).ok())
      return false;  // raced: retry later
    auto held = std::make_unique<Held>();
    held->store = store_;
    held->lease = std::move(next);
    held->now_ms = [this] { return Now(); };
    held_.emplace(observed.lease_key, std::move(held));
    return true;
  }

  // One step of a held shard; false when the lease is gone (released or lost).
  bool Step(const std::string& key, Held& h, const std::map<std::string, Lease>& by_key) {
    if (h.lease.checkpoint == kCheckpointShardEnd) return !Release(h);
    if (!h.processor) {
      if (!ParentsDone(h.lease, by_key)) return true;  // WAITING_ON_PARENT_SHARDS
      ConsumerOptions co;
      co.shard_ids = {key};
      co.start = PositionOf(h.lease.checkpoint);
      co.batch_limit = options_.max_records;
      co.follow_lineage = false;
      co.on_trimmed = TrimmedPolicy::kSkipToTrimHorizon;
      if (options_.enhanced_fan_out) co.fan_out_consumer = options_.application_name;
      absl::StatusOr<std::unique_ptr<ConsumerType>> reader = ConsumerType::Create(stream_, co);
      if (!reader.ok()) {
        if (IsResourceNotFound(reader.status()) && !detail::KnownDeleted(*stream_)) {
          // The shard is gone (closed, every record expired): nothing to
          // process, and its children may start.
          Lease next = h.lease;
          next.checkpoint = std::string(kCheckpointShardEnd);
          if (h.Write(std::move(next)).ok()) need_sync_ = true;
          return !h.lost;
        }
        // E.g. the previous owner's fan-out subscription is still active
        // (ResourceInUse for 5 s): try again next cycle.
        Note(absl::StrCat("shard ", key, ": ", reader.status().ToString()));
        return true;
      }
      h.reader = *std::move(reader);
      if (absl::StatusOr<SequenceNumber> s = SequenceNumber::Parse(h.lease.checkpoint); s.ok()) {
        h.largest_delivered = *s;
      }
      h.processor = factory_();
      if constexpr (kCanLend) {
        if (!options_.enhanced_fan_out) {
          h.view_processor = dynamic_cast<RecordViewProcessor<Payload>*>(h.processor.get());
        }
      }
      h.processor->Initialize(InitializationInput{key, h.lease.checkpoint});
    }
    Checkpointer checkpointer(&h);
    if (!h.at_shard_end) {
      Polled polled = Polled::kGoOn;
      bool lent = false;
      if constexpr (kCanLend) {
        if (h.view_processor != nullptr) {
          lent = true;
          polled = PollAndProcess(key, h, &view_batch_, [&](const ConsumerBatchView<Payload>& b) {
            h.view_processor->ProcessRecordViews(
                ProcessRecordViewsInput<Payload>{key, b.records(), b.page.millis_behind_latest},
                checkpointer);
          });
          view_batch_.page.Release();  // nothing stays pinned between cycles
        }
      }
      if (!lent) {
        polled = PollAndProcess(key, h, &batch_, [&](const typename ConsumerType::Batch& b) {
          h.processor->ProcessRecords(
              ProcessRecordsInput<Payload>{key, b.records(), b.page.millis_behind_latest},
              checkpointer);
        });
      }
      if (polled == Polled::kLost) return false;
      if (polled == Polled::kGoOn) return true;
      h.at_shard_end = true;
    }
    h.processor->ShardEnded(checkpointer);
    if (h.lost) {
      Lose(h);
      return false;
    }
    if (h.lease.checkpoint != kCheckpointShardEnd) {
      Note(absl::StrCat("Application didn't checkpoint at end of shard ", key,
                        ": its children wait until it does"));
      return true;  // ShardEnded again next cycle
    }
    Count([](ConsumerGroupStats& s) { ++s.shards_ended; });
    need_sync_ = true;
    return !Release(h);
  }

  // One poll of `h`'s reader into `batch` and, if it has records, one
  // `process(batch)`: kLost if the lease was lost meanwhile, kShardEnded
  // once the shard is read to its end, else kGoOn.
  template <typename Batch, typename Process>
  Polled PollAndProcess(const std::string& key, Held& h, Batch* batch, Process&& process) {
    absl::Status s = h.reader->Poll(batch);
    if (!s.ok()) {
      Note(absl::StrCat("shard ", key, ": ", s.ToString()));
      return Polled::kGoOn;
    }
    const size_t n = batch->records().size();
    if (batch->trimmed_records_skipped != 0 || n != 0) {
      Count([&](ConsumerGroupStats& st) {
        st.trimmed_records_skipped += batch->trimmed_records_skipped;
        st.records_delivered += n;
      });
    }
    if (n != 0) {
      delivered_this_cycle_ = true;
      h.largest_delivered = batch->records().back().sequence_number;
      process(*batch);
      if (h.lost) {
        Lose(h);
        return Polled::kLost;
      }
    }
    return batch->shard_ended ? Polled::kShardEnded : Polled::kGoOn;
  }

  // Gives the lease up (owner cleared) so that any worker may take it at once.
  bool Release(Held& h) {
    Lease next = h.lease;
    next.owner.clear();
    return h.Write(std::move(next)).ok() || h.lost;
  }

  absl::Status DoShutdown() {
    absl::Status first;
    for (auto& [key, h] : held_) {
      if (h->processor && !h->at_shard_end) {
        Checkpointer checkpointer(h.get());
        h->processor->ShutdownRequested(checkpointer);
      }
      if (!h->lost) {
        Lease next = h->lease;
        next.owner.clear();
        absl::Status s = h->Write(std::move(next));
        if (first.ok() && !s.ok() && !h->lost) first = s;
      }
    }
    held_.clear();
    shut_down_ = true;
    Publish();
    return first;
  }

  void Publish() {
    std::vector<std::string> keys;
    for (const auto& [key, h] : held_) keys.push_back(key);
    detail::MutexLock lock(&snapshot_mu_);
    stats_.leases_held = keys.size();
    held_snapshot_ = std::move(keys);
  }

  StreamType* const stream_;
  // Keeps a shared-owned stream alive as long as the group (null otherwise).
  const std::shared_ptr<StreamType> stream_owner_;
  CheckpointStore* const store_;
  const ProcessorFactory factory_;
  const ConsumerGroupOptions options_;
  const int64_t failover_ms_;

  // The RunOnce thread's state.
  std::map<std::string, std::unique_ptr<Held>> held_;
  typename ConsumerType::Batch batch_;     // reused for every poll
  ConsumerBatchView<Payload> view_batch_;  // for RecordViewProcessors (kCanLend)
  bool need_sync_ = true;
  int64_t last_sync_ms_ = 0;
  bool shut_down_ = false;
  bool delivered_this_cycle_ = false;

  // Snapshots for other threads.
  mutable detail::Mutex snapshot_mu_;
  std::vector<std::string> held_snapshot_ ABSL_GUARDED_BY(snapshot_mu_);
  ConsumerGroupStats stats_ ABSL_GUARDED_BY(snapshot_mu_);

  std::atomic<bool> stop_{false};
  std::atomic<bool> shutdown_requested_{false};
  std::promise<absl::Status> shutdown_done_;
  const std::shared_future<absl::Status> shutdown_future_;
  std::thread thread_;
};

// Deduces the group type from the stream: MakeConsumerGroup(stream, store,
// factory, options). As StreamConsumerGroup<S>::Create.
template <typename S>
absl::StatusOr<std::unique_ptr<StreamConsumerGroup<S>>> MakeConsumerGroup(
    S* stream, CheckpointStore* store, typename StreamConsumerGroup<S>::ProcessorFactory factory,
    ConsumerGroupOptions options) {
  return StreamConsumerGroup<S>::Create(stream, store, std::move(factory), std::move(options));
}

}  // namespace kinlet
