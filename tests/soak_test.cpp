// A soak test, bounded in time: a stream written for KINLET_SOAK_SECONDS
// (default 10) of real time while its ManualClock runs 10 s per put, so that
// records expire by retention all the time, and a reader that now and then
// stops for a long while (its records expire unread). Checks that memory stays
// flat (resident set after warm-up vs at the end), that every record put is
// accounted for (read, or skipped as trimmed, never both, never neither), and,
// under AddressSanitizer, that nothing leaks (LeakSanitizer runs at exit).
// Hidden ([.soak]); ctest runs it as the `soak` entry.
//   KINLET_SOAK_SECONDS=600 build/dev/tests/kinlet_tests "[.soak]"
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <string>

#include "kinlet/kinlet.hpp"
#include "test_env.hpp"

namespace {

long MaxResidentKiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

TEST_CASE("Soak: retention keeps memory flat and every record is accounted for", "[.soak]") {
  const double seconds = static_cast<double>(kinlet_test::EnvOr("KINLET_SOAK_SECONDS", 10));
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "soak";
  options.shard_count = 2;
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_records = 1 << 14;  // 24 h of 10-second puts fit: nothing refused
  options.shard_capacity_bytes = 4 << 20;
  auto stream = *kinlet::Stream<std::string, kinlet::ManualClockTraits>::Create(options, &clock);
  kinlet::ConsumerOptions consumer_options;
  consumer_options.on_trimmed = kinlet::TrimmedPolicy::kSkipToTrimHorizon;
  auto consumer = *kinlet::Consumer<std::string, kinlet::ManualClockTraits>::Create(
      stream.get(), consumer_options);
  kinlet::ConsumerBatch<std::string> batch;

  uint64_t put = 0;
  uint64_t read = 0;
  uint64_t skipped = 0;
  long warm_kib = 0;
  std::string payload(100, 'p');
  const auto start = std::chrono::steady_clock::now();
  const auto warm = start + std::chrono::duration<double>(seconds / 5);
  const auto end = start + std::chrono::duration<double>(seconds);
  auto drain = [&] {
    for (;;) {
      REQUIRE(consumer->Poll(&batch).ok());
      read += batch.records().size();
      skipped += batch.trimmed_records_skipped;
      if (batch.records().empty() && batch.trimmed_records_skipped == 0) return;
    }
  };
  for (uint64_t round = 0; std::chrono::steady_clock::now() < end; ++round) {
    for (int i = 0; i < 1000; ++i) {
      payload[0] = static_cast<char>('a' + (put % 26));
      REQUIRE(stream->PutRecord("key-" + std::to_string(put % 97), payload).ok());
      ++put;
      clock.Advance(absl::Seconds(10));
    }
    // Every 20th round the reader is away for 30 rounds (~83 h of stream
    // time): what it missed expires unread.
    if (round % 50 < 20) drain();
    if (warm_kib == 0 && std::chrono::steady_clock::now() >= warm) warm_kib = MaxResidentKiB();
  }
  drain();
  const long end_kib = MaxResidentKiB();
  INFO(put << " records put, " << read << " read, " << skipped << " expired unread; resident "
           << warm_kib << " KiB after warm-up, " << end_kib << " KiB at the end");
  CHECK(put == read + skipped);  // every record read once or counted as lost, none twice
  CHECK(skipped > 0);            // the reader's absences did cost records (not vacuous)
  CHECK(read > 0);
  const auto metrics = stream->GetMetrics();
  CHECK(metrics.totals.incoming_records == put);
  CHECK(end_kib - warm_kib < 16 * 1024);  // flat: rings are fixed, nothing grows with time
}
