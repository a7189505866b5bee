// Helpers of the storage tests: a temporary directory, log options, reading a
// whole log back, and a test-only cipher and KMS (XOR keystream + checksum
// tag; NOT secure, only shaped like the real ones).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kinlet/detail/hash.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/storage/encryption.hpp"
#include "kinlet/storage/shard_log.hpp"

namespace kinlet::storage::testing {

// A unique directory under the system temp directory, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = (std::filesystem::temp_directory_path() /
             ("kinlet-storage-" + std::to_string(::getpid()) + "-" + std::to_string(rd()) + "-" +
              std::to_string(counter.fetch_add(1))))
                .string();
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline ShardLogOptions SmallOptions(const std::string& dir, size_t max_record = 256) {
  ShardLogOptions o;
  o.directory = dir;
  o.max_record_bytes = max_record;
  o.segment_bytes = 0;  // rounded up below to the minimum
  o.segment_bytes = 4096 + detail::FrameBytes(max_record);
  return o;
}

struct Rec {
  uint64_t position;
  int64_t arrival_ms;
  std::string key;
  std::string data;
  bool operator==(const Rec& o) const {
    return position == o.position && arrival_ms == o.arrival_ms && key == o.key && data == o.data;
  }
};

inline Rec MakeRec(uint64_t i) {
  std::string key = "key-" + std::to_string(i % 97);
  std::string data(static_cast<size_t>(1 + (i * 37) % 120), static_cast<char>('a' + i % 26));
  data += std::to_string(i);
  return Rec{i, static_cast<int64_t>(1000 + i * 10), key, data};
}

inline absl::Status AppendRec(ShardLog& log, const Rec& r) {
  return log.Append(r.position, r.arrival_ms, r.key, r.data);
}

// Reads every record from `from` page by page; stops at the first error,
// returned in *status.
inline std::vector<Rec> ReadAll(const ShardLog& log, uint64_t from, absl::Status* status = nullptr,
                                size_t page = 7) {
  std::vector<Rec> out;
  for (;;) {
    auto n = log.Read(from, page, size_t{1} << 30, [&](const LogRecordView& v) {
      out.push_back(Rec{v.position, v.arrival_ms, std::string(v.key), std::string(v.data)});
    });
    if (!n.ok()) {
      if (status != nullptr) *status = n.status();
      return out;
    }
    if (*n == 0) break;
    from = out.back().position + 1;
  }
  if (status != nullptr) *status = absl::OkStatus();
  return out;
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
inline void Spit(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if (name.size() == 24 && name.substr(20) == ".seg") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ---- test-only encryption ----

// XOR with a keystream derived from (key, nonce), then an 8-byte tag over
// (key, nonce, aad, ciphertext).
class XorCipher final : public RecordCipher {
 public:
  explicit XorCipher(std::string key) : key_(std::move(key)) {}
  size_t Overhead() const override { return 8; }
  absl::Status Seal(uint64_t nonce, std::string_view aad, std::string_view plaintext,
                    char* out) const override {
    for (size_t i = 0; i < plaintext.size(); ++i) out[i] = plaintext[i] ^ Stream(nonce, i);
    uint64_t tag = Tag(nonce, aad, std::string_view(out, plaintext.size()));
    std::memcpy(out + plaintext.size(), &tag, 8);
    return absl::OkStatus();
  }
  absl::Status Open(uint64_t nonce, std::string_view aad, std::string_view sealed,
                    char* out) const override {
    if (sealed.size() < 8) return DataLoss("sealed text too short");
    std::string_view ct = sealed.substr(0, sealed.size() - 8);
    uint64_t tag;
    std::memcpy(&tag, sealed.data() + ct.size(), 8);
    if (tag != Tag(nonce, aad, ct)) return DataLoss("authentication failed");
    for (size_t i = 0; i < ct.size(); ++i) out[i] = ct[i] ^ Stream(nonce, i);
    return absl::OkStatus();
  }

 private:
  char Stream(uint64_t nonce, size_t i) const {
    uint64_t block[3] = {nonce, i / 8, 0x9e3779b97f4a7c15ull};
    uint64_t h = kinlet::detail::Xxh3_64(block, sizeof block,
                                         kinlet::detail::Xxh3_64(key_.data(), key_.size(), 1));
    return static_cast<char>(h >> (8 * (i % 8)));
  }
  uint64_t Tag(uint64_t nonce, std::string_view aad, std::string_view ct) const {
    std::string m = key_;
    m.append(reinterpret_cast<const char*>(&nonce), 8);
    m.append(aad.data(), aad.size());
    m.append(ct.data(), ct.size());
    return kinlet::detail::Xxh3_64(m.data(), m.size(), 7);
  }
  std::string key_;
};

class XorCipherFactory final : public CipherFactory {
 public:
  absl::StatusOr<std::unique_ptr<RecordCipher>> Make(std::string_view key) override {
    if (key.size() != 32) return InvalidArgument("key must be 32 bytes");
    return std::unique_ptr<RecordCipher>(new XorCipher(std::string(key)));
  }
  size_t KeySize() const override { return 32; }
};

// A KMS: master keys with versions; wrapped = "W" + version + (data key XOR master).
class TestKeyProvider final : public KeyProvider {
 public:
  void AddKey(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    keys_[id].versions.push_back(RandomKey());
  }
  void Rotate(const std::string& id) { AddKey(id); }
  void Disable(const std::string& id, bool disabled) {
    std::lock_guard<std::mutex> l(mu_);
    keys_[id].disabled = disabled;
  }
  void Delete(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    keys_.erase(id);
  }
  int unwraps() const { return unwraps_.load(); }

  absl::Status CheckKey(std::string_view id) override {
    std::lock_guard<std::mutex> l(mu_);
    return CheckLocked(id);
  }
  absl::StatusOr<DataKey> GenerateDataKey(std::string_view id) override {
    std::lock_guard<std::mutex> l(mu_);
    if (auto s = CheckLocked(id); !s.ok()) return s;
    const Master& m = keys_.at(std::string(id));
    DataKey k;
    k.key_id = std::string(id);
    k.key_version = static_cast<uint32_t>(m.versions.size());
    k.plaintext = RandomKey();
    k.wrapped = Wrap(k.plaintext, m.versions.back(), k.key_version);
    return k;
  }
  absl::StatusOr<std::string> UnwrapDataKey(std::string_view id, uint32_t version,
                                            std::string_view wrapped) override {
    std::lock_guard<std::mutex> l(mu_);
    ++unwraps_;
    auto it = keys_.find(std::string(id));
    if (it == keys_.end() || version == 0 || version > it->second.versions.size()) {
      return KmsError(ErrorCode::kKmsNotFound, "no such key or version");
    }
    if (it->second.disabled) return KmsError(ErrorCode::kKmsDisabled, "key disabled");
    if (wrapped.size() != 36 || wrapped.substr(0, 4) != VersionTag(version)) {
      return DataLoss("wrapped key fails authentication");
    }
    std::string out(wrapped.substr(4));
    const std::string& master = it->second.versions[version - 1];
    for (size_t i = 0; i < out.size(); ++i) out[i] ^= master[i];
    return out;
  }

 private:
  struct Master {
    std::vector<std::string> versions;
    bool disabled = false;
  };
  absl::Status CheckLocked(std::string_view id) {
    auto it = keys_.find(std::string(id));
    if (it == keys_.end()) return KmsError(ErrorCode::kKmsNotFound, "no such key");
    if (it->second.disabled) return KmsError(ErrorCode::kKmsDisabled, "key disabled");
    return absl::OkStatus();
  }
  static std::string VersionTag(uint32_t v) {
    std::string t = "W";
    t += static_cast<char>('0' + v % 10);
    t += static_cast<char>('0' + v / 10 % 10);
    t += static_cast<char>('0' + v / 100 % 10);
    return t;
  }
  static std::string Wrap(const std::string& plain, const std::string& master, uint32_t v) {
    std::string out = VersionTag(v);
    for (size_t i = 0; i < plain.size(); ++i) out += static_cast<char>(plain[i] ^ master[i]);
    return out;
  }
  std::string RandomKey() {
    std::string k(32, '\0');
    for (auto& c : k) c = static_cast<char>(rng_());
    return k;
  }
  std::mutex mu_;
  std::map<std::string, Master> keys_;
  std::mt19937_64 rng_{12345};
  std::atomic<int> unwraps_{0};
};

}  // namespace kinlet::storage::testing
