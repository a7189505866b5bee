// Signed AWS JSON calls (Kinesis, DynamoDB) with the SDKs' standard retry mode
// (see kinesis_client.hpp).
#include "kinesis_client.hpp"

#include <algorithm>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kinlet/errors.hpp"
#include "kinlet/remote/remote_errors.hpp"

namespace kinlet::remote {
namespace {

double UniformUnit() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

KinesisClient::KinesisClient(RemoteOptions options, AwsJsonService service)
    : options_(std::move(options)), service_(service) {}

absl::StatusOr<std::shared_ptr<KinesisClient>> KinesisClient::Create(RemoteOptions options,
                                                                     AwsJsonService service) {
  if (options.credentials == nullptr) {
    return InvalidArgument("RemoteOptions.credentials is required");
  }
  if (options.endpoint.empty()) {
    options.endpoint =
        absl::StrCat("https://", detail::ToAbsl(service.endpoint_prefix), ".", options.region,
                     ".amazonaws.com", absl::StartsWith(options.region, "cn-") ? ".cn" : "");
  }
  std::string_view rest = options.endpoint;
  if (rest.substr(0, 8) == "https://") {
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
  } else {
    return InvalidArgument(
        absl::StrCat("endpoint must start with http:// or https://: ", options.endpoint));
  }
  std::shared_ptr<KinesisClient> client(new KinesisClient(std::move(options), service));
  const size_t slash = rest.find('/');
  client->host_ = std::string(rest.substr(0, slash));
  client->url_ = client->options_.endpoint;
  if (slash == std::string_view::npos) client->url_ += "/";
  if (client->host_.empty()) return InvalidArgument("endpoint has no host");
  client->tokens_ = client->options_.retry.quota_capacity;
  absl::StatusOr<std::unique_ptr<HttpClient>> http = HttpClient::Create(client->options_.http);
  if (!http.ok()) return http.status();
  client->http_ = std::move(*http);
  return client;
}

absl::StatusOr<HttpCall> KinesisClient::Prepare(std::string_view operation, std::string body,
                                                absl::Duration timeout) {
  absl::StatusOr<wire::Credentials> credentials = options_.credentials->GetCredentials();
  if (!credentials.ok()) return credentials.status();
  wire::HttpRequest request;
  request.method = "POST";
  request.target = "/";
  request.headers = {{"host", host_},
                     {"content-type", std::string(service_.content_type)},
                     {"x-amz-target", absl::StrCat(detail::ToAbsl(service_.target_prefix), ".",
                                                   detail::ToAbsl(operation))}};
  request.body = std::move(body);
  const absl::Time now = absl::Now();
  const std::string date = wire::FormatAmzDate(now).substr(0, 8);
  std::shared_ptr<const wire::SigningKey> key;
  {
    std::lock_guard<std::mutex> lock(key_mu_);
    if (key_ == nullptr || key_secret_ != credentials->secret_access_key ||
        !key_->IsFor(date, options_.region, service_.signing_name)) {
      key_ = std::make_shared<const wire::SigningKey>(credentials->secret_access_key, date,
                                                      options_.region, service_.signing_name);
      key_secret_ = credentials->secret_access_key;
    }
    key = key_;
  }
  wire::SignRequest(request, *credentials, options_.region, service_.signing_name, now, key.get());
  HttpCall call;
  call.url = url_;
  call.headers = std::move(request.headers);
  call.body = std::move(request.body);
  call.timeout = timeout;
  return call;
}

absl::StatusOr<wire::Value> KinesisClient::CallOnce(std::string_view operation,
                                                    std::string_view body, bool on_create,
                                                    absl::Duration timeout) {
  absl::StatusOr<HttpCall> call = Prepare(operation, std::string(body), timeout);
  if (!call.ok()) return call.status();
  absl::StatusOr<HttpResult> result = http_->Post(std::move(*call));
  if (!result.ok()) return result.status();
  if (result->status != 200) {
    return ErrorFromResponse(result->status, result->body, {}, on_create);
  }
  absl::StatusOr<wire::Value> doc = wire::ParseJson(result->body);
  if (!doc.ok()) {
    return InternalFailure(absl::StrCat("malformed ", detail::ToAbsl(operation),
                                        " response: ", doc.status().message()));
  }
  return doc;
}

absl::StatusOr<wire::Value> KinesisClient::Call(std::string_view operation, std::string_view body,
                                                bool on_create) {
  CallState state = BeginCall();
  absl::StatusOr<wire::Value> r = CallWithin(state, operation, body, on_create);
  if (r.ok()) Succeeded(state);
  return r;
}

absl::StatusOr<wire::Value> KinesisClient::CallWithin(CallState& state, std::string_view operation,
                                                      std::string_view body, bool on_create) {
  for (;;) {
    const absl::Duration left = state.deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(detail::ToAbsl(operation),
                                                      ": the call's deadline passed after ",
                                                      state.attempt - 1, " attempts"));
    }
    absl::StatusOr<wire::Value> r =
        CallOnce(operation, body, on_create, std::min(left, options_.retry.attempt_timeout));
    if (r.ok() || !RetryAfter(r.status(), state)) return r;
  }
}

bool KinesisClient::RetryAfter(const absl::Status& why, CallState& state) {
  const RetryPolicy& p = options_.retry;
  const bool throttled = IsThrottlingError(why);
  if (!throttled && !IsTransientError(why)) return false;
  if (state.attempt >= p.max_attempts) return false;
  const int cost = IsTimeoutError(why) ? p.timeout_retry_cost : p.retry_cost;
  const absl::Duration base = throttled ? p.throttle_base_delay : p.base_delay;
  const absl::Duration cap = std::min(
      p.max_backoff, base * static_cast<double>(int64_t{1} << std::min(state.attempt - 1, 30)));
  const absl::Duration delay = cap * UniformUnit();
  if (absl::Now() + delay >= state.deadline) return false;
  {
    std::lock_guard<std::mutex> lock(quota_mu_);
    if (tokens_ < cost) return false;
    tokens_ -= cost;
  }
  state.spent += cost;
  ++state.attempt;
  if (delay > absl::ZeroDuration()) {
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(delay));
  }
  return true;
}

void KinesisClient::Succeeded(const CallState& state) {
  std::lock_guard<std::mutex> lock(quota_mu_);
  tokens_ = std::min(options_.retry.quota_capacity,
                     tokens_ + (state.spent > 0 ? state.spent : options_.retry.success_refund));
}

int KinesisClient::quota_tokens() const {
  std::lock_guard<std::mutex> lock(quota_mu_);
  return tokens_;
}

}  // namespace kinlet::remote
