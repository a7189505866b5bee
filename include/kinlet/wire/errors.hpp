// kinlet/wire/errors.hpp: errors of the wire protocol, carried by absl::Status.
//
// The core's errors (kinlet/errors.hpp) name Kinesis's modeled exceptions. The
// wire adds the protocol's own (SerializationException, the SigV4 family,
// UnknownOperationException, ...). They ride on an absl::Status the same way:
// the exception name as the status's kinesis-error payload, so one function,
// ErrorTypeOf, gives the `__type` of any status a wire component returns.
//
// Thread safety: all functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "kinlet/errors.hpp"

namespace kinlet::wire {

// Exception names that only the wire protocol produces.
inline constexpr std::string_view kSerializationException = "SerializationException";
inline constexpr std::string_view kUnknownOperationException = "UnknownOperationException";
inline constexpr std::string_view kMissingAuthenticationTokenException =
    "MissingAuthenticationTokenException";
inline constexpr std::string_view kIncompleteSignatureException = "IncompleteSignatureException";
inline constexpr std::string_view kInvalidSignatureException = "InvalidSignatureException";
inline constexpr std::string_view kUnrecognizedClientException = "UnrecognizedClientException";
inline constexpr std::string_view kAccessDeniedException = "AccessDeniedException";

// A status whose `__type` on the wire is `type` and whose message is `message`.
inline absl::Status WireError(absl::StatusCode code, std::string_view type,
                              std::string_view message) {
  absl::Status status(code, kinlet::detail::ToAbsl(message));
  status.SetPayload(kinlet::detail::ToAbsl(kinlet::detail::kErrorPayloadUrl),
                    absl::Cord(kinlet::detail::ToAbsl(type)));
  return status;
}

inline absl::Status SerializationError(std::string_view message) {
  return WireError(absl::StatusCode::kInvalidArgument, kSerializationException, message);
}

// The exception name (`__type`) of a non-OK status: its payload's name when it
// has one (core and wire errors alike), "ProvisionedThroughputExceededException"
// for a bare kResourceExhausted (the core's allocation-free throttle), and
// "InternalFailure" for anything else (a status no kinlet component produced).
inline std::string ErrorTypeOf(const absl::Status& status) {
  auto payload = status.GetPayload(kinlet::detail::ToAbsl(kinlet::detail::kErrorPayloadUrl));
  if (payload.has_value()) return std::string(*payload);
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    return std::string(ErrorName(ErrorCode::kProvisionedThroughputExceeded));
  }
  return std::string(ErrorName(ErrorCode::kInternalFailure));
}

}  // namespace kinlet::wire
