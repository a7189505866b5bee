// Internals shared by sigv4.cpp (signing) and sigv4_verify.cpp (verifying).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kinlet::wire::sigv4_internal {

// Concatenation of anything convertible to std::string_view (absl's StrCat
// takes absl::string_view, which is not std::string_view here).
template <typename... Parts>
void Append(std::string* out, const Parts&... parts) {
  (out->append(std::string_view(parts)), ...);
}
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  Append(&out, parts...);
  return out;
}

// `text` split at each character of `delimiters`; empty pieces dropped when
// `skip_empty`. The pieces view `text`.
std::vector<std::string_view> Split(std::string_view text, std::string_view delimiters,
                                    bool skip_empty);

// `text` with every valid "%XY" escape decoded ('+' is kept as is).
std::string PercentDecode(std::string_view text);
// The "k=v" pairs of a query string (without '?'), percent-decoded, in order;
// empty pairs are skipped and a pair without '=' has an empty value.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

}  // namespace kinlet::wire::sigv4_internal
