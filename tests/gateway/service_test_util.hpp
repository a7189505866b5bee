// tests/gateway/service_test_util.hpp: calling KinesisService::Handle directly.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catch2/catch.hpp"
#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/wire/document.hpp"
#include "kinlet/wire/errors.hpp"
#include "kinlet/wire/event_stream.hpp"

namespace kinlet::gateway::testing {

using wire::Format;
using wire::Value;

inline wire::HttpRequest MakeRequest(std::string_view op, Format format, std::string body) {
  wire::HttpRequest r;
  r.method = "POST";
  r.target = "/";
  r.headers.push_back({"content-type", std::string(wire::ContentType(format))});
  r.headers.push_back({"x-amz-target", absl::StrCat("Kinesis_20131202.", detail::ToAbsl(op))});
  r.headers.push_back({"authorization",
                       "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, "
                       "SignedHeaders=host, Signature=00"});
  r.body = std::move(body);
  return r;
}

// Builds a request body with a Writer of `format` (CBOR as the Java SDK sends it).
inline std::string Body(Format format, const std::function<void(wire::Writer&)>& fill) {
  wire::Writer w(format);
  w.BeginObject();
  fill(w);
  w.EndObject();
  return w.Take();
}

struct Answer {
  int status = 0;
  Value doc;
  std::string type;     // __type for errors
  std::string message;  // message / Message
  wire::HttpResponse raw;
};

inline const std::string* Header(const wire::HttpResponse& r, std::string_view name) {
  for (const auto& h : r.headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

inline Answer Call(
    KinesisService& service, std::string_view op, Format format,
    const std::function<void(wire::Writer&)>& fill = [](wire::Writer&) {}) {
  wire::HttpRequest req = MakeRequest(op, format, Body(format, fill));
  Answer a;
  a.raw = service.Handle(req);
  a.status = a.raw.status;
  if (!a.raw.body.empty() && a.raw.stream == nullptr) {
    absl::StatusOr<Value> v = wire::Parse(format, a.raw.body);
    REQUIRE(v.ok());
    a.doc = *std::move(v);
    if (const Value* t = a.doc.Find("__type")) a.type = t->str();
    if (const Value* m = a.doc.Find("message")) a.message = m->str();
    if (const Value* m = a.doc.Find("Message")) a.message = m->str();
  }
  return a;
}

inline const Value& At(const Value& v, std::string_view key) {
  const Value* m = v.Find(key);
  INFO("member " << key);
  REQUIRE(m != nullptr);
  return *m;
}

// Plays the server for a StreamBody: Start, then Pull after wakes.
class BodyReader {
 public:
  explicit BodyReader(std::shared_ptr<wire::StreamBody> body) : body_(std::move(body)) {
    // The wake may come after the reader is gone (as after a connection): it holds its own state.
    body_->Start([w = wake_] {
      std::lock_guard<std::mutex> lock(w->mu);
      ++w->wakes;
      w->cv.notify_all();
    });
  }
  // Pulls until `done(messages)` or the body ends or 10 s pass. True if done.
  bool PullUntil(const std::function<bool(const std::vector<wire::EventMessage>&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done(messages) && !finished) {
      std::string bytes;
      finished = !body_->Pull(&bytes);
      REQUIRE(decoder_.Feed(bytes, &messages).ok());
      if (done(messages) || finished) break;
      std::unique_lock<std::mutex> lock(wake_->mu);
      if (std::chrono::steady_clock::now() > deadline) return false;
      wake_->cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return wake_->wakes > seen_; });
      seen_ = wake_->wakes;
    }
    return done(messages);
  }
  std::vector<wire::EventMessage> messages;
  bool finished = false;

 private:
  std::shared_ptr<wire::StreamBody> body_;
  wire::EventStreamDecoder decoder_;
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t wakes = 0;
  };
  std::shared_ptr<Wake> wake_ = std::make_shared<Wake>();
  uint64_t seen_ = 0;
};

}  // namespace kinlet::gateway::testing
