// kinlet/hash_key.hpp: the 128-bit hash key space that shards partition.
//
// A record's hash key is the 128-bit hash of its partition key (or its explicit
// hash key); it goes to the open shard whose inclusive
// [starting_hash_key, ending_hash_key] range holds it.
// Thread safety: value types and pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kinlet/config.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/detail/uint128.hpp"
#include "kinlet/errors.hpp"

namespace kinlet {

using HashKey = absl::uint128;

inline constexpr HashKey kMaxHashKey = absl::Uint128Max();

// Decimal text of a hash key, as Kinesis shows it.
inline std::string HashKeyToString(HashKey key) { return detail::Uint128ToDecimal(key); }

// Parses an ExplicitHashKey with Kinesis's rules: the text must match
// `0|([1-9]\d{0,38})` (else ValidationException) and the value must lie in
// [0, 2^128-1] (else InvalidArgumentException with AWS's message).
inline absl::StatusOr<HashKey> ParseHashKey(std::string_view text) {
  if (!detail::AllDigits(text) || text.size() > 39 || (text.size() > 1 && text[0] == '0')) {
    return ValidationError(absl::StrCat(
        "1 validation error detected: Value '", detail::ToAbsl(text),
        "' at 'explicitHashKey' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: 0|([1-9]\\d{0,38})"));
  }
  HashKey value = 0;
  if (detail::DecimalToUint128(text, &value) != detail::DecimalParse::kOk) {
    return InvalidArgument(
        absl::StrCat("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
                     "Specified value was ",
                     detail::ToAbsl(text)));
  }
  return value;
}

// An inclusive range of hash keys.
struct HashKeyRange {
  HashKey starting_hash_key = 0;
  HashKey ending_hash_key = kMaxHashKey;

  bool Contains(HashKey key) const { return key >= starting_hash_key && key <= ending_hash_key; }
  friend bool operator==(const HashKeyRange&, const HashKeyRange&) = default;
};

// The ranges Kinesis gives a new stream of `shard_count` shards: shard i starts
// at i * floor(2^128 / N) and the last one ends at 2^128 - 1.
// REQUIRES: shard_count >= 1.
inline std::vector<HashKeyRange> InitialHashKeyRanges(int shard_count) {
  KINLET_ASSERT(shard_count >= 1, "shard_count must be at least 1");
  std::vector<HashKeyRange> ranges(static_cast<size_t>(shard_count));
  // floor(2^128 / N) computed without 2^128: (2^128 - 1) / N, plus one when N
  // divides 2^128 exactly (N a power of two).
  const absl::uint128 n = static_cast<uint64_t>(shard_count);
  absl::uint128 step = kMaxHashKey / n;
  if (kMaxHashKey % n == n - 1) step += 1;
  for (int i = 0; i < shard_count; ++i) {
    ranges[i].starting_hash_key = step * static_cast<uint64_t>(i);
    ranges[i].ending_hash_key =
        i + 1 == shard_count ? kMaxHashKey : step * static_cast<uint64_t>(i + 1) - 1;
  }
  return ranges;
}

}  // namespace kinlet
