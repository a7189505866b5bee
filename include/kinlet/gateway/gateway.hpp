// kinlet/gateway/gateway.hpp: a Registry's streams served as Amazon Kinesis on
// a local port, for every AWS SDK, the AWS CLI and any language.
//
//   auto registry = std::make_shared<kinlet::gateway::WireRegistry>();
//   auto gateway = kinlet::gateway::Gateway::Start(registry).value();
//   // point an AWS SDK at gateway->endpoint() ("http://127.0.0.1:<port>")
//   gateway->Stop();
//
// The gateway calls kinlet in-process: a stream created in C++ is visible on
// the wire at once and the other way round (no copy, no second process). It
// is the composition of the Kinesis API (kinesis_service.hpp), SigV4
// authentication (kinlet/wire/sigv4.hpp) and the HTTP/1.1 + HTTP/2 + TLS
// servers (http_server.hpp); use those directly to put the API behind another
// server.
//
// Thread safety: all calls are thread-safe. Lifetime: the gateway keeps the
// registry alive until it is destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kinlet/gateway/http_server.hpp"
#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/gateway/wire_registry.hpp"
#include "kinlet/wire/sigv4.hpp"

namespace kinlet::gateway {

// One answered request, for a request log. Views are valid during the call only.
struct GatewayRequestLog {
  std::string_view remote_address;  // "ip:port"
  int http_version = 11;            // 10, 11 or 20
  std::string_view operation;       // "PutRecord" (from X-Amz-Target), or the method and target
  int status = 0;                   // the response's HTTP status
  std::size_t response_bytes = 0;   // body size (0 for a streamed SubscribeToShard response)
  bool streamed = false;            // a SubscribeToShard event stream started
  std::chrono::nanoseconds duration{0};  // in the service
};

struct GatewayOptions {
  // Address, port (0: a free one), TLS certificate and key, threads, limits
  // and timeouts, the request log. Binds 127.0.0.1 unless told otherwise.
  HttpServerOptions http;
  // Region and account id (ARNs), limits and defaults of the streams created
  // over the wire, create/delete/update delays, subscription lifetime.
  KinesisServiceOptions service;
  // SigV4 checks. By default, as AWS: a request without SigV4 authentication
  // is refused (MissingAuthenticationTokenException), any well-formed
  // signature accepted. With verify_signatures and credentials, signatures
  // are verified exactly. (Ignored when service.authenticate is set.)
  wire::SigV4VerifierOptions signatures;
  // Called on a server thread after each request is answered (before the
  // response is written); must not block. kinlet-gateway --log-level debug
  // prints one line per call.
  std::function<void(const GatewayRequestLog&)> request_log;
};

class Gateway {
 public:
  // Starts serving `registry`'s streams. Errors: those of HttpServer::Start
  // (the address cannot be bound, a bad certificate or key, bad options).
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(std::shared_ptr<WireRegistry> registry,
                                                        GatewayOptions options = {});

  ~Gateway();  // Stop()
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // The port served (the one picked when options.http.port was 0).
  std::uint16_t port() const;
  // "http://<address>:<port>" (https with TLS), for an SDK's endpoint_url. An
  // IPv6 address is bracketed; 0.0.0.0 and :: are given as 127.0.0.1 / [::1].
  std::string endpoint() const;

  // Ends the gateway cleanly: stops accepting, answers requests in flight,
  // ends every SubscribeToShard response with a final event, closes the
  // connections and joins every thread. The streams stay in the registry.
  // Idempotent.
  void Stop();

  const std::shared_ptr<WireRegistry>& registry() const { return registry_; }
  KinesisService& service() { return *service_; }

 private:
  Gateway(std::shared_ptr<WireRegistry> registry, GatewayOptions options);

  std::shared_ptr<WireRegistry> registry_;
  GatewayOptions options_;
  std::unique_ptr<wire::SigV4Verifier> verifier_;
  std::unique_ptr<KinesisService> service_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace kinlet::gateway
