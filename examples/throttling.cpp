// throttling: one hot shard at Kinesis's limits, seen in the metrics and the
// hot-shard report, then fixed by spreading partition keys over more shards.
// Runs on a ManualClock: ten simulated seconds take a few milliseconds.
#include <cstdio>
#include <string>

#include "kinlet/kinlet.hpp"

namespace {

using Stream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

// Ten seconds of a producer that tries 3,000 records of 200 bytes per second,
// putting one record every 1/3 ms; returns the records refused.
uint64_t Run(Stream& stream, kinlet::ManualClock& clock, bool spread_keys) {
  const std::string payload(200, 'x');
  uint64_t refused = 0;
  for (int i = 0; i < 30000; ++i) {
    if (i % 3 == 0) clock.Advance(absl::Milliseconds(1));
    // A single "device" key sends everything to one shard; per-device keys spread it.
    const std::string key = spread_keys ? "device-" + std::to_string(i % 64) : "device";
    if (!stream.PutRecord(key, payload).ok()) ++refused;
  }
  return refused;
}

void Report(const char* title, const Stream& stream, const kinlet::StreamMetrics& before,
            uint64_t refused) {
  const kinlet::StreamMetrics after = stream.GetMetrics();
  const kinlet::HotShardReport hot = kinlet::ComputeHotShardReport(before, after);
  std::printf("%s\n", title);
  std::printf("  accepted %llu, throttled %llu (WriteProvisionedThroughputExceeded)\n",
              static_cast<unsigned long long>(after.totals.incoming_records -
                                              before.totals.incoming_records),
              static_cast<unsigned long long>(refused));
  std::printf("  hot-shard report over %s: skew %.2f\n", absl::FormatDuration(hot.window).c_str(),
              hot.records_skew);
  for (const auto& s : hot.shards) {
    std::printf("    %s  %6.1f%% of records\n", s.shard_id.c_str(), 100 * s.records_share);
  }
}

}  // namespace

int main() {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "telemetry";
  options.shard_count = 1;  // Kinesis limits by default: 1,000 records/s per shard
  auto before_fix = std::move(*Stream::Create(options, &clock));
  auto m0 = before_fix->GetMetrics();
  const uint64_t refused_before = Run(*before_fix, clock, /*spread_keys=*/false);
  Report("Before: 1 shard, one partition key", *before_fix, m0, refused_before);

  // One key on one shard cannot go faster than one shard: spread the keys and
  // give the stream enough shards (3,000 records/s needs at least 3).
  options.shard_count = 4;
  auto after_fix = std::move(*Stream::Create(options, &clock));
  auto m1 = after_fix->GetMetrics();
  const uint64_t refused_after = Run(*after_fix, clock, /*spread_keys=*/true);
  Report("After: 4 shards, 64 partition keys", *after_fix, m1, refused_after);

  std::printf("\nPrometheus text of the fixed stream (first lines):\n");
  const std::string text = kinlet::ToPrometheusText(after_fix->GetMetrics());
  std::printf("%.*s...\n", 600, text.c_str());
  return refused_before > 0 && refused_after < refused_before ? 0 : 1;
}
