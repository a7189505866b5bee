// kinlet/hasher.hpp: partition-key hashers, chosen at compile time through the
// stream's Traits::Hasher.
//
// A hasher is any type with `static HashKey Hash(std::string_view key)`; it maps
// the partition key's bytes onto the 128-bit hash key space. XXH3-128 is the
// default (a few nanoseconds for a short key). For shard placement identical to
// real Kinesis (MD5 of the UTF-8 key, big-endian) use Md5Hasher from
// kinlet/md5_hasher.hpp, which needs OpenSSL's libcrypto (target kinlet::md5).
// Thread safety: hashers are stateless; thread-safe.
#pragma once

#include <concepts>
#include <string_view>

#include "kinlet/detail/hash.hpp"
#include "kinlet/hash_key.hpp"

namespace kinlet {

template <typename H>
concept PartitionKeyHasher = requires(std::string_view key) {
  { H::Hash(key) } -> std::same_as<HashKey>;
};

// XXH3-128 of the key's bytes, high 64 bits first.
struct Xxh3Hasher {
  static HashKey Hash(std::string_view partition_key) noexcept {
    return detail::Xxh3_128(partition_key);
  }
};

}  // namespace kinlet
