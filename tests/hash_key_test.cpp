// Tests for kinlet/hash_key.hpp: ExplicitHashKey parsing and the initial shard ranges.
#include "kinlet/hash_key.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/numeric/int128.h"
#include "kinlet/errors.hpp"

namespace {

using Catch::Matchers::Contains;
using kinlet::HashKey;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

constexpr char kMaxDecimal[] = "340282366920938463463374607431768211455";  // 2^128 - 1
constexpr char kTwoTo128[] = "340282366920938463463374607431768211456";    // 2^128

// floor(2^128 / N), worked out independently of the library (python: 2**128 // N).
HashKey Step(int n) {
  switch (n) {
    case 2:
      return absl::MakeUint128(uint64_t{1} << 63, 0);  // 2^127
    case 3:
      return absl::MakeUint128(0x5555555555555555u, 0x5555555555555555u);
    case 4:
      return absl::MakeUint128(uint64_t{1} << 62, 0);  // 2^126
    case 7:
      return absl::MakeUint128(0x2492492492492492u, 0x4924924924924924u);
  }
  FAIL("no step for N=" << n);
  return 0;
}

}  // namespace

TEST_CASE("ParseHashKey accepts the whole 128-bit range", "[hash_key]") {
  SECTION("zero") {
    auto k = kinlet::ParseHashKey("0");
    REQUIRE(k.ok());
    CHECK(*k == HashKey(0));
  }
  SECTION("the maximum, 2^128-1") {
    auto k = kinlet::ParseHashKey(kMaxDecimal);
    REQUIRE(k.ok());
    CHECK(*k == kinlet::kMaxHashKey);
    CHECK(*k == absl::Uint128Max());
  }
  SECTION("values around 2^64") {
    auto k = kinlet::ParseHashKey("18446744073709551616");
    REQUIRE(k.ok());
    CHECK(*k == absl::MakeUint128(1, 0));
    auto below = kinlet::ParseHashKey("18446744073709551615");
    REQUIRE(below.ok());
    CHECK(*below == absl::MakeUint128(0, ~uint64_t{0}));
  }
  SECTION("a single digit other than zero") {
    auto k = kinlet::ParseHashKey("7");
    REQUIRE(k.ok());
    CHECK(*k == HashKey(7));
  }
}

TEST_CASE("ParseHashKey rejects a well-formed value over 2^128-1 with AWS's message",
          "[hash_key]") {
  for (const char* text : {kTwoTo128, "999999999999999999999999999999999999999"}) {
    INFO(text);
    auto k = kinlet::ParseHashKey(text);
    REQUIRE_FALSE(k.ok());
    CHECK(kinlet::IsInvalidArgument(k.status()));
    CHECK(k.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(Msg(k.status()),
               Contains("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: "
                        "[0, 2^128-1]. Specified value was ") &&
                   Contains(text));
  }
}

// Kinesis's pattern for a hash key: 0|([1-9]\\d{0,38}).
TEST_CASE("ParseHashKey rejects text outside the decimal pattern as a ValidationException",
          "[hash_key]") {
  const std::string forty_digits = "1" + std::string(39, '0');
  REQUIRE(forty_digits.size() == 40);
  for (const std::string& text :
       {std::string(""), std::string("01"), std::string("00"), std::string("0123"),
        std::string("abc"), std::string("12a"), std::string("-1"), std::string("+1"),
        std::string(" 1"), std::string("1 "), std::string("1e5"), std::string("1.0"),
        forty_digits}) {
    INFO("'" << text << "'");
    auto k = kinlet::ParseHashKey(text);
    REQUIRE_FALSE(k.ok());
    CHECK(kinlet::IsValidationError(k.status()));
    CHECK_FALSE(kinlet::IsInvalidArgument(k.status()));
    CHECK_THAT(Msg(k.status()), Contains("explicitHashKey"));
  }
}

TEST_CASE("HashKeyToString prints decimal and round-trips through ParseHashKey", "[hash_key]") {
  CHECK(kinlet::HashKeyToString(0) == "0");
  CHECK(kinlet::HashKeyToString(10) == "10");
  CHECK(kinlet::HashKeyToString(kinlet::kMaxHashKey) == kMaxDecimal);
  CHECK(kinlet::HashKeyToString(absl::MakeUint128(1, 0)) == "18446744073709551616");
  CHECK(kinlet::HashKeyToString(Step(3)) == "113427455640312821154458202477256070485");
  CHECK(kinlet::HashKeyToString(Step(7)) == "48611766702991209066196372490252601636");
  for (HashKey k : {HashKey(0), HashKey(1), HashKey(9), HashKey(10), HashKey(~uint64_t{0}),
                    absl::MakeUint128(1, 0), absl::MakeUint128(0x0123456789abcdefu, 42), Step(3),
                    Step(7), kinlet::kMaxHashKey - 1, kinlet::kMaxHashKey}) {
    const std::string text = kinlet::HashKeyToString(k);
    INFO(text);
    auto back = kinlet::ParseHashKey(text);
    REQUIRE(back.ok());
    CHECK(*back == k);
  }
}

TEST_CASE("InitialHashKeyRanges tiles the key space as Kinesis does", "[hash_key]") {
  SECTION("one shard covers everything") {
    const std::vector<kinlet::HashKeyRange> r = kinlet::InitialHashKeyRanges(1);
    REQUIRE(r.size() == 1);
    CHECK(r[0].starting_hash_key == HashKey(0));
    CHECK(r[0].ending_hash_key == kinlet::kMaxHashKey);
    CHECK(kinlet::HashKeyToString(r[0].ending_hash_key) == kMaxDecimal);
  }
  for (int n : {2, 3, 4, 7}) {
    DYNAMIC_SECTION(n << " shards") {
      const std::vector<kinlet::HashKeyRange> r = kinlet::InitialHashKeyRanges(n);
      REQUIRE(r.size() == static_cast<size_t>(n));
      const HashKey step = Step(n);
      for (int i = 0; i < n; ++i) {
        INFO("shard " << i);
        CHECK(r[i].starting_hash_key == step * static_cast<uint64_t>(i));
        CHECK(r[i].starting_hash_key <= r[i].ending_hash_key);
        if (i > 0) CHECK(r[i].starting_hash_key == r[i - 1].ending_hash_key + 1);
        if (i + 1 < n) CHECK(r[i].ending_hash_key == step * static_cast<uint64_t>(i + 1) - 1);
      }
      CHECK(r.front().starting_hash_key == HashKey(0));
      CHECK(r.back().ending_hash_key == kinlet::kMaxHashKey);
    }
  }
  SECTION("decimal boundaries match Kinesis's for N=3 and N=7") {
    const auto r3 = kinlet::InitialHashKeyRanges(3);
    CHECK(kinlet::HashKeyToString(r3[1].starting_hash_key) ==
          "113427455640312821154458202477256070485");
    CHECK(kinlet::HashKeyToString(r3[2].starting_hash_key) ==
          "226854911280625642308916404954512140970");
    CHECK(kinlet::HashKeyToString(r3[0].ending_hash_key) ==
          "113427455640312821154458202477256070484");
    const auto r7 = kinlet::InitialHashKeyRanges(7);
    CHECK(kinlet::HashKeyToString(r7[1].starting_hash_key) ==
          "48611766702991209066196372490252601636");
    CHECK(kinlet::HashKeyToString(r7[6].starting_hash_key) ==
          "291670600217947254397178234941515609816");
  }
  SECTION("power-of-two counts split exactly at 2^127 and 2^126 multiples") {
    const auto r2 = kinlet::InitialHashKeyRanges(2);
    CHECK(kinlet::HashKeyToString(r2[1].starting_hash_key) ==
          "170141183460469231731687303715884105728");
    const auto r4 = kinlet::InitialHashKeyRanges(4);
    CHECK(kinlet::HashKeyToString(r4[3].starting_hash_key) ==
          "255211775190703847597530955573826158592");
  }
}

TEST_CASE("HashKeyRange::Contains is inclusive at both ends", "[hash_key]") {
  SECTION("an interior range") {
    const kinlet::HashKeyRange r{10, 20};
    CHECK_FALSE(r.Contains(9));
    CHECK(r.Contains(10));
    CHECK(r.Contains(15));
    CHECK(r.Contains(20));
    CHECK_FALSE(r.Contains(21));
  }
  SECTION("the default range is the whole space") {
    const kinlet::HashKeyRange r;
    CHECK(r.Contains(0));
    CHECK(r.Contains(kinlet::kMaxHashKey));
  }
  SECTION("a single-key range") {
    const kinlet::HashKeyRange r{kinlet::kMaxHashKey, kinlet::kMaxHashKey};
    CHECK(r.Contains(kinlet::kMaxHashKey));
    CHECK_FALSE(r.Contains(kinlet::kMaxHashKey - 1));
  }
  SECTION("adjacent initial ranges share no key") {
    const auto r = kinlet::InitialHashKeyRanges(3);
    const HashKey boundary = r[1].starting_hash_key;
    CHECK(r[0].Contains(boundary - 1));
    CHECK_FALSE(r[0].Contains(boundary));
    CHECK(r[1].Contains(boundary));
    CHECK_FALSE(r[1].Contains(boundary - 1));
  }
  SECTION("equality compares both ends") {
    CHECK(kinlet::HashKeyRange{1, 2} == kinlet::HashKeyRange{1, 2});
    CHECK_FALSE(kinlet::HashKeyRange{1, 2} == kinlet::HashKeyRange{1, 3});
    CHECK_FALSE(kinlet::HashKeyRange{0, 2} == kinlet::HashKeyRange{1, 2});
  }
}
