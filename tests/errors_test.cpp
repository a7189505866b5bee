// Tests for kinlet/errors.hpp: Kinesis error names carried by absl::Status.
#include "kinlet/errors.hpp"

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace {

using kinlet::ErrorCode;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// One row per Kinesis error that has a factory.
struct FactoryCase {
  const char* label;
  absl::Status status;
  ErrorCode code;
  absl::StatusCode absl_code;
  std::string_view name;
};

struct PredicateCase {
  const char* label;
  std::function<bool(const absl::Status&)> predicate;
  ErrorCode code;
};

std::vector<FactoryCase> FactoryCases() {
  return {
      {"ResourceNotFound", kinlet::ResourceNotFound("m"), ErrorCode::kResourceNotFound,
       absl::StatusCode::kNotFound, "ResourceNotFoundException"},
      {"ResourceInUse (create)", kinlet::ResourceInUse("m", /*on_create=*/true),
       ErrorCode::kResourceInUse, absl::StatusCode::kAlreadyExists, "ResourceInUseException"},
      {"ResourceInUse (state)", kinlet::ResourceInUse("m"), ErrorCode::kResourceInUse,
       absl::StatusCode::kFailedPrecondition, "ResourceInUseException"},
      {"InvalidArgument", kinlet::InvalidArgument("m"), ErrorCode::kInvalidArgument,
       absl::StatusCode::kInvalidArgument, "InvalidArgumentException"},
      {"ValidationError", kinlet::ValidationError("m"), ErrorCode::kValidation,
       absl::StatusCode::kInvalidArgument, "ValidationException"},
      {"LimitExceeded", kinlet::LimitExceeded("m"), ErrorCode::kLimitExceeded,
       absl::StatusCode::kResourceExhausted, "LimitExceededException"},
      {"ProvisionedThroughputExceeded", kinlet::ProvisionedThroughputExceeded("m"),
       ErrorCode::kProvisionedThroughputExceeded, absl::StatusCode::kResourceExhausted,
       "ProvisionedThroughputExceededException"},
      {"ExpiredIterator", kinlet::ExpiredIterator("m"), ErrorCode::kExpiredIterator,
       absl::StatusCode::kFailedPrecondition, "ExpiredIteratorException"},
      {"TrimmedDataAccess", kinlet::TrimmedDataAccess("m"), ErrorCode::kTrimmedDataAccess,
       absl::StatusCode::kOutOfRange, "TrimmedDataAccessException"},
      {"ShardFull", kinlet::ShardFull("m"), ErrorCode::kShardFull,
       absl::StatusCode::kResourceExhausted, "ShardFullException"},
      {"InternalFailure", kinlet::InternalFailure("m"), ErrorCode::kInternalFailure,
       absl::StatusCode::kInternal, "InternalFailure"},
  };
}

std::vector<PredicateCase> PredicateCases() {
  return {
      {"IsResourceNotFound", kinlet::IsResourceNotFound, ErrorCode::kResourceNotFound},
      {"IsResourceInUse", kinlet::IsResourceInUse, ErrorCode::kResourceInUse},
      {"IsInvalidArgument", kinlet::IsInvalidArgument, ErrorCode::kInvalidArgument},
      {"IsValidationError", kinlet::IsValidationError, ErrorCode::kValidation},
      {"IsLimitExceeded", kinlet::IsLimitExceeded, ErrorCode::kLimitExceeded},
      {"IsProvisionedThroughputExceeded", kinlet::IsProvisionedThroughputExceeded,
       ErrorCode::kProvisionedThroughputExceeded},
      {"IsExpiredIterator", kinlet::IsExpiredIterator, ErrorCode::kExpiredIterator},
      {"IsTrimmedDataAccess", kinlet::IsTrimmedDataAccess, ErrorCode::kTrimmedDataAccess},
      {"IsShardFull", kinlet::IsShardFull, ErrorCode::kShardFull},
      {"IsInternalFailure", kinlet::IsInternalFailure, ErrorCode::kInternalFailure},
  };
}

}  // namespace

TEST_CASE("Each error factory carries its Kinesis name, absl code and message", "[errors]") {
  for (const FactoryCase& c : FactoryCases()) {
    INFO(c.label);
    CHECK_FALSE(c.status.ok());
    CHECK(c.status.code() == c.absl_code);
    CHECK(kinlet::ErrorCodeOf(c.status) == c.code);
    CHECK(kinlet::ErrorNameOf(c.status) == c.name);
    CHECK(Msg(c.status) == "m");
  }
}

TEST_CASE("Each predicate accepts exactly its own factory's status", "[errors]") {
  const std::vector<FactoryCase> factories = FactoryCases();
  for (const PredicateCase& p : PredicateCases()) {
    for (const FactoryCase& f : factories) {
      INFO(p.label << " on " << f.label);
      CHECK(p.predicate(f.status) == (p.code == f.code));
    }
    INFO(p.label << " on OK");
    CHECK_FALSE(p.predicate(absl::OkStatus()));
  }
}

TEST_CASE("Factories keep long messages verbatim", "[errors]") {
  const absl::Status s = kinlet::ResourceNotFound("Stream S under account 000000000000 not found.");
  CHECK(Msg(s) == "Stream S under account 000000000000 not found.");
  CHECK(kinlet::IsResourceNotFound(s));
}

TEST_CASE("ErrorCodeOf reads OK, bare absl statuses and payloads", "[errors]") {
  SECTION("OK is kNone with an empty name") {
    CHECK(kinlet::ErrorCodeOf(absl::OkStatus()) == ErrorCode::kNone);
    CHECK(kinlet::ErrorNameOf(absl::OkStatus()).empty());
  }
  SECTION("a bare ResourceExhausted is the allocation-free throttle") {
    const absl::Status bare = absl::ResourceExhaustedError("");
    CHECK(kinlet::ErrorCodeOf(bare) == ErrorCode::kProvisionedThroughputExceeded);
    CHECK(kinlet::IsProvisionedThroughputExceeded(bare));
    CHECK_FALSE(kinlet::IsLimitExceeded(bare));
    CHECK_FALSE(kinlet::IsShardFull(bare));
    CHECK(kinlet::ErrorNameOf(bare) == "ProvisionedThroughputExceededException");
  }
  SECTION("Throttled() is a bare ResourceExhausted without message or payload") {
    const absl::Status t = kinlet::Throttled();
    CHECK(t.code() == absl::StatusCode::kResourceExhausted);
    CHECK(t.message().empty());
    CHECK_FALSE(t.GetPayload(kinlet::detail::ToAbsl(kinlet::detail::kErrorPayloadUrl)).has_value());
    CHECK(kinlet::IsProvisionedThroughputExceeded(t));
  }
  SECTION("plain absl statuses without payload are kUnknown") {
    for (const absl::Status& s :
         {absl::NotFoundError("x"), absl::InvalidArgumentError("x"), absl::InternalError("x"),
          absl::FailedPreconditionError("x"), absl::OutOfRangeError("x"), absl::UnknownError("")}) {
      INFO(s.ToString());
      CHECK(kinlet::ErrorCodeOf(s) == ErrorCode::kUnknown);
      CHECK(kinlet::ErrorNameOf(s) == "UnknownError");
      CHECK_FALSE(kinlet::IsResourceNotFound(s));
      CHECK_FALSE(kinlet::IsInvalidArgument(s));
      CHECK_FALSE(kinlet::IsInternalFailure(s));
    }
  }
  SECTION("a payload naming no known error is kUnknown") {
    absl::Status s = absl::NotFoundError("x");
    s.SetPayload(kinlet::detail::ToAbsl(kinlet::detail::kErrorPayloadUrl),
                 absl::Cord("NoSuchException"));
    CHECK(kinlet::ErrorCodeOf(s) == ErrorCode::kUnknown);
  }
  SECTION("the payload wins over the absl code") {
    absl::Status s = absl::ResourceExhaustedError("busy");
    s.SetPayload(kinlet::detail::ToAbsl(kinlet::detail::kErrorPayloadUrl),
                 absl::Cord("LimitExceededException"));
    CHECK(kinlet::ErrorCodeOf(s) == ErrorCode::kLimitExceeded);
    CHECK_FALSE(kinlet::IsProvisionedThroughputExceeded(s));
  }
  SECTION("every named code round-trips through the payload") {
    for (ErrorCode code :
         {ErrorCode::kResourceNotFound, ErrorCode::kResourceInUse, ErrorCode::kInvalidArgument,
          ErrorCode::kValidation, ErrorCode::kLimitExceeded,
          ErrorCode::kProvisionedThroughputExceeded, ErrorCode::kExpiredIterator,
          ErrorCode::kExpiredNextToken, ErrorCode::kTrimmedDataAccess, ErrorCode::kShardFull,
          ErrorCode::kInternalFailure, ErrorCode::kAccessDenied, ErrorCode::kShutdown,
          ErrorCode::kConditionalCheckFailed}) {
      const absl::Status s = kinlet::detail::MakeError(absl::StatusCode::kUnknown, code, "message");
      INFO(std::string(kinlet::ErrorName(code)));
      CHECK(kinlet::ErrorCodeOf(s) == code);
      CHECK(Msg(s) == "message");
    }
  }
}

TEST_CASE("ErrorName spells every code as Kinesis does", "[errors]") {
  static_assert(kinlet::ErrorName(ErrorCode::kNone).empty());
  static_assert(kinlet::ErrorName(ErrorCode::kResourceNotFound) == "ResourceNotFoundException");
  CHECK(kinlet::ErrorName(ErrorCode::kNone) == "");
  CHECK(kinlet::ErrorName(ErrorCode::kResourceNotFound) == "ResourceNotFoundException");
  CHECK(kinlet::ErrorName(ErrorCode::kResourceInUse) == "ResourceInUseException");
  CHECK(kinlet::ErrorName(ErrorCode::kInvalidArgument) == "InvalidArgumentException");
  CHECK(kinlet::ErrorName(ErrorCode::kValidation) == "ValidationException");
  CHECK(kinlet::ErrorName(ErrorCode::kLimitExceeded) == "LimitExceededException");
  CHECK(kinlet::ErrorName(ErrorCode::kProvisionedThroughputExceeded) ==
        "ProvisionedThroughputExceededException");
  CHECK(kinlet::ErrorName(ErrorCode::kExpiredIterator) == "ExpiredIteratorException");
  CHECK(kinlet::ErrorName(ErrorCode::kExpiredNextToken) == "ExpiredNextTokenException");
  CHECK(kinlet::ErrorName(ErrorCode::kTrimmedDataAccess) == "TrimmedDataAccessException");
  CHECK(kinlet::ErrorName(ErrorCode::kShardFull) == "ShardFullException");
  CHECK(kinlet::ErrorName(ErrorCode::kInternalFailure) == "InternalFailure");
  CHECK(kinlet::ErrorName(ErrorCode::kAccessDenied) == "AccessDeniedException");
  CHECK(kinlet::ErrorName(ErrorCode::kShutdown) == "ShutdownException");
  CHECK(kinlet::ErrorName(ErrorCode::kConditionalCheckFailed) == "ConditionalCheckFailedException");
  CHECK(kinlet::ErrorName(ErrorCode::kUnknown) == "UnknownError");
  CHECK(kinlet::IsShutdown(kinlet::ShutdownError("lease lost")));
  CHECK(kinlet::IsConditionalCheckFailed(kinlet::ConditionalCheckFailed("changed")));
  CHECK_FALSE(kinlet::IsShutdown(kinlet::ConditionalCheckFailed("changed")));
}

TEST_CASE("IsRetryableWriteError is true only for try-again-later write refusals", "[errors]") {
  SECTION("retryable") {
    CHECK(kinlet::IsRetryableWriteError(kinlet::ProvisionedThroughputExceeded("m")));
    CHECK(kinlet::IsRetryableWriteError(kinlet::Throttled()));
    CHECK(kinlet::IsRetryableWriteError(absl::ResourceExhaustedError("")));
    CHECK(kinlet::IsRetryableWriteError(kinlet::ShardFull("m")));
    CHECK(kinlet::IsRetryableWriteError(kinlet::InternalFailure("m")));
  }
  SECTION("not retryable") {
    CHECK_FALSE(kinlet::IsRetryableWriteError(absl::OkStatus()));
    CHECK_FALSE(kinlet::IsRetryableWriteError(kinlet::ResourceNotFound("m")));
    CHECK_FALSE(kinlet::IsRetryableWriteError(kinlet::ResourceInUse("m")));
    CHECK_FALSE(kinlet::IsRetryableWriteError(kinlet::InvalidArgument("m")));
    CHECK_FALSE(kinlet::IsRetryableWriteError(kinlet::ValidationError("m")));
    CHECK_FALSE(kinlet::IsRetryableWriteError(kinlet::LimitExceeded("m")));
    CHECK_FALSE(kinlet::IsRetryableWriteError(kinlet::ExpiredIterator("m")));
    CHECK_FALSE(kinlet::IsRetryableWriteError(kinlet::TrimmedDataAccess("m")));
    CHECK_FALSE(kinlet::IsRetryableWriteError(absl::InternalError("no payload")));
  }
}
