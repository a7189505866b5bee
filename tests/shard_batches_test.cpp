// Tests of kinlet/detail/shard_batches.hpp (PutRecords's O(n) grouping by
// shard, issue 18) and of what PutRecords makes of it: one writer-lock
// acquisition per shard, request order per shard, whatever the shard count.
#include "kinlet/detail/shard_batches.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kinlet/stream.hpp"

using kinlet::detail::ShardBatches;

TEST_CASE("ShardBatches groups entries by shard, in request order, first-seen shard first",
          "[put_records][shard_batches]") {
  std::mt19937_64 rng(42);
  ShardBatches batches;  // reused across rounds, as PutRecordsResult does
  for (int round = 0; round < 200; ++round) {
    const size_t n = rng() % 600;
    const uint32_t shard_count = 1 + static_cast<uint32_t>(rng() % (round % 2 ? 4 : 5000));
    std::vector<uint32_t> shard(n);
    // Small indices (mapped directly) in two rounds of three; large ones
    // (through the hash table) in the third.
    const uint32_t spread = round % 3 == 2 ? 2654435761u : 1u;
    for (auto& s : shard) {
      s = rng() % 7 == 0 ? ShardBatches::kSkip
                         : static_cast<uint32_t>(rng() % shard_count) * spread;
    }
    const size_t groups = batches.Group(shard);
    // The expected grouping, built the slow way.
    std::vector<uint32_t> first_seen;
    std::map<uint32_t, std::vector<uint32_t>> want;
    for (size_t i = 0; i < n; ++i) {
      if (shard[i] == ShardBatches::kSkip) continue;
      if (want[shard[i]].empty()) first_seen.push_back(shard[i]);
      want[shard[i]].push_back(static_cast<uint32_t>(i));
    }
    REQUIRE(groups == first_seen.size());
    for (size_t g = 0; g < groups; ++g) {
      CHECK(batches.shard_of(g) == first_seen[g]);
      const auto entries = batches.entries(g);
      CHECK(std::vector<uint32_t>(entries.begin(), entries.end()) == want[first_seen[g]]);
    }
  }
  CHECK(batches.Group({}) == 0);
  const std::vector<uint32_t> skipped(10, ShardBatches::kSkip);
  CHECK(batches.Group(skipped) == 0);
}

namespace {

// A writer lock that counts its acquisitions (PutRecords must take each
// shard's lock once per batch).
class ABSL_LOCKABLE CountingLock {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    ++acquisitions;
  }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    if (!mu_.TryLock()) return false;
    ++acquisitions;
    return true;
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.Unlock(); }
  static inline std::atomic<uint64_t> acquisitions{0};

 private:
  kinlet::detail::SpinLock mu_;
};

struct CountingTraits : kinlet::ManualClockTraits {
  using WriterLock = CountingLock;
};

}  // namespace

TEST_CASE("PutRecords takes each shard's lock once and keeps request order per shard",
          "[put_records][shard_batches]") {
  kinlet::ManualClock clock;
  kinlet::StreamOptions options;
  options.name = "batched";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 8;
  options.shard_capacity_bytes = 4 << 20;
  auto stream = kinlet::Stream<std::string, CountingTraits>::Create(options, &clock);
  REQUIRE(stream.ok());
  std::vector<std::string> keys;
  std::vector<std::string> data;
  for (int i = 0; i < 500; ++i) {
    keys.push_back("user" + std::to_string(i % 97));
    data.push_back("d" + std::to_string(i));
  }
  std::vector<kinlet::PutRecordsRequestEntry<std::string>> entries;
  for (int i = 0; i < 500; ++i) entries.push_back({keys[i], data[i], std::nullopt});
  kinlet::PutRecordsResult result;
  for (int batch = 0; batch < 3; ++batch) {
    const uint64_t before = CountingLock::acquisitions.load();
    REQUIRE((*stream)->PutRecords(entries, &result).ok());
    CHECK(result.failed_record_count == 0);
    std::map<std::string, uint64_t> last;  // per shard: the last position seen
    std::map<std::string, int> per_shard;
    for (int i = 0; i < 500; ++i) {
      const auto& r = result.records[i];
      REQUIRE(r.ok());
      const std::string shard(r.shard_id);
      if (per_shard[shard]++ > 0) CHECK(r.sequence_number.position() == last[shard] + 1);
      last[shard] = r.sequence_number.position();
    }
    CHECK(per_shard.size() == 8);  // 97 keys spread over every shard
    CHECK(CountingLock::acquisitions.load() - before == 8);
  }
  // What was written reads back in request order, shard by shard.
  for (const auto& shard : (*stream)->OpenShards()) {
    auto it = shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
    auto page = shard->GetRecords(*it, 10000);
    REQUIRE(page.ok());
    std::vector<std::string> want;
    for (int batch = 0; batch < 3; ++batch) {
      for (int i = 0; i < 500; ++i) {
        if (result.records[i].shard_id == shard->shard_id()) want.push_back(data[i]);
      }
    }
    std::vector<std::string> got;
    for (const auto& r : page->records) got.push_back(r.data);
    CHECK(got == want);
  }
}
