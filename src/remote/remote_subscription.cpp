// RemoteSubscription: SubscribeToShard's event stream decoded as it arrives
// (see kinlet/remote/remote_stream.hpp).
//
// Threads: the HTTP client's loop thread feeds bytes (Sink) and reports the
// end (Done); the owner calls Next (pull) or the delivery thread does (push);
// Cancel from anywhere. State::mu guards every field below it; `decoder` is
// the loop thread's alone.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "kinesis_client.hpp"
#include "kinlet/remote/remote_errors.hpp"
#include "kinlet/remote/remote_stream.hpp"
#include "kinlet/wire/event_stream.hpp"
#include "remote_json.hpp"

namespace kinlet::remote {

namespace {
// Decoded events held before the transfer is paused (flow control).
constexpr size_t kMaxQueued = 64;
}  // namespace

struct RemoteSubscription::State {
  wire::EventStreamDecoder decoder;          // loop thread only
  std::shared_ptr<HttpStreamHandle> handle;  // set once before any Sink/Next

  std::mutex mu;
  std::condition_variable cv;
  std::deque<SubscribeToShardEvent<std::string>> events;
  bool finished = false;                            // no event will be added
  absl::Status end;                                 // why, once finished
  SubscriptionEnd reason = SubscriptionEnd::kNone;  // set with `finished`
  bool end_of_shard = false;                        // the final event was received
  bool paused = false;
  std::optional<SequenceNumber> last_continuation;
  int64_t last_millis_behind = 0;

  // Push mode.
  std::thread delivery;
  std::thread::id delivery_id;

  void FinishLocked(absl::Status why, SubscriptionEnd how) {
    if (finished) return;
    finished = true;
    end = std::move(why);
    reason = end_of_shard ? SubscriptionEnd::kShardEnded : how;
    cv.notify_all();
  }
  // An error that ended the event stream, as a SubscriptionEnd.
  void FinishLocked(absl::Status why) {
    // Anything else (a transport failure, InternalFailure, a malformed
    // event) cut the stream short: subscribe again after the last event.
    SubscriptionEnd how = SubscriptionEnd::kLifetimeElapsed;
    if (IsResourceInUse(why)) {
      how = SubscriptionEnd::kTakenOver;
    } else if (IsResourceNotFound(why)) {
      how = SubscriptionEnd::kStreamDeleted;
    }
    FinishLocked(std::move(why), how);
  }

  // Loop thread: false pauses the transfer (the bytes come again on Resume).
  bool Sink(std::string_view bytes) {
    std::lock_guard<std::mutex> lock(mu);
    if (finished) return true;  // drop: the subscription is over
    if (events.size() >= kMaxQueued) {
      paused = true;
      return false;
    }
    std::vector<wire::EventMessage> messages;
    if (absl::Status s = decoder.Feed(bytes, &messages); !s.ok()) {
      FinishLocked(s);
      return true;
    }
    for (const wire::EventMessage& m : messages) {
      const std::string* type = m.FindString(":message-type");
      if (type == nullptr) continue;
      if (*type == "exception") {
        const std::string* name = m.FindString(":exception-type");
        std::string message;
        if (absl::StatusOr<wire::Value> doc = wire::ParseJson(m.payload); doc.ok()) {
          message = json::Str(*doc, "message");
          if (message.empty()) message = json::Str(*doc, "Message");
        }
        FinishLocked(ErrorFromType(name != nullptr ? *name : "InternalFailure", message));
        return true;
      }
      if (*type == "error") {
        const std::string* code = m.FindString(":error-code");
        const std::string* message = m.FindString(":error-message");
        FinishLocked(ErrorFromType(code != nullptr ? *code : "InternalFailure",
                                   message != nullptr ? *message : "", 500));
        return true;
      }
      const std::string* event_type = m.FindString(":event-type");
      if (event_type == nullptr || *event_type != "SubscribeToShardEvent") continue;
      absl::StatusOr<wire::Value> doc = wire::ParseJson(m.payload);
      if (!doc.ok()) {
        FinishLocked(doc.status());
        return true;
      }
      SubscribeToShardEvent<std::string> event;
      absl::Status s = json::Records(*doc, &event.page.records);
      if (s.ok()) s = json::ChildShards(*doc, &event.page.child_shards);
      if (!s.ok()) {
        FinishLocked(s);
        return true;
      }
      if (std::string c = json::Str(*doc, "ContinuationSequenceNumber"); !c.empty()) {
        absl::StatusOr<SequenceNumber> seq = SequenceNumber::Parse(c);
        if (!seq.ok()) {
          FinishLocked(InternalFailure(absl::StrCat("malformed event: ", seq.status().message())));
          return true;
        }
        event.continuation_sequence_number = *seq;
      } else {
        event.end_of_shard = true;
        end_of_shard = true;
      }
      event.millis_behind_latest = json::Int(*doc, "MillisBehindLatest");
      last_continuation = event.continuation_sequence_number;
      last_millis_behind = event.millis_behind_latest;
      events.push_back(std::move(event));
    }
    cv.notify_all();
    return true;
  }

  void Done(const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu);
    if (status.ok()) {
      FinishLocked(absl::OutOfRangeError("subscription ended: the endpoint ended the event stream"),
                   SubscriptionEnd::kLifetimeElapsed);
    } else if (absl::IsCancelled(status)) {
      FinishLocked(absl::OutOfRangeError("subscription ended: cancelled"),
                   SubscriptionEnd::kCancelled);
    } else {
      FinishLocked(status);
    }
  }

  // Next's body. `real`: the event came from the endpoint (not a timeout).
  absl::Status Next(SubscribeToShardEvent<std::string>* event, absl::Duration timeout, bool* real) {
    bool resume = false;
    absl::Status result;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, absl::ToChronoNanoseconds(std::max(timeout, absl::ZeroDuration())),
                  [&] { return !events.empty() || finished; });
      if (!events.empty()) {
        *event = std::move(events.front());
        events.pop_front();
        *real = true;
        if (paused && events.size() <= kMaxQueued / 2) {
          paused = false;
          resume = true;
        }
      } else if (finished) {
        result = end;
      } else {
        // A heartbeat: nothing new within the timeout.
        event->page.records.clear();
        event->page.child_shards.clear();
        event->continuation_sequence_number = last_continuation;
        event->continuation_at_shard_start = false;
        event->millis_behind_latest = last_millis_behind;
        event->end_of_shard = false;
        *real = false;
      }
    }
    if (resume) handle->Resume();
    return result;
  }

  void Cancel() {
    {
      std::lock_guard<std::mutex> lock(mu);
      FinishLocked(absl::OutOfRangeError("subscription ended: cancelled"),
                   SubscriptionEnd::kCancelled);
    }
    if (handle) handle->Cancel();
  }
};

RemoteSubscription::RemoteSubscription(std::shared_ptr<State> state, std::string consumer_arn,
                                       std::string shard_id)
    : state_(std::move(state)),
      consumer_arn_(std::move(consumer_arn)),
      shard_id_(std::move(shard_id)) {}

RemoteSubscription::~RemoteSubscription() {
  state_->Cancel();
  if (state_->delivery.joinable()) {
    if (std::this_thread::get_id() == state_->delivery_id) {
      state_->delivery.detach();
    } else {
      state_->delivery.join();
    }
  }
}

absl::Status RemoteSubscription::Next(Event* event, absl::Duration timeout) {
  bool real = false;
  return state_->Next(event, timeout, &real);
}

void RemoteSubscription::Cancel() { state_->Cancel(); }

bool RemoteSubscription::ended() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->finished;
}

SubscriptionEnd RemoteSubscription::end() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->reason;
}

void RemoteSubscription::StartDelivery(Callback on_event, EndCallback on_end) {
  std::shared_ptr<State> state = state_;
  state->delivery =
      std::thread([state, on_event = std::move(on_event), on_end = std::move(on_end)] {
        Event event;
        for (;;) {
          bool real = false;
          absl::Status s = state->Next(&event, absl::Seconds(1), &real);
          if (!s.ok()) {
            if (on_end) on_end(s);
            return;
          }
          if (real && on_event) on_event(event);
        }
      });
  state->delivery_id = state->delivery.get_id();
}

// ---- RemoteStream::SubscribeToShard -----------------------------------------

absl::StatusOr<std::unique_ptr<RemoteSubscription>> RemoteStream::SubscribeToShard(
    std::string_view consumer, std::string_view shard_id, const IteratorPosition& start) {
  std::string consumer_arn(consumer);
  if (consumer.substr(0, 4) != "arn:") {
    absl::StatusOr<StreamConsumerDescription> d = DescribeStreamConsumer(consumer);
    if (!d.ok()) return d.status();
    consumer_arn = d->consumer_arn;
  }
  wire::Writer w(wire::Format::kJson);
  w.BeginObject();
  w.Key("ConsumerARN");
  w.String(consumer_arn);
  w.Key("ShardId");
  w.String(shard_id);
  w.Key("StartingPosition");
  w.BeginObject();
  w.Key("Type");
  w.String(ShardIteratorTypeName(start.type));
  if (start.type == ShardIteratorType::kAtSequenceNumber ||
      start.type == ShardIteratorType::kAfterSequenceNumber) {
    w.Key("SequenceNumber");
    w.String(start.sequence_number.ToString());
  }
  if (start.type == ShardIteratorType::kAtTimestamp) {
    w.Key("Timestamp");
    w.Time(start.timestamp);
  }
  w.EndObject();
  w.EndObject();
  const std::string body = w.Take();
  KinesisClient::CallState call = client_->BeginCall();
  for (;;) {
    absl::StatusOr<HttpCall> http =
        client_->Prepare("SubscribeToShard", body, client_->options().retry.attempt_timeout);
    if (!http.ok()) return http.status();
    auto state = std::make_shared<RemoteSubscription::State>();
    std::weak_ptr<RemoteSubscription::State> weak = state;
    state->handle = client_->http().PostStreaming(
        std::move(*http),
        [weak](std::string_view bytes) {
          std::shared_ptr<RemoteSubscription::State> s = weak.lock();
          return s == nullptr || s->Sink(bytes);
        },
        [weak](absl::Status status) {
          if (std::shared_ptr<RemoteSubscription::State> s = weak.lock()) s->Done(status);
        });
    std::string error_body;
    absl::StatusOr<long> status = state->handle->AwaitStatus(&error_body);
    absl::Status error;
    if (!status.ok()) {
      error = status.status();
    } else if (*status != 200) {
      error = ErrorFromResponse(*status, error_body);
    } else {
      client_->Succeeded(call);
      return std::unique_ptr<RemoteSubscription>(
          new RemoteSubscription(std::move(state), consumer_arn, std::string(shard_id)));
    }
    // ResourceInUse (a subscription less than 5 s old) is not retried, as the SDKs.
    if (!client_->RetryAfter(error, call)) return error;
  }
}

absl::StatusOr<std::unique_ptr<RemoteSubscription>> RemoteStream::SubscribeToShard(
    std::string_view consumer, std::string_view shard_id, const IteratorPosition& start,
    RemoteSubscription::Callback on_event, RemoteSubscription::EndCallback on_end) {
  absl::StatusOr<std::unique_ptr<RemoteSubscription>> sub =
      SubscribeToShard(consumer, shard_id, start);
  if (!sub.ok()) return sub;
  (*sub)->StartDelivery(std::move(on_event), std::move(on_end));
  return sub;
}

}  // namespace kinlet::remote
