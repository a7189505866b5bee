// Tests of kinlet/remote/config.hpp: the AWS shared file format, profile
// lookup across both files, and the region / endpoint precedence of the SDKs,
// with their errors. Every test runs in a clean environment (ScopedAwsEnv:
// temporary HOME, AWS_* saved, cleared and restored).
#include "kinlet/remote/config.hpp"

#include <catch2/catch.hpp>

#include "kinlet/errors.hpp"
#include "remote/aws_env.hpp"

namespace {

using kinlet::remote::RemoteConfigOptions;
using kinlet::remote::ResolveRemoteConfig;

TEST_CASE("The INI parser reads sections, comments and sub-properties", "[remote][config]") {
  auto file = kinlet::remote::ParseIniFile(
      "# comment\n"
      "; another\n"
      "[default]\n"
      "Region = eu-west-1   # trailing comment\n"
      "aws_secret_access_key=abc/def+ghi\r\n"
      "\n"
      "[profile dev]  ; comment\n"
      "s3 =\n"
      "  max_concurrent_requests = 10\n"
      "  addressing_style = path\n"
      "output = json\n"
      "[services local]\n"
      "kinesis =\n"
      "\tendpoint_url = http://127.0.0.1:4567\n",
      "test.ini");
  REQUIRE(file.ok());
  CHECK(file->sections.at("default").at("region") == "eu-west-1");
  CHECK(file->sections.at("default").at("aws_secret_access_key") == "abc/def+ghi");
  CHECK(file->sections.at("profile dev").at("s3.max_concurrent_requests") == "10");
  CHECK(file->sections.at("profile dev").at("s3.addressing_style") == "path");
  CHECK(file->sections.at("profile dev").at("output") == "json");
  CHECK(file->sections.at("services local").at("kinesis.endpoint_url") == "http://127.0.0.1:4567");
}

TEST_CASE("The INI parser names the file and line of a bad line", "[remote][config]") {
  for (const char* text : {"key = value\n", "[default]\njust words\n", "[default\n",
                           "[default]\n  indented = orphan\n", "[]\n", "[default]\n= v\n"}) {
    auto file = kinlet::remote::ParseIniFile(text, "/some/config");
    INFO(text);
    REQUIRE_FALSE(file.ok());
    CHECK(kinlet::IsInvalidArgument(file.status()));
    CHECK(file.status().message().find("/some/config line ") != std::string_view::npos);
  }
  auto second = kinlet::remote::ParseIniFile("[a]\nk = v\nbroken\n", "f");
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message().find("line 3") != std::string_view::npos);
}

TEST_CASE("Region: options, then AWS_REGION, AWS_DEFAULT_REGION, then the profile",
          "[remote][config]") {
  kinlet_test::ScopedAwsEnv env;
  env.Write(".aws/config",
            "[default]\nregion = eu-central-1\n[profile other]\nregion = ap-south-1\n");
  auto config = ResolveRemoteConfig({});
  REQUIRE(config.ok());
  CHECK(config->region == "eu-central-1");
  CHECK(config->profile == "default");
  CHECK(config->endpoint == "https://kinesis.eu-central-1.amazonaws.com");

  env.Set("AWS_PROFILE", "other");
  config = ResolveRemoteConfig({});
  REQUIRE(config.ok());
  CHECK(config->region == "ap-south-1");
  CHECK(config->profile == "other");

  env.Set("AWS_DEFAULT_REGION", "us-west-1");
  config = ResolveRemoteConfig({});
  REQUIRE(config.ok());
  CHECK(config->region == "us-west-1");
  CHECK(config->region_source == "AWS_DEFAULT_REGION");

  env.Set("AWS_REGION", "us-east-2");
  config = ResolveRemoteConfig({});
  REQUIRE(config.ok());
  CHECK(config->region == "us-east-2");

  RemoteConfigOptions options;
  options.region = "sa-east-1";
  config = ResolveRemoteConfig(options);
  REQUIRE(config.ok());
  CHECK(config->region == "sa-east-1");
  CHECK(config->region_source == "options");
  CHECK(config->endpoint == "https://kinesis.sa-east-1.amazonaws.com");

  options.region = "cn-north-1";
  config = ResolveRemoteConfig(options);
  REQUIRE(config.ok());
  CHECK(config->endpoint == "https://kinesis.cn-north-1.amazonaws.com.cn");
}

TEST_CASE("Endpoint: options, AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, services, profile",
          "[remote][config]") {
  kinlet_test::ScopedAwsEnv env;
  env.Write(".aws/config",
            "[default]\n"
            "region = eu-west-1\n"
            "endpoint_url = http://127.0.0.1:1001\n"
            "[profile svc]\n"
            "region = eu-west-1\n"
            "endpoint_url = http://127.0.0.1:1001\n"
            "services = local\n"
            "[services local]\n"
            "dynamodb =\n"
            "  endpoint_url = http://127.0.0.1:9999\n"
            "kinesis =\n"
            "  endpoint_url = http://127.0.0.1:1002/\n");
  auto config = ResolveRemoteConfig({});
  REQUIRE(config.ok());
  CHECK(config->endpoint == "http://127.0.0.1:1001");

  RemoteConfigOptions svc;
  svc.profile = "svc";
  config = ResolveRemoteConfig(svc);
  REQUIRE(config.ok());
  CHECK(config->endpoint == "http://127.0.0.1:1002");  // trailing '/' dropped

  env.Set("AWS_ENDPOINT_URL", "http://127.0.0.1:1003");
  config = ResolveRemoteConfig(svc);
  REQUIRE(config.ok());
  CHECK(config->endpoint == "http://127.0.0.1:1003");

  env.Set("AWS_ENDPOINT_URL_KINESIS", "https://localhost:1004");
  config = ResolveRemoteConfig(svc);
  REQUIRE(config.ok());
  CHECK(config->endpoint == "https://localhost:1004");
  CHECK(config->endpoint_source == "AWS_ENDPOINT_URL_KINESIS");

  svc.endpoint = "http://[::1]:1005";
  config = ResolveRemoteConfig(svc);
  REQUIRE(config.ok());
  CHECK(config->endpoint == "http://[::1]:1005");

  // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS skips environment and files, not options.
  env.Set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true");
  config = ResolveRemoteConfig(svc);
  REQUIRE(config.ok());
  CHECK(config->endpoint == "http://[::1]:1005");
  svc.endpoint.clear();
  config = ResolveRemoteConfig(svc);
  REQUIRE(config.ok());
  CHECK(config->endpoint == "https://kinesis.eu-west-1.amazonaws.com");
}

TEST_CASE("AWS_CONFIG_FILE and a [profile default] section are honoured", "[remote][config]") {
  kinlet_test::ScopedAwsEnv env;
  env.Write(".aws/config", "[default]\nregion = eu-west-1\n");
  const std::string path = env.Write("elsewhere/cfg",
                                     "[default]\nregion = us-west-2\n"
                                     "[profile default]\nregion = eu-north-1\n");
  env.Set("AWS_CONFIG_FILE", path);
  auto config = ResolveRemoteConfig({});
  REQUIRE(config.ok());
  CHECK(config->region == "eu-north-1");
}

TEST_CASE("Configuration errors say what is wrong and where it came from", "[remote][config]") {
  kinlet_test::ScopedAwsEnv env;
  SECTION("no region anywhere") {
    auto config = ResolveRemoteConfig({});
    REQUIRE_FALSE(config.ok());
    CHECK(kinlet::IsInvalidArgument(config.status()));
    CHECK(config.status().message().find("No AWS region") != std::string_view::npos);
    CHECK(config.status().message().find("AWS_REGION") != std::string_view::npos);
  }
  SECTION("a region that is not one") {
    RemoteConfigOptions options;
    options.region = "eu west/1";
    auto config = ResolveRemoteConfig(options);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message().find("eu west/1") != std::string_view::npos);
  }
  SECTION("an endpoint that is not http(s)") {
    env.Set("AWS_REGION", "eu-west-1");
    env.Set("AWS_ENDPOINT_URL", "ftp://127.0.0.1");
    auto config = ResolveRemoteConfig({});
    REQUIRE_FALSE(config.ok());
    CHECK(kinlet::IsInvalidArgument(config.status()));
    CHECK(config.status().message().find("AWS_ENDPOINT_URL") != std::string_view::npos);
    env.Set("AWS_ENDPOINT_URL", "http://");
    config = ResolveRemoteConfig({});
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message().find("no valid host") != std::string_view::npos);
  }
  SECTION("a profile named explicitly that does not exist") {
    env.Set("AWS_REGION", "eu-west-1");
    env.Set("AWS_PROFILE", "missing");
    auto config = ResolveRemoteConfig({});
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().message().find("'missing'") != std::string_view::npos);
    CHECK(config.status().message().find("AWS_PROFILE") != std::string_view::npos);
  }
  SECTION("a config file that does not parse") {
    env.Set("AWS_REGION", "eu-west-1");
    env.Write(".aws/config", "[default]\nthis is not ini\n");
    auto config = ResolveRemoteConfig({});
    REQUIRE_FALSE(config.ok());
    CHECK(kinlet::IsInvalidArgument(config.status()));
    CHECK(config.status().message().find(".aws/config line 2") != std::string_view::npos);
  }
}

TEST_CASE("A profile is looked up in both files, the credentials file first", "[remote][config]") {
  kinlet_test::ScopedAwsEnv env;
  env.Write(".aws/config", "[profile p]\nregion = eu-west-1\naws_access_key_id = FROMCONFIG\n");
  env.Write(".aws/credentials", "[p]\naws_access_key_id = FROMCREDS\n[profile p]\nx = y\n");
  auto profile = kinlet::remote::LoadAwsProfile("p");
  REQUIRE(profile.ok());
  CHECK(profile->in_config);
  CHECK(profile->in_credentials);
  REQUIRE(profile->Get("aws_access_key_id") != nullptr);
  CHECK(*profile->Get("aws_access_key_id") == "FROMCREDS");
  REQUIRE(profile->Get("region") != nullptr);
  CHECK(profile->Get("x") == nullptr);  // "[profile p]" is not "p" in the credentials file
  auto missing = kinlet::remote::LoadAwsProfile("nope");
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->found());
}

}  // namespace
