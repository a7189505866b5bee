// kinlet/errors.hpp: Kinesis error names carried by absl::Status.
//
// Every fallible kinlet call returns absl::Status or absl::StatusOr<T>; none
// throws. The Kinesis exception name ("ResourceNotFoundException", ...) rides
// on the status as a payload and is read back with ErrorCodeOf() or with a
// predicate such as IsExpiredIterator(status). The absl::StatusCode is chosen
// so that code which only looks at absl codes still does the right thing:
//
//   ProvisionedThroughputExceeded, LimitExceeded, ShardFull -> kResourceExhausted
//   ResourceNotFound                                        -> kNotFound
//   ResourceInUse                                           -> kAlreadyExists (create) or
//                                                              kFailedPrecondition
//   InvalidArgument, Validation                             -> kInvalidArgument
//   ExpiredIterator, ExpiredNextToken                       -> kFailedPrecondition
//   TrimmedDataAccess                                       -> kOutOfRange
//   InternalFailure                                         -> kInternal
//   KMS*Exception                                           -> kFailedPrecondition
//                                                              (KMSThrottling: kUnavailable)
//   DataLoss                                                -> kDataLoss
//   StorageFailure                                          -> kUnavailable
//
// On the write hot path a throttled put returns absl::ResourceExhaustedError("")
// (no message, no payload: no allocation); ErrorCodeOf() reads such a status as
// ProvisionedThroughputExceeded.
//
// Thread safety: all functions are pure and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "kinlet/detail/strings.hpp"

namespace kinlet {

enum class ErrorCode {
  kNone = 0,
  kResourceNotFound,
  kResourceInUse,
  kInvalidArgument,
  kValidation,
  kLimitExceeded,
  kProvisionedThroughputExceeded,
  kExpiredIterator,
  kExpiredNextToken,
  // kinlet's name for DynamoDB Streams' TrimmedDataAccessException: the iterator
  // points at records that retention or ring capacity has removed.
  kTrimmedDataAccess,
  // kinlet extension: the shard's ring is full of unexpired records and the
  // stream's FullPolicy is kReject. Nothing was written.
  kShardFull,
  kInternalFailure,
  kAccessDenied,
  // Consumer groups (consumer_group.hpp, checkpoint_store.hpp): the KCL's
  // ShutdownException (the worker no longer holds the lease) and DynamoDB's
  // ConditionalCheckFailedException (a lease changed under a conditional write).
  kShutdown,
  kConditionalCheckFailed,
  // Encryption at rest (storage/encryption.hpp): Kinesis's KMS errors, when a
  // key cannot be used to encrypt or decrypt.
  kKmsNotFound,
  kKmsAccessDenied,
  kKmsDisabled,
  kKmsInvalidState,
  kKmsThrottling,
  kKmsOptInRequired,
  // Durable streams (storage/): kinlet extensions. DataLossException: stored
  // records are corrupt (checksum or authentication failed) and cannot be
  // returned; never skipped silently. StorageFailureException: the disk
  // refused a write or an fsync; the shard refuses writes from then on (a
  // failed fsync is never retried and trusted) and keeps serving reads.
  kDataLoss,
  kStorageFailure,
  kUnknown,
};

// The Kinesis exception name of `code` ("" for kNone).
constexpr std::string_view ErrorName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNone:
      return "";
    case ErrorCode::kResourceNotFound:
      return "ResourceNotFoundException";
    case ErrorCode::kResourceInUse:
      return "ResourceInUseException";
    case ErrorCode::kInvalidArgument:
      return "InvalidArgumentException";
    case ErrorCode::kValidation:
      return "ValidationException";
    case ErrorCode::kLimitExceeded:
      return "LimitExceededException";
    case ErrorCode::kProvisionedThroughputExceeded:
      return "ProvisionedThroughputExceededException";
    case ErrorCode::kExpiredIterator:
      return "ExpiredIteratorException";
    case ErrorCode::kExpiredNextToken:
      return "ExpiredNextTokenException";
    case ErrorCode::kTrimmedDataAccess:
      return "TrimmedDataAccessException";
    case ErrorCode::kShardFull:
      return "ShardFullException";
    case ErrorCode::kInternalFailure:
      return "InternalFailure";
    case ErrorCode::kAccessDenied:
      return "AccessDeniedException";
    case ErrorCode::kShutdown:
      return "ShutdownException";
    case ErrorCode::kConditionalCheckFailed:
      return "ConditionalCheckFailedException";
    case ErrorCode::kKmsNotFound:
      return "KMSNotFoundException";
    case ErrorCode::kKmsAccessDenied:
      return "KMSAccessDeniedException";
    case ErrorCode::kKmsDisabled:
      return "KMSDisabledException";
    case ErrorCode::kKmsInvalidState:
      return "KMSInvalidStateException";
    case ErrorCode::kKmsThrottling:
      return "KMSThrottlingException";
    case ErrorCode::kKmsOptInRequired:
      return "KMSOptInRequired";
    case ErrorCode::kDataLoss:
      return "DataLossException";
    case ErrorCode::kStorageFailure:
      return "StorageFailureException";
    case ErrorCode::kUnknown:
      return "UnknownError";
  }
  return "UnknownError";
}

namespace detail {

inline constexpr std::string_view kErrorPayloadUrl = "type.kinlet.dev/kinesis-error";

// Builds a status whose message is `message` and whose payload names `code`.
inline absl::Status MakeError(absl::StatusCode status_code, ErrorCode code,
                              std::string_view message) {
  absl::Status status(status_code, ToAbsl(message));
  std::string_view name = ErrorName(code);
  status.SetPayload(ToAbsl(kErrorPayloadUrl), absl::Cord(ToAbsl(name)));
  return status;
}

}  // namespace detail

// The Kinesis error carried by `status`: kNone for OK, the payload's name when
// present, ProvisionedThroughputExceeded for a bare kResourceExhausted (the
// allocation-free throttle), kUnknown otherwise.
inline ErrorCode ErrorCodeOf(const absl::Status& status) {
  if (status.ok()) return ErrorCode::kNone;
  auto payload = status.GetPayload(detail::ToAbsl(detail::kErrorPayloadUrl));
  if (payload.has_value()) {
    std::string name(*payload);
    for (int c = static_cast<int>(ErrorCode::kResourceNotFound);
         c < static_cast<int>(ErrorCode::kUnknown); ++c) {
      if (ErrorName(static_cast<ErrorCode>(c)) == name) return static_cast<ErrorCode>(c);
    }
    return ErrorCode::kUnknown;
  }
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    return ErrorCode::kProvisionedThroughputExceeded;
  }
  return ErrorCode::kUnknown;
}

// The Kinesis exception name carried by `status` ("" for OK).
inline std::string_view ErrorNameOf(const absl::Status& status) {
  return ErrorName(ErrorCodeOf(status));
}

// Factories, one per Kinesis error. Each takes the human-readable message.
inline absl::Status ResourceNotFound(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kNotFound, ErrorCode::kResourceNotFound, message);
}
// `on_create`: true when a create call found the name taken (kAlreadyExists);
// otherwise the resource is in the wrong state (kFailedPrecondition).
inline absl::Status ResourceInUse(std::string_view message, bool on_create = false) {
  return detail::MakeError(
      on_create ? absl::StatusCode::kAlreadyExists : absl::StatusCode::kFailedPrecondition,
      ErrorCode::kResourceInUse, message);
}
inline absl::Status InvalidArgument(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kInvalidArgument,
                           message);
}
inline absl::Status ValidationError(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kInvalidArgument, ErrorCode::kValidation, message);
}
inline absl::Status LimitExceeded(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kResourceExhausted, ErrorCode::kLimitExceeded,
                           message);
}
inline absl::Status ProvisionedThroughputExceeded(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kResourceExhausted,
                           ErrorCode::kProvisionedThroughputExceeded, message);
}
// The allocation-free throttle of the hot path; reads as ProvisionedThroughputExceeded.
inline absl::Status Throttled() { return absl::ResourceExhaustedError(""); }
inline absl::Status ExpiredIterator(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kExpiredIterator,
                           message);
}
inline absl::Status ExpiredNextToken(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kExpiredNextToken,
                           message);
}
inline absl::Status TrimmedDataAccess(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kOutOfRange, ErrorCode::kTrimmedDataAccess, message);
}
inline absl::Status ShardFull(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kResourceExhausted, ErrorCode::kShardFull, message);
}
inline absl::Status InternalFailure(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kInternal, ErrorCode::kInternalFailure, message);
}
inline absl::Status ShutdownError(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kFailedPrecondition, ErrorCode::kShutdown, message);
}
inline absl::Status ConditionalCheckFailed(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kAborted, ErrorCode::kConditionalCheckFailed, message);
}
// KMS errors (encryption at rest); `code` is one of the kKms* codes.
inline absl::Status KmsError(ErrorCode code, std::string_view message) {
  return detail::MakeError(code == ErrorCode::kKmsThrottling
                               ? absl::StatusCode::kUnavailable
                               : absl::StatusCode::kFailedPrecondition,
                           code, message);
}
inline absl::Status DataLoss(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kDataLoss, ErrorCode::kDataLoss, message);
}
inline absl::Status StorageFailure(std::string_view message) {
  return detail::MakeError(absl::StatusCode::kUnavailable, ErrorCode::kStorageFailure, message);
}

// Predicates, one per Kinesis error.
inline bool IsResourceNotFound(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kResourceNotFound;
}
inline bool IsResourceInUse(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kResourceInUse;
}
inline bool IsInvalidArgument(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kInvalidArgument;
}
inline bool IsValidationError(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kValidation;
}
inline bool IsLimitExceeded(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kLimitExceeded;
}
inline bool IsProvisionedThroughputExceeded(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kProvisionedThroughputExceeded;
}
inline bool IsExpiredIterator(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kExpiredIterator;
}
inline bool IsExpiredNextToken(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kExpiredNextToken;
}
inline bool IsTrimmedDataAccess(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kTrimmedDataAccess;
}
inline bool IsShardFull(const absl::Status& s) { return ErrorCodeOf(s) == ErrorCode::kShardFull; }
inline bool IsInternalFailure(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kInternalFailure;
}
inline bool IsShutdown(const absl::Status& s) { return ErrorCodeOf(s) == ErrorCode::kShutdown; }
inline bool IsConditionalCheckFailed(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kConditionalCheckFailed;
}
inline bool IsKmsError(const absl::Status& s) {
  const ErrorCode c = ErrorCodeOf(s);
  return c >= ErrorCode::kKmsNotFound && c <= ErrorCode::kKmsOptInRequired;
}
inline bool IsDataLoss(const absl::Status& s) { return ErrorCodeOf(s) == ErrorCode::kDataLoss; }
inline bool IsStorageFailure(const absl::Status& s) {
  return ErrorCodeOf(s) == ErrorCode::kStorageFailure;
}
// True for every "try again later" write refusal: throughput, a full ring, or
// InternalFailure (retryable, as the AWS SDKs treat it).
inline bool IsRetryableWriteError(const absl::Status& s) {
  ErrorCode c = ErrorCodeOf(s);
  return c == ErrorCode::kProvisionedThroughputExceeded || c == ErrorCode::kShardFull ||
         c == ErrorCode::kInternalFailure;
}

}  // namespace kinlet
