// Private to kinlet::gateway: what the HTTP/1.1 and HTTP/2 connections share.
//
// Threads: each Worker runs one io_context on one thread. A Connection lives on
// the Worker that accepted it and all its state (and Worker::connections) is
// touched only on that thread. Across threads only: ServerState's atomics, and
// Worker::Post (under Worker::mu, from StreamBody wakes and Stop()).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "kinlet/gateway/http_server.hpp"
#include "kinlet/wire/http.hpp"

namespace kinlet::gateway::detail {

namespace asio = boost::asio;
using Tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<Tcp::socket>;
using Clock = std::chrono::steady_clock;

// Immutable after Start but for the atomics; shared by every connection.
struct ServerState {
  HttpServerOptions options;
  wire::HttpHandler handler;
  std::atomic<bool> stopping{false};        // written by Stop(); read by loops
  std::atomic<std::size_t> connections{0};  // Connection ctor/dtor, any thread
};

class Connection;

struct Worker {
  // Only its own thread (or Stop() after joining) touches `connections`.
  std::unordered_set<Connection*> connections;
  std::optional<asio::io_context> io;  // reset by Stop() after the thread joined

  // Runs `f` on this worker's thread unless the worker has stopped (then `f`
  // is dropped). Any thread.
  template <typename F>
  void Post(F&& f) {
    std::lock_guard<std::mutex> lock(mu);
    if (running) asio::post(*io, std::forward<F>(f));
  }
  std::mutex mu;
  bool running = true;  // guarded by mu
};

// A connection in any phase (sniffing, TLS handshake, HTTP/1.1, HTTP/2).
class Connection {
 public:
  Connection(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker)
      : state_(std::move(state)), worker_(std::move(worker)) {
    state_->connections.fetch_add(1, std::memory_order_relaxed);
    worker_->connections.insert(this);
  }
  virtual ~Connection() {
    worker_->connections.erase(this);
    state_->connections.fetch_sub(1, std::memory_order_relaxed);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Stop(): finish what is in flight, then close. Worker thread.
  virtual void BeginStop() = 0;
  // Stop() after the grace period: close now. Worker thread.
  virtual void ForceClose() = 0;

 protected:
  std::shared_ptr<ServerState> state_;
  std::shared_ptr<Worker> worker_;
};

// "Mon, 30 Nov 2026 02:59:34 GMT" for now, cached per thread and second.
std::string_view HttpDate();
// "OK", "Not Found", ...
std::string_view ReasonPhrase(int status);
// Headers the server writes itself or that are connection-specific.
bool IsServerOwnedHeader(std::string_view lower_name);
// Calls options.request_log, if any, for a finished exchange.
void LogExchange(const ServerState& state, std::string_view method, std::string_view target,
                 int version, std::string_view remote, int status, std::uint64_t body_bytes,
                 Clock::time_point started);
// Calls the handler; an exception becomes a 500.
wire::HttpResponse CallHandler(const ServerState& state, wire::HttpRequest& request);

std::string RemoteAddress(const Tcp::socket& socket);

// What a connection needs of its stream besides reading and writing; one
// specialization per stream type (the fuzz target adds Beast's test stream).
template <typename Stream>
struct StreamOps;

inline void CloseSocket(Tcp::socket& s) {
  boost::system::error_code ec;
  s.shutdown(Tcp::socket::shutdown_both, ec);
  s.close(ec);
}
inline void ShutdownSocketSend(Tcp::socket& s) {
  boost::system::error_code ec;
  s.shutdown(Tcp::socket::shutdown_send, ec);
}

template <>
struct StreamOps<Tcp::socket> {
  static constexpr bool kTls = false;
  static std::string Remote(const Tcp::socket& s) { return RemoteAddress(s); }
  static void Close(Tcp::socket& s) { CloseSocket(s); }
  static void ShutdownSend(Tcp::socket& s) { ShutdownSocketSend(s); }
};

template <>
struct StreamOps<TlsStream> {
  static constexpr bool kTls = true;
  static std::string Remote(const TlsStream& s) { return RemoteAddress(s.next_layer()); }
  static void Close(TlsStream& s) { CloseSocket(s.next_layer()); }
  static void ShutdownSend(TlsStream& s) { ShutdownSocketSend(s.next_layer()); }
};

// Starts the protocol on an accepted, set-up stream. `initial` holds bytes
// already read (the sniffed prefix). Worker thread.
void StartHttp1(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker,
                Tcp::socket socket, std::string initial);
void StartHttp1(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker,
                TlsStream stream, std::string initial);
void StartHttp2(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker,
                Tcp::socket socket, std::string initial);
void StartHttp2(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker,
                TlsStream stream, std::string initial);

}  // namespace kinlet::gateway::detail
