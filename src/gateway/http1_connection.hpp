// HTTP/1.1 connections: Boost.Beast parses requests; responses are serialized
// here (status line, headers, content-length or chunked framing) into a buffer
// reused across requests. One request at a time: pipelined requests wait in the
// read buffer, so responses leave in order.
//
// Threads: everything below runs on the connection's worker thread; StreamBody
// wakes reach it through Worker::Post.
#pragma once

#include <array>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <optional>

#include "http_detail.hpp"

namespace kinlet::gateway::detail {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;

template <typename Stream>
class Http1Connection final : public Connection,
                              public std::enable_shared_from_this<Http1Connection<Stream>> {
 public:
  Http1Connection(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker, Stream stream,
                  std::string initial)
      : Connection(std::move(state), std::move(worker)),
        stream_(std::move(stream)),
        timer_(*worker_->io),
        remote_(StreamOps<Stream>::Remote(stream_)) {
    if (!initial.empty()) {
      auto dst = buffer_.prepare(initial.size());
      std::memcpy(dst.data(), initial.data(), initial.size());
      buffer_.commit(initial.size());
    }
  }

  void Run() { ReadNext(); }

  void BeginStop() override {
    stopping_ = true;
    if (phase_ == Phase::kIdle || phase_ == Phase::kAfterStream) return Close();
    if (phase_ == Phase::kStreaming && body_ != nullptr && !body_done_ && !cancelled_) {
      cancelled_ = true;
      body_->Cancel(true);
    }
  }
  void ForceClose() override {
    body_.reset();
    Close();
  }

 private:
  enum class Phase { kIdle, kReading, kWriting, kStreaming, kAfterStream, kClosing };

  auto Self() { return this->shared_from_this(); }

  void ArmTimer(std::chrono::milliseconds after) {
    const std::uint64_t gen = ++timer_gen_;
    timer_.expires_after(after);
    timer_.async_wait([self = Self(), gen](error_code ec) {
      if (ec || gen != self->timer_gen_ || self->closed_) return;
      self->Close();
    });
  }
  void DisarmTimer() {
    ++timer_gen_;
    timer_.cancel();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    phase_ = Phase::kClosing;
    DisarmTimer();
    StreamOps<Stream>::Close(stream_);
    if (body_ != nullptr && !body_done_ && !cancelled_) {
      auto body = std::move(body_);
      body->Cancel(false);
    }
    body_.reset();
  }

  // Waits for the first byte of the next request (idle timeout), then reads it.
  void ReadNext() {
    if (closed_) return;
    if (stopping_ || state_->stopping.load(std::memory_order_relaxed)) {
      stopping_ = true;
      if (buffer_.size() == 0) return Close();
    }
    if (buffer_.size() > 0) return ReadRequest();
    phase_ = Phase::kIdle;
    ArmTimer(state_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(8192), [self = Self()](error_code ec, std::size_t n) {
      if (self->closed_) return;
      if (ec) return self->Close();
      self->buffer_.commit(n);
      self->ReadRequest();
    });
  }

  void ReadRequest() {
    phase_ = Phase::kReading;
    ArmTimer(state_->options.request_timeout);
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(state_->options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(state_->options.max_request_body_bytes);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = Self()](error_code ec, std::size_t) {
                              if (self->closed_) return;
                              if (ec) return self->ReadFailed(ec);
                              self->ReadBody();
                            });
  }

  void ReadBody() {
    if (!parser_->is_done()) {
      const auto& msg = parser_->get();
      auto expect = msg.find(http::field::expect);
      if (expect != msg.end() && beast::iequals(expect->value(), "100-continue") &&
          buffer_.size() == 0) {
        // The client waits for this before sending the body.
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                          [self = Self()](error_code ec, std::size_t) {
                            if (self->closed_) return;
                            if (ec) return self->Close();
                            self->ReadRest();
                          });
        return;
      }
    }
    ReadRest();
  }

  void ReadRest() {
    if (parser_->is_done()) return Handle();
    http::async_read(stream_, buffer_, *parser_, [self = Self()](error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec) return self->ReadFailed(ec);
      self->Handle();
    });
  }

  void ReadFailed(error_code ec) {
    if (ec == http::error::body_limit) {
      return SendErrorAndClose(413, "request body too large\n");
    }
    if (ec == http::error::header_limit) {
      return SendErrorAndClose(431, "request header fields too large\n");
    }
    if (ec.category() == make_error_code(http::error::end_of_stream).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message &&
        ec != http::error::buffer_overflow) {
      return SendErrorAndClose(400, "malformed request\n");
    }
    Close();
  }

  // A response to a request the server could not read, then a lingering close
  // (so the client reads the response before its unread bytes reset the
  // connection).
  void SendErrorAndClose(int status, std::string_view text) {
    DisarmTimer();
    phase_ = Phase::kWriting;
    head_.clear();
    AppendStatusLine(11, status);
    head_.append("content-type: text/plain\r\ncontent-length: ");
    head_.append(std::to_string(text.size()));
    head_.append("\r\nconnection: close\r\ndate: ");
    head_.append(HttpDate());
    head_.append("\r\n\r\n");
    head_.append(text);
    asio::async_write(stream_, asio::buffer(head_), [self = Self()](error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec) return self->Close();
      self->Linger();
    });
  }

  void Linger() {
    StreamOps<Stream>::ShutdownSend(stream_);
    ArmTimer(std::chrono::milliseconds(1000));
    buffer_.clear();
    DrainSome();
  }
  void DrainSome() {
    stream_.async_read_some(buffer_.prepare(16384), [self = Self()](error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec || ++self->drained_reads_ > 256) return self->Close();
      self->DrainSome();
    });
  }

  void Handle() {
    DisarmTimer();
    auto& msg = parser_->get();
    wire::HttpRequest request;
    request.method.assign(msg.method_string().data(), msg.method_string().size());
    request.target.assign(msg.target().data(), msg.target().size());
    request.version = msg.version() == 10 ? 10 : 11;
    request.headers.reserve(16);
    for (const auto& field : msg) {
      wire::HttpHeader h;
      h.name.assign(field.name_string().data(), field.name_string().size());
      for (char& c : h.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      h.value.assign(field.value().data(), field.value().size());
      request.headers.push_back(std::move(h));
    }
    request.body = std::move(msg.body());
    request.remote_address = remote_;
    request.tls = StreamOps<Stream>::kTls;
    keep_alive_ = msg.keep_alive();
    head_request_ = msg.method() == http::verb::head;
    parser_.reset();
    started_ = Clock::now();

    wire::HttpResponse response = CallHandler(*state_, request);
    log_method_ = std::move(request.method);
    log_target_ = std::move(request.target);
    log_version_ = request.version;
    WriteResponse(std::move(response));
  }

  void AppendStatusLine(int version, int status) {
    head_.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    char code[8];
    std::snprintf(code, sizeof code, "%03d ", status);
    head_.append(code);
    head_.append(ReasonPhrase(status));
    head_.append("\r\n");
  }

  void WriteResponse(wire::HttpResponse response) {
    phase_ = Phase::kWriting;
    status_ = response.status;
    const bool streamed = response.stream != nullptr;
    const bool no_body =
        head_request_ || (status_ >= 100 && status_ < 200) || status_ == 204 || status_ == 304;
    if (stopping_ || state_->stopping.load(std::memory_order_relaxed)) {
      stopping_ = true;
      keep_alive_ = false;
    }
    chunked_ = streamed && log_version_ == 11 && !no_body;
    if (streamed && log_version_ == 10) keep_alive_ = false;  // close-delimited
    close_after_ = !keep_alive_;

    head_.clear();
    AppendStatusLine(log_version_, status_);
    for (const wire::HttpHeader& h : response.headers) {
      if (IsServerOwnedHeader(h.name)) continue;
      if (h.name.find_first_of("\r\n:") != std::string::npos ||
          h.value.find_first_of("\r\n") != std::string::npos) {
        continue;  // never let a header split the response
      }
      head_.append(h.name);
      head_.append(": ");
      head_.append(h.value);
      head_.append("\r\n");
    }
    if (chunked_) {
      head_.append("transfer-encoding: chunked\r\n");
    } else if (!streamed &&
               !(status_ == 204 || (status_ >= 100 && status_ < 200) || status_ == 304)) {
      head_.append("content-length: ");
      head_.append(std::to_string(response.body.size()));
      head_.append("\r\n");
    }
    head_.append("date: ");
    head_.append(HttpDate());
    head_.append("\r\n");
    if (!keep_alive_) {
      head_.append("connection: close\r\n");
    } else if (log_version_ == 10) {
      head_.append("connection: keep-alive\r\n");
    }
    head_.append("\r\n");

    if (streamed && !no_body) {
      body_ = std::move(response.stream);
      asio::async_write(stream_, asio::buffer(head_), [self = Self()](error_code ec, std::size_t) {
        if (self->closed_) return;
        if (ec) {
          // Not started: the body never hears of this exchange.
          self->body_.reset();
          return self->Close();
        }
        self->StartStream();
      });
      return;
    }
    if (streamed) {
      // HEAD or a status without a body: the stream is not sent (nor started).
      response.stream.reset();
    }
    body_text_ = no_body ? std::string() : std::move(response.body);
    std::array<asio::const_buffer, 2> buffers = {asio::buffer(head_), asio::buffer(body_text_)};
    asio::async_write(stream_, buffers, [self = Self()](error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec) return self->Close();
      self->Finished(self->body_text_.size());
    });
  }

  void Finished(std::uint64_t body_bytes) {
    LogExchange(*state_, log_method_, log_target_, log_version_, remote_, status_, body_bytes,
                started_);
    if (close_after_) {
      StreamOps<Stream>::ShutdownSend(stream_);
      return Close();
    }
    ReadNext();
  }

  // --- Streamed responses ---------------------------------------------------------------

  void StartStream() {
    phase_ = Phase::kStreaming;
    ++stream_gen_;
    body_done_ = false;
    cancelled_ = false;
    body_bytes_ = 0;
    wake_pending_ = true;  // Pull once after Start
    auto weak = std::weak_ptr<Http1Connection>(Self());
    std::shared_ptr<Worker> worker = worker_;
    const std::uint64_t gen = stream_gen_;
    body_->Start([worker, weak, gen]() {
      worker->Post([weak, gen]() {
        if (auto self = weak.lock()) self->OnWake(gen);
      });
    });
    if (closed_ || body_ == nullptr) return;
    Watch();
    if (stopping_ && !cancelled_) {
      cancelled_ = true;
      body_->Cancel(true);
    }
    Pump();
  }

  // Reads while a response streams, to see the peer go away; bytes of a
  // pipelined next request are kept (up to the header limit).
  void Watch() {
    if (watching_ || closed_ || buffer_.size() > state_->options.max_header_bytes) return;
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(4096), [self = Self()](error_code ec, std::size_t n) {
      self->watching_ = false;
      if (self->closed_) return;
      if (ec) return self->Close();  // Cancel(false) if the body is still open
      self->buffer_.commit(n);
      if (self->phase_ == Phase::kAfterStream) {
        self->DisarmTimer();
        return self->ReadNext();
      }
      self->Watch();
    });
  }

  void OnWake(std::uint64_t gen) {
    if (closed_ || gen != stream_gen_ || body_ == nullptr || body_done_) return;
    wake_pending_ = true;
    Pump();
  }

  void Pump() {
    if (closed_ || writing_ || body_ == nullptr || body_done_ || !wake_pending_) return;
    wake_pending_ = false;
    pulled_.clear();
    const bool more = body_->Pull(&pulled_);
    if (!more) body_done_ = true;
    chunk_.clear();
    if (!pulled_.empty()) {
      body_bytes_ += pulled_.size();
      if (chunked_) {
        char size[24];
        std::snprintf(size, sizeof size, "%zx\r\n", pulled_.size());
        chunk_.append(size);
        chunk_.append(pulled_);
        chunk_.append("\r\n");
      } else {
        chunk_.swap(pulled_);
      }
    }
    if (!more && chunked_) chunk_.append("0\r\n\r\n");
    if (chunk_.empty()) {
      if (!more) StreamEnded();
      return;
    }
    writing_ = true;
    asio::async_write(stream_, asio::buffer(chunk_), [self = Self()](error_code ec, std::size_t) {
      self->writing_ = false;
      if (self->closed_) return;
      if (ec) return self->Close();
      if (self->body_done_) return self->StreamEnded();
      self->Pump();
    });
  }

  void StreamEnded() {
    body_.reset();
    LogExchange(*state_, log_method_, log_target_, log_version_, remote_, status_, body_bytes_,
                started_);
    if (close_after_ || stopping_) {
      StreamOps<Stream>::ShutdownSend(stream_);
      return Close();
    }
    if (watching_) {
      // The pending watch read continues with the next request.
      phase_ = Phase::kAfterStream;
      ArmTimer(state_->options.idle_timeout);
      return;
    }
    ReadNext();
  }

  Stream stream_;
  asio::steady_timer timer_;
  std::uint64_t timer_gen_ = 0;
  const std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Phase phase_ = Phase::kIdle;
  bool closed_ = false;
  bool stopping_ = false;
  int drained_reads_ = 0;

  // The exchange in progress.
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool close_after_ = false;
  bool chunked_ = false;
  int status_ = 0;
  std::string head_;
  std::string body_text_;
  std::string log_method_;
  std::string log_target_;
  int log_version_ = 11;
  Clock::time_point started_;

  // The streamed body in progress (body_ != nullptr).
  std::shared_ptr<wire::StreamBody> body_;
  std::uint64_t stream_gen_ = 0;
  bool wake_pending_ = false;
  bool body_done_ = false;
  bool cancelled_ = false;  // Cancel(true) sent
  bool writing_ = false;
  bool watching_ = false;
  std::uint64_t body_bytes_ = 0;
  std::string pulled_;
  std::string chunk_;
};

template <typename Stream>
void Start1(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker, Stream stream,
            std::string initial) {
  auto conn = std::make_shared<Http1Connection<Stream>>(std::move(state), std::move(worker),
                                                        std::move(stream), std::move(initial));
  conn->Run();
}

}  // namespace kinlet::gateway::detail
