// Test helper: an in-process kinlet gateway on 127.0.0.1 (port 0, limits
// off) and a RemoteRegistry client of it signing with the test keys, with
// short retry backoffs; Create makes a stream through the client. The
// gateway stops at destruction.
#pragma once

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "kinlet/gateway/gateway.hpp"
#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/remote/remote_registry.hpp"
#include "kinlet/remote/remote_stream.hpp"
#include "test_credentials.hpp"

namespace kinlet_test {

struct LocalEndpoint {
  std::shared_ptr<kinlet::gateway::WireRegistry> registry =
      std::make_shared<kinlet::gateway::WireRegistry>();
  std::unique_ptr<kinlet::gateway::Gateway> gateway;
  std::unique_ptr<kinlet::remote::RemoteRegistry> remote;

  LocalEndpoint() {
    kinlet::gateway::GatewayOptions options;
    options.service.stream_defaults = *kinlet::gateway::WireStreamDefaults("unlimited");
    auto started = kinlet::gateway::Gateway::Start(registry, std::move(options));
    REQUIRE(started.ok());
    gateway = std::move(*started);
    kinlet::remote::RemoteOptions ro;
    ro.endpoint = gateway->endpoint();
    ro.credentials = TestCredentials();
    ro.retry.base_delay = absl::Milliseconds(1);
    ro.retry.throttle_base_delay = absl::Milliseconds(2);
    auto client = kinlet::remote::RemoteRegistry::Create(ro);
    REQUIRE(client.ok());
    remote = std::move(*client);
  }

  // Creates stream `name` with `shards` shards through the client.
  std::shared_ptr<kinlet::remote::RemoteStream> Create(const std::string& name, int shards) {
    kinlet::StreamOptions so;
    so.name = name;
    so.shard_count = shards;
    auto stream = remote->CreateStream(so);
    INFO(stream.status().ToString());
    REQUIRE(stream.ok());
    return *stream;
  }
};

}  // namespace kinlet_test
