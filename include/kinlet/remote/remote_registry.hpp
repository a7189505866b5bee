// kinlet/remote/remote_registry.hpp: an endpoint's streams, as
// kinlet::Registry has them in-process: create, delete, list, open.
//
//   kinlet::remote::RemoteOptions options;          // endpoint, region, credentials,
//   options.endpoint = gateway->endpoint();         // HTTP version, TLS, retries
//   options.credentials = provider;
//   auto registry = kinlet::remote::RemoteRegistry::Create(options).value();
//   kinlet::StreamOptions so;
//   so.name = "orders";
//   so.shard_count = 4;
//   auto stream = registry->CreateStream(so).value();
//
// One RemoteRegistry owns one HTTP client (one connection pool) and one retry
// quota; the streams it opens share them.
// Thread safety: every method is thread-safe. Lifetime: streams keep the
// client alive; they may outlive the registry.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kinlet/remote/remote_stream.hpp"
#include "kinlet/stream_options.hpp"

namespace kinlet::remote {

class RemoteRegistry {
 public:
  using StreamType = RemoteStream;

  // Errors: InvalidArgumentException without credentials or with an endpoint
  // that is not http(s)://; kInternal if libcurl cannot start.
  static absl::StatusOr<std::unique_ptr<RemoteRegistry>> Create(RemoteOptions options);
  ~RemoteRegistry();

  // CreateStream with options.name, shard_count (or ON_DEMAND mode), then,
  // when options.retention_period is not 24 hours, IncreaseStreamRetentionPeriod.
  // Waits (DescribeStreamSummary, up to the call timeout) until the stream is
  // ACTIVE. ResourceInUseException (kAlreadyExists) if the name is taken;
  // LimitExceededException, ValidationException, InvalidArgumentException.
  // Other StreamOptions fields are in-process only and ignored.
  absl::StatusOr<std::shared_ptr<RemoteStream>> CreateStream(const StreamOptions& options);
  // DeleteStream by name or ARN. ResourceNotFoundException;
  // ResourceInUseException with registered consumers unless
  // `enforce_consumer_deletion`.
  absl::Status DeleteStream(std::string_view name_or_arn, bool enforce_consumer_deletion = false);
  // Opens a stream by name or ARN (one DescribeStreamSummary: the stream must
  // exist). ResourceNotFoundException otherwise.
  absl::StatusOr<std::shared_ptr<RemoteStream>> GetStream(std::string_view name_or_arn) const;
  absl::StatusOr<StreamDescription> DescribeStream(std::string_view name_or_arn) const;
  absl::StatusOr<StreamDescriptionSummary> DescribeStreamSummary(
      std::string_view name_or_arn) const;
  // Names of the streams (all ListStreams pages), sorted.
  absl::StatusOr<std::vector<std::string>> ListStreams() const;

  const RemoteOptions& options() const;

 private:
  explicit RemoteRegistry(std::shared_ptr<KinesisClient> client);
  std::shared_ptr<KinesisClient> client_;
};

}  // namespace kinlet::remote
