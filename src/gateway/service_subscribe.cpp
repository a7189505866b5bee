// src/gateway/service_subscribe.cpp: SubscribeToShard as an
// application/vnd.amazon.eventstream body fed by a kinlet push subscription.
//
// No thread per subscription, and backpressure: the subscription's delivery
// runs on an Executor that only queues its steps in the body; the body runs
// them from Pull (the server calls Pull only when the connection can take
// bytes), and only while fewer than subscription_buffer_bytes are waiting.
// A slow client therefore leaves the steps queued and the shard unread (the
// records stay in the ring), never a growing buffer. Puts still wake the
// subscription (kinlet schedules a step, which the executor hands to the
// body, which wakes the server).
//
// Events: the first message is the initial-response event (payload {}), then
// one SubscribeToShardEvent per kinlet event (records, heartbeats, the final
// event of a closed shard with its ChildShards). Payloads are JSON
// (:content-type application/json) for JSON and CBOR requests alike, as
// kinesis-mock sends them: what AWS sends inside events to a CBOR client is
// unverified. Ends mid-stream: taken over (ResourceInUseException), consumer
// deregistered or stream deleted (ResourceNotFoundException) as exception
// messages; the lifetime, the end of a closed shard, cancellation and data
// trimmed under TrimmedReads::kReport as the plain end of the body (the
// client resubscribes from its last continuation).
#include <deque>

#include "absl/strings/str_cat.h"
#include "kinlet/wire/event_stream.hpp"
#include "service_impl.hpp"

namespace kinlet::gateway {

class KinesisService::Impl::SubscriptionBody final
    : public wire::StreamBody,
      public std::enable_shared_from_this<SubscriptionBody> {
 public:
  using Sub = Subscription<std::string, WireStreamTraits>;

  SubscriptionBody(size_t bound, int64_t deadline_ms, const WireRegistry::Clock* clock)
      : bound_(bound), deadline_ms_(deadline_ms), clock_(clock) {
    wire::AppendEventMessage({{":message-type", "event"},
                              {":event-type", "initial-response"},
                              {":content-type", "application/json"}},
                             "{}", &buffer_);
  }

  void Attach(std::unique_ptr<Sub> sub) {
    detail::MutexLock lock(&mu_);
    sub_ = std::move(sub);
  }

  // The Executor of the subscription's delivery: queue the step, wake the server.
  void Enqueue(std::function<void()> task) {
    std::function<void()> wake;
    {
      detail::MutexLock lock(&mu_);
      if (finished_) return;
      tasks_.push_back(std::move(task));
      wake = wake_;
    }
    if (wake) wake();
  }

  void OnEvent(const SubscribeToShardEvent<std::string>& e) {
    wire::Writer w(wire::Format::kJson);
    w.BeginObject();
    WriteRecords(w, e.records());
    std::string continuation;
    if (e.continuation_sequence_number) {
      continuation = e.continuation_sequence_number->ToString();
      w.Key("ContinuationSequenceNumber");
      w.String(continuation);
    }
    w.Key("MillisBehindLatest");
    w.Int(e.millis_behind_latest);
    if (!e.child_shards().empty()) WriteChildShards(w, e.child_shards());
    w.EndObject();
    detail::MutexLock lock(&mu_);
    if (finished_) return;
    AppendEvent(w.data());
    if (!continuation.empty()) last_continuation_ = std::move(continuation);
    last_millis_ = e.millis_behind_latest;
    if (NowMillis(*clock_) >= deadline_ms_) finished_ = true;  // the service's lifetime
  }

  void OnEnd(const absl::Status& status) {
    std::function<void()> wake;
    {
      detail::MutexLock lock(&mu_);
      if (finished_) return;
      const ErrorCode code = ErrorCodeOf(status);
      if (code == ErrorCode::kResourceInUse || code == ErrorCode::kResourceNotFound) {
        wire::Writer w(wire::Format::kJson);
        w.BeginObject();
        w.Key("message");
        w.String(detail::ToStd(status.message()));
        w.EndObject();
        wire::AppendEventMessage({{":message-type", "exception"},
                                  {":exception-type", ErrorName(code)},
                                  {":content-type", "application/json"}},
                                 w.data(), &buffer_);
      }
      finished_ = true;
      wake = wake_;
    }
    if (wake) wake();
  }

  void Start(std::function<void()> wake) override {
    {
      detail::MutexLock lock(&mu_);
      wake_ = std::move(wake);
    }
    wake_copy_and_call();
  }

  bool Pull(std::string* out) override {
    // Run queued steps while the client is keeping up.
    for (int steps = 0; steps < 64; ++steps) {
      std::function<void()> task;
      {
        detail::MutexLock lock(&mu_);
        if (!finished_ && NowMillis(*clock_) >= deadline_ms_) finished_ = true;
        if (finished_ || buffer_.size() >= bound_ || tasks_.empty()) break;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();  // one delivery step: at most one OnEvent, or OnEnd
    }
    std::unique_ptr<Sub> done;
    bool more;
    std::function<void()> wake;
    {
      detail::MutexLock lock(&mu_);
      out->append(buffer_);
      buffer_.clear();
      more = !finished_;
      if (!more) {
        done = std::move(sub_);
        tasks_.clear();
      } else if (!tasks_.empty()) {
        wake = wake_;  // more steps waiting: pull again when the client can take bytes
      }
    }
    done.reset();  // ends the subscription (its on_end finds the body finished)
    if (wake) wake();
    return more;
  }

  void Cancel(bool stopping) override { Finish(stopping); }

  // Ends the body: with `final_event`, a last SubscribeToShardEvent (no
  // records, the last continuation) before the end. Idempotent.
  void Finish(bool final_event) {
    std::unique_ptr<Sub> done;
    std::function<void()> wake;
    {
      detail::MutexLock lock(&mu_);
      if (!finished_ && final_event && !last_continuation_.empty()) {
        AppendEvent(absl::StrCat("{\"Records\":[],\"ContinuationSequenceNumber\":\"",
                                 last_continuation_, "\",\"MillisBehindLatest\":", last_millis_,
                                 "}"));
      }
      finished_ = true;
      done = std::move(sub_);
      tasks_.clear();
      wake = wake_;
    }
    done.reset();
    if (wake) wake();
  }

 private:
  void wake_copy_and_call() {
    std::function<void()> wake;
    {
      detail::MutexLock lock(&mu_);
      wake = wake_;
    }
    if (wake) wake();
  }
  void AppendEvent(std::string_view payload) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    wire::AppendEventMessage({{":message-type", "event"},
                              {":event-type", "SubscribeToShardEvent"},
                              {":content-type", "application/json"}},
                             payload, &buffer_);
  }

  const size_t bound_;
  const int64_t deadline_ms_;
  const WireRegistry::Clock* const clock_;
  detail::Mutex mu_;
  std::string buffer_ ABSL_GUARDED_BY(mu_);                       // encoded messages not yet pulled
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);  // delivery steps
  std::function<void()> wake_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Sub> sub_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_continuation_ ABSL_GUARDED_BY(mu_);
  int64_t last_millis_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::Status KinesisService::Impl::SubscribeToShard(Call& c) {
  absl::StatusOr<std::optional<std::string_view>> arn = OptString(c.in, "ConsumerARN");
  if (!arn.ok()) return arn.status();
  if (!*arn) return NullMember("consumerARN");
  absl::StatusOr<std::optional<std::string_view>> shard_id = OptString(c.in, "ShardId");
  if (!shard_id.ok()) return shard_id.status();
  if (!*shard_id) return NullMember("shardId");
  const Value* start = c.in.Find("StartingPosition");
  if (start == nullptr || start->kind() == Value::Kind::kNull) {
    return NullMember("startingPosition");
  }
  if (start->kind() != Value::Kind::kObject) {
    return wire::SerializationError("Start of structure or map found where not expected");
  }
  absl::StatusOr<std::optional<std::string_view>> type = OptString(*start, "Type");
  if (!type.ok()) return type.status();
  if (!*type) return NullMember("startingPosition.type");
  absl::StatusOr<std::optional<std::string_view>> seq = OptString(*start, "SequenceNumber");
  if (!seq.ok()) return seq.status();
  absl::StatusOr<std::optional<absl::Time>> ts = OptTime(*start, c.format, "Timestamp");
  if (!ts.ok()) return ts.status();
  absl::StatusOr<IteratorPosition> position = IteratorPosition::FromKinesis(**type, *seq, *ts);
  if (!position.ok()) return position.status();
  absl::StatusOr<std::pair<StreamPtr, std::string>> who =
      ResolveConsumerArn(*this, **arn, Plane::kData);
  if (!who.ok()) return who.status();
  if (stopped_.load(std::memory_order_acquire)) {
    return InternalFailure("The service is stopping.");
  }
  auto body = std::make_shared<SubscriptionBody>(
      options_.subscription_buffer_bytes,
      NowMs() + absl::ToInt64Milliseconds(options_.subscription_lifetime), registry_->clock());
  std::weak_ptr<SubscriptionBody> weak = body;
  auto on_event = [weak](const SubscribeToShardEvent<std::string>& e) {
    if (auto b = weak.lock()) b->OnEvent(e);
  };
  auto on_end = [weak](const absl::Status& s) {
    if (auto b = weak.lock()) b->OnEnd(s);
  };
  Executor executor = [weak](std::function<void()> task) {
    if (auto b = weak.lock()) b->Enqueue(std::move(task));
  };
  StreamT& stream = *who->first;
  absl::StatusOr<std::unique_ptr<StreamT::SubscriptionType>> sub =
      stream.SubscribeToShard(who->second, **shard_id, *position,
                              StreamT::SubscriptionType::Callback(on_event), on_end, executor);
  if (IsTrimmedDataAccess(sub.status())) {
    sub = stream.SubscribeToShard(who->second, **shard_id, IteratorPosition::TrimHorizon(),
                                  StreamT::SubscriptionType::Callback(on_event), on_end, executor);
  }
  if (!sub.ok()) return sub.status();
  body->Attach(*std::move(sub));
  {
    detail::MutexLock lock(&bodies_mu_);
    std::erase_if(bodies_, [](const std::weak_ptr<SubscriptionBody>& b) { return b.expired(); });
    bodies_.push_back(body);
  }
  if (stopped_.load(std::memory_order_acquire)) body->Finish(/*final_event=*/true);
  c.stream = std::move(body);
  return absl::OkStatus();
}

void KinesisService::Impl::Stop() {
  stopped_.store(true, std::memory_order_release);
  std::vector<std::shared_ptr<SubscriptionBody>> open;
  {
    detail::MutexLock lock(&bodies_mu_);
    for (const auto& weak : bodies_) {
      if (auto b = weak.lock()) open.push_back(std::move(b));
    }
    bodies_.clear();
  }
  for (const auto& b : open) b->Finish(/*final_event=*/true);
}

}  // namespace kinlet::gateway
