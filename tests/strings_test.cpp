#include "kinlet/detail/strings.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace kinlet::detail {
namespace {

// IsAscii reads words (and two overlapping 4-byte words for a 4..7 byte
// tail): a byte of 0x80 or more anywhere, at any length, must be seen.
TEST_CASE("IsAscii sees a non-ASCII byte at every position of every short length", "[strings]") {
  for (size_t n = 0; n <= 40; ++n) {
    const std::string ascii(n, 'k');
    REQUIRE(IsAscii(ascii));
    for (size_t at = 0; at < n; ++at) {
      for (unsigned char bad : {0x80, 0xC3, 0xFF}) {
        std::string s = ascii;
        s[at] = static_cast<char>(bad);
        INFO("length " << n << ", byte " << at);
        REQUIRE_FALSE(IsAscii(s));
      }
    }
  }
  // Reading only within the view: a prefix of a longer non-ASCII buffer.
  const std::string buffer = "abcdefg\xC3\xA9";
  for (size_t n = 0; n <= 7; ++n) REQUIRE(IsAscii(std::string_view(buffer).substr(0, n)));
}

TEST_CASE("Utf8CodePoints counts characters and refuses invalid UTF-8", "[strings]") {
  CHECK(Utf8CodePoints("") == 0);
  CHECK(Utf8CodePoints("abc") == 3);
  CHECK(Utf8CodePoints("\xC3\xA9t\xC3\xA9") == 3);  // été
  CHECK(Utf8CodePoints("\xF0\x9F\x98\x80") == 1);   // U+1F600
  CHECK(Utf8CodePoints("\xC3") == -1);              // truncated
  CHECK(Utf8CodePoints("\xC0\xAF") == -1);          // overlong
  CHECK(Utf8CodePoints("\xED\xA0\x80") == -1);      // surrogate
  CHECK(Utf8CodePoints("\xF4\x90\x80\x80") == -1);  // above U+10FFFF
}

}  // namespace
}  // namespace kinlet::detail
