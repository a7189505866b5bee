// crash_child: the process that tests/storage/crash_harness_test.cpp kills.
// It creates or reopens a durable Stream<std::string> and puts records from
// several writer threads (PutRecord and PutRecords, keys from a small set,
// self-verifying payloads of random sizes up to 16 KiB) while a control
// thread splits, merges, rescales (UpdateShardCount) and changes the
// retention period, and reports each acknowledgement on stdout (or on the
// descriptor given with --fd) as described in crash_workload.hpp.
//
//   crash_child <directory> <seed> <none|interval|every> <create|open>
//               [--seconds N] [--fd N]
//
// It runs until SIGKILLed or for N seconds (default 120), then closes the
// stream and exits 0. Any failed put or control call is written to stderr and
// ends the process with exit code 3 (the parent reports it); bad arguments
// exit 2, a stream that cannot be created or opened exits 1.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/kinlet.hpp"
#include "storage/crash_workload.hpp"

namespace {

using kinlet::HashKey;
using StreamT = kinlet::Stream<std::string>;

int g_out = 1;

// One line, one write(2): the parent never sees half of it.
void Emit(const std::string& line) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(g_out, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::_Exit(4);  // the parent is gone
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

[[noreturn]] void Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "crash_child: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::fflush(stderr);
  std::_Exit(3);
}

size_t PayloadSize(std::mt19937_64& rng) {
  const uint64_t r = rng() % 100;
  if (r < 80) return 16 + rng() % 240;
  if (r < 95) return 256 + rng() % (4096 - 256);
  return 4096 + rng() % (16384 - 4096);
}

void Writer(StreamT* stream, uint64_t seed, int writer, const std::atomic<bool>* stop) {
  std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(writer) + 1);
  std::vector<uint64_t> counters(kinlet::crash::kKeys, 0);
  std::vector<std::string> keys;
  for (int k = 0; k < kinlet::crash::kKeys; ++k) keys.push_back(kinlet::crash::KeyName(k));
  auto ack = [&](std::string_view shard, const kinlet::SequenceNumber& seq, const std::string& key,
                 const std::string& payload, uint64_t counter) {
    Emit("A " + std::string(shard) + " " + seq.ToString() + " " +
         kinlet::crash::Hex(kinlet::crash::PayloadHash(payload)) + " " + key + " " +
         std::to_string(writer) + " " + std::to_string(counter) + "\n");
  };
  std::vector<std::string> payloads;
  std::vector<int> batch_keys;
  std::vector<uint64_t> batch_counters;
  std::vector<StreamT::Entry> entries;
  kinlet::PutRecordsResult result;
  while (!stop->load(std::memory_order_relaxed)) {
    // A pause now and then keeps a run's records few enough to check them
    // all after every kill, and varies what a kill interrupts.
    if (rng() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 400));
    if (rng() % 10 < 7) {
      const int k = static_cast<int>(rng() % kinlet::crash::kKeys);
      const uint64_t c = counters[static_cast<size_t>(k)]++;
      std::string payload = kinlet::crash::MakePayload(seed, writer, keys[static_cast<size_t>(k)],
                                                       c, PayloadSize(rng));
      absl::StatusOr<kinlet::PutRecordResult> put =
          stream->PutRecord(keys[static_cast<size_t>(k)], payload);
      if (!put.ok()) Fail("PutRecord", put.status());
      ack(put->shard_id, put->sequence_number, keys[static_cast<size_t>(k)], payload, c);
    } else {
      const size_t n = 2 + rng() % 15;
      payloads.clear();
      batch_keys.clear();
      batch_counters.clear();
      entries.clear();
      for (size_t i = 0; i < n; ++i) {
        const int k = static_cast<int>(rng() % kinlet::crash::kKeys);
        const uint64_t c = counters[static_cast<size_t>(k)]++;
        batch_keys.push_back(k);
        batch_counters.push_back(c);
        payloads.push_back(kinlet::crash::MakePayload(seed, writer, keys[static_cast<size_t>(k)], c,
                                                      PayloadSize(rng)));
      }
      for (size_t i = 0; i < n; ++i) {
        entries.push_back(
            StreamT::Entry{keys[static_cast<size_t>(batch_keys[i])], payloads[i], {}});
      }
      absl::Status s = stream->PutRecords(entries, &result);
      if (!s.ok()) Fail("PutRecords", s);
      for (size_t i = 0; i < n; ++i) {
        const kinlet::PutRecordsResultEntry& e = result.records[i];
        if (!e.ok()) {
          Fail("PutRecords entry",
               absl::InternalError(std::to_string(static_cast<int>(e.error_code)) + " " +
                                   e.error_message));
        }
      }
      for (size_t i = 0; i < n; ++i) {
        const kinlet::PutRecordsResultEntry& e = result.records[i];
        ack(e.shard_id, e.sequence_number, keys[static_cast<size_t>(batch_keys[i])], payloads[i],
            batch_counters[i]);
      }
    }
  }
}

struct OpenShard {
  std::string id;
  kinlet::HashKeyRange range;
};

std::vector<kinlet::ShardDescription> AllShards(StreamT* stream) {
  absl::StatusOr<std::vector<kinlet::ShardDescription>> shards = stream->ListShards();
  if (!shards.ok()) Fail("ListShards", shards.status());
  return *std::move(shards);
}

std::vector<OpenShard> OpenShards(const std::vector<kinlet::ShardDescription>& all) {
  std::vector<OpenShard> open;
  for (const kinlet::ShardDescription& d : all) {
    if (!d.sequence_number_range.ending_sequence_number) {
      open.push_back(OpenShard{d.shard_id, d.hash_key_range});
    }
  }
  std::sort(open.begin(), open.end(), [](const OpenShard& a, const OpenShard& b) {
    return a.range.starting_hash_key < b.range.starting_hash_key;
  });
  return open;
}

// Reports the shards `op` closed (open before, closed after).
void ReportClosed(const std::vector<OpenShard>& before, StreamT* stream) {
  std::set<std::string> open_after;
  for (const OpenShard& s : OpenShards(AllShards(stream))) open_after.insert(s.id);
  std::string line = "C closed";
  for (const OpenShard& s : before) {
    if (open_after.count(s.id) == 0) line += " " + s.id;
  }
  Emit(line + "\n");
}

void Control(StreamT* stream, uint64_t seed, const std::atomic<bool>* stop) {
  std::mt19937_64 rng(seed * 104729 + 17);
  while (!stop->load(std::memory_order_relaxed)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 40));
    if (stop->load(std::memory_order_relaxed)) break;
    const std::vector<OpenShard> open = OpenShards(AllShards(stream));
    const int n = static_cast<int>(open.size());
    const uint64_t op = rng() % 10;
    if (op < 4 && n < kinlet::crash::kMaxOpenShards) {
      // A split key in the middle half of a shard wide enough for one
      // (SplitShard needs S + 1 < K < E).
      std::vector<const OpenShard*> wide;
      for (const OpenShard& s : open) {
        if (s.range.ending_hash_key - s.range.starting_hash_key >= 8) wide.push_back(&s);
      }
      if (wide.empty()) continue;
      const OpenShard& s = *wide[rng() % wide.size()];
      const HashKey width = s.range.ending_hash_key - s.range.starting_hash_key;
      const HashKey random = absl::MakeUint128(rng(), rng());
      const HashKey key = s.range.starting_hash_key + width / 4 + random % (width / 2);
      if (absl::Status st = stream->SplitShard(s.id, key); !st.ok()) {
        Fail("SplitShard " + s.id + " at " + kinlet::HashKeyToString(key), st);
      }
      ReportClosed(open, stream);
    } else if (op < 7 && n > kinlet::crash::kMinOpenShards) {
      const size_t i = rng() % (open.size() - 1);
      // Either order: MergeShards accepts adjacent shards both ways.
      const bool swap = rng() % 2 == 0;
      const std::string& a = swap ? open[i + 1].id : open[i].id;
      const std::string& b = swap ? open[i].id : open[i + 1].id;
      if (absl::Status st = stream->MergeShards(a, b); !st.ok()) {
        Fail("MergeShards " + a + " " + b, st);
      }
      ReportClosed(open, stream);
    } else if (op < 8) {
      const int low = std::max(kinlet::crash::kMinOpenShards, (n + 1) / 2);
      const int high = std::min(kinlet::crash::kMaxOpenShards, 2 * n);
      const int target = low + static_cast<int>(rng() % static_cast<uint64_t>(high - low + 1));
      if (target == n) continue;
      absl::StatusOr<kinlet::UpdateShardCountResult> r = stream->UpdateShardCount(target);
      if (!r.ok()) Fail("UpdateShardCount " + std::to_string(target), r.status());
      ReportClosed(open, stream);
    } else {
      const absl::Duration current = stream->retention_period();
      const bool increase = current < kinlet::crash::kMaxRetention &&
                            (current <= kinlet::crash::kMinRetention || rng() % 2 == 0);
      const absl::Duration step = absl::Hours(1 + static_cast<int64_t>(rng() % 48));
      const absl::Duration next = increase ? std::min(current + step, kinlet::crash::kMaxRetention)
                                           : std::max(current - step, kinlet::crash::kMinRetention);
      if (next == current) continue;
      const std::string ms = std::to_string(absl::ToInt64Milliseconds(next));
      Emit("I retention " + ms + "\n");
      absl::Status st = increase ? stream->IncreaseStreamRetentionPeriod(next)
                                 : stream->DecreaseStreamRetentionPeriod(next);
      if (!st.ok()) Fail("retention change to " + ms + " ms", st);
      Emit("C retention " + ms + "\n");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: crash_child <directory> <seed> <none|interval|every> <create|open> "
                 "[--seconds N] [--fd N]\n");
    return 2;
  }
  const std::string directory = argv[1];
  const uint64_t seed = std::strtoull(argv[2], nullptr, 10);
  const std::optional<kinlet::SyncPolicy> sync = kinlet::crash::ParseSync(argv[3]);
  const std::string mode = argv[4];
  int seconds = 120;
  for (int i = 5; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) {
      seconds = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--fd") == 0) {
      g_out = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "crash_child: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (!sync || (mode != "create" && mode != "open")) {
    std::fprintf(stderr, "crash_child: bad sync policy or mode\n");
    return 2;
  }
  const kinlet::StreamOptions options = kinlet::crash::Options(directory, *sync);
  absl::StatusOr<std::unique_ptr<StreamT>> stream =
      mode == "create" ? StreamT::Create(options) : StreamT::Open(directory, options);
  if (!stream.ok()) {
    std::fprintf(stderr, "crash_child: %s %s: %s\n", mode.c_str(), directory.c_str(),
                 stream.status().ToString().c_str());
    return 1;
  }
  for (const std::string& note : (*stream)->recovery_notes()) {
    std::fprintf(stderr, "crash_child: recovery: %s\n", note.c_str());
  }
  Emit("R " + std::to_string(absl::ToInt64Milliseconds((*stream)->retention_period())) + "\n");
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kinlet::crash::kWriters; ++w) {
    threads.emplace_back(Writer, stream->get(), seed, w, &stop);
  }
  threads.emplace_back(Control, stream->get(), seed, &stop);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop.store(true);
  for (std::thread& t : threads) t.join();
  stream->reset();
  return 0;
}
