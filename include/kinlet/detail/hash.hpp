// kinlet/detail/hash.hpp: the only include of <xxhash.h>. xxHash is compiled
// inline (XXH_INLINE_ALL) so the hot path makes no call into the shared library.
#pragma once

#include <cstdint>
#include <string_view>

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#define KINLET_DETAIL_DEFINED_XXH_INLINE_ALL
#endif
#include <xxhash.h>
#ifdef KINLET_DETAIL_DEFINED_XXH_INLINE_ALL
#undef XXH_INLINE_ALL
#undef KINLET_DETAIL_DEFINED_XXH_INLINE_ALL
#endif

#include "absl/numeric/int128.h"

namespace kinlet::detail {

inline absl::uint128 Xxh3_128(std::string_view bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return absl::MakeUint128(h.high64, h.low64);
}

inline uint64_t Xxh3_64(const void* data, size_t size, uint64_t seed) {
  return XXH3_64bits_withSeed(data, size, seed);
}

}  // namespace kinlet::detail
