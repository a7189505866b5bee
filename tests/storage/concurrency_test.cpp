// ShardLog under concurrency: group commit (fewer fsyncs than puts, every
// record there), readers racing the writer, segment rolls and retention
// (run under ThreadSanitizer), and the interval syncer.
#include <catch2/catch.hpp>
#include <thread>

#include "kinlet/detail/mutex.hpp"
#include "kinlet/storage/shard_log.hpp"
#include "storage/storage_test_util.hpp"

namespace {

using kinlet::DiskOp;
using kinlet::storage::LogRecordView;
using kinlet::storage::RecoveryReport;
using kinlet::storage::ShardLog;
using kinlet::storage::ShardLogOptions;
using namespace kinlet::storage::testing;

TEST_CASE("Group commit: concurrent writers share fsyncs", "[storage][concurrency]") {
  TempDir dir;
  std::atomic<int> syncs{0};
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  o.segment_bytes = 4 << 20;  // no roll during the test: every fsync counted is a commit
  o.sync = kinlet::SyncPolicy::kEveryPut;
  o.faults = [&](DiskOp op, const std::string&) {
    if (op == DiskOp::kSync) {
      syncs.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // a disk's fsync takes time
    }
    return 0;
  };
  auto log = std::move(*ShardLog::Open(o, 0, nullptr));
  const int syncs_at_open = syncs.load();
  kinlet::detail::Mutex writer;  // the shard's writer lock
  const int threads = 4;
  const int per_thread = 200;
  std::vector<std::thread> pool;
  std::atomic<int> acked{0};
  std::atomic<int> errors{0};  // Catch2's assertions are not thread-safe: count, check after
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        uint64_t end = 0;
        {
          kinlet::detail::MutexLock l(&writer);
          const uint64_t pos = log->End();
          if (!log->Append(pos, 1, "writer-" + std::to_string(t), std::to_string(i)).ok()) {
            errors.fetch_add(1);
          }
          end = pos + 1;
        }
        if (log->SyncThrough(end).ok()) {
          acked.fetch_add(1);
        } else {
          errors.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  const int puts = threads * per_thread;
  const int commits = syncs.load() - syncs_at_open;
  INFO("fsyncs: " << commits << " for " << puts << " puts");
  CHECK(errors == 0);
  CHECK(acked == puts);
  CHECK(commits > 0);
  CHECK(commits < puts);
  // Every record there, each writer's in its order.
  std::vector<Rec> all = ReadAll(*log, 0, nullptr, 1000);
  REQUIRE(all.size() == static_cast<size_t>(puts));
  std::vector<int> next(threads, 0);
  for (const Rec& r : all) {
    const int t = std::stoi(r.key.substr(7));
    CHECK(r.data == std::to_string(next[t]++));
  }
  // A sync of what is already synced costs nothing.
  const int before = syncs.load();
  REQUIRE(log->SyncThrough(log->End()).ok());
  CHECK(syncs.load() == before);
}

TEST_CASE("Readers race the writer, segment rolls and retention", "[storage][concurrency]") {
  TempDir dir;
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  auto log = std::move(*ShardLog::Open(o, 0, nullptr));
  const uint64_t n = 4000;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::atomic<int> errors{0};
  auto reader = [&](int seed) {
    uint64_t from = 0;
    uint64_t step = static_cast<uint64_t>(seed);
    while (!done.load()) {
      const uint64_t end = log->End();
      absl::Status status;
      auto got = log->Read(from, 50, 1 << 20, [&](const LogRecordView& v) {
        const Rec want = MakeRec(v.position);
        if (v.key != want.key || v.data != want.data || v.arrival_ms != want.arrival_ms) {
          status = absl::InternalError("record differs at " + std::to_string(v.position));
        }
      });
      if (!status.ok()) errors.fetch_add(1);
      if (got.ok()) {
        reads.fetch_add(*got);
        from += *got;
        if (*got == 0 && end > 0) from = (from + step * 7919) % end;  // jump around
      } else {
        if (!kinlet::IsTrimmedDataAccess(got.status())) errors.fetch_add(1);
        from = log->Begin();
      }
      (void)log->ArrivalAt(from);
      const uint64_t lb = log->LowerBoundArrival(MakeRec(from).arrival_ms);
      if (lb > log->End()) errors.fetch_add(1);
      step = step * 6364136223846793005ull + 1;
    }
  };
  std::thread r1(reader, 1);
  std::thread r2(reader, 2);
  for (uint64_t i = 0; i < n; ++i) {
    REQUIRE(AppendRec(*log, MakeRec(i)).ok());
    if (i % 500 == 499) log->DropExpired(MakeRec(i - 300).arrival_ms);
  }
  done = true;
  r1.join();
  r2.join();
  CHECK(errors == 0);
  CHECK(reads.load() > 0);
  CHECK(log->Begin() > 0);
  std::vector<Rec> want;
  for (uint64_t i = log->Begin(); i < n; ++i) want.push_back(MakeRec(i));
  CHECK(ReadAll(*log, log->Begin(), nullptr, 100) == want);
}

TEST_CASE("kInterval: the background syncer fsyncs dirty logs", "[storage][concurrency]") {
  TempDir dir;
  std::atomic<int> syncs{0};
  ShardLogOptions o = SmallOptions(dir.sub("a"));
  o.sync = kinlet::SyncPolicy::kInterval;
  o.sync_interval = absl::Milliseconds(2);
  o.faults = [&](DiskOp op, const std::string&) {
    if (op == DiskOp::kSync) syncs.fetch_add(1);
    return 0;
  };
  ShardLogOptions o2 = o;
  o2.directory = dir.sub("b");
  auto a = std::move(*ShardLog::Open(o, 0, nullptr));
  auto b = std::move(*ShardLog::Open(o2, 0, nullptr));
  const int at_open = syncs.load();
  REQUIRE(a->Append(0, 1, "k", "v").ok());
  REQUIRE(b->Append(0, 1, "k", "v").ok());
  // The syncer catches up without anyone calling SyncThrough.
  for (int i = 0; i < 5000 && syncs.load() < at_open + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(syncs.load() >= at_open + 2);
  a.reset();  // unregisters; b goes on
  REQUIRE(b->Append(1, 1, "k", "v").ok());
  const int before = syncs.load();
  for (int i = 0; i < 5000 && syncs.load() == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(syncs.load() > before);
}

}  // namespace
