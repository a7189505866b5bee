// Tests for kinlet/sequence_number.hpp: layout, ordering and the decimal text form.
#include "kinlet/sequence_number.hpp"

#include <catch2/catch.hpp>
#include <compare>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/numeric/int128.h"
#include "kinlet/errors.hpp"

namespace {

using kinlet::SequenceNumber;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

constexpr uint32_t kTag = 0xABCD1234u;
constexpr uint64_t kMaxPosition = std::numeric_limits<uint64_t>::max();

}  // namespace

TEST_CASE("SequenceNumber packs stream tag, shard index and position", "[sequence_number]") {
  SECTION("accessors read back what was packed") {
    constexpr SequenceNumber s(kTag, 7, 42);
    static_assert(s.stream_tag() == kTag);
    static_assert(s.shard_index() == 7);
    static_assert(s.position() == 42);
    CHECK(s.stream_tag() == kTag);
    CHECK(s.shard_index() == 7u);
    CHECK(s.position() == 42u);
  }
  SECTION("tag in bits 127..96, shard index in 95..64, position in 63..0") {
    const SequenceNumber s(1, 2, 3);
    CHECK(s.value() == absl::MakeUint128((uint64_t{1} << 32) | 2u, 3));
  }
  SECTION("fields do not bleed into each other at their extremes") {
    const SequenceNumber all(UINT32_MAX, UINT32_MAX, kMaxPosition);
    CHECK(all.value() == absl::Uint128Max());
    const SequenceNumber tag_only(UINT32_MAX, 0, 0);
    CHECK(tag_only.shard_index() == 0u);
    CHECK(tag_only.position() == 0u);
    const SequenceNumber shard_only(0, UINT32_MAX, 0);
    CHECK(shard_only.stream_tag() == 0u);
    CHECK(shard_only.position() == 0u);
    const SequenceNumber position_only(0, 0, kMaxPosition);
    CHECK(position_only.stream_tag() == 0u);
    CHECK(position_only.shard_index() == 0u);
  }
  SECTION("default is zero") {
    const SequenceNumber s;
    CHECK(s.value() == absl::uint128(0));
    CHECK(s.stream_tag() == 0u);
    CHECK(s.shard_index() == 0u);
    CHECK(s.position() == 0u);
  }
  SECTION("FromValue keeps the value and splits it into fields") {
    const SequenceNumber s = SequenceNumber::FromValue(absl::MakeUint128(0x0000000500000009u, 77));
    CHECK(s.stream_tag() == 5u);
    CHECK(s.shard_index() == 9u);
    CHECK(s.position() == 77u);
    CHECK(s == SequenceNumber(5, 9, 77));
  }
}

TEST_CASE("SequenceNumber ordering follows shard lineage and log position", "[sequence_number]") {
  SECTION("later positions in a shard are greater") {
    CHECK(SequenceNumber(kTag, 0, 5) < SequenceNumber(kTag, 0, 6));
    CHECK(SequenceNumber(kTag, 3, 0) < SequenceNumber(kTag, 3, 1));
    CHECK(SequenceNumber(kTag, 3, kMaxPosition - 1) < SequenceNumber(kTag, 3, kMaxPosition));
    CHECK((SequenceNumber(kTag, 0, 6) <=> SequenceNumber(kTag, 0, 5)) ==
          std::strong_ordering::greater);
  }
  SECTION("any number of a child shard exceeds every number of its parent") {
    const SequenceNumber parent_last(kTag, 0, kMaxPosition);
    const SequenceNumber child_first(kTag, 1, 0);
    CHECK(child_first > parent_last);
    CHECK(SequenceNumber(kTag, 2, 0) > SequenceNumber(kTag, 1, kMaxPosition));
  }
  SECTION("equality and strong ordering") {
    CHECK(SequenceNumber(kTag, 1, 2) == SequenceNumber(kTag, 1, 2));
    CHECK(SequenceNumber(kTag, 1, 2) != SequenceNumber(kTag, 1, 3));
    CHECK(SequenceNumber(kTag, 1, 2) != SequenceNumber(kTag + 1, 1, 2));
    CHECK((SequenceNumber(kTag, 1, 2) <=> SequenceNumber(kTag, 1, 2)) ==
          std::strong_ordering::equal);
    CHECK((SequenceNumber(kTag, 1, 2) <=> SequenceNumber(kTag, 1, 3)) ==
          std::strong_ordering::less);
  }
  SECTION("ordering agrees with the numeric value of the text form") {
    const SequenceNumber small(0, 0, 9);
    const SequenceNumber big(0, 0, 10);
    CHECK(small < big);
    CHECK(small.ToString().size() < big.ToString().size());
  }
}

TEST_CASE("SequenceNumber is hashable with absl", "[sequence_number]") {
  absl::flat_hash_set<SequenceNumber> set;
  set.insert(SequenceNumber(kTag, 0, 1));
  set.insert(SequenceNumber(kTag, 0, 1));
  set.insert(SequenceNumber(kTag, 1, 1));
  CHECK(set.size() == 2);
  CHECK(set.contains(SequenceNumber(kTag, 1, 1)));
  CHECK_FALSE(set.contains(SequenceNumber(kTag, 2, 1)));
}

TEST_CASE("SequenceNumber text form is decimal and round-trips", "[sequence_number]") {
  SECTION("known values") {
    CHECK(SequenceNumber().ToString() == "0");
    CHECK(SequenceNumber(0, 0, 12345).ToString() == "12345");
    CHECK(SequenceNumber(0, 1, 0).ToString() == "18446744073709551616");
    CHECK(SequenceNumber(UINT32_MAX, UINT32_MAX, kMaxPosition).ToString() ==
          "340282366920938463463374607431768211455");
  }
  SECTION("\"0\" parses to the zero number") {
    auto s = SequenceNumber::Parse("0");
    REQUIRE(s.ok());
    CHECK(*s == SequenceNumber());
  }
  SECTION("the maximum parses to all-ones fields") {
    auto s = SequenceNumber::Parse("340282366920938463463374607431768211455");
    REQUIRE(s.ok());
    CHECK(s->stream_tag() == UINT32_MAX);
    CHECK(s->shard_index() == UINT32_MAX);
    CHECK(s->position() == kMaxPosition);
  }
  SECTION("ToString then Parse gives the same number") {
    for (const SequenceNumber& s :
         {SequenceNumber(), SequenceNumber(0, 0, 1), SequenceNumber(kTag, 0, 0),
          SequenceNumber(kTag, 7, 42), SequenceNumber(kTag, UINT32_MAX, kMaxPosition),
          SequenceNumber(1, 0, kMaxPosition), SequenceNumber(UINT32_MAX, 0, 0)}) {
      const std::string text = s.ToString();
      INFO(text);
      auto back = SequenceNumber::Parse(text);
      REQUIRE(back.ok());
      CHECK(*back == s);
      CHECK(back->stream_tag() == s.stream_tag());
      CHECK(back->shard_index() == s.shard_index());
      CHECK(back->position() == s.position());
    }
  }
}

TEST_CASE("SequenceNumber::Parse rejects malformed text as ValidationException",
          "[sequence_number]") {
  const std::string digits130 = "1" + std::string(129, '0');
  REQUIRE(digits130.size() == 130);
  for (const std::string& text :
       {std::string(""), std::string("01"), std::string("00"), std::string("abc"),
        std::string("12a"), std::string("-1"), std::string(" 1"), std::string("1.5"), digits130}) {
    INFO("'" << text << "'");
    auto s = SequenceNumber::Parse(text);
    REQUIRE_FALSE(s.ok());
    CHECK(kinlet::IsValidationError(s.status()));
    CHECK_THAT(Msg(s.status()), Catch::Matchers::Contains("sequenceNumber"));
  }
}

TEST_CASE("SequenceNumber::Parse rejects well-formed values over 2^192-1 as InvalidArgument",
          "[sequence_number]") {
  const std::string digits59 = "1" + std::string(58, '0');
  const std::string digits129 = "1" + std::string(128, '0');
  for (const std::string& text :
       {std::string("6277101735386680763835789423207666416102355444464034512896"), digits59,
        digits129}) {
    INFO(text);
    auto s = SequenceNumber::Parse(text);
    REQUIRE_FALSE(s.ok());
    CHECK(kinlet::IsInvalidArgument(s.status()));
    CHECK_FALSE(kinlet::IsValidationError(s.status()));
    CHECK_THAT(Msg(s.status()), Catch::Matchers::Contains(text));
  }
}

TEST_CASE("SequenceNumber holds Kinesis's 56-digit numbers exactly", "[sequence_number]") {
  // Amazon Kinesis's documentation example, and two neighbours.
  const std::string aws = "49590338271490256608559692538361571095921575989136588898";
  auto s = SequenceNumber::Parse(aws);
  REQUIRE(s.ok());
  CHECK(s->ToString() == aws);
  CHECK(s->high_bits() != 0);
  SECTION("a wide number is no kinlet stream's: tag and shard read as 0") {
    CHECK(s->stream_tag() == 0u);
    CHECK(s->shard_index() == 0u);
  }
  SECTION("ordering is numeric across all 192 bits") {
    auto next = SequenceNumber::Parse("49590338271490256608559692538361571095921575989136588899");
    auto later = SequenceNumber::Parse("49590338271490256608559692538361571095921575989136588900");
    auto other = SequenceNumber::Parse("49590338271490256608559692538361571095921575989136588898");
    REQUIRE((next.ok() && later.ok() && other.ok()));
    CHECK(*s < *next);
    CHECK(*next < *later);
    CHECK(*s == *other);
    CHECK(SequenceNumber(UINT32_MAX, UINT32_MAX, kMaxPosition) < *s);
    absl::flat_hash_set<SequenceNumber> set = {*s, *next};
    CHECK(set.contains(*other));
    CHECK_FALSE(set.contains(*later));
  }
  SECTION("the extremes of 192 bits round-trip") {
    for (const std::string& text :
         {std::string("340282366920938463463374607431768211456"),                     // 2^128
          std::string("6277101735386680763835789423207666416102355444464034512895"),  // 2^192-1
          std::string("10000000000000000000000000000000000000000"),
          std::string("18446744073709551616000000000000000000001")}) {
      INFO(text);
      auto v = SequenceNumber::Parse(text);
      REQUIRE(v.ok());
      CHECK(v->ToString() == text);
    }
  }
}
