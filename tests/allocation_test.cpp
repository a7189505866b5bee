// The hot path allocates nothing: puts, batch puts and reads into a reused
// page, for byte payloads and trivially copyable payloads. Counted on the
// testing thread only, by a replaced global operator new (or, in sanitizer
// builds, which own operator new, by the sanitizer's allocator hooks).
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "kinlet/kinlet.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KINLET_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define KINLET_TEST_SANITIZED 1
#endif
#endif

#ifdef KINLET_TEST_SANITIZED
// From <sanitizer/allocator_interface.h>, which g++ does not ship.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
#endif

namespace {
std::atomic<long> g_allocations{0};
thread_local bool g_counting = false;

void CountAllocation() {
  if (g_counting) g_allocations.fetch_add(1, std::memory_order_relaxed);
}

struct Counting {
  Counting() {
    g_allocations.store(0);
    g_counting = true;
  }
  ~Counting() { g_counting = false; }
  long count() const { return g_allocations.load(); }
};

// Runs `round` once (a warm-up: buffers grow) and then `rounds` more times,
// counting the heap allocations of those. -1 if any round returned false.
template <typename Round>
long AllocationsOver(int rounds, Round&& round) {
  if (!round()) return -1;
  bool ok = true;
  long allocations = 0;
  {
    Counting counting;
    for (int r = 0; r < rounds; ++r) ok = ok && round();
    allocations = counting.count();
  }
  return ok ? allocations : -1;
}
}  // namespace

#ifdef KINLET_TEST_SANITIZED
// Sanitizers own operator new; count through their allocator hooks, which see
// every malloc and operator new.
namespace {
void OnMalloc(const volatile void*, size_t) { CountAllocation(); }
void OnFree(const volatile void*) {}
const int kHooksInstalled = __sanitizer_install_malloc_and_free_hooks(OnMalloc, OnFree);
}  // namespace
#else
// The replacement operator new pairs malloc with free on purpose.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  CountAllocation();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

struct Sample {
  uint64_t id;
  double value[6];
};

}  // namespace

namespace {

// 10 rounds of 100 puts and a read of every shard into one reused `page` (a
// copying GetRecordsResult or a lending GetRecordsView), after a warm-up that
// grows its buffers: the allocations counted, and whether any read lent.
template <typename Page>
long PutAndReadAllocations(size_t* read, bool* lent) {
  kinlet::StreamOptions options;
  options.name = "no-alloc";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 4;
  options.shard_capacity_bytes = 4 << 20;
  auto stream = *kinlet::Stream<std::string>::Create(options);
  const std::string payload(64, 'p');
  const std::string key = "user-with-a-long-partition-key-0123456789";  // beyond SSO
  Page page;
  std::vector<kinlet::ShardIterator> its;
  for (const auto& shard : stream->OpenShards()) {
    its.push_back(*shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon()));
  }
  auto round = [&] {
    *read = 0;
    for (int i = 0; i < 100; ++i) {
      if (!stream->PutRecord(key, payload).ok()) return false;
    }
    for (auto& it : its) {
      if (!stream->GetRecords(it, 1000, &page).ok()) return false;
      for (const auto& r : page.records) {
        if (r.partition_key != key || r.data != payload) return false;
      }
      if constexpr (requires { page.lent(); }) *lent = *lent || page.lent();
      *read += page.records.size();
      it = *page.next_shard_iterator;
    }
    return true;
  };
  return AllocationsOver(10, round);
}

}  // namespace

TEST_CASE("PutRecord and GetRecords into a reused page allocate nothing", "[allocation]") {
  size_t read = 0;
  bool lent = false;
  CHECK(PutAndReadAllocations<kinlet::GetRecordsResult<std::string>>(&read, &lent) == 0);
  CHECK(read == 100);
}

TEST_CASE("GetRecords into a reused GetRecordsView allocates nothing", "[allocation][zero_copy]") {
  size_t read = 0;
  bool lent = false;
  CHECK(PutAndReadAllocations<kinlet::GetRecordsView<std::string>>(&read, &lent) == 0);
  CHECK(read == 100);
  CHECK(lent);
}

TEST_CASE("PutRecords with a reused result allocates nothing", "[allocation]") {
  kinlet::StreamOptions options;
  options.name = "no-alloc-batch";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 8;
  options.shard_capacity_bytes = 4 << 20;
  auto stream = *kinlet::Stream<Sample>::Create(options);
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) keys.push_back("k" + std::to_string(i));
  Sample sample{1, {1, 2, 3, 4, 5, 6}};
  std::vector<kinlet::PutRecordsRequestEntry<Sample>> entries;
  for (const auto& k : keys) entries.push_back({k, sample, {}});
  kinlet::PutRecordsResult result;
  CHECK(AllocationsOver(20, [&] { return stream->PutRecords(entries, &result).ok(); }) == 0);
  CHECK(result.failed_record_count == 0);
}

TEST_CASE("The counting hook does count allocations", "[allocation]") {
#ifdef KINLET_TEST_SANITIZED
  REQUIRE(kHooksInstalled != 0);
#endif
  long allocations = 0;
  {
    Counting counting;
    auto* p = new std::string(100, 'x');
    delete p;
    allocations = counting.count();
  }
  CHECK(allocations >= 1);
}

TEST_CASE("Subscription::Next into a reused event allocates nothing", "[allocation][fan_out]") {
  kinlet::StreamOptions options;
  options.name = "no-alloc-fan-out";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 1;
  options.shard_capacity_bytes = 4 << 20;
  auto stream = *kinlet::Stream<std::string>::Create(options);
  REQUIRE(stream->RegisterStreamConsumer("reader").ok());
  auto subscriptions = std::vector<std::unique_ptr<kinlet::Subscription<std::string>>>();
  for (const char* name : {"reader"}) {
    subscriptions.push_back(*stream->SubscribeToShard(name, "shardId-000000000000",
                                                      kinlet::IteratorPosition::TrimHorizon()));
  }
  const std::string payload(64, 'p');
  const std::string key = "user-with-a-long-partition-key-0123456789";
  kinlet::SubscribeToShardEvent<std::string> event;
  size_t delivered = 0;
  auto round = [&] {
    delivered = 0;
    for (int i = 0; i < 100; ++i) {
      if (!stream->PutRecord(key, payload).ok()) return false;
    }
    while (delivered < 100) {
      if (!subscriptions[0]->Next(&event, absl::ZeroDuration()).ok()) return false;
      if (event.records().empty()) return false;
      for (const auto& r : event.records()) {
        if (r.data != payload) return false;
      }
      delivered += event.records().size();
    }
    return true;
  };
  CHECK(AllocationsOver(10, round) == 0);
}

TEST_CASE("Subscription::NextView allocates nothing", "[allocation][fan_out]") {
  kinlet::StreamOptions options;
  options.name = "no-alloc-views";
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_count = 1;
  options.shard_capacity_bytes = 4 << 20;
  auto stream = *kinlet::Stream<std::string>::Create(options);
  REQUIRE(stream->RegisterStreamConsumer("viewer").ok());
  auto sub = *stream->SubscribeToShard("viewer", "shardId-000000000000",
                                       kinlet::IteratorPosition::TrimHorizon());
  const std::string payload(64, 'v');
  size_t delivered = 0;
  bool intact = true;
  auto visit = [&](const kinlet::SubscribeToShardEventView<std::string>& e) {
    for (const auto& r : e.records) intact = intact && r.data == payload;
    delivered += e.records.size();
  };
  auto round = [&] {
    delivered = 0;
    for (int i = 0; i < 100; ++i) {
      if (!stream->PutRecord("user-0123456789", payload).ok()) return false;
    }
    while (delivered < 100) {
      const size_t before = delivered;
      if (!sub->NextView(visit, absl::ZeroDuration()).ok() || delivered == before) return false;
    }
    return intact;
  };
  CHECK(AllocationsOver(10, round) == 0);
  CHECK(sub->stats().copied_records == 0);
}
