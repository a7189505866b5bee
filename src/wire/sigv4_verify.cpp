// AWS Signature Version 4: SigV4Verifier, the gateway's check of incoming
// requests. Message texts are AWS's: the structural ones as recorded by
// mhart/kinesalite's tests (written against AWS), the others as AWS services
// answer them (see tests/wire/sigv4_test.cpp for each).
#include <openssl/crypto.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "kinlet/wire/errors.hpp"
#include "kinlet/wire/sigv4.hpp"
#include "sigv4_internal.hpp"

namespace kinlet::wire {
namespace {

constexpr std::string_view kMismatch =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";
constexpr std::string_view kBadToken = "The security token included in the request is invalid.";

absl::Status Error(std::string_view type, std::string_view message) {
  return WireError(absl::StatusCode::kUnauthenticated, type, message);
}
absl::Status Invalid(std::string_view message) {
  return Error(kInvalidSignatureException, message);
}

// Equal strings, in time independent of where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The authentication fields of a request, from either form.
struct AuthFields {
  bool query_form = false;
  std::string algorithm, credential, signed_headers, signature;
  std::string date;        // X-Amz-Date (header or query), or the Date header
  bool http_date = false;  // `date` is an RFC 1123 Date header
  std::string expires;     // query form
  const std::string* token = nullptr;
  std::string query_token;
};

// Header form: "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
// Tokens are split on ',' and ' ' after the first (the algorithm), as AWS does.
absl::Status ParseHeader(const HttpRequest& request, const std::string& header, AuthFields* out) {
  const std::vector<std::string_view> tokens = sigv4_internal::Split(header, ", ", true);
  const bool leading_space = !header.empty() && (header[0] == ' ' || header[0] == ',');
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i == 0 && !leading_space) {
      out->algorithm = std::string(tokens[0]);
      continue;
    }
    const std::size_t eq = tokens[i].find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = tokens[i].substr(0, eq);
    const std::string value(tokens[i].substr(eq + 1));
    if (key == "Credential") out->credential = value;
    if (key == "SignedHeaders") out->signed_headers = value;
    if (key == "Signature") out->signature = value;
  }
  std::string message;
  for (auto [name, value] :
       {std::pair<std::string_view, const std::string*>{"Credential", &out->credential},
        {"Signature", &out->signature},
        {"SignedHeaders", &out->signed_headers}}) {
    if (value->empty()) {
      sigv4_internal::Append(&message, "Authorization header requires '", name, "' parameter. ");
    }
  }
  if (const std::string* amz = request.FindHeader("x-amz-date"); amz != nullptr) {
    out->date = *amz;
  } else if (const std::string* date = request.FindHeader("date"); date != nullptr) {
    out->date = *date;
    out->http_date = true;
  } else {
    message.append(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
  }
  if (!message.empty()) {
    return Error(kIncompleteSignatureException,
                 sigv4_internal::Cat(message, "Authorization=", header));
  }
  out->token = request.FindHeader("x-amz-security-token");
  return absl::OkStatus();
}

// Query (presigned) form.
absl::Status ParseQueryAuth(const std::vector<std::pair<std::string, std::string>>& params,
                            AuthFields* out) {
  out->query_form = true;
  auto get = [&](std::string_view key) -> const std::string* {
    for (const auto& [k, v] : params) {
      if (k == key) return &v;
    }
    return nullptr;
  };
  std::string message;
  for (auto [name, field] :
       {std::pair<std::string_view, std::string*>{"X-Amz-Algorithm", &out->algorithm},
        {"X-Amz-Credential", &out->credential},
        {"X-Amz-Signature", &out->signature},
        {"X-Amz-SignedHeaders", &out->signed_headers},
        {"X-Amz-Date", &out->date}}) {
    const std::string* value = get(name);
    if (value == nullptr || value->empty()) {
      sigv4_internal::Append(&message, "AWS query-string parameters must include '", name, "'. ");
    } else {
      *field = *value;
    }
  }
  if (!message.empty()) {
    return Error(kIncompleteSignatureException,
                 sigv4_internal::Cat(message, "Re-examine the query-string parameters."));
  }
  if (const std::string* expires = get("X-Amz-Expires")) out->expires = *expires;
  if (const std::string* token = get("X-Amz-Security-Token")) {
    out->query_token = *token;
    out->token = &out->query_token;
  }
  return absl::OkStatus();
}

std::string SkewText(absl::Duration skew) {
  return sigv4_internal::Cat(std::to_string(absl::ToInt64Minutes(skew)), " min.");
}

}  // namespace

SigV4Verifier::SigV4Verifier(SigV4VerifierOptions options) : options_(std::move(options)) {}

absl::Status SigV4Verifier::Verify(const HttpRequest& request, absl::Time now) const {
  std::string_view target = request.target;
  const std::size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  const auto params = sigv4_internal::ParseQuery(query);
  bool query_auth = false;
  for (const auto& param : params) query_auth = query_auth || param.first == "X-Amz-Algorithm";
  const std::string* header = request.FindHeader("authorization");
  if (header != nullptr && header->empty()) header = nullptr;  // as AWS: an empty one is none

  if (header != nullptr && query_auth) {
    return Invalid(
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP "
        "header.");
  }
  if (header == nullptr && !query_auth) {
    return Error(kMissingAuthenticationTokenException, "Missing Authentication Token");
  }
  AuthFields auth;
  absl::Status parsed =
      header != nullptr ? ParseHeader(request, *header, &auth) : ParseQueryAuth(params, &auth);
  if (!parsed.ok()) return parsed;

  const std::vector<std::string_view> scope = sigv4_internal::Split(auth.credential, "/", false);
  if (scope.size() != 5) {
    return Error(
        kIncompleteSignatureException,
        sigv4_internal::Cat("Credential must have exactly 5 slash-delimited elements, e.g. "
                            "keyid/date/region/service/term, got '",
                            auth.credential, "'"));
  }
  if (!options_.verify_signatures) return absl::OkStatus();

  // The request's time, and its X-Amz-Date form (what the string to sign holds).
  absl::Time signed_at;
  bool date_ok = false;
  if (auth.http_date) {
    std::string error;
    date_ok = absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", auth.date, absl::UTCTimeZone(),
                              &signed_at, &error);
  } else {
    date_ok = ParseAmzDate(auth.date, &signed_at);
  }
  if (!date_ok) {
    return Invalid(sigv4_internal::Cat("Date must be in ISO-8601 'basic format'. Got '", auth.date,
                                       "'. See http://en.wikipedia.org/wiki/ISO_8601"));
  }
  const std::string amz_date = FormatAmzDate(signed_at);

  // The credential scope: each problem adds its sentence, as AWS does.
  std::string scope_errors;
  if (!options_.region.empty() && scope[2] != options_.region) {
    sigv4_internal::Append(&scope_errors, "Credential should be scoped to a valid region, not '",
                           scope[2], "'. ");
  }
  if (scope[3] != options_.service) {
    sigv4_internal::Append(&scope_errors, "Credential should be scoped to correct service: '",
                           options_.service, "'. ");
  }
  if (scope[4] != "aws4_request") {
    sigv4_internal::Append(
        &scope_errors, "Credential should be scoped with a valid terminator: 'aws4_request', not '",
        scope[4], "'. ");
  }
  if (scope[1] != std::string_view(amz_date).substr(0, 8)) {
    scope_errors.append(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP. ");
  }
  if (!scope_errors.empty()) return Invalid(scope_errors);

  std::vector<std::string> signed_headers;
  bool host_signed = false;
  for (std::string_view name : sigv4_internal::Split(auth.signed_headers, ";", false)) {
    host_signed = host_signed || name == "host" || name == ":authority";
    signed_headers.emplace_back(name);
  }
  if (!host_signed) {
    return Invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }

  // Time: the signature must be current (and, presigned, not expired).
  const absl::Duration skew = options_.max_skew;
  if (signed_at > now + skew) {
    return Invalid(sigv4_internal::Cat("Signature not yet current: ", amz_date,
                                       " is still later than ", FormatAmzDate(now + skew), " (",
                                       FormatAmzDate(now), " + ", SkewText(skew), ")"));
  }
  if (auth.query_form) {
    std::int64_t expires = 0;
    if (!absl::SimpleAtoi(auth.expires, &expires) || expires < 0) {
      return Invalid("X-Amz-Expires must be non-negative");
    }
    if (expires > 604800) {
      return Invalid("X-Amz-Expires must be less than a week (in seconds) that is 604800");
    }
    if (now > signed_at + absl::Seconds(expires)) return Invalid("Request has expired");
  } else if (signed_at < now - skew) {
    return Invalid(sigv4_internal::Cat("Signature expired: ", amz_date, " is now earlier than ",
                                       FormatAmzDate(now - skew), " (", FormatAmzDate(now), " - ",
                                       SkewText(skew), ")"));
  }

  // The key, and its session token.
  const auto found = options_.credentials.find(std::string(scope[0]));
  if (found == options_.credentials.end()) return Error(kUnrecognizedClientException, kBadToken);
  const Credentials& credentials = found->second;
  const std::string_view token = auth.token != nullptr ? *auth.token : std::string_view();
  if (!ConstantTimeEquals(token, credentials.session_token)) {
    return Error(kUnrecognizedClientException, kBadToken);
  }

  const std::string body_hash = Sha256Hex(request.body);
  if (const std::string* claimed = request.FindHeader("x-amz-content-sha256");
      claimed != nullptr && *claimed != body_hash) {
    return Invalid("The provided 'x-amz-content-sha256' header does not match what was computed.");
  }

  if (auth.algorithm != kSigV4Algorithm) return Invalid(kMismatch);
  SigV4Request to_check;
  to_check.method = request.method;
  to_check.path = path;
  to_check.query = query;
  to_check.headers = &request.headers;
  to_check.signed_headers = std::move(signed_headers);
  to_check.payload_hash = body_hash;
  to_check.query_auth = auth.query_form;
  const std::string string_to_sign = StringToSign(
      amz_date, CredentialScope(scope[1], scope[2], scope[3]), CanonicalRequest(to_check));
  const std::string expected =
      SigningKey(credentials.secret_access_key, scope[1], scope[2], scope[3]).Sign(string_to_sign);
  if (!ConstantTimeEquals(expected, auth.signature)) return Invalid(kMismatch);
  return absl::OkStatus();
}

}  // namespace kinlet::wire
