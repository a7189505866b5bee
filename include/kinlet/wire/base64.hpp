// kinlet/wire/base64.hpp: base64 as AWS reads and writes blobs.
//
// Decoding is strict, as AWS's JSON protocol is (absl::Base64Unescape is not:
// it accepts missing padding, spaces and non-canonical final characters): the
// standard alphabet, padded to a multiple of 4, no whitespace, the unused bits
// of the last character zero. Errors are SerializationException with AWS's
// texts, e.g. "Base64 encoded length is expected a multiple of 4 bytes but
// found: 5", "Invalid Base64 character: '!'", "Invalid last non-pad Base64
// character dectected" [sic, AWS's spelling].
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace kinlet::wire {

// Appends the decoding of `text` to *out. On error *out is unchanged.
absl::Status Base64DecodeStrict(std::string_view text, std::string* out);

// Appends the standard, padded base64 of `bytes` to *out.
void Base64Encode(std::string_view bytes, std::string* out);

}  // namespace kinlet::wire
