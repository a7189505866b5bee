// kinlet/storage/detail/segment_format.hpp: the bytes of segment and index
// files, and their pure encoders / validators (no I/O; the fuzz target drives
// them with arbitrary bytes).
//
// Segment file `<first position, 20 digits>.seg`, fixed size, little-endian:
//
//   0      4 KiB header
//          +0    u64 magic "KNLTSEG1"
//          +8    u32 format version (1)        +12  u32 header bytes (4096)
//          +16   u64 first position            +24  i64 creation time (ms since epoch)
//          +32   u64 segment bytes at creation
//          +40   u32 encryption (0 none, 1 KMS) +44  u32 key version
//          +48   u32 key_id length             +52  u32 wrapped data key length
//          +56   u32 cipher overhead           +60  u32 reserved (0)
//          +64   key_id bytes, then the wrapped data key bytes
//          +4088 u64 XXH3_64 of header bytes [0, 4088)
//   4096   frames, each 8-byte aligned, back to back:
//          +0    u64 XXH3_64 of bytes [8, 32 + body_len) (never 0: a 0 is stored as 1)
//          +8    u32 body_len   +12 u32 key_len   +16 u64 position   +24 i64 arrival_ms
//          +32   body: key || data; encrypted: RecordCipher::Seal(nonce = position,
//                aad = bytes [8, 32), key || data), key_len still the plaintext key's length
//          then zero padding to a multiple of 8
//   A zero checksum word ends the data (the file is allocated zeroed).
//
// Index file `<segment name>.idx`, written when a segment is full (or sealed):
//   +0 u64 magic "KNLTIDX1"  +8 u32 version (1)  +12 u32 entry count
//   +16 u64 first position   +24 u64 end position (one past the last record)
//   +32 u64 end offset (where the next frame would go)  +40 u64 record count
//   +48 i64 last arrival_ms  +56 u32 lost range count   +60 u32 reserved
//   +64 entries {u64 position, i64 arrival_ms, u64 offset} (24 bytes each)
//   then lost ranges {u64 begin, u64 end}, then u64 XXH3_64 of everything before.
//
// Thread safety: pure functions over caller-owned bytes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kinlet/detail/hash.hpp"

namespace kinlet::storage::detail {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the segment format is little-endian");

inline constexpr uint64_t kSegmentMagic = 0x31474553544c4e4bull;  // "KNLTSEG1"
inline constexpr uint64_t kIndexMagic = 0x31584449544c4e4bull;    // "KNLTIDX1"
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 4096;
inline constexpr size_t kHeaderChecksumOffset = kHeaderBytes - 8;
inline constexpr size_t kHeaderFixedBytes = 64;
inline constexpr size_t kMaxKeyIdBytes = 1024;
inline constexpr size_t kMaxWrappedKeyBytes = 2048;
inline constexpr size_t kFrameHeaderBytes = 32;
inline constexpr size_t kFrameAlign = 8;
// A sparse index entry about every this many bytes of frames.
inline constexpr size_t kIndexInterval = 4096;
// Positions at or above this are refused as corrupt (End() must not overflow).
inline constexpr uint64_t kMaxPosition = uint64_t{1} << 62;
inline constexpr size_t kIndexFixedBytes = 64;
inline constexpr size_t kIndexEntryBytes = 24;

inline uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t Load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void Store64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline void Store32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline constexpr size_t AlignUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

inline uint64_t Checksum(const char* p, size_t n) {
  uint64_t c = kinlet::detail::Xxh3_64(p, n, 0);
  return c == 0 ? 1 : c;
}

inline size_t FrameBytes(size_t body_len) { return AlignUp(kFrameHeaderBytes + body_len, kFrameAlign); }

// "00000000000000000042.seg"
inline std::string SegmentFileName(uint64_t first_position) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu.seg", static_cast<unsigned long long>(first_position));
  return buf;
}

// Parses a segment file name; false if `name` is not one.
inline bool ParseSegmentFileName(std::string_view name, uint64_t* first_position) {
  if (name.size() != 24 || name.substr(20) != ".seg") return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *first_position = v;
  return true;
}

struct SegmentHeader {
  uint64_t first_position = 0;
  int64_t created_ms = 0;
  uint64_t segment_bytes = 0;
  bool encrypted = false;
  uint32_t key_version = 0;
  uint32_t cipher_overhead = 0;
  std::string key_id;
  std::string wrapped_key;
};

// Writes `h` into `out` (kHeaderBytes). REQUIRES: key_id and wrapped_key fit
// (kMaxKeyIdBytes, kMaxWrappedKeyBytes).
inline void EncodeSegmentHeader(const SegmentHeader& h, char* out) {
  std::memset(out, 0, kHeaderBytes);
  Store64(out, kSegmentMagic);
  Store32(out + 8, kFormatVersion);
  Store32(out + 12, static_cast<uint32_t>(kHeaderBytes));
  Store64(out + 16, h.first_position);
  Store64(out + 24, static_cast<uint64_t>(h.created_ms));
  Store64(out + 32, h.segment_bytes);
  Store32(out + 40, h.encrypted ? 1 : 0);
  Store32(out + 44, h.key_version);
  Store32(out + 48, static_cast<uint32_t>(h.key_id.size()));
  Store32(out + 52, static_cast<uint32_t>(h.wrapped_key.size()));
  Store32(out + 56, h.cipher_overhead);
  std::memcpy(out + kHeaderFixedBytes, h.key_id.data(), h.key_id.size());
  std::memcpy(out + kHeaderFixedBytes + h.key_id.size(), h.wrapped_key.data(),
              h.wrapped_key.size());
  Store64(out + kHeaderChecksumOffset, Checksum(out, kHeaderChecksumOffset));
}

// Validates and decodes a header from `size` bytes at `p`. Returns a reason
// ("" when valid).
inline std::string DecodeSegmentHeader(const char* p, size_t size, SegmentHeader* h) {
  if (size < kHeaderBytes) return "shorter than its 4096-byte header";
  if (Load64(p) != kSegmentMagic) return "bad magic";
  if (Load64(p + kHeaderChecksumOffset) != Checksum(p, kHeaderChecksumOffset)) {
    return "header checksum mismatch";
  }
  if (Load32(p + 8) != kFormatVersion) return "unknown format version";
  if (Load32(p + 12) != kHeaderBytes) return "bad header size";
  uint32_t enc = Load32(p + 40);
  uint32_t key_id_len = Load32(p + 48);
  uint32_t wrapped_len = Load32(p + 52);
  if (enc > 1 || key_id_len > kMaxKeyIdBytes || wrapped_len > kMaxWrappedKeyBytes) {
    return "bad encryption fields";
  }
  h->first_position = Load64(p + 16);
  if (h->first_position >= kMaxPosition) return "bad first position";
  h->created_ms = static_cast<int64_t>(Load64(p + 24));
  h->segment_bytes = Load64(p + 32);
  h->encrypted = enc == 1;
  h->key_version = Load32(p + 44);
  h->cipher_overhead = Load32(p + 56);
  if (h->cipher_overhead > 4096) return "bad cipher overhead";
  h->key_id.assign(p + kHeaderFixedBytes, key_id_len);
  h->wrapped_key.assign(p + kHeaderFixedBytes + key_id_len, wrapped_len);
  return "";
}

struct FrameHeader {
  uint32_t body_len = 0;
  uint32_t key_len = 0;
  uint64_t position = 0;
  int64_t arrival_ms = 0;
};

enum class FrameCheck { kOk, kEnd, kBad };

// Checks the frame at `offset` of a segment of `capacity` bytes at `base`:
// kEnd for a zero checksum word (or no room for a header), kBad if it does not
// fit, is inconsistent (`overhead`: the cipher's, 0 for plaintext) or its
// checksum fails; kOk fills *h. Reads only bytes inside [offset, capacity).
inline FrameCheck CheckFrame(const char* base, size_t capacity, size_t offset, size_t overhead,
                             FrameHeader* h) {
  if (offset + kFrameHeaderBytes > capacity || offset % kFrameAlign != 0) return FrameCheck::kEnd;
  const char* f = base + offset;
  uint64_t checksum = Load64(f);
  if (checksum == 0) return FrameCheck::kEnd;
  h->body_len = Load32(f + 8);
  h->key_len = Load32(f + 12);
  h->position = Load64(f + 16);
  h->arrival_ms = static_cast<int64_t>(Load64(f + 24));
  if (h->body_len > capacity - offset - kFrameHeaderBytes) return FrameCheck::kBad;
  if (h->body_len < overhead || h->key_len > h->body_len - overhead) return FrameCheck::kBad;
  if (h->position >= kMaxPosition) return FrameCheck::kBad;
  if (Checksum(f + 8, kFrameHeaderBytes - 8 + h->body_len) != checksum) return FrameCheck::kBad;
  return FrameCheck::kOk;
}

struct IndexEntry {
  uint64_t position;
  int64_t arrival_ms;
  uint64_t offset;
};

// What an index file records about a full segment.
struct IndexFile {
  uint64_t first_position = 0;
  uint64_t end_position = 0;
  uint64_t end_offset = 0;
  uint64_t record_count = 0;
  int64_t last_arrival_ms = 0;
  std::vector<IndexEntry> entries;
  std::vector<std::pair<uint64_t, uint64_t>> lost;
};

inline std::string EncodeIndexFile(const IndexFile& x) {
  std::string out(kIndexFixedBytes + x.entries.size() * kIndexEntryBytes + x.lost.size() * 16 + 8,
                  '\0');
  char* p = out.data();
  Store64(p, kIndexMagic);
  Store32(p + 8, kFormatVersion);
  Store32(p + 12, static_cast<uint32_t>(x.entries.size()));
  Store64(p + 16, x.first_position);
  Store64(p + 24, x.end_position);
  Store64(p + 32, x.end_offset);
  Store64(p + 40, x.record_count);
  Store64(p + 48, static_cast<uint64_t>(x.last_arrival_ms));
  Store32(p + 56, static_cast<uint32_t>(x.lost.size()));
  char* q = p + kIndexFixedBytes;
  for (const IndexEntry& e : x.entries) {
    Store64(q, e.position);
    Store64(q + 8, static_cast<uint64_t>(e.arrival_ms));
    Store64(q + 16, e.offset);
    q += kIndexEntryBytes;
  }
  for (const auto& [a, b] : x.lost) {
    Store64(q, a);
    Store64(q + 8, b);
    q += 16;
  }
  Store64(q, Checksum(p, static_cast<size_t>(q - p)));
  return out;
}

// Validates an index file against its segment (first position, capacity):
// returns "" and fills *x, or the reason it is refused (the caller rescans).
// Entries must be strictly increasing in position and offset, aligned and
// inside the frames area; counts consistent.
inline std::string DecodeIndexFile(std::string_view bytes, uint64_t first_position,
                                   size_t capacity, IndexFile* x) {
  if (bytes.size() < kIndexFixedBytes + 8) return "too short";
  const char* p = bytes.data();
  if (Load64(p) != kIndexMagic || Load32(p + 8) != kFormatVersion) return "bad magic or version";
  uint64_t entries = Load32(p + 12);
  uint64_t lost = Load32(p + 56);
  if (bytes.size() != kIndexFixedBytes + entries * kIndexEntryBytes + lost * 16 + 8) {
    return "bad size";
  }
  size_t body = bytes.size() - 8;
  if (Load64(p + body) != Checksum(p, body)) return "checksum mismatch";
  x->first_position = Load64(p + 16);
  x->end_position = Load64(p + 24);
  x->end_offset = Load64(p + 32);
  x->record_count = Load64(p + 40);
  x->last_arrival_ms = static_cast<int64_t>(Load64(p + 48));
  if (x->first_position != first_position) return "first position differs from the segment's";
  if (x->end_position < x->first_position || x->end_position >= kMaxPosition) {
    return "bad end position";
  }
  if (x->end_offset < kHeaderBytes || x->end_offset > capacity || x->end_offset % kFrameAlign) {
    return "bad end offset";
  }
  if (x->record_count > x->end_position - x->first_position) return "bad record count";
  if ((x->record_count == 0) != (entries == 0)) return "bad entry count";
  if (entries > capacity / kIndexInterval + 1) return "too many entries";
  x->entries.clear();
  x->lost.clear();
  const char* q = p + kIndexFixedBytes;
  for (uint64_t i = 0; i < entries; ++i, q += kIndexEntryBytes) {
    IndexEntry e{Load64(q), static_cast<int64_t>(Load64(q + 8)), Load64(q + 16)};
    if (e.position < x->first_position || e.position >= x->end_position) return "bad entry";
    if (e.offset < kHeaderBytes || e.offset >= x->end_offset || e.offset % kFrameAlign) {
      return "bad entry offset";
    }
    if (!x->entries.empty() && (e.position <= x->entries.back().position ||
                                e.offset <= x->entries.back().offset)) {
      return "entries out of order";
    }
    x->entries.push_back(e);
  }
  for (uint64_t i = 0; i < lost; ++i, q += 16) {
    uint64_t a = Load64(q);
    uint64_t b = Load64(q + 8);
    if (a >= b || a < x->first_position || b > x->end_position) return "bad lost range";
    x->lost.emplace_back(a, b);
  }
  return "";
}

}  // namespace kinlet::storage::detail
