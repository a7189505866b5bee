// bench/fast_traits.hpp: the configuration for the last nanoseconds: one writer
// per shard (no writer lock), the coarse clock (5 ns instead of 25 ns a read,
// 1-4 ms timestamp resolution) and no per-record metrics.
#pragma once

#include "kinlet/kinlet.hpp"

namespace bench {

struct FastTraits : kinlet::SingleWriterTraits {
  using Clock = kinlet::CoarseSystemClock;
  static constexpr bool kMetrics = false;
};

}  // namespace bench
