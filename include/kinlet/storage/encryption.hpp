// kinlet/storage/encryption.hpp: encryption at rest, as Kinesis server-side
// encryption: the KMS envelope pattern.
//
// A durable stream with encryption on (Stream::StartStreamEncryption(kKms,
// key_id)) asks its KeyProvider for a fresh data key for every new segment
// (KMS GenerateDataKey), keeps only the wrapped key in the segment's header,
// and seals each record's partition key and payload with a RecordCipher made
// from the plaintext data key (AES-256-GCM in kinlet::crypto). Reading an
// older segment unwraps its stored key (KMS Decrypt) with the key version it
// was wrapped under, so rotating a master key applies to new segments and old
// ones stay readable. Stopping encryption applies to new segments.
//
// The interfaces live in the core (no dependency); kinlet::crypto
// (find_package(kinlet COMPONENTS crypto)) ships the implementations:
// crypto::Aes256GcmCipherFactory and crypto::LocalKeyProvider (master keys in
// a key file). Errors are Kinesis's KMS errors (errors.hpp: KmsError).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kinlet {

enum class EncryptionType { kNone, kKms };

constexpr std::string_view EncryptionTypeName(EncryptionType t) {
  return t == EncryptionType::kKms ? "KMS" : "NONE";
}

// A data key: its plaintext (never stored; wiped when the holder is
// destroyed) and its wrapped form (stored in the segment header).
struct DataKey {
  std::string key_id;        // the master key's id or alias, as given
  uint32_t key_version = 0;  // the master key version that wrapped it
  std::string plaintext;     // 32 bytes for AES-256
  std::string wrapped;       // opaque; what UnwrapDataKey takes back

  DataKey() = default;
  DataKey(const DataKey&) = default;
  DataKey& operator=(const DataKey&) = default;
  DataKey(DataKey&&) = default;
  DataKey& operator=(DataKey&&) = default;
  ~DataKey() {
    volatile char* p = plaintext.data();
    for (size_t i = 0; i < plaintext.size(); ++i) p[i] = 0;
  }
};

// A KMS. Thread-safe; must outlive the streams that use it.
class KeyProvider {
 public:
  virtual ~KeyProvider() = default;
  // Checks that `key_id` can be used to encrypt now (StartStreamEncryption
  // calls it). KMSNotFoundException, KMSDisabledException,
  // KMSAccessDeniedException, KMSInvalidStateException, KMSThrottlingException.
  virtual absl::Status CheckKey(std::string_view key_id) = 0;
  // A new random data key under the current version of `key_id`. Errors as
  // CheckKey.
  virtual absl::StatusOr<DataKey> GenerateDataKey(std::string_view key_id) = 0;
  // The plaintext of a data key `GenerateDataKey` returned (any version of the
  // master key that still exists). KMSNotFoundException if the key or version
  // is gone; KMSAccessDeniedException / KMSInvalidStateException as CheckKey;
  // DataLossException if `wrapped` fails authentication.
  virtual absl::StatusOr<std::string> UnwrapDataKey(std::string_view key_id, uint32_t key_version,
                                                    std::string_view wrapped) = 0;
};

// Seals and opens records under one data key. Thread-safe (readers of a
// segment share one; implementations keep per-thread state as needed).
class RecordCipher {
 public:
  virtual ~RecordCipher() = default;
  // Bytes a sealed text has beyond its plaintext (AES-GCM: its 16-byte tag).
  virtual size_t Overhead() const = 0;
  // Seals `plaintext` into `out` (plaintext.size() + Overhead() bytes).
  // `nonce` must never repeat under one data key (the storage layer passes
  // the record's position, unique within a segment, whose key is fresh).
  // `aad` is authenticated but not encrypted (the record's frame header).
  virtual absl::Status Seal(uint64_t nonce, std::string_view aad, std::string_view plaintext,
                            char* out) const = 0;
  // Opens what Seal produced into `out` (sealed.size() - Overhead() bytes).
  // DataLossException if authentication fails (a flipped bit, a wrong key, a
  // wrong nonce or aad).
  virtual absl::Status Open(uint64_t nonce, std::string_view aad, std::string_view sealed,
                            char* out) const = 0;
};

// Makes RecordCiphers from plaintext data keys. Thread-safe.
class CipherFactory {
 public:
  virtual ~CipherFactory() = default;
  // InvalidArgumentException for a key of the wrong size.
  virtual absl::StatusOr<std::unique_ptr<RecordCipher>> Make(std::string_view plaintext_key) = 0;
  // The data key size this factory takes (32 for AES-256).
  virtual size_t KeySize() const = 0;
};

}  // namespace kinlet
