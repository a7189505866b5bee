// The batching Producer over a RemoteStream into an in-process kinlet gateway,
// under injected throttling and under connection drops (a resetting TCP proxy
// between the client and the gateway): no record lost, none written twice
// except those whose request landed and whose response was lost (counted at
// the proxy), per-key order kept. Also: the HTTP client's caller-thread path
// keeps its connections (HTTP/1.1 and HTTP/2 over TLS).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gateway/process_helpers.hpp"
#include "kinlet/gateway/gateway.hpp"
#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/producer.hpp"
#include "kinlet/remote/remote_registry.hpp"
#include "kinlet/stream_concept.hpp"
#include "kinlet/wire/base64.hpp"
#include "test_credentials.hpp"

// The batching producer needs a KinesisStream; RemoteStream is one.
static_assert(kinlet::KinesisStream<kinlet::remote::RemoteStream>);

namespace {

using kinlet::gateway::Gateway;
using kinlet::gateway::GatewayOptions;
using kinlet::gateway::WireRegistry;
using kinlet::remote::RemoteOptions;
using kinlet::remote::RemoteRegistry;
using kinlet::remote::RemoteStream;
using RemoteProducer = kinlet::Producer<RemoteStream>;

struct Endpoint {
  std::shared_ptr<WireRegistry> registry = std::make_shared<WireRegistry>();
  std::unique_ptr<Gateway> gateway;
};

Endpoint StartGateway(GatewayOptions options = {}) {
  options.service.stream_defaults = *kinlet::gateway::WireStreamDefaults("unlimited");
  Endpoint e;
  auto gateway = Gateway::Start(e.registry, std::move(options));
  REQUIRE(gateway.ok());
  e.gateway = std::move(*gateway);
  return e;
}

RemoteOptions OptionsFor(const std::string& endpoint) {
  RemoteOptions options;
  options.endpoint = endpoint;
  options.credentials = kinlet_test::TestCredentials();
  options.http.http_version = kinlet::remote::HttpVersion::kHttp11;
  options.retry.base_delay = absl::Milliseconds(1);
  options.retry.throttle_base_delay = absl::Milliseconds(2);
  options.retry.call_timeout = absl::Seconds(20);
  options.retry.attempt_timeout = absl::Seconds(5);
  return options;
}

int PortOf(const std::string& endpoint) {
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

// A TCP proxy on 127.0.0.1 (port 0) in front of 127.0.0.1:target, on one
// thread. It counts HTTP/1.1 requests ("POST / HTTP/1.1" starts) and, every
// n-th one, drops the connection with a TCP reset: alternately before the
// request reaches the server, and after the server answered it (the request
// landed; its response is lost: the bytes of those requests are kept, so a
// test knows which records may legitimately be written twice). ResetAll
// resets every open connection at once; the latest request of each counts as
// landed and unanswered (it may have reached the server, its answer lost).
//
// Threads: the proxy thread owns the sockets and pairs_; mu_ guards
// landed_unanswered_ and reset_all_; counters are atomics.
class ResettingProxy {
 public:
  explicit ResettingProxy(int target_port) : target_port_(target_port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = Loopback(0);
    REQUIRE(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(listen_fd_, 64) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(pipe(wake_) == 0);
    thread_ = std::thread([this] { Run(); });
  }
  ~ResettingProxy() {
    stop_ = true;
    Wake();
    thread_.join();
    for (Pair& p : pairs_) {
      close(p.client);
      close(p.server);
    }
    close(listen_fd_);
    close(wake_[0]);
    close(wake_[1]);
  }

  std::string endpoint() const { return absl::StrCat("http://127.0.0.1:", port_); }
  void DropEvery(int n) { drop_every_ = n; }
  void ResetAll() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      reset_all_ = true;
    }
    Wake();
  }
  int requests() const { return requests_; }
  int drops_before() const { return drops_before_; }
  int drops_after() const { return drops_after_; }
  int resets() const { return resets_; }
  int connections() const { return connections_; }
  std::vector<std::string> landed_unanswered() const {
    std::lock_guard<std::mutex> lock(mu_);
    return landed_unanswered_;
  }

 private:
  static constexpr std::string_view kStart = "POST / HTTP/1.1\r\n";
  struct Pair {
    int client = -1;
    int server = -1;
    std::string tail;     // the last bytes from the client (a start split over reads)
    std::string request;  // client bytes since the latest request start
    bool drop_on_response = false;
    bool dead = false;
  };

  static sockaddr_in Loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }
  void Wake() { (void)!write(wake_[1], "x", 1); }
  static bool SendAll(int fd, const char* data, size_t n) {
    while (n > 0) {
      const ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      data += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  void Reset(Pair& p) {
    linger hard{1, 0};  // close with RST
    setsockopt(p.client, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    setsockopt(p.server, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close(p.client);
    close(p.server);
    p.dead = true;
    ++resets_;
  }

  void FromClient(Pair& p) {
    char buf[65536];
    const ssize_t n = recv(p.client, buf, sizeof buf, 0);
    if (n <= 0) {
      close(p.client);
      close(p.server);
      p.dead = true;
      return;
    }
    std::string scan = p.tail + std::string(buf, static_cast<size_t>(n));
    size_t last_start = std::string::npos;
    for (size_t at = scan.find(kStart); at != std::string::npos; at = scan.find(kStart, at + 1)) {
      last_start = at;
    }
    if (last_start != std::string::npos && last_start + kStart.size() > p.tail.size()) {
      p.request = scan.substr(last_start);
      const int count = ++requests_;
      const int every = drop_every_;
      if (every > 0 && count % every == 0) {
        if ((drops_before_ + drops_after_) % 2 == 0) {
          ++drops_before_;
          Reset(p);
          return;
        }
        ++drops_after_;
        p.drop_on_response = true;
      }
    } else {
      p.request.append(buf, static_cast<size_t>(n));
    }
    p.tail = scan.substr(scan.size() > kStart.size() ? scan.size() - kStart.size() : 0);
    if (!SendAll(p.server, buf, static_cast<size_t>(n))) Reset(p);
  }

  void FromServer(Pair& p) {
    char buf[65536];
    const ssize_t n = recv(p.server, buf, sizeof buf, 0);
    if (n <= 0) {
      close(p.client);
      close(p.server);
      p.dead = true;
      return;
    }
    if (p.drop_on_response) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        landed_unanswered_.push_back(p.request);
      }
      Reset(p);
      return;
    }
    if (!SendAll(p.client, buf, static_cast<size_t>(n))) Reset(p);
  }

  void Run() {
    while (!stop_) {
      bool reset_all = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        std::swap(reset_all, reset_all_);
      }
      if (reset_all) {
        for (Pair& p : pairs_) {
          // The connection's latest request may have landed with its answer
          // not (fully) back yet: a retry may write its records again.
          if (!p.dead && !p.request.empty()) {
            std::lock_guard<std::mutex> lock(mu_);
            landed_unanswered_.push_back(p.request);
          }
          Reset(p);
        }
      }
      std::erase_if(pairs_, [](const Pair& p) { return p.dead; });
      std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      for (const Pair& p : pairs_) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
      if (poll(fds.data(), fds.size(), 100) <= 0) continue;
      if (fds[1].revents != 0) {
        char drain[64];
        (void)!read(wake_[0], drain, sizeof drain);
      }
      for (size_t i = 0; i < pairs_.size(); ++i) {
        Pair& p = pairs_[i];
        if (!p.dead && fds[2 + 2 * i].revents != 0) FromClient(p);
        if (!p.dead && fds[3 + 2 * i].revents != 0) FromServer(p);
      }
      if (fds[0].revents != 0) {
        const int client = accept(listen_fd_, nullptr, nullptr);
        if (client < 0) continue;
        const int server = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr = Loopback(target_port_);
        if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
          close(client);
          close(server);
          continue;
        }
        ++connections_;
        Pair pair;
        pair.client = client;
        pair.server = server;
        pairs_.push_back(std::move(pair));
      }
    }
  }

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> drop_every_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> drops_before_{0};
  std::atomic<int> drops_after_{0};
  std::atomic<int> resets_{0};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  bool reset_all_ = false;                      // guarded by mu_
  std::vector<std::string> landed_unanswered_;  // guarded by mu_
  std::vector<Pair> pairs_;                     // proxy thread only
};

// A fixed pool of threads running the producer's requests (its executor).
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        for (;;) {
          std::function<void()> task;
          {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
            if (tasks_.empty()) return;
            task = std::move(tasks_.front());
            tasks_.erase(tasks_.begin());
          }
          task();
        }
      });
    }
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  std::function<void(std::function<void()>)> executor() {
    return [this](std::function<void()> task) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        tasks_.push_back(std::move(task));
      }
      cv_.notify_one();
    };
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> tasks_;  // guarded by mu_
  bool stop_ = false;                         // guarded by mu_
  std::vector<std::thread> threads_;
};

// Record i of key k carries "k<k>:<i>".
std::string DataOf(int key, int index) { return absl::StrCat("k", key, ":", index); }

struct Stored {
  std::string data;
  kinlet::SequenceNumber sequence_number;
};

// Every record of the in-process stream behind the gateway, per key, in each
// shard's order.
std::map<std::string, std::vector<Stored>> ReadBack(WireRegistry& registry,
                                                    const std::string& name) {
  std::map<std::string, std::vector<Stored>> by_key;
  auto stream = registry.GetStream(name);
  REQUIRE(stream.ok());
  auto shards = (*stream)->ListShards();
  REQUIRE(shards.ok());
  for (const auto& shard : *shards) {
    auto it = (*stream)->GetShardIterator(shard.shard_id, kinlet::IteratorPosition::TrimHorizon());
    REQUIRE(it.ok());
    for (;;) {
      auto page = (*stream)->GetRecords(*it, 10000);
      REQUIRE(page.ok());
      if (page->records.empty() || !page->next_shard_iterator) break;
      for (const auto& r : page->records) {
        by_key[r.partition_key].push_back(Stored{r.data, r.sequence_number});
      }
      it = *page->next_shard_iterator;
    }
  }
  return by_key;
}

// The Data of every PutRecords entry in the raw requests (JSON bodies).
std::map<std::string, int> DataInRequests(const std::vector<std::string>& requests) {
  std::map<std::string, int> out;
  static const std::regex kData(R"re("Data":"([A-Za-z0-9+/=]*)")re");
  for (const std::string& request : requests) {
    for (std::sregex_iterator m(request.begin(), request.end(), kData), end; m != end; ++m) {
      std::string decoded;
      if (kinlet::wire::Base64DecodeStrict((*m)[1].str(), &decoded).ok()) ++out[decoded];
    }
  }
  return out;
}

struct Outcome {
  int key;
  int index;
  std::future<RemoteProducer::Result> future;
};

// Puts `per_key` records for each of `keys` keys, interleaved; `between`
// runs after every 500 puts.
std::vector<Outcome> PutAll(RemoteProducer& producer, int keys, int per_key,
                            const std::function<void()>& between = {}) {
  std::vector<Outcome> outcomes;
  for (int i = 0; i < per_key; ++i) {
    for (int k = 0; k < keys; ++k) {
      outcomes.push_back(Outcome{k, i, producer.Put(absl::StrCat("key-", k), DataOf(k, i))});
      if (between && outcomes.size() % 500 == 0) between();
    }
  }
  return outcomes;
}

// The checks both fault tests share: every record acknowledged and stored
// where its future says; per key, records in put order (a duplicate right
// after its original); returns the duplicated records' data.
std::map<std::string, int> CheckDelivery(std::vector<Outcome>& outcomes, WireRegistry& registry,
                                         const std::string& name, int keys, int per_key) {
  const auto stored = ReadBack(registry, name);
  std::map<std::string, std::vector<kinlet::SequenceNumber>> where;  // data -> its copies
  for (const auto& [key, records] : stored) {
    for (const Stored& s : records) where[s.data].push_back(s.sequence_number);
  }
  for (Outcome& o : outcomes) {
    auto r = o.future.get();
    INFO(DataOf(o.key, o.index) << ": " << (r.ok() ? "ok" : r.status().ToString()));
    REQUIRE(r.ok());
    const auto& copies = where[DataOf(o.key, o.index)];
    REQUIRE_FALSE(copies.empty());  // no loss
    // The acknowledged sequence number is one of the stored copies.
    CHECK(std::find(copies.begin(), copies.end(), r->sequence_number) != copies.end());
  }
  CHECK(stored.size() == static_cast<size_t>(keys));
  std::map<std::string, int> duplicated;
  for (const auto& [key, records] : stored) {
    int previous = -1;
    for (const Stored& s : records) {
      const int index = std::stoi(s.data.substr(s.data.find(':') + 1));
      INFO(key << ": " << s.data << " after index " << previous);
      CHECK(s.data.substr(0, s.data.find(':')) == "k" + key.substr(4));
      CHECK(index >= previous);  // per-key order (equal: a duplicate after its original)
      if (index == previous) ++duplicated[s.data];
      previous = index;
    }
    CHECK(previous == per_key - 1);
  }
  return duplicated;
}

kinlet::ProducerOptions FastRetries(Pool& pool) {
  kinlet::ProducerOptions options;
  options.linger = absl::Milliseconds(2);
  options.max_records_per_request = 100;
  options.max_in_flight_requests = 3;
  options.executor = pool.executor();
  options.retry.initial_backoff = absl::Milliseconds(1);
  options.retry.max_backoff = absl::Milliseconds(20);
  options.retry.max_attempts = 1000;
  options.record_ttl = absl::Seconds(60);
  return options;
}

}  // namespace

TEST_CASE("Producer over RemoteStream: injected throttling loses and duplicates nothing",
          "[remote][producer-remote]") {
  Endpoint e = StartGateway();
  RemoteOptions options = OptionsFor(e.gateway->endpoint());
  options.retry.max_attempts = 1;  // every retry is the producer's own (counted in its stats)
  auto remote = RemoteRegistry::Create(options);
  REQUIRE(remote.ok());
  kinlet::StreamOptions so;
  so.name = "produced-throttled";
  so.shard_count = 4;
  REQUIRE((*remote)->CreateStream(so).ok());
  auto stream = (*remote)->GetStream(so.name);
  REQUIRE(stream.ok());
  auto local = e.registry->GetStream(so.name);
  REQUIRE(local.ok());
  kinlet::FaultInjection faults;
  faults.seed = 11;
  faults.throttle_put_fraction = 0.3;
  faults.internal_failure_fraction = 0.05;
  REQUIRE((*local)->SetFaultInjection(faults).ok());

  constexpr int kKeys = 40, kPerKey = 50;
  std::vector<Outcome> outcomes;
  kinlet::ProducerStats stats;
  {
    Pool pool(3);
    auto producer = kinlet::MakeProducer(stream->get(), FastRetries(pool));
    REQUIRE(producer.ok());
    outcomes = PutAll(**producer, kKeys, kPerKey);
    REQUIRE((*producer)->Flush().ok());
    stats = (*producer)->stats();
    REQUIRE((*producer)->Shutdown().ok());
  }
  REQUIRE((*local)->SetFaultInjection({}).ok());
  CHECK(stats.entry_retries > 0);  // the faults were met
  CHECK(stats.records_written == kKeys * kPerKey);
  CHECK(stats.records_failed == 0);
  // A throttled or failed entry is never written: no duplicate at all.
  CHECK(CheckDelivery(outcomes, *e.registry, so.name, kKeys, kPerKey).empty());
}

TEST_CASE("Producer over RemoteStream: connection drops lose nothing, duplicate only lost answers",
          "[remote][producer-remote]") {
  Endpoint e = StartGateway();
  ResettingProxy proxy(PortOf(e.gateway->endpoint()));
  auto direct = RemoteRegistry::Create(OptionsFor(e.gateway->endpoint()));
  REQUIRE(direct.ok());
  kinlet::StreamOptions so;
  so.name = "produced-dropped";
  so.shard_count = 4;
  REQUIRE((*direct)->CreateStream(so).ok());
  auto remote = RemoteRegistry::Create(OptionsFor(proxy.endpoint()));  // through the proxy
  REQUIRE(remote.ok());
  auto stream = (*remote)->GetStream(so.name);
  REQUIRE(stream.ok());
  // Light throttling as well: entry retries and transport retries interleave.
  auto local = e.registry->GetStream(so.name);
  REQUIRE(local.ok());
  kinlet::FaultInjection faults;
  faults.seed = 5;
  faults.throttle_put_fraction = 0.05;
  REQUIRE((*local)->SetFaultInjection(faults).ok());
  proxy.DropEvery(5);

  constexpr int kKeys = 40, kPerKey = 40;
  std::vector<Outcome> outcomes;
  kinlet::ProducerStats stats;
  {
    Pool pool(3);
    auto producer = kinlet::MakeProducer(stream->get(), FastRetries(pool));
    REQUIRE(producer.ok());
    int batches = 0;
    outcomes = PutAll(**producer, kKeys, kPerKey, [&] {
      if (++batches % 2 == 0) proxy.ResetAll();  // every connection at once, mid-flight
    });
    REQUIRE((*producer)->Flush().ok());
    stats = (*producer)->stats();
    REQUIRE((*producer)->Shutdown().ok());
  }
  proxy.DropEvery(0);
  REQUIRE((*local)->SetFaultInjection({}).ok());
  CHECK(proxy.drops_before() > 0);
  CHECK(proxy.drops_after() > 0);
  CHECK(stats.records_written == kKeys * kPerKey);
  CHECK(stats.records_failed == 0);
  const auto duplicated = CheckDelivery(outcomes, *e.registry, so.name, kKeys, kPerKey);
  // Only records of a request that landed and whose response was lost may be
  // written twice (the retry, by the producer, RemoteStream or libcurl, wrote
  // them again), and at most once more per such request.
  const auto unanswered = DataInRequests(proxy.landed_unanswered());
  for (const auto& [data, extra] : duplicated) {
    INFO(data);
    REQUIRE(unanswered.count(data) == 1);
    CHECK(extra <= unanswered.at(data));
  }
  WARN("requests " << proxy.requests() << ", drops before " << proxy.drops_before() << ", after "
                   << proxy.drops_after() << ", resets " << proxy.resets() << ", duplicated "
                   << duplicated.size() << ", entry retries " << stats.entry_retries);
}

TEST_CASE("HttpClient: calls on the caller's thread reuse their connection, HTTP/1.1 and TLS h2",
          "[remote][producer-remote]") {
  kinlet::gateway::testing::TempDir dir;
  const std::string cert = dir.path() + "/cert.pem";
  const std::string key = dir.path() + "/key.pem";
  const auto made = kinlet::gateway::testing::RunProcess(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
       "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"});
  REQUIRE(made.exit_code == 0);
  GatewayOptions tls;
  tls.http.tls_certificate_file = cert;
  tls.http.tls_private_key_file = key;
  Endpoint secure = StartGateway(tls);
  Endpoint plain = StartGateway();
  ResettingProxy counted(PortOf(plain.gateway->endpoint()));  // counts connections

  for (auto version :
       {kinlet::remote::HttpVersion::kHttp11, kinlet::remote::HttpVersion::kHttp2Tls}) {
    const bool h2 = version == kinlet::remote::HttpVersion::kHttp2Tls;
    RemoteOptions options = OptionsFor(h2 ? secure.gateway->endpoint() : counted.endpoint());
    options.http.http_version = version;
    options.http.tls.ca_file = cert;
    auto client = kinlet::remote::HttpClient::Create(options.http);
    REQUIRE(client.ok());
    // Several threads, several calls each: every answer arrives (unsigned:
    // the gateway answers MissingAuthenticationToken, a 400 with its body).
    std::vector<std::thread> threads;
    std::atomic<int> answered{0}, h2_answers{0};
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 20; ++i) {
          kinlet::remote::HttpCall call;
          call.url = options.endpoint + "/";
          call.headers = {{"content-type", "application/x-amz-json-1.1"},
                          {"x-amz-target", "Kinesis_20131202.ListStreams"}};
          call.body = "{}";
          auto r = (*client)->Post(call);
          if (r.ok() && r->status == 400 &&
              r->body.find("MissingAuthenticationToken") != std::string::npos) {
            ++answered;
            if (r->http_version == 20) ++h2_answers;
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    CHECK(answered == 60);
    if (h2) {
      CHECK(h2_answers == 60);  // ALPN chose h2, and reused lanes kept working
    } else {
      CHECK(counted.requests() == 60);
      CHECK(counted.connections() <= 3);  // one keep-alive connection per concurrent caller
    }
  }
}
