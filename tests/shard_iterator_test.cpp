// Tests for kinlet/shard_iterator.hpp: starting positions and sealed iterators.
#include "kinlet/shard_iterator.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "kinlet/errors.hpp"
#include "kinlet/sequence_number.hpp"

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using kinlet::IteratorPosition;
using kinlet::SequenceNumber;
using kinlet::ShardIterator;
using kinlet::ShardIteratorType;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

constexpr std::string_view kWebSafeAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The character whose 6-bit value differs from `c`'s in the top bit: always a data
// bit, even in the last character of an unpadded encoding.
char FlipTopBit(char c) {
  const size_t v = kWebSafeAlphabet.find(c);
  REQUIRE(v != std::string_view::npos);
  return kWebSafeAlphabet[v ^ 0x20];
}

void CheckInvalidIterator(std::string_view text) {
  auto it = ShardIterator::Parse(text);
  REQUIRE_FALSE(it.ok());
  CHECK(kinlet::IsInvalidArgument(it.status()));
  CHECK(Msg(it.status()) == "Invalid ShardIterator.");
}

}  // namespace

TEST_CASE("IteratorPosition factories set the type and its argument", "[shard_iterator]") {
  const SequenceNumber s(9, 2, 40);
  const absl::Time t = absl::FromUnixMillis(1700000000123);

  const IteratorPosition trim = IteratorPosition::TrimHorizon();
  CHECK(trim.type == ShardIteratorType::kTrimHorizon);
  const IteratorPosition latest = IteratorPosition::Latest();
  CHECK(latest.type == ShardIteratorType::kLatest);
  const IteratorPosition at = IteratorPosition::AtSequenceNumber(s);
  CHECK(at.type == ShardIteratorType::kAtSequenceNumber);
  CHECK(at.sequence_number == s);
  const IteratorPosition after = IteratorPosition::AfterSequenceNumber(s);
  CHECK(after.type == ShardIteratorType::kAfterSequenceNumber);
  CHECK(after.sequence_number == s);
  const IteratorPosition at_time = IteratorPosition::AtTimestamp(t);
  CHECK(at_time.type == ShardIteratorType::kAtTimestamp);
  CHECK(at_time.timestamp == t);
}

TEST_CASE("ShardIteratorTypeName spells the Kinesis enum", "[shard_iterator]") {
  CHECK(kinlet::ShardIteratorTypeName(ShardIteratorType::kTrimHorizon) == "TRIM_HORIZON");
  CHECK(kinlet::ShardIteratorTypeName(ShardIteratorType::kLatest) == "LATEST");
  CHECK(kinlet::ShardIteratorTypeName(ShardIteratorType::kAtSequenceNumber) ==
        "AT_SEQUENCE_NUMBER");
  CHECK(kinlet::ShardIteratorTypeName(ShardIteratorType::kAfterSequenceNumber) ==
        "AFTER_SEQUENCE_NUMBER");
  CHECK(kinlet::ShardIteratorTypeName(ShardIteratorType::kAtTimestamp) == "AT_TIMESTAMP");
}

TEST_CASE("IteratorPosition::FromKinesis accepts each iterator type", "[shard_iterator]") {
  SECTION("TRIM_HORIZON") {
    auto p = IteratorPosition::FromKinesis("TRIM_HORIZON");
    REQUIRE(p.ok());
    CHECK(p->type == ShardIteratorType::kTrimHorizon);
  }
  SECTION("LATEST") {
    auto p = IteratorPosition::FromKinesis("LATEST");
    REQUIRE(p.ok());
    CHECK(p->type == ShardIteratorType::kLatest);
  }
  SECTION("AT_SEQUENCE_NUMBER") {
    const SequenceNumber s(3, 1, 99);
    const std::string text = s.ToString();
    auto p = IteratorPosition::FromKinesis("AT_SEQUENCE_NUMBER", text);
    REQUIRE(p.ok());
    CHECK(p->type == ShardIteratorType::kAtSequenceNumber);
    CHECK(p->sequence_number == s);
  }
  SECTION("AFTER_SEQUENCE_NUMBER") {
    auto p = IteratorPosition::FromKinesis("AFTER_SEQUENCE_NUMBER", "12345");
    REQUIRE(p.ok());
    CHECK(p->type == ShardIteratorType::kAfterSequenceNumber);
    CHECK(p->sequence_number == SequenceNumber(0, 0, 12345));
  }
  SECTION("AT_SEQUENCE_NUMBER with \"0\"") {
    auto p = IteratorPosition::FromKinesis("AT_SEQUENCE_NUMBER", "0");
    REQUIRE(p.ok());
    CHECK(p->sequence_number == SequenceNumber());
  }
  SECTION("AT_TIMESTAMP") {
    const absl::Time t = absl::FromUnixMillis(1545084650987);
    auto p = IteratorPosition::FromKinesis("AT_TIMESTAMP", std::nullopt, t);
    REQUIRE(p.ok());
    CHECK(p->type == ShardIteratorType::kAtTimestamp);
    CHECK(p->timestamp == t);
  }
}

TEST_CASE("IteratorPosition::FromKinesis rejects an unknown type as ValidationException",
          "[shard_iterator]") {
  for (std::string_view type : {std::string_view("trim_horizon"), std::string_view(""),
                                std::string_view("EARLIEST"), std::string_view("LATEST ")}) {
    INFO("'" << type << "'");
    auto p = IteratorPosition::FromKinesis(type);
    REQUIRE_FALSE(p.ok());
    CHECK(kinlet::IsValidationError(p.status()));
    CHECK_THAT(Msg(p.status()), Contains("shardIteratorType"));
  }
}

TEST_CASE("IteratorPosition::FromKinesis rejects wrong combinations with AWS's message",
          "[shard_iterator]") {
  SECTION("sequence types without a StartingSequenceNumber") {
    for (std::string_view type :
         {std::string_view("AT_SEQUENCE_NUMBER"), std::string_view("AFTER_SEQUENCE_NUMBER")}) {
      INFO(type);
      auto p = IteratorPosition::FromKinesis(type);
      REQUIRE_FALSE(p.ok());
      CHECK(kinlet::IsInvalidArgument(p.status()));
      CHECK_THAT(Msg(p.status()),
                 StartsWith("Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER "
                            "and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no "
                            "StartingSequenceNumber."));
    }
  }
  SECTION("TRIM_HORIZON or LATEST with a StartingSequenceNumber") {
    for (std::string_view type : {std::string_view("TRIM_HORIZON"), std::string_view("LATEST")}) {
      INFO(type);
      auto p = IteratorPosition::FromKinesis(type, "1");
      REQUIRE_FALSE(p.ok());
      CHECK(kinlet::IsInvalidArgument(p.status()));
      CHECK_THAT(Msg(p.status()), StartsWith("Must either specify"));
    }
  }
  SECTION("AT_TIMESTAMP without a timestamp") {
    auto p = IteratorPosition::FromKinesis("AT_TIMESTAMP");
    REQUIRE_FALSE(p.ok());
    CHECK(kinlet::IsInvalidArgument(p.status()));
    CHECK_THAT(Msg(p.status()), StartsWith("Must specify timestampInMillis"));
  }
}

TEST_CASE("IteratorPosition::FromKinesis passes on the sequence number's parse errors",
          "[shard_iterator]") {
  SECTION("malformed text is a ValidationException") {
    for (std::string_view text :
         {std::string_view("abc"), std::string_view("01"), std::string_view("")}) {
      INFO("'" << text << "'");
      auto p = IteratorPosition::FromKinesis("AT_SEQUENCE_NUMBER", text);
      REQUIRE_FALSE(p.ok());
      CHECK(kinlet::IsValidationError(p.status()));
    }
  }
  SECTION("a well-formed number over 2^192-1 is InvalidArgument") {
    auto p = IteratorPosition::FromKinesis(
        "AFTER_SEQUENCE_NUMBER", "6277101735386680763835789423207666416102355444464034512896");
    REQUIRE_FALSE(p.ok());
    CHECK(kinlet::IsInvalidArgument(p.status()));
  }
}

TEST_CASE("ShardIterator::Issue seals an authentic iterator", "[shard_iterator]") {
  const ShardIterator it = ShardIterator::Issue(0xCAFEu, 3, 1234, 1700000000456);
  CHECK(it.IsAuthentic());
  CHECK(it.stream_tag() == 0xCAFEu);
  CHECK(it.shard_index() == 3u);
  CHECK(it.position() == 1234u);
  CHECK(it.issued_at() == absl::FromUnixMillis(1700000000456));

  SECTION("iterators differing in any field differ") {
    CHECK_FALSE(it == ShardIterator::Issue(0xCAFEu, 3, 1235, 1700000000456));
    CHECK_FALSE(it == ShardIterator::Issue(0xCAFEu, 4, 1234, 1700000000456));
    CHECK_FALSE(it == ShardIterator::Issue(0xCAFFu, 3, 1234, 1700000000456));
    CHECK_FALSE(it == ShardIterator::Issue(0xCAFEu, 3, 1234, 1700000000457));
    CHECK(it == ShardIterator::Issue(0xCAFEu, 3, 1234, 1700000000456));
  }
  SECTION("extreme field values are sealed too") {
    const ShardIterator max = ShardIterator::Issue(UINT32_MAX, UINT32_MAX, UINT64_MAX, 0);
    CHECK(max.IsAuthentic());
    const ShardIterator zero = ShardIterator::Issue(0, 0, 0, 0);
    CHECK(zero.IsAuthentic());
  }
}

TEST_CASE("A default-constructed ShardIterator is not authentic", "[shard_iterator]") {
  const ShardIterator it;
  CHECK_FALSE(it.IsAuthentic());
  SECTION("and its text form does not parse") { CheckInvalidIterator(it.ToString()); }
}

TEST_CASE("ShardIterator text form round-trips", "[shard_iterator]") {
  for (const ShardIterator& it :
       {ShardIterator::Issue(0xCAFEu, 3, 1234, 1700000000456), ShardIterator::Issue(0, 0, 0, 0),
        ShardIterator::Issue(UINT32_MAX, UINT32_MAX, UINT64_MAX, -1)}) {
    const std::string text = it.ToString();
    INFO(text);
    CHECK_FALSE(text.empty());
    CHECK(text.size() <= 512);  // Kinesis's iterator length limit
    CHECK(text.find_first_not_of(kWebSafeAlphabet) == std::string::npos);
    auto back = ShardIterator::Parse(text);
    REQUIRE(back.ok());
    CHECK(*back == it);
    CHECK(back->IsAuthentic());
    CHECK(back->stream_tag() == it.stream_tag());
    CHECK(back->shard_index() == it.shard_index());
    CHECK(back->position() == it.position());
    CHECK(back->issued_at() == it.issued_at());
    CHECK(back->ToString() == text);
  }
}

TEST_CASE("ShardIterator::Parse rejects garbage as \"Invalid ShardIterator.\"",
          "[shard_iterator]") {
  const std::string good = ShardIterator::Issue(0xCAFEu, 3, 1234, 1700000000456).ToString();
  SECTION("empty") { CheckInvalidIterator(""); }
  SECTION("not base64") { CheckInvalidIterator("not an iterator!"); }
  SECTION("base64 of the wrong length") {
    CheckInvalidIterator("AAAA");
    CheckInvalidIterator(good.substr(0, good.size() - 4));
    CheckInvalidIterator(good + "AAAA");
  }
  SECTION("over 512 characters") { CheckInvalidIterator(std::string(513, 'A')); }
  SECTION("all zero bytes (an unsealed iterator)") {
    CheckInvalidIterator(ShardIterator().ToString());
  }
}

TEST_CASE("ShardIterator::Parse rejects an iterator altered in any one character",
          "[shard_iterator]") {
  const ShardIterator it = ShardIterator::Issue(0x1234u, 5, 987654321, 1700000000000);
  const std::string good = it.ToString();
  REQUIRE(ShardIterator::Parse(good).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    std::string altered = good;
    altered[i] = FlipTopBit(altered[i]);
    INFO("character " << i << ": " << altered);
    REQUIRE(altered != good);
    CheckInvalidIterator(altered);
  }
}
