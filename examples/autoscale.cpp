// autoscale: an on-demand stream under a load ramp. It splits hot shards as the
// load grows, refuses to split for a single hot partition key (and says so),
// and merges cold neighbours once the load has gone and its peak is forgotten.
// Prints the shard map (the hash key space, one character per 1/64, labelled
// by shard) as it grows and shrinks, and every scaling event.
//
// Runs on a ManualClock: half an hour of traffic takes a fraction of a second.
// The on-demand thresholds are AWS's divided by 100 (a shard splits above
// 5 kB/s instead of 500 kB/s) so that the demo moves little data; with the
// defaults the stream behaves the same way at AWS's rates.
#include <cstdio>
#include <string>

#include "kinlet/kinlet.hpp"

namespace {

using Stream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

// One character per 1/64 of the hash key space: the last digit of the index of
// the shard that owns it.
std::string ShardMap(const Stream& stream) {
  std::string map;
  for (const auto& shard : stream.OpenShards()) {
    const auto& r = shard->hash_key_range();
    const auto end = static_cast<uint64_t>(r.ending_hash_key >> 122);  // 0..63
    while (map.size() <= end) map += static_cast<char>('0' + shard->index() % 10);
  }
  return map;
}

void PrintEvents(const Stream& stream, size_t* printed) {
  const std::vector<kinlet::ScalingEvent> events = stream.ScalingEvents();
  for (; *printed < events.size(); ++*printed) {
    const kinlet::ScalingEvent& e = events[*printed];
    std::string parents, children;
    for (const auto& id : e.parent_shard_ids) parents += (parents.empty() ? "" : " + ") + id;
    for (const auto& id : e.child_shard_ids) children += (children.empty() ? "" : " + ") + id;
    std::printf("      %-9s %s%s%s  (%.1f kB/s: %s)\n",
                std::string(kinlet::ScalingEventKindName(e.kind)).c_str(), parents.c_str(),
                children.empty() ? "" : " -> ", children.c_str(), e.bytes_per_second / 1000,
                e.reason.c_str());
  }
}

}  // namespace

int main() {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "telemetry";
  options.stream_mode = kinlet::StreamMode::kOnDemand;  // starts with 4 shards
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.retention_period = absl::Minutes(5);
  options.shard_capacity_bytes = 8 << 20;
  kinlet::OnDemandOptions& scaling = options.on_demand;
  scaling.evaluation_interval = absl::Seconds(10);
  scaling.split_bytes_per_second = 5'000;
  scaling.merge_bytes_per_second = 500;
  scaling.shard_write_bytes_per_second = 10'000;
  scaling.scale_down_after = absl::Minutes(1);
  scaling.peak_window = absl::Minutes(10);
  auto created = Stream::Create(options, &clock);
  if (!created.ok()) {
    std::fprintf(stderr, "CreateStream: %s\n", created.status().ToString().c_str());
    return 1;
  }
  Stream& stream = **created;

  // Minute by minute: records per second spread over 500 devices, and on the
  // "hot" device alone. 100-byte readings.
  struct Phase {
    int minutes;
    int spread;
    int hot;
    const char* what;
  };
  const Phase phases[] = {{2, 100, 0, "warm-up, ~11 kB/s"},
                          {3, 400, 0, "ramp up, ~44 kB/s"},
                          {2, 400, 60, "one device goes hot, ~6 kB/s by itself"},
                          {14, 20, 0, "night, ~2 kB/s"}};
  const std::string reading(100, 'r');
  size_t printed = 0;
  int minute = 0;
  int device = 0;
  for (const Phase& phase : phases) {
    std::printf("-- %s\n", phase.what);
    for (int m = 0; m < phase.minutes; ++m, ++minute) {
      for (int second = 0; second < 60; ++second) {
        for (int i = 0; i < phase.spread; ++i) {
          if (!stream.PutRecord("device-" + std::to_string(device++ % 500), reading).ok()) return 1;
        }
        for (int i = 0; i < phase.hot; ++i) {
          if (!stream.PutRecord("hot", reading).ok()) return 1;
        }
        clock.Advance(absl::Seconds(1));
      }
      std::printf("  t=%2d min  %2d shards  [%s]\n", minute + 1, stream.open_shard_count(),
                  ShardMap(stream).c_str());
      PrintEvents(stream, &printed);
    }
  }
  // The night brought the stream back to its minimum of 4 shards.
  return stream.open_shard_count() == scaling.min_shard_count ? 0 : 1;
}
