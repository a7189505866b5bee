// Reading Kinesis JSON responses into kinlet's types (internal to kinlet::remote).
// Thread safety: pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kinlet/fan_out.hpp"
#include "kinlet/record.hpp"
#include "kinlet/stream_options.hpp"
#include "kinlet/wire/document.hpp"

namespace kinlet::remote::json {

// A string member ("" when absent, null or not a string).
std::string Str(const wire::Value& v, std::string_view key);
// An integer member (0 when absent or not a number).
int64_t Int(const wire::Value& v, std::string_view key);
// A decimal sequence number member; InternalFailure when absent or malformed.
absl::StatusOr<SequenceNumber> Sequence(const wire::Value& v, std::string_view key);
// The "Records" member (GetRecords, SubscribeToShardEvent), appended to `out`.
absl::Status Records(const wire::Value& v, std::vector<Record<std::string>>* out);
// The "ChildShards" member, appended to `out`.
absl::Status ChildShards(const wire::Value& v, std::vector<ChildShard>* out);
// The "Shards" member (ListShards, DescribeStream), appended to `out`.
absl::Status Shards(const wire::Value& v, std::vector<ShardDescription>* out);
// A DescribeStreamSummary response.
absl::StatusOr<StreamDescriptionSummary> Summary(const wire::Value& response);
// A Consumer / ConsumerDescription object; `stream_arn` when it has none.
absl::StatusOr<StreamConsumerDescription> Consumer(const wire::Value& v,
                                                   const std::string& stream_arn);

}  // namespace kinlet::remote::json
