// kinlet/md5_hasher.hpp: the Kinesis-compatible partition-key hasher.
//
// Kinesis places a record by the MD5 of its partition key's UTF-8 bytes read as
// a big-endian unsigned 128-bit integer. With Md5Hasher in the stream's Traits,
// kinlet places every key in the shard real Kinesis would. MD5 comes from
// OpenSSL's libcrypto (Debian libssl-dev); link the target kinlet::md5.
// Thread safety: stateless; thread-safe.
#pragma once

#include <string_view>

#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED  // MD5() is deprecated in OpenSSL 3 but stays.
#endif
#include <openssl/md5.h>

#include "kinlet/hash_key.hpp"

namespace kinlet {

struct Md5Hasher {
  static HashKey Hash(std::string_view partition_key) noexcept {
    unsigned char digest[MD5_DIGEST_LENGTH];
    MD5(reinterpret_cast<const unsigned char*>(partition_key.data()), partition_key.size(), digest);
    uint64_t hi = 0;
    uint64_t lo = 0;
    for (int i = 0; i < 8; ++i) hi = (hi << 8) | digest[i];
    for (int i = 8; i < 16; ++i) lo = (lo << 8) | digest[i];
    return absl::MakeUint128(hi, lo);
  }
};

}  // namespace kinlet
