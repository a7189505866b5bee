// kinlet/sequence_number.hpp: the identity of a record within a stream.
//
// A sequence number is an unsigned 192-bit value, as wide as Kinesis's (whose
// decimal text runs to 56 digits). kinlet's own use the low 128 bits:
//
//    191     128 127          96 95           64 63                           0
//   +-----------+--------------+---------------+------------------------------+
//   |     0     |  stream tag  |  shard index  |  position in the shard's log |
//   +-----------+--------------+---------------+------------------------------+
//
// so numbers strictly increase within a shard, a child shard's numbers exceed
// its parents' (children get higher shard indexes), a number names its shard,
// and a number from another stream (another tag) is recognised as foreign. The
// position is contiguous within a shard: kinlet seeks to a sequence number in
// O(1) and counts trimmed records exactly. Kinesis promises neither contiguity
// nor any layout; code written for Kinesis should treat the value as opaque.
// A number with any of the top 64 bits set (Amazon Kinesis's, kinesalite's,
// kinesis-mock's) is never one of kinlet's: its stream tag and shard index
// read as 0, which no in-process stream has, so in-process calls refuse it as
// foreign; it compares, hashes and prints exactly. The text form is the
// decimal value, as in Kinesis.
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
      : mid_((uint64_t{stream_tag} << 32) | shard_index), low_(position) {}
  // The number whose low 128 bits are `value` (top bits 0).
  static constexpr SequenceNumber FromValue(absl::uint128 value) {
    SequenceNumber s;
    s.mid_ = absl::Uint128High64(value);
    s.low_ = absl::Uint128Low64(value);
    return s;
  }

  // Parses the decimal text form. ValidationException if the text does not
  // match Kinesis's pattern `0|([1-9]\d{0,128})`; InvalidArgumentException if
  // it is well formed but cannot be a sequence number (over 2^192-1).
  static absl::StatusOr<SequenceNumber> Parse(std::string_view text) {
    if (!detail::AllDigits(text) || text.size() > 129 || (text.size() > 1 && text[0] == '0')) {
      return ValidationError(absl::StrCat(
          "1 validation error detected: Value '", detail::ToAbsl(text),
          "' at 'sequenceNumber' failed to satisfy constraint: Member must satisfy regular "
          "expression pattern: 0|([1-9]\\d{0,128})"));
    }
    detail::Uint192 v;
    if (detail::DecimalToUint192(text, &v) != detail::DecimalParse::kOk) {
      return InvalidArgument(absl::StrCat("StartingSequenceNumber ", detail::ToAbsl(text),
                                          " is invalid because it did not come from this stream."));
    }
    SequenceNumber s;
    s.high_ = v[0];
    s.mid_ = v[1];
    s.low_ = v[2];
    return s;
  }

  // The low 128 bits (all of a kinlet number).
  constexpr absl::uint128 value() const { return absl::MakeUint128(mid_, low_); }
  // The top 64 bits: 0 for every number kinlet issues.
  constexpr uint64_t high_bits() const { return high_; }
  // The fields of a kinlet number; 0 (no stream's tag) for a wider number.
  constexpr uint32_t stream_tag() const {
    return high_ != 0 ? 0 : static_cast<uint32_t>(mid_ >> 32);
  }
  constexpr uint32_t shard_index() const { return high_ != 0 ? 0 : static_cast<uint32_t>(mid_); }
  constexpr uint64_t position() const { return low_; }

  // Decimal text, as Kinesis prints sequence numbers.
  std::string ToString() const { return detail::Uint192ToDecimal({high_, mid_, low_}); }

  friend constexpr bool operator==(SequenceNumber a, SequenceNumber b) = default;
  friend constexpr std::strong_ordering operator<=>(SequenceNumber a, SequenceNumber b) {
    if (auto c = a.high_ <=> b.high_; c != 0) return c;
    if (auto c = a.mid_ <=> b.mid_; c != 0) return c;
    return a.low_ <=> b.low_;
  }
  template <typename H>
  friend H AbslHashValue(H h, SequenceNumber s) {
    return H::combine(std::move(h), s.high_, s.mid_, s.low_);
  }

 private:
  // Most significant first; the member order makes the defaulted == compare
  // all three.
  uint64_t high_ = 0;  // bits 191..128
  uint64_t mid_ = 0;   // bits 127..64: stream tag, shard index
  uint64_t low_ = 0;   // bits 63..0: position
};

}  // namespace kinlet
