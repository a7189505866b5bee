// kinlet/shard_iterator.hpp: where a reader stands in a shard, and the five
// ways to ask for a starting point.
//
// A ShardIterator is a small value (no allocation) naming a stream, a shard, a
// position in the shard's log and the time it was issued; it is sealed with a
// per-process keyed checksum, so an iterator that was altered, forged or made
// in another process is rejected with InvalidArgumentException ("Invalid
// ShardIterator."). Kinesis's iterators are opaque strings: ToString() and
// Parse() give that form for code that stores or passes iterators as text.
// Iterators expire (ExpiredIteratorException) after the stream's iterator TTL,
// five minutes by default, counted from when they were issued.
// Thread safety: value types; thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kinlet/detail/hash.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/sequence_number.hpp"

namespace kinlet {

enum class ShardIteratorType {
  kTrimHorizon,
  kLatest,
  kAtSequenceNumber,
  kAfterSequenceNumber,
  kAtTimestamp,
};

// The Kinesis spelling: "TRIM_HORIZON", "LATEST", ...
constexpr std::string_view ShardIteratorTypeName(ShardIteratorType type) {
  switch (type) {
    case ShardIteratorType::kTrimHorizon:
      return "TRIM_HORIZON";
    case ShardIteratorType::kLatest:
      return "LATEST";
    case ShardIteratorType::kAtSequenceNumber:
      return "AT_SEQUENCE_NUMBER";
    case ShardIteratorType::kAfterSequenceNumber:
      return "AFTER_SEQUENCE_NUMBER";
    case ShardIteratorType::kAtTimestamp:
      return "AT_TIMESTAMP";
  }
  return "";
}

// A starting position for GetShardIterator (and for consumers).
struct IteratorPosition {
  ShardIteratorType type = ShardIteratorType::kTrimHorizon;
  SequenceNumber sequence_number;  // AT_/AFTER_SEQUENCE_NUMBER
  absl::Time timestamp;            // AT_TIMESTAMP

  static IteratorPosition TrimHorizon() { return {ShardIteratorType::kTrimHorizon, {}, {}}; }
  static IteratorPosition Latest() { return {ShardIteratorType::kLatest, {}, {}}; }
  static IteratorPosition AtSequenceNumber(SequenceNumber s) {
    return {ShardIteratorType::kAtSequenceNumber, s, {}};
  }
  static IteratorPosition AfterSequenceNumber(SequenceNumber s) {
    return {ShardIteratorType::kAfterSequenceNumber, s, {}};
  }
  static IteratorPosition AtTimestamp(absl::Time t) {
    return {ShardIteratorType::kAtTimestamp, {}, t};
  }

  // Builds a position from GetShardIterator's Kinesis arguments, with AWS's
  // errors: an unknown type is a ValidationException; a sequence type without
  // a StartingSequenceNumber, or TRIM_HORIZON/LATEST with one, and AT_TIMESTAMP
  // without a timestamp are InvalidArgumentException; an unparsable sequence
  // number is a ValidationException.
  static absl::StatusOr<IteratorPosition> FromKinesis(
      std::string_view shard_iterator_type,
      std::optional<std::string_view> starting_sequence_number = std::nullopt,
      std::optional<absl::Time> timestamp = std::nullopt) {
    std::optional<ShardIteratorType> type;
    for (auto t : {ShardIteratorType::kTrimHorizon, ShardIteratorType::kLatest,
                   ShardIteratorType::kAtSequenceNumber, ShardIteratorType::kAfterSequenceNumber,
                   ShardIteratorType::kAtTimestamp}) {
      if (ShardIteratorTypeName(t) == shard_iterator_type) type = t;
    }
    if (!type) {
      return ValidationError(absl::StrCat(
          "1 validation error detected: Value '", detail::ToAbsl(shard_iterator_type),
          "' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value "
          "set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]"));
    }
    const bool wants_sequence = *type == ShardIteratorType::kAtSequenceNumber ||
                                *type == ShardIteratorType::kAfterSequenceNumber;
    if (wants_sequence != starting_sequence_number.has_value() &&
        *type != ShardIteratorType::kAtTimestamp) {
      return InvalidArgument(absl::StrCat(
          "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
          "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. "
          "Request specified ",
          detail::ToAbsl(ShardIteratorTypeName(*type)), " and ",
          starting_sequence_number ? "a" : "no", " StartingSequenceNumber."));
    }
    IteratorPosition position;
    position.type = *type;
    if (*type == ShardIteratorType::kAtTimestamp) {
      if (!timestamp) {
        return InvalidArgument(
            "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current "
            "request has no timestamp parameter.");
      }
      position.timestamp = *timestamp;
    }
    if (wants_sequence) {
      absl::StatusOr<SequenceNumber> s = SequenceNumber::Parse(*starting_sequence_number);
      if (!s.ok()) return s.status();
      position.sequence_number = *s;
    }
    return position;
  }
};

namespace detail {
inline uint64_t IteratorSecret() {
  static const uint64_t secret = [] {
    static int anchor;
    uint64_t mix[2] = {static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())),
                       static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&anchor))};
    return Xxh3_64(mix, sizeof(mix), 0x6b696e6c6574ull);
  }();
  return secret;
}
}  // namespace detail

class ShardIterator {
 public:
  // A default iterator is not authentic: GetRecords rejects it.
  ShardIterator() = default;

  uint32_t stream_tag() const { return stream_tag_; }
  uint32_t shard_index() const { return shard_index_; }
  // The log position the next GetRecords starts at.
  uint64_t position() const { return position_; }
  absl::Time issued_at() const { return absl::FromUnixMillis(issued_at_ms_); }

  // True if this iterator was issued by a kinlet stream of this process and
  // not altered since.
  bool IsAuthentic() const { return check_ != 0 && check_ == Seal(); }

  // The opaque text form (URL-safe base64 without padding, 43 characters).
  std::string ToString() const {
    char bytes[kWireSize];
    std::memcpy(bytes, &stream_tag_, 4);
    std::memcpy(bytes + 4, &shard_index_, 4);
    std::memcpy(bytes + 8, &position_, 8);
    std::memcpy(bytes + 16, &issued_at_ms_, 8);
    std::memcpy(bytes + 24, &check_, 8);
    return absl::WebSafeBase64Escape(absl::string_view(bytes, kWireSize));
  }

  // Parses the text form. InvalidArgumentException "Invalid ShardIterator." if
  // the text is malformed or the iterator is not authentic.
  static absl::StatusOr<ShardIterator> Parse(std::string_view text) {
    std::string bytes;
    ShardIterator it;
    if (text.empty() || text.size() > 512 ||
        !absl::WebSafeBase64Unescape(detail::ToAbsl(text), &bytes) || bytes.size() != kWireSize) {
      return InvalidArgument("Invalid ShardIterator.");
    }
    std::memcpy(&it.stream_tag_, bytes.data(), 4);
    std::memcpy(&it.shard_index_, bytes.data() + 4, 4);
    std::memcpy(&it.position_, bytes.data() + 8, 8);
    std::memcpy(&it.issued_at_ms_, bytes.data() + 16, 8);
    std::memcpy(&it.check_, bytes.data() + 24, 8);
    if (!it.IsAuthentic()) return InvalidArgument("Invalid ShardIterator.");
    return it;
  }

  // Issues a sealed iterator. Used by shards; exposed for tests of foreign
  // iterators and for custom readers.
  static ShardIterator Issue(uint32_t stream_tag, uint32_t shard_index, uint64_t position,
                             int64_t issued_at_ms) {
    ShardIterator it;
    it.stream_tag_ = stream_tag;
    it.shard_index_ = shard_index;
    it.position_ = position;
    it.issued_at_ms_ = issued_at_ms;
    it.check_ = it.Seal();
    return it;
  }

  friend bool operator==(const ShardIterator&, const ShardIterator&) = default;

 private:
  static constexpr size_t kWireSize = 32;
  uint64_t Seal() const {
    uint64_t fields[3] = {(uint64_t{stream_tag_} << 32) | shard_index_, position_,
                          static_cast<uint64_t>(issued_at_ms_)};
    uint64_t h = detail::Xxh3_64(fields, sizeof(fields), detail::IteratorSecret());
    return h == 0 ? 1 : h;
  }

  uint32_t stream_tag_ = 0;
  uint32_t shard_index_ = 0;
  uint64_t position_ = 0;
  int64_t issued_at_ms_ = 0;
  uint64_t check_ = 0;
};

}  // namespace kinlet
