// kinlet/traits.hpp: compile-time policies of a stream.
//
// Stream<Payload, Traits> takes its policies from a traits struct. Inherit from
// DefaultStreamTraits and shadow what you change:
//
//   struct TestTraits : kinlet::DefaultStreamTraits { using Clock = kinlet::ManualClock; };
//   struct AwsPlacement : kinlet::DefaultStreamTraits { using Hasher = kinlet::Md5Hasher; };
#pragma once

#include <type_traits>

#include "kinlet/clock.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/hasher.hpp"

namespace kinlet {

struct DefaultStreamTraits {
  using Clock = SystemClock;  // ManualClock in tests
  using Hasher = Xxh3Hasher;  // Md5Hasher (kinlet/md5_hasher.hpp) for Kinesis placement
  // Count the per-record metrics of successful puts and reads (see
  // metrics.hpp). Refusals are always counted.
  static constexpr bool kMetrics = true;
};

// Each shard is written by one thread at a time, by the program's design (one
// producer thread, or one thread per shard): writers take no lock, so a put
// makes no atomic read-modify-write. REQUIRES: no two threads put to one shard
// concurrently, and Stream::TrimExpired and resharding (SplitShard,
// MergeShards, UpdateShardCount, EvaluateOnDemandScaling) are called only from
// the writer thread; an on-demand stream's own evaluations run inside puts, so
// they are. A reshard closes shards under the writer lock this drops.
struct SingleWriterTraits : DefaultStreamTraits {
  using WriterLock = detail::NullLock;
};

// No per-record metrics: the last few nanoseconds of the hot path.
struct NoMetricsTraits : DefaultStreamTraits {
  static constexpr bool kMetrics = false;
};

namespace detail {
// Traits::WriterLock, SpinLock when a traits struct does not say.
template <typename T, typename = void>
struct WriterLockOf {
  using type = SpinLock;
};
template <typename T>
struct WriterLockOf<T, std::void_t<typename T::WriterLock>> {
  using type = typename T::WriterLock;
};
}  // namespace detail

// Traits::kMetrics, true when a traits struct does not say.
template <typename Traits>
constexpr bool MetricsEnabled() {
  if constexpr (requires { Traits::kMetrics; }) {
    return Traits::kMetrics;
  } else {
    return true;
  }
}

// The system clock swapped for a hand-driven one: the usual test setting.
struct ManualClockTraits : DefaultStreamTraits {
  using Clock = ManualClock;
};

template <typename T>
concept StreamTraits = ClockPolicy<typename T::Clock> && PartitionKeyHasher<typename T::Hasher>;

}  // namespace kinlet
