// Internal: the small HTTP client of the container and instance metadata
// credential sources (libcurl easy handles, no proxy, short timeouts).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kinlet::remote::detail {

struct SimpleHttpResponse {
  long status = 0;
  std::string body;
};

// One request to `url` ("http://host[:port]/path") with `headers`
// ("Name: value"), no proxy, no redirects, `timeout` for connecting and for the
// whole exchange, response bodies up to 64 KiB. Errors: kUnavailable with
// curl's message when the exchange fails (connection refused, timeout, ...).
// Thread-safe (one easy handle per call).
absl::StatusOr<SimpleHttpResponse> SimpleHttpRequest(const std::string& method,
                                                     const std::string& url,
                                                     const std::vector<std::string>& headers,
                                                     absl::Duration timeout);

}  // namespace kinlet::remote::detail
