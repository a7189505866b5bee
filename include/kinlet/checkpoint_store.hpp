// kinlet/checkpoint_store.hpp: the lease table of a consumer group (the KCL's
// DynamoDB table): one Lease per shard, holding who processes the shard and
// how far it got (the checkpoint).
//
// CheckpointStore is the interface a ConsumerGroup uses; writes (update and
// delete) are compare-and-set on the lease counter, as the KCL's conditional
// DynamoDB writes, so two workers can never both believe they hold a shard.
//   InMemoryCheckpointStore  for tests and for groups that need no restart;
//   FileCheckpointStore      survives a process restart and never corrupts on
//                            a crash: an append-only log of lease records
//                            (each framed with its length and an XXH3
//                            checksum), compacted now and then by a rewrite
//                            to a new file, fsync, rename and directory fsync.
//                            A write costs O(1) in the number of leases;
//                            renewals are not fsynced (see its comment for
//                            what a crash may lose: renewals, never a
//                            checkpoint).
// Implement CheckpointStore to keep leases elsewhere (a database): the four
// calls and their conditions are the whole contract.
//
// One store holds the leases of one application (group name), as one DynamoDB
// table does. Thread safety: every call of both stores is thread-safe; share
// one store object between the workers (ConsumerGroups) of a process.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "kinlet/detail/hash.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"

namespace kinlet {

// The checkpoint sentinels of the KCL. A checkpoint is one of these or the
// decimal text of a sequence number (the last record processed).
inline constexpr std::string_view kCheckpointTrimHorizon = "TRIM_HORIZON";
inline constexpr std::string_view kCheckpointLatest = "LATEST";
inline constexpr std::string_view kCheckpointAtTimestamp = "AT_TIMESTAMP";
inline constexpr std::string_view kCheckpointShardEnd = "SHARD_END";

struct Lease {
  std::string lease_key;        // the shard id
  std::string owner;            // the worker holding it; empty: nobody
  uint64_t lease_counter = 0;   // +1 on every write (take, renew, checkpoint, release)
  std::string checkpoint;       // a sentinel above or a sequence number
  int64_t last_renewal_ms = 0;  // stream clock at the owner's last write
  uint64_t owner_switches_since_checkpoint = 0;
  std::vector<std::string> parent_shard_ids;  // processed to SHARD_END before this one

  friend bool operator==(const Lease&, const Lease&) = default;
};

class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;
  // Every lease, ordered by key.
  virtual absl::StatusOr<std::vector<Lease>> ListLeases() = 0;
  // Adds `lease` unless its key exists (then changes nothing). OK either way.
  virtual absl::Status CreateLeaseIfNotExists(const Lease& lease) = 0;
  // Replaces the stored lease of `lease.lease_key` with `lease` if the stored
  // counter equals `expected_counter`: ConditionalCheckFailedException if it
  // does not (another worker wrote it since), ResourceNotFoundException if
  // there is no such lease.
  virtual absl::Status UpdateLease(const Lease& lease, uint64_t expected_counter) = 0;
  // Removes the lease of `lease_key` if its stored counter equals
  // `expected_counter` (the KCL's conditional deleteLease):
  // ConditionalCheckFailedException if it does not, ResourceNotFoundException
  // if there is no such lease. A later CreateLeaseIfNotExists may add it again.
  virtual absl::Status DeleteLease(std::string_view lease_key, uint64_t expected_counter) = 0;
};

// Leases in memory. Subclasses persist each change (Commit).
class InMemoryCheckpointStore : public CheckpointStore {
 public:
  absl::StatusOr<std::vector<Lease>> ListLeases() override {
    detail::MutexLock lock(&mu_);
    std::vector<Lease> out;
    out.reserve(leases_.size());
    for (const auto& [key, lease] : leases_) out.push_back(lease);
    return out;
  }

  absl::Status CreateLeaseIfNotExists(const Lease& lease) override {
    detail::MutexLock lock(&mu_);
    if (leases_.contains(lease.lease_key)) return absl::OkStatus();
    auto [it, inserted] = leases_.emplace(lease.lease_key, lease);
    absl::Status s = Commit(Change{nullptr, &it->second}, leases_);
    if (!s.ok()) leases_.erase(it);  // nothing changed
    return s;
  }

  absl::Status UpdateLease(const Lease& lease, uint64_t expected_counter) override {
    detail::MutexLock lock(&mu_);
    auto it = leases_.find(lease.lease_key);
    if (absl::Status s = CheckCounter(it, lease.lease_key, expected_counter); !s.ok()) return s;
    Lease previous = std::exchange(it->second, lease);
    absl::Status s = Commit(Change{&previous, &it->second}, leases_);
    if (!s.ok()) it->second = std::move(previous);  // nothing changed
    return s;
  }

  absl::Status DeleteLease(std::string_view lease_key, uint64_t expected_counter) override {
    detail::MutexLock lock(&mu_);
    auto it = leases_.find(lease_key);
    if (absl::Status s = CheckCounter(it, lease_key, expected_counter); !s.ok()) return s;
    auto node = leases_.extract(it);
    absl::Status s = Commit(Change{&node.mapped(), nullptr}, leases_);
    if (!s.ok()) leases_.insert(std::move(node));  // nothing changed
    return s;
  }

 protected:
  using Table = std::map<std::string, Lease, std::less<>>;
  // One change of the table: before == nullptr for a creation, after ==
  // nullptr for a deletion.
  struct Change {
    const Lease* before;
    const Lease* after;
  };
  // Called under the store's lock after every change (`leases` already holds
  // it); an error undoes the change and is returned to the caller.
  virtual absl::Status Commit(const Change& change, const Table& leases) {
    (void)change;
    (void)leases;
    return absl::OkStatus();
  }
  // For subclasses that load a saved table. REQUIRES: before any other call.
  void Restore(Table leases) {
    detail::MutexLock lock(&mu_);
    leases_ = std::move(leases);
  }

 private:
  absl::Status CheckCounter(Table::const_iterator it, std::string_view key,
                            uint64_t expected_counter) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (it == leases_.end())
      return ResourceNotFound(absl::StrCat("No lease for ", detail::ToAbsl(key)));
    if (it->second.lease_counter != expected_counter) {
      return ConditionalCheckFailed(
          absl::StrCat("The conditional request failed: lease ", detail::ToAbsl(key),
                       " is at counter ", it->second.lease_counter, ", not ", expected_counter));
    }
    return absl::OkStatus();
  }

  detail::Mutex mu_;
  Table leases_ ABSL_GUARDED_BY(mu_);
};

// Options of a FileCheckpointStore.
struct FileCheckpointStoreOptions {
  // The log is compacted (rewritten with only the live leases) once it is
  // larger than compaction_factor times the size of the live leases and than
  // min_compaction_bytes. A compaction costs O(live leases) and happens once
  // per (compaction_factor - 1) x live size of appended records, so a write
  // costs O(1) amortised. At least 2.
  int compaction_factor = 4;
  uint64_t min_compaction_bytes = uint64_t{1} << 16;
  // For tests: called instead of every fsync (the log's, a compacted file's,
  // the directory's) with the open descriptor; returns 0, or -1 with errno
  // set. Empty: ::fsync.
  std::function<int(int fd)> sync_for_testing;
};

// Leases in a file that survives restarts: an append-only log of lease
// records, replayed on Open. Two processes must not share one file.
//
// Format (version 2): the line "kinlet-checkpoints\t2\n", then records, each
// framed as: "KLR2" | payload length (u32, little endian) | XXH3-64 of the
// payload seeded with its length (u64, little endian) | payload. A payload is
// text: "S\t<lease>" (a lease written and fsynced), "R\t<lease>" (a renewal,
// not fsynced) or "D\t<key>" (a deletion, fsynced); <lease> is its fields
// tab-separated: key, owner, counter, checkpoint, renewal ms, owner switches,
// parents (comma-separated). Keys, owners, checkpoints and parents must not
// contain tabs, commas or newlines (shard ids, sequence numbers and sentinels
// never do; worker ids are checked by ConsumerGroup). A version-1 file (the
// whole-table text of earlier releases) is read and rewritten as version 2 by
// Open.
//
// What a write costs: one appended record, O(1) in the number of leases; when
// the log has grown past compaction_factor x the live leases' size, it is
// compacted: the live leases are written to "<path>.tmp", fsynced, renamed
// over the log, and the directory is fsynced.
//
// Durability. Every write returns once its record is appended. A write that
// changes anything but lease_counter and last_renewal_ms (a creation, a
// checkpoint, an owner change: take, steal or release; a deletion) is also
// fsynced before it returns; an fsync persists every record before it too.
// A renewal (an update changing only lease_counter and last_renewal_ms) is
// not fsynced. So a machine crash (power loss) may lose the renewals appended
// after the last fsynced write, and nothing else: never a checkpoint, an
// ownership change or a deletion whose call returned OK. Those leases reopen
// with the counter and renewal time of their last fsynced write. That is
// harmless: the store belongs to one process, so the crash also ended every
// worker that knew the newer counters, and a lease that looks older only
// expires sooner. (A crash of the process alone loses nothing: the records
// are in the kernel's page cache.)
//
// Open replays the log. A damaged tail (a record cut short or failing its
// checksum, with no valid record after it) is what a crash while appending
// leaves: it is cut off (recovered_tail_bytes() says how much) and the rest
// is used; it can only hold writes that never returned OK, or renewals. A
// damaged record followed by a valid one cannot come from a crash (appends
// are sequential): Open fails with DataLoss and changes nothing.
//
// Errors of a write: InvalidArgument for a field the format cannot hold
// (nothing is written); Internal for an I/O error (a write, an fsync of the
// log, of a compacted file or of the directory, a rename). After an I/O error
// the file's state is uncertain (the change may or may not be on disk, and an
// fsync error can leave pages unwritten that a retry would not rewrite), so
// the store refuses every later write with Internal; reopen it (after fixing
// the cause): the replay says what the disk holds. Reads keep working.
class FileCheckpointStore : public InMemoryCheckpointStore {
 public:
  // Opens `path`, loading it if it exists (a missing file is created as an
  // empty table, durably). Errors: DataLoss if the file is damaged other than
  // at its tail (nothing is trusted, nothing is overwritten) or its header is
  // unknown; Internal for I/O errors (fsync ones included); InvalidArgument
  // for bad options.
  static absl::StatusOr<std::unique_ptr<FileCheckpointStore>> Open(
      std::string path, FileCheckpointStoreOptions options = {}) {
    if (options.compaction_factor < 2) return InvalidArgument("compaction_factor must be >= 2");
    std::unique_ptr<FileCheckpointStore> store(
        new FileCheckpointStore(std::move(path), std::move(options)));
    absl::StatusOr<Table> table = store->Load();
    if (!table.ok()) return table.status();
    store->Restore(*std::move(table));
    return store;
  }

  ~FileCheckpointStore() override {
    if (fd_ >= 0) ::close(fd_);
  }

  const std::string& path() const { return path_; }

  // For tests and monitoring (thread-safe, relaxed snapshots): the log's size
  // in bytes, the compactions done since Open, and the bytes of damaged tail
  // Open cut off.
  uint64_t log_bytes() const { return log_bytes_.load(std::memory_order_relaxed); }
  uint64_t compactions() const { return compactions_.load(std::memory_order_relaxed); }
  uint64_t recovered_tail_bytes() const { return recovered_tail_bytes_; }

 protected:
  absl::Status Commit(const Change& change, const Table& leases) override {
    if (!failed_.empty()) {
      return absl::InternalError(absl::StrCat("Checkpoint file ", path_, ": refusing writes after ",
                                              failed_, "; reopen the store"));
    }
    if (change.after != nullptr) {
      if (absl::Status s = Validate(*change.after); !s.ok()) return s;
    }
    const bool renewal = change.before != nullptr && change.after != nullptr &&
                         IsRenewal(*change.before, *change.after);
    record_.clear();
    if (change.after != nullptr) {
      AppendFrame(&record_, renewal ? 'R' : 'S', *change.after);
    } else {
      AppendDeletionFrame(&record_, change.before->lease_key);
    }
    if (!WriteAll(fd_, record_)) return Fail("write");
    if (!renewal && Sync(fd_) != 0) return Fail("fsync");
    log_bytes_.fetch_add(record_.size(), std::memory_order_relaxed);
    if (change.before != nullptr) live_bytes_ -= FrameSize(*change.before);
    if (change.after != nullptr) live_bytes_ += FrameSize(*change.after);
    const uint64_t log = log_bytes();
    if (log > options_.min_compaction_bytes &&
        log - kHeader.size() > static_cast<uint64_t>(options_.compaction_factor) * live_bytes_) {
      return Compact(leases);
    }
    return absl::OkStatus();
  }

 private:
  static constexpr std::string_view kHeader = "kinlet-checkpoints\t2\n";
  static constexpr std::string_view kHeaderV1 = "kinlet-checkpoints\t1\n";
  static constexpr std::string_view kMagic = "KLR2";
  static constexpr size_t kFrameHeader = 16;  // magic, length, checksum
  static constexpr uint32_t kMaxPayload = 1u << 20;

  FileCheckpointStore(std::string path, FileCheckpointStoreOptions options)
      : path_(std::move(path)), options_(std::move(options)) {}

  static bool IsRenewal(const Lease& before, const Lease& after) {
    return before.owner == after.owner && before.checkpoint == after.checkpoint &&
           before.owner_switches_since_checkpoint == after.owner_switches_since_checkpoint &&
           before.parent_shard_ids == after.parent_shard_ids;
  }

  static absl::Status Validate(const Lease& lease) {
    if (lease.lease_key.empty()) return InvalidArgument("A lease key must not be empty");
    auto bad = [](std::string_view field) {
      return field.find_first_of("\t\n,") != std::string_view::npos;
    };
    for (std::string_view field : {std::string_view(lease.lease_key), std::string_view(lease.owner),
                                   std::string_view(lease.checkpoint)}) {
      if (bad(field)) {
        return InvalidArgument(absl::StrCat("Lease field '", detail::ToAbsl(field),
                                            "' contains a tab, comma or newline"));
      }
    }
    for (const std::string& parent : lease.parent_shard_ids) {
      if (bad(parent) || parent.empty()) {
        return InvalidArgument(absl::StrCat("Parent shard id '", parent,
                                            "' is empty or contains a tab, comma or newline"));
      }
    }
    return absl::OkStatus();
  }

  static void PutLittleEndian(char* out, uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  }
  static uint64_t GetLittleEndian(const char* in, int bytes) {
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    return value;
  }

  // Appends the frame header for the payload `out` holds from `start` on.
  static void Seal(std::string* out, size_t start) {
    const size_t length = out->size() - start - kFrameHeader;
    char* frame = out->data() + start;
    std::memcpy(frame, kMagic.data(), 4);
    PutLittleEndian(frame + 4, length, 4);
    PutLittleEndian(frame + 8, detail::Xxh3_64(frame + kFrameHeader, length, length), 8);
  }
  static void AppendFrame(std::string* out, char type, const Lease& lease) {
    const size_t start = out->size();
    out->append(kFrameHeader, '\0');
    out->push_back(type);
    absl::StrAppend(out, "\t", lease.lease_key, "\t", lease.owner, "\t", lease.lease_counter, "\t",
                    lease.checkpoint, "\t", lease.last_renewal_ms, "\t",
                    lease.owner_switches_since_checkpoint, "\t",
                    absl::StrJoin(lease.parent_shard_ids, ","));
    Seal(out, start);
  }
  static void AppendDeletionFrame(std::string* out, std::string_view key) {
    const size_t start = out->size();
    out->append(kFrameHeader, '\0');
    absl::StrAppend(out, "D\t", detail::ToAbsl(key));
    Seal(out, start);
  }
  // The size of `lease`'s record in a compacted file.
  static uint64_t FrameSize(const Lease& lease) {
    uint64_t size = kFrameHeader + 8 + lease.lease_key.size() + lease.owner.size() +
                    lease.checkpoint.size() + absl::StrCat(lease.lease_counter).size() +
                    absl::StrCat(lease.last_renewal_ms).size() +
                    absl::StrCat(lease.owner_switches_since_checkpoint).size();
    for (size_t i = 0; i < lease.parent_shard_ids.size(); ++i) {
      size += lease.parent_shard_ids[i].size() + (i == 0 ? 0 : 1);
    }
    return size;
  }

  // The payload of a valid frame at `pos` of `text` (and the frame's size),
  // or nothing if the bytes there are not one: cut short, bad magic, length
  // or checksum.
  static std::optional<std::string_view> FrameAt(std::string_view text, size_t pos,
                                                 size_t* frame_size) {
    if (text.size() - pos < kFrameHeader || text.substr(pos, 4) != kMagic) return std::nullopt;
    const uint64_t length = GetLittleEndian(text.data() + pos + 4, 4);
    if (length > kMaxPayload || text.size() - pos - kFrameHeader < length) return std::nullopt;
    const char* payload = text.data() + pos + kFrameHeader;
    if (GetLittleEndian(text.data() + pos + 8, 8) != detail::Xxh3_64(payload, length, length)) {
      return std::nullopt;
    }
    *frame_size = kFrameHeader + length;
    return std::string_view(payload, length);
  }

  // Applies one record's payload to `table`; false if it does not parse.
  static bool Apply(std::string_view payload, Table* table) {
    std::vector<absl::string_view> f = absl::StrSplit(detail::ToAbsl(payload), '\t');
    if (f.size() == 2 && f[0] == "D" && !f[1].empty()) {
      auto it = table->find(std::string_view(f[1].data(), f[1].size()));
      if (it != table->end()) table->erase(it);
      return true;
    }
    Lease lease;
    if (f.size() != 8 || (f[0] != "S" && f[0] != "R") || f[1].empty() ||
        !absl::SimpleAtoi(f[3], &lease.lease_counter) ||
        !absl::SimpleAtoi(f[5], &lease.last_renewal_ms) ||
        !absl::SimpleAtoi(f[6], &lease.owner_switches_since_checkpoint)) {
      return false;
    }
    lease.lease_key = std::string(f[1]);
    lease.owner = std::string(f[2]);
    lease.checkpoint = std::string(f[4]);
    for (absl::string_view p : absl::StrSplit(f[7], ',', absl::SkipEmpty())) {
      lease.parent_shard_ids.emplace_back(p);
    }
    std::string key = lease.lease_key;
    (*table)[std::move(key)] = std::move(lease);
    return true;
  }

  absl::Status Damaged(std::string_view why) const {
    return absl::DataLossError(absl::StrCat("Checkpoint file ", path_, " is damaged (",
                                            detail::ToAbsl(why), "); refusing to use it"));
  }

  absl::StatusOr<Table> Load() {
    std::string text;
    {
      const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno != ENOENT) return IoError("open");
        if (absl::Status s = Compact(Table{}); !s.ok()) return s;  // a new, empty log
        return Table{};
      }
      char buffer[1 << 14];
      for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          absl::Status s = IoError("read");
          ::close(fd);
          return s;
        }
        if (n == 0) break;
        text.append(buffer, static_cast<size_t>(n));
      }
      ::close(fd);
    }
    if (std::string_view(text).starts_with(kHeaderV1)) {
      absl::StatusOr<Table> table = LoadVersion1(text);
      if (!table.ok()) return table.status();
      if (absl::Status s = Compact(*table); !s.ok()) return s;  // now version 2
      return table;
    }
    if (!std::string_view(text).starts_with(kHeader)) return Damaged("unknown header");
    Table table;
    size_t pos = kHeader.size();
    while (pos < text.size()) {
      size_t frame_size = 0;
      std::optional<std::string_view> payload = FrameAt(text, pos, &frame_size);
      if (!payload) {
        // A torn tail, unless a valid record follows the damage.
        for (size_t q = text.find(kMagic, pos + 1); q != std::string::npos;
             q = text.find(kMagic, q + 1)) {
          size_t ignored = 0;
          if (FrameAt(text, q, &ignored)) {
            return Damaged(
                absl::StrCat("bad record at offset ", pos, " before a valid one at ", q));
          }
        }
        break;
      }
      if (!Apply(*payload, &table)) return Damaged(absl::StrCat("bad record at offset ", pos));
      pos += frame_size;
    }
    if (pos < text.size()) {  // cut the torn tail off, durably, before appending after it
      const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return IoError("open");
      if (::ftruncate(fd, static_cast<off_t>(pos)) != 0 || Sync(fd) != 0) {
        absl::Status s = IoError("truncate the damaged tail of");
        ::close(fd);
        return s;
      }
      ::close(fd);
      recovered_tail_bytes_ = text.size() - pos;
    }
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) return IoError("open");
    log_bytes_.store(pos, std::memory_order_relaxed);
    live_bytes_ = 0;
    for (const auto& [key, lease] : table) live_bytes_ += FrameSize(lease);
    return table;
  }

  // The whole-table text format of version 1: a header line, one line per
  // lease, and a line with the XXH3-64 checksum of the lines before it.
  absl::StatusOr<Table> LoadVersion1(const std::string& text) const {
    const size_t last = text.rfind("checksum\t");
    if (last == std::string::npos || text.back() != '\n') return Damaged("no checksum line");
    uint64_t checksum = 0;
    const std::string_view sum_text =
        std::string_view(text).substr(last + 9, text.size() - last - 10);
    if (!absl::SimpleAtoi(detail::ToAbsl(sum_text), &checksum) ||
        checksum != detail::Xxh3_64(text.data(), last, 0)) {
      return Damaged("checksum mismatch");
    }
    std::vector<absl::string_view> lines =
        absl::StrSplit(absl::string_view(text.data(), last), '\n', absl::SkipEmpty());
    Table table;
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<absl::string_view> f = absl::StrSplit(lines[i], '\t');
      Lease lease;
      if (f.size() != 7 || !absl::SimpleAtoi(f[2], &lease.lease_counter) ||
          !absl::SimpleAtoi(f[4], &lease.last_renewal_ms) ||
          !absl::SimpleAtoi(f[5], &lease.owner_switches_since_checkpoint)) {
        return Damaged(absl::StrCat("bad line ", i + 1));
      }
      if (absl::StrContains(f[0], ',') || absl::StrContains(f[1], ',') ||
          absl::StrContains(f[3], ',') || f[0].empty()) {
        return Damaged(absl::StrCat("bad field on line ", i + 1));
      }
      lease.lease_key = std::string(f[0]);
      lease.owner = std::string(f[1]);
      lease.checkpoint = std::string(f[3]);
      for (absl::string_view p : absl::StrSplit(f[6], ',', absl::SkipEmpty())) {
        lease.parent_shard_ids.emplace_back(p);
      }
      std::string key = lease.lease_key;
      table.emplace(std::move(key), std::move(lease));
    }
    return table;
  }

  // Rewrites the log as the live leases of `leases`: write "<path>.tmp",
  // fsync, rename over the log, fsync the directory, append to the new file
  // from then on. A crash at any point leaves the old log or the new one,
  // whole. An error leaves the store refusing writes (Fail).
  absl::Status Compact(const Table& leases) {
    std::string text(kHeader);
    for (const auto& [key, lease] : leases) AppendFrame(&text, 'S', lease);
    const std::string temp = path_ + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Fail("open " + temp);
    if (!WriteAll(fd, text)) {
      absl::Status s = Fail("write " + temp);
      ::close(fd);
      return s;
    }
    if (Sync(fd) != 0) {
      absl::Status s = Fail("fsync " + temp);
      ::close(fd);
      return s;
    }
    ::close(fd);
    if (::rename(temp.c_str(), path_.c_str()) != 0) return Fail("rename " + temp);
    const size_t slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash + 1);
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return Fail("open directory " + dir);
    if (Sync(dir_fd) != 0) {
      absl::Status s = Fail("fsync directory " + dir);
      ::close(dir_fd);
      return s;
    }
    ::close(dir_fd);
    const int log_fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (log_fd < 0) return Fail("open");
    if (fd_ >= 0) ::close(fd_);
    fd_ = log_fd;
    log_bytes_.store(text.size(), std::memory_order_relaxed);
    live_bytes_ = text.size() - kHeader.size();
    compactions_.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  int Sync(int fd) const {
    if (options_.sync_for_testing) return options_.sync_for_testing(fd);
    int r;
    do {
      r = ::fsync(fd);
    } while (r != 0 && errno == EINTR);
    return r;
  }

  static bool WriteAll(int fd, std::string_view bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Reports an I/O error (errno) and refuses every later write.
  absl::Status Fail(const std::string& what) {
    absl::Status s = IoError(what);
    failed_ = std::string(s.message());
    return s;
  }

  absl::Status IoError(const std::string& what) const {
    return absl::InternalError(
        absl::StrCat("Checkpoint file ", path_, ": ", what, ": ", std::strerror(errno)));
  }

  const std::string path_;
  const FileCheckpointStoreOptions options_;
  // Written by Open (before the store is shared), then by Commit under the
  // base class's lock; log_bytes_ and compactions_ are also read by the
  // monitoring accessors (relaxed: counters, no data published with them).
  int fd_ = -1;  // the log, opened O_APPEND
  std::atomic<uint64_t> log_bytes_{0};
  std::atomic<uint64_t> compactions_{0};
  uint64_t live_bytes_ = 0;  // sum of FrameSize of the live leases
  uint64_t recovered_tail_bytes_ = 0;
  std::string failed_;  // the I/O error that stopped writes; empty: none
  std::string record_;  // the record being appended (reused)
};

}  // namespace kinlet
