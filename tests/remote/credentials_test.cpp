// Tests of kinlet/remote/credentials.hpp: the chain's order (explicit keys,
// environment, shared files, container, instance metadata), the container and
// IMDSv2 sources against fake services on 127.0.0.1 (kinlet::gateway's
// HttpServer, port 0) — token flow, authorization, expiry and refresh, errors,
// a server that is down — and the refreshing cache's behaviour under a manual
// clock and concurrent callers. Every test runs in a clean environment
// (ScopedAwsEnv) with AWS_EC2_METADATA_DISABLED=true unless it points the
// metadata endpoint at its own server: nothing but 127.0.0.1 is contacted.
#include "kinlet/remote/credentials.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "kinlet/errors.hpp"
#include "kinlet/gateway/http_server.hpp"
#include "remote/aws_env.hpp"

namespace {

using kinlet::remote::CredentialsOptions;
using kinlet::remote::DefaultCredentialsChain;
using kinlet::wire::HttpRequest;
using kinlet::wire::HttpResponse;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

std::string Iso(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string CredentialsJson(const std::string& key, absl::Time expiration,
                            const std::string& extra = "") {
  return absl::StrCat(R"({)", extra, R"("AccessKeyId":")", key, R"(","SecretAccessKey":"secret-)",
                      key, R"(","Token":"token-)", key, R"(","Expiration":")", Iso(expiration),
                      R"("})");
}

// A fake container/metadata service: answers with `respond`, records every
// request ("METHOD target").
class FakeService {
 public:
  using Responder = std::function<HttpResponse(const HttpRequest&)>;
  explicit FakeService(Responder respond) : respond_(std::move(respond)) {
    kinlet::gateway::HttpServerOptions options;
    options.bind_address = "127.0.0.1";
    options.port = 0;
    options.threads = 1;
    auto server = kinlet::gateway::HttpServer::Start(options, [this](HttpRequest& request) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(request);
      }
      std::lock_guard<std::mutex> lock(respond_mu_);
      return respond_(request);
    });
    REQUIRE(server.ok());
    server_ = std::move(*server);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", server_->port()); }
  std::vector<HttpRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  void set_responder(Responder respond) {
    std::lock_guard<std::mutex> lock(respond_mu_);
    respond_ = std::move(respond);
  }
  void Stop() { server_->Stop(); }

 private:
  std::mutex respond_mu_;
  Responder respond_;
  std::mutex mu_;
  std::vector<HttpRequest> requests_;
  std::unique_ptr<kinlet::gateway::HttpServer> server_;
};

HttpResponse Answer(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// A port that nothing listens on: a server's, after it stopped.
std::string DeadUrl() {
  FakeService service([](const HttpRequest&) { return Answer(200, ""); });
  std::string url = service.url();
  service.Stop();
  return url;
}

// IMDSv2 as EC2 serves it: a token from PUT, then role and credentials only
// with that token.
struct FakeImds {
  std::atomic<int> key_version{1};
  std::atomic<int64_t> expiration_unix{absl::ToUnixSeconds(kT0 + absl::Hours(6))};
  std::string role = "my-role";
  HttpResponse operator()(const HttpRequest& request) const {
    const std::string* ttl = request.FindHeader("x-aws-ec2-metadata-token-ttl-seconds");
    const std::string* token = request.FindHeader("x-aws-ec2-metadata-token");
    if (request.target == "/latest/api/token") {
      if (request.method != "PUT" || ttl == nullptr) return Answer(400, "");
      return Answer(200, "TOKEN-" + *ttl);
    }
    if (token == nullptr || *token != "TOKEN-21600") return Answer(401, "");
    if (request.method != "GET") return Answer(405, "");
    if (request.target == "/latest/meta-data/iam/security-credentials/") {
      return role.empty() ? Answer(404, "") : Answer(200, role + "\n");
    }
    if (request.target == "/latest/meta-data/iam/security-credentials/" + role) {
      return Answer(200, CredentialsJson(absl::StrCat("IMDS", key_version.load()),
                                         absl::FromUnixSeconds(expiration_unix.load()),
                                         R"("Code":"Success","Type":"AWS-HMAC",)"));
    }
    return Answer(404, "");
  }
};

// A thread-safe manual clock.
struct ManualTime {
  std::atomic<int64_t> seconds{absl::ToUnixSeconds(kT0)};
  std::function<absl::Time()> Clock() {
    return [this] { return absl::FromUnixSeconds(seconds.load()); };
  }
  void Advance(absl::Duration d) { seconds += absl::ToInt64Seconds(d); }
};

TEST_CASE("The chain prefers explicit keys, then the environment, then the files",
          "[remote][credentials]") {
  kinlet_test::ScopedAwsEnv env;
  env.Write(".aws/credentials",
            "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = FILESECRET\n");
  env.Set("AWS_ACCESS_KEY_ID", "ENVKEY");
  env.Set("AWS_SECRET_ACCESS_KEY", "ENVSECRET");
  env.Set("AWS_SESSION_TOKEN", "ENVTOKEN");

  CredentialsOptions explicit_options;
  explicit_options.access_key_id = "OPTKEY";
  explicit_options.secret_access_key = "OPTSECRET";
  DefaultCredentialsChain with_options(explicit_options);
  auto c = with_options.GetCredentials();
  REQUIRE(c.ok());
  CHECK(c->access_key_id == "OPTKEY");
  CHECK(c->session_token.empty());
  CHECK(with_options.source() == "options");

  DefaultCredentialsChain from_env;
  c = from_env.GetCredentials();
  REQUIRE(c.ok());
  CHECK(c->access_key_id == "ENVKEY");
  CHECK(c->secret_access_key == "ENVSECRET");
  CHECK(c->session_token == "ENVTOKEN");
  CHECK(from_env.source() == "environment");

  env.Unset("AWS_ACCESS_KEY_ID");  // half the keys: the environment is skipped
  DefaultCredentialsChain from_file;
  c = from_file.GetCredentials();
  REQUIRE(c.ok());
  CHECK(c->access_key_id == "FILEKEY");
  CHECK(c->session_token.empty());
  CHECK(from_file.source() == "profile default");

  CredentialsOptions half;
  half.access_key_id = "ONLYKEY";
  auto bad = DefaultCredentialsChain(half).GetCredentials();
  REQUIRE_FALSE(bad.ok());
  CHECK(kinlet::IsInvalidArgument(bad.status()));
}

TEST_CASE("Profiles come from both files, AWS_PROFILE and the file variables",
          "[remote][credentials]") {
  kinlet_test::ScopedAwsEnv env;
  const std::string config = env.Write("cfg/config",
                                       "[profile dev]\n"
                                       "aws_access_key_id = CFGKEY\n"
                                       "aws_secret_access_key = CFGSECRET\n"
                                       "aws_session_token = CFGTOKEN\n"
                                       "[profile both]\n"
                                       "aws_access_key_id = CFGBOTH\n"
                                       "aws_secret_access_key = CFGBOTHSECRET\n"
                                       "[profile assume]\n"
                                       "role_arn = arn:aws:iam::123456789012:role/x\n"
                                       "source_profile = dev\n");
  const std::string creds = env.Write("cfg/credentials",
                                      "[both]\n"
                                      "aws_access_key_id = CREDBOTH\n"
                                      "aws_secret_access_key = CREDBOTHSECRET\n");
  env.Set("AWS_CONFIG_FILE", config);
  env.Set("AWS_SHARED_CREDENTIALS_FILE", creds);

  env.Set("AWS_PROFILE", "dev");
  auto c = DefaultCredentialsChain().GetCredentials();
  REQUIRE(c.ok());
  CHECK(c->access_key_id == "CFGKEY");
  CHECK(c->session_token == "CFGTOKEN");

  CredentialsOptions options;
  options.profile = "both";  // beats AWS_PROFILE; the credentials file beats the config file
  c = DefaultCredentialsChain(options).GetCredentials();
  REQUIRE(c.ok());
  CHECK(c->access_key_id == "CREDBOTH");
  CHECK(c->secret_access_key == "CREDBOTHSECRET");

  env.Set("AWS_PROFILE", "assume");
  c = DefaultCredentialsChain().GetCredentials();
  REQUIRE_FALSE(c.ok());
  CHECK(absl::IsUnauthenticated(c.status()));
  CHECK(c.status().message().find("role_arn") != std::string_view::npos);
  CHECK(c.status().message().find("does not support") != std::string_view::npos);
}

TEST_CASE("With no source the chain says what it tried", "[remote][credentials]") {
  kinlet_test::ScopedAwsEnv env;  // AWS_EC2_METADATA_DISABLED=true
  DefaultCredentialsChain chain;
  auto c = chain.GetCredentials();
  REQUIRE_FALSE(c.ok());
  CHECK(absl::IsUnauthenticated(c.status()));
  for (const char* part :
       {"AWS_ACCESS_KEY_ID", "profile 'default'", "container", "AWS_EC2_METADATA_DISABLED"}) {
    INFO(part);
    CHECK(c.status().message().find(part) != std::string_view::npos);
  }
  CHECK(chain.source().empty());

  // A shared file that does not parse is an error of its own, not "nothing found".
  env.Write(".aws/credentials", "[default]\nnot a property\n");
  c = DefaultCredentialsChain().GetCredentials();
  REQUIRE_FALSE(c.ok());
  CHECK(kinlet::IsInvalidArgument(c.status()));
}

TEST_CASE("Container credentials: relative URI, authorization token, full URI",
          "[remote][credentials]") {
  kinlet_test::ScopedAwsEnv env;
  FakeService service([](const HttpRequest& request) {
    const std::string* auth = request.FindHeader("authorization");
    if (request.target == "/v2/credentials/abc") {
      return Answer(200, CredentialsJson("ECS", kT0 + absl::Hours(6)));
    }
    if (request.target == "/full" && auth != nullptr && *auth == "Bearer s3cret") {
      return Answer(200, CredentialsJson("EKS", kT0 + absl::Hours(6)));
    }
    return Answer(auth == nullptr ? 401 : 403, R"({"message":"denied"})");
  });
  CredentialsOptions options;
  options.container_host_for_testing = service.url();
  options.clock = [] { return kT0; };

  SECTION("relative URI against the (overridden) ECS agent address") {
    env.Set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc");
    DefaultCredentialsChain chain(options);
    auto c = chain.GetCredentials();
    REQUIRE(c.ok());
    CHECK(c->access_key_id == "ECS");
    CHECK(c->secret_access_key == "secret-ECS");
    CHECK(c->session_token == "token-ECS");
    CHECK(chain.source() == "container");
    auto direct = kinlet::remote::FetchContainerCredentials(options);
    REQUIRE(direct.ok());
    CHECK(direct->expiration == kT0 + absl::Hours(6));
  }
  SECTION("full URI with a token from the environment and from a file") {
    env.Set("AWS_CONTAINER_CREDENTIALS_FULL_URI", service.url() + "/full");
    env.Set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer s3cret");
    auto c = kinlet::remote::FetchContainerCredentials(options);
    REQUIRE(c.ok());
    CHECK(c->credentials.access_key_id == "EKS");

    env.Set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", env.Write("token", "Bearer s3cret\n"));
    env.Set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong");  // the file wins
    c = kinlet::remote::FetchContainerCredentials(options);
    REQUIRE(c.ok());

    env.Set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", env.Write("token", "Bearer nope"));
    c = kinlet::remote::FetchContainerCredentials(options);
    REQUIRE_FALSE(c.ok());
    CHECK(absl::IsUnavailable(c.status()));
    CHECK(c.status().message().find("HTTP 403") != std::string_view::npos);

    env.Set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", env.Write("token", "a\nb"));
    c = kinlet::remote::FetchContainerCredentials(options);
    REQUIRE_FALSE(c.ok());
    CHECK(kinlet::IsInvalidArgument(c.status()));
  }
  SECTION("a full URI over plain http to a non-loopback host is refused without contact") {
    env.Set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.10/creds");
    auto c = kinlet::remote::FetchContainerCredentials(options);
    REQUIRE_FALSE(c.ok());
    CHECK(kinlet::IsInvalidArgument(c.status()));
    CHECK(c.status().message().find("loopback") != std::string_view::npos);
    CHECK(service.requests().empty());
  }
}

TEST_CASE("Container credentials: bad answers and a server that is down", "[remote][credentials]") {
  kinlet_test::ScopedAwsEnv env;
  env.Set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds");
  CredentialsOptions options;
  for (const char* body : {"not json", R"({"AccessKeyId":"A"})",
                           R"({"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"soon"})"}) {
    FakeService service([body](const HttpRequest&) { return Answer(200, body); });
    options.container_host_for_testing = service.url();
    auto c = kinlet::remote::FetchContainerCredentials(options);
    INFO(body);
    REQUIRE_FALSE(c.ok());
    CHECK(absl::IsUnavailable(c.status()));
  }

  options.container_host_for_testing = DeadUrl();
  auto c = kinlet::remote::FetchContainerCredentials(options);
  REQUIRE_FALSE(c.ok());
  CHECK(absl::IsUnavailable(c.status()));
  CHECK(c.status().message().find("container") != std::string_view::npos);

  // The chain reports the unreachable source as kUnavailable, not "no credentials".
  auto chain = DefaultCredentialsChain(options).GetCredentials();
  REQUIRE_FALSE(chain.ok());
  CHECK(absl::IsUnavailable(chain.status()));
}

TEST_CASE("IMDSv2: token first, then role and credentials with the token",
          "[remote][credentials]") {
  kinlet_test::ScopedAwsEnv env;
  FakeImds imds;
  FakeService service([&imds](const HttpRequest& r) { return imds(r); });
  env.Unset("AWS_EC2_METADATA_DISABLED");
  env.Set("AWS_EC2_METADATA_SERVICE_ENDPOINT", service.url() + "/");
  // Proxies configured for the process are not used for the metadata service.
  const std::string dead = DeadUrl();
  for (const char* proxy : {"http_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"}) {
    env.Set(proxy, dead);
  }
  env.Set("no_proxy", "");
  env.Set("NO_PROXY", "");
  CredentialsOptions options;
  options.clock = [] { return kT0; };
  DefaultCredentialsChain chain(options);
  auto c = chain.GetCredentials();
  REQUIRE(c.ok());
  CHECK(c->access_key_id == "IMDS1");
  CHECK(c->session_token == "token-IMDS1");
  CHECK(chain.source() == "instance metadata");

  std::vector<HttpRequest> requests = service.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].method == "PUT");
  CHECK(requests[0].target == "/latest/api/token");
  REQUIRE(requests[0].FindHeader("x-aws-ec2-metadata-token-ttl-seconds") != nullptr);
  CHECK(requests[1].target == "/latest/meta-data/iam/security-credentials/");
  CHECK(requests[2].target == "/latest/meta-data/iam/security-credentials/my-role");
  for (size_t i = 1; i < 3; ++i) {
    REQUIRE(requests[i].FindHeader("x-aws-ec2-metadata-token") != nullptr);
    CHECK(*requests[i].FindHeader("x-aws-ec2-metadata-token") == "TOKEN-21600");
  }
  // Cached: no more requests while the credentials are fresh.
  REQUIRE(chain.GetCredentials().ok());
  CHECK(service.requests().size() == 3);
}

TEST_CASE("IMDSv2 errors: disabled, no role, failure code, retry, down", "[remote][credentials]") {
  kinlet_test::ScopedAwsEnv env;
  CredentialsOptions options;
  SECTION("AWS_EC2_METADATA_DISABLED=true skips the service") {
    FakeImds imds;
    FakeService service([&imds](const HttpRequest& r) { return imds(r); });
    env.Set("AWS_EC2_METADATA_SERVICE_ENDPOINT", service.url());
    env.Set("AWS_EC2_METADATA_DISABLED", "TRUE");
    auto c = kinlet::remote::FetchInstanceMetadataCredentials(options);
    REQUIRE_FALSE(c.ok());
    CHECK(absl::IsUnauthenticated(c.status()));
    CHECK(service.requests().empty());
  }
  env.Unset("AWS_EC2_METADATA_DISABLED");
  SECTION("an instance without a role") {
    FakeImds imds;
    imds.role.clear();
    FakeService service([&imds](const HttpRequest& r) { return imds(r); });
    env.Set("AWS_EC2_METADATA_SERVICE_ENDPOINT", service.url());
    auto c = kinlet::remote::FetchInstanceMetadataCredentials(options);
    REQUIRE_FALSE(c.ok());
    CHECK(absl::IsUnauthenticated(c.status()));
    CHECK(c.status().message().find("no IAM role") != std::string_view::npos);
  }
  SECTION("a credentials document with a failure code") {
    FakeService service([](const HttpRequest& r) {
      if (r.target == "/latest/api/token") return Answer(200, "T");
      if (r.target.ends_with("/")) return Answer(200, "role");
      return Answer(200, R"({"Code":"AssumeRoleUnauthorizedAccess","Message":"nope"})");
    });
    env.Set("AWS_EC2_METADATA_SERVICE_ENDPOINT", service.url());
    auto c = kinlet::remote::FetchInstanceMetadataCredentials(options);
    REQUIRE_FALSE(c.ok());
    CHECK(absl::IsUnavailable(c.status()));
    CHECK(c.status().message().find("AssumeRoleUnauthorizedAccess") != std::string_view::npos);
  }
  SECTION("one 5xx answer is retried once") {
    FakeImds imds;
    std::atomic<int> failures{1};
    FakeService service([&](const HttpRequest& r) {
      if (r.target == "/latest/api/token" && failures.fetch_sub(1) > 0) return Answer(503, "");
      return imds(r);
    });
    env.Set("AWS_EC2_METADATA_SERVICE_ENDPOINT", service.url());
    auto c = kinlet::remote::FetchInstanceMetadataCredentials(options);
    REQUIRE(c.ok());
    CHECK(service.requests().size() == 4);

    failures = 2;  // two in a row: the one retry is not enough
    c = kinlet::remote::FetchInstanceMetadataCredentials(options);
    REQUIRE_FALSE(c.ok());
    CHECK(absl::IsUnavailable(c.status()));
    CHECK(c.status().message().find("HTTP 503") != std::string_view::npos);
  }
  SECTION("an unknown endpoint mode") {
    env.Set("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv5");
    auto c = kinlet::remote::FetchInstanceMetadataCredentials(options);
    REQUIRE_FALSE(c.ok());
    CHECK(kinlet::IsInvalidArgument(c.status()));
    CHECK(c.status().message().find("IPv5") != std::string_view::npos);
  }
  SECTION("a service that is down") {
    env.Set("AWS_EC2_METADATA_SERVICE_ENDPOINT", DeadUrl());
    auto c = kinlet::remote::FetchInstanceMetadataCredentials(options);
    REQUIRE_FALSE(c.ok());
    CHECK(absl::IsUnavailable(c.status()));
    auto chain = DefaultCredentialsChain(options).GetCredentials();
    REQUIRE_FALSE(chain.ok());
    CHECK(absl::IsUnavailable(chain.status()));
  }
}

TEST_CASE("Instance credentials are refreshed 5 minutes before they expire",
          "[remote][credentials]") {
  kinlet_test::ScopedAwsEnv env;
  env.Unset("AWS_EC2_METADATA_DISABLED");
  FakeImds imds;
  imds.expiration_unix = absl::ToUnixSeconds(kT0 + absl::Hours(1));
  FakeService service([&imds](const HttpRequest& r) { return imds(r); });
  env.Set("AWS_EC2_METADATA_SERVICE_ENDPOINT", service.url());
  ManualTime time;
  CredentialsOptions options;
  options.clock = time.Clock();
  DefaultCredentialsChain chain(options);

  REQUIRE(chain.GetCredentials()->access_key_id == "IMDS1");
  imds.key_version = 2;
  imds.expiration_unix = absl::ToUnixSeconds(kT0 + absl::Hours(2));
  time.Advance(absl::Minutes(54));  // 6 minutes left: still fresh
  CHECK(chain.GetCredentials()->access_key_id == "IMDS1");
  time.Advance(absl::Minutes(2));  // 4 minutes left: refreshed
  CHECK(chain.GetCredentials()->access_key_id == "IMDS2");
  CHECK(service.requests().size() == 6);

  // The service goes down: the cached credentials serve until they expire,
  // then the error comes through.
  service.Stop();
  time.Advance(absl::Minutes(60));  // 4 minutes before the second expiry
  auto c = chain.GetCredentials();
  REQUIRE(c.ok());
  CHECK(c->access_key_id == "IMDS2");
  time.Advance(absl::Minutes(5));  // expired
  c = chain.GetCredentials();
  REQUIRE_FALSE(c.ok());
  CHECK(absl::IsUnavailable(c.status()));
}

TEST_CASE("Concurrent callers do not stampede a refresh", "[remote][credentials]") {
  ManualTime time;
  CredentialsOptions options;
  options.clock = time.Clock();
  std::atomic<int> calls{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> block{false};
  kinlet::remote::RefreshingCredentialsProvider provider(
      [&]() -> absl::StatusOr<kinlet::remote::TimedCredentials> {
        const int n = ++calls;
        if (block.load()) released.wait();
        kinlet::remote::TimedCredentials t;
        t.credentials = {absl::StrCat("K", n), "S", "T"};
        t.expiration = time.Clock()() + absl::Hours(1);
        return t;
      },
      options);

  SECTION("nothing cached: many callers, one fetch") {
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&] { ok += provider.GetCredentials().ok(); });
    }
    for (auto& t : threads) t.join();
    CHECK(ok == 8);
    CHECK(calls == 1);
    CHECK(provider.fetch_count() == 1);
  }
  SECTION("in the refresh window: one caller refreshes, the others get the cached ones") {
    REQUIRE(provider.GetCredentials()->access_key_id == "K1");
    time.Advance(absl::Minutes(57));
    block = true;
    auto refresher = std::async(std::launch::async, [&] { return provider.GetCredentials(); });
    while (calls.load() < 2) std::this_thread::yield();  // the refresh is under way
    for (int i = 0; i < 4; ++i) {
      auto other = std::async(std::launch::async, [&] { return provider.GetCredentials(); });
      // Answered while the refresh is still blocked: from the cache.
      REQUIRE(other.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
      CHECK(other.get()->access_key_id == "K1");
    }
    CHECK(calls == 2);
    release.set_value();
    CHECK(refresher.get()->access_key_id == "K2");
    CHECK(provider.GetCredentials()->access_key_id == "K2");
    CHECK(calls == 2);
  }
  if (block.load() == false) release.set_value();
}

TEST_CASE("A failed refresh keeps valid credentials and is not retried on every call",
          "[remote][credentials]") {
  ManualTime time;
  CredentialsOptions options;
  options.clock = time.Clock();
  std::atomic<int> calls{0};
  std::atomic<bool> fail{false};
  kinlet::remote::RefreshingCredentialsProvider provider(
      [&]() -> absl::StatusOr<kinlet::remote::TimedCredentials> {
        ++calls;
        if (fail) return absl::UnavailableError("service down");
        kinlet::remote::TimedCredentials t;
        t.credentials = {"K", "S", "T"};
        t.expiration = kT0 + absl::Hours(1);
        return t;
      },
      options);
  REQUIRE(provider.GetCredentials().ok());
  fail = true;
  time.Advance(absl::Minutes(58));
  CHECK(provider.GetCredentials().ok());  // refresh failed, cached still valid
  CHECK(provider.GetCredentials().ok());  // within the retry interval: no new fetch
  CHECK(calls == 2);
  time.Advance(absl::Seconds(11));
  CHECK(provider.GetCredentials().ok());
  CHECK(calls == 3);
  time.Advance(absl::Minutes(2));  // expired
  auto c = provider.GetCredentials();
  REQUIRE_FALSE(c.ok());
  CHECK(absl::IsUnavailable(c.status()));
}

}  // namespace
