// kinlet/crypto/aes_gcm.hpp: AES-256-GCM record ciphers over OpenSSL's
// libcrypto, the RecordCipher / CipherFactory of encryption at rest
// (kinlet/storage/encryption.hpp). Link kinlet::crypto
// (find_package(kinlet COMPONENTS crypto)).
//
// Sealed record layout (what Seal writes, what Open takes):
//
//   +------------------------------+------------------+
//   | ciphertext (plaintext.size())| tag (16 bytes)   |
//   +------------------------------+------------------+
//
// IV (96 bits, NIST SP 800-38D section 8.2.1, the deterministic
// construction): a fixed field of four zero bytes, then the 64-bit nonce
// big-endian. The storage layer passes the record's position in its segment,
// and every segment has a fresh random data key, so an (IV, key) pair never
// repeats. The four fixed bytes are zero because a key is used by one
// segment only (never by two devices or two contexts).
//
// Speed: Seal and Open allocate nothing and never lock. Each cipher owns a
// small pool of EVP_CIPHER_CTX holding its key schedule; a call takes a free
// one (one atomic exchange, usually the calling thread's own slot), re-keys
// only the IV, and gives it back. Why a pool owned by the cipher and not a
// thread_local cache: the contexts hold the expanded key, so they must be
// wiped when the cipher (the segment's data key) goes away; a thread_local
// cache would keep dead keys alive in every thread that ever read a segment,
// and a cache keyed by the cipher's address would hand a reused address the
// wrong key.
#pragma once

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kinlet/config.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/storage/encryption.hpp"

namespace kinlet::crypto {

inline constexpr size_t kAes256KeySize = 32;
inline constexpr size_t kGcmIvSize = 12;
inline constexpr size_t kGcmTagSize = 16;

namespace detail {

// The IV for `nonce`: 00 00 00 00 || nonce (big-endian).
inline void GcmIvFromNonce(uint64_t nonce, unsigned char (&iv)[kGcmIvSize]) {
  iv[0] = iv[1] = iv[2] = iv[3] = 0;
  for (int i = 0; i < 8; ++i) iv[4 + i] = static_cast<unsigned char>(nonce >> (56 - 8 * i));
}

// "what: <OpenSSL's first queued error>", and clears this thread's queue.
inline std::string OpenSslError(std::string_view what) {
  std::string message(what);
  const unsigned long code = ERR_get_error();
  if (code != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    message += ": ";
    message += buffer;
  }
  ERR_clear_error();
  return message;
}

// A new context holding the AES-256-GCM key schedule of `key` (32 bytes), or
// nullptr (OpenSSL's error queue says why). Free with EVP_CIPHER_CTX_free,
// which wipes it.
inline EVP_CIPHER_CTX* NewAes256GcmContext(const unsigned char* key) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return nullptr;
  if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, nullptr, /*enc=*/1) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

// Runs EVP_CipherUpdate over `size` bytes in chunks an int can count.
inline bool GcmUpdate(EVP_CIPHER_CTX* ctx, unsigned char* out, const unsigned char* in,
                      size_t size) {
  constexpr size_t kChunk = size_t{1} << 30;
  while (size > 0) {
    const size_t n = size < kChunk ? size : kChunk;
    int written = 0;
    if (EVP_CipherUpdate(ctx, out, &written, in, static_cast<int>(n)) != 1) return false;
    if (out != nullptr) out += n;
    in += n;
    size -= n;
  }
  return true;
}

// AES-GCM with an explicit IV on a context made by NewAes256GcmContext.
// encrypt: out = ciphertext (size bytes), then the 16-byte tag at tag.
// decrypt: out = plaintext; `tag` is checked. Returns 1 on success, 0 if
// decryption failed authentication, -1 on an OpenSSL failure. `out` may equal
// `in` (in place); no other overlap. Allocates nothing.
inline int GcmCrypt(EVP_CIPHER_CTX* ctx, bool encrypt, const unsigned char (&iv)[kGcmIvSize],
                    std::string_view aad, const unsigned char* in, size_t size, unsigned char* out,
                    unsigned char* tag) {
  if (EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, iv, encrypt ? 1 : 0) != 1) return -1;
  if (!encrypt &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagSize), tag) != 1) {
    return -1;
  }
  if (!aad.empty() &&
      !GcmUpdate(ctx, nullptr, reinterpret_cast<const unsigned char*>(aad.data()), aad.size())) {
    return -1;
  }
  if (size > 0 && !GcmUpdate(ctx, out, in, size)) return -1;
  int final_bytes = 0;
  if (EVP_CipherFinal_ex(ctx, out + size, &final_bytes) != 1) return encrypt ? -1 : 0;
  if (encrypt &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagSize), tag) != 1) {
    return -1;
  }
  return 1;
}

// A small per-process index for each thread: the slot of a cipher's pool it
// tries first, so concurrent threads mostly take different slots.
inline unsigned ThreadSlotHint() {
  static std::atomic<unsigned> next{0};
  thread_local const unsigned hint = next.fetch_add(1, std::memory_order_relaxed);
  return hint;
}

}  // namespace detail

// Seals and opens records with AES-256-GCM under one data key.
// Thread safety: Seal and Open may be called from any number of threads at
// once; neither allocates or blocks (beyond the 17th concurrent caller of one
// cipher, which makes a temporary context). REQUIRES: no call is in flight
// when the cipher is destroyed. Destruction wipes the key and its schedules.
class Aes256GcmCipher final : public RecordCipher {
 public:
  // InvalidArgumentException if `key` is not 32 bytes; InternalFailure if
  // OpenSSL cannot make an AES-256-GCM context.
  static absl::StatusOr<std::unique_ptr<Aes256GcmCipher>> Create(std::string_view key) {
    if (key.size() != kAes256KeySize) {
      return InvalidArgument("AES-256-GCM needs a 32-byte data key, got " +
                             std::to_string(key.size()) + " bytes");
    }
    std::unique_ptr<Aes256GcmCipher> cipher(new Aes256GcmCipher(key));
    // The first context now, so that a broken OpenSSL fails here, not on a put.
    cipher->slots_[0].ctx = detail::NewAes256GcmContext(cipher->key_);
    if (cipher->slots_[0].ctx == nullptr) {
      return InternalFailure(detail::OpenSslError("EVP AES-256-GCM context"));
    }
    return cipher;
  }

  ~Aes256GcmCipher() override {
    for (Slot& slot : slots_) EVP_CIPHER_CTX_free(slot.ctx);  // wipes the schedule
    OPENSSL_cleanse(key_, sizeof(key_));
  }
  Aes256GcmCipher(const Aes256GcmCipher&) = delete;
  Aes256GcmCipher& operator=(const Aes256GcmCipher&) = delete;

  size_t Overhead() const override { return kGcmTagSize; }

  // Writes plaintext.size() + 16 bytes to `out` (ciphertext, then tag). `out`
  // may be plaintext.data() (in place, with 16 bytes of room after it).
  // InternalFailure only if OpenSSL fails. Thread-safe; allocates nothing.
  absl::Status Seal(uint64_t nonce, std::string_view aad, std::string_view plaintext,
                    char* out) const override {
    unsigned char iv[kGcmIvSize];
    detail::GcmIvFromNonce(nonce, iv);
    unsigned char* dst = reinterpret_cast<unsigned char*>(out);
    Lease lease(this);
    if (lease.ctx() == nullptr) {
      return InternalFailure(detail::OpenSslError("EVP AES-256-GCM context"));
    }
    const int rc = detail::GcmCrypt(lease.ctx(), /*encrypt=*/true, iv, aad,
                                    reinterpret_cast<const unsigned char*>(plaintext.data()),
                                    plaintext.size(), dst, dst + plaintext.size());
    if (KINLET_UNLIKELY(rc != 1)) {
      return InternalFailure(detail::OpenSslError("AES-256-GCM seal"));
    }
    return absl::OkStatus();
  }

  // Writes sealed.size() - 16 bytes to `out`. DataLossException if `sealed`
  // is shorter than a tag or fails authentication (a flipped bit in the
  // ciphertext or tag, a wrong key, nonce or aad); `out` is then zeroed, so
  // no unauthenticated byte is ever left behind. `out` may be sealed.data().
  // Thread-safe; allocates nothing when the record is authentic.
  absl::Status Open(uint64_t nonce, std::string_view aad, std::string_view sealed,
                    char* out) const override {
    if (KINLET_UNLIKELY(sealed.size() < kGcmTagSize)) {
      return DataLoss("AES-256-GCM: a sealed record of " + std::to_string(sealed.size()) +
                      " bytes is shorter than its 16-byte tag");
    }
    const size_t size = sealed.size() - kGcmTagSize;
    unsigned char tag[kGcmTagSize];
    std::memcpy(tag, sealed.data() + size, kGcmTagSize);
    unsigned char iv[kGcmIvSize];
    detail::GcmIvFromNonce(nonce, iv);
    unsigned char* dst = reinterpret_cast<unsigned char*>(out);
    int rc = -1;
    {
      Lease lease(this);
      if (lease.ctx() == nullptr) {
        return InternalFailure(detail::OpenSslError("EVP AES-256-GCM context"));
      }
      rc = detail::GcmCrypt(lease.ctx(), /*encrypt=*/false, iv, aad,
                            reinterpret_cast<const unsigned char*>(sealed.data()), size, dst, tag);
    }
    if (KINLET_LIKELY(rc == 1)) return absl::OkStatus();
    if (size > 0) OPENSSL_cleanse(dst, size);
    if (rc == 0) {
      ERR_clear_error();
      return DataLoss(
          "AES-256-GCM: the record failed authentication (corrupt, or a wrong key, nonce or aad)");
    }
    return InternalFailure(detail::OpenSslError("AES-256-GCM open"));
  }

 private:
  static constexpr unsigned kSlots = 16;

  // One pooled context. `busy` is the slot's owner flag: the acquire of a
  // successful exchange pairs with the release store of the previous holder,
  // so `ctx` (written lazily by whichever holder found it null) is visible.
  struct alignas(KINLET_CACHE_LINE_SIZE) Slot {
    std::atomic<bool> busy{false};
    EVP_CIPHER_CTX* ctx = nullptr;  // guarded by `busy`
  };

  // Holds a context for one call: a free pooled slot, or (all slots busy) a
  // temporary context freed on destruction. ctx() is nullptr if OpenSSL
  // could not make one.
  class Lease {
   public:
    explicit Lease(const Aes256GcmCipher* cipher) : cipher_(cipher) {
      const unsigned start = detail::ThreadSlotHint();
      for (unsigned i = 0; i < kSlots; ++i) {
        Slot& slot = cipher_->slots_[(start + i) % kSlots];
        if (!slot.busy.load(std::memory_order_relaxed) &&
            !slot.busy.exchange(true, std::memory_order_acquire)) {
          if (slot.ctx == nullptr) slot.ctx = detail::NewAes256GcmContext(cipher_->key_);
          slot_ = &slot;
          ctx_ = slot.ctx;
          return;
        }
      }
      ctx_ = detail::NewAes256GcmContext(cipher_->key_);
    }
    ~Lease() {
      if (slot_ != nullptr) {
        slot_->busy.store(false, std::memory_order_release);
      } else {
        EVP_CIPHER_CTX_free(ctx_);
      }
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    EVP_CIPHER_CTX* ctx() const { return ctx_; }

   private:
    const Aes256GcmCipher* cipher_;
    Slot* slot_ = nullptr;
    EVP_CIPHER_CTX* ctx_ = nullptr;
  };

  explicit Aes256GcmCipher(std::string_view key) { std::memcpy(key_, key.data(), sizeof(key_)); }

  unsigned char key_[kAes256KeySize];  // written by the constructor only
  mutable Slot slots_[kSlots];
};

// Makes Aes256GcmCiphers. Stateless; thread-safe.
class Aes256GcmCipherFactory final : public CipherFactory {
 public:
  // InvalidArgumentException unless `plaintext_key` is 32 bytes. The cipher
  // copies the key; the caller may wipe its copy at once.
  absl::StatusOr<std::unique_ptr<RecordCipher>> Make(std::string_view plaintext_key) override {
    auto cipher = Aes256GcmCipher::Create(plaintext_key);
    if (!cipher.ok()) return cipher.status();
    return std::unique_ptr<RecordCipher>(std::move(*cipher));
  }
  size_t KeySize() const override { return kAes256KeySize; }
};

}  // namespace kinlet::crypto
