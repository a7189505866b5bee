// kinlet/remote/http_client.hpp: the HTTP client of the remote backend, on
// libcurl.
//
//   kinlet::remote::HttpClient::Options options;
//   auto client = kinlet::remote::HttpClient::Create(options).value();
//   kinlet::remote::HttpCall call;
//   call.url = "http://127.0.0.1:4567/";
//   call.headers = {{"content-type", "application/x-amz-json-1.1"}};
//   call.body = "{}";
//   absl::StatusOr<kinlet::remote::HttpResult> r = client->Post(call);
//
// Plain calls (Post) run on the caller's thread by default
// (PostThreading::kCaller): the caller takes an idle "lane" (a curl easy
// handle with its own keep-alive connection) from a pool, performs the
// exchange itself and returns the lane, so a call costs no thread hand-off.
// Lanes share the DNS cache and TLS sessions (a CURLSH with locks); each
// connection is used by one call at a time, so N concurrent callers keep up
// to N connections (the pool keeps max_connections idle lanes), HTTP/2 or
// not. PostThreading::kLoop instead hands each call to the loop thread below
// and waits (two thread hand-offs per call; concurrent calls multiplexed on
// one HTTP/2 connection).
//
// One event-loop thread drives one curl multi handle: streamed responses
// (SubscribeToShard's event stream; and Post with kLoop) share its connection
// cache (keep-alive) and its HTTP/2 connections are multiplexed
// (CURLPIPE_MULTIPLEX, CURLOPT_PIPEWAIT). A streamed response is handed to a
// sink on the loop thread as it arrives, with flow control (a sink may pause
// the transfer; Resume continues it). TCP_NODELAY is on everywhere.
//
// Thread safety: every method is thread-safe. Lifetime: destroying the client
// ends every transfer still running (streams end with kUnavailable) and joins
// the loop thread; StreamHandles may outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kinlet/wire/http.hpp"

namespace kinlet::remote {

enum class HttpVersion {
  kHttp11,               // HTTP/1.1 only
  kHttp2Tls,             // HTTP/2 over TLS when ALPN agrees, else HTTP/1.1 (the default)
  kHttp2PriorKnowledge,  // HTTP/2 without negotiation, also over cleartext (h2c)
};

struct TlsOptions {
  // Verify the server's certificate chain and name (the default). Turning it
  // off is for tests only.
  bool verify_peer = true;
  // A PEM bundle of CAs to trust instead of the system's; empty: the system's.
  std::string ca_file;
};

// Where Post's exchange runs (see the top of this file).
enum class PostThreading {
  kCaller,  // on the calling thread, over a pool of keep-alive lanes (the default)
  kLoop,    // on the client's loop thread (HTTP/2 multiplexing of concurrent calls)
};

struct HttpClientOptions {
  HttpVersion http_version = HttpVersion::kHttp2Tls;
  PostThreading post_threading = PostThreading::kCaller;
  TlsOptions tls;
  absl::Duration connect_timeout = absl::Seconds(10);
  // Idle keep-alive connections kept: the loop's cache size, and the number
  // of idle caller lanes kept.
  int max_connections = 64;
};

// One request: always POST.
struct HttpCall {
  std::string url;                        // "http://host:port/"
  std::vector<wire::HttpHeader> headers;  // sent as given (names lower-case)
  std::string body;
  absl::Duration timeout = absl::Seconds(30);  // the whole exchange
};

struct HttpResult {
  long status = 0;
  std::string body;
  std::string content_type;
  int http_version = 11;  // 11 or 20: what the exchange used
};

// Receives a streamed response's body on the client's loop thread. Return
// false to pause the transfer (HttpStreamHandle::Resume continues it). Must
// not block and must not call back into the client except Resume.
using HttpStreamSink = std::function<bool(std::string_view bytes)>;

// A streamed response in progress.
class HttpStreamHandle {
 public:
  virtual ~HttpStreamHandle() = default;
  // Waits until the response status is known (the first body bytes or the end
  // of the exchange). Returns the status, or kUnavailable for a transport
  // failure; when the status is not 200, `error_body` receives the whole body.
  virtual absl::StatusOr<long> AwaitStatus(std::string* error_body) = 0;
  // Continues a transfer its sink paused. Thread-safe.
  virtual void Resume() = 0;
  // Ends the transfer (no more sink calls after the done callback). Thread-safe.
  virtual void Cancel() = 0;
};

class HttpClient {
 public:
  // Errors: kInternal when libcurl cannot be initialised.
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `call` and waits for the whole response (on the calling thread with
  // PostThreading::kCaller). Errors: kUnavailable for a connection, TLS or
  // timeout failure (the message says which; a timeout's says "timed out");
  // any HTTP status is a result. Thread-safe; the client must outlive the call.
  absl::StatusOr<HttpResult> Post(HttpCall call);

  // Starts `call` whose 200 response body goes to `sink` as it arrives (a non-200
  // body is kept for AwaitStatus); `on_done` runs once on the loop thread when
  // the exchange ends: OK at the end of the body, kUnavailable for a transport
  // failure, kCancelled after Cancel. call.timeout is not applied (a stream
  // lasts as long as the server sends). Thread-safe.
  std::shared_ptr<HttpStreamHandle> PostStreaming(HttpCall call, HttpStreamSink sink,
                                                  std::function<void(absl::Status)> on_done);

  const HttpClientOptions& options() const { return options_; }

  struct Impl;

 private:
  explicit HttpClient(HttpClientOptions options);
  HttpClientOptions options_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace kinlet::remote
