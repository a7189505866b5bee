// kinlet/gateway/http_server.hpp: the gateway's HTTP servers, the transport under
// the Kinesis service. One port speaks HTTP/1.1 (Boost.Beast's parser: keep-alive,
// Content-Length and chunked request bodies, chunked streamed responses) and
// HTTP/2 (libnghttp2: cleartext with prior knowledge, sniffed from the client
// preface; over TLS when ALPN picks "h2"). With a certificate the port speaks
// TLS only (OpenSSL 3; ALPN "h2" and "http/1.1").
//
// Any wire::HttpHandler is served; the exchange is described in
// kinlet/wire/http.hpp (StreamBody's contract included).
//
// Threads: `threads` event loops, each owning the connections it accepted; a
// connection's state is only touched on its loop's thread, so handlers and
// StreamBody calls for one connection never run concurrently, while different
// connections run in parallel.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kinlet/wire/http.hpp"

namespace kinlet::gateway {

// One finished exchange, for the program's debug log. The views are valid only
// during the callback.
struct HttpRequestLog {
  std::string_view method;
  std::string_view target;
  int version = 11;                      // 10, 11 or 20
  int status = 0;                        // 0: no response was sent (the peer went away)
  std::uint64_t body_bytes = 0;          // response body bytes sent
  std::chrono::nanoseconds duration{0};  // request parsed -> response sent
  std::string_view remote_address;
};

struct HttpServerOptions {
  std::string bind_address = "127.0.0.1";  // an IPv4 or IPv6 literal
  std::uint16_t port = 0;                  // 0: a free port (HttpServer::port())
  int threads = 0;                         // event loops; 0: hardware concurrency (>= 1)
  // PEM files. When both are set, every connection speaks TLS.
  std::string tls_certificate_file;
  std::string tls_private_key_file;
  // A larger request body is answered 413 (HTTP/1.1: then the connection closes;
  // HTTP/2: only the stream ends).
  std::size_t max_request_body_bytes = std::size_t{16} << 20;
  // Request line/pseudo-headers and headers; beyond: 431 (HTTP/1.1) or
  // RST_STREAM (HTTP/2).
  std::size_t max_header_bytes = std::size_t{64} << 10;
  // Connections beyond this are closed as they are accepted.
  std::size_t max_connections = 10000;
  // A connection with no request in progress (and no streamed response) for
  // this long is closed.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
  // Slow-request protection: a request (HTTP/1.1), or the TLS handshake and
  // protocol sniffing, not fully read within this time closes the connection.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  // Stop(): how long streamed responses may take to finish after Cancel(true).
  std::chrono::milliseconds stop_grace{std::chrono::seconds(2)};
  // Called on a server thread after each exchange; must not block.
  std::function<void(const HttpRequestLog&)> request_log;
};

class HttpServer {
 public:
  // Binds, listens and starts the event loops. Errors: kUnavailable when the
  // address cannot be bound (in use, not local), kInvalidArgument for a bad
  // address, option or certificate/key (the message names the file and
  // OpenSSL's reason). `handler` is called on server threads, concurrently for
  // different connections, until Stop() returns. Thread-safe.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                           wire::HttpHandler handler);

  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port bound (the one picked when options.port was 0). Thread-safe.
  std::uint16_t port() const;

  // Stops accepting, lets requests in flight be answered (responses after this
  // carry `connection: close`; HTTP/2 connections get GOAWAY), calls
  // Cancel(true) on every open StreamBody and keeps pulling it until it ends or
  // options.stop_grace passes, closes every connection and joins every thread.
  // Idempotent; must not be called from a handler or a StreamBody call.
  void Stop();

  // Implementation details follow.
  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kinlet::gateway
