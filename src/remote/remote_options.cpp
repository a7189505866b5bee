// DefaultRemoteOptions: the SDKs' configuration resolved into RemoteOptions.
#include <memory>
#include <utility>

#include "kinlet/remote/config.hpp"
#include "kinlet/remote/credentials.hpp"
#include "kinlet/remote/remote_stream.hpp"

namespace kinlet::remote {

absl::StatusOr<RemoteOptions> DefaultRemoteOptions(const RemoteConfigOptions& config,
                                                   CredentialsOptions credentials) {
  absl::StatusOr<RemoteConfig> resolved = ResolveRemoteConfig(config);
  if (!resolved.ok()) return resolved.status();
  RemoteOptions options;
  options.region = resolved->region;
  options.endpoint = resolved->endpoint;
  if (credentials.profile.empty()) credentials.profile = resolved->profile;
  options.credentials = std::make_shared<DefaultCredentialsChain>(std::move(credentials));
  return options;
}

}  // namespace kinlet::remote
