// kinlet/checkpoint_store.hpp: the lease table of a consumer group (the KCL's
// DynamoDB table): one Lease per shard, holding who processes the shard and
// how far it got (the checkpoint).
//
// CheckpointStore is the interface a ConsumerGroup uses; writes are
// compare-and-set on the lease counter, as the KCL's conditional DynamoDB
// writes, so two workers can never both believe they hold a shard.
//   InMemoryCheckpointStore  for tests and for groups that need no restart;
//   FileCheckpointStore      survives a process restart and never corrupts on
//                            a crash: every change writes the whole table to a
//                            temporary file, fsyncs it, renames it over the
//                            old one and fsyncs the directory; a checksum
//                            rejects a damaged file.
// Implement CheckpointStore to keep leases elsewhere (a database): the three
// calls and their conditions are the whole contract.
//
// One store holds the leases of one application (group name), as one DynamoDB
// table does. Thread safety: every call of both stores is thread-safe; share
// one store object between the workers (ConsumerGroups) of a process.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
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
    leases_.emplace(lease.lease_key, lease);
    absl::Status s = Commit(leases_);
    if (!s.ok()) leases_.erase(lease.lease_key);  // nothing changed
    return s;
  }

  absl::Status UpdateLease(const Lease& lease, uint64_t expected_counter) override {
    detail::MutexLock lock(&mu_);
    auto it = leases_.find(lease.lease_key);
    if (it == leases_.end()) {
      return ResourceNotFound(absl::StrCat("No lease for ", detail::ToAbsl(lease.lease_key)));
    }
    if (it->second.lease_counter != expected_counter) {
      return ConditionalCheckFailed(
          absl::StrCat("The conditional request failed: lease ", detail::ToAbsl(lease.lease_key),
                       " is at counter ", it->second.lease_counter, ", not ", expected_counter));
    }
    Lease previous = std::exchange(it->second, lease);
    absl::Status s = Commit(leases_);
    if (!s.ok()) it->second = std::move(previous);  // nothing changed
    return s;
  }

 protected:
  using Table = std::map<std::string, Lease>;
  // Called under the store's lock after every change, with the whole table;
  // an error undoes the change and is returned to the caller.
  virtual absl::Status Commit(const Table& leases) {
    (void)leases;
    return absl::OkStatus();
  }
  // For subclasses that load a saved table. REQUIRES: before any other call.
  void Restore(Table leases) {
    detail::MutexLock lock(&mu_);
    leases_ = std::move(leases);
  }

 private:
  detail::Mutex mu_;
  Table leases_ ABSL_GUARDED_BY(mu_);
};

// Leases in a file that survives restarts. The file is text: a header line, one
// tab-separated line per lease, and a line with the XXH3-64 checksum of the
// lines before it. Keys, owners and checkpoints must not contain tabs, commas
// or newlines (shard ids, sequence numbers and sentinels never do; worker ids
// are checked by ConsumerGroup). Two processes must not share one file.
class FileCheckpointStore : public InMemoryCheckpointStore {
 public:
  // Opens `path`, loading it if it exists (a missing file is an empty table).
  // Errors: DataLoss if the file is damaged (bad checksum or format: nothing
  // is trusted, nothing is overwritten); Internal for I/O errors.
  static absl::StatusOr<std::unique_ptr<FileCheckpointStore>> Open(std::string path) {
    std::unique_ptr<FileCheckpointStore> store(new FileCheckpointStore(std::move(path)));
    absl::StatusOr<Table> table = store->Load();
    if (!table.ok()) return table.status();
    store->Restore(*std::move(table));
    return store;
  }

  const std::string& path() const { return path_; }

 protected:
  absl::Status Commit(const Table& leases) override {
    for (const auto& [key, lease] : leases) {
      for (std::string_view field :
           {std::string_view(lease.lease_key), std::string_view(lease.owner),
            std::string_view(lease.checkpoint)}) {
        if (field.find_first_of("\t\n,") != std::string_view::npos) {
          return InvalidArgument(absl::StrCat("Lease field '", detail::ToAbsl(field),
                                              "' contains a tab, comma or newline"));
        }
      }
    }
    std::string text(kHeader);
    text += '\n';
    for (const auto& [key, lease] : leases) {
      absl::StrAppend(&text, lease.lease_key, "\t", lease.owner, "\t", lease.lease_counter, "\t",
                      lease.checkpoint, "\t", lease.last_renewal_ms, "\t",
                      lease.owner_switches_since_checkpoint, "\t",
                      absl::StrJoin(lease.parent_shard_ids, ","), "\n");
    }
    absl::StrAppend(&text, "checksum\t", detail::Xxh3_64(text.data(), text.size(), 0), "\n");
    return WriteAtomically(text);
  }

 private:
  static constexpr std::string_view kHeader = "kinlet-checkpoints\t1";

  explicit FileCheckpointStore(std::string path) : path_(std::move(path)) {}

  absl::StatusOr<Table> Load() const {
    std::string text;
    {
      const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT) return Table{};
        return IoError("open");
      }
      char buffer[1 << 14];
      for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          ::close(fd);
          return IoError("read");
        }
        if (n == 0) break;
        text.append(buffer, static_cast<size_t>(n));
      }
      ::close(fd);
    }
    const auto damaged = [&](std::string_view why) {
      return absl::DataLossError(absl::StrCat("Checkpoint file ", path_, " is damaged (",
                                              detail::ToAbsl(why), "); refusing to use it"));
    };
    const size_t last = text.rfind("checksum\t");
    if (last == std::string::npos || text.empty() || text.back() != '\n') {
      return damaged("no checksum line");
    }
    uint64_t checksum = 0;
    const std::string_view sum_text =
        std::string_view(text).substr(last + 9, text.size() - last - 10);
    if (!absl::SimpleAtoi(detail::ToAbsl(sum_text), &checksum) ||
        checksum != detail::Xxh3_64(text.data(), last, 0)) {
      return damaged("checksum mismatch");
    }
    std::vector<absl::string_view> lines =
        absl::StrSplit(absl::string_view(text.data(), last), '\n', absl::SkipEmpty());
    if (lines.empty() || lines[0] != detail::ToAbsl(kHeader)) return damaged("unknown header");
    Table table;
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<absl::string_view> f = absl::StrSplit(lines[i], '\t');
      Lease lease;
      if (f.size() != 7 || !absl::SimpleAtoi(f[2], &lease.lease_counter) ||
          !absl::SimpleAtoi(f[4], &lease.last_renewal_ms) ||
          !absl::SimpleAtoi(f[5], &lease.owner_switches_since_checkpoint)) {
        return damaged(absl::StrCat("bad line ", i + 1));
      }
      if (absl::StrContains(f[0], ',') || absl::StrContains(f[1], ',') ||
          absl::StrContains(f[3], ',') || f[0].empty()) {
        return damaged(absl::StrCat("bad field on line ", i + 1));
      }
      lease.lease_key = std::string(f[0]);
      lease.owner = std::string(f[1]);
      lease.checkpoint = std::string(f[3]);
      for (absl::string_view p : absl::StrSplit(f[6], ',', absl::SkipEmpty())) {
        lease.parent_shard_ids.emplace_back(p);
      }
      table.emplace(lease.lease_key, std::move(lease));
    }
    return table;
  }

  // Write-to-temp, fsync, rename, fsync the directory: a crash at any point
  // leaves either the old file or the new one, whole.
  absl::Status WriteAtomically(const std::string& text) const {
    const std::string temp = path_ + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return IoError("open " + temp);
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ::close(fd);
        return IoError("write " + temp);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
      ::close(fd);
      return IoError("fsync " + temp);
    }
    ::close(fd);
    if (::rename(temp.c_str(), path_.c_str()) != 0) return IoError("rename " + temp);
    const size_t slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash + 1);
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
    return absl::OkStatus();
  }

  absl::Status IoError(const std::string& what) const {
    return absl::InternalError(
        absl::StrCat("Checkpoint file ", path_, ": ", what, ": ", std::strerror(errno)));
  }

  const std::string path_;
};

}  // namespace kinlet
