// kinlet/remote/credentials.hpp: where a remote stream's AWS credentials come
// from, as the AWS SDKs find them.
//
// A CredentialsProvider hands out the credentials to sign the next request
// with. The default chain (DefaultCredentialsChain) tries, in order: explicit
// keys, the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN), the shared files (~/.aws/credentials and ~/.aws/config,
// AWS_PROFILE), container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI /
// _RELATIVE_URI) and the EC2 instance metadata service (IMDSv2), refreshing
// temporary credentials before they expire.
//
// Thread safety: GetCredentials may be called concurrently.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
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

}  // namespace kinlet::remote
