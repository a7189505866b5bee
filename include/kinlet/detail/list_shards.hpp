// kinlet/detail/list_shards.hpp: the body of Stream::ListShards (stream.hpp
// documents its contract): shard ids in Kinesis's loose forms, ShardFilter
// matching over the held shards, and paging with NextToken.
//
// Thread safety: pure functions; MatchShards reads shards lock-free and
// REQUIRES its caller to be inside a ReadSection.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/resharding.hpp"
#include "kinlet/stream_options.hpp"

namespace kinlet::detail {

// The index in a shard id, in Kinesis's loose forms ("shardId-000000000007",
// "shardId-7", "7"); empty if it has none.
inline std::optional<int64_t> ShardIndexOf(std::string_view shard_id) {
  std::string_view digits = shard_id;
  if (size_t dash = shard_id.rfind('-'); dash != std::string_view::npos) {
    digits = shard_id.substr(dash + 1);
  }
  if (digits.empty() || !detail::AllDigits(digits) || digits.size() > 12) return std::nullopt;
  int64_t index = 0;
  for (char c : digits) index = index * 10 + (c - '0');
  return index;
}

// The descriptions of the shards of `held` (in index order) with an index
// above `after` that `filter` selects, with `horizon` the trim horizon in
// Unix milliseconds (no earlier than the stream's creation). Shards whose
// records have all expired are left out. REQUIRES: inside a ReadSection.
template <typename ShardType>
std::vector<ShardDescription> MatchShards(const std::vector<ShardType*>& held,
                                          const ShardFilter& filter, int64_t after,
                                          int64_t horizon) {
  auto open_at = [](const ShardType* s, int64_t t, std::optional<int64_t> closed) {
    return absl::ToUnixMillis(s->created_at()) <= t && (!closed || *closed >= t);
  };
  std::vector<ShardDescription> out;
  for (const ShardType* s : held) {
    if (static_cast<int64_t>(s->index()) <= after) continue;
    std::optional<int64_t> closed;
    if (std::optional<absl::Time> at = s->closed_at()) closed = absl::ToUnixMillis(*at);
    if (closed && *closed < horizon) continue;  // expired: every record is past retention
    bool match = true;
    switch (filter.type) {
      case ShardFilter::Type::kAfterShardId:
      case ShardFilter::Type::kFromTrimHorizon:
        break;
      case ShardFilter::Type::kAtLatest:
        match = !closed;
        break;
      case ShardFilter::Type::kAtTrimHorizon:
        match = open_at(s, horizon, closed);
        break;
      case ShardFilter::Type::kAtTimestamp:
        match = open_at(s, std::max(horizon, absl::ToUnixMillis(filter.timestamp)), closed);
        break;
      case ShardFilter::Type::kFromTimestamp:
        match = !closed || *closed >= std::max(horizon, absl::ToUnixMillis(filter.timestamp));
        break;
    }
    if (match) out.push_back(s->Describe());
  }
  return out;
}

inline constexpr int64_t kListTokenTtlMs = 300'000;

// A NextToken of the stream tagged `tag`, after the shard at `last_index`.
inline std::string MakeListToken(uint32_t tag, const ShardFilter& filter, int64_t last_index,
                                 int64_t now_ms) {
  return absl::StrCat("kinlet-ls.", tag, ".", static_cast<int>(filter.type), ".",
                      absl::ToUnixMillis(filter.timestamp), ".", last_index, ".", now_ms);
}

// Reads a NextToken of the stream `stream_name` tagged `tag` into `filter`
// and `after`. InvalidArgumentException if malformed or another stream's;
// ExpiredNextTokenException past kListTokenTtlMs.
inline absl::Status ParseListToken(std::string_view token, std::string_view stream_name,
                                   uint32_t tag, int64_t now_ms, ShardFilter* filter,
                                   int64_t* after) {
  const absl::Status invalid =
      InvalidArgument(absl::StrCat("NextToken ", detail::ToAbsl(token), " is invalid for stream ",
                                   detail::ToAbsl(stream_name), "."));
  const std::vector<absl::string_view> parts = absl::StrSplit(detail::ToAbsl(token), '.');
  if (parts.size() != 6 || parts[0] != "kinlet-ls") return invalid;
  int64_t values[5];
  for (size_t i = 0; i < 5; ++i) {
    if (!absl::SimpleAtoi(parts[i + 1], &values[i])) return invalid;
  }
  if (values[0] != static_cast<int64_t>(tag) || values[1] < 0 || values[1] > 5) {
    return invalid;
  }
  if (now_ms - values[4] > kListTokenTtlMs) {
    return ExpiredNextToken(absl::StrCat("The NextToken has expired: it was issued at ", values[4],
                                         " and tokens are valid for ", kListTokenTtlMs,
                                         " milliseconds."));
  }
  filter->type = static_cast<ShardFilter::Type>(values[1]);
  filter->timestamp = absl::FromUnixMillis(values[2]);
  *after = values[3];
  return absl::OkStatus();
}

// ListShards(request) of the stream `stream_name` tagged `tag`, at `now_ms`:
// validates the request, resolves where the page starts, and pages what
// `match(filter, after)` (StatusOr<std::vector<ShardDescription>>) lists.
template <typename Match>
absl::StatusOr<ListShardsResult> ListShardsPage(const ListShardsRequest& request,
                                                std::string_view stream_name, uint32_t tag,
                                                int64_t now_ms, Match match) {
  if (request.max_results < 1 || request.max_results > 10000) {
    return ValidationError(absl::StrCat(
        "1 validation error detected: Value '", request.max_results,
        "' at 'maxResults' failed to satisfy constraint: Member must have value ",
        request.max_results < 1 ? "greater than or equal to 1" : "less than or equal to 10000"));
  }
  ShardFilter filter = request.filter.value_or(ShardFilter::FromTrimHorizon());
  int64_t after = -1;
  if (!request.next_token.empty()) {
    if (request.filter || !request.exclusive_start_shard_id.empty()) {
      return InvalidArgument(
          "NextToken cannot be provided together with ShardFilter or ExclusiveStartShardId.");
    }
    absl::Status s = ParseListToken(request.next_token, stream_name, tag, now_ms, &filter, &after);
    if (!s.ok()) return s;
  } else {
    if (!request.exclusive_start_shard_id.empty()) {
      after = ShardIndexOf(request.exclusive_start_shard_id).value_or(-1);
      if (after < 0) {
        return InvalidArgument(absl::StrCat("ExclusiveStartShardId ",
                                            request.exclusive_start_shard_id, " is invalid."));
      }
    }
    if (filter.type == ShardFilter::Type::kAfterShardId) {
      const std::optional<int64_t> index = ShardIndexOf(filter.shard_id);
      if (!index) {
        return InvalidArgument("ShardFilter of type AFTER_SHARD_ID needs a valid ShardId.");
      }
      after = std::max(after, *index);
    }
  }
  absl::StatusOr<std::vector<ShardDescription>> all = match(filter, after);
  if (!all.ok()) return all.status();
  ListShardsResult result;
  const size_t page = static_cast<size_t>(std::min(request.max_results, 1000));
  if (all->size() > page) {
    all->resize(page);
    const int64_t last = *ShardIndexOf(all->back().shard_id);
    result.next_token = MakeListToken(tag, filter, last, now_ms);
  }
  result.shards = *std::move(all);
  return result;
}

}  // namespace kinlet::detail
