// kinlet/stream_concept.hpp: what the generic parts of kinlet need from a
// stream, in Kinesis's own operations, so that they run unchanged over an
// in-process Stream<Payload, Traits> or a remote one (kinlet::remote).
//
// KinesisStream<S> is the reading and writing surface of Kinesis Data Streams:
//
//   stream.name()                        the stream's name (for messages)
//   stream.clock()                       S::Clock* (a ClockPolicy): backoff
//                                        sleeps, lease expiry, linger times
//   stream.ListShards(request)           -> absl::StatusOr<ListShardsResult>
//                                        (filters, paging; hash key ranges,
//                                        sequence number ranges, parents)
//   stream.GetShardIterator(shard, pos)  -> absl::StatusOr<Iterator>
//   stream.GetRecords(iterator, limit, &page)   -> absl::Status, into S::Page:
//                                        records (std::vector<Record<P>>),
//                                        next_shard_iterator (std::optional
//                                        <Iterator>; empty at a closed shard's
//                                        end), child_shards, millis_behind_latest
//   stream.PutRecord(key, data, options) -> absl::StatusOr<PutRecordResult>
//   stream.PutRecords(entries, &result)  -> absl::Status (per-entry failures
//                                        in result, request order)
//
// with the types S::Page, S::Entry (PutRecordsRequestEntry<P>), S::View (what
// an entry's data is) and S::Clock. Errors are absl::Status with the Kinesis
// exception names (errors.hpp), so IsExpiredIterator, IsProvisioned-
// ThroughputExceeded, ... classify them the same way for every stream.
//
// Refinements, used when a stream offers them (checked with `requires`):
//   FanOutStream<S>: RegisterStreamConsumer(name) and SubscribeToShard(
//     consumer, shard, position) -> absl::StatusOr<std::unique_ptr<Sub>>
//     whose Next(&event, timeout) and end() drive enhanced fan-out reads.
//   MetricsStream<S>: GetMetrics() -> StreamMetrics (metrics.hpp's helpers,
//     ToPrometheusText and ComputeHotShardReport, work on that snapshot).
//   InProcessStream<S>: kinlet's own Stream (GetShard, HasRecords,
//     WaitForRecords, zero-copy views): Consumer and ConsumerGroup keep their
//     in-process fast paths for it; nothing else relies on it.
//   deleted() and weak_from_this(): a stream that knows it was deleted says so
//     without a call; a shared-owned one is kept alive by its readers.
//
// Nothing here names a kinlet internal (shards as objects, ring logs, pins):
// a type that wraps any Kinesis client satisfies KinesisStream.
//
// Thread safety: the concept requires nothing; the generic code calls a
// stream from the threads its own contract names (Consumer: one thread;
// Producer: its sender thread and Put's callers, see producer.hpp), so a
// stream used by a Producer must be thread-safe, as Stream and RemoteStream
// are.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kinlet/clock.hpp"
#include "kinlet/fan_out.hpp"
#include "kinlet/metrics.hpp"
#include "kinlet/put_records.hpp"
#include "kinlet/record.hpp"
#include "kinlet/resharding.hpp"
#include "kinlet/shard_iterator.hpp"
#include "kinlet/stream_options.hpp"

namespace kinlet {

namespace detail {

template <typename T>
struct StatusOrValue {};
template <typename T>
struct StatusOrValue<absl::StatusOr<T>> {
  using type = T;
};

template <typename R>
struct RecordPayloadOf {};
template <typename P>
struct RecordPayloadOf<Record<P>> {
  using type = P;
};

}  // namespace detail

// The iterator type a stream's GetShardIterator returns (ShardIterator for
// Stream; whatever a remote stream wraps its opaque iterator string in).
template <typename S>
using StreamIteratorT = typename detail::StatusOrValue<
    std::remove_cvref_t<decltype(std::declval<const S&>().GetShardIterator(
        std::string_view(), IteratorPosition()))>>::type;

// The payload type of a stream's records.
template <typename S>
using StreamPayloadT = typename detail::RecordPayloadOf<typename std::remove_cvref_t<
    decltype(std::declval<typename S::Page&>().records)>::value_type>::type;

template <typename S>
concept KinesisStream = requires {
  typename S::Page;
  typename S::Entry;
  typename S::View;
  typename S::Clock;
  typename StreamIteratorT<S>;
  typename StreamPayloadT<S>;
}
&&ClockPolicy<typename S::Clock>&& requires(
    S& s, const S& cs, std::string_view id, const IteratorPosition& position,
    const ListShardsRequest& list, const StreamIteratorT<S>& iterator, int limit,
    typename S::Page* page, std::span<const typename S::Entry> entries,
    PutRecordsResult* put_result, typename S::View data, const PutRecordOptions& options) {
  { cs.name() } -> std::convertible_to<std::string_view>;
  { cs.clock() } -> std::same_as<typename S::Clock*>;
  { cs.ListShards(list) } -> std::same_as<absl::StatusOr<ListShardsResult>>;
  { cs.GetShardIterator(id, position) } -> std::same_as<absl::StatusOr<StreamIteratorT<S>>>;
  { cs.GetRecords(iterator, limit, page) } -> std::same_as<absl::Status>;
  { page->records } -> std::same_as<std::vector<Record<StreamPayloadT<S>>>&>;
  { page->next_shard_iterator } -> std::same_as<std::optional<StreamIteratorT<S>>&>;
  { page->child_shards } -> std::same_as<std::vector<ChildShard>&>;
  { page->millis_behind_latest } -> std::convertible_to<int64_t>;
  { s.PutRecord(id, data, options) } -> std::same_as<absl::StatusOr<PutRecordResult>>;
  { s.PutRecords(entries, put_result) } -> std::same_as<absl::Status>;
};

// Enhanced fan-out (SubscribeToShard, pull form).
template <typename S>
concept FanOutStream = KinesisStream<S> &&
    requires(S& s, std::string_view name, const IteratorPosition& position) {
  typename S::Event;
  { s.RegisterStreamConsumer(name) } -> std::same_as<absl::StatusOr<StreamConsumerDescription>>;
  {*s.SubscribeToShard(name, name, position)};
  {
    (*s.SubscribeToShard(name, name, position))
        ->Next(static_cast<typename S::Event*>(nullptr), absl::ZeroDuration())
    } -> std::same_as<absl::Status>;
  { (*s.SubscribeToShard(name, name, position))->end() } -> std::same_as<SubscriptionEnd>;
};

// A stream that reports CloudWatch-style metrics (metrics.hpp).
template <typename S>
concept MetricsStream = requires(const S& s) {
  { s.GetMetrics() } -> std::same_as<StreamMetrics>;
};

// kinlet's own in-process stream: shards as objects, readiness without a
// read (HasRecords, WaitForRecords). Generic code uses it only for fast paths.
template <typename S>
concept InProcessStream = KinesisStream<S> &&
    requires(const S& s, std::string_view id, const StreamIteratorT<S>& it) {
  typename S::ShardHandle;
  { s.GetShard(id) } -> std::same_as<absl::StatusOr<typename S::ShardHandle>>;
  { s.HasRecords(it) } -> std::same_as<bool>;
  { s.WaitForRecords(it, absl::ZeroDuration()) } -> std::same_as<bool>;
};

namespace detail {

// True once the stream knows it was deleted (a stream without deleted() finds
// out from its next call's ResourceNotFoundException).
template <typename S>
bool KnownDeleted(const S& stream) {
  if constexpr (requires { stream.deleted(); }) {
    return stream.deleted();
  } else {
    return false;
  }
}

// The owner of a shared-owned stream (null otherwise, or for a stream that is
// never shared-owned).
template <typename S>
std::shared_ptr<S> SharedOwner(S* stream) {
  if constexpr (requires { stream->weak_from_this(); }) {
    return stream->weak_from_this().lock();
  } else {
    return nullptr;
  }
}

}  // namespace detail

// Every page of ListShards(request), in shard order (parents before their
// children). Errors: those of ListShards. Thread-safe as ListShards.
template <typename StreamType>
absl::StatusOr<std::vector<ShardDescription>> ListAllShards(const StreamType& stream,
                                                            ListShardsRequest request = {}) {
  std::vector<ShardDescription> shards;
  for (;;) {
    absl::StatusOr<ListShardsResult> page = stream.ListShards(request);
    if (!page.ok()) return page.status();
    for (ShardDescription& d : page->shards) shards.push_back(std::move(d));
    if (page->next_token.empty()) return shards;
    request = ListShardsRequest{};
    request.next_token = page->next_token;
  }
}

}  // namespace kinlet
