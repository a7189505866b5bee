// kinlet/fan_out.hpp: enhanced fan-out: registered consumers, each with its own
// read budget per shard, and subscriptions that push records as they arrive.
//
//   auto consumer = stream->RegisterStreamConsumer("alerts");
//   // Pull: a game loop drains its handle once per frame.
//   auto sub = stream->SubscribeToShard("alerts", "shardId-000000000000",
//                                       kinlet::IteratorPosition::Latest());
//   kinlet::SubscribeToShardEvent<std::string> event;
//   while ((*sub)->Next(&event, absl::ZeroDuration()).ok() && !event.records().empty()) ...
//   // Push: a callback on the shared delivery pool (or your executor).
//   auto pushed = stream->SubscribeToShard("alerts", "shardId-000000000001",
//       kinlet::IteratorPosition::TrimHorizon(),
//       [](const kinlet::SubscribeToShardEvent<std::string>& e) { ... });
//
// As Kinesis: a subscription lasts subscription_lifetime (5 minutes), then
// ends and the caller subscribes again from the last event's continuation
// sequence number (SubscribeToShardEvent::ResumePosition); a second
// subscription of one consumer to one shard within 5 seconds is
// ResourceInUseException, later it takes over and the old one ends; the final
// event of a closed shard has no continuation and names the child shards.
// Beyond Kinesis: delivery is a wake-up by the put itself (no polling tick),
// and a subscription reads the shard's ring directly, never through a queue.
// Two kinds of event: Next / Callback copy the records into the event's reused
// buffers (no allocation in steady state; keep them as long as you like);
// NextView / ViewCallback lend them in place (zero-copy: N consumers share the
// one stored copy; views valid during the call only):
//
//   sub->NextView([](const kinlet::SubscribeToShardEventView<std::string>& e) {
//     for (const auto& r : e.records) Handle(r.partition_key, r.data);
//   }, absl::Milliseconds(10));
//
// Push mode runs on a small pool shared by the process (one thread per core,
// detail/delivery_pool.hpp), not a thread per subscription: an idle
// subscription costs no thread and no polling; the put that publishes wakes it.
//
// Thread safety: a Subscription's Next is called by one thread at a time (or
// by its delivery in callback mode); Cancel, end() and stats() from any
// thread. A subscription holds its shard: it may outlive the stream (its
// calls then end with ResourceNotFoundException); the clock must outlive it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <semaphore>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "kinlet/detail/delivery_pool.hpp"
#include "kinlet/detail/wait.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/record.hpp"
#include "kinlet/shard.hpp"
#include "kinlet/shard_iterator.hpp"
#include "kinlet/token_bucket.hpp"

namespace kinlet {

enum class ConsumerStatus { kCreating, kDeleting, kActive };

constexpr std::string_view ConsumerStatusName(ConsumerStatus s) {
  switch (s) {
    case ConsumerStatus::kCreating:
      return "CREATING";
    case ConsumerStatus::kDeleting:
      return "DELETING";
    case ConsumerStatus::kActive:
      return "ACTIVE";
  }
  return "";
}

// Kinesis's Consumer / ConsumerDescription.
struct StreamConsumerDescription {
  std::string consumer_name;
  // arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<creation seconds>
  std::string consumer_arn;
  ConsumerStatus consumer_status = ConsumerStatus::kActive;
  absl::Time consumer_creation_timestamp;
  std::string stream_arn;
};

// Why a subscription is over.
enum class SubscriptionEnd {
  kNone,                  // still delivering
  kLifetimeElapsed,       // subscription_lifetime passed: subscribe again to continue
  kShardEnded,            // the closed shard's final event was delivered
  kTakenOver,             // a newer subscription of the consumer to the shard took over
  kConsumerDeregistered,  // DeregisterStreamConsumer
  kStreamDeleted,         // DeleteStream
  kDataTrimmed,           // the next record expired before it was delivered
  kCancelled,             // Subscription::Cancel or its destruction
};

constexpr std::string_view SubscriptionEndName(SubscriptionEnd e) {
  switch (e) {
    case SubscriptionEnd::kNone:
      return "active";
    case SubscriptionEnd::kLifetimeElapsed:
      return "lifetime elapsed";
    case SubscriptionEnd::kShardEnded:
      return "shard ended";
    case SubscriptionEnd::kTakenOver:
      return "taken over by a newer subscription";
    case SubscriptionEnd::kConsumerDeregistered:
      return "consumer deregistered";
    case SubscriptionEnd::kStreamDeleted:
      return "stream deleted";
    case SubscriptionEnd::kDataTrimmed:
      return "data trimmed";
    case SubscriptionEnd::kCancelled:
      return "cancelled";
  }
  return "";
}

// What every event carries besides its records.
struct SubscribeToShardEventHeader {
  // Where the subscription stands, set on every event but a closed shard's
  // final one (as Kinesis: consumers such as the KCL read a null continuation
  // as the end of the shard): the last record delivered so far (or, before
  // any, the record before its start), to resume AFTER; or, when the shard has
  // nothing before the start (position 0), the shard's
  // StartingSequenceNumber, with continuation_at_shard_start set.
  std::optional<SequenceNumber> continuation_sequence_number;
  // True when the continuation is the shard's StartingSequenceNumber and
  // nothing of the shard precedes it. On Kinesis that number sorts before
  // every record; in kinlet it is also record 0's own sequence number, so do
  // not resume AFTER it (that would skip record 0): ResumePosition() handles it.
  bool continuation_at_shard_start = false;
  // Milliseconds between the arrival of the oldest undelivered record and now.
  int64_t millis_behind_latest = 0;
  // The final event of a closed shard: no continuation, child_shards set.
  bool end_of_shard = false;

  // Where a new subscription continues after this event, neither skipping nor
  // repeating a record: AFTER_SEQUENCE_NUMBER of the continuation; or, at the
  // shard's start, TRIM_HORIZON (position 0 while record 0 is stored, and
  // valid on an empty shard); TRIM_HORIZON also after the final event, which
  // has nothing to resume.
  IteratorPosition ResumePosition() const {
    return continuation_sequence_number && !continuation_at_shard_start
               ? IteratorPosition::AfterSequenceNumber(*continuation_sequence_number)
               : IteratorPosition::TrimHorizon();
  }
};

// One pushed event (SubscribeToShardEvent), its records copied out of the
// shard. Reuse one event across Next calls: its records keep their buffers.
template <typename Payload>
struct SubscribeToShardEvent : SubscribeToShardEventHeader {
  GetRecordsResult<Payload> page;  // records and, at a shard's end, child_shards

  const std::vector<Record<Payload>>& records() const { return page.records; }
  const std::vector<ChildShard>& child_shards() const { return page.child_shards; }
};

// A zero-copy event (Subscription::NextView and view callbacks): the records
// are views of the shard's own storage, shared by every consumer, valid only
// during the call that receives the event. Copy what must outlive it.
template <typename Payload>
struct SubscribeToShardEventView : SubscribeToShardEventHeader {
  std::span<const RecordView<Payload>> records;
  std::span<const ChildShard> child_shards;
};

// Counters of one subscription (relaxed; each value exact, the set not one instant).
struct SubscriptionStats {
  uint64_t events = 0;           // SubscribeToShardEvent.Success
  uint64_t records = 0;          // SubscribeToShardEvent.Records
  uint64_t bytes = 0;            // SubscribeToShardEvent.Bytes
  uint64_t throttled_waits = 0;  // times the consumer's read budget made it wait
  // Records that NextView / view callbacks had to copy instead of lending in
  // place: trivially copyable payloads, a consumer so far behind that the
  // writer is about to reuse its records' memory, or more than
  // RingLog::kMaxPins zero-copy subscriptions on one shard (each holds a pin
  // slot from its creation to its destruction).
  uint64_t copied_records = 0;
};

// Runs a task somewhere (a thread pool, a strand): Subscription callbacks in
// push mode run on it instead of the shared delivery pool. It may run the task
// on any thread, later (not inline from inside a put: the pool hands tasks
// over), and must run every task it accepts (a task of a destroyed
// subscription does nothing).
using Executor = std::function<void(std::function<void()>)>;

namespace detail {

// What the stream and a subscription share: the end, set once.
struct SubscriptionState {
  std::atomic<int> end{0};
  // Sets the end once; true if this call set it.
  bool End(SubscriptionEnd why) {
    int expected = 0;
    return end.compare_exchange_strong(expected, static_cast<int>(why), std::memory_order_acq_rel);
  }
  SubscriptionEnd ended() const {
    return static_cast<SubscriptionEnd>(end.load(std::memory_order_acquire));
  }
};

}  // namespace detail

template <RecordPayload Payload, StreamTraits Traits = DefaultStreamTraits>
class Subscription {
 public:
  using ShardType = Shard<Payload, Traits>;
  using Event = SubscribeToShardEvent<Payload>;
  using EventView = SubscribeToShardEventView<Payload>;
  using Callback = std::function<void(const Event&)>;
  // A push-mode callback that receives zero-copy events (see NextView).
  using ViewCallback = std::function<void(const EventView&)>;
  using EndCallback = std::function<void(const absl::Status&)>;

  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  // Cancels the subscription. In push mode it first waits for the callback in
  // progress, if any, to return; no callback runs after it, and on_end has
  // run exactly once (here, with the status that ended the subscription, if
  // no delivery reported it before). Safe from any thread except from inside
  // this subscription's own callback: there (detected) it does not wait, and
  // in copy mode nothing of the subscription is touched after the callback
  // returns; a view callback must not destroy its own subscription. Gives
  // back its pin slot with no position pinned.
  ~Subscription() {
    Cancel();
    StopDelivery();
    if (pin_ >= 0) shard_->log_.ReleasePin(pin_);
  }

  // Pull mode: fills `event` with the next records, waiting up to `timeout`
  // (of real time) for them; a put wakes the wait at once. Returns OK with:
  // records; or, at a closed shard's end, the final event (end_of_shard, no
  // continuation, child_shards); or, after the timeout, a heartbeat with no
  // records and the current continuation. Once the subscription is over it
  // returns why: OutOfRange "subscription ended: ..." for kLifetimeElapsed,
  // kShardEnded and kCancelled (subscribe again from the last event's
  // ResumePosition() to continue a lifetime), ResourceInUseException for
  // kTakenOver, ResourceNotFoundException for kConsumerDeregistered and
  // kStreamDeleted, TrimmedDataAccessException for kDataTrimmed. Waits on the
  // consumer's own read budget (limits.subscribe_bytes_per_second) instead of
  // failing: a slow or throttled consumer falls behind, nobody else slows.
  // Not thread-safe: one caller at a time; not in push mode.
  absl::Status Next(Event* event, absl::Duration timeout) {
    // The page keeps its records until they are overwritten in place (Deliver)
    // or parked (Empty): steady delivery reuses every buffer.
    event->page.child_shards.clear();
    Reset(event);
    int64_t now_ms = 0;
    switch (Await(timeout, &now_ms)) {
      case Found::kRecords: {
        SkipTrimmedAsKinesis(now_ms);
        const auto read =
            shard_->ReadFrom(position_, kMaxEventRecords, max_event_bytes_, now_ms, &event->page);
        if (!read.error.ok()) return read.error;  // durable: DataLoss, KMS
        if (read.trimmed && SkipTrimmedAsKinesis(now_ms)) {
          Empty(event);
          Heartbeat(event);  // trimmed during the read: continue at the horizon next
          return absl::OkStatus();
        }
        if (read.trimmed) return DataTrimmed();
        Delivered(read, now_ms, event);
        return absl::OkStatus();
      }
      case Found::kShardEnd:
        Empty(event);
        event->page.child_shards = shard_->children_;
        ShardEnded(event);
        return absl::OkStatus();
      case Found::kHeartbeat:
        Empty(event);
        Heartbeat(event);
        return absl::OkStatus();
      case Found::kEnded:
        break;
    }
    Empty(event);
    return EndedStatus();
  }

  // Zero-copy pull: as Next, but calls `visit(const EventView&)` with the
  // event instead of filling one, and the records are views of the shard's own
  // storage (for byte payloads, the bytes the writer stored; for object
  // payloads, the stored objects), not copies: N consumers read one copy.
  // The views are valid only until `visit` returns. While it runs the records
  // are pinned: their memory is not reused. The writer never waits for a
  // visitor: a put that can make room only by reusing that memory (the ring
  // full up to the pinned records: a consumer a whole ring behind) fails with
  // ShardFullException, under FullPolicy::kReject and kOverwrite alike, and
  // drops nothing; puts succeed again once `visit` returns (so keep it short).
  // The pin is released however `visit` ends (a throw propagates to the
  // caller, and the records it was given count as delivered). Trivially
  // copyable payloads, and a consumer about to be overtaken by the writer, get
  // views of a copy (stats().copied_records). NextView and Next deliver the
  // same records and fail alike on every position (a record trimmed or past
  // retention is TrimmedDataAccessException for both). `visit` runs for
  // records, the final event and heartbeats; not once the subscription is
  // over (the status says why, as Next). Allocates nothing in steady state.
  // Not thread-safe: one caller at a time; not in push mode.
  template <typename Visitor>
  absl::Status NextView(Visitor&& visit, absl::Duration timeout) {
    EventView& view = view_event_;
    Reset(&view);
    view.records = {};
    view.child_shards = {};
    int64_t now_ms = 0;
    switch (Await(timeout, &now_ms)) {
      case Found::kRecords: {
        using Log = RingLog<Payload>;
        views_.clear();
        SkipTrimmedAsKinesis(now_ms);
        // The event Next would deliver, lent in place where it can be (see
        // Shard::Lend); unpinned on every way out of this scope, a throwing
        // visitor included.
        struct Unpinner {
          const Log* log = nullptr;
          int pin = -1;
          ~Unpinner() {
            if (log != nullptr) log->Unpin(pin);
          }
        } unpinner;
        bool pinned = false;
        uint64_t copied = 0;
        const auto read = shard_->Lend(position_, kMaxEventRecords, max_event_bytes_, now_ms, pin_,
                                       &copy_page_, &views_, &pinned, &copied);
        if (pinned) {
          unpinner.log = &shard_->log_;
          unpinner.pin = pin_;
        }
        if (copied != 0) stats_.copied_records.fetch_add(copied, std::memory_order_relaxed);
        if (!read.error.ok()) return read.error;
        if (read.trimmed && SkipTrimmedAsKinesis(now_ms)) return VisitHeartbeat(visit);
        if (read.trimmed) return DataTrimmed();
        Delivered(read, now_ms, &view);
        view.records = views_;
        visit(static_cast<const EventView&>(view));
        return absl::OkStatus();
      }
      case Found::kShardEnd:
        view.child_shards = shard_->children_;
        ShardEnded(&view);
        visit(static_cast<const EventView&>(view));
        return absl::OkStatus();
      case Found::kHeartbeat:
        Heartbeat(&view);
        visit(static_cast<const EventView&>(view));
        return absl::OkStatus();
      case Found::kEnded:
        break;
    }
    return EndedStatus();
  }

  // Ends the subscription (kCancelled) and wakes a waiting Next. Thread-safe.
  void Cancel() {
    if (state_->End(SubscriptionEnd::kCancelled)) shard_->log_.NotifyWaiters();
  }

  SubscriptionEnd end() const { return state_->ended(); }
  const std::string& consumer_arn() const { return consumer_arn_; }
  const std::string& shard_id() const { return shard_->shard_id(); }
  SubscriptionStats stats() const {
    const auto r = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    return SubscriptionStats{r(stats_.events), r(stats_.records), r(stats_.bytes),
                             r(stats_.throttled_waits), r(stats_.copied_records)};
  }

 private:
  template <RecordPayload P, StreamTraits T>
  friend class Stream;
  using Context = detail::StreamContext<typename Traits::Clock>;

  struct Counters {
    std::atomic<uint64_t> events{0};
    std::atomic<uint64_t> records{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> throttled_waits{0};
    std::atomic<uint64_t> copied_records{0};
  };
  using View = typename PayloadTraits<Payload>::View;

  Subscription(std::shared_ptr<ShardType> shard, std::shared_ptr<const Context> context,
               std::shared_ptr<detail::SubscriptionState> state, std::string consumer_arn,
               uint64_t position, int64_t now_ms, int64_t lifetime_ms, int64_t bytes_per_second,
               size_t max_event_bytes)
      : shard_(std::move(shard)),
        context_(std::move(context)),
        state_(std::move(state)),
        consumer_arn_(std::move(consumer_arn)),
        position_(position),
        started_ms_(now_ms),
        lifetime_ms_(lifetime_ms),
        max_event_bytes_(max_event_bytes),
        budget_(bytes_per_second, bytes_per_second, now_ms) {
    if constexpr (RingLog<Payload>::kStorage != PayloadStorage::kTrivial) {
      pin_ = shard_->log_.ClaimPin();  // -1 (all taken): NextView copies
    }
  }

  // What Await found.
  enum class Found { kRecords, kShardEnd, kHeartbeat, kEnded };

  // Waits up to `timeout` for something to deliver: records at position_ (and
  // read budget for them), the end of a closed shard (ends the subscription
  // with kShardEnded), or the end of the subscription; else a heartbeat.
  // `*now_ms` is the stream clock when it returns.
  Found Await(absl::Duration timeout, int64_t* now_ms) {
    if (state_->ended() != SubscriptionEnd::kNone) return Found::kEnded;
    const detail::SteadyTime deadline = detail::DeadlineAfter(timeout);  // saturates
    const RingLog<Payload>& log = shard_->log_;
    for (;;) {
      *now_ms = context_->NowMs();
      // Whichever happened first ends it: the stream's deletion, the shard's
      // (closed and past retention), or the subscription's lifetime.
      const bool lifetime_over = *now_ms - started_ms_ >= lifetime_ms_;
      if (context_->deleted.load(std::memory_order_acquire) ||
          (shard_->GoneAt(*now_ms) &&
           !(lifetime_over && started_ms_ + lifetime_ms_ < shard_->DeletedAtMs()))) {
        state_->End(SubscriptionEnd::kStreamDeleted);
      }
      if (lifetime_over) state_->End(SubscriptionEnd::kLifetimeElapsed);
      if (state_->ended() != SubscriptionEnd::kNone) return Found::kEnded;
      int64_t budget_wait_ms = 0;
      if (!budget_.unlimited() && !budget_.Positive(*now_ms)) {
        budget_wait_ms = std::max<int64_t>(1, budget_.MillisUntil(1, *now_ms));
        stats_.throttled_waits.fetch_add(1, std::memory_order_relaxed);
      } else if (log.End() > position_) {
        return Found::kRecords;
      } else if (!shard_->is_open() && position_ >= shard_->end_position_) {
        state_->End(SubscriptionEnd::kShardEnded);
        return Found::kShardEnd;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return Found::kHeartbeat;
      auto wait = deadline - now;
      if (budget_wait_ms > 0) {
        wait = std::min<std::chrono::steady_clock::duration>(
            wait, std::chrono::milliseconds(budget_wait_ms));
      }
      const uint64_t at = position_;
      log.WaitUntil(
          [&] {
            return budget_wait_ms == 0 && (log.End() > at || !shard_->is_open() ||
                                           state_->ended() != SubscriptionEnd::kNone ||
                                           context_->deleted.load(std::memory_order_acquire) ||
                                           shard_->reclaimed_.load(std::memory_order_acquire));
          },
          std::chrono::duration_cast<std::chrono::nanoseconds>(wait));
    }
  }

  static void Reset(SubscribeToShardEventHeader* header) {
    header->end_of_shard = false;
    header->millis_behind_latest = 0;
  }

  // Accounts for `read` (just delivered from position_) and fills the header.
  void Delivered(const typename RingLog<Payload>::ReadOutcome& read, int64_t now_ms,
                 SubscribeToShardEventHeader* header) {
    position_ += read.count;
    if (!budget_.unlimited()) budget_.Charge(static_cast<int64_t>(read.bytes), now_ms);
    SetContinuation(header);
    if (std::optional<int64_t> next = shard_->ArrivalAt(position_)) {
      header->millis_behind_latest = std::max<int64_t>(0, now_ms - *next);
    }
    stats_.events.fetch_add(1, std::memory_order_relaxed);
    stats_.records.fetch_add(read.count, std::memory_order_relaxed);
    stats_.bytes.fetch_add(read.bytes, std::memory_order_relaxed);
  }

  // The final event of a closed shard (child shards set by the caller).
  void ShardEnded(SubscribeToShardEventHeader* header) {
    header->end_of_shard = true;
    header->continuation_sequence_number.reset();
    header->continuation_at_shard_start = false;
    stats_.events.fetch_add(1, std::memory_order_relaxed);
  }

  void Heartbeat(SubscribeToShardEventHeader* header) {
    SetContinuation(header);
    stats_.events.fetch_add(1, std::memory_order_relaxed);
  }

  // With TrimmedReads::kContinueFromTrimHorizon (Kinesis), a subscription
  // whose next record was trimmed continues from the trim horizon instead of
  // ending: moves position_ there if needed; true if it moved.
  bool SkipTrimmedAsKinesis(int64_t now_ms) {
    if (context_->trimmed_reads != TrimmedReads::kContinueFromTrimHorizon) return false;
    if (!shard_->Expired(position_, now_ms)) return false;
    position_ = std::max(position_, shard_->TrimHorizon(now_ms));
    return true;
  }
  template <typename Visitor>
  absl::Status VisitHeartbeat(Visitor& visit) {
    views_.clear();
    view_event_.records = {};
    Heartbeat(&view_event_);
    visit(static_cast<const EventView&>(view_event_));
    return absl::OkStatus();
  }

  absl::Status DataTrimmed() {
    state_->End(SubscriptionEnd::kDataTrimmed);
    return EndedStatus();
  }

  static void Empty(Event* event) { detail::RecordBuffer<Payload>(&event->page).Finish(); }

  // Every event but the final one has a continuation (see the header's).
  void SetContinuation(SubscribeToShardEventHeader* header) const {
    header->continuation_at_shard_start = position_ == 0;
    header->continuation_sequence_number =
        position_ > 0 ? shard_->Sequence(position_ - 1) : shard_->starting_sequence_number();
  }

  absl::Status EndedStatus() const {
    const SubscriptionEnd end = state_->ended();
    if (end == SubscriptionEnd::kNone) return absl::OkStatus();  // no message built
    const std::string why =
        absl::StrCat("Subscription of ", consumer_arn_, " to ", shard_->shard_id(), " in stream ",
                     context_->name, " ended: ", detail::ToAbsl(SubscriptionEndName(end)));
    switch (end) {
      case SubscriptionEnd::kNone:
        return absl::OkStatus();
      case SubscriptionEnd::kTakenOver:
        return ResourceInUse(why);
      case SubscriptionEnd::kConsumerDeregistered:
        return ResourceNotFound(why);
      case SubscriptionEnd::kStreamDeleted:
        return context_->NotFound();
      case SubscriptionEnd::kDataTrimmed:
        return TrimmedDataAccess(why);
      case SubscriptionEnd::kLifetimeElapsed:
      case SubscriptionEnd::kShardEnded:
      case SubscriptionEnd::kCancelled:
        break;
    }
    return absl::OutOfRangeError(why);
  }

  // --- Push mode ----------------------------------------------------------
  //
  // A push subscription is a task on the shared delivery pool (or on the
  // caller's executor) that delivers one event per step, in order, and
  // between events is idle: armed on its shard's wait channel (the next put
  // schedules it) with a timer for its next heartbeat. Step runs on one thread
  // at a time; the pool's and the task's locks order successive steps, so the
  // Next caller's state (position_, budget_, ...) needs no lock of its own.

  // What Step and the destructor share, whatever the callback's type.
  class PushDelivery : public detail::DeliveryTask, public detail::WaitChannel::Watcher {
   public:
    PushDelivery(Executor executor, EndCallback on_end)
        : DeliveryTask(&detail::DeliveryPool::Shared(), std::move(executor)),
          on_end_(std::move(on_end)) {}
    // From a put (under the channel's lock): queue a step; never blocks.
    void OnNotify() override { Schedule(); }
    // Runs on_end once, whoever calls first.
    void End(const absl::Status& status) {
      if (!ended_.exchange(true, std::memory_order_acq_rel) && on_end_) on_end_(status);
    }

   private:
    const EndCallback on_end_;
    std::atomic<bool> ended_{false};
  };

  template <typename OnEvent>
  class Pusher final : public PushDelivery {
   public:
    Pusher(Subscription* sub, OnEvent on_event, EndCallback on_end, Executor executor,
           absl::Duration heartbeat)
        : PushDelivery(std::move(executor), std::move(on_end)),
          sub_(sub),
          on_event_(std::move(on_event)),
          heartbeat_(heartbeat),
          next_heartbeat_(detail::DeadlineAfter(heartbeat)) {}

   private:
    using Next = detail::DeliveryTask::Next;

    Next Step() override {
      Subscription& sub = *sub_;
      const detail::SteadyTime now = std::chrono::steady_clock::now();
      int64_t budget_wait_ms = 0;
      if (!sub.PushReady(&budget_wait_ms) && now < next_heartbeat_) {
        if (budget_wait_ms > 0) sub.stats_.throttled_waits.fetch_add(1, std::memory_order_relaxed);
        // Ask the next put to schedule us, then look again: a put that
        // published before the arm is seen now (or, if it was in flight when
        // the watcher registered, at the one re-check a slice later).
        const bool recheck = sub.shard_->log_.wait_channel().Arm(this);
        if (!sub.PushReady(&budget_wait_ms)) {
          detail::SteadyTime wake = next_heartbeat_;
          if (budget_wait_ms > 0) {
            wake = std::min(wake, detail::DeadlineAfter(now, absl::Milliseconds(budget_wait_ms)));
          }
          if (recheck) {
            wake = std::min(
                wake, detail::DeadlineAfter(now, std::chrono::microseconds(KINLET_WAIT_SLICE_US)));
          }
          return Next{Next::kIdle, wake};
        }
      }
      // One event: records, a closed shard's final event, a heartbeat, or the end.
      next_heartbeat_ = detail::DeadlineAfter(now, heartbeat_);
      absl::Status status;
      if constexpr (std::is_same_v<OnEvent, ViewCallback>) {
        status = sub.NextView(on_event_, absl::ZeroDuration());
      } else {
        status = sub.Next(&event_, absl::ZeroDuration());
        // The callback may destroy the subscription (see ~Subscription): from
        // here on only this task's own members are touched.
        if (status.ok()) on_event_(static_cast<const Event&>(event_));
      }
      if (!status.ok()) {
        this->End(status);
        return Next{Next::kDone, {}};
      }
      return Next{Next::kAgain, {}};  // one event per step: others get their turn
    }

    Subscription* const sub_;
    const OnEvent on_event_;
    const absl::Duration heartbeat_;
    detail::SteadyTime next_heartbeat_;  // the steps' only
    [[maybe_unused]] Event event_;       // copy mode's reused event
  };

  // Whether Next would deliver something other than a heartbeat now: records
  // (with read budget for them), a closed shard's end, or the subscription's
  // end (cancelled, taken over, lifetime elapsed, stream deleted). Changes
  // nothing; `*budget_wait_ms` > 0 if only the read budget holds it back.
  bool PushReady(int64_t* budget_wait_ms) {
    *budget_wait_ms = 0;
    if (state_->ended() != SubscriptionEnd::kNone) return true;
    if (context_->deleted.load(std::memory_order_acquire)) return true;
    const int64_t now_ms = context_->NowMs();
    if (now_ms - started_ms_ >= lifetime_ms_) return true;
    if (!budget_.unlimited() && !budget_.Positive(now_ms)) {
      *budget_wait_ms = std::max<int64_t>(1, budget_.MillisUntil(1, now_ms));
      return false;
    }
    return shard_->log_.End() > position_ ||
           (!shard_->is_open() && position_ >= shard_->end_position_);
  }

  // Push mode: starts delivering to `on_event` (Callback: copied events, as
  // Next; ViewCallback: zero-copy, as NextView) on the shared pool, or as
  // tasks on `executor` if given (one at a time, in order).
  template <typename OnEvent>
  void StartDelivery(OnEvent on_event, EndCallback on_end, Executor executor,
                     absl::Duration heartbeat) {
    auto pusher = std::make_shared<Pusher<OnEvent>>(this, std::move(on_event), std::move(on_end),
                                                    std::move(executor), heartbeat);
    shard_->log_.wait_channel().Watch(pusher.get());
    delivery_ = std::move(pusher);
    delivery_->Schedule();
  }

  // Push mode, from the destructor (after Cancel): no step runs after this,
  // and on_end has run.
  void StopDelivery() {
    if (delivery_ == nullptr) return;
    delivery_->Close();  // waits for the step in progress, unless we are inside it
    shard_->log_.wait_channel().Unwatch(delivery_.get());
    delivery_->End(EndedStatus());
  }

  static constexpr size_t kMaxEventRecords = 10000;

  // Owning: a subscription keeps its shard and the stream's shared context
  // alive, so deleting or destroying the stream (or the stream deleting the
  // shard) never leaves it dangling; its calls then end with
  // ResourceNotFoundException (kStreamDeleted).
  const std::shared_ptr<ShardType> shard_;
  const std::shared_ptr<const Context> context_;
  const std::shared_ptr<detail::SubscriptionState> state_;
  const std::string consumer_arn_;
  uint64_t position_;  // next position to deliver (the Next caller's only)
  const int64_t started_ms_;
  const int64_t lifetime_ms_;
  const size_t max_event_bytes_;
  TokenBucket budget_;  // the consumer's own read budget on this shard (the Next caller's)
  Counters stats_;
  // NextView's state (the caller's only): a pin slot on the shard's ring (or
  // -1), the event and its views (reused: no allocation in steady state), and
  // the page that holds copies when records cannot be lent in place.
  int pin_ = -1;
  EventView view_event_;
  std::vector<RecordView<Payload>> views_;
  GetRecordsResult<Payload> copy_page_;
  // Push mode: the delivery task (shared with the pool's queue and timers,
  // which may hold it a little longer; it touches nothing of this after
  // StopDelivery). Null in pull mode.
  std::shared_ptr<PushDelivery> delivery_;
};

}  // namespace kinlet
