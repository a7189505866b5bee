// Stress tests: 4 producers and 4 consumers on 8 shards, about a million
// records; the same with hundreds of live reshards; an overwriting writer
// against readers. Each checks no loss, no duplicate, per-shard order and
// per-(producer, key) order. Tagged [.stress]: run explicitly (ctest
// "stress"), also under ThreadSanitizer.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "kinlet/kinlet.hpp"
#include "overwrite_race.hpp"

namespace {

struct Tagged {  // trivially copyable payload: who wrote it and its number
  uint32_t producer;
  uint32_t key;
  uint64_t counter;  // per (producer, key)
};

// Producer `p`'s part of a stress test: `count` records over `keys`, each
// carrying its per-(producer, key) counter 0, 1, 2, .... A put refused because
// its shard is full wrote nothing and is retried (a reshard or reader frees
// room). `gate()` runs before each put (it may wait). Returns the first other
// error, or "".
template <typename StreamT, typename Gate>
std::string ProduceTagged(StreamT& stream, uint32_t p, uint64_t count,
                          const std::vector<std::string>& keys, std::atomic<uint64_t>& acknowledged,
                          Gate&& gate) {
  std::vector<uint64_t> next(keys.size(), 0);
  for (uint64_t i = 0; i < count; ++i) {
    gate();
    const uint32_t k = static_cast<uint32_t>((i * 7 + p) % keys.size());
    const Tagged t{p, k, next[k]};
    auto put = stream.PutRecord(keys[k], t);
    while (kinlet::IsShardFull(put.status())) {
      std::this_thread::yield();
      put = stream.PutRecord(keys[k], t);
    }
    if (!put.ok()) return put.status().ToString();
    ++next[k];
    acknowledged.fetch_add(1, std::memory_order_relaxed);
  }
  return "";
}

// A stream of Tagged records for the stress tests whose shards hold all they
// are given (nothing trimmed, nothing refused): limits off, 1 KiB records.
std::unique_ptr<kinlet::Stream<Tagged>> MakeTaggedStream(const std::string& name, int shards) {
  kinlet::StreamOptions options;
  options.name = name;
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = shards;
  options.shard_capacity_records = 1 << 17;
  options.shard_capacity_bytes = 8 << 20;
  options.max_record_size_bytes = 1024;
  options.max_shard_count_updates_per_day = 1 << 30;
  return std::move(*kinlet::Stream<Tagged>::Create(options));
}

// Reshard number `r` of a stress test: for even r (or one open shard) split
// open shard r % n at the middle of its range, for odd r merge open shards i
// and i + 1, i = r % (n - 1).
template <typename StreamT>
absl::Status ReshardStep(StreamT& stream, uint64_t r) {
  const auto open = stream.OpenShards();
  if (r % 2 == 0 || open.size() < 2) {
    const auto range = open[r % open.size()]->hash_key_range();
    return stream.SplitShard(
        open[r % open.size()]->shard_id(),
        range.starting_hash_key + (range.ending_hash_key - range.starting_hash_key) / 2);
  }
  const size_t i = r % (open.size() - 1);
  return stream.MergeShards(open[i]->shard_id(), open[i + 1]->shard_id());
}

}  // namespace

TEST_CASE("Concurrent producers and consumers lose, duplicate and reorder nothing",
          "[.stress][stream]") {
  constexpr uint64_t kPerProducer = 250000;  // a million records in all
  constexpr int kProducers = 4;
  constexpr int kConsumers = 4;
  constexpr int kShards = 8;
  constexpr uint32_t kKeys = 64;
  kinlet::StreamOptions options;
  options.name = "stress";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = kShards;
  options.shard_capacity_records = 1 << 18;  // holds everything: nothing may be trimmed
  options.shard_capacity_bytes = 64 << 20;
  auto stream = *kinlet::Stream<Tagged>::Create(options);
  auto shards = stream->OpenShards();

  std::atomic<bool> go{false};
  std::atomic<int> producers_done{0};
  std::vector<std::thread> threads;
  std::vector<std::string> put_errors(kProducers);
  std::vector<std::string> keys;
  for (uint32_t k = 0; k < kKeys; ++k) keys.push_back("key-" + std::to_string(k));

  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      std::atomic<uint64_t> acknowledged{0};
      put_errors[p] =
          ProduceTagged(*stream, static_cast<uint32_t>(p), kPerProducer, keys, acknowledged, [] {});
      producers_done.fetch_add(1, std::memory_order_release);
    });
  }

  // Consumer c reads shards c and c + 4; records what it saw.
  std::vector<std::vector<Tagged>> seen(kShards);
  std::vector<std::string> errors(kConsumers);
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      kinlet::GetRecordsResult<Tagged> page;
      int mine[2] = {c, c + kConsumers};
      kinlet::ShardIterator its[2];
      kinlet::SequenceNumber last[2];
      bool any[2] = {false, false};
      for (int j = 0; j < 2; ++j) {
        its[j] = *shards[mine[j]]->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
      }
      for (;;) {
        const bool finished = producers_done.load(std::memory_order_acquire) == kProducers;
        size_t got = 0;
        for (int j = 0; j < 2; ++j) {
          absl::Status s = shards[mine[j]]->GetRecords(its[j], 1000, &page);
          if (!s.ok()) {
            errors[c] = s.ToString();
            return;
          }
          for (const auto& r : page.records) {
            if (any[j] && !(r.sequence_number > last[j])) errors[c] = "sequence went backwards";
            last[j] = r.sequence_number;
            any[j] = true;
            seen[mine[j]].push_back(r.data);
          }
          got += page.records.size();
          its[j] = *page.next_shard_iterator;
        }
        if (finished && got == 0) return;
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  for (const auto& e : errors) CHECK(e.empty());
  for (const auto& e : put_errors) CHECK(e.empty());

  // Per (producer, key): counters arrive 0, 1, 2, ... with no gap and no repeat,
  // and a key's records all sit in one shard.
  std::vector<std::vector<uint64_t>> expect(kProducers, std::vector<uint64_t>(kKeys, 0));
  std::vector<int> shard_of_key(kKeys, -1);
  uint64_t total = 0;
  bool ordered = true;
  bool one_shard_per_key = true;
  for (int s = 0; s < kShards; ++s) {
    for (const Tagged& t : seen[s]) {
      ++total;
      if (t.counter != expect[t.producer][t.key]) ordered = false;
      expect[t.producer][t.key] = t.counter + 1;
      if (shard_of_key[t.key] == -1) shard_of_key[t.key] = s;
      if (shard_of_key[t.key] != s) one_shard_per_key = false;
    }
  }
  CHECK(total == kProducers * kPerProducer);
  CHECK(ordered);
  CHECK(one_shard_per_key);
  uint64_t expected_total = 0;
  for (auto& per_key : expect) {
    for (uint64_t n : per_key) expected_total += n;
  }
  CHECK(expected_total == kProducers * kPerProducer);
}

TEST_CASE("Readers racing an overwriting writer never see torn records", "[.stress][stream]") {
  kinlet::StreamOptions options;
  options.name = "overwrite-race";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_records = 64;
  options.shard_capacity_bytes = 64 << 10;
  options.max_record_size_bytes = 4096;
  options.full_policy = kinlet::FullPolicy::kOverwrite;
  auto stream = *kinlet::Stream<std::string>::Create(options);
  auto shard = stream->OpenShards()[0];
  std::atomic<bool> done{false};
  std::atomic<int> put_failures{0};
#if defined(__SANITIZE_THREAD__)
  constexpr int kRecords = 20000;
#else
  constexpr int kRecords = 200000;
#endif
  std::thread writer([&] {
    std::string data;
    for (int i = 0; i < kRecords; ++i) {
      const char c = static_cast<char>('a' + i % 26);
      data.assign(static_cast<size_t>(16 + (i * 37) % 900), c);
      if (!stream->PutRecord(std::string(1, c), data).ok()) put_failures.fetch_add(1);
    }
    done.store(true);
  });
  uint64_t records = 0;
  uint64_t trimmed = 0;
  bool torn = false;
  // Every byte of a record's payload equals its key: any mix is a torn read.
  auto check = [&](const kinlet::GetRecordsResult<std::string>& read) {
    for (const auto& r : read.records) {
      ++records;
      if (r.data.find_first_not_of(r.partition_key[0]) != std::string::npos) torn = true;
    }
  };
  kinlet::GetRecordsResult<std::string> page;
  auto it = *shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
  while (!done.load()) {
    absl::Status s = shard->GetRecords(it, 100, &page);
    if (kinlet::IsTrimmedDataAccess(s)) {
      ++trimmed;
      it = *shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
      continue;
    }
    REQUIRE(s.ok());
    check(page);
    it = *page.next_shard_iterator;
  }
  writer.join();
  // The reader may have been lapped on every read while the writer ran; what
  // the ring holds now is stable, so read it too: the check is never vacuous.
  it = *shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
  REQUIRE(shard->GetRecords(it, 100, &page).ok());
  check(page);
  CHECK(put_failures.load() == 0);
  CHECK_FALSE(torn);
  CHECK(records > 0);
  INFO("trimmed reads: " << trimmed);
}

TEST_CASE(
    "Live resharding under full-speed producers and consumers loses, duplicates and "
    "reorders nothing",
    "[.stress][resharding]") {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr uint64_t kPerProducer = 25000;
#else
  constexpr uint64_t kPerProducer = 100000;
#endif
  constexpr int kProducers = 4;
  constexpr int kConsumers = 2;
  constexpr uint32_t kKeys = 64;
  constexpr uint64_t kTotal = kProducers * kPerProducer;
  constexpr uint64_t kMinReshards = 300;
  // Producers never run more than kStep records ahead of the resharder, so
  // the reshards spread over the whole run, whatever the machine's speed.
  constexpr uint64_t kStep = kTotal / (kMinReshards + 100);
  kinlet::StreamOptions options;
  options.name = "reshard-stress";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 4;
  options.shard_capacity_records = 1 << 12;  // a full shard makes its producer wait for a reshard
  options.shard_capacity_bytes = 1 << 20;
  options.max_record_size_bytes = 1024;
  options.max_shard_count = 100000;
  options.max_shard_count_updates_per_day = 1 << 30;
  auto stream = *kinlet::Stream<Tagged>::Create(options);
  using StreamConsumer = kinlet::Consumer<Tagged>;

  std::atomic<bool> go{false};
  std::atomic<int> producers_done{0};
  std::atomic<uint64_t> acknowledged{0};
  std::atomic<uint64_t> reshards{0};
  std::atomic<bool> failed{false};  // the resharder stopped on an error
  std::vector<std::thread> threads;
  std::vector<std::string> put_errors(kProducers);
  std::vector<std::string> keys;
  for (uint32_t k = 0; k < kKeys; ++k) keys.push_back("key-" + std::to_string(k));

  // Producer 0 writes with PutRecords, 50 entries a call, so that batches
  // meet closing shards mid-way and re-route their remaining entries.
  threads.emplace_back([&] {
    constexpr uint64_t kBatch = 50;
    std::vector<uint64_t> next(kKeys, 0);
    std::vector<Tagged> data(kBatch);
    std::vector<kinlet::PutRecordsRequestEntry<Tagged>> entries;
    kinlet::PutRecordsResult result;
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    for (uint64_t i = 0; i < kPerProducer; i += kBatch) {
      while (acknowledged.load(std::memory_order_relaxed) > (reshards.load() + 1) * kStep &&
             !failed.load()) {
        std::this_thread::yield();
      }
      entries.clear();
      for (uint64_t j = 0; j < kBatch; ++j) {
        const uint32_t k = static_cast<uint32_t>(((i + j) * 7) % kKeys);
        data[j] = Tagged{0, k, next[k]++};
        entries.push_back({keys[k], data[j], std::nullopt});
      }
      absl::Status s = stream->PutRecords(entries, &result);
      // Entries of a full shard failed alone: retry those (in request order,
      // which keeps each key's order: a key's entries all go to one shard).
      while (s.ok() && result.failed_record_count > 0) {
        std::vector<kinlet::PutRecordsRequestEntry<Tagged>> retry;
        for (size_t e = 0; e < entries.size(); ++e) {
          if (result.records[e].ok()) continue;
          if (result.records[e].error_code != kinlet::ErrorCode::kShardFull) {
            s = absl::InternalError(result.records[e].error_message);
          }
          retry.push_back(entries[e]);
        }
        if (!s.ok()) break;
        std::this_thread::yield();
        entries = retry;
        s = stream->PutRecords(entries, &result);
      }
      if (!s.ok()) {
        put_errors[0] = s.ToString();
        break;
      }
      acknowledged.fetch_add(kBatch, std::memory_order_relaxed);
    }
    producers_done.fetch_add(1, std::memory_order_release);
  });
  for (int p = 1; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      put_errors[p] =
          ProduceTagged(*stream, static_cast<uint32_t>(p), kPerProducer, keys, acknowledged, [&] {
            while (acknowledged.load(std::memory_order_relaxed) > (reshards.load() + 1) * kStep &&
                   !failed.load()) {
              std::this_thread::yield();
            }
          });
      producers_done.fetch_add(1, std::memory_order_release);
    });
  }

  // Each consumer reads the whole stream, following lineage, and checks as it
  // goes: per (producer, key) the counters arrive 0, 1, 2, ... across any
  // number of reshards; per shard the sequence numbers increase.
  std::vector<std::string> errors(kConsumers);
  std::vector<uint64_t> consumed(kConsumers, 0);
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      auto consumer = StreamConsumer::Create(stream.get(), {});
      if (!consumer.ok()) {
        errors[c] = consumer.status().ToString();
        return;
      }
      std::vector<std::vector<uint64_t>> expect(kProducers, std::vector<uint64_t>(kKeys, 0));
      std::map<std::string, kinlet::SequenceNumber> last;
      kinlet::ConsumerBatch<Tagged> batch;
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(600);
      while (consumed[c] < kTotal && std::chrono::steady_clock::now() < deadline) {
        absl::Status s = (*consumer)->Poll(&batch);
        if (!s.ok()) {
          errors[c] = s.ToString();
          return;
        }
        if (batch.records().empty()) {
          std::this_thread::yield();
          continue;
        }
        auto [at, fresh] = last.try_emplace(std::string(batch.shard_id));
        for (const auto& r : batch.records()) {
          const Tagged& t = r.data;
          if (!fresh && !(r.sequence_number > at->second)) {
            errors[c] = "sequence went backwards in " + at->first;
            return;
          }
          fresh = false;
          at->second = r.sequence_number;
          if (t.counter != expect[t.producer][t.key]) {
            errors[c] = "producer " + std::to_string(t.producer) + " key " + std::to_string(t.key) +
                        ": expected " + std::to_string(expect[t.producer][t.key]) + ", got " +
                        std::to_string(t.counter) + " in " + at->first;
            return;
          }
          ++expect[t.producer][t.key];
          ++consumed[c];
        }
      }
    });
  }

  // The resharder: splits, merges and uniform rescalings, paced by the
  // producers' progress so that hundreds of reshards spread over the run.
  std::string reshard_error;
  std::thread resharder([&] {
    std::mt19937_64 rng(20261126);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    auto waited_since = std::chrono::steady_clock::now();
    while (producers_done.load(std::memory_order_acquire) < kProducers) {
      // One reshard per kStep acknowledged records, or after 2 ms without
      // them (producers wait on a full shard until a reshard relieves it).
      if (acknowledged.load(std::memory_order_relaxed) < reshards.load() * kStep &&
          std::chrono::steady_clock::now() - waited_since < std::chrono::milliseconds(2)) {
        std::this_thread::yield();
        continue;
      }
      waited_since = std::chrono::steady_clock::now();
      auto open = stream->OpenShards();
      const int n = static_cast<int>(open.size());
      absl::Status s;
      switch (rng() % 3) {
        case 0: {  // split a random shard at its middle
          auto shard = open[rng() % open.size()];
          const auto r = shard->hash_key_range();
          if (r.ending_hash_key - r.starting_hash_key < 4 || n >= 12) continue;
          s = stream->SplitShard(
              shard->shard_id(),
              r.starting_hash_key + (r.ending_hash_key - r.starting_hash_key) / 2);
          break;
        }
        case 1: {  // merge a random adjacent pair
          if (n < 2) continue;
          const size_t i = rng() % (open.size() - 1);
          s = rng() % 2 ? stream->MergeShards(open[i]->shard_id(), open[i + 1]->shard_id())
                        : stream->MergeShards(open[i + 1]->shard_id(), open[i]->shard_id());
          break;
        }
        default: {  // UNIFORM_SCALING within AWS's bounds
          const int low = (n + 1) / 2;
          const int high = std::min(2 * n, 8);
          if (high < low) continue;
          s = stream->UpdateShardCount(low + static_cast<int>(rng() % (high - low + 1))).status();
          break;
        }
      }
      if (!s.ok()) {
        reshard_error = s.ToString();
        failed.store(true);
        return;
      }
      reshards.fetch_add(1);
    }
  });

  go.store(true, std::memory_order_release);
  resharder.join();
  for (auto& t : threads) t.join();
  CHECK(reshard_error == "");
  for (const auto& e : put_errors) CHECK(e == "");
  for (const auto& e : errors) CHECK(e == "");
  CHECK(acknowledged.load() == kTotal);
  for (uint64_t n : consumed) CHECK(n == kTotal);  // every record, once, in order
  CHECK(reshards.load() >= kMinReshards);
  WARN("reshards: " << reshards.load() << ", shards created: " << stream->AllShards().size());
  // The open shards still cover the hash key space exactly.
  kinlet::HashKey next = 0;
  for (const auto& shard : stream->OpenShards()) {
    CHECK(shard->hash_key_range().starting_hash_key == next);
    next = shard->hash_key_range().ending_hash_key + 1;
  }
  CHECK(next == 0);
}

TEST_CASE("Sixteen fan-out consumers see every record of a resharding stream once, in order",
          "[.stress][fan_out]") {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr uint64_t kPerProducer = 5000;
#else
  constexpr uint64_t kPerProducer = 50000;
#endif
  constexpr int kProducers = 4;
  constexpr int kConsumerThreads = 4;
  constexpr int kConsumersPerThread = 4;  // 16 registered consumers
  constexpr uint32_t kKeys = 64;
  constexpr uint64_t kTotal = kProducers * kPerProducer;
  constexpr uint64_t kReshards = 40;
  constexpr uint64_t kStep = kTotal / (kReshards + 10);
  auto stream = MakeTaggedStream("fan-out-stress", 8);
  for (int c = 0; c < kConsumerThreads * kConsumersPerThread; ++c) {
    REQUIRE(stream->RegisterStreamConsumer("consumer-" + std::to_string(c)).ok());
  }

  std::atomic<bool> go{false};
  std::atomic<int> producers_done{0};
  std::atomic<uint64_t> acknowledged{0};
  std::atomic<uint64_t> reshards{0};
  std::atomic<bool> resharder_done{false};
  std::vector<std::thread> threads;
  std::vector<std::string> put_errors(kProducers);
  std::vector<std::string> keys;
  for (uint32_t k = 0; k < kKeys; ++k) keys.push_back("key-" + std::to_string(k));
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      put_errors[p] =
          ProduceTagged(*stream, static_cast<uint32_t>(p), kPerProducer, keys, acknowledged, [&] {
            while (acknowledged.load(std::memory_order_relaxed) > (reshards.load() + 1) * kStep &&
                   !resharder_done.load()) {
              std::this_thread::yield();
            }
          });
      producers_done.fetch_add(1, std::memory_order_release);
    });
  }
  std::string reshard_error;
  threads.emplace_back([&] {
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    for (uint64_t r = 0; r < kReshards; ++r) {
      while (acknowledged.load(std::memory_order_relaxed) < r * kStep &&
             producers_done.load() < kProducers) {
        std::this_thread::yield();
      }
      const absl::Status s = ReshardStep(*stream, r);
      if (!s.ok()) {
        reshard_error = s.ToString();
        break;
      }
      reshards.fetch_add(1);
    }
    resharder_done.store(true);
  });

  // Each thread drives four fan-out consumers, each of the whole stream.
  std::vector<std::string> errors(kConsumerThreads * kConsumersPerThread);
  std::vector<uint64_t> consumed(errors.size(), 0);
  for (int t = 0; t < kConsumerThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::unique_ptr<kinlet::Consumer<Tagged>>> consumers;
      std::vector<std::vector<std::vector<uint64_t>>> expect;
      for (int j = 0; j < kConsumersPerThread; ++j) {
        kinlet::ConsumerOptions o;
        o.fan_out_consumer = "consumer-" + std::to_string(t * kConsumersPerThread + j);
        auto consumer = kinlet::Consumer<Tagged>::Create(stream.get(), o);
        if (!consumer.ok()) {
          errors[static_cast<size_t>(t * kConsumersPerThread + j)] = consumer.status().ToString();
          return;
        }
        consumers.push_back(*std::move(consumer));
        expect.emplace_back(kProducers, std::vector<uint64_t>(kKeys, 0));
      }
      kinlet::ConsumerBatch<Tagged> batch;
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(600);
      bool all_done = false;
      while (!all_done && std::chrono::steady_clock::now() < deadline) {
        all_done = true;
        for (int j = 0; j < kConsumersPerThread; ++j) {
          const size_t id = static_cast<size_t>(t * kConsumersPerThread + j);
          if (consumed[id] == kTotal || !errors[id].empty()) continue;
          all_done = false;
          absl::Status s = consumers[static_cast<size_t>(j)]->Poll(&batch);
          if (!s.ok()) {
            errors[id] = s.ToString();
            continue;
          }
          for (const auto& r : batch.records()) {
            const Tagged& d = r.data;
            if (d.counter != expect[static_cast<size_t>(j)][d.producer][d.key]) {
              errors[id] = "consumer " + std::to_string(id) + ": producer " +
                           std::to_string(d.producer) + " key " + std::to_string(d.key) +
                           " expected " +
                           std::to_string(expect[static_cast<size_t>(j)][d.producer][d.key]) +
                           " got " + std::to_string(d.counter);
              break;
            }
            ++expect[static_cast<size_t>(j)][d.producer][d.key];
            ++consumed[id];
          }
        }
        if (batch.records().empty()) std::this_thread::yield();
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  CHECK(reshard_error == "");
  CHECK(reshards.load() == kReshards);
  for (const auto& e : put_errors) CHECK(e == "");
  for (const auto& e : errors) CHECK(e == "");
  for (uint64_t n : consumed) CHECK(n == kTotal);  // every record, once, in per-key order
}

TEST_CASE("Zero-copy readers racing an overwriting writer never see a record change under them",
          "[.stress][fan_out][zero_copy]") {
  auto stream = kinlet_test::MakeOverwriteRaceStream("view-race");
  constexpr int kReaders = 3;
  for (int r = 0; r < kReaders; ++r) {
    REQUIRE(stream->RegisterStreamConsumer("viewer-" + std::to_string(r)).ok());
  }
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr int kRecords = 20000;
#else
  constexpr int kRecords = 300000;
#endif
  // A put that needs the memory of records a visitor is viewing is refused
  // (ShardFull), never held: the writer does not wait for readers.
  kinlet_test::RaceWriter written;
  std::atomic<bool>& done = written.done;
  std::thread writer = kinlet_test::StartRaceWriter(*stream, kRecords, &written);
  std::vector<std::string> errors(kReaders);
  std::vector<uint64_t> viewed(kReaders, 0);
  std::vector<uint64_t> copied(kReaders, 0);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      const std::string name = "viewer-" + std::to_string(r);
      std::optional<kinlet::SequenceNumber> last;
      auto visit = [&](const kinlet::SubscribeToShardEventView<std::string>& e) {
        for (const auto& rec : e.records) {
          // Every byte equals the key; a later record in its place would differ
          // in length or byte, so check before and after looking at the rest.
          const char key = rec.partition_key[0];
          const size_t size = rec.data.size();
          if (rec.data.find_first_not_of(key) != std::string_view::npos) errors[r] = "torn";
          if (last && rec.sequence_number <= *last) errors[r] = "out of order";
          last = rec.sequence_number;
          std::this_thread::yield();  // give the writer time to lap a careless reader
          if (rec.partition_key[0] != key || rec.data.size() != size ||
              rec.data.find_first_not_of(key) != std::string_view::npos) {
            errors[r] = "changed while lent";
          }
          ++viewed[r];
        }
      };
      // While the writer runs; then once more over what the ring holds at the
      // end (a slow reader may have been lapped every time: never vacuous).
      for (bool final_pass = false; errors[r].empty();) {
        final_pass = done.load();
        auto sub = stream->SubscribeToShard(name, "shardId-000000000000",
                                            kinlet::IteratorPosition::TrimHorizon());
        if (!sub.ok()) {
          errors[r] = sub.status().ToString();
          return;
        }
        last.reset();
        absl::Status s;
        for (uint64_t before = ~uint64_t{0}; s.ok() && errors[r].empty();) {
          if (final_pass && before == viewed[r]) break;  // drained: an empty event
          if (!final_pass && done.load()) break;
          before = viewed[r];
          s = (*sub)->NextView(visit, absl::Milliseconds(1));
        }
        copied[r] += (*sub)->stats().copied_records;
        if (!s.ok() && !kinlet::IsTrimmedDataAccess(s)) errors[r] = s.ToString();
        if (final_pass && s.ok()) break;
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  CHECK(written.put_failures.load() == 0);
  CHECK(written.put_refusals.load() < kRecords);
  INFO(written.put_refusals.load() << " puts refused while visitors held their records");
  for (int r = 0; r < kReaders; ++r) {
    CHECK(errors[r] == "");
    CHECK(viewed[r] > 0);
    INFO("reader " << r << ": " << viewed[r] << " records, " << copied[r] << " copied");
  }
}

namespace {

// Records what a stress test's consumer-group processors saw, from any thread:
// per (producer, key), every counter delivered, in delivery order.
struct GroupLedger {
  std::mutex mu;
  std::map<std::pair<uint32_t, uint32_t>, std::vector<uint64_t>> delivered;
  std::vector<std::string> errors;
};

class LedgerProcessor : public kinlet::RecordProcessor<Tagged> {
 public:
  explicit LedgerProcessor(GroupLedger* ledger) : ledger_(ledger) {}
  void ProcessRecords(const kinlet::ProcessRecordsInput<Tagged>& input,
                      kinlet::Checkpointer& checkpointer) override {
    {
      std::lock_guard<std::mutex> lock(ledger_->mu);
      for (const auto& r : input.records) {
        ledger_->delivered[{r.data.producer, r.data.key}].push_back(r.data.counter);
      }
    }
    Checked(checkpointer.Checkpoint());
  }
  void ShardEnded(kinlet::Checkpointer& checkpointer) override {
    Checked(checkpointer.Checkpoint());
  }

 private:
  void Checked(const absl::Status& s) {
    // A lease stolen mid-batch refuses the checkpoint: expected, and told.
    if (s.ok() || kinlet::IsShutdown(s)) return;
    std::lock_guard<std::mutex> lock(ledger_->mu);
    ledger_->errors.push_back(s.ToString());
  }
  GroupLedger* ledger_;
};

}  // namespace

TEST_CASE("Three consumer-group workers on their own threads share a resharding stream",
          "[.stress][consumer_group]") {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr uint64_t kPerProducer = 4000;
#else
  constexpr uint64_t kPerProducer = 40000;
#endif
  constexpr int kProducers = 2;
  constexpr uint32_t kKeys = 32;
  constexpr uint64_t kReshards = 20;
  auto stream = MakeTaggedStream("group-stress", 4);
  kinlet::InMemoryCheckpointStore store;
  GroupLedger ledger;
  std::vector<std::unique_ptr<kinlet::ConsumerGroup<Tagged>>> workers;
  for (int w = 0; w < 3; ++w) {
    kinlet::ConsumerGroupOptions o;
    o.application_name = "stress";
    o.worker_id = "worker-" + std::to_string(w);
    o.max_records = 500;
    o.idle_time_between_reads = absl::Microseconds(200);
    auto worker = kinlet::ConsumerGroup<Tagged>::Create(
        stream.get(), &store, [&ledger] { return std::make_unique<LedgerProcessor>(&ledger); }, o);
    REQUIRE(worker.ok());
    workers.push_back(*std::move(worker));
  }
  for (auto& w : workers) w->Start();

  std::atomic<uint64_t> acknowledged{0};
  std::vector<std::string> put_errors(kProducers);
  std::vector<std::thread> producers;
  const std::vector<std::string> keys = [&] {
    std::vector<std::string> k;
    for (uint32_t i = 0; i < kKeys; ++i) k.push_back("key-" + std::to_string(i));
    return k;
  }();
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      put_errors[p] =
          ProduceTagged(*stream, static_cast<uint32_t>(p), kPerProducer, keys, acknowledged, [] {});
    });
  }
  std::string reshard_error;
  for (uint64_t r = 0; r < kReshards && reshard_error.empty(); ++r) {
    while (acknowledged.load() < (r + 1) * kProducers * kPerProducer / (kReshards + 2)) {
      std::this_thread::yield();
    }
    if (absl::Status s = ReshardStep(*stream, r); !s.ok()) reshard_error = s.ToString();
  }
  for (auto& t : producers) t.join();
  const uint64_t total = kProducers * kPerProducer;
  // Wait until every (producer, key) has been seen up to its last counter.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  auto complete = [&] {
    std::lock_guard<std::mutex> lock(ledger.mu);
    uint64_t distinct = 0;
    for (const auto& [id, counters] : ledger.delivered) {
      distinct += *std::max_element(counters.begin(), counters.end()) + 1;
    }
    return distinct == total;
  };
  while (!complete() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool all_seen = complete();
  for (auto& w : workers) CHECK(w->RequestShutdown().get().ok());
  CHECK(reshard_error == "");
  for (const auto& e : put_errors) CHECK(e == "");
  std::lock_guard<std::mutex> lock(ledger.mu);
  CHECK(ledger.errors.empty());
  // At-least-once and in order per key: a delivery may repeat earlier ones
  // (a lease moved and its new owner resumed at the checkpoint), never skip.
  bool gap = false;
  uint64_t delivered = 0;
  for (const auto& [id, counters] : ledger.delivered) {
    uint64_t next = 0;
    for (uint64_t c : counters) {
      if (c > next) gap = true;
      next = std::max(next, c + 1);
    }
    delivered += counters.size();
  }
  CHECK_FALSE(gap);
  CHECK(all_seen);
  uint64_t stolen = 0;
  for (auto& w : workers) stolen += w->stats().leases_stolen;
  INFO("delivered " << delivered << " for " << total << " records; leases stolen " << stolen);
  CHECK(delivered >= total);
}

namespace {

// A history of a concurrent run, Jepsen style: every operation's invocation
// and completion on one logical clock, every observation with its time.
struct History {
  std::atomic<uint64_t> clock{1};
  uint64_t Tick() { return clock.fetch_add(1, std::memory_order_acq_rel); }

  struct Put {
    uint32_t producer, key;
    uint64_t counter;
    uint64_t invoked, completed;  // logical times
    bool ok;
  };
  struct Seen {
    uint32_t producer, key;
    uint64_t counter;
    std::string shard;
    kinlet::SequenceNumber sequence;
    uint64_t at;  // logical time of the read that returned it
  };
  std::mutex mu;
  std::vector<Put> puts;
  std::map<std::string, std::vector<Seen>> seen;  // reader -> what it saw, in order
};

// Checks a history; returns the first violation, or "".
std::string CheckHistory(History& h, const std::vector<std::string>& full_readers) {
  std::map<std::tuple<uint32_t, uint32_t, uint64_t>, const History::Put*> acknowledged;
  for (const auto& p : h.puts) {
    if (p.ok) acknowledged[{p.producer, p.key, p.counter}] = &p;
  }
  for (const std::string& reader : full_readers) {
    std::map<std::tuple<uint32_t, uint32_t, uint64_t>, int> times;
    std::map<std::string, kinlet::SequenceNumber> last_in_shard;
    std::map<std::pair<uint32_t, uint32_t>, uint64_t> next_counter;
    for (const auto& s : h.seen[reader]) {
      const auto id = std::make_tuple(s.producer, s.key, s.counter);
      auto put = acknowledged.find(id);
      // Visible only after its put began (a reader may see it before the put
      // returns: publication precedes the return).
      if (put != acknowledged.end() && s.at < put->second->invoked) {
        return reader + " saw a record before its put began";
      }
      if (++times[id] > 1) return reader + " saw a record twice";
      auto last = last_in_shard.find(s.shard);
      if (last != last_in_shard.end() && !(last->second < s.sequence)) {
        return reader + " saw " + s.shard + " out of sequence order";
      }
      last_in_shard[s.shard] = s.sequence;
      uint64_t& next = next_counter[{s.producer, s.key}];
      if (s.counter != next) {
        return reader + " broke per-key order: expected " + std::to_string(next) + ", got " +
               std::to_string(s.counter);
      }
      ++next;
    }
    for (const auto& [id, put] : acknowledged) {
      if (times[id] != 1) return reader + " missed an acknowledged record";
    }
  }
  return "";
}

}  // namespace

TEST_CASE("A recorded history of concurrent puts, reads, subscriptions and reshards checks out",
          "[.stress][history]") {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr uint64_t kPerProducer = 3000;
#else
  constexpr uint64_t kPerProducer = 30000;
#endif
  constexpr int kProducers = 2;
  constexpr uint32_t kKeys = 16;
  auto stream = MakeTaggedStream("history", 3);
  REQUIRE(stream->RegisterStreamConsumer("subscriber").ok());
  History history;
  // The resharder does reshard r once (r + 1) / 13 of the puts are in, and the
  // producers wait for it, so reshards land mid-stream on any machine.
  constexpr int kReshards = 12;
  std::atomic<int> reshards{0};
  std::atomic<uint64_t> puts_done{0};
  std::atomic<int> producing{kProducers};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      std::vector<uint64_t> next(kKeys, 0);
      std::vector<History::Put> mine;
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        // Wait while more than one reshard behind the puts.
        while (puts_done.load() > (static_cast<uint64_t>(reshards.load()) + 2) * kProducers *
                                      kPerProducer / (kReshards + 1) &&
               reshards.load() < kReshards) {
          std::this_thread::yield();
        }
        const uint32_t k = static_cast<uint32_t>((i * 5 + static_cast<uint64_t>(p)) % kKeys);
        History::Put put{static_cast<uint32_t>(p), k, next[k], history.Tick(), 0, false};
        auto result = stream->PutRecord("key-" + std::to_string(k),
                                        Tagged{put.producer, put.key, put.counter});
        put.completed = history.Tick();
        put.ok = result.ok();
        if (put.ok) ++next[k];
        mine.push_back(put);
        puts_done.fetch_add(1);
      }
      std::lock_guard<std::mutex> lock(history.mu);
      history.puts.insert(history.puts.end(), mine.begin(), mine.end());
      producing.fetch_sub(1);
    });
  }
  threads.emplace_back([&] {  // the resharder
    for (int r = 0; r < kReshards; ++r) {
      while (puts_done.load() < (r + 1) * kProducers * kPerProducer / (kReshards + 1)) {
        std::this_thread::yield();
      }
      if (ReshardStep(*stream, static_cast<uint64_t>(r)).ok()) reshards.fetch_add(1);
    }
  });
  // Two full readers: a polling Consumer and a fan-out Consumer (subscriptions).
  for (const std::string reader : {"poller", "subscriber"}) {
    threads.emplace_back([&, reader] {
      kinlet::ConsumerOptions o;
      if (reader == "subscriber") o.fan_out_consumer = "subscriber";
      auto consumer = *kinlet::Consumer<Tagged>::Create(stream.get(), o);
      kinlet::ConsumerBatch<Tagged> batch;
      std::vector<History::Seen> seen;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
      int idle_after_done = 0;
      while (idle_after_done < 50 && std::chrono::steady_clock::now() < deadline) {
        const bool done = producing.load() == 0;
        if (!consumer->Poll(&batch).ok()) break;
        const uint64_t at = history.Tick();
        for (const auto& r : batch.records()) {
          seen.push_back({r.data.producer, r.data.key, r.data.counter, std::string(batch.shard_id),
                          r.sequence_number, at});
        }
        if (batch.records().empty()) {
          idle_after_done += done ? 1 : 0;
          std::this_thread::yield();
        } else {
          idle_after_done = 0;
        }
      }
      std::lock_guard<std::mutex> lock(history.mu);
      history.seen[reader] = std::move(seen);
    });
  }
  for (auto& t : threads) t.join();
  size_t acknowledged = 0;
  for (const auto& p : history.puts) acknowledged += p.ok;
  CHECK(acknowledged == kProducers * kPerProducer);
  CHECK(reshards.load() == kReshards);
  CHECK(CheckHistory(history, {"poller", "subscriber"}) == "");
  // The checker is not vacuous: a history with one observation dropped fails.
  REQUIRE(!history.seen["poller"].empty());
  history.seen["poller"].erase(history.seen["poller"].begin() +
                               static_cast<std::ptrdiff_t>(history.seen["poller"].size() / 2));
  CHECK(CheckHistory(history, {"poller"}) != "");
}
