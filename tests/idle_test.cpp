#include "kinlet/idle.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/stream.hpp"

namespace kinlet {
namespace {

using Step = BackoffIdle::Step;
using Kind = Step::Kind;

BackoffIdleOptions SmallOptions() {
  BackoffIdleOptions o;
  o.batch_records = 10;
  o.batch_pause = absl::Microseconds(3);
  o.max_spins = 2;
  o.max_yields = 2;
  o.min_park = absl::Microseconds(100);
  o.max_park = absl::Microseconds(350);
  return o;
}

TEST_CASE("BackoffIdle reads again at once after a full batch and pauses after a light read",
          "[idle]") {
  BackoffIdle idle(SmallOptions());
  CHECK(idle.Next(10) == Step{});
  CHECK(idle.Next(1000) == Step{});
  CHECK(idle.Next(9) == Step{Kind::kPause, absl::Microseconds(3)});
  CHECK(idle.Next(1) == Step{Kind::kPause, absl::Microseconds(3)});
}

TEST_CASE("BackoffIdle backs off on empty reads: spins, then yields, then parks doubling to max",
          "[idle]") {
  BackoffIdle idle(SmallOptions());
  std::vector<Step> steps;
  for (int i = 0; i < 8; ++i) steps.push_back(idle.Next(0));
  const std::vector<Step> want = {
      {Kind::kPause, absl::Microseconds(3)},  {Kind::kPause, absl::Microseconds(3)},
      {Kind::kYield, absl::ZeroDuration()},   {Kind::kYield, absl::ZeroDuration()},
      {Kind::kPark, absl::Microseconds(100)}, {Kind::kPark, absl::Microseconds(200)},
      {Kind::kPark, absl::Microseconds(350)}, {Kind::kPark, absl::Microseconds(350)},
  };
  CHECK(steps == want);

  SECTION("any read with records starts the backoff again") {
    CHECK(idle.Next(3).kind == Kind::kPause);
    CHECK(idle.Next(0) == Step{Kind::kPause, absl::Microseconds(3)});
  }
  SECTION("so does Reset") {
    idle.Reset();
    CHECK(idle.Next(0) == Step{Kind::kPause, absl::Microseconds(3)});
  }
}

TEST_CASE("BackoffIdle presets: shared cores sleep instead of spinning, low latency never pauses",
          "[idle]") {
  BackoffIdle shared(BackoffIdleOptions::SharedCores());
  CHECK(shared.Next(999) == Step{Kind::kSleep, absl::Microseconds(20)});
  CHECK(shared.Next(1000) == Step{});
  CHECK(shared.Next(0).kind == Kind::kPark);  // no spins, no yields

  BackoffIdle latency(BackoffIdleOptions::LowLatency());
  CHECK(latency.Next(1) == Step{});
  for (int i = 0; i < 1000; ++i)
    REQUIRE(latency.Next(0) == Step{Kind::kPause, absl::ZeroDuration()});
}

TEST_CASE("BackoffIdle parks through the caller's function and pauses for at least its duration",
          "[idle]") {
  BackoffIdleOptions o = SmallOptions();
  o.max_spins = 0;
  o.max_yields = 0;
  BackoffIdle idle(o);
  std::vector<absl::Duration> parks;
  auto park = [&](absl::Duration d) { parks.push_back(d); };
  idle.Idle(0, park);
  idle.Idle(0, park);
  idle.Idle(20, park);  // a full batch: no park
  CHECK(parks == std::vector<absl::Duration>{absl::Microseconds(100), absl::Microseconds(200)});

  const auto t0 = std::chrono::steady_clock::now();
  idle.Idle(1, park);  // a light read spins for batch_pause
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::microseconds(3));
  CHECK(parks.size() == 2);
}

// The loop the README recommends: every record read once, in order, by a
// reader that idles with BackoffIdle and parks on the shard.
TEST_CASE("A reader idling with BackoffIdle reads every record of a concurrent writer in order",
          "[idle]") {
  StreamOptions options;
  options.name = "idle";
  options.limits = ThroughputLimits::Unlimited();
  auto stream = std::move(*Stream<std::string>::Create(options));
  auto shard = stream->OpenShards()[0];
  auto it = *shard->GetShardIterator(IteratorPosition::TrimHorizon());
  constexpr int kRecords = 20000;
  std::atomic<int> put_errors{0};  // Catch2 assertions are for the test's own thread
  std::thread writer([&] {
    for (int i = 0; i < kRecords; ++i) {
      if (!stream->PutRecord("k", std::to_string(i)).ok()) put_errors.fetch_add(1);
    }
  });
  BackoffIdle idle;
  GetRecordsResult<std::string> page;
  int next = 0;
  int out_of_order = 0;
  bool read_failed = false;
  while (next < kRecords && !read_failed) {
    read_failed = !shard->GetRecords(it, 1000, &page).ok();
    if (read_failed) break;
    for (const auto& r : page.records) out_of_order += r.data != std::to_string(next++);
    it = *page.next_shard_iterator;
    idle.Idle(page.records.size(), [&](absl::Duration d) { shard->WaitForRecords(it, d); });
  }
  writer.join();
  CHECK_FALSE(read_failed);
  CHECK(out_of_order == 0);
  CHECK(put_errors.load() == 0);
  CHECK(next == kRecords);
}

}  // namespace
}  // namespace kinlet
