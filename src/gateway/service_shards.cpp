// src/gateway/service_shards.cpp: ListShards, SplitShard, MergeShards,
// UpdateShardCount.
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "service_impl.hpp"

namespace kinlet::gateway {

void KinesisService::Impl::WriteShard(wire::Writer& w, const ShardDescription& s) {
  w.BeginObject();
  w.Key("ShardId");
  w.String(s.shard_id);
  if (s.parent_shard_id) {
    w.Key("ParentShardId");
    w.String(*s.parent_shard_id);
  }
  if (s.adjacent_parent_shard_id) {
    w.Key("AdjacentParentShardId");
    w.String(*s.adjacent_parent_shard_id);
  }
  w.Key("HashKeyRange");
  w.BeginObject();
  w.Key("StartingHashKey");
  w.String(HashKeyToString(s.hash_key_range.starting_hash_key));
  w.Key("EndingHashKey");
  w.String(HashKeyToString(s.hash_key_range.ending_hash_key));
  w.EndObject();
  w.Key("SequenceNumberRange");
  w.BeginObject();
  w.Key("StartingSequenceNumber");
  w.String(s.sequence_number_range.starting_sequence_number.ToString());
  if (s.sequence_number_range.ending_sequence_number) {
    w.Key("EndingSequenceNumber");
    w.String(s.sequence_number_range.ending_sequence_number->ToString());
  }
  w.EndObject();
  w.EndObject();
}

absl::Status KinesisService::Impl::ListShards(Call& c) {
  absl::StatusOr<std::optional<std::string_view>> token = OptString(c.in, "NextToken");
  if (!token.ok()) return token.status();
  absl::StatusOr<std::optional<std::string_view>> name = OptString(c.in, "StreamName");
  if (!name.ok()) return name.status();
  absl::StatusOr<std::optional<std::string_view>> arn = OptString(c.in, "StreamARN");
  if (!arn.ok()) return arn.status();
  absl::StatusOr<std::optional<int64_t>> max = OptInt(c.in, "MaxResults");
  if (!max.ok()) return max.status();
  if (*max && (**max < 1 || **max > 10000)) return RangeError("maxResults", **max, 1, 10000);
  absl::StatusOr<std::optional<std::string_view>> start = OptString(c.in, "ExclusiveStartShardId");
  if (!start.ok()) return start.status();
  absl::StatusOr<std::optional<absl::Time>> created =
      OptTime(c.in, c.format, "StreamCreationTimestamp");
  if (!created.ok()) return created.status();
  ListShardsRequest request;
  request.max_results = static_cast<int>(max->value_or(1000));
  if (*start) request.exclusive_start_shard_id = std::string(**start);
  const Value* filter = c.in.Find("ShardFilter");
  if (filter != nullptr && filter->kind() != Value::Kind::kNull) {
    if (filter->kind() != Value::Kind::kObject) {
      return wire::SerializationError("Start of structure or map found where not expected");
    }
    absl::StatusOr<std::optional<std::string_view>> type = OptString(*filter, "Type");
    if (!type.ok()) return type.status();
    if (!*type) return NullMember("shardFilter.type");
    absl::StatusOr<std::optional<std::string_view>> shard = OptString(*filter, "ShardId");
    if (!shard.ok()) return shard.status();
    absl::StatusOr<std::optional<absl::Time>> ts = OptTime(*filter, c.format, "Timestamp");
    if (!ts.ok()) return ts.status();
    ShardFilter f;
    bool known = false;
    for (auto t : {ShardFilter::Type::kAfterShardId, ShardFilter::Type::kAtTrimHorizon,
                   ShardFilter::Type::kFromTrimHorizon, ShardFilter::Type::kAtLatest,
                   ShardFilter::Type::kAtTimestamp, ShardFilter::Type::kFromTimestamp}) {
      if (ShardFilterTypeName(t) == **type) {
        f.type = t;
        known = true;
      }
    }
    if (!known) {
      return PatternError("shardFilter.type", **type,
                          "Member must satisfy enum value set: [AT_TRIM_HORIZON, "
                          "FROM_TRIM_HORIZON, AFTER_SHARD_ID, AT_TIMESTAMP, AT_LATEST, "
                          "FROM_TIMESTAMP]");
    }
    if (f.type == ShardFilter::Type::kAfterShardId) {
      if (!*shard) {
        return InvalidArgument("Must specify ShardId when ShardFilter type is AFTER_SHARD_ID.");
      }
      f.shard_id = std::string(**shard);
    }
    if (f.type == ShardFilter::Type::kAtTimestamp || f.type == ShardFilter::Type::kFromTimestamp) {
      if (!*ts) {
        return InvalidArgument(absl::StrCat("Must specify Timestamp when ShardFilter type is ",
                                            detail::ToAbsl(**type), "."));
      }
      f.timestamp = **ts;
    }
    request.filter = f;
  }
  StreamPtr stream;
  if (*token) {
    if (*name || *arn) {
      return InvalidArgument("NextToken and StreamName cannot be provided together.");
    }
    // <base64url(stream name)>~<kinlet token>
    std::string_view t = **token;
    const size_t tilde = t.find('~');
    std::string stream_name;
    if (tilde == std::string_view::npos ||
        !absl::WebSafeBase64Unescape(detail::ToAbsl(t.substr(0, tilde)), &stream_name) ||
        !detail::IsResourceName(stream_name)) {
      return InvalidArgument(absl::StrCat("NextToken ", detail::ToAbsl(t), " is invalid."));
    }
    absl::StatusOr<StreamPtr> s = StreamByName(stream_name, Plane::kDescribe);
    if (!s.ok()) return s.status();
    stream = *std::move(s);
    request.next_token = std::string(t.substr(tilde + 1));
  } else {
    absl::StatusOr<StreamPtr> s = ResolveStream(c.in, Plane::kDescribe);
    if (!s.ok()) return s.status();
    stream = *std::move(s);
  }
  absl::StatusOr<ListShardsResult> result = stream->ListShards(request);
  if (!result.ok()) return result.status();
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("Shards");
  w.BeginArray();
  for (const ShardDescription& s : result->shards) WriteShard(w, s);
  w.EndArray();
  if (!result->next_token.empty()) {
    w.Key("NextToken");
    w.String(absl::StrCat(absl::WebSafeBase64Escape(stream->name()), "~", result->next_token));
  }
  w.EndObject();
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::SplitShard(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<std::string_view>> shard = OptString(c.in, "ShardToSplit");
  if (!shard.ok()) return shard.status();
  if (!*shard) return NullMember("shardToSplit");
  absl::StatusOr<std::optional<std::string_view>> key = OptString(c.in, "NewStartingHashKey");
  if (!key.ok()) return key.status();
  if (!*key) return NullMember("newStartingHashKey");
  absl::StatusOr<HashKey> hash = ParseHashKey(**key);
  if (!hash.ok()) {
    return PatternError("newStartingHashKey", **key,
                        "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})");
  }
  return (*stream)->SplitShard(**shard, *hash);
}

absl::Status KinesisService::Impl::MergeShards(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<std::string_view>> a = OptString(c.in, "ShardToMerge");
  if (!a.ok()) return a.status();
  if (!*a) return NullMember("shardToMerge");
  absl::StatusOr<std::optional<std::string_view>> b = OptString(c.in, "AdjacentShardToMerge");
  if (!b.ok()) return b.status();
  if (!*b) return NullMember("adjacentShardToMerge");
  return (*stream)->MergeShards(**a, **b);
}

absl::Status KinesisService::Impl::UpdateShardCount(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<int64_t>> target = OptInt(c.in, "TargetShardCount");
  if (!target.ok()) return target.status();
  if (!*target) return NullMember("targetShardCount");
  absl::StatusOr<std::optional<std::string_view>> scaling = OptString(c.in, "ScalingType");
  if (!scaling.ok()) return scaling.status();
  if (!*scaling) return NullMember("scalingType");
  if (**scaling != "UNIFORM_SCALING") {
    return PatternError("scalingType", **scaling,
                        "Member must satisfy enum value set: [UNIFORM_SCALING]");
  }
  if (**target < 1 || **target > 100000) return RangeError("targetShardCount", **target, 1, 100000);
  absl::StatusOr<UpdateShardCountResult> r =
      (*stream)->UpdateShardCount(static_cast<int>(**target), ScalingType::kUniformScaling);
  if (!r.ok()) return r.status();
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("StreamName");
  w.String((*stream)->name());
  w.Key("CurrentShardCount");
  w.Int(r->current_shard_count);
  w.Key("TargetShardCount");
  w.Int(r->target_shard_count);
  w.Key("StreamARN");
  w.String(StreamArn((*stream)->name()));
  w.EndObject();
  return absl::OkStatus();
}

}  // namespace kinlet::gateway
