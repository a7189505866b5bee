// The remote backend's HTTP client (see kinlet/remote/http_client.hpp): plain
// calls performed on the caller's thread over a pool of easy handles
// ("lanes"), streamed calls on one curl multi handle driven by one thread.
//
// Ownership and threads:
//  - Lanes: an idle lane (an easy handle and the keep-alive connection its
//    private cache holds) is in idle_lanes_, guarded by lanes_mu_; a caller
//    takes one out, owns it alone for its transfer (curl_easy_perform on its
//    own thread), and puts it back. A lane is thus used by one thread at a
//    time (libcurl's rule); connections are never shared between concurrent
//    threads (CURL_LOCK_DATA_CONNECT across threads is unsupported by
//    libcurl). share_ (DNS cache and TLS sessions, which libcurl does support
//    sharing between threads) is locked through share_mu_, one mutex per
//    curl_lock_data.
//  - Impl::mu_ guards queue_ and stopping_ (written by callers and the loop).
//  - Everything else of Impl (the multi handle's state, pool_, active_) is the
//    loop thread's alone; callers reach it only through queued commands and
//    curl_multi_wakeup (documented thread-safe).
//  - A Transfer's request fields are written by the submitting thread before
//    it is queued (the queue's mutex publishes them) and read by the loop
//    only. Its loop_* fields are the loop's. Its result fields are written by
//    the loop and read by waiters under Transfer::mu.
#include "kinlet/remote/http_client.hpp"

#include <curl/curl.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace kinlet::remote {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// A status with its own representation, for a waiter (a transport error has
// no payload). The loop thread's status is only read under the Transfer's
// mutex and freed with the Transfer (shared_ptr: ordered after the waiter's
// reads). Sharing the representation instead would let the loop thread free
// it after the waiter read it, ordered only by absl::Status's reference count,
// whose atomics live in Debian's uninstrumented libabsl_status: a
// ThreadSanitizer report (a false one, but CI halts on it).
absl::Status OwnCopy(const absl::Status& s) {
  return absl::Status(s.code(), std::string(s.message()));
}

struct Transfer {
  // Request: written before submission, then read by the loop only.
  HttpCall call;
  bool streaming = false;
  HttpStreamSink sink;
  std::function<void(absl::Status)> on_done;

  // The performing thread only (the loop, or a lane's caller).
  CURL* loop_easy = nullptr;
  curl_slist* loop_headers = nullptr;
  bool loop_status_known = false;
  long loop_status = 0;
  std::string loop_body;
  char loop_error[CURL_ERROR_SIZE] = {0};

  // Results: written by the loop, read by waiters, under mu.
  std::mutex mu;
  std::condition_variable cv;
  bool status_ready = false;  // status known (or the exchange is over)
  bool done = false;
  absl::Status transport;  // OK, or why the exchange failed
  HttpResult result;
};

enum class CommandKind { kStart, kResume, kCancel };
struct Command {
  CommandKind kind;
  std::shared_ptr<Transfer> transfer;
};

}  // namespace

struct HttpClient::Impl : std::enable_shared_from_this<HttpClient::Impl> {
  explicit Impl(HttpClientOptions o) : options(std::move(o)) {}

  ~Impl() {
    for (CURL* easy : pool_) curl_easy_cleanup(easy);
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
    // Every lane is idle here: Post holds the Impl while it runs.
    for (CURL* easy : idle_lanes_) curl_easy_cleanup(easy);
    if (share_ != nullptr) curl_share_cleanup(share_);
  }

  absl::Status Init() {
    share_ = curl_share_init();
    if (share_ == nullptr) return absl::InternalError("curl_share_init failed");
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &Impl::LockShare);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &Impl::UnlockShare);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    multi_ = curl_multi_init();
    if (multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, long{CURLPIPE_MULTIPLEX});
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, long{options.max_connections});
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    curl_multi_wakeup(multi_);
    if (thread_.joinable()) thread_.join();
  }

  // False when the client is stopping (the command is not run).
  bool Submit(Command command) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return false;
      queue_.push_back(std::move(command));
    }
    curl_multi_wakeup(multi_);
    return true;
  }

  // Performs `call` on the calling thread over an idle lane (a new one when
  // none is idle).
  absl::StatusOr<HttpResult> PerformOnCaller(HttpCall call) {
    CURL* easy = nullptr;
    {
      std::lock_guard<std::mutex> lock(lanes_mu_);
      if (!idle_lanes_.empty()) {
        easy = idle_lanes_.back();
        idle_lanes_.pop_back();
      }
    }
    if (easy == nullptr) {
      easy = curl_easy_init();
      if (easy == nullptr) return absl::UnavailableError("curl_easy_init failed");
      curl_easy_setopt(easy, CURLOPT_SHARE, share_);
    }
    Transfer t;
    t.call = std::move(call);
    t.loop_easy = easy;
    Configure(t, easy);
    const CURLcode code = curl_easy_perform(easy);
    absl::Status transport = TransportStatus(t, code);
    HttpResult result;
    if (transport.ok()) {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &result.status);
      long version = 0;
      curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
      result.http_version = version == CURL_HTTP_VERSION_2_0 ? 20 : 11;
      const char* type = nullptr;
      curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &type);
      if (type != nullptr) result.content_type = type;
      result.body = std::move(t.loop_body);
    }
    // Nothing of `t` may be reached through the lane once it is idle.
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, nullptr);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, nullptr);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, nullptr);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, nullptr);
    curl_slist_free_all(t.loop_headers);
    t.loop_headers = nullptr;
    bool keep = false;
    {
      std::lock_guard<std::mutex> lock(lanes_mu_);
      if (static_cast<int>(idle_lanes_.size()) < options.max_connections) {
        idle_lanes_.push_back(easy);
        keep = true;
      }
    }
    if (!keep) curl_easy_cleanup(easy);
    if (!transport.ok()) return transport;
    return result;
  }

  const HttpClientOptions options;

 private:
  static void LockShare(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Impl*>(user)->share_mu_[data].lock();
  }
  static void UnlockShare(CURL*, curl_lock_data data, void* user) {
    static_cast<Impl*>(user)->share_mu_[data].unlock();
  }

  // OK, or the transfer's failure as kUnavailable (a timeout's says so).
  static absl::Status TransportStatus(const Transfer& t, CURLcode code) {
    if (code == CURLE_OK) return absl::OkStatus();
    const char* detail = t.loop_error[0] != '\0' ? t.loop_error : curl_easy_strerror(code);
    return absl::UnavailableError(absl::StrCat(
        code == CURLE_OPERATION_TIMEDOUT ? "request timed out: " : "transport: ", detail, " (",
        t.call.url, ")"));
  }

  static size_t OnWrite(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * count;
    if (!t->loop_status_known) {
      curl_easy_getinfo(t->loop_easy, CURLINFO_RESPONSE_CODE, &t->loop_status);
      t->loop_status_known = true;
      if (t->streaming && t->loop_status == 200) {
        std::lock_guard<std::mutex> lock(t->mu);
        t->result.status = 200;
        t->status_ready = true;
        t->cv.notify_all();
      }
    }
    if (!t->streaming || t->loop_status != 200) {
      t->loop_body.append(data, n);
      return n;
    }
    if (!t->sink(std::string_view(data, n))) return CURL_WRITEFUNC_PAUSE;
    return n;
  }

  void Configure(Transfer& t, CURL* easy) {
    curl_easy_setopt(easy, CURLOPT_URL, t.call.url.c_str());
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t.call.body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(t.call.body.size()));
    for (const wire::HttpHeader& h : t.call.headers) {
      const std::string line = absl::StrCat(h.name, ": ", h.value);
      t.loop_headers = curl_slist_append(t.loop_headers, line.c_str());
    }
    // No "Expect: 100-continue" round trip, no default Accept.
    t.loop_headers = curl_slist_append(t.loop_headers, "Expect:");
    t.loop_headers = curl_slist_append(t.loop_headers, "Accept:");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t.loop_headers);
    long version = CURL_HTTP_VERSION_2TLS;
    switch (options.http_version) {
      case HttpVersion::kHttp11:
        version = CURL_HTTP_VERSION_1_1;
        break;
      case HttpVersion::kHttp2Tls:
        version = CURL_HTTP_VERSION_2TLS;
        break;
      case HttpVersion::kHttp2PriorKnowledge:
        version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
        break;
    }
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, version);
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, options.tls.verify_peer ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, options.tls.verify_peer ? 2L : 0L);
    if (!options.tls.ca_file.empty()) {
      curl_easy_setopt(easy, CURLOPT_CAINFO, options.tls.ca_file.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(options.connect_timeout)));
    curl_easy_setopt(
        easy, CURLOPT_TIMEOUT_MS,
        t.streaming ? 0L
                    : std::max(1L, static_cast<long>(absl::ToInt64Milliseconds(t.call.timeout))));
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Impl::OnWrite);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t.loop_error);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, &t);
    if (std::getenv("KINLET_CURL_VERBOSE") != nullptr) curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
  }

  void Start(std::shared_ptr<Transfer> t) {
    CURL* easy = nullptr;
    if (!pool_.empty()) {
      easy = pool_.back();
      pool_.pop_back();
    } else {
      easy = curl_easy_init();
    }
    if (easy == nullptr) {
      Finish(*t, absl::UnavailableError("curl_easy_init failed"));
      return;
    }
    t->loop_easy = easy;
    Configure(*t, easy);
    if (curl_multi_add_handle(multi_, easy) != CURLM_OK) {
      Release(*t);
      Finish(*t, absl::UnavailableError("curl_multi_add_handle failed"));
      return;
    }
    active_.emplace(easy, std::move(t));
  }

  // Detaches the transfer's easy handle and returns it to the pool.
  void Release(Transfer& t) {
    if (t.loop_easy != nullptr) {
      curl_multi_remove_handle(multi_, t.loop_easy);
      if (options.http_version == HttpVersion::kHttp11) {
        curl_easy_reset(t.loop_easy);
        pool_.push_back(t.loop_easy);
      } else {
        // libcurl 7.88 leaves a reset handle's HTTP/2 stream state behind: a
        // reused handle's next request on a multiplexed connection never
        // starts ("Error in the HTTP2 framing layer"). Fresh handles there.
        curl_easy_cleanup(t.loop_easy);
      }
      t.loop_easy = nullptr;
    }
    if (t.loop_headers != nullptr) {
      curl_slist_free_all(t.loop_headers);
      t.loop_headers = nullptr;
    }
  }

  static void Finish(Transfer& t, absl::Status transport) {
    std::function<void(absl::Status)> on_done;
    {
      std::lock_guard<std::mutex> lock(t.mu);
      if (t.done) return;
      t.done = true;
      t.status_ready = true;
      t.transport = transport;
      if (transport.ok()) {
        t.result.status = t.loop_status;
        t.result.body = std::move(t.loop_body);
      }
      on_done = std::move(t.on_done);
      t.cv.notify_all();
    }
    if (on_done) on_done(std::move(transport));
  }

  void Complete(CURL* easy, CURLcode code) {
    auto it = active_.find(easy);
    if (it == active_.end()) return;
    std::shared_ptr<Transfer> t = std::move(it->second);
    active_.erase(it);
    absl::Status transport = TransportStatus(*t, code);
    if (transport.ok()) {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->loop_status);
      long version = 0;
      curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
      const char* type = nullptr;
      curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &type);
      std::lock_guard<std::mutex> lock(t->mu);
      t->result.http_version = version == CURL_HTTP_VERSION_2_0 ? 20 : 11;
      if (type != nullptr) t->result.content_type = type;
    }
    Release(*t);
    Finish(*t, std::move(transport));
  }

  void Run(Command& c) {
    switch (c.kind) {
      case CommandKind::kStart:
        Start(std::move(c.transfer));
        break;
      case CommandKind::kResume:
        if (c.transfer->loop_easy != nullptr)
          curl_easy_pause(c.transfer->loop_easy, CURLPAUSE_CONT);
        break;
      case CommandKind::kCancel:
        if (auto it = active_.find(c.transfer->loop_easy);
            c.transfer->loop_easy != nullptr && it != active_.end()) {
          active_.erase(it);
          Release(*c.transfer);
          Finish(*c.transfer, absl::CancelledError("cancelled"));
        }
        break;
    }
  }

  void Loop() {
    std::vector<Command> commands;
    for (;;) {
      bool stopping;
      {
        std::lock_guard<std::mutex> lock(mu_);
        commands.swap(queue_);
        stopping = stopping_;
      }
      if (stopping) {
        for (Command& c : commands) {
          if (c.kind == CommandKind::kStart) {
            Finish(*c.transfer, absl::UnavailableError("the HTTP client was destroyed"));
          }
        }
        break;
      }
      for (Command& c : commands) Run(c);
      commands.clear();
      int running = 0;
      curl_multi_perform(multi_, &running);
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
        if (msg->msg == CURLMSG_DONE) Complete(msg->easy_handle, msg->data.result);
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!queue_.empty() || stopping_) continue;
      }
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
    // Ends whatever is still running.
    while (!active_.empty()) {
      auto it = active_.begin();
      std::shared_ptr<Transfer> t = std::move(it->second);
      active_.erase(it);
      Release(*t);
      Finish(*t, absl::UnavailableError("the HTTP client was destroyed"));
    }
  }

  CURLM* multi_ = nullptr;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Command> queue_;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  // Loop thread only.
  std::vector<CURL*> pool_;
  absl::flat_hash_map<CURL*, std::shared_ptr<Transfer>> active_;
  // Caller-driven calls (see the top of this file).
  CURLSH* share_ = nullptr;
  std::mutex share_mu_[CURL_LOCK_DATA_LAST];
  std::mutex lanes_mu_;
  std::vector<CURL*> idle_lanes_;  // guarded by lanes_mu_
};

namespace {

class StreamHandle : public HttpStreamHandle {
 public:
  StreamHandle(std::weak_ptr<HttpClient::Impl> client, std::shared_ptr<Transfer> t)
      : client_(std::move(client)), t_(std::move(t)) {}
  ~StreamHandle() override { Cancel(); }

  absl::StatusOr<long> AwaitStatus(std::string* error_body) override {
    std::unique_lock<std::mutex> lock(t_->mu);
    t_->cv.wait(lock, [&] { return t_->status_ready; });
    if (t_->done && !t_->transport.ok()) return OwnCopy(t_->transport);
    if (t_->result.status != 200 && error_body != nullptr) *error_body = t_->result.body;
    return t_->result.status;
  }
  void Resume() override {
    if (auto c = client_.lock()) c->Submit(Command{CommandKind::kResume, t_});
  }
  void Cancel() override {
    if (auto c = client_.lock()) c->Submit(Command{CommandKind::kCancel, t_});
  }

 private:
  std::weak_ptr<HttpClient::Impl> client_;
  std::shared_ptr<Transfer> t_;
};

}  // namespace

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(HttpClientOptions options) {
  GlobalInit();
  std::unique_ptr<HttpClient> client(new HttpClient(options));
  client->impl_ = std::make_shared<Impl>(std::move(options));
  if (absl::Status s = client->impl_->Init(); !s.ok()) return s;
  return client;
}

HttpClient::~HttpClient() {
  if (impl_) impl_->Stop();
}

absl::StatusOr<HttpResult> HttpClient::Post(HttpCall call) {
  if (options_.post_threading == PostThreading::kCaller) {
    const std::shared_ptr<Impl> impl = impl_;
    return impl->PerformOnCaller(std::move(call));
  }
  auto t = std::make_shared<Transfer>();
  t->call = std::move(call);
  if (!impl_->Submit(Command{CommandKind::kStart, t})) {
    return absl::UnavailableError("the HTTP client was destroyed");
  }
  std::unique_lock<std::mutex> lock(t->mu);
  t->cv.wait(lock, [&] { return t->done; });
  if (!t->transport.ok()) return OwnCopy(t->transport);
  return std::move(t->result);
}

std::shared_ptr<HttpStreamHandle> HttpClient::PostStreaming(
    HttpCall call, HttpStreamSink sink, std::function<void(absl::Status)> on_done) {
  auto t = std::make_shared<Transfer>();
  t->call = std::move(call);
  t->streaming = true;
  t->sink = std::move(sink);
  t->on_done = std::move(on_done);
  auto handle = std::make_shared<StreamHandle>(impl_, t);
  if (!impl_->Submit(Command{CommandKind::kStart, t})) {
    std::function<void(absl::Status)> done;
    {
      std::lock_guard<std::mutex> lock(t->mu);
      t->done = t->status_ready = true;
      t->transport = absl::UnavailableError("the HTTP client was destroyed");
      done = std::move(t->on_done);
    }
    if (done) done(absl::UnavailableError("the HTTP client was destroyed"));
  }
  return handle;
}

}  // namespace kinlet::remote
