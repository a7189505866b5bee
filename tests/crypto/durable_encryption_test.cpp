// Encryption at rest on durable streams, end to end: StartStreamEncryption
// with kinlet::crypto's key-file KMS and AES-256-GCM; no partition key or
// payload in plain text on disk; reopen and key rotation keep old records
// readable; a flipped bit is DataLoss; KMS errors by name.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "catch2/catch.hpp"
#include "kinlet/crypto/aes_gcm.hpp"
#include "kinlet/crypto/local_key_provider.hpp"
#include "kinlet/kinlet.hpp"

namespace {

namespace fs = std::filesystem;
using Stream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = (fs::temp_directory_path() /
             ("kinlet-sse-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
                .string();
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Every byte of every file under `dir`.
std::string AllBytes(const std::string& dir) {
  std::string all;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return all;
}

struct Fixture {
  TempDir keys;
  TempDir data;
  std::shared_ptr<kinlet::crypto::LocalKeyProvider> provider;
  kinlet::ManualClock clock;

  Fixture() {
    auto p = kinlet::crypto::LocalKeyProvider::Open(keys.path() + "/keys");
    REQUIRE(p.ok());
    provider = *p;
  }
  kinlet::StreamOptions Options() const {
    kinlet::StreamOptions o;
    o.name = "secret";
    o.shard_count = 1;
    o.limits = kinlet::ThroughputLimits::Unlimited();
    o.shard_capacity_records = 16;  // reads of older records come from disk
    o.storage.kind = kinlet::StorageKind::kDurable;
    o.storage.directory = data.path() + "/stream";
    o.storage.key_provider = provider;
    o.storage.cipher_factory = std::make_shared<kinlet::crypto::Aes256GcmCipherFactory>();
    return o;
  }
};

std::vector<std::pair<std::string, std::string>> ReadAll(Stream& s) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = s.GetShardIterator("shardId-000000000000", kinlet::IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  for (;;) {
    auto page = s.GetRecords(*it, 1000);
    INFO(page.status().ToString());
    REQUIRE(page.ok());
    for (auto& r : page->records) out.emplace_back(r.partition_key, r.data);
    if (page->records.empty() || !page->next_shard_iterator) break;
    it = *page->next_shard_iterator;
  }
  return out;
}

}  // namespace

TEST_CASE("Encrypted records leave no plain text on disk and read back after reopen",
          "[crypto][storage]") {
  Fixture f;
  absl::StatusOr<std::string> key = f.provider->CreateKey("stream-key");
  REQUIRE(key.ok());
  std::vector<std::pair<std::string, std::string>> written;
  {
    absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(f.Options(), &f.clock);
    REQUIRE(s.ok());
    // Before encryption: plain text on disk (the check below can find text).
    REQUIRE((*s)->PutRecord("plain-key-0", "PLAIN-PAYLOAD-0").ok());
    written.emplace_back("plain-key-0", "PLAIN-PAYLOAD-0");
    REQUIRE((*s)->StartStreamEncryption(kinlet::EncryptionType::kKms, "alias/stream-key").ok());
    absl::StatusOr<kinlet::StreamDescriptionSummary> d = (*s)->DescribeStreamSummary();
    REQUIRE(d.ok());
    CHECK(d->encryption_type == kinlet::EncryptionType::kKms);
    CHECK(d->key_id == "alias/stream-key");
    for (int i = 0; i < 100; ++i) {
      const std::string k = "secret-key-" + std::to_string(i);
      const std::string v = "SECRET-PAYLOAD-" + std::to_string(i) + std::string(i, 'z');
      REQUIRE((*s)->PutRecord(k, v).ok());
      written.emplace_back(k, v);
    }
    // A new key version: new segments use it; old ones keep theirs.
    REQUIRE(f.provider->RotateKey(*key).ok());
    REQUIRE((*s)->StartStreamEncryption(kinlet::EncryptionType::kKms, "alias/stream-key").ok());
    for (int i = 100; i < 150; ++i) {
      const std::string k = "secret-key-" + std::to_string(i);
      const std::string v = "SECRET-PAYLOAD-" + std::to_string(i);
      REQUIRE((*s)->PutRecord(k, v).ok());
      written.emplace_back(k, v);
    }
    CHECK(ReadAll(**s) == written);
  }
  const std::string disk = AllBytes(f.data.path());
  CHECK(disk.find("PLAIN-PAYLOAD-0") != std::string::npos);  // the control
  CHECK(disk.find("plain-key-0") != std::string::npos);
  CHECK(disk.find("SECRET-PAYLOAD") == std::string::npos);
  CHECK(disk.find("secret-key") == std::string::npos);
  // Reopened (a new stream object, keys unwrapped again): everything reads back.
  absl::StatusOr<std::unique_ptr<Stream>> s =
      Stream::Open(f.Options().storage.directory, f.Options(), &f.clock);
  REQUIRE(s.ok());
  CHECK((*s)->encryption_type() == kinlet::EncryptionType::kKms);
  CHECK(ReadAll(**s) == written);
  // Stopped: new records are plain again; the encrypted ones stay readable.
  REQUIRE((*s)->StopStreamEncryption(kinlet::EncryptionType::kKms, "alias/stream-key").ok());
  REQUIRE((*s)->PutRecord("plain-key-1", "PLAIN-PAYLOAD-1").ok());
  written.emplace_back("plain-key-1", "PLAIN-PAYLOAD-1");
  CHECK(ReadAll(**s) == written);
}

TEST_CASE("A flipped bit in an encrypted segment is DataLoss, a disabled key a KMS error",
          "[crypto][storage]") {
  Fixture f;
  REQUIRE(f.provider->CreateKey("k").ok());
  const kinlet::StreamOptions options = f.Options();
  {
    absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(options, &f.clock);
    REQUIRE(s.ok());
    REQUIRE((*s)->StartStreamEncryption(kinlet::EncryptionType::kKms, "alias/k").ok());
    for (int i = 0; i < 50; ++i) REQUIRE((*s)->PutRecord("key", std::string(200, 'p')).ok());
  }
  // The key disabled: the records cannot be decrypted (KMSDisabledException).
  REQUIRE(f.provider->DisableKey("alias/k").ok());
  {
    absl::StatusOr<std::unique_ptr<Stream>> s =
        Stream::Open(options.storage.directory, options, &f.clock);
    REQUIRE(s.ok());
    auto it =
        (*s)->GetShardIterator("shardId-000000000000", kinlet::IteratorPosition::TrimHorizon());
    REQUIRE(it.ok());
    absl::Status read = (*s)->GetRecords(*it, 100).status();
    CHECK(kinlet::IsKmsError(read));
    CHECK(kinlet::ErrorNameOf(read) == "KMSDisabledException");
  }
  REQUIRE(f.provider->EnableKey("alias/k").ok());
  // Flip one bit in the newest segment's first record, then read it.
  std::string segment;
  for (const auto& e : fs::recursive_directory_iterator(options.storage.directory)) {
    if (e.path().extension() == ".seg") segment = e.path().string();
  }
  REQUIRE(!segment.empty());
  {
    std::fstream file(segment, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(4096 + 64);
    char c = 0;
    file.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    file.seekp(4096 + 64);
    file.write(&c, 1);
  }
  absl::StatusOr<std::unique_ptr<Stream>> s =
      Stream::Open(options.storage.directory, options, &f.clock);
  REQUIRE(s.ok());
  auto it = (*s)->GetShardIterator("shardId-000000000000", kinlet::IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  absl::StatusOr<kinlet::GetRecordsResult<std::string>> page = (*s)->GetRecords(*it, 100);
  INFO(page.status().ToString());
  CHECK(kinlet::IsDataLoss(page.status()));
}

TEST_CASE("StartStreamEncryption reports KMS errors and needs a key provider",
          "[crypto][storage]") {
  Fixture f;
  absl::StatusOr<std::unique_ptr<Stream>> s = Stream::Create(f.Options(), &f.clock);
  REQUIRE(s.ok());
  absl::Status unknown =
      (*s)->StartStreamEncryption(kinlet::EncryptionType::kKms, "alias/no-such-key");
  CHECK(kinlet::ErrorNameOf(unknown) == "KMSNotFoundException");
  REQUIRE(f.provider->CreateKey("off").ok());
  REQUIRE(f.provider->DisableKey("alias/off").ok());
  CHECK(kinlet::ErrorNameOf((*s)->StartStreamEncryption(kinlet::EncryptionType::kKms,
                                                        "alias/off")) == "KMSDisabledException");
  CHECK((*s)->encryption_type() == kinlet::EncryptionType::kNone);  // nothing changed
  CHECK(kinlet::IsInvalidArgument(
      (*s)->StartStreamEncryption(kinlet::EncryptionType::kNone, "alias/off")));
  // A durable stream without a provider cannot encrypt.
  TempDir other;
  kinlet::StreamOptions bare = f.Options();
  bare.storage.directory = other.path() + "/s";
  bare.storage.key_provider = nullptr;
  absl::StatusOr<std::unique_ptr<Stream>> plain = Stream::Create(bare, &f.clock);
  REQUIRE(plain.ok());
  CHECK(kinlet::IsInvalidArgument(
      (*plain)->StartStreamEncryption(kinlet::EncryptionType::kKms, "alias/off")));
  // An in-memory stream records the setting only (nothing is at rest).
  kinlet::StreamOptions memory;
  memory.name = "memory";
  absl::StatusOr<std::unique_ptr<Stream>> m = Stream::Create(memory, &f.clock);
  REQUIRE(m.ok());
  REQUIRE((*m)->StartStreamEncryption(kinlet::EncryptionType::kKms, "any-key").ok());
  CHECK((*m)->DescribeStreamSummary()->encryption_type == kinlet::EncryptionType::kKms);
}
