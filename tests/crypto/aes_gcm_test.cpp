// kinlet::crypto::Aes256GcmCipher / Aes256GcmCipherFactory: round trips, tamper
// detection, known answers, concurrent use, no allocation per call.
#include "kinlet/crypto/aes_gcm.hpp"

#include <openssl/crypto.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/errors.hpp"

namespace {

using kinlet::crypto::Aes256GcmCipher;
using kinlet::crypto::Aes256GcmCipherFactory;

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

std::unique_ptr<kinlet::RecordCipher> MakeCipher(const std::string& key) {
  Aes256GcmCipherFactory factory;
  auto cipher = factory.Make(key);
  REQUIRE(cipher.ok());
  return std::move(*cipher);
}

std::string Seal(const kinlet::RecordCipher& cipher, uint64_t nonce, std::string_view aad,
                 std::string_view plaintext) {
  std::string sealed(plaintext.size() + cipher.Overhead(), '\0');
  REQUIRE(cipher.Seal(nonce, aad, plaintext, sealed.data()).ok());
  return sealed;
}

absl::StatusOr<std::string> Open(const kinlet::RecordCipher& cipher, uint64_t nonce,
                                 std::string_view aad, std::string_view sealed) {
  std::string out(sealed.size() >= 16 ? sealed.size() - 16 : 0, '\x5a');
  absl::Status s = cipher.Open(nonce, aad, sealed, out.data());
  if (!s.ok()) {
    // Nothing unauthenticated is left in the output.
    CHECK(out == std::string(out.size(), out.empty() || sealed.size() < 16 ? '\x5a' : '\0'));
    return s;
  }
  return out;
}

}  // namespace

TEST_CASE("Aes256GcmCipherFactory takes only 32-byte keys", "[crypto]") {
  Aes256GcmCipherFactory factory;
  CHECK(factory.KeySize() == 32);
  for (size_t size : {0, 1, 16, 24, 31, 33, 64}) {
    auto cipher = factory.Make(std::string(size, 'k'));
    REQUIRE_FALSE(cipher.ok());
    CHECK(kinlet::ErrorNameOf(cipher.status()) == "InvalidArgumentException");
  }
  auto cipher = factory.Make(std::string(32, 'k'));
  REQUIRE(cipher.ok());
  CHECK((*cipher)->Overhead() == 16);
}

TEST_CASE("Aes256GcmCipher seals and opens records of every size", "[crypto]") {
  const std::string key = RandomBytes(32, 1);
  auto cipher = MakeCipher(key);
  const std::string aad = "frame-header:shard-000001";
  uint64_t nonce = 0;
  for (size_t size : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{31},
                      size_t{32}, size_t{33}, size_t{255}, size_t{4096}, size_t{65539},
                      (size_t{1} << 20) + 7, size_t{5} << 20}) {
    INFO("size " << size);
    const std::string plaintext = RandomBytes(size, static_cast<uint32_t>(size));
    const std::string sealed = Seal(*cipher, ++nonce, aad, plaintext);
    REQUIRE(sealed.size() == size + 16);
    if (size >= 16) CHECK(sealed.substr(0, size) != plaintext);
    auto opened = Open(*cipher, nonce, aad, sealed);
    REQUIRE(opened.ok());
    CHECK(*opened == plaintext);
    // Without aad too.
    const std::string bare = Seal(*cipher, ++nonce, "", plaintext);
    auto bare_opened = Open(*cipher, nonce, "", bare);
    REQUIRE(bare_opened.ok());
    CHECK(*bare_opened == plaintext);
  }
}

TEST_CASE("Aes256GcmCipher works in place", "[crypto]") {
  auto cipher = MakeCipher(RandomBytes(32, 2));
  const std::string plaintext = RandomBytes(1000, 3);
  std::string buffer = plaintext + std::string(16, '\0');
  REQUIRE(cipher->Seal(7, "aad", std::string_view(buffer.data(), 1000), buffer.data()).ok());
  CHECK(buffer.substr(0, 1000) != plaintext);
  REQUIRE(cipher->Open(7, "aad", buffer, buffer.data()).ok());
  CHECK(buffer.substr(0, 1000) == plaintext);
}

TEST_CASE("Aes256GcmCipher is deterministic per nonce and differs across nonces", "[crypto]") {
  auto cipher = MakeCipher(RandomBytes(32, 4));
  const std::string plaintext = RandomBytes(64, 5);
  CHECK(Seal(*cipher, 9, "a", plaintext) == Seal(*cipher, 9, "a", plaintext));
  CHECK(Seal(*cipher, 9, "a", plaintext) != Seal(*cipher, 10, "a", plaintext));
  // The nonce's high bits count too (the IV holds all 64 of them).
  CHECK(Seal(*cipher, 9, "a", plaintext) != Seal(*cipher, 9 | (uint64_t{1} << 63), "a", plaintext));
  // A fresh key gives another ciphertext for the same nonce.
  auto other = MakeCipher(RandomBytes(32, 6));
  CHECK(Seal(*cipher, 9, "a", plaintext) != Seal(*other, 9, "a", plaintext));
}

TEST_CASE("Aes256GcmCipher detects any flipped bit, a wrong nonce, aad or key", "[crypto]") {
  const std::string key = RandomBytes(32, 7);
  auto cipher = MakeCipher(key);
  const std::string aad = RandomBytes(13, 8);
  const std::string plaintext = RandomBytes(100, 9);
  const uint64_t nonce = 0x0102030405060708;
  const std::string sealed = Seal(*cipher, nonce, aad, plaintext);

  SECTION("every bit of the ciphertext and the tag") {
    for (size_t byte = 0; byte < sealed.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string bad = sealed;
        bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
        auto opened = Open(*cipher, nonce, aad, bad);
        REQUIRE_FALSE(opened.ok());
        REQUIRE(kinlet::ErrorNameOf(opened.status()) == "DataLossException");
      }
    }
  }
  SECTION("every bit of the aad") {
    for (size_t byte = 0; byte < aad.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string bad = aad;
        bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
        auto opened = Open(*cipher, nonce, bad, sealed);
        REQUIRE_FALSE(opened.ok());
        REQUIRE(kinlet::IsDataLoss(opened.status()));
      }
    }
    CHECK(kinlet::IsDataLoss(Open(*cipher, nonce, "", sealed).status()));
    CHECK(kinlet::IsDataLoss(Open(*cipher, nonce, aad + "x", sealed).status()));
  }
  SECTION("a wrong nonce") {
    for (int bit = 0; bit < 64; ++bit) {
      CHECK(kinlet::IsDataLoss(Open(*cipher, nonce ^ (uint64_t{1} << bit), aad, sealed).status()));
    }
  }
  SECTION("a wrong key") {
    std::string other_key = key;
    other_key[31] = static_cast<char>(other_key[31] ^ 1);
    auto other = MakeCipher(other_key);
    CHECK(kinlet::IsDataLoss(Open(*other, nonce, aad, sealed).status()));
  }
  SECTION("truncated or extended sealed text") {
    CHECK(kinlet::IsDataLoss(
        Open(*cipher, nonce, aad, sealed.substr(0, sealed.size() - 1)).status()));
    CHECK(kinlet::IsDataLoss(Open(*cipher, nonce, aad, sealed.substr(1)).status()));
    CHECK(kinlet::IsDataLoss(Open(*cipher, nonce, aad, sealed + '\0').status()));
    for (size_t size = 0; size < 16; ++size) {
      std::string out(1, '\0');
      auto s = cipher->Open(nonce, aad, sealed.substr(0, size), out.data());
      CHECK(kinlet::ErrorNameOf(s) == "DataLossException");
    }
  }
  SECTION("the cipher still works after failures") {
    std::string bad = sealed;
    bad[0] = static_cast<char>(bad[0] ^ 1);
    REQUIRE_FALSE(Open(*cipher, nonce, aad, bad).ok());
    auto opened = Open(*cipher, nonce, aad, sealed);
    REQUIRE(opened.ok());
    CHECK(*opened == plaintext);
  }
}

// Known answers from "The Galois/Counter Mode of Operation (GCM)", D. McGrew and
// J. Viega (the GCM specification submitted to NIST, revised 2005), Appendix B,
// AES-256 Test Cases 13, 14 and 16 (also in NIST's GCM test vector set).
TEST_CASE("Aes256GcmCipher matches the GCM specification's AES-256 test vectors", "[crypto]") {
  SECTION("test cases 13 and 14: zero key, zero IV (nonce 0), no aad") {
    auto cipher = MakeCipher(std::string(32, '\0'));
    // Test case 13: empty plaintext; the sealed text is the tag alone.
    CHECK(Seal(*cipher, 0, "", "") == Unhex("530f8afbc74536b9a963b4f1c4cb738b"));
    // Test case 14: 16 zero bytes.
    const std::string sealed = Seal(*cipher, 0, "", std::string(16, '\0'));
    CHECK(sealed == Unhex("cea7403d4d606b6e074ec5d3baf39d18"
                          "d0d1c8a799996bf0265b98b5d48ab919"));
    auto opened = Open(*cipher, 0, "", sealed);
    REQUIRE(opened.ok());
    CHECK(*opened == std::string(16, '\0'));
  }
  SECTION("test case 16: 60-byte plaintext, 20-byte aad, IV cafebabefacedbaddecaf888") {
    // The IV's first four bytes are not zero, so this runs the engine under
    // the cipher (detail::GcmCrypt) with the vector's IV.
    const std::string key =
        Unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    const std::string iv_bytes = Unhex("cafebabefacedbaddecaf888");
    const std::string aad = Unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    const std::string plaintext = Unhex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    const std::string ciphertext = Unhex(
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
    const std::string tag = Unhex("76fc6ece0f4e1768cddf8853bb2d551b");
    unsigned char iv[12];
    std::memcpy(iv, iv_bytes.data(), 12);
    EVP_CIPHER_CTX* ctx = kinlet::crypto::detail::NewAes256GcmContext(
        reinterpret_cast<const unsigned char*>(key.data()));
    REQUIRE(ctx != nullptr);
    std::string out(plaintext.size(), '\0');
    std::string out_tag(16, '\0');
    CHECK(kinlet::crypto::detail::GcmCrypt(
              ctx, true, iv, aad, reinterpret_cast<const unsigned char*>(plaintext.data()),
              plaintext.size(), reinterpret_cast<unsigned char*>(out.data()),
              reinterpret_cast<unsigned char*>(out_tag.data())) == 1);
    CHECK(out == ciphertext);
    CHECK(out_tag == tag);
    std::string back(plaintext.size(), '\0');
    std::string check_tag = tag;
    CHECK(kinlet::crypto::detail::GcmCrypt(
              ctx, false, iv, aad, reinterpret_cast<const unsigned char*>(ciphertext.data()),
              ciphertext.size(), reinterpret_cast<unsigned char*>(back.data()),
              reinterpret_cast<unsigned char*>(check_tag.data())) == 1);
    CHECK(back == plaintext);
    check_tag[15] = static_cast<char>(check_tag[15] ^ 0x80);
    CHECK(kinlet::crypto::detail::GcmCrypt(
              ctx, false, iv, aad, reinterpret_cast<const unsigned char*>(ciphertext.data()),
              ciphertext.size(), reinterpret_cast<unsigned char*>(back.data()),
              reinterpret_cast<unsigned char*>(check_tag.data())) == 0);
    EVP_CIPHER_CTX_free(ctx);
  }
  SECTION("the IV is four zero bytes and the nonce big-endian") {
    unsigned char iv[12];
    kinlet::crypto::detail::GcmIvFromNonce(0x0102030405060708, iv);
    const unsigned char want[12] = {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(std::memcmp(iv, want, 12) == 0);
  }
}

TEST_CASE("Aes256GcmCipher serves concurrent Open and Seal on one cipher", "[crypto]") {
  auto cipher = MakeCipher(RandomBytes(32, 10));
  constexpr int kRecords = 64;
  std::vector<std::string> plaintexts;
  std::vector<std::string> sealed;
  for (int i = 0; i < kRecords; ++i) {
    plaintexts.push_back(RandomBytes(static_cast<size_t>(i) * 37, static_cast<uint32_t>(i)));
    sealed.push_back(Seal(*cipher, static_cast<uint64_t>(i), "aad", plaintexts.back()));
  }
  // More threads than the cipher's pool has contexts (16): the overflow path
  // (a temporary context) runs too.
  constexpr int kThreads = 20;
  constexpr int kRounds = 3;
  std::atomic<bool> go{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      std::string out;
      std::string mine;
      for (int round = 0; round < kRounds; ++round) {
        for (int i = 0; i < kRecords; ++i) {
          const int r = (i + t) % kRecords;
          out.assign(plaintexts[r].size(), '\0');
          if (!cipher->Open(static_cast<uint64_t>(r), "aad", sealed[r], out.data()).ok() ||
              out != plaintexts[r]) {
            failures.fetch_add(1);
          }
          if (i % 8 == t % 8) {  // writers seal concurrently with the readers
            mine.assign(plaintexts[r].size() + 16, '\0');
            const uint64_t nonce = 1000000 + static_cast<uint64_t>(t * kRecords + i);
            if (!cipher->Seal(nonce, "w", plaintexts[r], mine.data()).ok()) failures.fetch_add(1);
            out.assign(plaintexts[r].size(), '\0');
            if (!cipher->Open(nonce, "w", mine, out.data()).ok() || out != plaintexts[r]) {
              failures.fetch_add(1);
            }
          }
        }
        // A failed authentication in the middle of it all.
        std::string bad = sealed[t % kRecords];
        bad.back() = static_cast<char>(bad.back() ^ 1);
        out.assign(bad.size() - 16, '\0');
        if (!kinlet::IsDataLoss(
                cipher->Open(static_cast<uint64_t>(t % kRecords), "aad", bad, out.data()))) {
          failures.fetch_add(1);
        }
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& thread : threads) thread.join();
  CHECK(failures.load() == 0);
}

namespace {
std::atomic<long> g_openssl_allocations{0};
std::atomic<bool> g_counting_openssl{false};
void* CountingMalloc(size_t n, const char*, int) {
  if (g_counting_openssl.load(std::memory_order_relaxed)) g_openssl_allocations.fetch_add(1);
  return std::malloc(n);
}
void* CountingRealloc(void* p, size_t n, const char*, int) {
  if (g_counting_openssl.load(std::memory_order_relaxed)) g_openssl_allocations.fetch_add(1);
  return std::realloc(p, n);
}
void CountingFree(void* p, const char*, int) { std::free(p); }
}  // namespace

TEST_CASE("Aes256GcmCipher allocates nothing per Seal and Open", "[crypto]") {
  // OpenSSL takes allocator hooks only before its first allocation: true when
  // this case runs alone (ctest runs each case in its own process).
  if (CRYPTO_set_mem_functions(CountingMalloc, CountingRealloc, CountingFree) != 1) {
    WARN("OpenSSL already allocated in this process; run this case alone to count");
    return;
  }
  // The hooks count: making a cipher allocates (its first context).
  g_counting_openssl.store(true);
  auto cipher = MakeCipher(RandomBytes(32, 11));
  g_counting_openssl.store(false);
  CHECK(g_openssl_allocations.load() > 0);
  const std::string plaintext = RandomBytes(1024, 12);
  std::string sealed(plaintext.size() + 16, '\0');
  std::string out(plaintext.size(), '\0');
  REQUIRE(cipher->Seal(1, "aad", plaintext, sealed.data()).ok());  // warm-up
  REQUIRE(cipher->Open(1, "aad", sealed, out.data()).ok());
  g_openssl_allocations.store(0);
  g_counting_openssl.store(true);
  bool ok = true;
  for (uint64_t nonce = 2; nonce < 1002; ++nonce) {
    ok = ok && cipher->Seal(nonce, "aad", plaintext, sealed.data()).ok();
    ok = ok && cipher->Open(nonce, "aad", sealed, out.data()).ok();
  }
  g_counting_openssl.store(false);
  CHECK(ok);
  CHECK(out == plaintext);
  CHECK(g_openssl_allocations.load() == 0);
}
