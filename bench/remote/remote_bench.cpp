// remote_bench: the remote backend's figures (issue 16, "Speed").
//
//   remote_bench latency [--rounds 10] [--calls 2000]
//       One remote PutRecord's round trip against an in-process kinlet Gateway
//       on 127.0.0.1 (HTTP/1.1 keep-alive), beside the floor: the same signed
//       PutRecord bytes written to a raw keep-alive socket and the response
//       read back (the server's own time plus the kernel's loopback). Modes
//       alternate round by round: floor, remote (calls on the caller's thread,
//       PostThreading::kCaller), remote-loop (the previous design, each call
//       handed to the client's loop thread and back: PostThreading::kLoop).
//   remote_bench producer --endpoint URL --stream NAME [--records N] [--keys K]
//                         [--in-flight R] [--linger-ms L]
//       A batching Producer over a RemoteStream: N records of 64 B, keys
//       cycling over K, as fast as Put accepts; records/s from the first Put to
//       Flush's return.
//   remote_bench subscribe --endpoint URL --stream NAME [--samples N] [--gap-us G]
//       SubscribeToShard through RemoteStream (callback form): PutRecord, then
//       the time until the record's event callback, one record at a time.
//
// Every mode prints `key value` lines (run.py parses them). Only 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kinlet/gateway/gateway.hpp"
#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/producer.hpp"
#include "kinlet/remote/remote_registry.hpp"
#include "kinlet/wire/base64.hpp"
#include "kinlet/wire/sigv4.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using kinlet::remote::HttpVersion;
using kinlet::remote::PostThreading;
using kinlet::remote::RemoteOptions;
using kinlet::remote::RemoteRegistry;
using kinlet::remote::RemoteStream;

constexpr const char* kKey = "AKIDEXAMPLE";
constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

class StaticCredentials : public kinlet::remote::CredentialsProvider {
 public:
  absl::StatusOr<kinlet::wire::Credentials> GetCredentials() override {
    return kinlet::wire::Credentials{kKey, kSecret, ""};
  }
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "remote_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().ToString()));
  return std::move(*v);
}

std::map<std::string, std::string> Flags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strncmp(argv[i], "--", 2) != 0) Die(absl::StrCat("bad flag ", argv[i]));
    flags[argv[i] + 2] = argv[i + 1];
  }
  return flags;
}

int64_t IntFlag(const std::map<std::string, std::string>& f, const char* name, int64_t def) {
  auto it = f.find(name);
  if (it == f.end()) return def;
  int64_t v = 0;
  if (!absl::SimpleAtoi(it->second, &v)) Die(absl::StrCat("--", name, " wants a number"));
  return v;
}

std::string StrFlag(const std::map<std::string, std::string>& f, const char* name) {
  auto it = f.find(name);
  if (it == f.end()) Die(absl::StrCat("--", name, " is required"));
  return it->second;
}

RemoteOptions Options(const std::string& endpoint, PostThreading threading) {
  RemoteOptions options;
  options.endpoint = endpoint;
  options.credentials = std::make_shared<StaticCredentials>();
  options.http.http_version = HttpVersion::kHttp11;
  options.http.post_threading = threading;
  options.retry.base_delay = absl::Milliseconds(5);
  options.retry.throttle_base_delay = absl::Milliseconds(10);
  options.retry.max_attempts = 10;
  return options;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// A keep-alive socket sending one fixed, signed request and reading each
// response whole (Content-Length framing).
class RawClient {
 public:
  RawClient(int port, std::string request) : request_(std::move(request)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Die("connect");
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawClient() { close(fd_); }

  // One exchange; false unless the status is 200.
  bool Exchange() {
    if (send(fd_, request_.data(), request_.size(), 0) != static_cast<ssize_t>(request_.size())) {
      Die("send");
    }
    buffer_.clear();
    size_t header_end = std::string::npos;
    size_t need = 0;
    char chunk[16384];
    for (;;) {
      const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) Die("recv: the server closed the connection");
      buffer_.append(chunk, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = buffer_.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        std::string lower = buffer_.substr(0, header_end);
        std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
        const size_t cl = lower.find("content-length:");
        if (cl == std::string::npos) Die("no content-length");
        need = header_end + 4 + std::strtoul(lower.c_str() + cl + 15, nullptr, 10);
      }
      if (buffer_.size() >= need) break;
    }
    return buffer_.compare(0, 12, "HTTP/1.1 200") == 0;
  }

 private:
  int fd_ = -1;
  std::string request_;
  std::string buffer_;
};

std::string SignedPutRecord(const std::string& host, const std::string& stream,
                            const std::string& data_b64) {
  kinlet::wire::HttpRequest request;
  request.method = "POST";
  request.target = "/";
  request.headers = {{"host", host},
                     {"content-type", "application/x-amz-json-1.1"},
                     {"x-amz-target", "Kinesis_20131202.PutRecord"}};
  request.body = absl::StrCat(R"({"StreamName":")", stream, R"(","Data":")", data_b64,
                              R"(","PartitionKey":"k"})");
  kinlet::wire::SignRequest(request, kinlet::wire::Credentials{kKey, kSecret, ""}, "us-east-1",
                            "kinesis", absl::Now());
  std::string out = "POST / HTTP/1.1\r\n";
  for (const auto& h : request.headers) absl::StrAppend(&out, h.name, ": ", h.value, "\r\n");
  absl::StrAppend(&out, "content-length: ", request.body.size(), "\r\n\r\n", request.body);
  return out;
}

int Latency(const std::map<std::string, std::string>& flags) {
  const int rounds = static_cast<int>(IntFlag(flags, "rounds", 10));
  const int calls = static_cast<int>(IntFlag(flags, "calls", 2000));
  auto registry = std::make_shared<kinlet::gateway::WireRegistry>();
  kinlet::gateway::GatewayOptions gopt;
  gopt.service.stream_defaults = *kinlet::gateway::WireStreamDefaults("unlimited");
  auto gateway = Must(kinlet::gateway::Gateway::Start(registry, gopt), "gateway");
  const std::string endpoint = gateway->endpoint();  // http://127.0.0.1:PORT
  const std::string host = endpoint.substr(7);
  const int port = std::stoi(host.substr(host.find(':') + 1));
  auto caller = Must(RemoteRegistry::Create(Options(endpoint, PostThreading::kCaller)), "client");
  auto loop = Must(RemoteRegistry::Create(Options(endpoint, PostThreading::kLoop)), "client");
  const std::string data(64, 'x');
  std::string data_b64;
  kinlet::wire::Base64Encode(data, &data_b64);
  std::vector<const char*> modes = {"floor", "remote", "remote-loop"};
  if (flags.count("only")) {  // one mode (for strace/perf)
    modes.erase(std::remove_if(modes.begin(), modes.end(),
                               [&](const char* m) { return flags.at("only") != m; }),
                modes.end());
  }
  std::map<std::string, std::vector<double>> samples;
  for (int r = 0; r < rounds; ++r) {
    // A fresh stream per round: shards hold 65,536 records at most.
    kinlet::StreamOptions so;
    so.name = absl::StrCat("lat", r);
    so.shard_count = 1;
    Must(caller->CreateStream(so), "CreateStream");
    auto on_caller = Must(caller->GetStream(so.name), "GetStream");
    auto on_loop = Must(loop->GetStream(so.name), "GetStream");
    RawClient raw(port, SignedPutRecord(host, so.name, data_b64));
    for (const char* mode : modes) {
      std::vector<double>& out = samples[mode];
      const std::string_view m = mode;
      for (int i = -calls / 10; i < calls; ++i) {  // the first tenth warms up
        const auto t0 = Clock::now();
        bool ok;
        if (m == "floor") {
          ok = raw.Exchange();
        } else if (m == "remote") {
          ok = on_caller->PutRecord("k", data).ok();
        } else {
          ok = on_loop->PutRecord("k", data).ok();
        }
        const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
        if (!ok) Die(absl::StrCat(mode, ": PutRecord failed"));
        if (i >= 0) out.push_back(us);
      }
    }
    (void)caller->DeleteStream(so.name);
  }
  for (const char* mode : modes) {
    std::printf("%s_p50_us %.1f\n%s_p99_us %.1f\n", mode, Percentile(samples[mode], 0.5), mode,
                Percentile(samples[mode], 0.99));
  }
  std::printf("added_p50_us %.1f\nadded_loop_p50_us %.1f\ncalls_per_mode %zu\n",
              Percentile(samples["remote"], 0.5) - Percentile(samples["floor"], 0.5),
              Percentile(samples["remote-loop"], 0.5) - Percentile(samples["floor"], 0.5),
              samples[modes.front()].size());
  return 0;
}

int ProducerMode(const std::map<std::string, std::string>& flags) {
  const std::string endpoint = StrFlag(flags, "endpoint");
  const std::string name = StrFlag(flags, "stream");
  const int64_t records = IntFlag(flags, "records", 1000000);
  const int64_t keys = IntFlag(flags, "keys", 100000);
  const int in_flight = static_cast<int>(IntFlag(flags, "in-flight", 4));
  auto registry = Must(RemoteRegistry::Create(Options(endpoint, PostThreading::kCaller)), "client");
  auto stream = Must(registry->GetStream(name), "GetStream");
  // Requests run on a small pool of threads (the executor): up to `in_flight`
  // PutRecords in flight, each on its caller's own keep-alive connection.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::function<void()>> tasks;
  bool stop = false;
  std::vector<std::thread> pool;
  for (int i = 0; i < in_flight; ++i) {
    pool.emplace_back([&] {
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return stop || !tasks.empty(); });
          if (tasks.empty()) return;
          task = std::move(tasks.back());
          tasks.pop_back();
        }
        task();
      }
    });
  }
  kinlet::ProducerOptions options;
  options.linger = absl::Milliseconds(IntFlag(flags, "linger-ms", 20));
  options.max_in_flight_requests = in_flight;
  options.max_buffered_records = 200000;
  if (in_flight > 1) {
    options.executor = [&](std::function<void()> task) {
      {
        std::lock_guard<std::mutex> lock(mu);
        tasks.push_back(std::move(task));
      }
      cv.notify_one();
    };
  }
  auto producer = Must(kinlet::MakeProducer(stream.get(), options), "producer");
  std::vector<std::string> key_names;
  for (int64_t k = 0; k < keys; ++k) key_names.push_back(absl::StrCat("key-", k));
  std::atomic<int64_t> failed{0};
  std::string data(64, 'd');
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < records; ++i) {
    std::memcpy(data.data(), &i, sizeof i);
    (void)producer->Put(key_names[static_cast<size_t>(i % keys)], data,
                        [&failed](const kinlet::Producer<RemoteStream>::Result& r) {
                          if (!r.ok() && failed.fetch_add(1, std::memory_order_relaxed) == 0) {
                            std::fprintf(stderr, "first failure: %s\n",
                                         r.status().ToString().c_str());
                          }
                        });
  }
  (void)producer->Flush();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  const kinlet::ProducerStats stats = producer->stats();
  (void)producer->Shutdown();
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  cv.notify_all();
  for (std::thread& t : pool) t.join();
  std::printf(
      "records %lld\nseconds %.3f\nrecords_per_s %.0f\nfailed %lld\nrequests %llu\n"
      "entry_retries %llu\n",
      static_cast<long long>(records), s, static_cast<double>(records) / s,
      static_cast<long long>(failed.load()), static_cast<unsigned long long>(stats.requests_sent),
      static_cast<unsigned long long>(stats.entry_retries));
  return failed.load() == 0 ? 0 : 1;
}

int Subscribe(const std::map<std::string, std::string>& flags) {
  const std::string endpoint = StrFlag(flags, "endpoint");
  const std::string name = StrFlag(flags, "stream");
  const int samples = static_cast<int>(IntFlag(flags, "samples", 2000));
  const int64_t gap_us = IntFlag(flags, "gap-us", 0);
  auto registry = Must(RemoteRegistry::Create(Options(endpoint, PostThreading::kCaller)), "client");
  auto stream = Must(registry->GetStream(name), "GetStream");
  (void)Must(stream->RegisterStreamConsumer("bench-reader"), "RegisterStreamConsumer");
  std::mutex mu;
  std::condition_variable cv;
  int64_t seen = -1;
  Clock::time_point seen_at;
  auto sub = Must(stream->SubscribeToShard(
                      "bench-reader", "shardId-000000000000", kinlet::IteratorPosition::Latest(),
                      [&](const RemoteStream::Event& event) {
                        const auto now = Clock::now();
                        if (event.page.records.empty()) return;
                        int64_t v = 0;
                        (void)absl::SimpleAtoi(event.page.records.back().data, &v);
                        std::lock_guard<std::mutex> lock(mu);
                        seen = v;
                        seen_at = now;
                        cv.notify_all();
                      },
                      [](const absl::Status&) {}),
                  "SubscribeToShard");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the subscription is live
  std::vector<double> event_us;
  for (int i = 0; i < samples; ++i) {
    const auto t0 = Clock::now();
    if (!stream->PutRecord("k", std::to_string(i)).ok()) Die("PutRecord");
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return seen >= i; })) {
      Die("no event within 10 s");
    }
    event_us.push_back(std::chrono::duration<double, std::micro>(seen_at - t0).count());
    lock.unlock();
    if (gap_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
  }
  sub->Cancel();
  std::printf("event_p50_us %.1f\nevent_p99_us %.1f\nsamples %d\n", Percentile(event_us, 0.5),
              Percentile(event_us, 0.99), samples);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: remote_bench latency|producer|subscribe [--flag value]...");
  const std::string mode = argv[1];
  const auto flags = Flags(argc, argv);
  if (mode == "latency") return Latency(flags);
  if (mode == "producer") return ProducerMode(flags);
  if (mode == "subscribe") return Subscribe(flags);
  Die("unknown mode " + mode);
}
