// Tests for DefaultRemoteOptions (kinlet/remote/remote_stream.hpp): an
// application configured only through the environment, as an AWS SDK is,
// reaches its endpoint and signs with the environment's keys.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "aws_env.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/gateway/gateway.hpp"
#include "kinlet/remote/remote_registry.hpp"
#include "kinlet/remote/remote_stream.hpp"
#include "kinlet/wire/errors.hpp"

namespace {

using kinlet::gateway::Gateway;
using kinlet::gateway::GatewayOptions;
using kinlet::gateway::WireRegistry;
using kinlet::remote::DefaultRemoteOptions;
using kinlet::remote::RemoteRegistry;

constexpr char kKeyId[] = "AKIDENVIRONMENT";
constexpr char kSecret[] = "environment-secret";

// A gateway that accepts only kKeyId/kSecret.
std::unique_ptr<Gateway> StartVerifyingGateway(std::shared_ptr<WireRegistry> registry) {
  GatewayOptions options;
  options.signatures.verify_signatures = true;
  options.signatures.credentials[kKeyId] = {kKeyId, kSecret, ""};
  auto gateway = Gateway::Start(std::move(registry), std::move(options));
  REQUIRE(gateway.ok());
  return std::move(*gateway);
}

}  // namespace

TEST_CASE("DefaultRemoteOptions: region, endpoint and keys from the environment", "[remote]") {
  kinlet_test::ScopedAwsEnv env;  // before any thread starts (setenv)
  auto registry = std::make_shared<WireRegistry>();
  auto gateway = StartVerifyingGateway(registry);
  env.Set("AWS_REGION", "eu-west-1");
  env.Set("AWS_ENDPOINT_URL_KINESIS", gateway->endpoint());
  env.Set("AWS_ACCESS_KEY_ID", kKeyId);
  env.Set("AWS_SECRET_ACCESS_KEY", kSecret);

  auto options = DefaultRemoteOptions();
  REQUIRE(options.ok());
  CHECK(options->region == "eu-west-1");
  CHECK(options->endpoint == gateway->endpoint());
  auto remote = RemoteRegistry::Create(*options);
  REQUIRE(remote.ok());
  kinlet::StreamOptions stream_options;
  stream_options.name = "configured";
  auto stream = (*remote)->CreateStream(stream_options);
  REQUIRE(stream.ok());
  auto put = (*stream)->PutRecord("k", "from the environment");
  REQUIRE(put.ok());
  // The record is in the gateway's registry: the call was signed with the
  // environment's keys (the gateway verifies) and reached this endpoint.
  auto local = registry->GetStream("configured");
  REQUIRE(local.ok());
  auto it = (*local)->GetShardIterator(std::string(put->shard_id),
                                       kinlet::IteratorPosition::TrimHorizon());
  REQUIRE(it.ok());
  auto page = (*local)->GetRecords(*it, 10);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 1);
  CHECK(page->records[0].data == "from the environment");

  SECTION("explicit keys come first in the chain: other keys are refused by the endpoint") {
    kinlet::remote::CredentialsOptions explicit_keys;
    explicit_keys.access_key_id = kKeyId;
    explicit_keys.secret_access_key = "not-the-secret";
    auto wrong = DefaultRemoteOptions({}, explicit_keys);
    REQUIRE(wrong.ok());
    auto other = RemoteRegistry::Create(*wrong);
    REQUIRE(other.ok());
    auto refused = (*other)->GetStream("configured");
    REQUIRE_FALSE(refused.ok());
    CHECK(kinlet::wire::ErrorTypeOf(refused.status()) == "InvalidSignatureException");
  }
  gateway->Stop();
}

TEST_CASE("DefaultRemoteOptions: a profile's region and endpoint from the shared files",
          "[remote]") {
  kinlet_test::ScopedAwsEnv env;
  env.Write(".aws/config",
            "[profile staging]\nregion = ap-south-1\nendpoint_url = http://127.0.0.1:9\n");
  kinlet::remote::RemoteConfigOptions config;
  config.profile = "staging";
  auto options = DefaultRemoteOptions(config);
  REQUIRE(options.ok());
  CHECK(options->region == "ap-south-1");
  CHECK(options->endpoint == "http://127.0.0.1:9");
}

TEST_CASE("DefaultRemoteOptions: no region anywhere is a clear error", "[remote]") {
  kinlet_test::ScopedAwsEnv env;
  auto options = DefaultRemoteOptions();
  REQUIRE_FALSE(options.ok());
  CHECK(kinlet::IsInvalidArgument(options.status()));
  CHECK_THAT(std::string(options.status().message()), Catch::Matchers::Contains("region"));
}
