// libFuzzer target: bytes from the network into the gateway's HTTP/1.1 and
// HTTP/2 connection code (Beast's parser, nghttp2's session, our glue: request
// assembly, limits, response framing, streamed bodies), in memory over Beast's
// test stream. The first byte picks the protocol (bit 0: HTTP/2 with the client
// preface prepended); the rest is what the client sends before it closes.
#include <boost/beast/_experimental/test/stream.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "gateway/http1_connection.hpp"
#include "gateway/http2_connection.hpp"

namespace kinlet::gateway::detail {

using FuzzStream = boost::beast::test::stream;

template <>
struct StreamOps<FuzzStream> {
  static constexpr bool kTls = false;
  static std::string Remote(const FuzzStream&) { return "fuzz:0"; }
  static void Close(FuzzStream& s) { s.close(); }
  static void ShutdownSend(FuzzStream& s) { s.close(); }
};

}  // namespace kinlet::gateway::detail

namespace {

using namespace kinlet::gateway::detail;

// Three pieces, the first at Start, then one per wake.
class PiecesBody final : public kinlet::wire::StreamBody {
 public:
  void Start(std::function<void()> wake) override {
    wake_ = std::move(wake);
    wake_();
  }
  bool Pull(std::string* out) override {
    out->append("piece-" + std::to_string(n_) + "\n");
    if (++n_ == 3) return false;
    wake_();
    return true;
  }
  void Cancel(bool) override {}

 private:
  std::function<void()> wake_;
  int n_ = 0;
};

std::shared_ptr<ServerState> MakeState() {
  auto state = std::make_shared<ServerState>();
  state->options.max_request_body_bytes = 4096;
  state->options.max_header_bytes = 2048;
  state->handler = [](kinlet::wire::HttpRequest& request) {
    kinlet::wire::HttpResponse response;
    response.headers.push_back({"content-type", "text/plain"});
    if (request.target == "/s") {
      response.stream = std::make_shared<PiecesBody>();
      return response;
    }
    response.headers.push_back({"x-echo", request.method});
    response.body = request.method + " " + request.target + "\n" + request.body;
    return response;
  };
  return state;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const std::shared_ptr<ServerState> state = MakeState();
  const bool h2 = (data[0] & 1) != 0;
  std::string input = h2 ? std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") : std::string();
  input.append(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto worker = std::make_shared<Worker>();
  worker->io.emplace(1);
  {
    FuzzStream server(*worker->io);
    FuzzStream client(*worker->io);
    server.connect(client);
    server.append(input);
    server.close_remote();  // the server reads `input`, then end of stream
    if (h2) {
      Start2(state, worker, std::move(server), std::string());
    } else {
      Start1(state, worker, std::move(server), std::string());
    }
    worker->io->run();
  }
  {
    std::lock_guard<std::mutex> lock(worker->mu);
    worker->running = false;
  }
  worker->io.reset();
  return 0;
}
