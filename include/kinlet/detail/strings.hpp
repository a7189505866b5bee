// kinlet/detail/strings.hpp: string_view conversions and small text helpers.
// Debian's Abseil 20220623 keeps absl::string_view apart from std::string_view;
// every conversion between the two lives here.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace kinlet::detail {

inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }

// Validates UTF-8 (no overlongs, no surrogates, at most U+10FFFF) and counts code
// points. Returns -1 if `s` is not valid UTF-8. ASCII runs take the fast path.
// True if every byte is below 0x80 (so `s` is valid UTF-8 of s.size()
// characters). Eight bytes at a time: the partition-key check on every put.
inline bool IsAscii(std::string_view s) {
  uint64_t high = 0;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, s.data() + i, 8);
    high |= word;
  }
  const size_t rest = s.size() - i;
  if (rest >= 4) {  // the last 4..7 bytes as two overlapping words
    uint32_t a;
    uint32_t b;
    std::memcpy(&a, s.data() + i, 4);
    std::memcpy(&b, s.data() + s.size() - 4, 4);
    high |= a | b;
  } else {
    for (; i < s.size(); ++i) high |= static_cast<unsigned char>(s[i]);
  }
  return (high & 0x8080808080808080ull) == 0;
}

inline int64_t Utf8CodePoints(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  int64_t count = 0;
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      ++count;
      continue;
    }
    int extra;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return -1;
    }
    if (end - p <= extra) return -1;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return -1;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    p += extra + 1;
    ++count;
  }
  return count;
}

// True if `s` is a non-empty run of ASCII decimal digits.
// Kinesis's name pattern for streams and consumers: [a-zA-Z0-9_.-]{1,128}.
inline bool IsResourceName(std::string_view s) {
  bool ok = !s.empty() && s.size() <= 128;
  for (char c : s) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-');
  }
  return ok;
}

inline bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace kinlet::detail
