// kinlet/wire/http.hpp: the transport-neutral HTTP exchange between the
// gateway's servers (HTTP/1.1, HTTP/2, TLS: gateway/http_server.hpp) and the
// service that answers (the Kinesis API: gateway/kinesis_service.hpp).
//
// A server parses a request into HttpRequest, calls the HttpHandler on one of
// its own threads, and writes the HttpResponse back in the request's framing.
// A response with a `stream` is sent as it is produced (HTTP/1.1 chunked, HTTP/2
// DATA frames): SubscribeToShard's event stream.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kinlet::wire {

struct HttpHeader {
  std::string name;  // lower-case
  std::string value;
};

struct HttpRequest {
  std::string method;  // "POST"
  std::string target;  // path and query as received ("/")
  int version = 11;    // 10, 11 (HTTP/1.x) or 20 (HTTP/2)
  // Every header in arrival order, names lower-cased. Over HTTP/2 the
  // pseudo-headers are included under their own names (":authority",
  // ":method", ":path", ":scheme"): SigV4 signs ":authority" as is.
  std::vector<HttpHeader> headers;
  std::string body;
  std::string remote_address;  // "ip:port" of the peer
  bool tls = false;

  // The value of the first header named `lower_name`, or nullptr.
  const std::string* FindHeader(std::string_view lower_name) const {
    for (const HttpHeader& h : headers) {
      if (h.name == lower_name) return &h.value;
    }
    return nullptr;
  }
};

// A response body produced over time. Contract between a server and a body:
//  - Start(wake) is called once, on a server thread, after the response's
//    headers are queued. `wake` may be called from any thread, any number of
//    times, even after the connection is gone (then it does nothing); the body
//    calls it whenever it has new bytes or has finished.
//  - Pull(out) is called on a server thread after Start and after each wake,
//    never concurrently with itself, and only when the connection can take more
//    bytes (so a slow client slows Pull, not the server). It appends the bytes
//    ready (possibly none) and returns false once the body is finished and
//    `*out` holds its last bytes; it is not called again after that.
//  - Cancel(stopping) is called at most once, on a server thread, when the body
//    will not be finished normally: stopping == false when the peer went away
//    (the body stops producing; Pull is not called again); stopping == true when
//    the server is stopping (the body produces its final bytes, such as a last
//    event, wakes, and Pull is called until it returns false).
//  - The server keeps the body alive until Pull returned false or Cancel(false)
//    returned; the body must not call back into the server after that except
//    through `wake`.
class StreamBody {
 public:
  virtual ~StreamBody() = default;
  virtual void Start(std::function<void()> wake) = 0;
  virtual bool Pull(std::string* out) = 0;
  virtual void Cancel(bool stopping) = 0;
};

struct HttpResponse {
  int status = 200;
  // Headers to send, names lower-case. The server adds content-length (or the
  // chunked/DATA framing of a stream), date and, over HTTP/1.1, connection
  // handling; the handler sets content-type and x-amzn-requestid.
  std::vector<HttpHeader> headers;
  std::string body;                    // ignored when `stream` is set
  std::shared_ptr<StreamBody> stream;  // a body sent as produced
};

// Answers one request. Called on a server thread; may be called concurrently
// for different requests. Must not block for long (kinlet's calls do not): a
// wait belongs in a StreamBody.
using HttpHandler = std::function<HttpResponse(HttpRequest& request)>;

}  // namespace kinlet::wire
