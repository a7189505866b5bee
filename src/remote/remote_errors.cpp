// AWS error responses as kinlet statuses (see kinlet/remote/remote_errors.hpp).
#include "kinlet/remote/remote_errors.hpp"

#include <array>

#include "absl/strings/str_cat.h"
#include "kinlet/errors.hpp"
#include "kinlet/wire/document.hpp"
#include "kinlet/wire/errors.hpp"

namespace kinlet::remote {
namespace {

// From botocore retries/standard.py (_THROTTLED_ERROR_CODES) and Kinesis's
// own policy (ProvisionedThroughputExceeded, LimitExceeded).
constexpr std::array<std::string_view, 16> kThrottling = {
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "TransactionInProgressException",
    "KMSThrottlingException",
    "ShardFullException",
};
constexpr std::array<std::string_view, 6> kTransient = {
    "RequestTimeout",      "RequestTimeoutException", "InternalFailure",
    "InternalServerError", "ServiceUnavailable",      "InternalFailureException",
};

std::string TypeOf(const absl::Status& s) {
  auto payload = s.GetPayload(detail::ToAbsl(detail::kErrorPayloadUrl));
  return payload.has_value() ? std::string(*payload) : std::string();
}

}  // namespace

std::string_view NormalizeErrorType(std::string_view type) {
  if (size_t hash = type.rfind('#'); hash != std::string_view::npos) type.remove_prefix(hash + 1);
  if (size_t colon = type.find(':'); colon != std::string_view::npos) type = type.substr(0, colon);
  return type;
}

absl::Status ErrorFromType(std::string_view raw_type, std::string_view message, long http_status,
                           bool on_create) {
  const std::string_view type = NormalizeErrorType(raw_type);
  if (type == "InternalFailureException" || type == ErrorName(ErrorCode::kInternalFailure)) {
    return InternalFailure(message);
  }
  for (int c = static_cast<int>(ErrorCode::kResourceNotFound);
       c < static_cast<int>(ErrorCode::kUnknown); ++c) {
    const auto code = static_cast<ErrorCode>(c);
    if (ErrorName(code) != type) continue;
    switch (code) {
      case ErrorCode::kResourceNotFound:
        return ResourceNotFound(message);
      case ErrorCode::kResourceInUse:
        return ResourceInUse(message, on_create);
      case ErrorCode::kInvalidArgument:
        return InvalidArgument(message);
      case ErrorCode::kValidation:
        return ValidationError(message);
      case ErrorCode::kLimitExceeded:
        return LimitExceeded(message);
      case ErrorCode::kProvisionedThroughputExceeded:
        return ProvisionedThroughputExceeded(message);
      case ErrorCode::kExpiredIterator:
        return ExpiredIterator(message);
      case ErrorCode::kExpiredNextToken:
        return ExpiredNextToken(message);
      case ErrorCode::kTrimmedDataAccess:
        return TrimmedDataAccess(message);
      case ErrorCode::kShardFull:
        return ShardFull(message);
      case ErrorCode::kAccessDenied:
        return wire::WireError(absl::StatusCode::kPermissionDenied, type, message);
      case ErrorCode::kShutdown:
        return ShutdownError(message);
      case ErrorCode::kConditionalCheckFailed:
        return ConditionalCheckFailed(message);
      default:
        break;
    }
  }
  absl::StatusCode code = absl::StatusCode::kUnknown;
  if (type == wire::kSerializationException) {
    code = absl::StatusCode::kInvalidArgument;
  } else if (type == wire::kUnknownOperationException) {
    code = absl::StatusCode::kUnimplemented;
  } else if (type == wire::kMissingAuthenticationTokenException ||
             type == wire::kIncompleteSignatureException ||
             type == wire::kInvalidSignatureException ||
             type == wire::kUnrecognizedClientException || type == "ExpiredTokenException") {
    code = absl::StatusCode::kUnauthenticated;
  } else if (type.substr(0, 3) == "KMS") {
    code = absl::StatusCode::kFailedPrecondition;
  } else if (std::find(kThrottling.begin(), kThrottling.end(), type) != kThrottling.end()) {
    code = absl::StatusCode::kResourceExhausted;
  } else if (http_status >= 500) {
    code = absl::StatusCode::kUnavailable;
  }
  if (type.empty()) {
    return absl::Status(
        http_status >= 500 ? absl::StatusCode::kUnavailable : absl::StatusCode::kUnknown,
        absl::StrCat("HTTP ", http_status, ": ", detail::ToAbsl(message)));
  }
  return wire::WireError(code, type, message);
}

absl::Status ErrorFromResponse(long http_status, std::string_view body,
                               std::string_view error_type_header, bool on_create) {
  std::string type(error_type_header);
  std::string message;
  if (absl::StatusOr<wire::Value> doc = wire::ParseJson(body); doc.ok()) {
    if (const wire::Value* t = doc->Find("__type");
        t != nullptr && t->kind() == wire::Value::Kind::kString) {
      type = t->str();
    } else if (const wire::Value* code = doc->Find("code");
               type.empty() && code != nullptr && code->kind() == wire::Value::Kind::kString) {
      type = code->str();
    }
    for (std::string_view key : {"message", "Message", "errorMessage"}) {
      if (const wire::Value* m = doc->Find(key);
          m != nullptr && m->kind() == wire::Value::Kind::kString) {
        message = m->str();
        break;
      }
    }
  } else if (type.empty()) {
    message = std::string(body.substr(0, 200));
  }
  if (type.empty() && http_status >= 500) type = "";
  return ErrorFromType(type, message, http_status, on_create);
}

bool IsThrottlingError(const absl::Status& status) {
  if (status.ok()) return false;
  const std::string type = TypeOf(status);
  if (type.empty()) return status.code() == absl::StatusCode::kResourceExhausted;
  return std::find(kThrottling.begin(), kThrottling.end(), type) != kThrottling.end();
}

bool IsTransientError(const absl::Status& status) {
  if (status.ok()) return false;
  const std::string type = TypeOf(status);
  if (type.empty()) return status.code() == absl::StatusCode::kUnavailable;
  if (std::find(kTransient.begin(), kTransient.end(), type) != kTransient.end()) return true;
  return status.code() == absl::StatusCode::kUnavailable;
}

bool IsTimeoutError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable && TypeOf(status).empty() &&
         status.message().find("timed out") != absl::string_view::npos;
}

}  // namespace kinlet::remote
