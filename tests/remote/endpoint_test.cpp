// The scenario suite (endpoint_scenario.hpp) against an endpoint another
// program serves: kinesalite or kinesis-mock, started on 127.0.0.1 by
// tests/remote/endpoint_driver.py (the ctest entries remote_endpoint_kinesalite
// and remote_endpoint_kinesis_mock), which passes
//   KINLET_TEST_ENDPOINT          http(s)://127.0.0.1:<port>
//   KINLET_TEST_ENDPOINT_PROFILE  kinesalite | kinesis-mock (endpoint_profile.hpp)
// and runs `kinlet_remote_tests "[endpoint]"`. Hidden ([.]): ctest's discovery
// of kinlet_remote_tests does not list them, and run without the variables
// they fail (never pass empty).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "endpoint_scenario.hpp"

namespace {

using kinlet::remote::RemoteRegistry;
using kinlet::remote::testing::EndpointProfile;

struct External {
  std::string endpoint;
  EndpointProfile profile;
};

External FromEnvironment() {
  const char* endpoint = std::getenv("KINLET_TEST_ENDPOINT");
  const char* profile = std::getenv("KINLET_TEST_ENDPOINT_PROFILE");
  INFO(
      "run through tests/remote/endpoint_driver.py (ctest -L remote -R remote_endpoint_): "
      "KINLET_TEST_ENDPOINT and KINLET_TEST_ENDPOINT_PROFILE must be set");
  REQUIRE(endpoint != nullptr);
  REQUIRE(profile != nullptr);
  auto p = kinlet::remote::testing::ProfileNamed(profile);
  INFO("unknown KINLET_TEST_ENDPOINT_PROFILE " << profile);
  REQUIRE(p.has_value());
  const std::string e(endpoint);
  // Never anything but this machine's loopback.
  REQUIRE((e.rfind("http://127.0.0.1:", 0) == 0 || e.rfind("https://127.0.0.1:", 0) == 0));
  return {e, *p};
}

std::unique_ptr<RemoteRegistry> Open(const External& x) {
  auto registry =
      RemoteRegistry::Create(kinlet::remote::testing::OptionsFor(x.endpoint, x.profile));
  REQUIRE(registry.ok());
  return std::move(*registry);
}

}  // namespace

TEST_CASE("RemoteStream scenario suite against an external endpoint", "[.][endpoint]") {
  const External x = FromEnvironment();
  auto remote = Open(x);
  kinlet::remote::testing::RunScenario(*remote, x.profile, nullptr, "ext");
}

TEST_CASE("RemoteStream on closed shards against an external endpoint", "[.][endpoint]") {
  const External x = FromEnvironment();
  auto remote = Open(x);
  kinlet::remote::testing::RunClosedShardQuirks(*remote, x.profile, "ext");
}

TEST_CASE("RemoteStream SubscribeToShard against an external endpoint", "[.][endpoint]") {
  const External x = FromEnvironment();
  auto remote = Open(x);
  kinlet::remote::testing::RunSubscribeScenario(*remote, x.profile, "ext");
}
