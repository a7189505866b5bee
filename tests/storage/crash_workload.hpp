// tests/storage/crash_workload.hpp: what the crash harness's child
// (crash_child.cpp) writes and its parent (crash_harness_test.cpp) checks:
// the stream's options, the self-verifying payloads and the line protocol of
// acknowledgements.
//
// A payload is "<seed>:<writer>:<key>:<counter>:<size>|" followed by filler
// bytes derived from that header, `size` bytes in all: any record read back
// can be checked whole (header parsed, filler regenerated) without knowing
// whether its put was acknowledged. `counter` counts the records one writer
// of one child run (its seed) put with one key: 0, 1, 2, ... in put order.
//
// The child writes one line per event, each with one write(2) (atomic on a
// pipe: every line is shorter than PIPE_BUF), so a SIGKILL never leaves half
// a line:
//   R <retention_ms>                  the stream is open, writers start
//   A <shard> <seq> <hash> <key> <w> <c>
//                                     a put of (writer w, key, counter c) was
//                                     acknowledged: sequence number <seq>
//                                     (decimal) in <shard>, payload XXH3 <hash>
//                                     (16 hex digits)
//   I retention <ms>                  a retention change is about to be made
//   C retention <ms>                  ... and was acknowledged
//   C closed <shard>...               a reshard was acknowledged; these shards
//                                     are closed by it (ListShards before/after)
// Thread safety: plain functions.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "kinlet/limits.hpp"
#include "kinlet/storage/storage_options.hpp"
#include "kinlet/stream_options.hpp"
#include "xxhash.h"

namespace kinlet::crash {

inline constexpr int kWriters = 4;
inline constexpr int kKeys = 8;
inline constexpr int kInitialShards = 4;
inline constexpr int kMinOpenShards = 2;
inline constexpr int kMaxOpenShards = 8;
// Retention moves within [kMinRetention, kMaxRetention]: records are never
// old enough to expire during a run.
inline constexpr absl::Duration kMinRetention = absl::Hours(24);
inline constexpr absl::Duration kMaxRetention = absl::Hours(24 * 30);

inline std::string KeyName(int k) { return "key-" + std::to_string(k); }

inline const char* SyncName(SyncPolicy p) {
  switch (p) {
    case SyncPolicy::kNone:
      return "none";
    case SyncPolicy::kInterval:
      return "interval";
    case SyncPolicy::kEveryPut:
      return "every";
  }
  return "?";
}

inline std::optional<SyncPolicy> ParseSync(std::string_view s) {
  if (s == "none") return SyncPolicy::kNone;
  if (s == "interval") return SyncPolicy::kInterval;
  if (s == "every") return SyncPolicy::kEveryPut;
  return std::nullopt;
}

// The stream both sides open: small segments (they roll often), a small ring
// (reads of older records come from the files), no throughput limits, and
// enough reshards per day for any run.
inline StreamOptions Options(const std::string& directory, SyncPolicy sync) {
  StreamOptions o;
  o.name = "crash";
  o.shard_count = kInitialShards;
  o.retention_period = kMinRetention;
  o.max_record_size_bytes = 64 * 1024;
  o.shard_capacity_records = 256;
  o.shard_capacity_bytes = size_t{1} << 20;
  o.limits = ThroughputLimits::Unlimited();
  o.max_shard_count_updates_per_day = 1 << 30;
  o.storage.kind = StorageKind::kDurable;
  o.storage.directory = directory;
  o.storage.sync = sync;
  o.storage.sync_interval = absl::Milliseconds(20);
  o.storage.segment_bytes = size_t{1} << 20;
  return o;
}

inline uint64_t PayloadHash(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

inline std::string Hex(uint64_t v) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = kDigits[v & 15];
  return s;
}

// Filler: 12 letters per splitmix64 draw from `state`, appended to `out`
// until it is `size` bytes long (`begin` is out's length on entry).
inline void FillFrom(size_t begin, uint64_t state, std::string* out, size_t size) {
  out->resize(size);
  char* p = out->data();
  for (size_t i = begin; i < size;) {
    state += 0x9E3779B97F4A7C15ull;  // splitmix64
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (int j = 0; j < 12 && i < size; ++j, ++i, z /= 26) p[i] = static_cast<char>('a' + z % 26);
  }
}

// The payload of (seed, writer, key, counter), `size` bytes (at least the
// header's length).
inline std::string MakePayload(uint64_t seed, int writer, std::string_view key, uint64_t counter,
                               size_t size) {
  std::string header = std::to_string(seed) + ":" + std::to_string(writer) + ":" +
                       std::string(key) + ":" + std::to_string(counter) + ":";
  // The size field counts itself: grow it until it is stable.
  std::string out;
  for (size_t total = std::max(size, header.size() + 2);;) {
    out = header + std::to_string(total) + "|";
    if (out.size() <= total) {
      size = total;
      break;
    }
    total = out.size() + 1;
  }
  FillFrom(out.size(), XXH3_64bits(out.data(), out.size()), &out, size);
  return out;
}

struct ParsedPayload {
  uint64_t seed = 0;
  int writer = 0;
  std::string key;
  uint64_t counter = 0;
};

// Parses and verifies a payload read back: its header, its size and every
// filler byte. nullopt if any of it is wrong.
inline std::optional<ParsedPayload> ParsePayload(std::string_view data) {
  ParsedPayload p;
  std::string_view rest = data;
  auto field = [&rest]() -> std::optional<std::string_view> {
    const size_t colon = rest.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view f = rest.substr(0, colon);
    rest.remove_prefix(colon + 1);
    return f;
  };
  auto number = [](std::string_view s, uint64_t* v) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
  };
  std::optional<std::string_view> seed = field(), writer = field(), key = field(),
                                  counter = field();
  if (!seed || !writer || !key || !counter) return std::nullopt;
  uint64_t w = 0;
  if (!number(*seed, &p.seed) || !number(*writer, &w) || !number(*counter, &p.counter)) {
    return std::nullopt;
  }
  if (w >= static_cast<uint64_t>(kWriters)) return std::nullopt;
  p.writer = static_cast<int>(w);
  p.key = std::string(*key);
  const size_t bar = rest.find('|');
  uint64_t size = 0;
  if (bar == std::string_view::npos || !number(rest.substr(0, bar), &size)) return std::nullopt;
  if (size != data.size()) return std::nullopt;
  // The header is as MakePayload writes it (numbers without leading zeros)
  // and the filler is what it derives from the header.
  const size_t header = static_cast<size_t>(rest.data() - data.data()) + bar + 1;
  std::string expected(data.substr(0, header));
  if (expected != std::to_string(p.seed) + ":" + std::to_string(p.writer) + ":" + p.key + ":" +
                      std::to_string(p.counter) + ":" + std::to_string(size) + "|") {
    return std::nullopt;
  }
  FillFrom(header, XXH3_64bits(expected.data(), header), &expected, data.size());
  if (std::string_view(expected) != data) return std::nullopt;
  return p;
}

}  // namespace kinlet::crash
