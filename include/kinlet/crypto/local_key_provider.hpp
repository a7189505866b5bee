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
#include <openssl/err.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kinlet/crypto/aes_gcm.hpp"
#include "kinlet/crypto/detail/key_file.hpp"
#include "kinlet/detail/hash.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/status_macros.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/storage/encryption.hpp"

namespace kinlet::crypto {

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
