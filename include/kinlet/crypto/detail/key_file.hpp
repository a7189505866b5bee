// kinlet/crypto/detail/key_file.hpp: the internals of LocalKeyProvider
// (kinlet/crypto/local_key_provider.hpp): the key file's codec (pure functions
// over text: SerializeKeyTable / ParseKeyTable, round-trip tested), its I/O
// (read, atomic rewrite, flock), and the constants of the wrapped-key blob.
// The formats are drawn in local_key_provider.hpp.
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
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kinlet/crypto/aes_gcm.hpp"
#include "kinlet/detail/hash.hpp"
#include "kinlet/detail/status_macros.hpp"
#include "kinlet/errors.hpp"

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

}  // namespace kinlet::crypto
