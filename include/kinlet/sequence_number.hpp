// kinlet/sequence_number.hpp: the identity of a record within a stream.
//
// A sequence number is an unsigned 128-bit value:
//
//    127            96 95             64 63                              0
//   +----------------+-----------------+---------------------------------+
//   |   stream tag   |   shard index   |   position in the shard's log   |
//   +----------------+-----------------+---------------------------------+
//
// so numbers strictly increase within a shard, a child shard's numbers exceed
// its parents' (children get higher shard indexes), a number names its shard,
// and a number from another stream (another tag) is recognised as foreign. The
// position is contiguous within a shard: kinlet seeks to a sequence number in
// O(1) and counts trimmed records exactly. Kinesis promises neither contiguity
// nor any layout; code written for Kinesis should treat the value as opaque.
// The text form is the decimal value, as in Kinesis.
// Thread safety: value type; thread-safe.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kinlet/detail/strings.hpp"
#include "kinlet/detail/uint128.hpp"
#include "kinlet/errors.hpp"

namespace kinlet {

class SequenceNumber {
 public:
  constexpr SequenceNumber() = default;
  constexpr SequenceNumber(uint32_t stream_tag, uint32_t shard_index, uint64_t position)
      : value_(absl::MakeUint128((uint64_t{stream_tag} << 32) | shard_index, position)) {}
  static constexpr SequenceNumber FromValue(absl::uint128 value) {
    SequenceNumber s;
    s.value_ = value;
    return s;
  }

  // Parses the decimal text form. ValidationException if the text does not
  // match Kinesis's pattern `0|([1-9]\d{0,128})`; InvalidArgumentException if
  // it is well formed but cannot be a kinlet sequence number (over 2^128-1).
  static absl::StatusOr<SequenceNumber> Parse(std::string_view text) {
    if (!detail::AllDigits(text) || text.size() > 129 || (text.size() > 1 && text[0] == '0')) {
      return ValidationError(absl::StrCat(
          "1 validation error detected: Value '", detail::ToAbsl(text),
          "' at 'sequenceNumber' failed to satisfy constraint: Member must satisfy regular "
          "expression pattern: 0|([1-9]\\d{0,128})"));
    }
    absl::uint128 v = 0;
    if (detail::DecimalToUint128(text, &v) != detail::DecimalParse::kOk) {
      return InvalidArgument(absl::StrCat("StartingSequenceNumber ", detail::ToAbsl(text),
                                          " is invalid because it did not come from this stream."));
    }
    return FromValue(v);
  }

  constexpr absl::uint128 value() const { return value_; }
  constexpr uint32_t stream_tag() const {
    return static_cast<uint32_t>(absl::Uint128High64(value_) >> 32);
  }
  constexpr uint32_t shard_index() const {
    return static_cast<uint32_t>(absl::Uint128High64(value_));
  }
  constexpr uint64_t position() const { return absl::Uint128Low64(value_); }

  // Decimal text, as Kinesis prints sequence numbers.
  std::string ToString() const { return detail::Uint128ToDecimal(value_); }

  friend constexpr bool operator==(SequenceNumber a, SequenceNumber b) {
    return a.value_ == b.value_;
  }
  friend constexpr std::strong_ordering operator<=>(SequenceNumber a, SequenceNumber b) {
    if (a.value_ < b.value_) return std::strong_ordering::less;
    if (a.value_ > b.value_) return std::strong_ordering::greater;
    return std::strong_ordering::equal;
  }
  template <typename H>
  friend H AbslHashValue(H h, SequenceNumber s) {
    return H::combine(std::move(h), s.value_);
  }

 private:
  absl::uint128 value_ = 0;
};

}  // namespace kinlet
