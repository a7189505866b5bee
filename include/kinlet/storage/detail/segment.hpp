// kinlet/storage/detail/segment.hpp: one segment file of a shard log, mapped.
//
// A Segment is shared (std::shared_ptr) between the ShardLog's segment list and
// readers that took it from there; deleting the file (retention) while a reader
// holds it is safe: the mapping lives until the last holder lets go.
//
// Shared state and who touches it:
//   map_, header_, first_position_, capacity_, path_   immutable after creation.
//   entries_[i]          written by the writer (Append) or by recovery before
//                        the segment is published, never changed afterwards.
//   entry_count_         written by the writer with a release store after
//                        entries_[count-1]; readers load it with acquire, then
//                        read entries_[0, count).
//   frame bytes          written by the writer before ShardLog::end_'s release
//                        store; readers touch only frames below the End() they
//                        loaded with acquire (see ShardLog), so never a frame
//                        being written.
//   write_offset_, next_position_, records_, last_arrival_, next_index_offset_
//                        the writer's only (under the shard's writer lock), or
//                        recovery before publication.
//   end_offset_          the end of the written frames: release store by the
//                        writer after each frame, acquire load by readers
//                        resynchronising after a corrupt frame.
//   cipher_              lazily set under cipher_mu_, release store; readers
//                        load with acquire.
//   fd_                  open while the segment may still need an fsync; Sync()
//                        and Seal() take fd_mu_.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/status_macros.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/storage/detail/file.hpp"
#include "kinlet/storage/detail/segment_format.hpp"
#include "kinlet/storage/encryption.hpp"

namespace kinlet::storage::detail {

// What scanning a segment found (recovery).
struct ScanResult {
  uint64_t records = 0;
  uint64_t truncated_bytes = 0;
  std::vector<std::pair<uint64_t, uint64_t>> lost;
  std::vector<std::string> notes;
};

// A record located in a segment, its bytes still in the mapping (or, when the
// segment is encrypted, in the caller's scratch buffer).
struct FrameRef {
  FrameHeader header;
  std::string_view key;
  std::string_view data;
  size_t next_offset = 0;
};

class Segment {
 public:
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // Creates `directory`/<first_position>.seg: `capacity` bytes allocated
  // (posix_fallocate), header written and fsynced under a temporary name, then
  // renamed in place (replacing a file of that name) and the directory fsynced.
  // *renamed is set once the rename happened (a later failure then leaves the
  // file in place). Errors: StorageFailure.
  static absl::StatusOr<std::shared_ptr<Segment>> Create(
      const std::string& directory, const SegmentHeader& header, size_t capacity,
      const DiskFaultHook& hook, std::shared_ptr<KeyProvider> provider,
      std::shared_ptr<CipherFactory> factory, std::unique_ptr<RecordCipher> cipher, bool* renamed) {
    *renamed = false;
    std::shared_ptr<Segment> seg(new Segment());
    seg->path_ = directory + "/" + SegmentFileName(header.first_position);
    const std::string tmp = seg->path_ + ".tmp";
    FileDescriptor fd;
    absl::Status s = [&]() -> absl::Status {
      auto opened = OpenFile(tmp, O_RDWR | O_CREAT | O_TRUNC, hook);
      if (!opened.ok()) return opened.status();
      fd = std::move(*opened);
      if (auto st = Allocate(fd, capacity, tmp, hook); !st.ok()) return st;
      std::string bytes(kHeaderBytes, '\0');
      EncodeSegmentHeader(header, bytes.data());
      if (auto st = WriteAll(fd, bytes, 0, tmp, hook); !st.ok()) return st;
      if (auto st = SyncData(fd, tmp, hook); !st.ok()) return st;
      return RenameFile(tmp, seg->path_, hook);
    }();
    if (!s.ok()) {
      (void)RemoveFile(tmp);
      return s;
    }
    *renamed = true;
    KINLET_RETURN_IF_ERROR(SyncDirectory(directory, hook));
    auto map = MapFile(fd, capacity, /*writable=*/true, seg->path_);
    if (!map.ok()) return map.status();
    seg->map_ = std::move(*map);
    seg->InitFresh(header, capacity, std::move(provider), std::move(factory));
    {
      kinlet::detail::MutexLock l(&seg->fd_mu_);
      seg->fd_ = std::move(fd);
    }
    if (cipher != nullptr) {
      kinlet::detail::MutexLock l(&seg->cipher_mu_);
      seg->cipher_owner_ = std::move(cipher);
      seg->cipher_.store(seg->cipher_owner_.get(), std::memory_order_release);
    }
    return seg;
  }

  // Opens an existing segment file. `writable`: the log's last segment (kept
  // open read-write for appends and the recovery's zeroing of a torn tail).
  // A header that fails validation is returned as *bad_header (status OK,
  // null segment) so recovery can set the file aside.
  static absl::StatusOr<std::shared_ptr<Segment>> OpenExisting(
      const std::string& path, bool writable, std::shared_ptr<KeyProvider> provider,
      std::shared_ptr<CipherFactory> factory, std::string* bad_header) {
    std::shared_ptr<Segment> seg(new Segment());
    seg->path_ = path;
    auto fd = OpenFile(path, writable ? O_RDWR : O_RDONLY);
    if (!fd.ok()) return fd.status();
    auto size = FileSize(*fd, path);
    if (!size.ok()) return size.status();
    size_t capacity = static_cast<size_t>(*size) & ~(kFrameAlign - 1);
    if (capacity < kHeaderBytes) {
      *bad_header = "shorter than its 4096-byte header";
      return std::shared_ptr<Segment>();
    }
    auto map = MapFile(*fd, capacity, writable, path);
    if (!map.ok()) return map.status();
    seg->map_ = std::move(*map);
    SegmentHeader header;
    *bad_header = DecodeSegmentHeader(seg->map_.data(), capacity, &header);
    if (!bad_header->empty()) return std::shared_ptr<Segment>();
    if (writable) {  // read-only ones need no descriptor: never fsynced again
      kinlet::detail::MutexLock l(&seg->fd_mu_);
      seg->fd_ = std::move(*fd);
    }
    seg->InitFresh(header, capacity, std::move(provider), std::move(factory));
    return seg;
  }

  const std::string& path() const { return path_; }
  uint64_t first_position() const { return first_position_; }
  size_t capacity() const { return capacity_; }
  const SegmentHeader& header() const { return header_; }
  bool encrypted() const { return header_.encrypted; }
  size_t overhead() const { return header_.encrypted ? header_.cipher_overhead : 0; }

  // ---- writer side (or recovery before publication) ----
  uint64_t next_position() const { return next_position_; }
  uint64_t records() const { return records_; }
  int64_t last_arrival() const { return last_arrival_; }
  size_t write_offset() const { return write_offset_; }
  bool Fits(size_t body_len) const { return write_offset_ + FrameBytes(body_len) <= capacity_; }

  // Writes a frame at the write offset. REQUIRES: writable, Fits(), position
  // == next_position() (after recovery's gaps: >=). `cipher` (encrypted
  // segments) seals key || data assembled in `scratch` (capacity reserved by
  // the caller: no allocation). Errors: the cipher's (nothing is published).
  absl::Status Append(uint64_t position, int64_t arrival_ms, std::string_view key,
                      std::string_view data, const RecordCipher* cipher, std::string* scratch) {
    const size_t off = write_offset_;
    char* f = map_.data() + off;
    const size_t plain = key.size() + data.size();
    const size_t body_len = plain + overhead();
    Store32(f + 8, static_cast<uint32_t>(body_len));
    Store32(f + 12, static_cast<uint32_t>(key.size()));
    Store64(f + 16, position);
    Store64(f + 24, static_cast<uint64_t>(arrival_ms));
    if (cipher != nullptr) {
      scratch->assign(key.data(), key.size());
      scratch->append(data.data(), data.size());
      absl::Status s = cipher->Seal(position, std::string_view(f + 8, kFrameHeaderBytes - 8),
                                    *scratch, f + kFrameHeaderBytes);
      if (!s.ok()) return s;
    } else {
      if (!key.empty()) std::memcpy(f + kFrameHeaderBytes, key.data(), key.size());
      if (!data.empty()) std::memcpy(f + kFrameHeaderBytes + key.size(), data.data(), data.size());
    }
    const size_t frame = FrameBytes(body_len);
    std::memset(f + kFrameHeaderBytes + body_len, 0, frame - kFrameHeaderBytes - body_len);
    Store64(f, Checksum(f + 8, kFrameHeaderBytes - 8 + body_len));
    NoteFrame(position, arrival_ms, off);
    write_offset_ = off + frame;
    end_offset_.store(write_offset_, std::memory_order_release);  // pairs with Locate's acquire
    return absl::OkStatus();
  }

  // Recovery: scans the frames from the header on. Keeps every valid frame
  // whose position continues; at a bad or torn frame looks further for a later
  // valid one (a lost range in the middle, its bytes zeroed when `writable`)
  // and otherwise treats the rest as a torn tail: zeroed when `writable` (so
  // no later scan resurrects it).
  // Fills the index. REQUIRES: not yet published.
  ScanResult Scan(bool writable) {
    ScanResult r;
    const std::string name = SegmentFileName(first_position_);
    const char* base = map_.data();
    size_t off = kHeaderBytes;
    uint64_t expected = first_position_;
    const size_t ovh = overhead();
    FrameHeader h;
    while (off < capacity_) {
      FrameCheck c = CheckFrame(base, capacity_, off, ovh, &h);
      if (c == FrameCheck::kOk && h.position == expected) {
        NoteFrame(h.position, h.arrival_ms, off);
        off += FrameBytes(h.body_len);
        expected = h.position + 1;
        continue;
      }
      // Bad, torn, or the end: is there any later valid frame?
      size_t later = off + kFrameAlign;
      bool found = false;
      for (; later + kFrameHeaderBytes <= capacity_; later += kFrameAlign) {
        if (Load64(base + later) == 0) continue;
        if (CheckFrame(base, capacity_, later, ovh, &h) == FrameCheck::kOk &&
            h.position >= expected && h.position - expected <= capacity_ / kFrameHeaderBytes) {
          found = true;
          break;
        }
      }
      if (found) {
        // The bytes in between are garbage: zeroed when `writable`, so that no
        // read, resynchronising through them, takes a stray copy of a frame
        // in there for a record (fuzzing found one: a copy of a later
        // record's frame, whose checksum is valid).
        if (writable) std::memset(map_.data() + off, 0, later - off);
        if (h.position > expected) r.lost.emplace_back(expected, h.position);
        r.notes.push_back(absl::StrCat("segment ", name, ": corrupt bytes at offsets [", off, ", ",
                                       later, "), positions [", expected, ", ", h.position,
                                       ") lost, later records kept"));
        expected = h.position;
        off = later;
        continue;
      }
      // A torn tail (or the clean end): everything from `off` on is zeroed.
      size_t last_nonzero_end = off;
      for (size_t p = off; p < capacity_; p += kFrameAlign) {
        if (Load64(base + p) != 0) last_nonzero_end = p + kFrameAlign;
      }
      if (last_nonzero_end > off) {
        r.truncated_bytes = last_nonzero_end - off;
        if (writable) std::memset(map_.data() + off, 0, last_nonzero_end - off);
        r.notes.push_back(absl::StrCat("segment ", name, ": torn tail at offset ", off, ", ",
                                       r.truncated_bytes, " bytes ",
                                       writable ? "truncated" : "unreadable"));
      }
      break;
    }
    write_offset_ = std::min(off, capacity_);
    end_offset_.store(write_offset_, std::memory_order_release);
    r.records = records_;
    lost_ = r.lost;
    return r;
  }

  // Recovery: adopts a validated index file instead of scanning. False (and
  // nothing changed) if the segment has bytes past the index's end (records
  // appended after it was written): scan instead.
  // `check_tail` (the last segment, written to after the index): every byte
  // past the end must be zero, or the segment is scanned.
  bool AdoptIndex(const IndexFile& x, bool check_tail) {
    if (x.end_offset > capacity_) return false;
    if (x.end_offset + kFrameHeaderBytes <= capacity_ && Load64(map_.data() + x.end_offset) != 0) {
      return false;
    }
    if (check_tail) {
      for (size_t p = static_cast<size_t>(x.end_offset); p + kFrameAlign <= capacity_;
           p += kFrameAlign) {
        if (Load64(map_.data() + p) != 0) return false;
      }
    }
    if (x.entries.size() > entry_capacity_) return false;
    for (size_t i = 0; i < x.entries.size(); ++i) entries_[i] = x.entries[i];
    entry_count_.store(static_cast<uint32_t>(x.entries.size()), std::memory_order_release);
    write_offset_ = static_cast<size_t>(x.end_offset);
    end_offset_.store(write_offset_, std::memory_order_release);
    next_position_ = x.end_position;
    records_ = x.record_count;
    last_arrival_ = x.last_arrival_ms;
    next_index_offset_ =
        x.entries.empty() ? kHeaderBytes : x.entries.back().offset + kIndexInterval;
    lost_ = x.lost;
    return true;
  }

  // The index file's contents for this segment as written so far.
  IndexFile MakeIndexFile() const {
    IndexFile x;
    x.first_position = first_position_;
    x.end_position = next_position_;
    x.end_offset = write_offset_;
    x.record_count = records_;
    x.last_arrival_ms = last_arrival_;
    uint32_t n = entry_count_.load(std::memory_order_acquire);
    x.entries.assign(entries_.get(), entries_.get() + n);
    x.lost = lost_;
    return x;
  }

  const std::vector<std::pair<uint64_t, uint64_t>>& lost() const { return lost_; }
  std::string index_path() const { return path_ + ".idx"; }

  // fdatasync of the segment if it may still hold unsynced records. Errors:
  // StorageFailure. Thread-safe.
  absl::Status Sync(const DiskFaultHook& hook) const {
    kinlet::detail::MutexLock l(&fd_mu_);
    if (!fd_.valid()) return absl::OkStatus();
    return SyncData(fd_, path_, hook);
  }

  // The segment is full and synced: closes its descriptor (the mapping stays).
  void CloseFile() {
    kinlet::detail::MutexLock l(&fd_mu_);
    fd_.Reset();
  }

  // ---- readers: thread-safe ----

  // The first record's arrival (the smallest in the segment), if any is published.
  bool FirstArrival(int64_t* t) const {
    if (entry_count_.load(std::memory_order_acquire) == 0) return false;
    *t = entries_[0].arrival_ms;
    return true;
  }

  // The offset of the frame holding `position`. REQUIRES: position < limit,
  // every record of this segment below `limit` published. DataLoss if the
  // record is missing (a lost range) or a frame on the way is corrupt.
  absl::StatusOr<size_t> Locate(uint64_t position) const {
    const uint32_t n = entry_count_.load(std::memory_order_acquire);
    const IndexEntry* begin = entries_.get();
    const IndexEntry* it = std::upper_bound(
        begin, begin + n, position, [](uint64_t p, const IndexEntry& e) { return p < e.position; });
    if (it == begin) return Lost(position);
    --it;
    size_t off = static_cast<size_t>(it->offset);
    uint64_t expected = it->position;
    FrameHeader h;
    for (;;) {
      // A frame out of order (behind what was read, or past `position`: a
      // stray copy of a frame, as recovery treats it) counts as corrupt too:
      // the record may still follow it.
      if (CheckFrame(map_.data(), capacity_, off, overhead(), &h) != FrameCheck::kOk ||
          h.position < expected || h.position > position) {
        // A corrupt frame on the way: look for the next valid one before the next
        // index entry (within the published bytes), so records after it stay readable.
        size_t bound = end_offset_.load(std::memory_order_acquire);
        if (it + 1 < begin + n) bound = std::min(bound, static_cast<size_t>((it + 1)->offset));
        bool found = false;
        for (size_t o = off + kFrameAlign; o + kFrameHeaderBytes <= bound; o += kFrameAlign) {
          if (Load64(map_.data() + o) == 0) continue;
          if (CheckFrame(map_.data(), bound, o, overhead(), &h) == FrameCheck::kOk &&
              h.position >= expected && h.position <= position) {
            off = o;
            found = true;
            break;
          }
        }
        if (!found) return Lost(position);
      }
      if (h.position == position) return off;
      if (h.position > position) return Lost(position);
      expected = h.position + 1;
      off += FrameBytes(h.body_len);
    }
  }

  // Decodes the frame at `offset`, which must hold `position`. Encrypted
  // segments open into *scratch. DataLoss if the frame is corrupt, KMS errors
  // if the data key cannot be unwrapped.
  absl::Status Decode(size_t offset, uint64_t position, std::string* scratch, FrameRef* out) const {
    if (CheckFrame(map_.data(), capacity_, offset, overhead(), &out->header) != FrameCheck::kOk ||
        out->header.position != position) {
      return Lost(position);
    }
    const char* f = map_.data() + offset;
    const FrameHeader& h = out->header;
    out->next_offset = offset + FrameBytes(h.body_len);
    if (!encrypted()) {
      out->key = std::string_view(f + kFrameHeaderBytes, h.key_len);
      out->data = std::string_view(f + kFrameHeaderBytes + h.key_len, h.body_len - h.key_len);
      return absl::OkStatus();
    }
    auto cipher = GetCipher();
    if (!cipher.ok()) return cipher.status();
    const size_t plain = h.body_len - overhead();
    if (scratch->size() < plain) scratch->resize(plain);
    absl::Status s =
        (*cipher)->Open(position, std::string_view(f + 8, kFrameHeaderBytes - 8),
                        std::string_view(f + kFrameHeaderBytes, h.body_len), scratch->data());
    if (!s.ok()) {
      if (kinlet::IsDataLoss(s)) return Lost(position, "authentication failed");
      return s;
    }
    out->key = std::string_view(scratch->data(), h.key_len);
    out->data = std::string_view(scratch->data() + h.key_len, plain - h.key_len);
    return absl::OkStatus();
  }

  // The first position at or below `limit` whose record arrived at or after
  // `t_ms` (records below `limit` published), or `fallback` if none here.
  uint64_t LowerBoundArrival(int64_t t_ms, uint64_t limit, uint64_t fallback) const {
    const uint32_t n = entry_count_.load(std::memory_order_acquire);
    const IndexEntry* begin = entries_.get();
    const IndexEntry* it = std::partition_point(
        begin, begin + n, [&](const IndexEntry& e) { return e.arrival_ms < t_ms; });
    if (it == begin) return n == 0 ? fallback : std::min(begin->position, fallback);
    --it;  // the last entry arriving before t: the answer is after it
    size_t off = static_cast<size_t>(it->offset);
    uint64_t expected = it->position;
    FrameHeader h;
    while (expected < limit) {
      if (CheckFrame(map_.data(), capacity_, off, overhead(), &h) != FrameCheck::kOk ||
          h.position < expected) {
        return expected;  // corrupt: reads from here report DataLoss
      }
      if (h.position >= limit) break;
      if (h.arrival_ms >= t_ms) return h.position;
      expected = h.position + 1;
      off += FrameBytes(h.body_len);
    }
    return fallback;
  }

  // The arrival time of record `position` (< a published limit), if readable.
  bool ArrivalAt(uint64_t position, int64_t* t_ms) const {
    auto off = Locate(position);
    if (!off.ok()) return false;
    *t_ms = static_cast<int64_t>(Load64(map_.data() + *off + 24));
    return true;
  }

  // The record cipher of an encrypted segment (null for plaintext), unwrapping
  // its data key through the KeyProvider on first use. KMS errors from the
  // provider; KMSInvalidStateException if none was configured.
  absl::StatusOr<const RecordCipher*> GetCipher() const {
    if (!encrypted()) return static_cast<const RecordCipher*>(nullptr);
    if (const RecordCipher* c = cipher_.load(std::memory_order_acquire)) return c;
    kinlet::detail::MutexLock l(&cipher_mu_);
    if (cipher_owner_ != nullptr) return static_cast<const RecordCipher*>(cipher_owner_.get());
    if (provider_ == nullptr || factory_ == nullptr) {
      return KmsError(ErrorCode::kKmsInvalidState,
                      absl::StrCat("segment ", path_, " is encrypted under key ", header_.key_id,
                                   " but no KeyProvider and CipherFactory are configured"));
    }
    auto key = provider_->UnwrapDataKey(header_.key_id, header_.key_version, header_.wrapped_key);
    if (!key.ok()) return key.status();
    auto made = factory_->Make(*key);
    volatile char* p = key->data();
    for (size_t i = 0; i < key->size(); ++i) p[i] = 0;
    if (!made.ok()) return made.status();
    if ((*made)->Overhead() != header_.cipher_overhead) {
      return DataLoss(absl::StrCat("segment ", path_, ": the cipher's overhead differs from the ",
                                   "one it was written with"));
    }
    cipher_owner_ = std::move(*made);
    cipher_.store(cipher_owner_.get(), std::memory_order_release);
    return static_cast<const RecordCipher*>(cipher_owner_.get());
  }

 private:
  Segment() = default;

  void InitFresh(const SegmentHeader& header, size_t capacity,
                 std::shared_ptr<KeyProvider> provider, std::shared_ptr<CipherFactory> factory) {
    header_ = header;
    first_position_ = header.first_position;
    capacity_ = capacity;
    provider_ = std::move(provider);
    factory_ = std::move(factory);
    entry_capacity_ = capacity / kIndexInterval + 1;
    entries_.reset(new IndexEntry[entry_capacity_]);
    write_offset_ = kHeaderBytes;
    next_position_ = first_position_;
    next_index_offset_ = kHeaderBytes;
  }

  void NoteFrame(uint64_t position, int64_t arrival_ms, size_t off) {
    uint32_t n = entry_count_.load(std::memory_order_relaxed);
    if ((n == 0 || off >= next_index_offset_) && n < entry_capacity_) {
      entries_[n] = IndexEntry{position, arrival_ms, off};
      entry_count_.store(n + 1, std::memory_order_release);  // pairs with readers' acquire
      next_index_offset_ = off + kIndexInterval;
    }
    next_position_ = position + 1;
    ++records_;
    last_arrival_ = arrival_ms;
  }

  absl::Status Lost(uint64_t position, std::string_view why = "corrupt or missing") const {
    return DataLoss(absl::StrCat("record ", position, " in segment ", path_, " is unreadable (",
                                 kinlet::detail::ToAbsl(why), ")"));
  }

  std::string path_;
  SegmentHeader header_;
  uint64_t first_position_ = 0;
  size_t capacity_ = 0;
  Mapping map_;
  std::shared_ptr<KeyProvider> provider_;
  std::shared_ptr<CipherFactory> factory_;

  std::unique_ptr<IndexEntry[]> entries_;
  size_t entry_capacity_ = 0;
  std::atomic<uint32_t> entry_count_{0};
  std::vector<std::pair<uint64_t, uint64_t>> lost_;  // set by recovery, then immutable

  size_t write_offset_ = kHeaderBytes;
  // The end of the written frames, for readers: stored (release) by the writer
  // after each frame, loaded (acquire) by Locate's resync after corruption.
  std::atomic<size_t> end_offset_{kHeaderBytes};
  uint64_t next_position_ = 0;
  uint64_t records_ = 0;
  int64_t last_arrival_ = 0;
  size_t next_index_offset_ = kHeaderBytes;

  mutable kinlet::detail::Mutex fd_mu_;
  FileDescriptor fd_ ABSL_GUARDED_BY(fd_mu_);

  mutable kinlet::detail::Mutex cipher_mu_;
  mutable std::unique_ptr<RecordCipher> cipher_owner_ ABSL_GUARDED_BY(cipher_mu_);
  mutable std::atomic<const RecordCipher*> cipher_{nullptr};
};

}  // namespace kinlet::storage::detail
