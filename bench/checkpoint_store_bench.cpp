// bench/checkpoint_store_bench.cpp: lease writes per second of
// FileCheckpointStore with 10, 1,000 and 10,000 leases in the table, renewals
// and checkpoints in separate rows (a renewal changes only the counter and the
// renewal time; a checkpoint changes the checkpoint, which is fsynced).
//
// Uses only what every version of the store offers (Open, UpdateLease), so the
// same file measures the whole-table store of earlier commits for comparison.
// The table is seeded by writing a version-1 file (which every version reads),
// not by n creations. The file lives in $KINLET_BENCH_DIR (default: the
// current directory): put it on a real disk, not a tmpfs, or fsyncs are free.
// Rows use real time: a write waits for the disk, not for the CPU.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "kinlet/checkpoint_store.hpp"
#include "kinlet/detail/hash.hpp"

namespace {

std::string BenchPath() {
  const char* dir = std::getenv("KINLET_BENCH_DIR");
  return (std::filesystem::path(dir != nullptr ? dir : ".") / "checkpoint_store_bench.leases")
      .string();
}

std::string ShardId(int i) {
  std::string digits = std::to_string(i);
  return "shardId-" + std::string(12 - digits.size(), '0') + digits;
}

// A version-1 table of `n` leases held by one worker.
void WriteTable(const std::string& path, int n) {
  std::string text = "kinlet-checkpoints\t1\n";
  for (int i = 0; i < n; ++i) {
    text += ShardId(i) + "\tworker-1\t1\t49590338271490256608559692538361571095921575989136588898" +
            "\t1700000000000\t0\t" + (i == 0 ? std::string() : ShardId(i / 2)) + "\n";
  }
  text +=
      "checksum\t" + std::to_string(kinlet::detail::Xxh3_64(text.data(), text.size(), 0)) + "\n";
  std::filesystem::remove(path + ".tmp");
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

void LeaseWrites(benchmark::State& state, bool checkpoint) {
  const int n = static_cast<int>(state.range(0));
  const std::string path = BenchPath();
  WriteTable(path, n);
  auto opened = kinlet::FileCheckpointStore::Open(path);
  if (!opened.ok()) {
    state.SkipWithError(std::string(opened.status().message()).c_str());
    return;
  }
  std::unique_ptr<kinlet::FileCheckpointStore> store = *std::move(opened);
  std::vector<kinlet::Lease> leases = *store->ListLeases();
  uint64_t sequence = 0;
  size_t i = 0;
  for (auto _ : state) {
    kinlet::Lease& lease = leases[i];
    i = i + 1 == leases.size() ? 0 : i + 1;
    kinlet::Lease next = lease;
    next.lease_counter = lease.lease_counter + 1;
    next.last_renewal_ms = lease.last_renewal_ms + 1;
    if (checkpoint) next.checkpoint = std::to_string(++sequence);
    if (!store->UpdateLease(next, lease.lease_counter).ok()) {
      state.SkipWithError("UpdateLease failed");
      break;
    }
    lease = std::move(next);
  }
  state.SetItemsProcessed(state.iterations());
  store.reset();
  std::filesystem::remove(path);
}

void BM_Renewal(benchmark::State& state) { LeaseWrites(state, false); }
void BM_Checkpoint(benchmark::State& state) { LeaseWrites(state, true); }

}  // namespace

BENCHMARK(BM_Renewal)->Arg(10)->Arg(1000)->Arg(10000)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Checkpoint)
    ->Arg(10)
    ->Arg(1000)
    ->Arg(10000)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
