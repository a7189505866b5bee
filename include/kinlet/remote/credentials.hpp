// kinlet/remote/credentials.hpp: where a remote stream's AWS credentials come
// from, as the AWS SDKs find them.
//
// A CredentialsProvider hands out the credentials to sign the next request
// with. The default chain (DefaultCredentialsChain) tries, in order: explicit
// keys, the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN), the shared files (~/.aws/credentials and ~/.aws/config,
// AWS_PROFILE; see kinlet/remote/config.hpp), container credentials
// (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI) and the EC2 instance
// metadata service (IMDSv2), refreshing temporary credentials before they
// expire.
//
// The chain settles on the first source that yields credentials and keeps
// using it (as the SDKs' chains do): keys from options, the environment or
// the files are read once; container and instance credentials are cached and
// fetched again `refresh_ahead` before they expire. The container and
// metadata sources use libcurl with no proxy (they are link-local or
// loopback services) and short timeouts.
//
// Thread safety: GetCredentials may be called concurrently on every provider.
// A refresh is done by one caller at a time; while it runs, the others get the
// cached credentials if they have not expired yet, and wait for the refresh
// otherwise.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kinlet/wire/sigv4.hpp"

namespace kinlet::remote {

class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // The credentials to sign a request with now. Errors: kUnauthenticated
  // (nothing in the chain had credentials; the message says what was tried),
  // kUnavailable (a source could not be reached and nothing cached is valid).
  virtual absl::StatusOr<wire::Credentials> GetCredentials() = 0;
};

// Credentials with the time they stop being valid (InfiniteFuture for
// long-term keys).
struct TimedCredentials {
  wire::Credentials credentials;
  absl::Time expiration = absl::InfiniteFuture();
};

// Always the same credentials.
class StaticCredentialsProvider : public CredentialsProvider {
 public:
  explicit StaticCredentialsProvider(wire::Credentials credentials)
      : credentials_(std::move(credentials)) {}
  absl::StatusOr<wire::Credentials> GetCredentials() override { return credentials_; }

 private:
  const wire::Credentials credentials_;
};

// Options of the providers below and of the chain.
struct CredentialsOptions {
  // Explicit keys: when access_key_id is set, the chain uses these and nothing
  // else (secret_access_key must be set too).
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  // The shared files' profile; empty: AWS_PROFILE, else "default".
  std::string profile;
  // Fetch temporary credentials again this long before they expire.
  absl::Duration refresh_ahead = absl::Minutes(5);
  // After a failed refresh while the cached credentials are still valid, the
  // next attempt waits this long (callers meanwhile get the cached ones).
  absl::Duration refresh_retry_interval = absl::Seconds(10);
  // Per HTTP request to the container or metadata service (connect and
  // whole exchange), and the number of attempts per fetch (2: one retry).
  absl::Duration http_timeout = absl::Seconds(1);
  int http_attempts = 2;
  // Where AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is resolved: the ECS agent's
  // address. Tests point it at a local server; nothing else should change it.
  std::string container_host_for_testing = "http://169.254.170.2";
  // The clock expirations are compared with; empty: absl::Now. For tests.
  std::function<absl::Time()> clock;
};

// Something that fetches temporary credentials (the container and metadata
// services). Errors: kUnavailable when the service cannot be reached or
// answers with an error; kUnauthenticated when it is not configured.
using CredentialsFetcher = std::function<absl::StatusOr<TimedCredentials>()>;

// Caches what `fetch` returns and fetches again `refresh_ahead` before it
// expires (see the thread-safety note at the top). GetCredentials errors:
// those of `fetch` when nothing cached is still valid.
class RefreshingCredentialsProvider : public CredentialsProvider {
 public:
  RefreshingCredentialsProvider(CredentialsFetcher fetch, CredentialsOptions options);
  absl::StatusOr<wire::Credentials> GetCredentials() override;
  // How many times `fetch` has been called. Thread-safe.
  int fetch_count() const;

 private:
  absl::Time Now() const;

  const CredentialsFetcher fetch_;
  const CredentialsOptions options_;
  // All fields below are read and written under mu_. A caller that sets
  // refreshing_ runs the fetch without the lock and clears it after storing
  // the result; waiters sleep on refreshed_.
  mutable std::mutex mu_;
  std::condition_variable refreshed_;
  std::optional<TimedCredentials> cached_;
  bool refreshing_ = false;
  absl::Time next_attempt_ = absl::InfinitePast();  // after a failed refresh
  absl::Status last_error_;
  int fetch_count_ = 0;
};

// The environment's keys: AWS_ACCESS_KEY_ID (or AWS_ACCESS_KEY),
// AWS_SECRET_ACCESS_KEY (or AWS_SECRET_KEY), AWS_SESSION_TOKEN. Errors:
// kUnauthenticated when they are not set (both keys are needed; the message
// says which is missing).
absl::StatusOr<wire::Credentials> CredentialsFromEnvironment();

// The profile's aws_access_key_id / aws_secret_access_key / aws_session_token
// (credentials file first, then config file). Errors: kUnauthenticated when
// the profile has no keys (the message names the files and, when the profile
// uses a source kinlet does not support, such as role_arn, sso_session or
// credential_process, says so); InvalidArgumentException /
// InternalFailureException for a file that does not parse / cannot be read.
absl::StatusOr<wire::Credentials> CredentialsFromProfile(const std::string& profile_name);

// One fetch from the container credentials endpoint: the URL is
// container_host_for_testing + AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, else
// AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to a loopback address or
// to the ECS/EKS agents 169.254.170.2, 169.254.170.23, [fd00:ec2::23]); the
// Authorization header is the contents of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
// else AWS_CONTAINER_AUTHORIZATION_TOKEN. The answer is JSON with
// AccessKeyId, SecretAccessKey, Token and Expiration (ISO 8601). Errors:
// kUnauthenticated when neither URI variable is set; InvalidArgument for a
// FULL_URI host that is not allowed or a token with a line break; kUnavailable
// when the service cannot be reached, answers non-200 or with a body that is
// not such a document (after http_attempts tries).
absl::StatusOr<TimedCredentials> FetchContainerCredentials(const CredentialsOptions& options);

// One fetch from the instance metadata service (IMDSv2): PUT
// /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds: 21600), GET
// /latest/meta-data/iam/security-credentials/ (the role), GET .../<role>
// (JSON with Code "Success", AccessKeyId, SecretAccessKey, Token,
// Expiration), each with the token. The endpoint is
// AWS_EC2_METADATA_SERVICE_ENDPOINT, else the profile's
// ec2_metadata_service_endpoint, else by AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE
// (or the profile's ec2_metadata_service_endpoint_mode): http://169.254.169.254
// for IPv4 (the default), http://[fd00:ec2::254] for IPv6. IMDSv1 (no token)
// is never used. Errors: kUnauthenticated when AWS_EC2_METADATA_DISABLED is
// "true" or the instance has no role; InvalidArgument for an unknown endpoint
// mode; kUnavailable when the service cannot be reached or answers otherwise
// (after http_attempts tries per request).
absl::StatusOr<TimedCredentials> FetchInstanceMetadataCredentials(
    const CredentialsOptions& options);

// The SDKs' default chain (see the top of this file). The first
// GetCredentials call (and every call until one succeeds) walks the chain;
// once a source has yielded credentials, the chain keeps to it. Errors of
// GetCredentials: InvalidArgument for explicit options with an access key but
// no secret; kUnauthenticated when no source has credentials (the message
// lists each source and why it had none); kUnavailable when a configured
// container or metadata source could not be reached and no later source had
// credentials; a source's own error (a shared file that does not parse).
class DefaultCredentialsChain : public CredentialsProvider {
 public:
  explicit DefaultCredentialsChain(CredentialsOptions options = {});
  absl::StatusOr<wire::Credentials> GetCredentials() override;
  // The source in use: "options", "environment", "profile <name>",
  // "container", "instance metadata", or "" before one succeeded. Thread-safe.
  std::string source() const;

 private:
  absl::StatusOr<wire::Credentials> Resolve();

  const CredentialsOptions options_;
  // resolve_mu_ serialises walks of the chain. chosen_ and source_ are
  // written once, under both resolve_mu_ and mu_, and read under mu_; the
  // provider chosen_ points to is thread-safe itself.
  std::mutex resolve_mu_;
  mutable std::mutex mu_;
  std::shared_ptr<CredentialsProvider> chosen_;
  std::string source_;
};

}  // namespace kinlet::remote
