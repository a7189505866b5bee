// kinlet/detail/uint128.hpp: decimal text for unsigned 128-bit values (hash
// keys) and 192-bit values (sequence numbers: Kinesis prints up to 56 digits),
// the forms Kinesis uses.
#pragma once

#include <array>
#include <cstdint>
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

// An unsigned 192-bit value as three 64-bit limbs, most significant first.
using Uint192 = std::array<uint64_t, 3>;

// Parses a run of decimal digits into 192 bits. kMalformed for a non-digit,
// kOverflow if the value does not fit.
inline DecimalParse DecimalToUint192(std::string_view s, Uint192* out) {
  Uint192 v = {0, 0, 0};
  for (char c : s) {
    if (c < '0' || c > '9') return DecimalParse::kMalformed;
    // v = v * 10 + digit, limb by limb from the least significant.
    uint64_t carry = static_cast<uint64_t>(c - '0');
    for (int i = 2; i >= 0; --i) {
      const absl::uint128 x = absl::uint128(v[i]) * 10 + carry;
      v[i] = absl::Uint128Low64(x);
      carry = absl::Uint128High64(x);
    }
    if (carry != 0) return DecimalParse::kOverflow;
  }
  *out = v;
  return DecimalParse::kOk;
}

// Decimal digits of `v`, no leading zeros ("0" for zero).
inline std::string Uint192ToDecimal(Uint192 v) {
  if (v[0] == 0) return Uint128ToDecimal(absl::MakeUint128(v[1], v[2]));
  // Peel off 19 digits at a time (10^19 < 2^64) by long division.
  constexpr uint64_t kChunk = 10000000000000000000u;
  std::string chunks[3];
  int n = 0;
  while (v[0] != 0 || v[1] != 0) {
    uint64_t rem = 0;
    for (uint64_t& limb : v) {
      const absl::uint128 x = absl::MakeUint128(rem, limb);
      limb = absl::Uint128Low64(x / kChunk);
      rem = absl::Uint128Low64(x % kChunk);
    }
    std::string digits = Uint128ToDecimal(rem);
    chunks[n++] = std::string(19 - digits.size(), '0') + digits;
  }
  std::string out = Uint128ToDecimal(v[2]);
  while (n > 0) out += chunks[--n];
  return out;
}

}  // namespace kinlet::detail
