// kinlet/storage/shard_log.hpp: the durable log of one shard.
//
// ShardLog keeps a shard's records in fixed-size segment files in the shard's
// own directory (format: storage/detail/segment_format.hpp). The writer
// appends by copying into a MAP_SHARED mapping (no system call per record; a
// killed process keeps every appended record: it is in the page cache), rolls
// to a new segment when one is full (fsyncing the full one and writing its
// sparse index to `<segment>.idx`), and fsyncs per SyncPolicy. Readers read
// concurrently with the writer, with retention (DropExpired) and with each
// other. Open recovers: sealed segments through their index, the last one
// scanned frame by frame; a torn tail is cut (zeroed) and reported, corruption
// in the middle is reported as lost position ranges that read as DataLoss.
//
// Thread safety and memory ordering. Who writes / reads each shared field:
//   end_       written by the writer (Append) with a release store after the
//              record's bytes and its index entry; readers load it with
//              acquire (End()) and only then touch records below it, so they
//              never see a frame being written.
//   begin_     written by DropExpired (writer side) with release after the
//              segment left segments_; read with acquire by Begin().
//   segments_  guarded by list_mu_: the writer adds one at a roll, DropExpired
//              removes the oldest; readers hold list_mu_ only to copy the
//              shared_ptr of the segment they need (a reader waits only on a
//              roll or a drop, never on an append). A reader loads end_ before
//              it takes list_mu_, so the list it sees holds every segment with
//              records below that end (the roll added it before the release).
//   lost_      written by Open, immutable afterwards.
//   current_, sealed_, key_id_, provider_, factory_, pending_roll_, scratch_
//              the writer's only (the shard's writer lock).
//   synced_    one past the last record known fsynced: stored (release) by the
//              group-commit leader under sync_mu_; loaded (acquire) by
//              SyncThrough's fast path.
//   syncing_   guarded by sync_mu_ (one leader at a time; sync_cv_ wakes the
//              followers).
//   failed_ / failure_  the sticky failure: failure_ under fail_mu_; failed_
//              set with release after it, loaded with acquire by Append and
//              health().
#pragma once

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kinlet/config.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/storage/detail/file.hpp"
#include "kinlet/storage/detail/interval_syncer.hpp"
#include "kinlet/storage/detail/segment.hpp"
#include "kinlet/storage/detail/segment_format.hpp"
#include "kinlet/storage/encryption.hpp"
#include "kinlet/storage/storage_options.hpp"

namespace kinlet::storage {

// A record as read: the views are valid only during the callback.
struct LogRecordView {
  uint64_t position;
  int64_t arrival_ms;
  std::string_view key;
  std::string_view data;
};

// What Open found.
struct RecoveryReport {
  uint64_t records = 0;          // valid records found in the log after recovery
  uint64_t truncated_bytes = 0;  // torn/corrupt tail bytes cut from the last segment
  std::vector<std::pair<uint64_t, uint64_t>> lost;  // position ranges [a, b) unreadable (DataLoss)
  std::vector<std::string> notes;  // one human line per finding
};

struct ShardLogOptions {
  std::string directory;  // the shard's own directory (created if missing)
  // Bytes of each new segment file, rounded up to a multiple of 4096; at least
  // the 4 KiB header plus one frame of max_record_bytes (plus the cipher's
  // overhead when encrypting). StorageOptions' 1 MiB floor is the stream's.
  size_t segment_bytes = size_t{64} << 20;
  SyncPolicy sync = SyncPolicy::kNone;
  absl::Duration sync_interval = absl::Milliseconds(100);
  size_t max_record_bytes = size_t{1} << 20;  // largest key + data
  DiskFaultHook faults;                       // may be empty
  // Addition: unwraps the data keys of encrypted segments found on disk (and
  // the log continues encrypting new segments under the last segment's key_id
  // when it was encrypted). May be null for a log never encrypted; reads of an
  // encrypted segment then fail with KMSInvalidStateException.
  std::shared_ptr<KeyProvider> key_provider;
  std::shared_ptr<CipherFactory> cipher_factory;
};

class ShardLog final : private detail::IntervalSyncTarget {
 public:
  // Opens the log in options.directory (creating it, empty, starting at
  // `first_position`, if it holds no segment), recovering as described at the
  // top; fills *report (may be null). Errors: StorageFailureException (cannot
  // create/open/map, errno text and path in the message),
  // InvalidArgumentException (options).
  static absl::StatusOr<std::unique_ptr<ShardLog>> Open(ShardLogOptions options,
                                                        uint64_t first_position,
                                                        RecoveryReport* report);

  // Unregisters from the interval syncer, unmaps and closes. Does not sync.
  ~ShardLog() {
    if (options_.sync == SyncPolicy::kInterval) {
      detail::IntervalSyncer::Instance().Unregister(this);
    }
  }
  ShardLog(const ShardLog&) = delete;
  ShardLog& operator=(const ShardLog&) = delete;

  // ---- writer side: REQUIRES one caller at a time (the shard's writer lock) ----

  // Appends record `position`. REQUIRES: position == End() (asserted).
  // When it returns OK the bytes are in the file (page cache): a killed
  // process keeps them. Does not fsync. No allocation once the current segment
  // exists. Errors: InvalidArgumentException (key + data over max_record_bytes,
  // or arrival_ms below the previous record's); StorageFailureException (a new
  // segment could not be created or allocated, e.g. ENOSPC: nothing written, a
  // later append may succeed; or the log failed earlier after a write/fsync
  // error: sticky); ResourceInUseException after Seal(); KMS errors if a new
  // segment needs a data key and the KeyProvider refuses.
  absl::Status Append(uint64_t position, int64_t arrival_ms, std::string_view key,
                      std::string_view data) {
    if (KINLET_UNLIKELY(failed_.load(std::memory_order_acquire))) return health();
    if (KINLET_UNLIKELY(sealed_)) return ResourceInUse("the shard log is sealed (shard closed)");
    KINLET_ASSERT(position == end_.load(std::memory_order_relaxed),
                  "ShardLog::Append: position must be End()");
    const size_t plain = key.size() + data.size();
    if (KINLET_UNLIKELY(plain > options_.max_record_bytes)) {
      return InvalidArgument(absl::StrCat("record of ", plain, " bytes exceeds the log's maximum ",
                                          options_.max_record_bytes));
    }
    if (KINLET_UNLIKELY(arrival_ms < last_arrival_ms_)) {
      return InvalidArgument("ShardLog::Append: arrival_ms decreased");
    }
    if (KINLET_UNLIKELY(pending_roll_ || !current_->Fits(plain + current_->overhead()))) {
      if (absl::Status s = Roll(std::nullopt, nullptr); !s.ok()) return s;
    }
    const RecordCipher* cipher = nullptr;
    if (current_->encrypted()) {
      auto c = current_->GetCipher();
      if (!c.ok()) return c.status();
      cipher = *c;
    }
    if (absl::Status s = current_->Append(position, arrival_ms, key, data, cipher, &scratch_);
        !s.ok()) {
      return s;
    }
    last_arrival_ms_ = arrival_ms;
    end_.store(position + 1, std::memory_order_release);  // pairs with End()'s acquire
    return absl::OkStatus();
  }

  // Deletes whole segments all of whose records arrived before
  // `expire_before_ms`, oldest first (never the segment being written).
  // Returns the number of records dropped. Readers holding a dropped segment
  // keep reading it safely (the mapping outlives the file).
  uint64_t DropExpired(int64_t expire_before_ms) {
    uint64_t dropped = 0;
    for (;;) {
      std::shared_ptr<detail::Segment> victim;
      {
        kinlet::detail::MutexLock l(&list_mu_);
        if (segments_.size() < 2 || segments_.front() == current_) break;
        const auto& s = segments_.front();
        if (s->records() > 0 && s->last_arrival() >= expire_before_ms) break;
        victim = s;
        segments_.erase(segments_.begin());
        begin_.store(segments_.front()->first_position(), std::memory_order_release);
      }
      dropped += victim->records();
      (void)detail::RemoveFile(victim->path());
      (void)detail::RemoveFile(victim->index_path());
    }
    return dropped;
  }

  // The shard closed: fsyncs, writes the last segment's index, refuses later
  // appends (ResourceInUse). Errors: StorageFailure (the sync failed: the log
  // is failed; or the index could not be written: the log is fine, a reopen
  // scans the segment).
  absl::Status Seal() {
    if (sealed_) return absl::OkStatus();
    KINLET_RETURN_IF_ERROR(SyncThrough(End()));
    sealed_ = true;
    if (current_->records() == 0) return absl::OkStatus();
    return WriteIndex(*current_);
  }

  // Encrypts the records of segments created from now on (starts a new
  // segment now, so new records are encrypted at once) with data keys from
  // `provider` under `key_id`; key_id empty = stop (new segment, plaintext).
  // Errors: the provider's KMS errors (checked before anything changes);
  // InvalidArgumentException (no provider/factory, key_id over 1 KiB, a
  // wrapped key over 2 KiB, a segment too small for the cipher's overhead);
  // StorageFailure as Append's (the new segment is then made by the next
  // Append, under a fresh data key).
  absl::Status SetEncryption(std::shared_ptr<KeyProvider> provider,
                             std::shared_ptr<CipherFactory> factory, std::string key_id);

  // ---- durability: thread-safe, called WITHOUT the writer lock ----

  // Returns once every record below `end` (capped at End()) is fsynced. Group
  // commit: concurrent callers share one fsync (one leader syncs, the others
  // wait for it and return). StorageFailureException if an fsync failed (the
  // log is then failed: Append refuses, reads go on); never retries it.
  absl::Status SyncThrough(uint64_t end);

  // OK or the sticky failure. Thread-safe.
  absl::Status health() const {
    if (!failed_.load(std::memory_order_acquire)) return absl::OkStatus();
    kinlet::detail::MutexLock l(&fail_mu_);
    return failure_;
  }

  // ---- readers: thread-safe, concurrent with the writer, retention and each other ----

  // The oldest position still on disk.
  uint64_t Begin() const { return begin_.load(std::memory_order_acquire); }
  // One past the newest appended (acquire; pairs with Append's release).
  uint64_t End() const { return end_.load(std::memory_order_acquire); }

  // Calls fn(const LogRecordView&) for records from `from`: at most
  // max_records, stopping before the record that would take key + data bytes
  // over max_bytes (the first is always given), and before End(). Views are
  // valid only during the call (decrypted data lives in a per-thread scratch
  // buffer). Returns the count given. Errors: TrimmedDataAccessException if
  // from < Begin(); DataLossException if the record at `from` is corrupt or
  // lost (a later one just ends the page early); KMS errors if the segment's
  // data key cannot be unwrapped.
  template <typename Fn>
  absl::StatusOr<size_t> Read(uint64_t from, size_t max_records, size_t max_bytes, Fn&& fn) const {
    const uint64_t end = End();  // before the list: see the top
    if (from < Begin()) return Trimmed(from);
    if (from >= end || max_records == 0) return size_t{0};
    if (InLost(from)) return LostError(from);
    thread_local std::string scratch;
    size_t given = 0;
    size_t bytes = 0;
    uint64_t pos = from;
    while (pos < end && given < max_records) {
      std::shared_ptr<detail::Segment> seg;
      uint64_t limit = 0;
      if (!Find(pos, end, &seg, &limit)) {
        if (given == 0) return Trimmed(from);
        break;
      }
      auto off = seg->Locate(pos);
      if (!off.ok()) {
        if (given == 0) return off.status();
        break;
      }
      size_t offset = *off;
      detail::FrameRef ref;
      while (pos < limit && given < max_records) {
        absl::Status s = seg->Decode(offset, pos, &scratch, &ref);
        if (!s.ok()) {
          if (given == 0) return s;
          return given;
        }
        const size_t size = ref.key.size() + ref.data.size();
        if (given > 0 && bytes + size > max_bytes) return given;
        fn(LogRecordView{pos, ref.header.arrival_ms, ref.key, ref.data});
        ++given;
        bytes += size;
        ++pos;
        offset = ref.next_offset;
      }
      if (pos < end && pos >= limit && InLost(pos)) break;  // a gap between segments
    }
    return given;
  }

  // The arrival time of record `position`; nullopt if not on disk (trimmed,
  // not yet appended, lost or corrupt).
  std::optional<int64_t> ArrivalAt(uint64_t position) const {
    const uint64_t end = End();
    if (position < Begin() || position >= end) return std::nullopt;
    std::shared_ptr<detail::Segment> seg;
    uint64_t limit = 0;
    if (!Find(position, end, &seg, &limit) || position >= limit) return std::nullopt;
    int64_t t = 0;
    if (!seg->ArrivalAt(position, &t)) return std::nullopt;
    return t;
  }

  // The first position whose record arrived at or after `t_ms`, or End().
  // (Arrivals never decrease, so this is a binary search over segments and
  // their sparse index, then a scan of at most ~4 KiB.)
  uint64_t LowerBoundArrival(int64_t t_ms) const {
    const uint64_t end = End();
    std::shared_ptr<detail::Segment> seg;
    uint64_t limit = end;
    uint64_t fallback = end;
    {
      kinlet::detail::MutexLock l(&list_mu_);
      auto it = std::partition_point(segments_.begin(), segments_.end(), [&](const auto& s) {
        int64_t first = 0;
        return s->first_position() < end && s->FirstArrival(&first) && first < t_ms;
      });
      if (it != segments_.end()) {
        fallback = std::min(end, (*it)->first_position());
        limit = fallback;
      }
      if (it == segments_.begin()) return fallback;
      seg = *std::prev(it);
    }
    return seg->LowerBoundArrival(t_ms, limit, fallback);
  }

  size_t segment_count() const {
    kinlet::detail::MutexLock l(&list_mu_);
    return segments_.size();
  }
  uint64_t bytes_on_disk() const {
    kinlet::detail::MutexLock l(&list_mu_);
    uint64_t total = 0;
    for (const auto& s : segments_) total += s->capacity();
    return total;
  }
  const std::string& directory() const { return options_.directory; }
  // Addition: the position ranges Open found unreadable (as in its report).
  const std::vector<std::pair<uint64_t, uint64_t>>& lost() const { return lost_; }

  // Deletes every file of a log and its directory (the shard was deleted).
  // REQUIRES: no ShardLog open on it. Errors: StorageFailure.
  static absl::Status Remove(const std::string& directory) {
    std::error_code ec;
    std::filesystem::remove_all(directory, ec);
    if (ec) return detail::ErrnoFailure("remove", directory, ec.value());
    return absl::OkStatus();
  }

 private:
  explicit ShardLog(ShardLogOptions options) : options_(std::move(options)) {}

  void IntervalSync() override { (void)SyncThrough(End()); }

  static absl::Status ValidateOptions(ShardLogOptions* o);
  absl::Status Recover(uint64_t first_position, RecoveryReport* report);
  absl::Status Roll(std::optional<DataKey> key, std::unique_ptr<RecordCipher> cipher);
  absl::Status WriteIndex(const detail::Segment& seg) {
    return detail::WriteFileAtomically(seg.index_path(),
                                       detail::EncodeIndexFile(seg.MakeIndexFile()),
                                       options_.faults);
  }

  void Fail(const absl::Status& s) {
    kinlet::detail::MutexLock l(&fail_mu_);
    if (failure_.ok()) failure_ = s;
    failed_.store(true, std::memory_order_release);
  }

  // The segment holding `pos` and the first position past it (capped at `end`).
  bool Find(uint64_t pos, uint64_t end, std::shared_ptr<detail::Segment>* seg,
            uint64_t* limit) const {
    kinlet::detail::MutexLock l(&list_mu_);
    auto it = std::upper_bound(
        segments_.begin(), segments_.end(), pos,
        [](uint64_t p, const std::shared_ptr<detail::Segment>& s) { return p < s->first_position(); });
    if (it == segments_.begin()) return false;
    *limit = it == segments_.end() ? end : std::min(end, (*it)->first_position());
    *seg = *std::prev(it);
    return true;
  }

  bool InLost(uint64_t pos) const {
    for (const auto& [a, b] : lost_) {
      if (pos >= a && pos < b) return true;
    }
    return false;
  }
  absl::Status LostError(uint64_t pos) const {
    return DataLoss(absl::StrCat("record ", pos, " of the log in ", options_.directory,
                                 " was lost (corrupt or missing on disk)"));
  }
  absl::Status Trimmed(uint64_t pos) const {
    return TrimmedDataAccess(absl::StrCat("position ", pos, " is below the log's oldest record ",
                                          Begin(), " (retention removed it)"));
  }

  ShardLogOptions options_;

  mutable kinlet::detail::Mutex list_mu_;
  std::vector<std::shared_ptr<detail::Segment>> segments_ ABSL_GUARDED_BY(list_mu_);
  std::atomic<uint64_t> begin_{0};
  alignas(KINLET_CACHE_LINE_SIZE) std::atomic<uint64_t> end_{0};
  std::vector<std::pair<uint64_t, uint64_t>> lost_;

  // Writer-only.
  alignas(KINLET_CACHE_LINE_SIZE) std::shared_ptr<detail::Segment> current_;
  int64_t last_arrival_ms_ = INT64_MIN;
  bool sealed_ = false;
  bool pending_roll_ = false;
  std::string key_id_;
  std::shared_ptr<KeyProvider> provider_;
  std::shared_ptr<CipherFactory> factory_;
  std::string scratch_;

  // Group commit.
  alignas(KINLET_CACHE_LINE_SIZE) std::atomic<uint64_t> synced_{0};
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool syncing_ = false;  // guarded by sync_mu_

  std::atomic<bool> failed_{false};
  mutable kinlet::detail::Mutex fail_mu_;
  absl::Status failure_ ABSL_GUARDED_BY(fail_mu_);
};

}  // namespace kinlet::storage

#include "kinlet/storage/detail/shard_log_impl.hpp"  // IWYU pragma: export
