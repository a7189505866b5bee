// Stress tests of zero-copy polling (issue 18), tagged [.stress] (ctest
// "stress", also under ThreadSanitizer):
//  - producers writing PutRecord and cross-shard PutRecords batches while the
//    stream reshards, read by Consumers polling into ConsumerBatchViews that
//    hold their views (and pins) across calls: no loss, no duplicate,
//    per-(producer, key) order;
//  - polling readers holding lent pages against an overwriting writer: a lent
//    record never changes under its reader, and the writer never waits.
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "kinlet/kinlet.hpp"
#include "overwrite_race.hpp"

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kScale = 10;
#else
constexpr int kScale = 1;
#endif

}  // namespace

TEST_CASE(
    "Zero-copy polling consumers lose, duplicate and reorder nothing while the stream reshards",
    "[.stress][zero_copy]") {
  constexpr int kProducers = 4;
  constexpr int kConsumers = 2;
  constexpr uint32_t kKeys = 48;
  const uint64_t per_producer = 60000 / kScale;
  kinlet::StreamOptions options;
  options.name = "view-stress";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 4;
  options.shard_capacity_records = 1 << 17;  // holds everything: nothing may be trimmed
  options.shard_capacity_bytes = 16 << 20;
  options.max_shard_count_updates_per_day = 1000000;
  options.update_duration = absl::ZeroDuration();
  auto stream = *kinlet::Stream<std::string>::Create(options);
  std::vector<std::string> keys;
  for (uint32_t k = 0; k < kKeys; ++k) keys.push_back("key-" + std::to_string(k));

  std::atomic<bool> go{false};
  std::atomic<int> producers_done{0};
  std::vector<std::string> errors(kProducers + kConsumers + 1);
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      std::vector<uint64_t> next(kKeys, 0);
      kinlet::PutRecordsResult result;
      std::vector<std::string> payloads;
      std::vector<kinlet::PutRecordsRequestEntry<std::string>> entries;
      uint64_t written = 0;
      for (uint64_t i = 0; written < per_producer && errors[p].empty(); ++i) {
        // Every third round a batch of up to 40 records over many keys (so
        // over every shard); otherwise one PutRecord.
        const size_t n = i % 3 == 0 ? std::min<uint64_t>(40, per_producer - written) : 1;
        payloads.clear();
        entries.clear();
        std::vector<uint32_t> batch_keys;
        for (size_t j = 0; j < n; ++j) {
          const uint32_t k = static_cast<uint32_t>((i * 7 + j * 5 + p) % kKeys);
          // One record per key per batch keeps per-key order simple to state.
          bool taken = false;
          for (uint32_t b : batch_keys) taken |= b == k;
          if (taken) continue;
          batch_keys.push_back(k);
          payloads.push_back(std::to_string(p) + " " + std::to_string(k) + " " +
                             std::to_string(next[k]));
        }
        for (size_t j = 0; j < batch_keys.size(); ++j) {
          entries.push_back({keys[batch_keys[j]], payloads[j], std::nullopt});
        }
        if (entries.size() == 1) {
          auto put = stream->PutRecord(entries[0].partition_key, entries[0].data);
          if (!put.ok()) {
            errors[p] = put.status().ToString();
            break;
          }
        } else {
          absl::Status s = stream->PutRecords(entries, &result);
          if (!s.ok() || result.failed_record_count != 0) {
            errors[p] = s.ok() ? "a batch entry failed" : s.ToString();
            break;
          }
        }
        for (uint32_t k : batch_keys) ++next[k];
        written += batch_keys.size();
      }
      producers_done.fetch_add(1, std::memory_order_release);
    });
  }
  // Reshards all along: 4 -> 8 -> 4 -> 6 -> ... open shards.
  threads.emplace_back([&] {
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    const int targets[] = {8, 4, 6, 3, 5, 4};
    for (int i = 0; producers_done.load(std::memory_order_acquire) < kProducers; ++i) {
      auto r = stream->UpdateShardCount(targets[i % 6]);
      if (!r.ok()) errors[kProducers + kConsumers] = r.status().ToString();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  // Each consumer reads the whole stream (following lineage) through lent
  // batches, which it keeps (pinned) until its next poll.
  std::vector<std::map<std::pair<int, int>, std::vector<uint64_t>>> seen(kConsumers);
  std::vector<uint64_t> lent_polls(kConsumers, 0);
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      std::string& error = errors[kProducers + c];
      auto consumer =
          kinlet::Consumer<std::string>::Create(stream.get(), kinlet::ConsumerOptions{});
      if (!consumer.ok()) {
        error = consumer.status().ToString();
        return;
      }
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      kinlet::ConsumerBatchView<std::string> batch;
      for (int idle = 0; idle < 200 && error.empty();) {
        const bool finished = producers_done.load(std::memory_order_acquire) == kProducers;
        if (absl::Status s = (*consumer)->Poll(&batch); !s.ok()) {
          error = s.ToString();
          return;
        }
        if (batch.page.lent()) ++lent_polls[c];
        for (const auto& r : batch.records()) {
          std::vector<absl::string_view> f =
              absl::StrSplit(absl::string_view(r.data.data(), r.data.size()), ' ');
          int p = 0, k = 0;
          uint64_t counter = 0;
          if (f.size() != 3 || !absl::SimpleAtoi(f[0], &p) || !absl::SimpleAtoi(f[1], &k) ||
              !absl::SimpleAtoi(f[2], &counter) || r.partition_key != keys[k]) {
            error = "bad record " + std::string(r.data);
            return;
          }
          seen[c][{p, k}].push_back(counter);
        }
        if (batch.records().empty() && batch.trimmed_records_skipped == 0) {
          if (finished) ++idle;
          std::this_thread::yield();
        } else {
          idle = 0;
        }
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  for (const auto& e : errors) CHECK(e == "");
  for (int c = 0; c < kConsumers; ++c) {
    uint64_t total = 0;
    bool ordered = true;
    for (const auto& [pk, counters] : seen[c]) {
      for (size_t i = 0; i < counters.size(); ++i) ordered &= counters[i] == i;
      total += counters.size();
    }
    CHECK(ordered);  // per (producer, key): 0, 1, 2, ...: no loss, no duplicate, in order
    CHECK(total == kProducers * per_producer);
    CHECK(lent_polls[c] > 0);
  }
}

TEST_CASE("Polling readers holding lent pages never see a record change, and never stop the writer",
          "[.stress][zero_copy]") {
  auto stream = kinlet_test::MakeOverwriteRaceStream("view-poll-race");
  constexpr int kReaders = 3;
  const int records = 300000 / kScale;
  kinlet_test::RaceWriter written;
  std::atomic<bool>& done = written.done;
  std::thread writer = kinlet_test::StartRaceWriter(*stream, records, &written);
  std::vector<std::string> errors(kReaders);
  std::vector<uint64_t> viewed(kReaders, 0);
  std::vector<uint64_t> lent(kReaders, 0);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      kinlet::GetRecordsView<std::string> page;
      // Every byte of a record equals its key: checks the views of the last
      // page (still held) against what they said when read.
      std::vector<std::pair<char, size_t>> expect;
      auto check_held = [&] {
        for (size_t i = 0; i < page.records.size(); ++i) {
          const auto& rec = page.records[i];
          if (rec.partition_key[0] != expect[i].first || rec.data.size() != expect[i].second ||
              rec.data.find_first_not_of(expect[i].first) != std::string_view::npos) {
            errors[r] = "changed while lent";
          }
        }
      };
      auto it =
          stream->GetShardIterator("shardId-000000000000", kinlet::IteratorPosition::TrimHorizon());
      std::optional<kinlet::SequenceNumber> last;
      while (errors[r].empty() && it.ok()) {
        const bool final_pass = done.load();
        absl::Status s = stream->GetRecords(*it, 100, &page);
        if (kinlet::IsTrimmedDataAccess(s)) {  // lapped: start again at the oldest
          it = stream->GetShardIterator("shardId-000000000000",
                                        kinlet::IteratorPosition::TrimHorizon());
          last.reset();
          continue;
        }
        if (!s.ok()) {
          errors[r] = s.ToString();
          break;
        }
        expect.clear();
        for (const auto& rec : page.records) {
          const char key = rec.partition_key[0];
          if (rec.data.find_first_not_of(key) != std::string_view::npos) errors[r] = "torn";
          if (last && rec.sequence_number <= *last) errors[r] = "out of order";
          last = rec.sequence_number;
          expect.emplace_back(key, rec.data.size());
        }
        viewed[r] += page.records.size();
        if (page.lent()) ++lent[r];
        // Hold the page while the writer goes on, then check it is unchanged.
        std::this_thread::yield();
        check_held();
        if (final_pass && page.records.empty()) break;
        *it = *page.next_shard_iterator;
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  CHECK(written.put_failures.load() == 0);
  CHECK(written.put_refusals.load() < records);
  INFO(written.put_refusals.load() << " puts refused while pages held their records");
  for (int r = 0; r < kReaders; ++r) {
    CHECK(errors[r] == "");
    CHECK(viewed[r] > 0);
    CHECK(lent[r] > 0);
    INFO("reader " << r << ": " << viewed[r] << " records, " << lent[r] << " lent pages");
  }
}
