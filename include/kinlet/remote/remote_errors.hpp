// kinlet/remote/remote_errors.hpp: AWS error responses as kinlet's statuses,
// and which of them the SDKs' standard retry mode retries.
//
// An error response's `__type` (JSON `__type`, or the x-amzn-errortype
// header) is normalised as the SDKs do: anything up to a '#' and from a ':'
// is dropped ("com.amazonaws.kinesis#ResourceNotFoundException:http://..." ->
// "ResourceNotFoundException"). A Kinesis exception becomes the status its
// kinlet factory makes (kinlet/errors.hpp: same absl code, same payload, so
// the predicates IsResourceNotFound() and friends hold) with AWS's message;
// "InternalFailureException" is kinlet's InternalFailure; the wire's own
// exceptions (kinlet/wire/errors.hpp: SerializationException, the SigV4
// family, ...) keep their name as payload; anything else keeps its name with
// a code chosen from the HTTP status (5xx: kUnavailable).
//
// Thread safety: pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace kinlet::remote {

// "aws.protocols#Foo:bar" -> "Foo".
std::string_view NormalizeErrorType(std::string_view type);

// The status for an error response: `http_status`, its body (JSON; may be
// empty or not JSON) and the x-amzn-errortype header's value (may be empty).
// `on_create`: the call creates something (CreateStream,
// RegisterStreamConsumer): ResourceInUseException is then kAlreadyExists.
absl::Status ErrorFromResponse(long http_status, std::string_view body,
                               std::string_view error_type_header = {}, bool on_create = false);

// The status for `type` and `message` (as ErrorFromResponse, for an event
// stream's exception events).
absl::Status ErrorFromType(std::string_view type, std::string_view message, long http_status = 400,
                           bool on_create = false);

// Throttling errors of the SDKs' standard retry mode (ProvisionedThroughputExceeded,
// LimitExceeded, ThrottlingException, TooManyRequestsException, ...).
bool IsThrottlingError(const absl::Status& status);
// Transient errors: transport failures (kUnavailable without a Kinesis name,
// timeouts included), 5xx responses (InternalFailure, ServiceUnavailable, ...)
// and RequestTimeout-like names.
bool IsTransientError(const absl::Status& status);
// A transport timeout (retried at a higher quota cost).
bool IsTimeoutError(const absl::Status& status);

}  // namespace kinlet::remote
