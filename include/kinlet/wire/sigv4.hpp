// kinlet/wire/sigv4.hpp: AWS Signature Version 4 (AWS4-HMAC-SHA256), shared by
// the gateway's verifier (SigV4Verifier) and the remote backend's signer
// (SignRequest).
//
// The building blocks follow AWS's algorithm step by step (canonical request,
// string to sign, signing key, signature) so that each can be checked against
// AWS's published test suites (tests/wire/data/sigv4/). Hashing and HMAC use
// OpenSSL 3's EVP interface.
//
// Thread safety: every free function is pure and thread-safe. SigV4Verifier is
// immutable after construction: Verify may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kinlet/wire/http.hpp"

namespace kinlet::wire {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term credentials
};

inline constexpr std::string_view kSigV4Algorithm = "AWS4-HMAC-SHA256";
// Hex SHA-256 of the empty string: the payload hash of a request without body.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// `time` as SigV4's ISO-8601 basic UTC form, "20150830T123600Z".
std::string FormatAmzDate(absl::Time time);
// Parses exactly "YYYYMMDDTHHMMSSZ" (a valid UTC date and time); false otherwise.
bool ParseAmzDate(std::string_view text, absl::Time* time);

// What a canonical request is built from. The views must outlive the call.
struct SigV4Request {
  std::string_view method;                           // "POST"
  std::string_view path;                             // as on the wire, without the query ("/")
  std::string_view query;                            // as on the wire, without '?' ("" when none)
  const std::vector<HttpHeader>* headers = nullptr;  // names lower-case
  // Lower-case names of the signed headers, in the order they are to appear
  // (the signer sorts them; a verifier keeps the client's SignedHeaders list).
  std::vector<std::string> signed_headers;
  std::string_view payload_hash;  // hex SHA-256 of the body (Sha256Hex)
  // Removes "." and ".." segments and empty segments (every service but S3).
  bool normalize_path = true;
  // Query (presigned) form: X-Amz-Signature is left out of the canonical query.
  bool query_auth = false;
};

// The canonical URI: `path` normalised (when asked) and URI-encoded once per
// segment (everything but A-Z a-z 0-9 - . _ ~ and '/'). An empty path is "/".
std::string CanonicalUri(std::string_view path, bool normalize);
// The canonical query: each "k=v" pair percent-decoded then re-encoded
// (unreserved characters kept), sorted by key then value, joined by '&'.
// `skip_signature` drops X-Amz-Signature.
std::string CanonicalQuery(std::string_view query, bool skip_signature);
// AWS's canonical request (task 1): method, URI, query, "name:value\n" for each
// signed header (values of repeated headers joined by ',', trimmed, runs of
// spaces collapsed; a signed header missing from the request has an empty
// value), the signed header list joined by ';', and the payload hash.
std::string CanonicalRequest(const SigV4Request& request);

// The credential scope "yyyymmdd/region/service/aws4_request".
std::string CredentialScope(std::string_view date, std::string_view region,
                            std::string_view service);
// The string to sign (task 2) for `amz_date` ("20150830T123600Z").
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);

// The derived signing key (task 3) of one secret for one day, region and
// service. It depends on the date, not the time: a client derives it once per
// day and reuses it (IsFor tells whether it still applies).
class SigningKey {
 public:
  // `date` is "yyyymmdd".
  SigningKey(std::string_view secret_access_key, std::string_view date, std::string_view region,
             std::string_view service);

  bool IsFor(std::string_view date, std::string_view region, std::string_view service) const {
    return date == date_ && region == region_ && service == service_;
  }
  const std::array<std::uint8_t, 32>& bytes() const { return key_; }
  // Lower-case hex HMAC-SHA256 of `string_to_sign` under this key (task 4).
  std::string Sign(std::string_view string_to_sign) const;

 private:
  std::string date_, region_, service_;
  std::array<std::uint8_t, 32> key_{};
};

// Every step of one signature, for tests and debugging.
struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // hex
  std::string authorization;  // the Authorization header's value (header form)
};

// Signs `request` at `time` with `credentials` for `region`/`service`: every
// step, and the Authorization value "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=...". The caller has put x-amz-date (and any token) in the headers.
// `key`, when given, must be for the request's date, region and service.
SigV4Signature SignV4(const SigV4Request& request, const Credentials& credentials,
                      std::string_view region, std::string_view service, absl::Time time,
                      const SigningKey* key = nullptr);

// The query (presigned) form: returns `request.query` followed by X-Amz-Algorithm,
// X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders (and
// X-Amz-Security-Token when the credentials carry one and
// `sign_session_token`) and the X-Amz-Signature that signs them; without
// `sign_session_token` the token is appended after the signature.
// `signature`, when not null, receives every step.
std::string PresignQuery(const SigV4Request& request, const Credentials& credentials,
                         std::string_view region, std::string_view service, absl::Time time,
                         int expires_seconds, bool sign_session_token = true,
                         SigV4Signature* signature = nullptr);

// Signs an outgoing Kinesis request in place (the remote backend's signer):
// replaces any x-amz-date, x-amz-security-token and authorization headers, adds
// x-amz-date (`time`) and x-amz-security-token (when the credentials carry a
// token), then signs those of content-type, host or :authority, x-amz-date,
// x-amz-target, x-amz-security-token and x-amz-content-sha256 that are present,
// with the body's hash as payload hash, and adds the authorization header.
// The request's target is its path and query. `key` as in SignV4.
void SignRequest(HttpRequest& request, const Credentials& credentials, std::string_view region,
                 std::string_view service, absl::Time time, const SigningKey* key = nullptr);

struct SigV4VerifierOptions {
  // false: AWS-like local mode. The request must carry well-formed SigV4
  // authentication (the structural checks AWS makes first), but any key and
  // signature are accepted.
  bool verify_signatures = false;
  std::map<std::string, Credentials> credentials;  // access key id -> credentials
  std::string service = "kinesis";                 // the credential scope's service
  std::string region;                              // the scope's region; empty: any
  absl::Duration max_skew = absl::Minutes(5);      // allowed |X-Amz-Date - now|
};

// Checks the SigV4 authentication of incoming requests the way AWS does, with
// AWS's exception names (kinlet/wire/errors.hpp) and message texts.
class SigV4Verifier {
 public:
  explicit SigV4Verifier(SigV4VerifierOptions options);

  // OK when `request` is authenticated. Errors, in the order checked:
  //  - InvalidSignatureException "Found both 'X-Amz-Algorithm' as a query-string
  //    param and 'Authorization' as HTTP header.";
  //  - MissingAuthenticationTokenException "Missing Authentication Token" when
  //    there is neither;
  //  - IncompleteSignatureException listing every missing parameter
  //    ("Authorization header requires 'Credential' parameter. ... Authorization=<value>",
  //    "AWS query-string parameters must include 'X-Amz-Credential'. ...
  //    Re-examine the query-string parameters."), then "Credential must have
  //    exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '<c>'".
  // With verify_signatures only:
  //  - InvalidSignatureException for a credential scope that is not this
  //    service's, region's (when configured) or X-Amz-Date's ("Credential should
  //    be scoped to a valid region, not '<r>'. " ...), an unsigned host, a date
  //    more than max_skew away ("Signature expired: <date> is now earlier than
  //    <now - skew> (<now> - 5 min.)", "Signature not yet current: <date> is
  //    still later than <now + skew> (<now> + 5 min.)"), an expired presigned
  //    request, an x-amz-content-sha256 that is not the body's hash, and a
  //    signature that does not match ("The request signature we calculated does
  //    not match the signature you provided. ...");
  //  - UnrecognizedClientException "The security token included in the request
  //    is invalid." for an unknown access key or a session token that is not
  //    the key's.
  // Signatures and tokens are compared in constant time.
  absl::Status Verify(const HttpRequest& request, absl::Time now) const;

  const SigV4VerifierOptions& options() const { return options_; }

 private:
  SigV4VerifierOptions options_;
};

}  // namespace kinlet::wire
