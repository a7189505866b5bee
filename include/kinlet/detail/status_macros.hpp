// kinlet/detail/status_macros.hpp: early-return helpers (Debian's Abseil
// 20220623 ships none).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KINLET_DETAIL_CONCAT_INNER(a, b) a##b
#define KINLET_DETAIL_CONCAT(a, b) KINLET_DETAIL_CONCAT_INNER(a, b)

// KINLET_RETURN_IF_ERROR(expr): returns the status of `expr` if it is not OK.
#define KINLET_RETURN_IF_ERROR(expr)                                                       \
  do {                                                                                     \
    if (absl::Status kinlet_status_ = (expr); !kinlet_status_.ok()) return kinlet_status_; \
  } while (0)

// KINLET_ASSIGN_OR_RETURN(lhs, expr): evaluates the StatusOr `expr`; returns its
// status on error, else assigns its value to `lhs` (which may be a declaration).
#define KINLET_ASSIGN_OR_RETURN(lhs, expr) \
  KINLET_DETAIL_ASSIGN_OR_RETURN(KINLET_DETAIL_CONCAT(kinlet_statusor_, __LINE__), lhs, expr)
#define KINLET_DETAIL_ASSIGN_OR_RETURN(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = std::move(tmp).value()
