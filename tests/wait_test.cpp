// Tests of kinlet/detail/wait.hpp and kinlet/detail/delivery_pool.hpp (issue
// 14, defects 5 and 6): timeouts that saturate instead of overflowing, waits
// that no put can leave asleep (any number of waiters, both barrier modes),
// idle waiters and push subscriptions that cost no wake-ups and no threads,
// and the delivery pool's order, fairness and teardown.
#include "kinlet/detail/wait.hpp"

#include <dirent.h>
#include <sys/resource.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/detail/delivery_pool.hpp"
#include "kinlet/stream.hpp"

namespace {

using kinlet::IteratorPosition;
using Event = kinlet::SubscribeToShardEvent<std::string>;
using StringStream = kinlet::Stream<std::string>;
constexpr const char* kShard = "shardId-000000000000";

std::unique_ptr<StringStream> MakeStream(absl::Duration heartbeat = absl::Seconds(60)) {
  kinlet::StreamOptions options;
  options.name = "waits";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_bytes = 4 << 20;
  options.subscription_heartbeat = heartbeat;
  auto stream = StringStream::Create(options);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

// Timeouts no test should reach: a wait that hits one lost its wake-up.
constexpr absl::Duration kLong = absl::Seconds(30);

// Every "forever" a caller may write.
std::vector<absl::Duration> HugeTimeouts() {
  return {absl::InfiniteDuration(), absl::Hours(2562047),  // just below INT64_MAX ns
          absl::Nanoseconds(std::numeric_limits<int64_t>::max()),
          absl::Seconds(std::numeric_limits<int64_t>::max())};
}

int64_t ThreadContextSwitches() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_nvcsw + u.ru_nivcsw;
}

int CountThreads() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// Switches the listeners' barrier mode for one test.
struct MembarrierMode {
  explicit MembarrierMode(bool on) : was(kinlet::detail::WaitMembarrierFlag().load()) {
    kinlet::detail::SetWaitMembarrier(on);
  }
  ~MembarrierMode() { kinlet::detail::SetWaitMembarrier(was); }
  bool was;
};

}  // namespace

TEST_CASE("Deadlines saturate instead of overflowing", "[wait]") {
  using kinlet::detail::DeadlineAfter;
  using kinlet::detail::SteadyTime;
  const SteadyTime now = std::chrono::steady_clock::now();
  for (absl::Duration d : HugeTimeouts()) {
    const SteadyTime t = DeadlineAfter(now, d);  // max(), or now + d if that fits
    CHECK(t > now);
    CHECK((t == SteadyTime::max() || t - now == absl::ToChronoNanoseconds(d)));
  }
  CHECK(DeadlineAfter(now, absl::InfiniteDuration()) == SteadyTime::max());
  CHECK(DeadlineAfter(now, std::chrono::nanoseconds::max()) == SteadyTime::max());
  CHECK(DeadlineAfter(now, absl::Seconds(1)) == now + std::chrono::seconds(1));
  CHECK(DeadlineAfter(now, absl::ZeroDuration()) == now);
  CHECK(DeadlineAfter(now, -absl::InfiniteDuration()) == now);
  CHECK(DeadlineAfter(now, absl::Seconds(-5)) == now);
}

TEST_CASE("An infinite or huge WaitForRecords waits until a put from another thread", "[wait]") {
  auto stream = MakeStream();
  for (absl::Duration timeout : HugeTimeouts()) {
    CAPTURE(absl::FormatDuration(timeout));
    const auto it = *stream->GetShardIterator(kShard, IteratorPosition::Latest());
    std::atomic<bool> put{false};
    bool woke = false;
    bool after_put = false;
    std::thread waiter([&] {
      woke = stream->WaitForRecords(it, timeout);
      after_put = put.load();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    put.store(true);
    REQUIRE(stream->PutRecord("k", "v").ok());
    waiter.join();
    CHECK(woke);
    CHECK(after_put);  // it did not return before the put
  }
}

TEST_CASE("An infinite Subscription::Next returns the records put later, Cancel wakes it",
          "[wait][fan_out]") {
  auto stream = MakeStream();
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  const absl::Duration timeout = GENERATE(from_range(HugeTimeouts()));
  CAPTURE(absl::FormatDuration(timeout));
  auto sub = *stream->SubscribeToShard("c", kShard, IteratorPosition::Latest());
  SECTION("a put") {
    Event event;
    absl::Status status;
    std::thread reader([&] { status = sub->Next(&event, timeout); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(stream->PutRecord("k", "v").ok());
    reader.join();
    REQUIRE(status.ok());
    REQUIRE(event.records().size() == 1);
    CHECK(event.records()[0].data == "v");
  }
  SECTION("a cancel") {
    Event event;
    absl::Status status;
    std::thread reader([&] { status = sub->Next(&event, timeout); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    sub->Cancel();
    reader.join();
    CHECK(absl::IsOutOfRange(status));  // ended, not a heartbeat
    CHECK(sub->end() == kinlet::SubscriptionEnd::kCancelled);
  }
}

TEST_CASE("Every put wakes every waiter of a shard, in both barrier modes", "[wait]") {
  const bool membarrier = GENERATE(false, true);
  CAPTURE(membarrier);
  MembarrierMode mode(membarrier);
  auto stream = MakeStream();
  constexpr int kWaiters = 8;
  constexpr int kRounds = 300;
  std::atomic<int> arrived{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> waiters;
  for (int w = 0; w < kWaiters; ++w) {
    waiters.emplace_back([&] {
      auto it = *stream->GetShardIterator(kShard, IteratorPosition::TrimHorizon());
      for (int round = 0; round < kRounds; ++round) {
        arrived.fetch_add(1);
        // Wait for record `round`: a lost wake-up leaves this asleep for 30 s.
        if (!stream->WaitForRecords(it, kLong)) {
          failures.fetch_add(1);
          return;
        }
        auto page = stream->GetRecords(it, 1);
        if (!page.ok() || page->records.size() != 1) {
          failures.fetch_add(1);
          return;
        }
        it = *page->next_shard_iterator;
      }
    });
  }
  for (int round = 0; round < kRounds && failures.load() == 0; ++round) {
    while (arrived.load() < kWaiters * (round + 1)) std::this_thread::yield();
    // Vary where the waiters are when the put lands: registering, in their
    // first (bounded) sleep, or in an untimed one.
    if (round % 3 == 1) std::this_thread::sleep_for(std::chrono::microseconds(300));
    if (round % 3 == 2) std::this_thread::yield();
    REQUIRE(stream->PutRecord("k", std::to_string(round)).ok());
  }
  for (auto& t : waiters) t.join();
  CHECK(failures.load() == 0);
}

TEST_CASE("An idle waiter sleeps through: no wake-ups while nothing is written", "[wait]") {
  const bool membarrier = GENERATE(false, true);
  CAPTURE(membarrier);
  MembarrierMode mode(membarrier);
  auto stream = MakeStream();
  const auto it = *stream->GetShardIterator(kShard, IteratorPosition::Latest());
  int64_t switches = -1;
  bool woke = true;
  std::thread waiter([&] {
    const int64_t before = ThreadContextSwitches();
    woke = stream->WaitForRecords(it, absl::Seconds(1));
    switches = ThreadContextSwitches() - before;
  });
  waiter.join();
  CHECK_FALSE(woke);
  // One bounded first slice, then one sleep to the deadline (a polling waiter
  // makes thousands).
  CHECK(switches <= 20);
}

TEST_CASE("Idle push subscriptions add no thread each and do not wake up", "[wait][fan_out]") {
  auto stream = MakeStream(absl::Seconds(60));
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  std::atomic<int> events{0};
  // Start the pool first, so that the count below sees only what subscriptions add.
  {
    auto warm =
        *stream->SubscribeToShard("c", kShard, IteratorPosition::Latest(), [](const Event&) {});
  }
  const int threads_before = CountThreads();
  kinlet::StreamOptions options;
  options.name = "many-shards";
  options.shard_count = 64;
  options.shard_capacity_bytes = 2 << 20;
  options.subscription_heartbeat = absl::Seconds(60);
  options.limits = kinlet::ThroughputLimits::Unlimited();
  auto many = std::move(*StringStream::Create(options));
  REQUIRE(many->RegisterStreamConsumer("c").ok());
  std::vector<std::unique_ptr<kinlet::Subscription<std::string>>> subs;
  for (const auto& shard : many->OpenShards()) {
    subs.push_back(*many->SubscribeToShard(
        "c", shard->shard_id(), IteratorPosition::Latest(),
        [&](const Event& e) { events.fetch_add(static_cast<int>(e.records().size())); }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let every one go idle
  CHECK(CountThreads() - threads_before <= 0);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  getrusage(RUSAGE_SELF, &after);
  // 64 polling delivery threads would switch hundreds of thousands of times.
  CHECK(after.ru_nvcsw + after.ru_nivcsw - before.ru_nvcsw - before.ru_nivcsw <= 200);
  // And each is still woken by a put.
  for (const auto& shard : many->OpenShards()) {
    kinlet::PutRecordOptions put;
    put.explicit_hash_key = shard->hash_key_range().starting_hash_key;
    REQUIRE(many->PutRecord("k", "v", put).ok());
  }
  for (int i = 0; i < 30000 && events.load() < 64; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(events.load() == 64);
}

namespace {

// A task that counts its steps, checks it never runs on two threads at once,
// and stops after `limit` steps (or never, for -1).
class CountingTask : public kinlet::detail::DeliveryTask {
 public:
  CountingTask(kinlet::detail::DeliveryPool* pool, int limit)
      : DeliveryTask(pool, {}), limit_(limit) {}
  std::atomic<int> steps{0};
  std::atomic<int> overlaps{0};
  std::atomic<bool> done{false};

 private:
  Next Step() override {
    if (inside_.exchange(true)) overlaps.fetch_add(1);
    const int n = steps.fetch_add(1) + 1;
    inside_.store(false);
    if (limit_ >= 0 && n >= limit_) {
      done.store(true);
      return Next{Next::kDone, {}};
    }
    return Next{Next::kAgain, {}};
  }
  const int limit_;
  std::atomic<bool> inside_{false};
};

}  // namespace

TEST_CASE("The delivery pool is fair and never runs one task on two threads", "[wait][pool]") {
  kinlet::detail::DeliveryPool pool(1);
  auto busy = std::make_shared<CountingTask>(&pool, -1);  // always has more to do
  auto small = std::make_shared<CountingTask>(&pool, 100);
  busy->Schedule();
  small->Schedule();
  // One thread, one busy task: the small one still finishes (round robin).
  while (!small->done.load()) std::this_thread::yield();
  CHECK(small->steps.load() == 100);
  busy->Close();
  const int steps_at_close = busy->steps.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(busy->steps.load() == steps_at_close);  // no step after Close returned

  kinlet::detail::DeliveryPool wide(4);
  auto contended = std::make_shared<CountingTask>(&wide, 20000);
  std::vector<std::thread> schedulers;
  for (int i = 0; i < 4; ++i) {
    schedulers.emplace_back([&] {
      while (!contended->done.load()) contended->Schedule();
    });
  }
  for (auto& t : schedulers) t.join();
  CHECK(contended->overlaps.load() == 0);
  CHECK(contended->steps.load() == 20000);
}

TEST_CASE("Destroying a push subscription waits for its callback, none runs after",
          "[wait][fan_out]") {
  auto stream = MakeStream();
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  std::atomic<int> in_callback{0};
  std::atomic<int> callbacks_after{0};
  std::atomic<bool> destroyed{false};
  std::atomic<int> ends{0};
  auto sub = *stream->SubscribeToShard(
      "c", kShard, IteratorPosition::TrimHorizon(),
      [&](const Event& e) {
        if (e.records().empty()) return;
        if (destroyed.load()) callbacks_after.fetch_add(1);
        in_callback.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        in_callback.fetch_sub(1);
      },
      [&](const absl::Status& s) {
        CHECK(absl::IsOutOfRange(s));  // cancelled by the destruction
        ends.fetch_add(1);
      });
  REQUIRE(stream->PutRecord("k", "v").ok());
  while (in_callback.load() == 0) std::this_thread::yield();
  sub.reset();  // waits for the callback in progress
  destroyed.store(true);
  CHECK(in_callback.load() == 0);
  CHECK(ends.load() == 1);
  for (int i = 0; i < 10; ++i) REQUIRE(stream->PutRecord("k", "v").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(callbacks_after.load() == 0);
  CHECK(ends.load() == 1);
}

TEST_CASE("A push subscription destroyed from inside its own callback does not deadlock",
          "[wait][fan_out]") {
  auto stream = MakeStream();
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  std::unique_ptr<kinlet::Subscription<std::string>> sub;
  std::mutex mu;
  std::atomic<int> ends{0};
  std::atomic<int> events{0};
  std::atomic<bool> gone{false};
  {
    std::lock_guard<std::mutex> lock(mu);
    sub = *stream->SubscribeToShard(
        "c", kShard, IteratorPosition::TrimHorizon(),
        [&](const Event& e) {
          if (e.records().empty()) return;
          events.fetch_add(1);
          std::unique_ptr<kinlet::Subscription<std::string>> mine;
          {
            std::lock_guard<std::mutex> lock(mu);
            mine = std::move(sub);
          }
          mine.reset();      // our own subscription, from its callback
          gone.store(true);  // the last touch of the test's objects
        },
        [&](const absl::Status&) { ends.fetch_add(1); });
  }
  REQUIRE(stream->PutRecord("k", "v").ok());
  for (int i = 0; i < 30000 && !gone.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(gone.load());
  REQUIRE(stream->PutRecord("k", "v").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(events.load() == 1);
  CHECK(ends.load() == 1);
}

TEST_CASE("An idle push subscription is woken by a put long after it went idle",
          "[wait][fan_out]") {
  const bool membarrier = GENERATE(false, true);
  CAPTURE(membarrier);
  MembarrierMode mode(membarrier);
  auto stream = MakeStream(absl::Seconds(60));
  REQUIRE(stream->RegisterStreamConsumer("c").ok());
  std::atomic<int> records{0};
  auto sub = *stream->SubscribeToShard(
      "c", kShard, IteratorPosition::Latest(),
      [&](const Event& e) { records.fetch_add(static_cast<int>(e.records().size())); });
  for (int round = 1; round <= 20; ++round) {
    // Past the bounded re-check: only the put can wake it now (heartbeats are 60 s away).
    if (round % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(stream->PutRecord("k", std::to_string(round)).ok());
    for (int i = 0; i < 30000 && records.load() < round; ++i) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    REQUIRE(records.load() == round);
  }
}
