// tests/overwrite_race.hpp: the writer side of the stress tests that race
// zero-copy readers (fan-out views, lent polling pages) against an overwriting
// writer: a small kOverwrite ring, and records whose every byte equals their
// one-byte partition key, so that a reader can tell a record changed under it.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "kinlet/stream.hpp"

namespace kinlet_test {

// A one-shard stream of 256 records / 64 KiB that overwrites its oldest.
inline std::unique_ptr<kinlet::Stream<std::string>> MakeOverwriteRaceStream(std::string name) {
  kinlet::StreamOptions options;
  options.name = std::move(name);
  options.limits = kinlet::ThroughputLimits::Unlimited();
  options.shard_capacity_records = 256;
  options.shard_capacity_bytes = 64 << 10;
  options.max_record_size_bytes = 4096;
  options.full_policy = kinlet::FullPolicy::kOverwrite;
  return std::move(*kinlet::Stream<std::string>::Create(options));
}

// What the writer saw. `done` is set (release) once it has written every record.
struct RaceWriter {
  std::atomic<bool> done{false};
  std::atomic<int> put_failures{0};
  // ShardFull: a reader held the memory the put needed. The writer never
  // waits for a reader, so this is how a held view shows.
  std::atomic<int> put_refusals{0};
};

// Starts the writer: `records` records of 16..915 bytes, key 'a'..'z' in turn.
inline std::thread StartRaceWriter(kinlet::Stream<std::string>& stream, int records,
                                   RaceWriter* out) {
  return std::thread([&stream, records, out] {
    std::string data;
    for (int i = 0; i < records; ++i) {
      const char c = static_cast<char>('a' + i % 26);
      data.assign(static_cast<size_t>(16 + (i * 37) % 900), c);
      const absl::Status s = stream.PutRecord(std::string(1, c), data).status();
      if (kinlet::IsShardFull(s)) out->put_refusals.fetch_add(1);
      if (!s.ok() && !kinlet::IsShardFull(s)) out->put_failures.fetch_add(1);
    }
    out->done.store(true, std::memory_order_release);
  });
}

}  // namespace kinlet_test
