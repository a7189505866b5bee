// The core shared by RemoteRegistry, RemoteStream and DynamoDbCheckpointStore:
// signed calls of an AWS JSON protocol service (POST /, X-Amz-Target
// <prefix>.<Operation>, SigV4) over one HttpClient, with the SDKs' standard
// retry mode. Kinesis (JSON 1.1) unless Create is given another AwsJsonService.
//
// Thread safety: every method is thread-safe. quota_mu_ guards tokens_;
// key_mu_ guards the cached signing key. The rest is immutable after Create.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kinlet/remote/http_client.hpp"
#include "kinlet/remote/remote_stream.hpp"
#include "kinlet/wire/document.hpp"
#include "kinlet/wire/sigv4.hpp"

namespace kinlet::remote {

// What distinguishes one AWS JSON service from another on the wire.
struct AwsJsonService {
  std::string_view target_prefix;    // X-Amz-Target is "<target_prefix>.<Operation>"
  std::string_view content_type;     // application/x-amz-json-1.0 or -1.1
  std::string_view signing_name;     // SigV4's service in the credential scope
  std::string_view endpoint_prefix;  // default endpoint https://<prefix>.<region>.amazonaws.com

  static constexpr AwsJsonService Kinesis() {
    return {"Kinesis_20131202", "application/x-amz-json-1.1", "kinesis", "kinesis"};
  }
  static constexpr AwsJsonService DynamoDb() {
    return {"DynamoDB_20120810", "application/x-amz-json-1.0", "dynamodb", "dynamodb"};
  }
};

// The client of one AWS JSON service (historically Kinesis's only: hence the
// name). Errors are mapped by ErrorFromResponse (kinlet/remote/remote_errors.hpp).
class KinesisClient {
 public:
  // Errors: InvalidArgumentException without credentials or with an endpoint
  // that is not http(s)://host; kInternal if libcurl cannot start. An empty
  // options.endpoint is the service's regional AWS endpoint.
  static absl::StatusOr<std::shared_ptr<KinesisClient>> Create(
      RemoteOptions options, AwsJsonService service = AwsJsonService::Kinesis());

  // One call's retry state: its deadline, attempts made, quota taken.
  struct CallState {
    absl::Time deadline;
    int attempt = 1;
    int spent = 0;
  };
  CallState BeginCall() const { return CallState{absl::Now() + options_.retry.call_timeout}; }

  // Calls `operation` with the JSON `body` until it succeeds or a retry is
  // refused (RetryAfter); the parsed response (an empty body is {}).
  // `on_create`: ResourceInUse means the name is taken. Refunds the quota on
  // success when `finish` (set false when the caller continues the call).
  absl::StatusOr<wire::Value> Call(std::string_view operation, std::string_view body,
                                   bool on_create = false);
  absl::StatusOr<wire::Value> CallWithin(CallState& state, std::string_view operation,
                                         std::string_view body, bool on_create = false);
  // True after sleeping the backoff before the next attempt, when `why` is
  // retryable, attempts, quota and deadline allow it.
  bool RetryAfter(const absl::Status& why, CallState& state);
  // The call succeeded: gives quota back.
  void Succeeded(const CallState& state);

  // A signed request for `operation` (for streaming calls).
  absl::StatusOr<HttpCall> Prepare(std::string_view operation, std::string body,
                                   absl::Duration timeout);

  HttpClient& http() { return *http_; }
  const RemoteOptions& options() const { return options_; }
  const AwsJsonService& service() const { return service_; }
  int quota_tokens() const;

 private:
  KinesisClient(RemoteOptions options, AwsJsonService service);
  absl::StatusOr<wire::Value> CallOnce(std::string_view operation, std::string_view body,
                                       bool on_create, absl::Duration timeout);

  RemoteOptions options_;
  AwsJsonService service_;
  std::string url_;
  std::string host_;
  std::unique_ptr<HttpClient> http_;

  mutable std::mutex quota_mu_;
  int tokens_ = 0;  // guarded by quota_mu_

  std::mutex key_mu_;
  // Guarded by key_mu_: the signing key of (secret, date).
  std::string key_secret_;
  std::shared_ptr<const wire::SigningKey> key_;
};

}  // namespace kinlet::remote
