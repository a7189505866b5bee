// kinlet::crypto::LocalKeyProvider: the key file (persistence, atomic rewrite,
// mode 0600, corruption), key ids, rotation, KMS-shaped errors, tampering,
// several providers on one file, concurrent use.
#include "kinlet/crypto/local_key_provider.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/detail/hash.hpp"
#include "kinlet/errors.hpp"

namespace fs = std::filesystem;

namespace {

using kinlet::crypto::KeyState;
using kinlet::crypto::LocalKeyProvider;

// A unique directory under the system's temp directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("kinlet-crypto-test-" + std::to_string(::getpid()) + "-" +
             std::to_string(counter.fetch_add(1)) + "-" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::shared_ptr<LocalKeyProvider> OpenOrDie(const std::string& file) {
  auto provider = LocalKeyProvider::Open(file);
  INFO(provider.status().ToString());
  REQUIRE(provider.ok());
  return *provider;
}

std::string Create(LocalKeyProvider& provider, std::string alias = "") {
  auto arn = provider.CreateKey(std::move(alias));
  INFO(arn.status().ToString());
  REQUIRE(arn.ok());
  return *arn;
}

kinlet::DataKey Generate(LocalKeyProvider& provider, std::string_view key_id) {
  auto key = provider.GenerateDataKey(key_id);
  INFO(key.status().ToString());
  REQUIRE(key.ok());
  return *key;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

unsigned Mode(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<unsigned>(st.st_mode & 07777);
}

std::string UuidOf(const std::string& arn) { return arn.substr(arn.rfind('/') + 1); }

}  // namespace

TEST_CASE("Key file codec: SerializeKeyTable and ParseKeyTable round-trip", "[crypto]") {
  namespace d = kinlet::crypto::detail;
  d::KeyTable keys;
  for (int i = 0; i < 3; ++i) {
    d::MasterKey key;
    key.uuid = *d::NewUuid();
    key.alias = i == 0 ? "" : "alias/k" + std::to_string(i);
    key.state = static_cast<KeyState>(i);
    key.deny = i == 1;
    key.aws_managed = i == 2;
    for (int v = 0; v <= i; ++v) key.versions.push_back(*d::RandomBytes(32));
    std::string uuid = key.uuid;
    keys.emplace(std::move(uuid), std::move(key));
  }
  const std::string text = d::SerializeKeyTable(keys);
  auto parsed = d::ParseKeyTable(text, "mem");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == keys.size());
  for (const auto& [uuid, key] : keys) {
    const d::MasterKey& got = parsed->at(uuid);
    CHECK(got.alias == key.alias);
    CHECK(got.state == key.state);
    CHECK(got.deny == key.deny);
    CHECK(got.aws_managed == key.aws_managed);
    CHECK(got.versions == key.versions);
  }
  CHECK(d::SerializeKeyTable(*parsed) == text);
  auto empty = d::ParseKeyTable(d::SerializeKeyTable({}), "mem");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("LocalKeyProvider creates an empty key file of mode 0600", "[crypto]") {
  TempDir dir;
  const std::string file = dir.File("keys");
  auto provider = OpenOrDie(file);
  CHECK(provider->key_file() == file);
  REQUIRE(fs::exists(file));
  CHECK(Mode(file) == 0600);
  CHECK(Mode(file + ".lock") == 0600);
  CHECK(ReadAll(file).rfind("kinlet-local-kms 1\n", 0) == 0);
  CHECK(kinlet::ErrorNameOf(provider->CheckKey("alias/none")) == "KMSNotFoundException");
  // Rewrites keep the mode, leave no temporary file, and never widen it
  // whatever the umask.
  const mode_t old_umask = ::umask(0);
  Create(*provider, "a");
  ::umask(old_umask);
  CHECK(Mode(file) == 0600);
  CHECK_FALSE(fs::exists(file + ".tmp"));
}

TEST_CASE("LocalKeyProvider accepts a key's id, ARN, alias and alias ARN", "[crypto]") {
  TempDir dir;
  auto provider = OpenOrDie(dir.File("keys"));
  const std::string arn = Create(*provider, "my-key");
  REQUIRE(arn.rfind("arn:aws:kms:us-east-1:000000000000:key/", 0) == 0);
  const std::string uuid = UuidOf(arn);
  CHECK(kinlet::crypto::detail::IsUuid(uuid));
  for (const std::string& id : {arn, uuid, std::string("alias/my-key"),
                                std::string("arn:aws:kms:us-east-1:000000000000:alias/my-key")}) {
    INFO(id);
    CHECK(provider->CheckKey(id).ok());
    auto d = provider->DescribeKey(id);
    REQUIRE(d.ok());
    CHECK(d->key_id == uuid);
    CHECK(d->arn == arn);
    CHECK(d->alias == "alias/my-key");
    CHECK(d->state == KeyState::kEnabled);
    CHECK(d->current_version == 1);
  }
  // "alias/NAME" given to CreateKey is the same alias.
  CHECK(Create(*provider, "alias/other") != arn);
  CHECK(provider->DescribeKey("alias/other").ok());
  // Unknown ids of every form, and another account's or region's ARN.
  for (const std::string& id :
       {std::string("alias/nope"), std::string("00000000-0000-4000-8000-000000000000"),
        std::string("arn:aws:kms:us-east-1:000000000000:key/00000000-0000-4000-8000-000000000000"),
        std::string("arn:aws:kms:us-east-1:000000000000:alias/nope"),
        "arn:aws:kms:eu-west-1:000000000000:key/" + uuid,
        "arn:aws:kms:us-east-1:111122223333:key/" + uuid, "key/" + uuid, uuid + "x"}) {
    INFO(id);
    CHECK(kinlet::ErrorNameOf(provider->CheckKey(id)) == "KMSNotFoundException");
    CHECK(kinlet::ErrorNameOf(provider->GenerateDataKey(id).status()) == "KMSNotFoundException");
  }
  CHECK(kinlet::ErrorNameOf(provider->CheckKey("")) == "InvalidArgumentException");
}

TEST_CASE("LocalKeyProvider validates aliases", "[crypto]") {
  TempDir dir;
  auto provider = OpenOrDie(dir.File("keys"));
  Create(*provider, "taken");
  auto again = provider->CreateKey("alias/taken");
  REQUIRE_FALSE(again.ok());
  CHECK(kinlet::ErrorNameOf(again.status()) == "ResourceInUseException");
  CHECK(again.status().code() == absl::StatusCode::kAlreadyExists);
  for (const std::string& bad :
       {std::string("has space"), std::string("alias/"), std::string("é"),
        std::string("aws/kinesis"), std::string("alias/aws/mine"), std::string(251, 'a')}) {
    INFO(bad);
    CHECK(kinlet::ErrorNameOf(provider->CreateKey(bad).status()) == "InvalidArgumentException");
  }
}

TEST_CASE("LocalKeyProvider wraps and unwraps data keys", "[crypto]") {
  TempDir dir;
  auto provider = OpenOrDie(dir.File("keys"));
  const std::string arn = Create(*provider, "k");
  const kinlet::DataKey a = Generate(*provider, "alias/k");
  const kinlet::DataKey b = Generate(*provider, "alias/k");
  CHECK(a.key_id == "alias/k");
  CHECK(a.key_version == 1);
  CHECK(a.plaintext.size() == 32);
  CHECK(a.wrapped.size() == 112);
  CHECK(a.plaintext != b.plaintext);
  CHECK(a.wrapped != b.wrapped);
  CHECK(a.wrapped.find(a.plaintext) == std::string::npos);
  for (const std::string& id : {std::string("alias/k"), arn, UuidOf(arn)}) {
    auto plain = provider->UnwrapDataKey(id, a.key_version, a.wrapped);
    INFO(plain.status().ToString());
    REQUIRE(plain.ok());
    CHECK(*plain == a.plaintext);
  }
  // The plaintext key is wiped when the DataKey goes away (encryption.hpp);
  // the cipher factory takes it as it is.
  kinlet::crypto::Aes256GcmCipherFactory factory;
  CHECK(factory.Make(a.plaintext).ok());
}

TEST_CASE("LocalKeyProvider keeps keys, states and versions across reopen", "[crypto]") {
  TempDir dir;
  const std::string file = dir.File("keys");
  std::string first;
  std::string second;
  kinlet::DataKey v1;
  kinlet::DataKey v2;
  {
    auto provider = OpenOrDie(file);
    first = Create(*provider, "first");
    second = Create(*provider);
    v1 = Generate(*provider, first);
    auto rotated = provider->RotateKey(first);
    REQUIRE(rotated.ok());
    CHECK(*rotated == 2);
    v2 = Generate(*provider, "alias/first");
    REQUIRE(provider->DisableKey(second).ok());
    REQUIRE(provider->SetAccessDenied(first, false).ok());
  }
  auto provider = OpenOrDie(file);
  auto d = provider->DescribeKey("alias/first");
  REQUIRE(d.ok());
  CHECK(d->arn == first);
  CHECK(d->current_version == 2);
  CHECK(d->state == KeyState::kEnabled);
  auto s = provider->DescribeKey(second);
  REQUIRE(s.ok());
  CHECK(s->state == KeyState::kDisabled);
  CHECK(s->alias.empty());
  auto p1 = provider->UnwrapDataKey(first, 1, v1.wrapped);
  REQUIRE(p1.ok());
  CHECK(*p1 == v1.plaintext);
  auto p2 = provider->UnwrapDataKey("alias/first", 2, v2.wrapped);
  REQUIRE(p2.ok());
  CHECK(*p2 == v2.plaintext);
  CHECK(kinlet::ErrorNameOf(provider->CheckKey(second)) == "KMSDisabledException");
}

TEST_CASE("LocalKeyProvider rotation: new data keys use the new version, old ones unwrap",
          "[crypto]") {
  TempDir dir;
  auto provider = OpenOrDie(dir.File("keys"));
  const std::string arn = Create(*provider, "rot");
  std::vector<kinlet::DataKey> keys;
  keys.push_back(Generate(*provider, arn));
  for (uint32_t version = 2; version <= 4; ++version) {
    auto rotated = provider->RotateKey("alias/rot");
    REQUIRE(rotated.ok());
    CHECK(*rotated == version);
    keys.push_back(Generate(*provider, arn));
    CHECK(keys.back().key_version == version);
  }
  for (const kinlet::DataKey& k : keys) {
    auto plain = provider->UnwrapDataKey(arn, k.key_version, k.wrapped);
    REQUIRE(plain.ok());
    CHECK(*plain == k.plaintext);
  }
  // The version recorded beside a wrapped key must be the one that wrapped it.
  CHECK(kinlet::ErrorNameOf(provider->UnwrapDataKey(arn, 2, keys[0].wrapped).status()) ==
        "DataLossException");
  // Rotation of a disabled key or one pending deletion is refused.
  REQUIRE(provider->DisableKey(arn).ok());
  CHECK(kinlet::ErrorNameOf(provider->RotateKey(arn).status()) == "KMSDisabledException");
  REQUIRE(provider->ScheduleKeyDeletion(arn).ok());
  CHECK(kinlet::ErrorNameOf(provider->RotateKey(arn).status()) == "KMSInvalidStateException");
}

TEST_CASE("LocalKeyProvider gives Kinesis's KMS errors for keys that cannot be used", "[crypto]") {
  TempDir dir;
  auto provider = OpenOrDie(dir.File("keys"));
  const std::string arn = Create(*provider, "k");
  const kinlet::DataKey dk = Generate(*provider, arn);
  // Every use of the key: CheckKey, GenerateDataKey, UnwrapDataKey.
  auto uses = [&](std::string_view want) {
    CHECK(kinlet::ErrorNameOf(provider->CheckKey(arn)) == want);
    CHECK(kinlet::ErrorNameOf(provider->GenerateDataKey("alias/k").status()) == want);
    CHECK(kinlet::ErrorNameOf(provider->UnwrapDataKey(arn, 1, dk.wrapped).status()) == want);
  };
  uses("");

  SECTION("disabled, then enabled again") {
    REQUIRE(provider->DisableKey(arn).ok());
    REQUIRE(provider->DisableKey(arn).ok());  // idempotent, as KMS
    uses("KMSDisabledException");
    CHECK(kinlet::IsKmsError(provider->CheckKey(arn)));
    CHECK(provider->CheckKey(arn).code() == absl::StatusCode::kFailedPrecondition);
    REQUIRE(provider->EnableKey("alias/k").ok());
    uses("");
  }
  SECTION("pending deletion, cancelled (Disabled), then deleted") {
    REQUIRE(provider->ScheduleKeyDeletion(arn).ok());
    uses("KMSInvalidStateException");
    CHECK(kinlet::ErrorNameOf(provider->ScheduleKeyDeletion(arn)) == "KMSInvalidStateException");
    CHECK(kinlet::ErrorNameOf(provider->EnableKey(arn)) == "KMSInvalidStateException");
    CHECK(kinlet::ErrorNameOf(provider->DisableKey(arn)) == "KMSInvalidStateException");
    REQUIRE(provider->CancelKeyDeletion(arn).ok());
    CHECK(provider->DescribeKey(arn)->state == KeyState::kDisabled);
    uses("KMSDisabledException");
    CHECK(kinlet::ErrorNameOf(provider->CancelKeyDeletion(arn)) == "KMSInvalidStateException");
    REQUIRE(provider->ScheduleKeyDeletion(arn).ok());
    REQUIRE(provider->DeleteKey(arn).ok());
    uses("KMSNotFoundException");
    CHECK(kinlet::ErrorNameOf(provider->DescribeKey("alias/k").status()) == "KMSNotFoundException");
    CHECK(kinlet::ErrorNameOf(provider->DeleteKey(arn)) == "KMSNotFoundException");
    // The alias is free again; the new key cannot unwrap the old key's data.
    const std::string reborn = Create(*provider, "k");
    CHECK(reborn != arn);
    CHECK(kinlet::ErrorNameOf(provider->UnwrapDataKey("alias/k", 1, dk.wrapped).status()) ==
          "KMSNotFoundException");
  }
  SECTION("access denied") {
    REQUIRE(provider->SetAccessDenied("alias/k", true).ok());
    uses("KMSAccessDeniedException");
    REQUIRE(provider->SetAccessDenied("alias/k", false).ok());
    uses("");
  }
  SECTION("throttled") {
    provider->SetThrottled(true);
    uses("KMSThrottlingException");
    CHECK(provider->CheckKey(arn).code() == absl::StatusCode::kUnavailable);
    provider->SetThrottled(false);
    uses("");
  }
  SECTION("a wrapped key given with another key's id") {
    const std::string other = Create(*provider, "other");
    CHECK(kinlet::ErrorNameOf(provider->UnwrapDataKey(other, 1, dk.wrapped).status()) ==
          "KMSAccessDeniedException");
    CHECK(kinlet::ErrorNameOf(provider->UnwrapDataKey("alias/none", 1, dk.wrapped).status()) ==
          "KMSNotFoundException");
  }
  SECTION("admin calls on unknown keys") {
    const std::string unknown = "alias/unknown";
    CHECK(kinlet::ErrorNameOf(provider->DisableKey(unknown)) == "KMSNotFoundException");
    CHECK(kinlet::ErrorNameOf(provider->EnableKey(unknown)) == "KMSNotFoundException");
    CHECK(kinlet::ErrorNameOf(provider->RotateKey(unknown).status()) == "KMSNotFoundException");
    CHECK(kinlet::ErrorNameOf(provider->ScheduleKeyDeletion(unknown)) == "KMSNotFoundException");
    CHECK(kinlet::ErrorNameOf(provider->SetAccessDenied(unknown, true)) == "KMSNotFoundException");
  }
}

TEST_CASE("LocalKeyProvider makes alias/aws/kinesis on first use, as AWS does", "[crypto]") {
  TempDir dir;
  const std::string file = dir.File("keys");
  std::string arn;
  kinlet::DataKey dk;
  {
    auto provider = OpenOrDie(file);
    CHECK(kinlet::ErrorNameOf(provider->DescribeKey("alias/aws/kinesis").status()) ==
          "KMSNotFoundException");
    REQUIRE(provider->CheckKey("alias/aws/kinesis").ok());
    auto d = provider->DescribeKey("alias/aws/kinesis");
    REQUIRE(d.ok());
    CHECK(d->aws_managed);
    arn = d->arn;
    dk = Generate(*provider, "arn:aws:kms:us-east-1:000000000000:alias/aws/kinesis");
    CHECK(kinlet::ErrorNameOf(provider->DisableKey(arn)) == "InvalidArgumentException");
    CHECK(kinlet::ErrorNameOf(provider->DeleteKey(arn)) == "InvalidArgumentException");
    CHECK(kinlet::ErrorNameOf(provider->RotateKey(arn).status()) == "InvalidArgumentException");
    // Unwrapping never creates it.
    CHECK(provider->UnwrapDataKey("alias/aws/kinesis", 1, dk.wrapped).ok());
  }
  auto provider = OpenOrDie(file);
  auto d = provider->DescribeKey("alias/aws/kinesis");
  REQUIRE(d.ok());
  CHECK(d->arn == arn);
  auto plain = provider->UnwrapDataKey("alias/aws/kinesis", dk.key_version, dk.wrapped);
  REQUIRE(plain.ok());
  CHECK(*plain == dk.plaintext);
}

TEST_CASE("LocalKeyProvider refuses a tampered wrapped key with DataLoss", "[crypto]") {
  TempDir dir;
  auto provider = OpenOrDie(dir.File("keys"));
  const std::string arn = Create(*provider, "k");
  const kinlet::DataKey dk = Generate(*provider, arn);
  SECTION("any flipped bit") {
    for (size_t byte = 0; byte < dk.wrapped.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string bad = dk.wrapped;
        bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
        auto plain = provider->UnwrapDataKey(arn, 1, bad);
        REQUIRE_FALSE(plain.ok());
        REQUIRE(kinlet::ErrorNameOf(plain.status()) == "DataLossException");
      }
    }
  }
  SECTION("truncated, extended, empty") {
    for (const std::string& bad : {dk.wrapped.substr(0, 111), dk.wrapped + "x", std::string()}) {
      CHECK(kinlet::IsDataLoss(provider->UnwrapDataKey(arn, 1, bad).status()));
    }
  }
  SECTION("a changed ciphertext, tag or IV with a recomputed checksum fails authentication") {
    for (size_t byte : {size_t{44}, size_t{55}, size_t{56}, size_t{87}, size_t{88}, size_t{103}}) {
      std::string bad = dk.wrapped.substr(0, 104);
      bad[byte] = static_cast<char>(bad[byte] ^ 1);
      kinlet::crypto::detail::PutBigEndian(kinlet::detail::Xxh3_64(bad.data(), bad.size(), 0), 8,
                                           &bad);
      auto plain = provider->UnwrapDataKey(arn, 1, bad);
      REQUIRE_FALSE(plain.ok());
      CHECK(kinlet::ErrorNameOf(plain.status()) == "DataLossException");
    }
  }
}

TEST_CASE("LocalKeyProvider refuses a corrupt or exposed key file clearly", "[crypto]") {
  TempDir dir;
  const std::string file = dir.File("keys");
  {
    auto provider = OpenOrDie(file);
    Create(*provider, "a");
    Create(*provider, "b");
  }
  const std::string good = ReadAll(file);
  auto open_error = [&](const std::string& text) {
    WriteAll(file, text);
    ::chmod(file.c_str(), 0600);
    auto provider = LocalKeyProvider::Open(file);
    REQUIRE_FALSE(provider.ok());
    return provider.status();
  };
  SECTION("every truncation") {
    for (size_t size = 1; size < good.size(); size += 7) {
      INFO("size " << size);
      const absl::Status s = open_error(good.substr(0, size));
      CHECK(kinlet::ErrorNameOf(s) == "DataLossException");
      CHECK(s.message().find(file) != absl::string_view::npos);
    }
  }
  SECTION("a changed byte anywhere") {
    for (size_t at = 0; at + 1 < good.size(); at += 5) {
      std::string bad = good;
      bad[at] = bad[at] == 'a' ? 'b' : 'a';
      INFO("at " << at);
      CHECK(kinlet::ErrorNameOf(open_error(bad)) == "DataLossException");
    }
  }
  SECTION("garbage, and well-checksummed nonsense") {
    CHECK(kinlet::IsDataLoss(open_error("\x01\x02 not a key file\n")));
    std::string body = "kinlet-local-kms 1\nkey nonsense\n";
    std::string sum;
    kinlet::crypto::detail::PutBigEndian(kinlet::detail::Xxh3_64(body.data(), body.size(), 0), 8,
                                         &sum);
    const absl::Status s = open_error(body + "end " + kinlet::crypto::detail::Hex(sum) + "\n");
    CHECK(kinlet::IsDataLoss(s));
    CHECK(s.message().find("line 2") != absl::string_view::npos);
  }
  SECTION("a 0-byte file is an empty key file") {
    WriteAll(file, "");
    ::chmod(file.c_str(), 0600);
    auto provider = OpenOrDie(file);
    CHECK(kinlet::ErrorNameOf(provider->CheckKey("alias/a")) == "KMSNotFoundException");
  }
  SECTION("a file group or others may read") {
    ::chmod(file.c_str(), 0644);
    auto provider = LocalKeyProvider::Open(file);
    REQUIRE_FALSE(provider.ok());
    CHECK(kinlet::ErrorNameOf(provider.status()) == "InvalidArgumentException");
    CHECK(provider.status().message().find("0644") != absl::string_view::npos);
    ::chmod(file.c_str(), 0600);
    CHECK(LocalKeyProvider::Open(file).ok());
  }
  SECTION("not a file, no directory, no path") {
    auto is_dir = LocalKeyProvider::Open(dir.path().string());
    CHECK(kinlet::ErrorNameOf(is_dir.status()) == "InvalidArgumentException");
    auto no_dir = LocalKeyProvider::Open(dir.File("missing/keys"));
    CHECK(kinlet::ErrorNameOf(no_dir.status()) == "StorageFailureException");
    CHECK(kinlet::ErrorNameOf(LocalKeyProvider::Open("").status()) == "InvalidArgumentException");
    fs::create_symlink(file, dir.File("link"));
    auto link = LocalKeyProvider::Open(dir.File("link"));
    CHECK(kinlet::ErrorNameOf(link.status()) == "InvalidArgumentException");
    CHECK(link.status().message().find("symbolic link") != absl::string_view::npos);
  }
}

TEST_CASE("LocalKeyProvider: two providers on one file lose no change", "[crypto]") {
  TempDir dir;
  const std::string file = dir.File("keys");
  auto a = OpenOrDie(file);
  auto b = OpenOrDie(file);
  const std::string from_a = Create(*a, "from-a");
  const std::string from_b = Create(*b, "from-b");  // b rereads the file: a's key stays
  // A missed key is reloaded once.
  REQUIRE(a->CheckKey("alias/from-b").ok());
  const kinlet::DataKey dk = Generate(*b, from_a);
  auto plain = a->UnwrapDataKey(from_a, 1, dk.wrapped);
  REQUIRE(plain.ok());
  CHECK(*plain == dk.plaintext);
  // A state change made by one is seen by the other after Reload.
  REQUIRE(b->DisableKey(from_a).ok());
  REQUIRE(a->Reload().ok());
  CHECK(kinlet::ErrorNameOf(a->CheckKey(from_a)) == "KMSDisabledException");
  auto fresh = OpenOrDie(file);
  CHECK(fresh->CheckKey(from_a).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(fresh->CheckKey(from_b).ok());
}

TEST_CASE("LocalKeyProvider serves concurrent callers", "[crypto]") {
  TempDir dir;
  auto provider = OpenOrDie(dir.File("keys"));
  const std::string arn = Create(*provider, "k");
  constexpr int kThreads = 4;
  constexpr int kRounds = 20;
  std::atomic<bool> go{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (int i = 0; i < kRounds; ++i) {
        auto dk = provider->GenerateDataKey(arn);
        if (!dk.ok()) {
          failures.fetch_add(1);
          continue;
        }
        auto plain = provider->UnwrapDataKey(arn, dk->key_version, dk->wrapped);
        if (!plain.ok() || *plain != dk->plaintext) failures.fetch_add(1);
        if (t == 0 && i % 5 == 0 && !provider->RotateKey(arn).ok()) failures.fetch_add(1);
        if (t == 1 && i % 7 == 0 && !provider->CreateKey().ok()) failures.fetch_add(1);
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& thread : threads) thread.join();
  CHECK(failures.load() == 0);
  CHECK(provider->DescribeKey(arn)->current_version == 1 + (kRounds + 4) / 5);
}
