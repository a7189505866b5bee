// wire_sigv4_fuzz: arbitrary Authorization headers, query strings, header sets
// and bodies through SigV4Verifier::Verify.
//
// Input: a mode byte, then '\n'-separated fields: target, Authorization (or
// "-" for none), X-Amz-Date (or "-"), body, then "name:value" header lines.
//  - mode bit 0 clear: the fields are sent as they are. Verify must not crash,
//    and when it accepts, the same request with its signature changed must be
//    refused.
//  - mode bit 0 set: the request (without the given Authorization) is signed
//    by SignRequest and must verify; with its body changed it must not.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kinlet/wire/sigv4.hpp"

namespace {

using kinlet::wire::Credentials;
using kinlet::wire::HttpRequest;

const Credentials kKey{"AKIAFUZZ", "fuzz-secret", ""};

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

absl::Time Now() {
  absl::Time now;
  kinlet::wire::ParseAmzDate("20261129T101500Z", &now);
  return now;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool sign = (data[0] & 1) != 0;
  const std::vector<std::string_view> fields =
      Lines(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  auto field = [&](std::size_t i) { return i < fields.size() ? fields[i] : std::string_view(); };

  HttpRequest request;
  request.method = "POST";
  request.target = std::string(field(0));
  request.body = std::string(field(3));
  for (std::size_t i = 4; i < fields.size(); ++i) {
    const std::size_t colon = fields[i].find(':', 1);
    if (colon == std::string_view::npos) continue;
    std::string name(fields[i].substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    request.headers.push_back({name, std::string(fields[i].substr(colon + 1))});
  }

  kinlet::wire::SigV4VerifierOptions options;
  options.verify_signatures = true;
  options.credentials[kKey.access_key_id] = kKey;
  const kinlet::wire::SigV4Verifier verifier(options);
  const kinlet::wire::SigV4Verifier local{kinlet::wire::SigV4VerifierOptions{}};

  if (!sign) {
    if (field(1) != "-") request.headers.push_back({"authorization", std::string(field(1))});
    if (field(2) != "-") request.headers.push_back({"x-amz-date", std::string(field(2))});
    (void)local.Verify(request, Now());
    if (verifier.Verify(request, Now()).ok()) {
      // Accepted: then the signature is what made it so, and a changed one is refused.
      HttpRequest changed = request;
      bool flipped = false;
      for (auto& h : changed.headers) {
        if (h.name == "authorization" && !h.value.empty()) {
          h.value.back() = h.value.back() == '0' ? '1' : '0';
          flipped = true;
        }
      }
      const std::size_t at = changed.target.find("X-Amz-Signature=");
      if (!flipped && at != std::string::npos && at + 16 < changed.target.size()) {
        changed.target[at + 16] = changed.target[at + 16] == '0' ? '1' : '0';
        flipped = true;
      }
      if (!flipped || verifier.Verify(changed, Now()).ok()) abort();
    }
    return 0;
  }

  // Signed by SignRequest: must verify unless the fields carry their own
  // authentication parameters or a content hash.
  if (request.FindHeader("x-amz-content-sha256") != nullptr ||
      request.target.find("X-Amz-Algorithm") != std::string::npos ||
      request.target.find('%') != std::string::npos) {
    return 0;
  }
  kinlet::wire::SignRequest(request, kKey, "us-east-1", "kinesis", Now());
  if (request.FindHeader("host") == nullptr && request.FindHeader(":authority") == nullptr) {
    if (verifier.Verify(request, Now()).ok()) abort();  // host must be signed
    return 0;
  }
  if (!verifier.Verify(request, Now()).ok()) abort();
  request.body.push_back('x');
  if (verifier.Verify(request, Now()).ok()) abort();
  return 0;
}
