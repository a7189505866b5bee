// Strict base64 (see kinlet/wire/base64.hpp).
#include "kinlet/wire/base64.hpp"

#include <array>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "kinlet/wire/errors.hpp"

namespace kinlet::wire {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63 for alphabet characters, -1 otherwise.
constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (size_t i = 0; i < t.size(); ++i) t[i] = -1;
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  }
  return t;
}
constexpr std::array<int8_t, 256> kDecode = MakeDecodeTable();

absl::Status BadCharacter(char c) {
  return SerializationError(absl::StrCat("Invalid Base64 character: '", std::string(1, c), "'"));
}

}  // namespace

absl::Status Base64DecodeStrict(std::string_view text, std::string* out) {
  if (text.size() % 4 != 0) {
    return SerializationError(absl::StrCat(
        "Base64 encoded length is expected a multiple of 4 bytes but found: ", text.size()));
  }
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = (text[text.size() - 2] == '=') ? 2 : 1;
  const size_t body = text.size() - pad;  // characters that carry bits
  for (size_t i = 0; i < body; ++i) {
    if (kDecode[static_cast<unsigned char>(text[i])] < 0) return BadCharacter(text[i]);
  }
  // The unused low bits of the last data character must be zero (canonical form).
  if (pad > 0) {
    const int last = kDecode[static_cast<unsigned char>(text[body - 1])];
    const int unused_mask = pad == 1 ? 0x3 : 0xF;
    if ((last & unused_mask) != 0) {
      return SerializationError("Invalid last non-pad Base64 character dectected");
    }
  }
  const size_t old_size = out->size();
  out->resize(old_size + body * 3 / 4);
  char* dst = out->data() + old_size;
  size_t i = 0;
  for (; i + 4 <= body; i += 4) {
    const uint32_t v = (uint32_t(kDecode[uint8_t(text[i])]) << 18) |
                       (uint32_t(kDecode[uint8_t(text[i + 1])]) << 12) |
                       (uint32_t(kDecode[uint8_t(text[i + 2])]) << 6) |
                       uint32_t(kDecode[uint8_t(text[i + 3])]);
    *dst++ = static_cast<char>(v >> 16);
    *dst++ = static_cast<char>(v >> 8);
    *dst++ = static_cast<char>(v);
  }
  if (pad == 1) {  // 3 characters: 2 bytes
    const uint32_t v = (uint32_t(kDecode[uint8_t(text[i])]) << 18) |
                       (uint32_t(kDecode[uint8_t(text[i + 1])]) << 12) |
                       (uint32_t(kDecode[uint8_t(text[i + 2])]) << 6);
    *dst++ = static_cast<char>(v >> 16);
    *dst++ = static_cast<char>(v >> 8);
  } else if (pad == 2) {  // 2 characters: 1 byte
    const uint32_t v = (uint32_t(kDecode[uint8_t(text[i])]) << 18) |
                       (uint32_t(kDecode[uint8_t(text[i + 1])]) << 12);
    *dst++ = static_cast<char>(v >> 16);
  }
  return absl::OkStatus();
}

void Base64Encode(std::string_view bytes, std::string* out) {
  const size_t old_size = out->size();
  out->resize(old_size + (bytes.size() + 2) / 3 * 4);
  char* dst = out->data() + old_size;
  size_t i = 0;
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(src[i]) << 16) | (uint32_t(src[i + 1]) << 8) | src[i + 2];
    *dst++ = kAlphabet[(v >> 18) & 63];
    *dst++ = kAlphabet[(v >> 12) & 63];
    *dst++ = kAlphabet[(v >> 6) & 63];
    *dst++ = kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = uint32_t(src[i]) << 16;
    *dst++ = kAlphabet[(v >> 18) & 63];
    *dst++ = kAlphabet[(v >> 12) & 63];
    *dst++ = '=';
    *dst++ = '=';
  } else if (rest == 2) {
    const uint32_t v = (uint32_t(src[i]) << 16) | (uint32_t(src[i + 1]) << 8);
    *dst++ = kAlphabet[(v >> 18) & 63];
    *dst++ = kAlphabet[(v >> 12) & 63];
    *dst++ = kAlphabet[(v >> 6) & 63];
    *dst++ = '=';
  }
}

}  // namespace kinlet::wire
