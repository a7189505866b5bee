// kinlet/storage/detail/directory_lock.hpp: one opener per durable directory.
//
// DirectoryLock::Acquire(dir) creates `dir` if needed and takes an exclusive
// flock(2) on `dir`/LOCK, writing the holder's pid into it. flock locks belong
// to the open file description, so a second Acquire of the same directory is
// refused in this process as well as in another one. The kernel drops the lock
// when the holder exits, however it exits (a stale LOCK file from a killed
// process is simply locked again).
//
// Thread safety: Acquire is thread-safe; a DirectoryLock is a move-only value.
#pragma once

#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "kinlet/errors.hpp"
#include "kinlet/storage/detail/file.hpp"

namespace kinlet::storage::detail {

class DirectoryLock {
 public:
  DirectoryLock() = default;
  DirectoryLock(DirectoryLock&&) noexcept = default;
  DirectoryLock& operator=(DirectoryLock&& o) noexcept {
    if (this != &o) {
      Release();
      fd_ = std::move(o.fd_);
      directory_ = std::move(o.directory_);
    }
    return *this;
  }
  ~DirectoryLock() { Release(); }

  // Creates `directory` (and parents) and locks it. Errors:
  // ResourceInUseException "directory D is already open (process PID)" when
  // another holder (this process included) has it; StorageFailureException if
  // the directory cannot be created or the file system cannot lock (errno text
  // and path in the message).
  static absl::StatusOr<DirectoryLock> Acquire(const std::string& directory) {
    if (auto s = CreateDirectories(directory); !s.ok()) return s;
    const std::string path = directory + "/LOCK";
    auto fd = OpenFile(path, O_RDWR | O_CREAT);
    if (!fd.ok()) return fd.status();
    if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      if (err == EWOULDBLOCK) {
        std::string holder = "unknown";
        char buf[32] = {};
        ssize_t n = ::pread(fd->get(), buf, sizeof buf - 1, 0);
        if (n > 0) {
          int64_t pid = 0;
          if (absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, n)), &pid)) {
            holder = absl::StrCat(pid);
          }
        }
        return ResourceInUse(
            absl::StrCat("directory ", directory, " is already open (process ", holder, ")"));
      }
      return StorageFailure(absl::StrCat("lock ", path, ": the file system cannot lock files (",
                                         ErrnoText(err), ")"));
    }
    std::string pid = absl::StrCat(::getpid(), "\n");
    if (::ftruncate(fd->get(), 0) != 0) return ErrnoFailure("truncate", path, errno);
    if (auto s = WriteAll(*fd, pid, 0, path, {}); !s.ok()) return s;
    DirectoryLock lock;
    lock.fd_ = std::move(*fd);
    lock.directory_ = directory;
    return lock;
  }

  bool held() const { return fd_.valid(); }
  const std::string& directory() const { return directory_; }

  // Unlocks now (the destructor does it otherwise).
  void Release() {
    if (fd_.valid()) ::flock(fd_.get(), LOCK_UN);
    fd_.Reset();
  }

 private:
  FileDescriptor fd_;
  std::string directory_;
};

}  // namespace kinlet::storage::detail
