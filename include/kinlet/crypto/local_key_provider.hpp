// kinlet/crypto/local_key_provider.hpp: a KMS stand-in whose master keys live
// in one local key file: the KeyProvider of encryption at rest
// (kinlet/storage/encryption.hpp) for tests, development and single-host
// deployments. Link kinlet::crypto (find_package(kinlet COMPONENTS crypto)).
//
// It behaves as AWS KMS does for what Kinesis asks of it: master keys named by
// key id (a UUID), key ARN ("arn:aws:kms:us-east-1:000000000000:key/<uuid>"),
// alias ("alias/my-key") or alias ARN; key states Enabled, Disabled and
// PendingDeletion; on-demand rotation that keeps every earlier version for
// unwrapping; and the errors Kinesis returns when a key cannot be used:
//   unknown key, alias or ARN, a deleted key   KMSNotFoundException
//   a Disabled key                             KMSDisabledException
//   a key pending deletion                     KMSInvalidStateException
//   a key whose access is denied (a switch)    KMSAccessDeniedException
//   throttling switched on (SetThrottled)      KMSThrottlingException
// ("alias/aws/kinesis", Kinesis's AWS managed key, is created on first use,
// as AWS does; it cannot be disabled, rotated on demand or deleted.)
//
// Data keys (GenerateDataKey) are 32 random bytes (RAND_bytes) wrapped with
// AES-256-GCM under the key's current version. Wrapped blob, 112 bytes:
//
//   0   4  magic "KLW1"
//   4   4  master key version, big-endian    (bytes 0..44: the GCM aad)
//   8  36  master key id (UUID text)
//  44  12  random IV
//  56  32  the data key, encrypted
//  88  16  GCM tag
// 104   8  XXH3-64 of bytes 0..104, big-endian (a flipped bit anywhere is
//          DataLossException before any key is looked up)
//
// Key file: text lines, the last one a checksum of all before it; rewritten
// whole and atomically (a temporary file, fsync, rename, fsync of the
// directory) with mode 0600. Open refuses a file that group or others may
// access, and a corrupt one (DataLossException naming the line).
//
//   kinlet-local-kms 1
//   key <uuid> <Enabled|Disabled|PendingDeletion> <alias/NAME|-> deny=<0|1> managed=<0|1>
//   version <n> <64 hex digits>        (n = 1, 2, ... under their key line)
//   end <16 hex digits: XXH3-64 of every byte before this line>
//
// Several processes may share a key file: every change is made under an
// exclusive flock() of "<key_file>.lock" on the file as it is on disk, so no
// process's change is lost. A process sees another's changes when it next
// changes something, calls Reload(), or misses a key (a lookup that finds no
// key reloads once).
//
// Thread safety: every member is thread-safe (one mutex; KMS calls are not a
// hot path: one per segment). The master keys are in memory for the
// provider's lifetime and wiped when it is destroyed.
#pragma once

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kinlet/crypto/aes_gcm.hpp"
#include "kinlet/detail/hash.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/status_macros.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/storage/encryption.hpp"

namespace kinlet::crypto {

enum class KeyState { kEnabled, kDisabled, kPendingDeletion };

constexpr std::string_view KeyStateName(KeyState s) {
  switch (s) {
    case KeyState::kEnabled:
      return "Enabled";
    case KeyState::kDisabled:
      return "Disabled";
    case KeyState::kPendingDeletion:
      return "PendingDeletion";
  }
  return "Enabled";
}

// What DescribeKey returns (a copy).
struct KeyDescription {
  std::string key_id;  // the UUID
  std::string arn;     // arn:aws:kms:us-east-1:000000000000:key/<uuid>
  std::string alias;   // "alias/NAME", or "" for none
  KeyState state = KeyState::kEnabled;
  uint32_t current_version = 0;  // 1 for a new key; +1 per RotateKey
  bool access_denied = false;
  bool aws_managed = false;
};

namespace detail {

inline constexpr std::string_view kRegion = "us-east-1";
inline constexpr std::string_view kAccount = "000000000000";
inline constexpr std::string_view kAwsKinesisAlias = "alias/aws/kinesis";
inline constexpr std::string_view kFileHeader = "kinlet-local-kms 1";
inline constexpr std::string_view kWrapMagic = "KLW1";
inline constexpr size_t kUuidSize = 36;
inline constexpr size_t kWrapHeaderSize = 4 + 4 + kUuidSize;  // the aad
inline constexpr size_t kWrappedSize =
    kWrapHeaderSize + kGcmIvSize + kAes256KeySize + kGcmTagSize + 8;

inline std::string KeyArn(std::string_view uuid) {
  return "arn:aws:kms:" + std::string(kRegion) + ":" + std::string(kAccount) + ":key/" +
         std::string(uuid);
}

inline std::string ErrnoMessage(std::string_view what, const std::string& path, int err) {
  return std::string(what) + " " + path + ": " + std::generic_category().message(err);
}

inline std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 15];
  }
  return out;
}

inline int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Lower-case hex to bytes; false on any other character or an odd length.
inline bool Unhex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->assign(hex.size() / 2, '\0');
  for (size_t i = 0; i < out->size(); ++i) {
    const int hi = HexDigit(hex[2 * i]);
    const int lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

inline bool IsUuid(std::string_view s) {
  if (s.size() != kUuidSize) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (HexDigit(s[i]) < 0) {
      return false;
    }
  }
  return true;
}

// A KMS alias name after "alias/": 1..250 of [A-Za-z0-9/_-].
inline bool IsAliasName(std::string_view name) {
  if (name.empty() || name.size() > 250) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '/' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

inline absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return InternalFailure(OpenSslError("RAND_bytes"));
  }
  return out;
}

inline absl::StatusOr<std::string> NewUuid() {
  KINLET_ASSIGN_OR_RETURN(std::string b, RandomBytes(16));
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::string h = Hex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

inline void PutBigEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}

inline uint64_t GetBigEndian(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) v = v << 8 | static_cast<unsigned char>(c);
  return v;
}

// A master key as held in memory and in the key file.
struct MasterKey {
  std::string uuid;
  std::string alias;  // "alias/NAME" or ""
  KeyState state = KeyState::kEnabled;
  bool deny = false;
  bool aws_managed = false;
  std::vector<std::string> versions;  // versions[i]: 32 bytes of version i + 1

  MasterKey() = default;
  MasterKey(const MasterKey&) = default;
  MasterKey& operator=(const MasterKey&) = default;
  MasterKey(MasterKey&&) = default;
  MasterKey& operator=(MasterKey&&) = default;
  ~MasterKey() {
    for (std::string& v : versions) OPENSSL_cleanse(v.data(), v.size());
  }

  uint32_t current_version() const { return static_cast<uint32_t>(versions.size()); }
};

// By UUID; ordered, so that a file is written the same way every time.
using KeyTable = std::map<std::string, MasterKey, std::less<>>;

// Wipes a string that held key material when it goes out of scope.
struct Wipe {
  std::string* s;
  ~Wipe() { OPENSSL_cleanse(s->data(), s->size()); }
};

inline std::string SerializeKeyTable(const KeyTable& keys) {
  std::string out(kFileHeader);
  out += '\n';
  for (const auto& [uuid, key] : keys) {
    out += "key " + uuid + " " + std::string(KeyStateName(key.state)) + " " +
           (key.alias.empty() ? std::string("-") : key.alias) + " deny=" + (key.deny ? "1" : "0") +
           " managed=" + (key.aws_managed ? "1" : "0") + "\n";
    for (size_t v = 0; v < key.versions.size(); ++v) {
      std::string hex = Hex(key.versions[v]);
      out += "version " + std::to_string(v + 1) + " " + hex + "\n";
      OPENSSL_cleanse(hex.data(), hex.size());
    }
  }
  const uint64_t sum = kinlet::detail::Xxh3_64(out.data(), out.size(), 0);
  std::string sum_bytes;
  PutBigEndian(sum, 8, &sum_bytes);
  out += "end " + Hex(sum_bytes) + "\n";
  return out;
}

inline std::vector<std::string_view> SplitSpaces(std::string_view line) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= line.size()) {
    const size_t space = line.find(' ', start);
    const size_t end = space == std::string_view::npos ? line.size() : space;
    parts.push_back(line.substr(start, end - start));
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  return parts;
}

// Parses a key file's text. DataLossException naming `path` and the line for
// anything but a well-formed file whose checksum holds. An empty text (a file
// of 0 bytes) is an empty table.
inline absl::StatusOr<KeyTable> ParseKeyTable(std::string_view text, const std::string& path) {
  KeyTable keys;
  if (text.empty()) return keys;
  auto corrupt = [&path](size_t line, std::string_view why) {
    return DataLoss("key file " + path + " is corrupt (line " + std::to_string(line) +
                    "): " + std::string(why));
  };
  if (text.back() != '\n') return corrupt(0, "it does not end with a newline (truncated?)");
  // The checksum line is the last one; it covers every byte before it.
  const size_t last_start = text.rfind('\n', text.size() - 2) + 1;  // npos + 1 == 0
  const std::string_view body = text.substr(0, last_start);
  const std::string_view last = text.substr(last_start, text.size() - 1 - last_start);
  const size_t line_count = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  {
    const auto parts = SplitSpaces(last);
    std::string sum_bytes;
    if (parts.size() != 2 || parts[0] != "end" || parts[1].size() != 16 ||
        !Unhex(parts[1], &sum_bytes)) {
      return corrupt(line_count, "the last line is not 'end <checksum>' (truncated?)");
    }
    if (GetBigEndian(sum_bytes) != kinlet::detail::Xxh3_64(body.data(), body.size(), 0)) {
      return corrupt(line_count, "the checksum does not match the contents");
    }
  }
  MasterKey* current = nullptr;
  size_t line_no = 0;
  size_t pos = 0;
  std::map<std::string, std::string, std::less<>> aliases;
  while (pos < body.size()) {
    const size_t nl = body.find('\n', pos);
    const std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line_no == 1) {
      if (line != kFileHeader) return corrupt(1, "not a kinlet local key file (bad header)");
      continue;
    }
    const auto parts = SplitSpaces(line);
    if (parts[0] == "key") {
      if (current != nullptr && current->versions.empty()) {
        return corrupt(line_no - 1, "a key without versions");
      }
      if (parts.size() != 6 || !IsUuid(parts[1]) || parts[4].substr(0, 5) != "deny=" ||
          parts[5].substr(0, 8) != "managed=") {
        return corrupt(line_no, "malformed key line");
      }
      MasterKey key;
      key.uuid = std::string(parts[1]);
      if (parts[2] == "Enabled") {
        key.state = KeyState::kEnabled;
      } else if (parts[2] == "Disabled") {
        key.state = KeyState::kDisabled;
      } else if (parts[2] == "PendingDeletion") {
        key.state = KeyState::kPendingDeletion;
      } else {
        return corrupt(line_no, "unknown key state");
      }
      if (parts[3] != "-") {
        if (parts[3].substr(0, 6) != "alias/" || !IsAliasName(parts[3].substr(6))) {
          return corrupt(line_no, "malformed alias");
        }
        key.alias = std::string(parts[3]);
        if (!aliases.emplace(key.alias, key.uuid).second) {
          return corrupt(line_no, "an alias named twice");
        }
      }
      const std::string_view deny = parts[4].substr(5);
      const std::string_view managed = parts[5].substr(8);
      if ((deny != "0" && deny != "1") || (managed != "0" && managed != "1")) {
        return corrupt(line_no, "malformed deny= or managed=");
      }
      key.deny = deny == "1";
      key.aws_managed = managed == "1";
      auto [it, inserted] = keys.emplace(key.uuid, std::move(key));
      if (!inserted) return corrupt(line_no, "a key id named twice");
      current = &it->second;
    } else if (parts[0] == "version") {
      if (current == nullptr) return corrupt(line_no, "a version before any key");
      std::string material;
      Wipe wipe{&material};
      if (parts.size() != 3 || parts[1] != std::to_string(current->versions.size() + 1) ||
          parts[2].size() != 2 * kAes256KeySize || !Unhex(parts[2], &material)) {
        return corrupt(line_no, "malformed version line (versions count 1, 2, ...)");
      }
      current->versions.push_back(material);
    } else {
      return corrupt(line_no, "unknown line");
    }
  }
  if (line_no == 0) return corrupt(1, "no header");
  if (current != nullptr && current->versions.empty()) {
    return corrupt(line_no, "a key without versions");
  }
  return keys;
}

// Reads `path`: its contents, or nullopt-like `missing` = true if it does not
// exist. StorageFailureException for I/O errors; InvalidArgumentException if
// it is not a regular file or group or others may access it.
inline absl::StatusOr<std::string> ReadKeyFile(const std::string& path, bool* missing) {
  *missing = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) {
      *missing = true;
      return std::string();
    }
    if (errno == ELOOP) {  // O_NOFOLLOW: a rename would replace the link, not its target
      return InvalidArgument("key file " + path + " is a symbolic link; give the file itself");
    }
    return StorageFailure(ErrnoMessage("cannot open key file", path, errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return StorageFailure(ErrnoMessage("cannot stat key file", path, err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("key file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return InvalidArgument("key file " + path + " may be accessed by group or others (mode " +
                           mode + "); it holds master keys: chmod 600 it");
  }
  std::string text;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      OPENSSL_cleanse(text.data(), text.size());
      return StorageFailure(ErrnoMessage("cannot read key file", path, err));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  OPENSSL_cleanse(buffer, sizeof(buffer));
  ::close(fd);
  return text;
}

// Replaces `path` with `text` atomically: "<path>.tmp" (mode 0600), fsync,
// rename, fsync of the directory. StorageFailureException on any failure
// (the old file is then intact).
inline absl::Status WriteKeyFileAtomically(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return StorageFailure(ErrnoMessage("cannot create", tmp, errno));
  auto fail = [&](std::string_view what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return StorageFailure(ErrnoMessage(what, tmp, err));
  };
  if (::fchmod(fd, 0600) != 0) return fail("cannot chmod");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return StorageFailure(ErrnoMessage("cannot close", tmp, err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return StorageFailure(ErrnoMessage("cannot rename onto", path, err));
  }
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? std::string(".") : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return StorageFailure(ErrnoMessage("cannot open directory", dir, errno));
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return StorageFailure(ErrnoMessage("cannot fsync directory", dir, err));
  return absl::OkStatus();
}

// Holds flock(operation) on `fd` for a scope.
class FileLock {
 public:
  FileLock(int fd, int operation, const std::string& path) : fd_(fd) {
    while (::flock(fd_, operation) != 0) {
      if (errno == EINTR) continue;
      status_ = StorageFailure(ErrnoMessage("cannot lock", path, errno));
      return;
    }
    locked_ = true;
  }
  ~FileLock() {
    if (locked_) ::flock(fd_, LOCK_UN);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  const absl::Status& status() const { return status_; }

 private:
  int fd_;
  bool locked_ = false;
  absl::Status status_;
};

}  // namespace detail

class LocalKeyProvider final : public KeyProvider {
 public:
  // Opens (or creates, empty, mode 0600) the key file `key_file`, and
  // "<key_file>.lock" beside it. StorageFailureException if either cannot be
  // read or written; InvalidArgumentException for an empty path, a path that
  // is not a regular file (a directory, a symbolic link), or a file group or
  // others may access; DataLossException for a corrupt file (the message
  // names the line). The provider may be shared (it is thread-safe) and must
  // outlive the streams that use it.
  static absl::StatusOr<std::shared_ptr<LocalKeyProvider>> Open(std::string key_file) {
    if (key_file.empty()) return InvalidArgument("LocalKeyProvider: empty key file path");
    const std::string lock_path = key_file + ".lock";
    const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
      return StorageFailure(detail::ErrnoMessage("cannot open", lock_path, errno));
    }
    std::shared_ptr<LocalKeyProvider> provider(new LocalKeyProvider(std::move(key_file), lock_fd));
    kinlet::detail::MutexLock l(&provider->mu_);
    detail::FileLock file_lock(lock_fd, LOCK_EX, lock_path);
    KINLET_RETURN_IF_ERROR(file_lock.status());
    bool missing = false;
    KINLET_ASSIGN_OR_RETURN(std::string text, detail::ReadKeyFile(provider->key_file_, &missing));
    detail::Wipe wipe{&text};
    if (missing) {
      KINLET_RETURN_IF_ERROR(detail::WriteKeyFileAtomically(
          provider->key_file_, detail::SerializeKeyTable(detail::KeyTable())));
    }
    KINLET_ASSIGN_OR_RETURN(provider->keys_, detail::ParseKeyTable(text, provider->key_file_));
    return provider;
  }

  ~LocalKeyProvider() override { ::close(lock_fd_); }
  LocalKeyProvider(const LocalKeyProvider&) = delete;
  LocalKeyProvider& operator=(const LocalKeyProvider&) = delete;

  const std::string& key_file() const { return key_file_; }

  // Creates an Enabled key (version 1) and returns its key ARN. `alias`:
  // "" for none, "NAME" or "alias/NAME" (NAME: [A-Za-z0-9/_-], not "aws/...").
  // InvalidArgumentException for a bad alias; ResourceInUseException (absl
  // kAlreadyExists; KMS's AlreadyExistsException) if the alias is taken;
  // StorageFailureException / DataLossException as Open.
  absl::StatusOr<std::string> CreateKey(std::string alias = "") {
    if (!alias.empty()) {
      if (alias.rfind("alias/", 0) != 0) alias = "alias/" + alias;
      const std::string_view name = std::string_view(alias).substr(6);
      if (!detail::IsAliasName(name)) {
        return InvalidArgument("invalid alias name '" + alias +
                               "': use 1 to 250 of A-Z a-z 0-9 / _ -");
      }
      if (name.rfind("aws/", 0) == 0) {
        return InvalidArgument("alias names beginning with alias/aws/ are reserved for AWS");
      }
    }
    kinlet::detail::MutexLock l(&mu_);
    std::string arn;
    KINLET_RETURN_IF_ERROR(MutateLocked([&](detail::KeyTable& keys) -> absl::Status {
      KINLET_ASSIGN_OR_RETURN(arn, AddKey(keys, alias, /*aws_managed=*/false));
      return absl::OkStatus();
    }));
    return arn;
  }

  // Adds a new version of the key's material and makes it current: data keys
  // generated from now on are wrapped under it; earlier versions stay for
  // unwrapping. Returns the new version number. KMSNotFoundException,
  // KMSDisabledException, KMSInvalidStateException (pending deletion);
  // InvalidArgumentException for the AWS managed key.
  absl::StatusOr<uint32_t> RotateKey(std::string_view key_id) {
    kinlet::detail::MutexLock l(&mu_);
    uint32_t version = 0;
    KINLET_RETURN_IF_ERROR(MutateLocked([&](detail::KeyTable& keys) -> absl::Status {
      KINLET_ASSIGN_OR_RETURN(detail::MasterKey * key, Resolve(keys, key_id));
      KINLET_RETURN_IF_ERROR(RefuseManaged(*key, "rotated on demand"));
      KINLET_RETURN_IF_ERROR(StateError(*key));
      KINLET_ASSIGN_OR_RETURN(std::string material, detail::RandomBytes(kAes256KeySize));
      key->versions.push_back(std::move(material));
      version = key->current_version();
      return absl::OkStatus();
    }));
    return version;
  }

  // Enabled -> Disabled (a disabled key neither wraps nor unwraps:
  // KMSDisabledException). KMSNotFoundException; KMSInvalidStateException if
  // pending deletion; InvalidArgumentException for the AWS managed key.
  absl::Status DisableKey(std::string_view key_id) {
    return SetState(key_id, KeyState::kDisabled, "disabled");
  }
  // Disabled -> Enabled. Errors as DisableKey.
  absl::Status EnableKey(std::string_view key_id) {
    return SetState(key_id, KeyState::kEnabled, "enabled");
  }

  // -> PendingDeletion: the key can no longer be used
  // (KMSInvalidStateException) until CancelKeyDeletion; DeleteKey ends the
  // waiting period. KMSNotFoundException; KMSInvalidStateException if already
  // pending deletion; InvalidArgumentException for the AWS managed key.
  absl::Status ScheduleKeyDeletion(std::string_view key_id) {
    return SetState(key_id, KeyState::kPendingDeletion, "scheduled for deletion");
  }
  // PendingDeletion -> Disabled, as KMS. KMSNotFoundException;
  // KMSInvalidStateException if the key is not pending deletion.
  absl::Status CancelKeyDeletion(std::string_view key_id) {
    kinlet::detail::MutexLock l(&mu_);
    return MutateLocked([&](detail::KeyTable& keys) -> absl::Status {
      KINLET_ASSIGN_OR_RETURN(detail::MasterKey * key, Resolve(keys, key_id));
      if (key->state != KeyState::kPendingDeletion) {
        return KmsError(ErrorCode::kKmsInvalidState,
                        detail::KeyArn(key->uuid) + " is not pending deletion");
      }
      key->state = KeyState::kDisabled;
      return absl::OkStatus();
    });
  }
  // Deletes the key, every version and its alias now, from any state (the
  // end of KMS's waiting period). Whatever it wrapped can never be unwrapped
  // again: KMSNotFoundException from then on. KMSNotFoundException if unknown;
  // InvalidArgumentException for the AWS managed key.
  absl::Status DeleteKey(std::string_view key_id) {
    kinlet::detail::MutexLock l(&mu_);
    return MutateLocked([&](detail::KeyTable& keys) -> absl::Status {
      KINLET_ASSIGN_OR_RETURN(detail::MasterKey * key, Resolve(keys, key_id));
      KINLET_RETURN_IF_ERROR(RefuseManaged(*key, "deleted"));
      const std::string uuid = key->uuid;
      keys.erase(uuid);
      return absl::OkStatus();
    });
  }

  // Tests: while `denied`, every use of the key fails with
  // KMSAccessDeniedException (as a key policy without kms:GenerateDataKey /
  // kms:Decrypt for the caller). Persisted. KMSNotFoundException.
  absl::Status SetAccessDenied(std::string_view key_id, bool denied) {
    kinlet::detail::MutexLock l(&mu_);
    return MutateLocked([&](detail::KeyTable& keys) -> absl::Status {
      KINLET_ASSIGN_OR_RETURN(detail::MasterKey * key, Resolve(keys, key_id));
      key->deny = denied;
      return absl::OkStatus();
    });
  }

  // Tests: while on, CheckKey, GenerateDataKey and UnwrapDataKey fail with
  // KMSThrottlingException (retryable). This process only; not persisted.
  void SetThrottled(bool throttled) {
    kinlet::detail::MutexLock l(&mu_);
    throttled_ = throttled;
  }

  // The key named by `key_id` (any accepted form). KMSNotFoundException.
  absl::StatusOr<KeyDescription> DescribeKey(std::string_view key_id) {
    kinlet::detail::MutexLock l(&mu_);
    KINLET_ASSIGN_OR_RETURN(detail::MasterKey * key, ResolveLoaded(key_id, /*create=*/false));
    KeyDescription d;
    d.key_id = key->uuid;
    d.arn = detail::KeyArn(key->uuid);
    d.alias = key->alias;
    d.state = key->state;
    d.current_version = key->current_version();
    d.access_denied = key->deny;
    d.aws_managed = key->aws_managed;
    return d;
  }

  // Re-reads the key file (changes another process made). Errors as Open;
  // on error the keys in memory are kept.
  absl::Status Reload() {
    kinlet::detail::MutexLock l(&mu_);
    return ReloadLocked();
  }

  // KeyProvider.
  // KMSNotFoundException, KMSDisabledException, KMSInvalidStateException,
  // KMSAccessDeniedException, KMSThrottlingException; InvalidArgumentException
  // for an empty id. "alias/aws/kinesis" is created on first use.
  absl::Status CheckKey(std::string_view key_id) override {
    kinlet::detail::MutexLock l(&mu_);
    if (throttled_) return Throttling();
    KINLET_ASSIGN_OR_RETURN(detail::MasterKey * key, ResolveLoaded(key_id, /*create=*/true));
    return UsableError(*key);
  }

  // 32 random bytes wrapped under the key's current version (layout above).
  // Errors as CheckKey; InternalFailure if OpenSSL fails.
  absl::StatusOr<DataKey> GenerateDataKey(std::string_view key_id) override {
    kinlet::detail::MutexLock l(&mu_);
    if (throttled_) return Throttling();
    KINLET_ASSIGN_OR_RETURN(detail::MasterKey * key, ResolveLoaded(key_id, /*create=*/true));
    KINLET_RETURN_IF_ERROR(UsableError(*key));
    DataKey data_key;
    data_key.key_id = std::string(key_id);
    data_key.key_version = key->current_version();
    KINLET_ASSIGN_OR_RETURN(data_key.plaintext, detail::RandomBytes(kAes256KeySize));
    KINLET_ASSIGN_OR_RETURN(std::string iv, detail::RandomBytes(kGcmIvSize));
    std::string& blob = data_key.wrapped;
    blob.reserve(detail::kWrappedSize);
    blob.append(detail::kWrapMagic);
    detail::PutBigEndian(data_key.key_version, 4, &blob);
    blob.append(key->uuid);
    blob.append(iv);
    blob.resize(detail::kWrapHeaderSize + kGcmIvSize + kAes256KeySize + kGcmTagSize);
    unsigned char* ct =
        reinterpret_cast<unsigned char*>(blob.data()) + detail::kWrapHeaderSize + kGcmIvSize;
    KINLET_RETURN_IF_ERROR(Crypt(key->versions.back(), /*encrypt=*/true, blob,
                                 reinterpret_cast<const unsigned char*>(data_key.plaintext.data()),
                                 ct, ct + kAes256KeySize));
    detail::PutBigEndian(kinlet::detail::Xxh3_64(blob.data(), blob.size(), 0), 8, &blob);
    return data_key;
  }

  // The plaintext of a data key GenerateDataKey wrapped. DataLossException if
  // `wrapped` is not such a blob, any bit of it changed, or it says another
  // version than `key_version`; KMSNotFoundException if the master key that
  // wrapped it (or `key_id`) no longer exists; KMSAccessDeniedException if
  // `key_id` names another key than the one that wrapped it (or access is
  // denied); KMSDisabledException; KMSInvalidStateException;
  // KMSThrottlingException.
  absl::StatusOr<std::string> UnwrapDataKey(std::string_view key_id, uint32_t key_version,
                                            std::string_view wrapped) override {
    if (wrapped.size() != detail::kWrappedSize ||
        wrapped.substr(0, detail::kWrapMagic.size()) != detail::kWrapMagic) {
      return DataLoss("wrapped data key: not a kinlet local key provider blob (" +
                      std::to_string(wrapped.size()) + " bytes)");
    }
    const size_t sum_at = detail::kWrappedSize - 8;
    if (detail::GetBigEndian(wrapped.substr(sum_at)) !=
        kinlet::detail::Xxh3_64(wrapped.data(), sum_at, 0)) {
      return DataLoss("wrapped data key: checksum mismatch (the stored key is corrupt)");
    }
    const auto blob_version = static_cast<uint32_t>(detail::GetBigEndian(wrapped.substr(4, 4)));
    const std::string_view blob_uuid = wrapped.substr(8, detail::kUuidSize);
    if (blob_version != key_version) {
      return DataLoss("wrapped data key is of master key version " + std::to_string(blob_version) +
                      ", not " + std::to_string(key_version));
    }
    kinlet::detail::MutexLock l(&mu_);
    if (throttled_) return Throttling();
    // `key_id` first: a lookup may reload the table, so the pointer used
    // below (`owner`) comes from the last lookup.
    KINLET_ASSIGN_OR_RETURN(const detail::MasterKey* named,
                            ResolveLoaded(key_id, /*create=*/false));
    const std::string named_uuid = named->uuid;
    KINLET_ASSIGN_OR_RETURN(detail::MasterKey * owner, ResolveLoaded(blob_uuid, /*create=*/false));
    if (owner->uuid != named_uuid) {
      return KmsError(ErrorCode::kKmsAccessDenied, "the wrapped data key references " +
                                                       detail::KeyArn(owner->uuid) + ", not " +
                                                       std::string(key_id));
    }
    KINLET_RETURN_IF_ERROR(UsableError(*owner));
    if (key_version == 0 || key_version > owner->current_version()) {
      return KmsError(ErrorCode::kKmsNotFound, detail::KeyArn(owner->uuid) + " has no version " +
                                                   std::to_string(key_version));
    }
    std::string plaintext(kAes256KeySize, '\0');
    const auto* ct = reinterpret_cast<const unsigned char*>(wrapped.data()) +
                     detail::kWrapHeaderSize + kGcmIvSize;
    KINLET_RETURN_IF_ERROR(Crypt(owner->versions[key_version - 1], /*encrypt=*/false, wrapped, ct,
                                 reinterpret_cast<unsigned char*>(plaintext.data()),
                                 const_cast<unsigned char*>(ct + kAes256KeySize)));
    return plaintext;
  }

 private:
  LocalKeyProvider(std::string key_file, int lock_fd)
      : key_file_(std::move(key_file)), lock_fd_(lock_fd) {}

  static absl::Status Throttling() {
    return KmsError(ErrorCode::kKmsThrottling, "rate exceeded (LocalKeyProvider::SetThrottled)");
  }

  // The state errors of a key asked to wrap, unwrap or rotate.
  static absl::Status StateError(const detail::MasterKey& key) {
    switch (key.state) {
      case KeyState::kEnabled:
        return absl::OkStatus();
      case KeyState::kDisabled:
        return KmsError(ErrorCode::kKmsDisabled, detail::KeyArn(key.uuid) + " is disabled.");
      case KeyState::kPendingDeletion:
        return KmsError(ErrorCode::kKmsInvalidState,
                        detail::KeyArn(key.uuid) + " is pending deletion.");
    }
    return absl::OkStatus();
  }

  static absl::Status UsableError(const detail::MasterKey& key) {
    if (key.deny) {
      return KmsError(ErrorCode::kKmsAccessDenied,
                      "access to " + detail::KeyArn(key.uuid) + " is denied");
    }
    return StateError(key);
  }

  static absl::Status RefuseManaged(const detail::MasterKey& key, std::string_view what) {
    if (!key.aws_managed) return absl::OkStatus();
    return InvalidArgument("the AWS managed key " + std::string(detail::kAwsKinesisAlias) +
                           " cannot be " + std::string(what));
  }

  // The key `key_id` names in `keys`: a UUID, key ARN, "alias/NAME" or alias
  // ARN of this provider's region and account. KMSNotFoundException;
  // InvalidArgumentException for an empty id.
  static absl::StatusOr<detail::MasterKey*> Resolve(detail::KeyTable& keys,
                                                    std::string_view key_id) {
    if (key_id.empty()) return InvalidArgument("empty KMS key id");
    std::string_view rest = key_id;
    bool arn = false;
    if (rest.rfind("arn:", 0) == 0) {
      const std::string prefix =
          "arn:aws:kms:" + std::string(detail::kRegion) + ":" + std::string(detail::kAccount) + ":";
      if (rest.rfind(prefix, 0) != 0) {
        return KmsError(ErrorCode::kKmsNotFound, "Invalid arn " + std::string(key_id) +
                                                     " (this key file is " +
                                                     std::string(detail::kRegion) + ", account " +
                                                     std::string(detail::kAccount) + ")");
      }
      rest.remove_prefix(prefix.size());
      arn = true;
    }
    if (rest.rfind("alias/", 0) == 0) {
      for (auto& [uuid, key] : keys) {
        if (key.alias == rest) return &key;
      }
      return KmsError(ErrorCode::kKmsNotFound, "Alias " + std::string(key_id) + " is not found.");
    }
    if (arn) {
      if (rest.rfind("key/", 0) != 0) {
        return KmsError(ErrorCode::kKmsNotFound, "Invalid arn " + std::string(key_id));
      }
      rest.remove_prefix(4);
    }
    auto it = keys.find(rest);
    if (it == keys.end()) {
      return KmsError(ErrorCode::kKmsNotFound, "Key '" + std::string(key_id) + "' does not exist");
    }
    return &it->second;
  }

  static bool NamesAwsKinesis(std::string_view key_id) {
    const std::string arn = "arn:aws:kms:" + std::string(detail::kRegion) + ":" +
                            std::string(detail::kAccount) + ":" +
                            std::string(detail::kAwsKinesisAlias);
    return key_id == detail::kAwsKinesisAlias || key_id == arn;
  }

  // Resolve in the keys in memory; on KMSNotFound, reload the file once and
  // try again (another process may have made the key), and with `create`
  // make alias/aws/kinesis if that is what is missing.
  absl::StatusOr<detail::MasterKey*> ResolveLoaded(std::string_view key_id, bool create)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto found = Resolve(keys_, key_id);
    if (found.ok() || ErrorCodeOf(found.status()) != ErrorCode::kKmsNotFound) return found;
    KINLET_RETURN_IF_ERROR(ReloadLocked());
    found = Resolve(keys_, key_id);
    if (found.ok() || !create || !NamesAwsKinesis(key_id)) return found;
    KINLET_RETURN_IF_ERROR(MutateLocked([&](detail::KeyTable& keys) -> absl::Status {
      if (Resolve(keys, key_id).ok()) return absl::OkStatus();  // another process made it
      return AddKey(keys, std::string(detail::kAwsKinesisAlias), /*aws_managed=*/true).status();
    }));
    return Resolve(keys_, key_id);
  }

  static absl::StatusOr<std::string> AddKey(detail::KeyTable& keys, const std::string& alias,
                                            bool aws_managed) {
    if (!alias.empty()) {
      for (const auto& [uuid, key] : keys) {
        if (key.alias == alias) {
          return ResourceInUse(
              "AlreadyExistsException: an alias named " + alias + " already exists",
              /*on_create=*/true);
        }
      }
    }
    detail::MasterKey key;
    KINLET_ASSIGN_OR_RETURN(key.uuid, detail::NewUuid());
    key.alias = alias;
    key.aws_managed = aws_managed;
    KINLET_ASSIGN_OR_RETURN(std::string material, detail::RandomBytes(kAes256KeySize));
    key.versions.push_back(std::move(material));
    std::string arn = detail::KeyArn(key.uuid);
    std::string uuid = key.uuid;
    keys.emplace(std::move(uuid), std::move(key));
    return arn;
  }

  absl::Status SetState(std::string_view key_id, KeyState to, std::string_view what) {
    kinlet::detail::MutexLock l(&mu_);
    return MutateLocked([&](detail::KeyTable& keys) -> absl::Status {
      KINLET_ASSIGN_OR_RETURN(detail::MasterKey * key, Resolve(keys, key_id));
      if (key->aws_managed && to == KeyState::kEnabled) return absl::OkStatus();
      KINLET_RETURN_IF_ERROR(RefuseManaged(*key, what));
      if (key->state == KeyState::kPendingDeletion) {
        return KmsError(ErrorCode::kKmsInvalidState,
                        detail::KeyArn(key->uuid) + " is pending deletion.");
      }
      key->state = to;
      return absl::OkStatus();
    });
  }

  // Under the exclusive file lock: reads the file as it is on disk, applies
  // `change`, writes it back, and only then adopts the result in memory.
  template <typename Change>
  absl::Status MutateLocked(Change&& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    detail::FileLock file_lock(lock_fd_, LOCK_EX, key_file_ + ".lock");
    KINLET_RETURN_IF_ERROR(file_lock.status());
    KINLET_ASSIGN_OR_RETURN(detail::KeyTable keys, LoadLocked());
    KINLET_RETURN_IF_ERROR(change(keys));
    std::string text = detail::SerializeKeyTable(keys);
    detail::Wipe wipe{&text};
    KINLET_RETURN_IF_ERROR(detail::WriteKeyFileAtomically(key_file_, text));
    keys_ = std::move(keys);
    return absl::OkStatus();
  }

  absl::Status ReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    detail::FileLock file_lock(lock_fd_, LOCK_SH, key_file_ + ".lock");
    KINLET_RETURN_IF_ERROR(file_lock.status());
    KINLET_ASSIGN_OR_RETURN(keys_, LoadLocked());
    return absl::OkStatus();
  }

  // The file as it is on disk (the caller holds the file lock).
  absl::StatusOr<detail::KeyTable> LoadLocked() const {
    bool missing = false;
    KINLET_ASSIGN_OR_RETURN(std::string text, detail::ReadKeyFile(key_file_, &missing));
    detail::Wipe wipe{&text};
    if (missing) {
      return StorageFailure("key file " + key_file_ +
                            " is missing (deleted while open?); its keys are still in memory");
    }
    return detail::ParseKeyTable(text, key_file_);
  }

  // AES-256-GCM of one 32-byte data key under `master` with the blob's IV
  // and header (the aad). Decrypt failure is DataLossException.
  static absl::Status Crypt(const std::string& master, bool encrypt, std::string_view blob,
                            const unsigned char* in, unsigned char* out, unsigned char* tag) {
    EVP_CIPHER_CTX* ctx =
        crypto::detail::NewAes256GcmContext(reinterpret_cast<const unsigned char*>(master.data()));
    if (ctx == nullptr) return InternalFailure(crypto::detail::OpenSslError("EVP context"));
    unsigned char iv[kGcmIvSize];
    std::memcpy(iv, blob.data() + detail::kWrapHeaderSize, kGcmIvSize);
    const int rc = crypto::detail::GcmCrypt(
        ctx, encrypt, iv, blob.substr(0, detail::kWrapHeaderSize), in, kAes256KeySize, out, tag);
    EVP_CIPHER_CTX_free(ctx);
    if (rc == 1) return absl::OkStatus();
    if (rc == 0) {
      ERR_clear_error();
      OPENSSL_cleanse(out, kAes256KeySize);
      return DataLoss("wrapped data key failed authentication under its master key");
    }
    return InternalFailure(crypto::detail::OpenSslError("AES-256-GCM key wrap"));
  }

  const std::string key_file_;
  const int lock_fd_;                 // "<key_file>.lock", open for the provider's lifetime
  mutable kinlet::detail::Mutex mu_;  // std::mutex underneath: visible to TSan
  detail::KeyTable keys_ ABSL_GUARDED_BY(mu_);
  bool throttled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace kinlet::crypto
