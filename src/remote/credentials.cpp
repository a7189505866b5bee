// The AWS credential sources and the default chain (kinlet/remote/credentials.hpp).
#include "kinlet/remote/credentials.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "credentials_http.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/remote/config.hpp"
#include "kinlet/wire/document.hpp"

namespace kinlet::remote {
namespace {

constexpr const char* kDefaultImdsEndpoint = "http://169.254.169.254";
constexpr const char* kDefaultImdsEndpointV6 = "http://[fd00:ec2::254]";

std::string Trimmed(std::string_view s) {
  return std::string(absl::StripAsciiWhitespace(kinlet::detail::ToAbsl(s)));
}

// One request, tried `options.http_attempts` times while the exchange fails
// or the service answers 5xx.
absl::StatusOr<detail::SimpleHttpResponse> Request(const CredentialsOptions& options,
                                                   const std::string& method,
                                                   const std::string& url,
                                                   const std::vector<std::string>& headers) {
  absl::StatusOr<detail::SimpleHttpResponse> response;
  const int attempts = options.http_attempts < 1 ? 1 : options.http_attempts;
  for (int i = 0; i < attempts; ++i) {
    response = detail::SimpleHttpRequest(method, url, headers, options.http_timeout);
    if (response.ok() && response->status < 500) break;
  }
  return response;
}

absl::Status BadAnswer(std::string_view what, const std::string& url,
                       const detail::SimpleHttpResponse& response) {
  std::string body = response.body.substr(0, 200);
  return absl::UnavailableError(absl::StrCat(kinlet::detail::ToAbsl(what), ": ", url,
                                             " answered HTTP ", response.status,
                                             body.empty() ? "" : ": ", body));
}

// The JSON document of the container and metadata services.
absl::StatusOr<TimedCredentials> ParseCredentialsDocument(std::string_view what,
                                                          const std::string& url,
                                                          const std::string& body) {
  auto bad = [&](std::string_view why) {
    return absl::UnavailableError(absl::StrCat(kinlet::detail::ToAbsl(what), ": the answer of ",
                                               url, " ", kinlet::detail::ToAbsl(why)));
  };
  absl::StatusOr<wire::Value> doc = wire::ParseJson(body);
  if (!doc.ok()) return bad(absl::StrCat("is not a JSON object: ", doc.status().message()));
  auto text = [&](std::string_view member) -> std::string {
    const wire::Value* v = doc->Find(member);
    return v != nullptr && v->kind() == wire::Value::Kind::kString ? v->str() : std::string();
  };
  if (const wire::Value* code = doc->Find("Code");
      code != nullptr && code->kind() == wire::Value::Kind::kString && code->str() != "Success") {
    return bad(absl::StrCat("has Code '", code->str(), "': ", text("Message")));
  }
  TimedCredentials out;
  out.credentials.access_key_id = text("AccessKeyId");
  out.credentials.secret_access_key = text("SecretAccessKey");
  out.credentials.session_token = text("Token");
  if (out.credentials.access_key_id.empty() || out.credentials.secret_access_key.empty()) {
    return bad("has no AccessKeyId and SecretAccessKey");
  }
  const std::string expiration = text("Expiration");
  if (!expiration.empty()) {
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, expiration, &out.expiration, &error)) {
      return bad(absl::StrCat("has an Expiration that is not an ISO 8601 time: '", expiration,
                              "' (", error, ")"));
    }
  }
  return out;
}

// The host of "scheme://host[:port]/..." ("[v6]" without brackets).
std::string HostOf(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    return close == std::string_view::npos ? "" : std::string(rest.substr(1, close - 1));
  }
  return std::string(rest.substr(0, rest.find(':')));
}

bool AllowedHttpHost(const std::string& host) {
  const std::string h = absl::AsciiStrToLower(host);
  if (h == "localhost" || h == "::1" || h == "169.254.170.2" || h == "169.254.170.23" ||
      h == "fd00:ec2::23") {
    return true;
  }
  // 127.0.0.0/8 as a dotted quad.
  int parts[4];
  char tail = 0;
  if (std::sscanf(h.c_str(), "%d.%d.%d.%d%c", &parts[0], &parts[1], &parts[2], &parts[3], &tail) !=
      4) {
    return false;
  }
  for (int p : parts) {
    if (p < 0 || p > 255) return false;
  }
  return parts[0] == 127;
}

}  // namespace

// ---------------------------------------------------------------------------
// RefreshingCredentialsProvider

RefreshingCredentialsProvider::RefreshingCredentialsProvider(CredentialsFetcher fetch,
                                                             CredentialsOptions options)
    : fetch_(std::move(fetch)), options_(std::move(options)) {}

absl::Time RefreshingCredentialsProvider::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

int RefreshingCredentialsProvider::fetch_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fetch_count_;
}

absl::StatusOr<wire::Credentials> RefreshingCredentialsProvider::GetCredentials() {
  std::unique_lock<std::mutex> lock(mu_);
  const int generation = fetch_count_;
  for (;;) {
    const absl::Time now = Now();
    const bool valid = cached_.has_value() && now < cached_->expiration;
    if (valid && (now < cached_->expiration - options_.refresh_ahead || refreshing_ ||
                  now < next_attempt_)) {
      return cached_->credentials;  // fresh, or being refreshed by another caller
    }
    if (!refreshing_) {
      // A refresh finished while we waited and left nothing valid: its error.
      if (fetch_count_ != generation && !last_error_.ok()) return last_error_;
      break;
    }
    refreshed_.wait(lock);
  }
  refreshing_ = true;
  lock.unlock();
  absl::StatusOr<TimedCredentials> fetched = fetch_();
  lock.lock();
  refreshing_ = false;
  ++fetch_count_;
  const absl::Time now = Now();
  if (fetched.ok()) {
    cached_ = *std::move(fetched);
    last_error_ = absl::OkStatus();
    // Credentials that are already due for refresh are not fetched again on
    // every call: wait the retry interval.
    next_attempt_ = now < cached_->expiration - options_.refresh_ahead
                        ? absl::InfinitePast()
                        : now + options_.refresh_retry_interval;
  } else {
    last_error_ = fetched.status();
    next_attempt_ = now + options_.refresh_retry_interval;
  }
  refreshed_.notify_all();
  if (cached_.has_value() && (fetched.ok() || now < cached_->expiration)) {
    return cached_->credentials;
  }
  return last_error_;
}

// ---------------------------------------------------------------------------
// Environment and shared files

absl::StatusOr<wire::Credentials> CredentialsFromEnvironment() {
  wire::Credentials c;
  c.access_key_id = GetEnv("AWS_ACCESS_KEY_ID");
  if (c.access_key_id.empty()) c.access_key_id = GetEnv("AWS_ACCESS_KEY");
  c.secret_access_key = GetEnv("AWS_SECRET_ACCESS_KEY");
  if (c.secret_access_key.empty()) c.secret_access_key = GetEnv("AWS_SECRET_KEY");
  c.session_token = GetEnv("AWS_SESSION_TOKEN");
  if (c.access_key_id.empty() && c.secret_access_key.empty()) {
    return absl::UnauthenticatedError(
        "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
  }
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "environment: ", c.access_key_id.empty() ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID",
        " is set but ", c.access_key_id.empty() ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
        " is not"));
  }
  return c;
}

absl::StatusOr<wire::Credentials> CredentialsFromProfile(const std::string& profile_name) {
  absl::StatusOr<AwsProfile> profile = LoadAwsProfile(profile_name);
  if (!profile.ok()) return profile.status();
  const std::string where = absl::StrCat(
      "profile '", profile_name, "' (", profile->credentials_path, ", ", profile->config_path, ")");
  if (!profile->found()) return absl::UnauthenticatedError(absl::StrCat(where, ": not found"));
  const std::string* key = profile->Get("aws_access_key_id");
  const std::string* secret = profile->Get("aws_secret_access_key");
  if (key == nullptr || key->empty() || secret == nullptr || secret->empty()) {
    std::vector<std::string> unsupported;
    for (const char* name : {"role_arn", "credential_process", "sso_session", "sso_start_url",
                             "web_identity_token_file", "credential_source"}) {
      if (profile->Get(name) != nullptr) unsupported.emplace_back(name);
    }
    return absl::UnauthenticatedError(absl::StrCat(
        where, ": no aws_access_key_id and aws_secret_access_key",
        unsupported.empty() ? ""
                            : absl::StrCat(" (it uses ", absl::StrJoin(unsupported, ", "),
                                           ", which kinlet does not support)")));
  }
  wire::Credentials c;
  c.access_key_id = *key;
  c.secret_access_key = *secret;
  if (const std::string* token = profile->Get("aws_session_token")) c.session_token = *token;
  return c;
}

// ---------------------------------------------------------------------------
// Container credentials

absl::StatusOr<TimedCredentials> FetchContainerCredentials(const CredentialsOptions& options) {
  std::string url;
  const std::string relative = GetEnv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const std::string full = GetEnv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (!relative.empty()) {
    url = options.container_host_for_testing;
    while (!url.empty() && url.back() == '/') url.pop_back();
    url += relative.front() == '/' ? relative : "/" + relative;
  } else if (!full.empty()) {
    url = full;
    const bool https = absl::StartsWithIgnoreCase(url, "https://");
    if (!https && !absl::StartsWithIgnoreCase(url, "http://")) {
      return kinlet::InvalidArgument(absl::StrCat("AWS_CONTAINER_CREDENTIALS_FULL_URI '", url,
                                                  "' is not an http:// or https:// URL"));
    }
    if (!https && !AllowedHttpHost(HostOf(url))) {
      return kinlet::InvalidArgument(
          absl::StrCat("AWS_CONTAINER_CREDENTIALS_FULL_URI '", url,
                       "': plain http is only allowed to a loopback address or the ECS/EKS agents "
                       "(169.254.170.2, 169.254.170.23, fd00:ec2::23)"));
    }
  } else {
    return absl::UnauthenticatedError(
        "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
        "AWS_CONTAINER_CREDENTIALS_FULL_URI are not set");
  }
  std::vector<std::string> headers = {"Accept: application/json"};
  std::string token;
  if (const std::string file = GetEnv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); !file.empty()) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) {
      return absl::UnavailableError(
          absl::StrCat("container: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE ", file));
    }
    token = Trimmed(text.str());
  } else {
    token = GetEnv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    return kinlet::InvalidArgument("container: the authorization token contains a line break");
  }
  if (!token.empty()) headers.push_back("Authorization: " + token);
  absl::StatusOr<detail::SimpleHttpResponse> response = Request(options, "GET", url, headers);
  if (!response.ok()) {
    return absl::UnavailableError(absl::StrCat("container: ", response.status().message()));
  }
  if (response->status != 200) return BadAnswer("container", url, *response);
  return ParseCredentialsDocument("container", url, response->body);
}

// ---------------------------------------------------------------------------
// Instance metadata (IMDSv2)

absl::StatusOr<TimedCredentials> FetchInstanceMetadataCredentials(
    const CredentialsOptions& options) {
  if (absl::EqualsIgnoreCase(Trimmed(GetEnv("AWS_EC2_METADATA_DISABLED")), "true")) {
    return absl::UnauthenticatedError(
        "instance metadata: disabled by AWS_EC2_METADATA_DISABLED=true");
  }
  std::string endpoint = GetEnv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  std::string mode = GetEnv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
  if (endpoint.empty()) {
    absl::StatusOr<AwsProfile> profile = LoadAwsProfile(ProfileName(options.profile));
    if (!profile.ok()) return profile.status();
    if (auto it = profile->config.find("ec2_metadata_service_endpoint");
        it != profile->config.end()) {
      endpoint = it->second;
    }
    if (auto it = profile->config.find("ec2_metadata_service_endpoint_mode");
        mode.empty() && it != profile->config.end()) {
      mode = it->second;
    }
  }
  if (endpoint.empty()) {
    if (mode.empty() || absl::EqualsIgnoreCase(mode, "IPv4")) {
      endpoint = kDefaultImdsEndpoint;
    } else if (absl::EqualsIgnoreCase(mode, "IPv6")) {
      endpoint = kDefaultImdsEndpointV6;
    } else {
      return kinlet::InvalidArgument(absl::StrCat("instance metadata: the endpoint mode '", mode,
                                                  "' is neither IPv4 nor IPv6"));
    }
  }
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();

  const std::string token_url = endpoint + "/latest/api/token";
  absl::StatusOr<detail::SimpleHttpResponse> token =
      Request(options, "PUT", token_url, {"X-aws-ec2-metadata-token-ttl-seconds: 21600"});
  if (!token.ok()) {
    return absl::UnavailableError(absl::StrCat("instance metadata: ", token.status().message()));
  }
  if (token->status != 200 || token->body.empty()) {
    return BadAnswer("instance metadata (token)", token_url, *token);
  }
  const std::vector<std::string> headers = {"X-aws-ec2-metadata-token: " + Trimmed(token->body)};

  const std::string roles_url = endpoint + "/latest/meta-data/iam/security-credentials/";
  absl::StatusOr<detail::SimpleHttpResponse> roles = Request(options, "GET", roles_url, headers);
  if (!roles.ok()) {
    return absl::UnavailableError(absl::StrCat("instance metadata: ", roles.status().message()));
  }
  if (roles->status == 404) {
    return absl::UnauthenticatedError("instance metadata: the instance has no IAM role");
  }
  if (roles->status != 200) return BadAnswer("instance metadata (role)", roles_url, *roles);
  const std::string role = Trimmed(std::string_view(roles->body).substr(0, roles->body.find('\n')));
  if (role.empty()) {
    return absl::UnauthenticatedError("instance metadata: the instance has no IAM role");
  }
  if (role.find_first_of("/?#% ") != std::string::npos) {
    return absl::UnavailableError(
        absl::StrCat("instance metadata: ", roles_url, " answered a bad role name '", role, "'"));
  }
  const std::string credentials_url = roles_url + role;
  absl::StatusOr<detail::SimpleHttpResponse> credentials =
      Request(options, "GET", credentials_url, headers);
  if (!credentials.ok()) {
    return absl::UnavailableError(
        absl::StrCat("instance metadata: ", credentials.status().message()));
  }
  if (credentials->status != 200) {
    return BadAnswer("instance metadata (credentials)", credentials_url, *credentials);
  }
  return ParseCredentialsDocument("instance metadata", credentials_url, credentials->body);
}

// ---------------------------------------------------------------------------
// The default chain

DefaultCredentialsChain::DefaultCredentialsChain(CredentialsOptions options)
    : options_(std::move(options)) {}

std::string DefaultCredentialsChain::source() const {
  std::lock_guard<std::mutex> lock(mu_);
  return source_;
}

absl::StatusOr<wire::Credentials> DefaultCredentialsChain::GetCredentials() {
  std::shared_ptr<CredentialsProvider> chosen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    chosen = chosen_;
  }
  if (chosen) return chosen->GetCredentials();
  std::lock_guard<std::mutex> resolve_lock(resolve_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    chosen = chosen_;
  }
  if (chosen) return chosen->GetCredentials();  // another caller resolved it
  return Resolve();
}

absl::StatusOr<wire::Credentials> DefaultCredentialsChain::Resolve() {
  auto choose = [this](std::shared_ptr<CredentialsProvider> provider, std::string source) {
    std::lock_guard<std::mutex> lock(mu_);
    chosen_ = std::move(provider);
    source_ = std::move(source);
  };
  if (!options_.access_key_id.empty() || !options_.secret_access_key.empty()) {
    if (options_.access_key_id.empty() || options_.secret_access_key.empty()) {
      return kinlet::InvalidArgument(
          "CredentialsOptions: access_key_id and secret_access_key must be set together");
    }
    wire::Credentials c{options_.access_key_id, options_.secret_access_key, options_.session_token};
    choose(std::make_shared<StaticCredentialsProvider>(c), "options");
    return c;
  }
  std::vector<std::string> tried;
  bool unreachable = false;
  absl::StatusOr<wire::Credentials> env = CredentialsFromEnvironment();
  if (env.ok()) {
    choose(std::make_shared<StaticCredentialsProvider>(*env), "environment");
    return env;
  }
  tried.emplace_back(env.status().message());

  const std::string profile_name = ProfileName(options_.profile);
  absl::StatusOr<wire::Credentials> profile = CredentialsFromProfile(profile_name);
  if (profile.ok()) {
    choose(std::make_shared<StaticCredentialsProvider>(*profile), "profile " + profile_name);
    return profile;
  }
  if (!absl::IsUnauthenticated(profile.status())) return profile.status();
  tried.emplace_back(profile.status().message());

  struct Source {
    const char* name;
    absl::StatusOr<TimedCredentials> (*fetch)(const CredentialsOptions&);
  };
  for (const Source& source : {Source{"container", &FetchContainerCredentials},
                               Source{"instance metadata", &FetchInstanceMetadataCredentials}}) {
    auto provider = std::make_shared<RefreshingCredentialsProvider>(
        [options = options_, fetch = source.fetch] { return fetch(options); }, options_);
    absl::StatusOr<wire::Credentials> c = provider->GetCredentials();
    if (c.ok()) {
      choose(std::move(provider), source.name);
      return c;
    }
    if (absl::IsInvalidArgument(c.status())) return c.status();
    if (!absl::IsUnauthenticated(c.status())) unreachable = true;
    tried.emplace_back(c.status().message());
  }
  const std::string message = absl::StrCat("No AWS credentials found (explicit options: none; ",
                                           absl::StrJoin(tried, "; "), ")");
  return unreachable ? absl::UnavailableError(message) : absl::UnauthenticatedError(message);
}

}  // namespace kinlet::remote
