// kinlet/detail/stream_consumers.hpp: a stream's registry of enhanced fan-out
// consumers (RegisterStreamConsumer and friends) and of each consumer's latest
// subscription to each shard.
//
// The bodies of Stream's consumer calls (stream.hpp documents their contracts):
// the stream checks that it is not deleted, then delegates here; for
// SubscribeToShard it passes callbacks that resolve the start position, wake a
// taken-over subscription's readers and build the Subscription, all run under
// the registry's lock.
//
// Thread safety: every method is thread-safe; the registry has its own lock,
// never held across a reshard (the stream's control plane takes it, briefly,
// after deleting shards: ForgetShards).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/fan_out.hpp"
#include "kinlet/stream_options.hpp"

namespace kinlet::detail {

class StreamConsumerRegistry {
 public:
  // `options` must outlive the registry (the stream's own).
  StreamConsumerRegistry(const StreamOptions& options, std::string stream_arn)
      : options_(options), arn_(std::move(stream_arn)) {}

  StreamConsumerRegistry(const StreamConsumerRegistry&) = delete;
  StreamConsumerRegistry& operator=(const StreamConsumerRegistry&) = delete;

  // Stream::RegisterStreamConsumer; `now` is the creation time.
  absl::StatusOr<StreamConsumerDescription> Register(std::string_view consumer_name,
                                                     absl::Time now) {
    if (!detail::IsResourceName(consumer_name)) {
      return ValidationError(absl::StrCat(
          "1 validation error detected: Value '", detail::ToAbsl(consumer_name),
          "' at 'consumerName' failed to satisfy constraint: Member must satisfy regular "
          "expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128"));
    }
    detail::MutexLock lock(&mu_);
    for (const auto& c : consumers_) {
      if (c->description.consumer_name == consumer_name) {
        return ResourceInUse(
            absl::StrCat("Consumer ", c->description.consumer_arn, " already exists"));
      }
    }
    if (static_cast<int>(consumers_.size()) >= options_.max_stream_consumers) {
      return LimitExceeded(absl::StrCat("Stream ", options_.name, " under account ",
                                        options_.account_id, " already has ", consumers_.size(),
                                        " registered consumers, the limit."));
    }
    auto entry = std::make_unique<FanOutConsumer>();
    StreamConsumerDescription& d = entry->description;
    d.consumer_name = std::string(consumer_name);
    d.consumer_creation_timestamp = now;
    d.consumer_arn = absl::StrCat(arn_, "/consumer/", d.consumer_name, ":",
                                  absl::ToUnixSeconds(d.consumer_creation_timestamp));
    d.stream_arn = arn_;
    consumers_.push_back(std::move(entry));
    return d;
  }

  // Stream::DeregisterStreamConsumer: ends the consumer's subscriptions
  // (kConsumerDeregistered, or kLifetimeElapsed for one already past its
  // lifetime) and calls `on_ended(shard_index)` for each it ended, under the
  // registry's lock (the stream wakes the shard's waiters).
  template <typename OnEnded>
  absl::Status Deregister(std::string_view consumer, int64_t now_ms, OnEnded on_ended) {
    detail::MutexLock lock(&mu_);
    for (auto it = consumers_.begin(); it != consumers_.end(); ++it) {
      if (!(*it)->Matches(consumer)) continue;
      for (auto& [index, slot] : (*it)->subscriptions) {
        if (slot.state->End(EndOf(slot, SubscriptionEnd::kConsumerDeregistered, now_ms))) {
          on_ended(index);
        }
      }
      consumers_.erase(it);
      return absl::OkStatus();
    }
    return ConsumerNotFound(consumer);
  }

  // Stream::DescribeStreamConsumer.
  absl::StatusOr<StreamConsumerDescription> Describe(std::string_view consumer) const {
    detail::MutexLock lock(&mu_);
    for (const auto& c : consumers_) {
      if (c->Matches(consumer)) return c->description;
    }
    return ConsumerNotFound(consumer);
  }

  // Stream::ListStreamConsumers, in registration order.
  std::vector<StreamConsumerDescription> List() const {
    detail::MutexLock lock(&mu_);
    std::vector<StreamConsumerDescription> out;
    for (const auto& c : consumers_) out.push_back(c->description);
    return out;
  }

  int size() const {
    detail::MutexLock lock(&mu_);
    return static_cast<int>(consumers_.size());
  }

  // Stream::SubscribeToShard (pull mode), for the shard at `shard_index`
  // named `shard_id`, under the registry's lock: refuses (ResourceInUse) while
  // the consumer's latest subscription to the shard is active and younger
  // than subscription_takeover_after; then `resolve()` gives the start
  // position (StatusOr<uint64_t>; its error is returned and leaves nothing
  // behind); then the old subscription, if still active, ends (kTakenOver)
  // and `on_taken_over()` runs; then a new slot is made and
  // `make(state, consumer_arn, position)` builds what is returned.
  template <typename Resolve, typename OnTakenOver, typename Make>
  auto Subscribe(std::string_view consumer, uint32_t shard_index, std::string_view shard_id,
                 int64_t now_ms, Resolve resolve, OnTakenOver on_taken_over, Make make)
      -> absl::StatusOr<decltype(make(std::shared_ptr<SubscriptionState>(), std::string_view(),
                                      uint64_t{0}))> {
    detail::MutexLock lock(&mu_);
    FanOutConsumer* c = nullptr;
    for (const auto& entry : consumers_) {
      if (entry->Matches(consumer)) c = entry.get();
    }
    if (c == nullptr) return ConsumerNotFound(consumer);
    // The consumer's latest subscription to the shard, if any. (Looked up, not
    // inserted: a refused subscription must leave no slot behind; an empty
    // slot crashed DeregisterStreamConsumer. Found by the differential tests.)
    auto previous = c->subscriptions.find(shard_index);
    const std::shared_ptr<detail::SubscriptionState> old_state =
        previous == c->subscriptions.end() ? nullptr : previous->second.state;
    if (old_state != nullptr && old_state->ended() == SubscriptionEnd::kNone &&
        now_ms - previous->second.subscribed_ms <
            absl::ToInt64Milliseconds(options_.subscription_takeover_after)) {
      return ResourceInUse(absl::StrCat(
          "Another active subscription exists for consumer ", c->description.consumer_arn,
          " and shard ", detail::ToAbsl(shard_id), ": it was made less than ",
          absl::FormatDuration(options_.subscription_takeover_after), " ago."));
    }
    absl::StatusOr<uint64_t> position = resolve();
    if (!position.ok()) return position.status();
    if (old_state != nullptr &&
        old_state->End(EndOf(previous->second, SubscriptionEnd::kTakenOver, now_ms))) {
      on_taken_over();
    }
    Slot& slot = c->subscriptions[shard_index];
    slot.state = std::make_shared<detail::SubscriptionState>();
    slot.subscribed_ms = now_ms;
    return make(slot.state, std::string_view(c->description.consumer_arn), *position);
  }

  // Drops every consumer's slots for deleted shards (the stream's shard
  // reclamation).
  void ForgetShards(const std::vector<uint32_t>& deleted) {
    detail::MutexLock lock(&mu_);
    for (auto& consumer : consumers_) {
      for (uint32_t index : deleted) consumer->subscriptions.erase(index);
    }
  }

 private:
  struct Slot {
    std::shared_ptr<detail::SubscriptionState> state;
    int64_t subscribed_ms = 0;
  };
  struct FanOutConsumer {
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
  SubscriptionEnd EndOf(const Slot& slot, SubscriptionEnd why, int64_t now_ms) const {
    return now_ms - slot.subscribed_ms >= absl::ToInt64Milliseconds(options_.subscription_lifetime)
               ? SubscriptionEnd::kLifetimeElapsed
               : why;
  }

  absl::Status ConsumerNotFound(std::string_view consumer) const {
    return ResourceNotFound(absl::StrCat("Consumer ", detail::ToAbsl(consumer), " of stream ",
                                         options_.name, " under account ", options_.account_id,
                                         " not found."));
  }

  const StreamOptions& options_;
  const std::string arn_;

  // Registered fan-out consumers, in registration order.
  mutable detail::Mutex mu_;
  std::vector<std::unique_ptr<FanOutConsumer>> consumers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kinlet::detail
