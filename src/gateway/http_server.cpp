// HttpServer: the listening socket, the event loops, protocol selection (TLS
// handshake and ALPN; the HTTP/2 preface sniffed on the plain port) and Stop().
#include "kinlet/gateway/http_server.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/status.hpp>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <exception>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "http_detail.hpp"

namespace kinlet::gateway {
namespace detail {

using boost::system::error_code;

std::string_view HttpDate() {
  thread_local std::time_t cached_second = -1;
  thread_local char text[40];
  thread_local std::size_t length = 0;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    gmtime_r(&now, &tm);
    const int n = std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                                kDays[tm.tm_wday % 7], tm.tm_mday, kMonths[tm.tm_mon % 12],
                                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    length = n > 0 ? static_cast<std::size_t>(n) : 0;
    cached_second = now;
  }
  return std::string_view(text, length);
}

std::string_view ReasonPhrase(int status) {
  const auto reason = boost::beast::http::obsolete_reason(
      static_cast<boost::beast::http::status>(static_cast<unsigned>(status)));
  if (reason.empty() || reason == "<unknown-status>") return "Unknown";
  return std::string_view(reason.data(), reason.size());
}

bool IsServerOwnedHeader(std::string_view n) {
  return n == "content-length" || n == "transfer-encoding" || n == "connection" ||
         n == "keep-alive" || n == "date" || n == "upgrade" || n == "proxy-connection" ||
         n == "te" || (!n.empty() && n[0] == ':');
}

void LogExchange(const ServerState& state, std::string_view method, std::string_view target,
                 int version, std::string_view remote, int status, std::uint64_t body_bytes,
                 Clock::time_point started) {
  if (!state.options.request_log) return;
  HttpRequestLog log;
  log.method = method;
  log.target = target;
  log.version = version;
  log.status = status;
  log.body_bytes = body_bytes;
  log.duration = Clock::now() - started;
  log.remote_address = remote;
  state.options.request_log(log);
}

wire::HttpResponse CallHandler(const ServerState& state, wire::HttpRequest& request) {
  try {
    return state.handler(request);
  } catch (const std::exception&) {
  } catch (...) {
  }
  wire::HttpResponse failed;
  failed.status = 500;
  failed.headers.push_back({"content-type", "text/plain"});
  failed.body = "internal server error\n";
  return failed;
}

std::string RemoteAddress(const Tcp::socket& socket) {
  error_code ec;
  const Tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  std::string text = peer.address().to_string();
  if (peer.address().is_v6()) text = "[" + text + "]";
  text += ":";
  text += std::to_string(peer.port());
  return text;
}

namespace {

constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// The first bytes of a plain connection: the HTTP/2 client preface (h2c with
// prior knowledge) or anything else (HTTP/1.x).
class Sniffer final : public Connection, public std::enable_shared_from_this<Sniffer> {
 public:
  Sniffer(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker, Tcp::socket socket)
      : Connection(std::move(state), std::move(worker)),
        socket_(std::move(socket)),
        timer_(*worker_->io) {}

  void Run() {
    timer_.expires_after(state_->options.request_timeout);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec && !self->done_) self->Close();
    });
    Read();
  }
  void BeginStop() override { Close(); }
  void ForceClose() override { Close(); }

 private:
  void Close() {
    done_ = true;
    timer_.cancel();
    CloseSocket(socket_);
  }
  void Read() {
    socket_.async_read_some(
        boost::asio::buffer(chunk_), [self = shared_from_this()](error_code ec, std::size_t n) {
          if (self->done_) return;
          if (ec) return self->Close();
          self->seen_.append(self->chunk_.data(), n);
          const std::size_t common = std::min(self->seen_.size(), kH2Preface.size());
          if (self->seen_.compare(0, common, kH2Preface.substr(0, common)) != 0) {
            return self->Hand(false);
          }
          if (self->seen_.size() >= kH2Preface.size()) return self->Hand(true);
          self->Read();
        });
  }
  void Hand(bool h2) {
    done_ = true;
    timer_.cancel();
    if (h2) {
      StartHttp2(state_, worker_, std::move(socket_), std::move(seen_));
    } else {
      StartHttp1(state_, worker_, std::move(socket_), std::move(seen_));
    }
  }

  Tcp::socket socket_;
  boost::asio::steady_timer timer_;
  std::array<char, 1024> chunk_;
  std::string seen_;
  bool done_ = false;
};

// The TLS handshake; ALPN decides the protocol.
class Handshake final : public Connection, public std::enable_shared_from_this<Handshake> {
 public:
  Handshake(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker, Tcp::socket socket,
            boost::asio::ssl::context& tls)
      : Connection(std::move(state), std::move(worker)),
        stream_(std::move(socket), tls),
        timer_(*worker_->io) {}

  void Run() {
    timer_.expires_after(state_->options.request_timeout);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec && !self->done_) self->Close();
    });
    stream_.async_handshake(boost::asio::ssl::stream_base::server,
                            [self = shared_from_this()](error_code ec) {
                              if (self->done_) return;
                              if (ec) return self->Close();
                              self->Hand();
                            });
  }
  void BeginStop() override { Close(); }
  void ForceClose() override { Close(); }

 private:
  void Close() {
    done_ = true;
    timer_.cancel();
    StreamOps<TlsStream>::Close(stream_);
  }
  void Hand() {
    done_ = true;
    timer_.cancel();
    const unsigned char* protocol = nullptr;
    unsigned int length = 0;
    SSL_get0_alpn_selected(stream_.native_handle(), &protocol, &length);
    const bool h2 = length == 2 && std::memcmp(protocol, "h2", 2) == 0;
    if (h2) {
      StartHttp2(state_, worker_, std::move(stream_), std::string());
    } else {
      StartHttp1(state_, worker_, std::move(stream_), std::string());
    }
  }

  TlsStream stream_;
  boost::asio::steady_timer timer_;
  bool done_ = false;
};

// ALPN: "h2" first, then "http/1.1"; no match proceeds without ALPN (HTTP/1.1).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  for (std::string_view want : {std::string_view("h2"), std::string_view("http/1.1")}) {
    for (unsigned int i = 0; i < inlen;) {
      const unsigned int len = in[i];
      if (i + 1 + len > inlen) break;
      if (len == want.size() && std::memcmp(in + i + 1, want.data(), len) == 0) {
        *out = in + i + 1;
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + len;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::string OpenSslReason() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text;
}

}  // namespace
}  // namespace detail

using detail::Clock;
using detail::error_code;
using detail::Tcp;

struct HttpServer::Impl {
  std::shared_ptr<detail::ServerState> state;
  std::unique_ptr<boost::asio::ssl::context> tls;
  std::vector<std::shared_ptr<detail::Worker>> workers;
  std::vector<
      std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>>
      guards;
  std::vector<std::thread> threads;
  std::unique_ptr<Tcp::acceptor> acceptor;  // on workers[0]'s thread once running
  std::uint16_t port = 0;
  std::size_t next_worker = 0;  // acceptor's thread only
  std::mutex stop_mu;
  bool stopped = false;  // guarded by stop_mu

  void Accept() {
    auto& target = workers[next_worker];
    next_worker = (next_worker + 1) % workers.size();
    acceptor->async_accept(*target->io, [this, target](error_code ec, Tcp::socket socket) {
      if (!acceptor->is_open() || state->stopping.load()) return;
      if (ec) {
        // Out of descriptors and the like: try again shortly rather than spin.
        auto timer = std::make_shared<boost::asio::steady_timer>(*workers[0]->io);
        timer->expires_after(
            std::chrono::milliseconds(ec == boost::asio::error::operation_aborted ? 0 : 10));
        timer->async_wait([this, timer](error_code) {
          if (acceptor->is_open() && !state->stopping.load()) Accept();
        });
        return;
      }
      if (state->connections.load(std::memory_order_relaxed) >= state->options.max_connections) {
        error_code ignored;
        socket.close(ignored);
      } else {
        error_code ignored;
        socket.set_option(Tcp::no_delay(true), ignored);
        target->Post([this, target, s = std::make_shared<Tcp::socket>(std::move(socket))]() {
          if (state->stopping.load()) return;
          if (tls != nullptr) {
            std::make_shared<detail::Handshake>(state, target, std::move(*s), *tls)->Run();
          } else {
            std::make_shared<detail::Sniffer>(state, target, std::move(*s))->Run();
          }
        });
      }
      Accept();
    });
  }

  // Runs `f` on every worker's thread and waits for all to have run it.
  template <typename F>
  void OnEveryWorker(F f) {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t done = 0;
    for (auto& w : workers) {
      w->Post([&, w]() {
        f(*w);
        std::lock_guard<std::mutex> lock(mu);
        ++done;
        cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == workers.size(); });
  }

  void Stop() {
    std::lock_guard<std::mutex> stop_lock(stop_mu);
    if (stopped) return;
    stopped = true;
    state->stopping.store(true);
    boost::asio::post(*workers[0]->io, [this]() {
      error_code ignored;
      acceptor->close(ignored);
    });
    OnEveryWorker([](detail::Worker& w) {
      std::vector<detail::Connection*> all(w.connections.begin(), w.connections.end());
      for (detail::Connection* c : all) {
        if (w.connections.count(c) != 0) c->BeginStop();
      }
    });
    const auto deadline = Clock::now() + state->options.stop_grace;
    while (state->connections.load() != 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    OnEveryWorker([](detail::Worker& w) {
      std::vector<detail::Connection*> all(w.connections.begin(), w.connections.end());
      for (detail::Connection* c : all) {
        if (w.connections.count(c) != 0) c->ForceClose();
      }
    });
    for (auto& g : guards) g.reset();
    // Closed sockets' handlers run; then each loop runs out of work.
    const auto drain_deadline = Clock::now() + std::chrono::milliseconds(500);
    while (state->connections.load() != 0 && Clock::now() < drain_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (auto& w : workers) w->io->stop();
    for (auto& t : threads) t.join();
    threads.clear();
    acceptor.reset();
    for (auto& w : workers) {
      {
        std::lock_guard<std::mutex> lock(w->mu);
        w->running = false;
      }
      w->io.reset();  // destroys what is left (connections and their bodies)
    }
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }
std::uint16_t HttpServer::port() const { return impl_->port; }
void HttpServer::Stop() { impl_->Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                              wire::HttpHandler handler) {
  if (!handler) return absl::InvalidArgumentError("HttpServer: no handler");
  if (options.threads < 0) return absl::InvalidArgumentError("HttpServer: threads < 0");
  if (options.threads == 0) {
    options.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  if (options.tls_certificate_file.empty() != options.tls_private_key_file.empty()) {
    return absl::InvalidArgumentError(
        "HttpServer: TLS needs both a certificate file and a private key file");
  }
  auto impl = std::make_unique<Impl>();
  impl->state = std::make_shared<detail::ServerState>();
  impl->state->options = std::move(options);
  impl->state->handler = std::move(handler);
  const HttpServerOptions& opts = impl->state->options;

  if (!opts.tls_certificate_file.empty()) {
    namespace ssl = boost::asio::ssl;
    auto tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    error_code ec;
    ERR_clear_error();
    tls->use_certificate_chain_file(opts.tls_certificate_file, ec);
    if (ec) {
      return absl::InvalidArgumentError("HttpServer: cannot use TLS certificate file '" +
                                        opts.tls_certificate_file + "': " + ec.message() + " " +
                                        detail::OpenSslReason());
    }
    tls->use_private_key_file(opts.tls_private_key_file, ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError("HttpServer: cannot use TLS private key file '" +
                                        opts.tls_private_key_file + "': " + ec.message() + " " +
                                        detail::OpenSslReason());
    }
    if (SSL_CTX_check_private_key(tls->native_handle()) != 1) {
      return absl::InvalidArgumentError(
          "HttpServer: TLS private key '" + opts.tls_private_key_file +
          "' does not match the certificate '" + opts.tls_certificate_file +
          "': " + detail::OpenSslReason());
    }
    SSL_CTX_set_alpn_select_cb(tls->native_handle(), detail::SelectAlpn, nullptr);
    impl->tls = std::move(tls);
  }

  for (int i = 0; i < opts.threads; ++i) {
    auto w = std::make_shared<detail::Worker>();
    w->io.emplace(1);
    impl->guards.emplace_back(boost::asio::make_work_guard(*w->io));
    impl->workers.push_back(std::move(w));
  }

  error_code ec;
  const auto address = boost::asio::ip::make_address(opts.bind_address, ec);
  if (ec) {
    return absl::InvalidArgumentError("HttpServer: bad bind address '" + opts.bind_address +
                                      "': " + ec.message());
  }
  const Tcp::endpoint endpoint(address, opts.port);
  const std::string where = opts.bind_address + ":" + std::to_string(opts.port);
  impl->acceptor = std::make_unique<Tcp::acceptor>(*impl->workers[0]->io);
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(Tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError("HttpServer: cannot listen on " + where + ": " + ec.message());
  }
  impl->port = impl->acceptor->local_endpoint(ec).port();

  Impl* raw = impl.get();
  boost::asio::post(*raw->workers[0]->io, [raw]() { raw->Accept(); });
  for (auto& w : raw->workers) {
    raw->threads.emplace_back([w]() { w->io->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

}  // namespace kinlet::gateway
