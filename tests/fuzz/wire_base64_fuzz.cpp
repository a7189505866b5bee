// libFuzzer target: strict base64. Decoding any text either fails with a
// SerializationException, leaving the output untouched, or succeeds, and then
// encoding gives the text back exactly (strict means canonical). Encoding any
// bytes decodes back to them.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kinlet/wire/base64.hpp"
#include "kinlet/wire/errors.hpp"

namespace {
void Require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string decoded = "prefix";
  absl::Status status = kinlet::wire::Base64DecodeStrict(input, &decoded);
  if (!status.ok()) {
    Require(kinlet::wire::ErrorTypeOf(status) == "SerializationException");
    Require(decoded == "prefix");
  } else {
    Require(decoded.compare(0, 6, "prefix") == 0);
    std::string encoded;
    kinlet::wire::Base64Encode(std::string_view(decoded).substr(6), &encoded);
    Require(encoded == input);
  }
  std::string encoded;
  kinlet::wire::Base64Encode(input, &encoded);
  std::string back;
  Require(kinlet::wire::Base64DecodeStrict(encoded, &back).ok());
  Require(back == input);
  return 0;
}
