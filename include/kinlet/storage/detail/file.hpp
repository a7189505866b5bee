// kinlet/storage/detail/file.hpp: every disk operation of the storage engine.
//
// One small layer over POSIX: RAII for file descriptors and memory mappings,
// errno turned into StorageFailureException naming the operation, the path and
// the errno text, and the DiskFaultHook consulted before each DiskOp (tests
// inject ENOSPC / EIO there: the operation then fails exactly as if the system
// call had returned that errno).
//
// Also the two helpers the stream metadata uses: WriteFileAtomically (tmp +
// fsync + rename + fsync of the directory) and ReadFile.
//
// Thread safety: free functions are thread-safe; FileDescriptor and Mapping are
// plain RAII values (move-only), not synchronised.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kinlet/errors.hpp"
#include "kinlet/storage/storage_options.hpp"

namespace kinlet::storage::detail {

// "No such file or directory (errno 2)". Thread-safe (no strerror buffer).
inline std::string ErrnoText(int err) {
  return absl::StrCat(std::error_code(err, std::generic_category()).message(), " (errno ", err,
                      ")");
}

// StorageFailureException "<what> <path>: <errno text>".
inline absl::Status ErrnoFailure(std::string_view what, const std::string& path, int err) {
  return StorageFailure(absl::StrCat(kinlet::detail::ToAbsl(what), " ", path, ": ", ErrnoText(err)));
}

// The errno the fault hook injects for `op` on `path` (0: proceed).
inline int InjectedErrno(const DiskFaultHook& hook, DiskOp op, const std::string& path) {
  return hook ? hook(op, path) : 0;
}

// An owned file descriptor; closes on destruction.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// An owned memory mapping; unmaps on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(char* data, size_t size) : data_(data), size_(size) {}
  Mapping(Mapping&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      Reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { Reset(); }

  char* data() const { return data_; }
  size_t size() const { return size_; }
  void Reset() {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

// Opens `path` with `flags` (O_CLOEXEC added). With O_CREAT the hook is
// consulted for DiskOp::kCreate.
inline absl::StatusOr<FileDescriptor> OpenFile(const std::string& path, int flags,
                                               const DiskFaultHook& hook = {}) {
  if ((flags & O_CREAT) != 0) {
    if (int err = InjectedErrno(hook, DiskOp::kCreate, path)) return ErrnoFailure("create", path, err);
  }
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoFailure((flags & O_CREAT) != 0 ? "create" : "open", path, errno);
  return FileDescriptor(fd);
}

// Reserves `size` bytes of blocks for `fd` (posix_fallocate), so stores into a
// mapping of it can never meet ENOSPC (a SIGBUS). DiskOp::kAllocate.
inline absl::Status Allocate(const FileDescriptor& fd, uint64_t size, const std::string& path,
                             const DiskFaultHook& hook) {
  int err = InjectedErrno(hook, DiskOp::kAllocate, path);
  if (err == 0) err = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size));
  if (err == EOPNOTSUPP || err == EINVAL) {
    return StorageFailure(absl::StrCat("allocate ", path, ": the file system does not support ",
                                       "posix_fallocate, which durable streams need: ",
                                       ErrnoText(err)));
  }
  if (err != 0) return ErrnoFailure("allocate", path, err);
  return absl::OkStatus();
}

// fdatasync(fd): the data of the file (and of any MAP_SHARED mapping of it: on
// Linux the page cache is shared, so this also writes back pages dirtied
// through the mapping, as msync(MS_SYNC) would). DiskOp::kSync.
inline absl::Status SyncData(const FileDescriptor& fd, const std::string& path,
                             const DiskFaultHook& hook) {
  int err = InjectedErrno(hook, DiskOp::kSync, path);
  if (err == 0 && ::fdatasync(fd.get()) != 0) err = errno;
  if (err != 0) return ErrnoFailure("fsync", path, err);
  return absl::OkStatus();
}

// fsync of a directory (makes creations and renames in it durable). DiskOp::kSync.
inline absl::Status SyncDirectory(const std::string& directory, const DiskFaultHook& hook) {
  int err = InjectedErrno(hook, DiskOp::kSync, directory);
  if (err != 0) return ErrnoFailure("fsync directory", directory, err);
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoFailure("open directory", directory, errno);
  FileDescriptor owned(fd);
  if (::fsync(fd) != 0 && errno != EINVAL) return ErrnoFailure("fsync directory", directory, errno);
  return absl::OkStatus();
}

// pwrite of all of `data` at `offset`. DiskOp::kWrite.
inline absl::Status WriteAll(const FileDescriptor& fd, std::string_view data, uint64_t offset,
                             const std::string& path, const DiskFaultHook& hook) {
  if (int err = InjectedErrno(hook, DiskOp::kWrite, path)) return ErrnoFailure("write", path, err);
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoFailure("write", path, errno);
    }
    if (n == 0) return ErrnoFailure("write", path, EIO);
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

// rename(from, to), replacing `to`. DiskOp::kRename.
inline absl::Status RenameFile(const std::string& from, const std::string& to,
                               const DiskFaultHook& hook) {
  if (int err = InjectedErrno(hook, DiskOp::kRename, to)) return ErrnoFailure("rename", to, err);
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoFailure(absl::StrCat("rename ", from, " to"), to, errno);
  }
  return absl::OkStatus();
}

// unlink(path); a missing file is not an error.
inline absl::Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoFailure("remove", path, errno);
  return absl::OkStatus();
}

inline absl::StatusOr<uint64_t> FileSize(const FileDescriptor& fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoFailure("stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

// Maps `size` bytes of `fd` MAP_SHARED (read-write if `writable`).
inline absl::StatusOr<Mapping> MapFile(const FileDescriptor& fd, size_t size, bool writable,
                                       const std::string& path) {
  if (size == 0) return Mapping();
  void* p = ::mmap(nullptr, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                   fd.get(), 0);
  if (p == MAP_FAILED) {
    int err = errno;
    if (err == ENODEV || err == EINVAL || err == EOPNOTSUPP) {
      return StorageFailure(absl::StrCat("mmap ", path, ": the file system does not support ",
                                         "shared memory mappings, which durable streams need: ",
                                         ErrnoText(err)));
    }
    return ErrnoFailure("mmap", path, err);
  }
  return Mapping(static_cast<char*>(p), size);
}

// Creates `directory` and its parents (existing ones are fine).
inline absl::Status CreateDirectories(const std::string& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) return ErrnoFailure("create directory", directory, ec.value());
  if (!std::filesystem::is_directory(directory, ec)) {
    return ErrnoFailure("create directory", directory, ENOTDIR);
  }
  return absl::OkStatus();
}

// The directory part of `path` ("." if none).
inline std::string ParentDirectory(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Replaces `path` with `contents` atomically: writes `path`.tmp, fsyncs it,
// renames it over `path` and fsyncs the directory. After a crash `path` holds
// either the old or the new contents, never a mix. Errors: StorageFailure
// (errno and path; the hook sees kCreate, kWrite, kSync, kRename). Thread-safe
// for distinct paths.
inline absl::Status WriteFileAtomically(const std::string& path, std::string_view contents,
                                        const DiskFaultHook& hook) {
  const std::string tmp = path + ".tmp";
  absl::Status status = [&]() -> absl::Status {
    auto fd = OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, hook);
    if (!fd.ok()) return fd.status();
    if (auto s = WriteAll(*fd, contents, 0, tmp, hook); !s.ok()) return s;
    int err = InjectedErrno(hook, DiskOp::kSync, tmp);
    if (err == 0 && ::fsync(fd->get()) != 0) err = errno;
    if (err != 0) return ErrnoFailure("fsync", tmp, err);
    return RenameFile(tmp, path, hook);
  }();
  if (!status.ok()) {
    (void)RemoveFile(tmp);
    return status;
  }
  return SyncDirectory(ParentDirectory(path), hook);
}

// The whole contents of `path`. ResourceNotFoundException if it does not
// exist; StorageFailure for other errors. Thread-safe.
inline absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int raw;
  do {
    raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (raw < 0 && errno == EINTR);
  if (raw < 0) {
    int err = errno;
    if (err == ENOENT) return ResourceNotFound(absl::StrCat("file ", path, " does not exist"));
    return ErrnoFailure("open", path, err);
  }
  FileDescriptor fd(raw);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoFailure("read", path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace kinlet::storage::detail
