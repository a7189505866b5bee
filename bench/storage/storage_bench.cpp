// bench/storage/storage_bench.cpp: durable streams' figures (issue 17). One
// measurement per run, printed as "name value" lines; bench/storage/run.py
// runs it alternately with fio on the same directory.
//
//   storage_bench put  --dir D --size N --bytes B [--sync none|interval|every]
//                      [--threads T] [--memory]
//       PutRecord of N-byte records (T writers, one shard, 16 keys each) until
//       B bytes are written: records/s, MB/s, fsyncs and records per fsync.
//       --memory: the same stream in memory (a 64 MiB ring that overwrites).
//   storage_bench read --dir D
//       Reopens the stream written by `put` (reopen seconds), then reads every
//       record from TRIM_HORIZON with GetRecords (10,000 a call, one reused
//       page): records/s, MB/s.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/kinlet.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Stream = kinlet::Stream<std::string>;

struct Args {
  std::string mode;
  std::string dir;
  size_t size = 1024;
  uint64_t bytes = uint64_t{1} << 30;
  kinlet::SyncPolicy sync = kinlet::SyncPolicy::kNone;
  int threads = 1;
  bool memory = false;
};

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: storage_bench put --dir D --size N --bytes B [--sync none|interval|every] "
               "[--threads T] [--memory]\n       storage_bench read --dir D\n");
  std::exit(2);
}

Args Parse(int argc, char** argv) {
  if (argc < 2) Usage();
  Args a;
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (flag == "--dir") {
      a.dir = value();
    } else if (flag == "--size") {
      a.size = std::stoull(value());
    } else if (flag == "--bytes") {
      a.bytes = std::stoull(value());
    } else if (flag == "--threads") {
      a.threads = std::stoi(value());
    } else if (flag == "--memory") {
      a.memory = true;
    } else if (flag == "--sync") {
      const std::string s = value();
      a.sync = s == "every"      ? kinlet::SyncPolicy::kEveryPut
               : s == "interval" ? kinlet::SyncPolicy::kInterval
                                 : kinlet::SyncPolicy::kNone;
    } else {
      Usage();
    }
  }
  if (a.dir.empty() && !a.memory) Usage();
  return a;
}

kinlet::StreamOptions Options(const Args& a, std::atomic<uint64_t>* syncs) {
  kinlet::StreamOptions o;
  o.name = "bench";
  o.shard_count = 1;
  o.limits = kinlet::ThroughputLimits::Unlimited();
  o.retention_period = absl::Hours(24 * 7);
  o.shard_capacity_records = size_t{1} << 16;
  o.shard_capacity_bytes = size_t{64} << 20;
  if (a.memory) {
    o.full_policy = kinlet::FullPolicy::kOverwrite;
    return o;
  }
  o.storage.kind = kinlet::StorageKind::kDurable;
  o.storage.directory = a.dir;
  o.storage.sync = a.sync;
  o.storage.disk_faults = [syncs](kinlet::DiskOp op, const std::string&) {
    if (op == kinlet::DiskOp::kSync) syncs->fetch_add(1, std::memory_order_relaxed);
    return 0;
  };
  return o;
}

int Put(const Args& a) {
  if (!a.memory) std::filesystem::remove_all(a.dir);
  std::atomic<uint64_t> syncs{0};
  absl::StatusOr<std::unique_ptr<Stream>> stream = Stream::Create(Options(a, &syncs));
  if (!stream.ok()) {
    std::fprintf(stderr, "create: %s\n", stream.status().ToString().c_str());
    return 1;
  }
  const uint64_t per_thread = a.bytes / a.size / static_cast<uint64_t>(a.threads);
  std::atomic<bool> failed{false};
  const uint64_t syncs_before = syncs.load();
  const auto start = Clock::now();
  std::vector<std::thread> writers;
  for (int t = 0; t < a.threads; ++t) {
    writers.emplace_back([&, t] {
      std::string payload(a.size, static_cast<char>('a' + t));
      std::vector<std::string> keys;
      for (int k = 0; k < 16; ++k)
        keys.push_back("w" + std::to_string(t) + "-" + std::to_string(k));
      for (uint64_t i = 0; i < per_thread; ++i) {
        std::memcpy(payload.data(), &i, std::min(sizeof(i), payload.size()));
        absl::StatusOr<kinlet::PutRecordResult> put = (*stream)->PutRecord(keys[i & 15], payload);
        if (!put.ok()) {
          std::fprintf(stderr, "put: %s\n", put.status().ToString().c_str());
          failed = true;
          return;
        }
      }
    });
  }
  for (std::thread& w : writers) w.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (failed) return 1;
  const double records = static_cast<double>(per_thread) * a.threads;
  const double fsyncs = static_cast<double>(syncs.load() - syncs_before);
  std::printf("records %.0f\nseconds %.4f\nrecords_per_s %.0f\nmb_per_s %.1f\nfsyncs %.0f\n",
              records, seconds, records / seconds,
              records * static_cast<double>(a.size) / seconds / 1e6, fsyncs);
  if (fsyncs > 0) std::printf("records_per_fsync %.2f\n", records / fsyncs);
  return 0;
}

int Read(const Args& a) {
  std::atomic<uint64_t> syncs{0};
  const auto open_start = Clock::now();
  absl::StatusOr<std::unique_ptr<Stream>> stream = Stream::Open(a.dir, Options(a, &syncs));
  const double reopen = std::chrono::duration<double>(Clock::now() - open_start).count();
  if (!stream.ok()) {
    std::fprintf(stderr, "open: %s\n", stream.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<kinlet::ShardIterator> it =
      (*stream)->GetShardIterator("shardId-000000000000", kinlet::IteratorPosition::TrimHorizon());
  if (!it.ok()) return 1;
  kinlet::GetRecordsResult<std::string> page;
  uint64_t records = 0;
  uint64_t bytes = 0;
  const auto start = Clock::now();
  for (;;) {
    absl::Status s = (*stream)->GetRecords(*it, 10000, &page);
    if (!s.ok()) {
      std::fprintf(stderr, "read: %s\n", s.ToString().c_str());
      return 1;
    }
    for (const auto& r : page.records) bytes += r.data.size();
    records += page.records.size();
    if (page.records.empty() || !page.next_shard_iterator) break;
    it = *page.next_shard_iterator;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("reopen_s %.4f\nrecords %llu\nseconds %.4f\nrecords_per_s %.0f\nmb_per_s %.1f\n",
              reopen, static_cast<unsigned long long>(records), seconds,
              static_cast<double>(records) / seconds, static_cast<double>(bytes) / seconds / 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  if (a.mode == "put") return Put(a);
  if (a.mode == "read") return Read(a);
  Usage();
}
