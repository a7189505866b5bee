// Tests of kinlet/producer.hpp over in-process streams: no record lost or
// written twice and per-key order kept, under injected throttling and
// InternalFailure and a reshard mid-run, with requests on the sender thread
// and on an executor; request limits; Flush; shutdown; back-pressure (block
// and fail); refused records.
#include "kinlet/producer.hpp"

#include <catch2/catch.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/consumer.hpp"
#include "kinlet/stream.hpp"

namespace {

using TestStream = kinlet::Stream<std::string>;
using Result = kinlet::Producer<TestStream>::Result;

std::unique_ptr<TestStream> MakeStream(int shards) {
  kinlet::StreamOptions options;
  options.name = "produced";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = shards;
  options.shard_capacity_bytes = 8 << 20;
  options.max_shard_count_updates_per_day = 1000;
  options.update_duration = absl::ZeroDuration();
  auto stream = TestStream::Create(options);
  REQUIRE(stream.ok());
  return std::move(*stream);
}

// A small executor: `n` threads running tasks; joined on destruction after
// the queue drains.
class Pool {
 public:
  explicit Pool(int n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        for (;;) {
          std::function<void()> task;
          {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
            if (tasks_.empty()) return;
            task = std::move(tasks_.front());
            tasks_.pop_front();
          }
          task();
        }
      });
    }
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  std::function<void(std::function<void()>)> Executor() {
    return [this](std::function<void()> task) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        tasks_.push_back(std::move(task));
      }
      cv_.notify_one();
    };
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

struct Read {
  std::string key;
  int value;
  kinlet::SequenceNumber sequence;
};

// Every record of the stream, following lineage (parents before children).
std::vector<Read> ReadAll(TestStream* stream) {
  auto consumer = kinlet::Consumer<std::string>::Create(stream, kinlet::ConsumerOptions{});
  REQUIRE(consumer.ok());
  kinlet::ConsumerBatch<std::string> batch;
  std::vector<Read> out;
  for (int idle = 0; idle < 3;) {
    REQUIRE((*consumer)->Poll(&batch).ok());
    if (batch.records().empty() && !batch.shard_ended) {
      ++idle;
      continue;
    }
    idle = 0;
    for (const auto& r : batch.records()) {
      out.push_back({r.partition_key, std::stoi(r.data), r.sequence_number});
    }
  }
  return out;
}

// Each value exactly once; per key, values in increasing order.
void CheckExactlyOnceInOrder(const std::vector<Read>& reads, int expected) {
  std::set<int> values;
  std::map<std::string, int> last;
  for (const Read& r : reads) {
    CHECK(values.insert(r.value).second);  // no duplicate
    auto [it, first] = last.try_emplace(r.key, r.value);
    if (!first) {
      INFO("key " << r.key << ": " << r.value << " after " << it->second);
      CHECK(r.value > it->second);
      it->second = r.value;
    }
  }
  CHECK(values.size() == static_cast<size_t>(expected));
}

kinlet::ProducerOptions FastRetries() {
  kinlet::ProducerOptions options;
  options.linger = absl::Milliseconds(1);
  options.retry.initial_backoff = absl::Microseconds(50);
  options.retry.max_backoff = absl::Milliseconds(1);
  options.retry.max_attempts = 1000;
  return options;
}

}  // namespace

TEST_CASE("Producer: nothing lost or doubled, per-key order kept, under faults and a reshard",
          "[producer]") {
  const bool use_executor = GENERATE(false, true);
  auto stream = MakeStream(2);
  kinlet::FaultInjection faults;
  faults.seed = 11;
  faults.throttle_put_fraction = 0.3;
  faults.internal_failure_fraction = 0.1;
  REQUIRE(stream->SetFaultInjection(faults).ok());
  Pool pool(3);
  kinlet::ProducerOptions options = FastRetries();
  options.max_records_per_request = 50;
  if (use_executor) options.executor = pool.Executor();
  auto producer = kinlet::MakeProducer(stream.get(), options);
  REQUIRE(producer.ok());

  constexpr int kThreads = 3;
  constexpr int kPerThread = 1500;
  std::vector<std::vector<std::future<Result>>> futures(kThreads);
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int value = t * kPerThread + i;
        // Keys are per thread, so a key's values increase in Put order.
        const std::string key = "t" + std::to_string(t) + "-k" + std::to_string(i % 23);
        futures[t].push_back((*producer)->Put(key, std::to_string(value)));
      }
    });
  }
  // A reshard while the writers run: split the first shard in two.
  auto shards = stream->ListShards();
  REQUIRE(shards.ok());
  const kinlet::HashKeyRange range = shards->front().hash_key_range;
  REQUIRE(stream
              ->SplitShard(
                  shards->front().shard_id,
                  range.starting_hash_key + (range.ending_hash_key - range.starting_hash_key) / 2)
              .ok());
  for (auto& w : writers) w.join();
  REQUIRE((*producer)->Flush().ok());
  std::set<std::string> shards_written;
  for (auto& per_thread : futures) {
    for (auto& f : per_thread) {
      REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
      Result r = f.get();
      REQUIRE(r.ok());
      shards_written.insert(r->shard_id);
    }
  }
  CHECK(shards_written.size() >= 2);
  REQUIRE(stream->SetFaultInjection({}).ok());
  const kinlet::ProducerStats stats = (*producer)->stats();
  CHECK(stats.records_written == kThreads * kPerThread);
  CHECK(stats.records_failed == 0);
  CHECK(stats.entry_retries > 0);  // the faults were met and retried
  if (use_executor) CHECK(stats.max_in_flight_seen <= options.max_in_flight_requests);
  CheckExactlyOnceInOrder(ReadAll(stream.get()), kThreads * kPerThread);
}

TEST_CASE("Producer: requests hold at most 500 records and Flush sends before the linger",
          "[producer]") {
  auto stream = MakeStream(1);
  kinlet::ProducerOptions options;
  options.linger = absl::Hours(1);  // only Flush sends
  auto producer = kinlet::MakeProducer(stream.get(), options);
  REQUIRE(producer.ok());
  std::vector<std::future<Result>> futures;
  for (int i = 0; i < 1200; ++i) {
    futures.push_back((*producer)->Put("key-" + std::to_string(i), std::to_string(i)));
  }
  // Only full requests (500 records) may have left before the linger.
  CHECK((*producer)->stats().requests_sent <= 2);
  REQUIRE((*producer)->Flush().ok());
  for (auto& f : futures) {
    REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    CHECK(f.get().ok());
  }
  CHECK((*producer)->stats().requests_sent == 3);  // 500 + 500 + 200
  CheckExactlyOnceInOrder(ReadAll(stream.get()), 1200);
}

TEST_CASE("Producer: one key's records are never in flight together", "[producer]") {
  auto stream = MakeStream(1);
  kinlet::ProducerOptions options;
  options.linger = absl::Hours(1);
  auto producer = kinlet::MakeProducer(stream.get(), options);
  REQUIRE(producer.ok());
  std::vector<std::future<Result>> futures;
  for (int i = 0; i < 5; ++i) futures.push_back((*producer)->Put("same", std::to_string(i)));
  REQUIRE((*producer)->Flush().ok());
  CHECK((*producer)->stats().requests_sent == 5);  // one record of the key per request
  kinlet::SequenceNumber previous;
  for (auto& f : futures) {
    Result r = f.get();
    REQUIRE(r.ok());
    CHECK(r->sequence_number > previous);
    previous = r->sequence_number;
  }
}

TEST_CASE("Producer: shutdown delivers every record put before it", "[producer]") {
  auto stream = MakeStream(2);
  kinlet::ProducerOptions options;
  options.linger = absl::Hours(1);
  std::vector<std::future<Result>> futures;
  {
    auto producer = kinlet::MakeProducer(stream.get(), options);
    REQUIRE(producer.ok());
    for (int i = 0; i < 700; ++i) {
      futures.push_back((*producer)->Put("key-" + std::to_string(i % 40), std::to_string(i)));
    }
    REQUIRE((*producer)->Shutdown().ok());
    auto late = (*producer)->Put("late", "x");
    Result r = late.get();
    CHECK(kinlet::IsShutdown(r.status()));
  }  // the destructor after Shutdown: idempotent
  for (auto& f : futures) {
    REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    CHECK(f.get().ok());
  }
  CheckExactlyOnceInOrder(ReadAll(stream.get()), 700);

  // Destruction alone also flushes.
  auto other = MakeStream(1);
  std::vector<std::future<Result>> more;
  {
    auto producer = kinlet::MakeProducer(other.get(), options);
    REQUIRE(producer.ok());
    for (int i = 0; i < 50; ++i) more.push_back((*producer)->Put("k", std::to_string(i)));
  }
  for (auto& f : more) CHECK(f.get().ok());
  CheckExactlyOnceInOrder(ReadAll(other.get()), 50);
}

TEST_CASE("Producer: a full buffer fails Put at once in kFail mode", "[producer]") {
  auto stream = MakeStream(1);
  kinlet::ProducerOptions options;
  options.linger = absl::Hours(1);
  options.max_buffered_records = 5;
  options.when_full = kinlet::ProducerOptions::WhenFull::kFail;
  auto producer = kinlet::MakeProducer(stream.get(), options);
  REQUIRE(producer.ok());
  std::vector<std::future<Result>> futures;
  for (int i = 0; i < 5; ++i) futures.push_back((*producer)->Put("k" + std::to_string(i), "v"));
  Result refused = (*producer)->Put("k5", "v").get();
  CHECK(kinlet::IsLimitExceeded(refused.status()));
  CHECK(refused.status().message().find("Producer buffer is full") != std::string_view::npos);
  int called = 0;
  CHECK(kinlet::IsLimitExceeded((*producer)->Put("k6", "v", [&](Result r) {
    CHECK(kinlet::IsLimitExceeded(r.status()));
    ++called;
  })));
  CHECK(called == 1);
  REQUIRE((*producer)->Flush().ok());
  for (auto& f : futures) CHECK(f.get().ok());
  CHECK((*producer)->Put("k7", "v", [](Result) {}).ok());  // room again: queued
}

TEST_CASE("Producer: a full buffer blocks Put in kBlock mode until records are acknowledged",
          "[producer]") {
  auto stream = MakeStream(1);
  kinlet::FaultInjection faults;
  faults.throttle_put_fraction = 1;  // nothing is written: the buffer stays full
  REQUIRE(stream->SetFaultInjection(faults).ok());
  kinlet::ProducerOptions options = FastRetries();
  options.max_buffered_records = 2;
  options.retry.max_attempts = 1000000;  // retried until capacity returns
  auto producer = kinlet::MakeProducer(stream.get(), options);
  REQUIRE(producer.ok());
  auto a = (*producer)->Put("a", "1");
  auto b = (*producer)->Put("b", "2");
  std::atomic<bool> returned{false};
  std::future<Result> c;
  std::thread blocked([&] {
    c = (*producer)->Put("c", "3");
    returned = true;
  });
  // While every put is throttled the buffer cannot drain: the third Put
  // waits. (If Put did not block, `returned` would be true here.)
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(returned.load());
  CHECK((*producer)->stats().entry_retries > 0);
  REQUIRE(stream->SetFaultInjection({}).ok());  // capacity returns
  blocked.join();
  CHECK(returned.load());
  REQUIRE((*producer)->Flush().ok());
  CHECK(a.get().ok());
  CHECK(b.get().ok());
  CHECK(c.get().ok());
  CheckExactlyOnceInOrder(ReadAll(stream.get()), 3);
}

TEST_CASE("Producer: bad records are refused by Put and bad options by Create", "[producer]") {
  auto stream = MakeStream(1);
  auto producer = kinlet::MakeProducer(stream.get());
  REQUIRE(producer.ok());
  CHECK(kinlet::IsValidationError((*producer)->Put("", "x").get().status()));
  CHECK(kinlet::IsValidationError((*producer)->Put(std::string(257, 'k'), "x").get().status()));
  CHECK(kinlet::IsValidationError(
      (*producer)->Put("k", std::string((1 << 20) + 1, 'x')).get().status()));
  CHECK((*producer)->stats().records_failed == 3);
  kinlet::ProducerOptions bad;
  bad.max_records_per_request = 501;
  CHECK(kinlet::IsInvalidArgument(kinlet::MakeProducer(stream.get(), bad).status()));
  CHECK(kinlet::IsInvalidArgument(
      kinlet::Producer<TestStream>::Create(nullptr, kinlet::ProducerOptions{}).status()));
}

TEST_CASE("Producer: a record that keeps failing gets its final error", "[producer]") {
  auto stream = MakeStream(1);
  kinlet::FaultInjection faults;
  faults.throttle_put_fraction = 1;
  REQUIRE(stream->SetFaultInjection(faults).ok());
  kinlet::ProducerOptions options = FastRetries();
  options.retry.max_attempts = 3;
  auto producer = kinlet::MakeProducer(stream.get(), options);
  REQUIRE(producer.ok());
  Result r = (*producer)->Put("k", "v").get();
  CHECK(kinlet::IsProvisionedThroughputExceeded(r.status()));
  CHECK((*producer)->stats().entry_retries == 2);
  CHECK((*producer)->stats().records_failed == 1);
}
