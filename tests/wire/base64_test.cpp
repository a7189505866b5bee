#include "kinlet/wire/base64.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "kinlet/wire/errors.hpp"

using kinlet::wire::Base64DecodeStrict;
using kinlet::wire::Base64Encode;

namespace {
std::string Encode(std::string_view s) {
  std::string out;
  Base64Encode(s, &out);
  return out;
}
}  // namespace

TEST_CASE("Base64 round-trips every length and byte value", "[wire][base64]") {
  std::string bytes;
  for (int n = 0; n < 300; ++n) {
    std::string encoded = Encode(bytes);
    CHECK(encoded.size() % 4 == 0);
    std::string decoded;
    REQUIRE(Base64DecodeStrict(encoded, &decoded).ok());
    CHECK(decoded == bytes);
    bytes.push_back(static_cast<char>(n * 37 + 11));
  }
  CHECK(Encode("hi") == "aGk=");
  CHECK(Encode("hello") == "aGVsbG8=");
}

TEST_CASE("Base64 decoding is as strict as AWS, with its messages", "[wire][base64]") {
  auto error = [](std::string_view text) {
    std::string out = "keep";
    absl::Status s = Base64DecodeStrict(text, &out);
    CHECK(out == "keep");  // unchanged on error
    CHECK(kinlet::wire::ErrorTypeOf(s) == "SerializationException");
    return std::string(s.message());
  };
  CHECK(error("aGk") == "Base64 encoded length is expected a multiple of 4 bytes but found: 3");
  CHECK(error("aGk=a") == "Base64 encoded length is expected a multiple of 4 bytes but found: 5");
  CHECK(error("aG k") == "Invalid Base64 character: ' '");
  CHECK(error("aG-_") == "Invalid Base64 character: '-'");
  CHECK(error("aGk=\n\n\n\n").rfind("Invalid Base64 character", 0) == 0);
  CHECK(error("aGl=") == "Invalid last non-pad Base64 character dectected");
  CHECK(error("aR==") == "Invalid last non-pad Base64 character dectected");
  CHECK(error("a===") == "Invalid Base64 character: '='");
  std::string out;
  CHECK(Base64DecodeStrict("", &out).ok());
  CHECK(out.empty());
}
