// HTTP/2 connections over libnghttp2's server session (framing, HPACK, flow
// control); the I/O loop is ours. Requests are dispatched when their stream's
// END_STREAM arrives; StreamBody responses use deferred data providers: the
// provider returns NGHTTP2_ERR_DEFERRED until the body wakes, and Pull is called
// from the provider, i.e. only when flow control lets nghttp2 send more.
//
// Threads: everything below runs on the connection's worker thread.
#pragma once

#include <nghttp2/nghttp2.h>

#include <array>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <map>

#include "http_detail.hpp"

namespace kinlet::gateway::detail {

using boost::system::error_code;

struct H2Stream {
  wire::HttpRequest request;
  std::size_t header_bytes = 0;
  bool too_large = false;
  bool dispatched = false;
  Clock::time_point started;
  int status = 0;
  std::uint64_t body_bytes = 0;
  // Static body.
  std::string text;
  std::size_t text_offset = 0;
  // Streamed body (body != nullptr until it ended or was cancelled).
  std::shared_ptr<wire::StreamBody> body;
  bool wake_pending = false;
  bool body_done = false;
  bool cancelled = false;  // Cancel(true) sent
  std::string pending;
  std::size_t pending_offset = 0;
};

// The I/O-free part: an nghttp2 server session and its streams.
class H2Session {
 public:
  H2Session(ServerState& state, std::string remote, bool tls)
      : server_(state), remote_(std::move(remote)), tls_(tls) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cb, OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, OnDataChunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, OnFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, OnStreamClose);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    nghttp2_session_server_new2(&session_, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 256},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(std::min<std::size_t>(
                                                    server_.options.max_header_bytes, UINT32_MAX))},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 3);
    // A larger connection window so uploads are not throttled to 64 KiB per RTT.
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 16 << 20);
  }
  virtual ~H2Session() { nghttp2_session_del(session_); }
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Feeds received bytes; false on a fatal protocol error (a GOAWAY may be
  // queued: flush, then close).
  bool Receive(const char* data, std::size_t n) {
    const auto rv =
        nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(data), n);
    return rv >= 0;
  }

  // Appends frames ready to send, up to about `limit` bytes. False on a fatal
  // error.
  bool TakeOutput(std::string* out, std::size_t limit) {
    while (out->size() < limit) {
      const std::uint8_t* data = nullptr;
      const auto n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return false;
      if (n == 0) break;
      out->append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    return true;
  }

  bool Finished() const {
    return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
  }
  bool HasStreams() const { return !streams_.empty(); }
  bool HasStreamedBodies() const {
    for (const auto& [id, s] : streams_) {
      if (s->body != nullptr) return true;
    }
    return false;
  }

  // Stop(): GOAWAY (streams in flight finish), Cancel(true) every body.
  void BeginStopSession() {
    stopping_ = true;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    for (auto& [id, s] : streams_) {
      if (s->body != nullptr && !s->body_done && !s->cancelled) {
        s->cancelled = true;
        s->body->Cancel(true);
      }
    }
  }

  // The connection is gone: Cancel(false) every body still open (unless it
  // was told the server is stopping) and log unanswered exchanges.
  void Abandon() {
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, s] : streams) {
      if (s->body != nullptr && !s->body_done && !s->cancelled) {
        auto body = std::move(s->body);
        body->Cancel(false);
      }
    }
  }

  void OnWake(std::int32_t id) {
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second->body == nullptr || it->second->body_done) return;
    it->second->wake_pending = true;
    nghttp2_session_resume_data(session_, id);
  }

 protected:
  // Called when a body was started; the connection binds wakes to OnWake.
  virtual std::function<void()> MakeWake(std::int32_t id) = 0;

  ServerState& server_;
  const std::string remote_;
  const bool tls_;
  bool stopping_ = false;
  nghttp2_session* session_ = nullptr;

 private:
  static H2Session* Me(void* user) { return static_cast<H2Session*>(user); }
  H2Stream* Find(std::int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    H2Session* me = Me(user);
    auto s = std::make_unique<H2Stream>();
    s->request.version = 20;
    s->request.remote_address = me->remote_;
    s->request.tls = me->tls_;
    s->request.headers.reserve(16);
    me->streams_[frame->hd.stream_id] = std::move(s);
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                      std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                      std::uint8_t, void* user) {
    H2Stream* s = Me(user)->Find(frame->hd.stream_id);
    if (s == nullptr) return 0;
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > Me(user)->server_.options.max_header_bytes) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // RST_STREAM
    }
    wire::HttpHeader h;
    h.name.assign(reinterpret_cast<const char*>(name), namelen);
    h.value.assign(reinterpret_cast<const char*>(value), valuelen);
    if (h.name == ":method") {
      s->request.method = h.value;
    } else if (h.name == ":path") {
      s->request.target = h.value;
    }
    s->request.headers.push_back(std::move(h));
    return 0;
  }

  static int OnDataChunk(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                         std::size_t len, void* user) {
    H2Session* me = Me(user);
    H2Stream* s = me->Find(id);
    if (s == nullptr || s->too_large) return 0;
    if (s->request.body.size() + len > me->server_.options.max_request_body_bytes) {
      s->too_large = true;
      std::string().swap(s->request.body);
      return 0;
    }
    s->request.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      H2Session* me = Me(user);
      H2Stream* s = me->Find(frame->hd.stream_id);
      if (s != nullptr && !s->dispatched) me->Dispatch(frame->hd.stream_id, s);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, std::int32_t id, std::uint32_t, void* user) {
    H2Session* me = Me(user);
    auto it = me->streams_.find(id);
    if (it == me->streams_.end()) return 0;
    std::unique_ptr<H2Stream> s = std::move(it->second);
    me->streams_.erase(it);
    if (s->body != nullptr && !s->body_done && !s->cancelled) {
      auto body = std::move(s->body);
      body->Cancel(false);  // RST_STREAM or the connection went away mid-stream
    } else if (s->dispatched) {
      LogExchange(me->server_, s->request.method, s->request.target, 20, me->remote_, s->status,
                  s->body_bytes, s->started);
    }
    return 0;
  }

  static ssize_t ReadBody(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                          std::uint32_t* flags, nghttp2_data_source* source, void*) {
    H2Stream* s = static_cast<H2Stream*>(source->ptr);
    if (s->body == nullptr && !s->body_done) {
      const std::size_t n = std::min(length, s->text.size() - s->text_offset);
      std::memcpy(buf, s->text.data() + s->text_offset, n);
      s->text_offset += n;
      s->body_bytes += n;
      if (s->text_offset == s->text.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    }
    if (s->pending_offset == s->pending.size()) {
      s->pending.clear();
      s->pending_offset = 0;
      if (!s->body_done && s->wake_pending && s->body != nullptr) {
        s->wake_pending = false;
        if (!s->body->Pull(&s->pending)) {
          s->body_done = true;
          s->body.reset();
        }
      }
    }
    const std::size_t n = std::min(length, s->pending.size() - s->pending_offset);
    std::memcpy(buf, s->pending.data() + s->pending_offset, n);
    s->pending_offset += n;
    s->body_bytes += n;
    if (s->body_done && s->pending_offset == s->pending.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    }
    if (n == 0) return NGHTTP2_ERR_DEFERRED;
    return static_cast<ssize_t>(n);
  }

  void Dispatch(std::int32_t id, H2Stream* s) {
    s->dispatched = true;
    s->started = Clock::now();
    wire::HttpResponse response;
    if (s->too_large) {
      response.status = 413;
      response.headers.push_back({"content-type", "text/plain"});
      response.body = "request body too large\n";
    } else {
      response = CallHandler(server_, s->request);
    }
    s->status = response.status;
    const bool head = s->request.method == "HEAD";
    const bool no_body = head || response.status == 204 || response.status == 304 ||
                         (response.status >= 100 && response.status < 200);
    std::string status = std::to_string(response.status);
    std::string length = std::to_string(response.body.size());
    std::vector<nghttp2_nv> nva;
    nva.reserve(response.headers.size() + 3);
    auto add = [&nva](std::string_view n, std::string_view v) {
      nva.push_back({const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(n.data())),
                     const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(v.data())),
                     n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    };
    add(":status", status);
    for (const wire::HttpHeader& h : response.headers) {
      if (IsServerOwnedHeader(h.name)) continue;
      add(h.name, h.value);
    }
    if (response.stream == nullptr && !(no_body && !head)) add("content-length", length);
    add("date", HttpDate());

    nghttp2_data_provider provider;
    provider.source.ptr = s;
    provider.read_callback = ReadBody;
    const bool streamed = response.stream != nullptr && !no_body;
    if (streamed) {
      s->body = std::move(response.stream);
      s->wake_pending = true;  // Pull once after Start
    } else {
      s->text = no_body ? std::string() : std::move(response.body);
    }
    const bool empty = !streamed && s->text.empty();
    if (nghttp2_submit_response(session_, id, nva.data(), nva.size(),
                                empty ? nullptr : &provider) != 0) {
      s->body.reset();  // never started
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
      return;
    }
    std::string().swap(s->request.body);
    if (streamed) {
      std::shared_ptr<wire::StreamBody> body = s->body;
      body->Start(MakeWake(id));
      if (stopping_ && !s->cancelled && s->body != nullptr) {
        s->cancelled = true;
        s->body->Cancel(true);
      }
    }
  }

  std::map<std::int32_t, std::unique_ptr<H2Stream>> streams_;
};

template <typename Stream>
class Http2Connection final : public Connection,
                              public H2Session,
                              public std::enable_shared_from_this<Http2Connection<Stream>> {
 public:
  Http2Connection(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker, Stream stream)
      : Connection(std::move(state), std::move(worker)),
        H2Session(*state_, StreamOps<Stream>::Remote(stream), StreamOps<Stream>::kTls),
        stream_(std::move(stream)),
        timer_(*worker_->io) {}

  void Run(const std::string& initial) {
    if (state_->stopping.load(std::memory_order_relaxed)) BeginStopSession();
    if (!initial.empty() && !Receive(initial.data(), initial.size())) fatal_ = true;
    Flush();
    Read();
  }

  void BeginStop() override {
    if (closed_) return;
    BeginStopSession();
    Flush();
  }
  void ForceClose() override { Close(); }

 private:
  auto Self() { return this->shared_from_this(); }

  std::function<void()> MakeWake(std::int32_t id) override {
    auto weak = std::weak_ptr<Http2Connection>(Self());
    std::shared_ptr<Worker> worker = worker_;
    return [worker, weak, id]() {
      worker->Post([weak, id]() {
        auto self = weak.lock();
        if (self == nullptr || self->closed_) return;
        self->OnWake(id);
        self->Flush();
      });
    };
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    StreamOps<Stream>::Close(stream_);
    Abandon();
  }

  void ArmIdle() {
    const std::uint64_t gen = ++timer_gen_;
    timer_.expires_after(state_->options.idle_timeout);
    timer_.async_wait([self = Self(), gen](error_code ec) {
      if (ec || gen != self->timer_gen_ || self->closed_) return;
      if (self->HasStreamedBodies()) return self->ArmIdle();
      self->Close();
    });
  }

  void Read() {
    if (closed_ || fatal_) return;
    ArmIdle();
    stream_.async_read_some(boost::asio::buffer(in_),
                            [self = Self()](error_code ec, std::size_t n) {
                              if (self->closed_) return;
                              if (ec) return self->Close();
                              if (!self->Receive(self->in_.data(), n)) self->fatal_ = true;
                              self->Flush();
                              self->Read();
                            });
  }

  void Flush() {
    if (closed_ || writing_) return;
    out_.clear();
    if (!TakeOutput(&out_, 64 * 1024)) fatal_ = true;
    if (out_.empty()) {
      if (fatal_ || Finished()) {
        StreamOps<Stream>::ShutdownSend(stream_);
        Close();
      }
      return;
    }
    writing_ = true;
    boost::asio::async_write(stream_, boost::asio::buffer(out_),
                             [self = Self()](error_code ec, std::size_t) {
                               self->writing_ = false;
                               if (self->closed_) return;
                               if (ec) return self->Close();
                               self->Flush();
                             });
  }

  Stream stream_;
  boost::asio::steady_timer timer_;
  std::uint64_t timer_gen_ = 0;
  std::array<char, 16384> in_;
  std::string out_;
  bool writing_ = false;
  bool closed_ = false;
  bool fatal_ = false;
};

template <typename Stream>
void Start2(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker, Stream stream,
            std::string initial) {
  auto conn = std::make_shared<Http2Connection<Stream>>(std::move(state), std::move(worker),
                                                        std::move(stream));
  conn->Run(initial);
}

}  // namespace kinlet::gateway::detail
