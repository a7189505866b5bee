// AWS Signature Version 4: signing (tasks 1-4 of AWS's algorithm).
#include "kinlet/wire/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_join.h"
#include "sigv4_internal.hpp"

namespace kinlet::wire {
namespace {

using Digest = std::array<std::uint8_t, 32>;

Digest HmacSha256(const void* key, std::size_t key_size, std::string_view data) {
  Digest out{};
  unsigned int size = 0;
  HMAC(EVP_sha256(), key, static_cast<int>(key_size),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &size);
  return out;
}

std::string Hex(const std::uint8_t* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return out;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void AppendEncoded(std::string_view text, bool keep_slash, std::string* out) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kDigits[c >> 4]);
      out->push_back(kDigits[c & 0xf]);
    }
  }
}

// Removes empty, "." and ".." segments; keeps a trailing slash.
std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> segments;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    start = end + 1;
  }
  std::string out = "/";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(segments[i]);
  }
  const bool trailing = !path.empty() && path.back() == '/';
  const bool dot_end = path.size() >= 2 && (path.ends_with("/.") || path.ends_with("/.."));
  if ((trailing || dot_end) && !segments.empty()) out.push_back('/');
  return out;
}

// Trims spaces and tabs and collapses inner runs of spaces to one.
void AppendHeaderValue(std::string_view value, std::string* out) {
  std::size_t begin = value.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return;
  std::size_t end = value.find_last_not_of(" \t");
  bool in_space = false;
  for (char c : value.substr(begin, end - begin + 1)) {
    if (c == ' ' || c == '\t') {
      in_space = true;
      continue;
    }
    if (in_space) out->push_back(' ');
    in_space = false;
    out->push_back(c);
  }
}

}  // namespace

namespace sigv4_internal {

std::string PercentDecode(std::string_view text) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view text, std::string_view delimiters,
                                    bool skip_empty) {
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find_first_of(delimiters, start);
    const std::string_view piece =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!piece.empty() || !skip_empty) pieces.push_back(piece);
    if (end == std::string_view::npos) return pieces;
    start = end + 1;
  }
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) {
      std::size_t eq = pair.find('=');
      std::string_view key = pair.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
      params.emplace_back(PercentDecode(key), PercentDecode(value));
    }
    start = end + 1;
  }
  return params;
}

}  // namespace sigv4_internal

std::string Sha256Hex(std::string_view data) {
  Digest digest{};
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr);
  return Hex(digest.data(), digest.size());
}

std::string FormatAmzDate(absl::Time time) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", time, absl::UTCTimeZone());
}

bool ParseAmzDate(std::string_view text, absl::Time* time) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return false;
  int field[6] = {};
  static constexpr int kStart[6] = {0, 4, 6, 9, 11, 13};
  static constexpr int kWidth[6] = {4, 2, 2, 2, 2, 2};
  for (int f = 0; f < 6; ++f) {
    for (int i = 0; i < kWidth[f]; ++i) {
      const char c = text[kStart[f] + i];
      if (c < '0' || c > '9') return false;
      field[f] = field[f] * 10 + (c - '0');
    }
  }
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond civil(field[0], field[1], field[2], field[3], field[4], field[5]);
  // Reject values the civil-time type would normalise (month 13, Feb 30, 25:00).
  if (civil.year() != field[0] || civil.month() != field[1] || civil.day() != field[2] ||
      civil.hour() != field[3] || civil.minute() != field[4] || civil.second() != field[5]) {
    return false;
  }
  *time = absl::FromCivil(civil, utc);
  return true;
}

std::string CanonicalUri(std::string_view path, bool normalize) {
  std::string normalized = normalize ? NormalizePath(path) : std::string(path);
  if (normalized.empty()) normalized = "/";
  std::string out;
  AppendEncoded(normalized, /*keep_slash=*/true, &out);
  return out;
}

std::string CanonicalQuery(std::string_view query, bool skip_signature) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (auto& [key, value] : sigv4_internal::ParseQuery(query)) {
    if (skip_signature && key == "X-Amz-Signature") continue;
    std::string k, v;
    AppendEncoded(key, false, &k);
    AppendEncoded(value, false, &v);
    encoded.emplace_back(std::move(k), std::move(v));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [key, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    sigv4_internal::Append(&out, key, "=", value);
  }
  return out;
}

std::string CanonicalRequest(const SigV4Request& request) {
  std::string out;
  sigv4_internal::Append(&out, request.method, "\n",
                         CanonicalUri(request.path, request.normalize_path), "\n",
                         CanonicalQuery(request.query, request.query_auth), "\n");
  for (const std::string& name : request.signed_headers) {
    sigv4_internal::Append(&out, name, ":");
    bool first = true;
    if (request.headers != nullptr) {
      for (const HttpHeader& header : *request.headers) {
        if (header.name != name) continue;
        if (!first) out.push_back(',');
        first = false;
        AppendHeaderValue(header.value, &out);
      }
    }
    out.push_back('\n');
  }
  sigv4_internal::Append(&out, "\n", absl::StrJoin(request.signed_headers, ";"), "\n",
                         request.payload_hash);
  return out;
}

std::string CredentialScope(std::string_view date, std::string_view region,
                            std::string_view service) {
  return sigv4_internal::Cat(date, "/", region, "/", service, "/aws4_request");
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  return sigv4_internal::Cat(kSigV4Algorithm, "\n", amz_date, "\n", scope, "\n",
                             Sha256Hex(canonical_request));
}

SigningKey::SigningKey(std::string_view secret_access_key, std::string_view date,
                       std::string_view region, std::string_view service)
    : date_(date), region_(region), service_(service) {
  const std::string secret = sigv4_internal::Cat("AWS4", secret_access_key);
  key_ = HmacSha256(secret.data(), secret.size(), date);
  key_ = HmacSha256(key_.data(), key_.size(), region);
  key_ = HmacSha256(key_.data(), key_.size(), service);
  key_ = HmacSha256(key_.data(), key_.size(), "aws4_request");
}

std::string SigningKey::Sign(std::string_view string_to_sign) const {
  const Digest mac = HmacSha256(key_.data(), key_.size(), string_to_sign);
  return Hex(mac.data(), mac.size());
}

SigV4Signature SignV4(const SigV4Request& request, const Credentials& credentials,
                      std::string_view region, std::string_view service, absl::Time time,
                      const SigningKey* key) {
  const std::string amz_date = FormatAmzDate(time);
  const std::string_view date = std::string_view(amz_date).substr(0, 8);
  const std::string scope = CredentialScope(date, region, service);
  SigV4Signature out;
  out.canonical_request = CanonicalRequest(request);
  out.string_to_sign = StringToSign(amz_date, scope, out.canonical_request);
  if (key != nullptr) {
    out.signature = key->Sign(out.string_to_sign);
  } else {
    out.signature =
        SigningKey(credentials.secret_access_key, date, region, service).Sign(out.string_to_sign);
  }
  out.authorization =
      sigv4_internal::Cat(kSigV4Algorithm, " Credential=", credentials.access_key_id, "/", scope,
                          ", SignedHeaders=", absl::StrJoin(request.signed_headers, ";"),
                          ", Signature=", out.signature);
  return out;
}

std::string PresignQuery(const SigV4Request& request, const Credentials& credentials,
                         std::string_view region, std::string_view service, absl::Time time,
                         int expires_seconds, bool sign_session_token, SigV4Signature* signature) {
  const std::string amz_date = FormatAmzDate(time);
  const std::string scope =
      CredentialScope(std::string_view(amz_date).substr(0, 8), region, service);
  auto param = [](std::string* query, std::string_view key, std::string_view value) {
    if (!query->empty()) query->push_back('&');
    sigv4_internal::Append(query, key, "=");
    AppendEncoded(value, false, query);
  };
  std::string query(request.query);
  param(&query, "X-Amz-Algorithm", kSigV4Algorithm);
  param(&query, "X-Amz-Credential", sigv4_internal::Cat(credentials.access_key_id, "/", scope));
  param(&query, "X-Amz-Date", amz_date);
  param(&query, "X-Amz-Expires", std::to_string(expires_seconds));
  param(&query, "X-Amz-SignedHeaders", absl::StrJoin(request.signed_headers, ";"));
  const bool token = !credentials.session_token.empty();
  if (token && sign_session_token) param(&query, "X-Amz-Security-Token", credentials.session_token);
  SigV4Request signed_request = request;
  signed_request.query = query;
  signed_request.query_auth = true;
  SigV4Signature steps = SignV4(signed_request, credentials, region, service, time);
  param(&query, "X-Amz-Signature", steps.signature);
  if (token && !sign_session_token) {
    param(&query, "X-Amz-Security-Token", credentials.session_token);
  }
  if (signature != nullptr) *signature = std::move(steps);
  return query;
}

void SignRequest(HttpRequest& request, const Credentials& credentials, std::string_view region,
                 std::string_view service, absl::Time time, const SigningKey* key) {
  std::erase_if(request.headers, [](const HttpHeader& h) {
    return h.name == "x-amz-date" || h.name == "x-amz-security-token" || h.name == "authorization";
  });
  request.headers.push_back({"x-amz-date", FormatAmzDate(time)});
  if (!credentials.session_token.empty()) {
    request.headers.push_back({"x-amz-security-token", credentials.session_token});
  }
  static constexpr std::string_view kSigned[] = {
      ":authority", "content-type",         "host",        "x-amz-content-sha256",
      "x-amz-date", "x-amz-security-token", "x-amz-target"};  // sorted
  SigV4Request to_sign;
  to_sign.method = request.method;
  std::string_view target = request.target;
  const std::size_t question = target.find('?');
  to_sign.path = target.substr(0, question);
  if (question != std::string_view::npos) to_sign.query = target.substr(question + 1);
  to_sign.headers = &request.headers;
  for (std::string_view name : kSigned) {
    if (request.FindHeader(name) != nullptr) to_sign.signed_headers.emplace_back(name);
  }
  const std::string payload_hash = Sha256Hex(request.body);
  to_sign.payload_hash = payload_hash;
  SigV4Signature signature = SignV4(to_sign, credentials, region, service, time, key);
  request.headers.push_back({"authorization", std::move(signature.authorization)});
}

}  // namespace kinlet::wire
