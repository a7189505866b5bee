// The core shared by RemoteRegistry and RemoteStream: signed JSON 1.1 calls
// over one HttpClient, with the SDKs' standard retry mode.
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

class KinesisClient {
 public:
  static absl::StatusOr<std::shared_ptr<KinesisClient>> Create(RemoteOptions options);

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
  int quota_tokens() const;

 private:
  explicit KinesisClient(RemoteOptions options);
  absl::StatusOr<wire::Value> CallOnce(std::string_view operation, std::string_view body,
                                       bool on_create, absl::Duration timeout);

  RemoteOptions options_;
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
