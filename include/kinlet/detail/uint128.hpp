// kinlet/detail/uint128.hpp: decimal text for unsigned 128-bit values, the form
// Kinesis uses for hash keys and sequence numbers.
#pragma once

#include <string>
#include <string_view>

#include "absl/numeric/int128.h"

namespace kinlet::detail {

// Decimal digits of `v`, no leading zeros ("0" for zero).
inline std::string Uint128ToDecimal(absl::uint128 v) {
  char buf[40];
  char* end = buf + sizeof(buf);
  char* p = end;
  do {
    *--p = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  } while (v != 0);
  return std::string(p, static_cast<size_t>(end - p));
}

enum class DecimalParse { kOk, kMalformed, kOverflow };

// Parses a run of decimal digits (REQUIRES: `s` is all digits). kOverflow if the
// value does not fit in 128 bits.
inline DecimalParse DecimalToUint128(std::string_view s, absl::uint128* out) {
  absl::uint128 v = 0;
  const absl::uint128 max = absl::Uint128Max();
  for (char c : s) {
    if (c < '0' || c > '9') return DecimalParse::kMalformed;
    unsigned d = static_cast<unsigned>(c - '0');
    if (v > (max - d) / 10) return DecimalParse::kOverflow;
    v = v * 10 + d;
  }
  *out = v;
  return DecimalParse::kOk;
}

}  // namespace kinlet::detail
