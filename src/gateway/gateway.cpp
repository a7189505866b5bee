// Gateway: the Kinesis service behind the HTTP servers (see kinlet/gateway/gateway.hpp).
#include "kinlet/gateway/gateway.hpp"

#include <chrono>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace kinlet::gateway {

Gateway::Gateway(std::shared_ptr<WireRegistry> registry, GatewayOptions options)
    : registry_(std::move(registry)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(std::shared_ptr<WireRegistry> registry,
                                                        GatewayOptions options) {
  if (registry == nullptr) return absl::InvalidArgumentError("Gateway::Start: no registry");
  std::unique_ptr<Gateway> gateway(new Gateway(std::move(registry), std::move(options)));
  KinesisServiceOptions service_options = gateway->options_.service;
  if (!service_options.authenticate) {
    gateway->verifier_ = std::make_unique<wire::SigV4Verifier>(gateway->options_.signatures);
    const wire::SigV4Verifier* verifier = gateway->verifier_.get();
    // The registry's clock for the skew check: the same time the streams see.
    WireRegistry* reg = gateway->registry_.get();
    service_options.authenticate = [verifier, reg](const wire::HttpRequest& request) {
      return verifier->Verify(request, reg->clock()->Now());
    };
  }
  gateway->service_ =
      std::make_unique<KinesisService>(gateway->registry_, std::move(service_options));
  wire::HttpHandler handler = gateway->service_->AsHandler();
  if (gateway->options_.request_log) {
    handler = [inner = std::move(handler),
               log = gateway->options_.request_log](wire::HttpRequest& request) {
      const auto start = std::chrono::steady_clock::now();
      constexpr std::string_view kPrefix = "Kinesis_20131202.";
      std::string operation;
      if (const std::string* target = request.FindHeader("x-amz-target")) {
        operation = target->rfind(kPrefix, 0) == 0 ? target->substr(kPrefix.size()) : *target;
      } else {
        operation = absl::StrCat(request.method, " ", request.target);
      }
      wire::HttpResponse response = inner(request);
      GatewayRequestLog entry;
      entry.remote_address = request.remote_address;
      entry.http_version = request.version;
      entry.operation = operation;
      entry.status = response.status;
      entry.response_bytes = response.body.size();
      entry.streamed = response.stream != nullptr;
      entry.duration = std::chrono::steady_clock::now() - start;
      log(entry);
      return response;
    };
  }
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(gateway->options_.http, std::move(handler));
  if (!server.ok()) return server.status();
  gateway->server_ = std::move(*server);
  return gateway;
}

Gateway::~Gateway() { Stop(); }

std::uint16_t Gateway::port() const { return server_ ? server_->port() : 0; }

std::string Gateway::endpoint() const {
  std::string host = options_.http.bind_address;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = absl::StrCat("[", host, "]");
  const bool tls = !options_.http.tls_certificate_file.empty();
  return absl::StrCat(tls ? "https://" : "http://", host, ":", port());
}

void Gateway::Stop() {
  // The service first: its subscriptions end with a final event, which the
  // server (still running) delivers before it closes the connections.
  if (service_) service_->Stop();
  if (server_) server_->Stop();
}

}  // namespace kinlet::gateway
