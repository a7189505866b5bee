// src/gateway/service_streams.cpp: streams: create, delete, describe, list,
// retention, capacity mode, tags, limits, enhanced monitoring, encryption.
#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service_impl.hpp"

namespace kinlet::gateway {
namespace {

constexpr std::string_view kMetrics[] = {"IncomingBytes",
                                         "IncomingRecords",
                                         "OutgoingBytes",
                                         "OutgoingRecords",
                                         "WriteProvisionedThroughputExceeded",
                                         "ReadProvisionedThroughputExceeded",
                                         "IteratorAgeMilliseconds"};
constexpr int64_t kListTokenTtlMs = 300'000;

void WriteMode(wire::Writer& w, StreamMode mode) {
  w.Key("StreamModeDetails");
  w.BeginObject();
  w.Key("StreamMode");
  w.String(StreamModeName(mode));
  w.EndObject();
}

void WriteMonitoring(wire::Writer& w, const std::set<std::string>& metrics) {
  w.Key("EnhancedMonitoring");
  w.BeginArray();
  w.BeginObject();
  w.Key("ShardLevelMetrics");
  w.BeginArray();
  for (const std::string& m : metrics) w.String(m);
  w.EndArray();
  w.EndObject();
  w.EndArray();
}

absl::StatusOr<std::optional<StreamMode>> ModeOf(const Value& in) {
  const Value* details = in.Find("StreamModeDetails");
  if (details == nullptr || details->kind() == Value::Kind::kNull) {
    return std::optional<StreamMode>();
  }
  if (details->kind() != Value::Kind::kObject) {
    return wire::SerializationError("Start of structure or map found where not expected");
  }
  absl::StatusOr<std::optional<std::string_view>> mode = OptString(*details, "StreamMode");
  if (!mode.ok()) return mode.status();
  if (!*mode) return NullMember("streamModeDetails.streamMode");
  if (**mode == "ON_DEMAND") return std::optional<StreamMode>(StreamMode::kOnDemand);
  if (**mode == "PROVISIONED") return std::optional<StreamMode>(StreamMode::kProvisioned);
  return PatternError("streamModeDetails.streamMode", **mode,
                      "Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]");
}

// Tags: a map of string to string.
absl::Status ReadTags(const Value& in, std::map<std::string, std::string>* tags) {
  const Value* t = in.Find("Tags");
  if (t == nullptr || t->kind() == Value::Kind::kNull) return absl::OkStatus();
  if (t->kind() != Value::Kind::kObject) {
    return wire::SerializationError("Start of structure or map found where not expected");
  }
  for (const Value::Member& m : t->members()) {
    if (m.first.empty() || m.first.size() > 128) {
      return PatternError("tags", m.first,
                          "Map keys must satisfy constraint: [Member must have length less than or "
                          "equal to 128, Member must have length greater than or equal to 1]");
    }
    if (m.second.kind() == Value::Kind::kNull) {
      (*tags)[m.first] = "";
      continue;
    }
    absl::StatusOr<std::string_view> v = wire::StringOf(m.second, "Tags");
    if (!v.ok()) return v.status();
    if (v->size() > 256) {
      return PatternError(
          "tags", *v,
          "Map value must satisfy constraint: [Member must have length less than or equal to 256]");
    }
    (*tags)[m.first] = std::string(*v);
  }
  return absl::OkStatus();
}

int64_t RetentionHours(absl::Duration d) { return std::max<int64_t>(1, absl::ToInt64Hours(d)); }

}  // namespace

absl::Status KinesisService::Impl::CreateStream(Call& c) {
  Advance();
  absl::StatusOr<std::optional<std::string_view>> name = OptString(c.in, "StreamName");
  if (!name.ok()) return name.status();
  if (!*name) return NullMember("streamName");
  absl::StatusOr<std::optional<int64_t>> shards = OptInt(c.in, "ShardCount");
  if (!shards.ok()) return shards.status();
  absl::StatusOr<std::optional<StreamMode>> mode = ModeOf(c.in);
  if (!mode.ok()) return mode.status();
  absl::StatusOr<std::optional<int64_t>> max_kib = OptInt(c.in, "MaxRecordSizeInKiB");
  if (!max_kib.ok()) return max_kib.status();
  if (absl::StatusOr<std::optional<int64_t>> warm = OptInt(c.in, "WarmThroughputMiBps");
      !warm.ok()) {
    return warm.status();
  }
  std::map<std::string, std::string> tags;
  if (absl::Status s = ReadTags(c.in, &tags); !s.ok()) return s;
  if (!detail::IsResourceName(**name)) {
    return PatternError("streamName", **name,
                        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
  }
  const bool on_demand = mode->value_or(StreamMode::kProvisioned) == StreamMode::kOnDemand;
  if (!on_demand && !*shards) return NullMember("shardCount");
  if (*shards && **shards < 1) return RangeError("shardCount", **shards, 1, 1 << 30);
  if (*shards && on_demand) {
    return InvalidArgument("ShardCount is not supported for streams in ON_DEMAND mode.");
  }
  if (*max_kib && (**max_kib < 1024 || **max_kib > 10240)) {
    return RangeError("maxRecordSizeInKiB", **max_kib, 1024, 10240);
  }
  StreamOptions o = options_.stream_defaults;
  o.name = std::string(**name);
  o.region = options_.region;
  o.trimmed_reads = TrimmedReads::kContinueFromTrimHorizon;
  o.subscription_lifetime = options_.subscription_lifetime;
  o.update_duration = options_.update_delay;
  o.stream_mode = on_demand ? StreamMode::kOnDemand : StreamMode::kProvisioned;
  if (*shards) {
    if (**shards > o.max_open_shard_count) {
      return LimitExceeded(
          absl::StrCat("This request would exceed the shard limit for the account ", account_id_,
                       " in ", options_.region,
                       ". Current shard count for the account: 0. Limit: ", o.max_open_shard_count,
                       ". Number of additional shards that would have resulted from "
                       "this request: ",
                       **shards,
                       ". Refer to the AWS Service Limits page "
                       "(https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) "
                       "for current limits and how to request higher limits."));
    }
    o.shard_count = static_cast<int>(**shards);
  }
  if (*max_kib) o.max_record_size_bytes = static_cast<size_t>(**max_kib) * 1024;
  absl::StatusOr<StreamPtr> stream = registry_->CreateStream(o);
  if (!stream.ok()) return stream.status();
  generation_.fetch_add(1, std::memory_order_acq_rel);
  detail::MutexLock lock(&state_mu_);
  StreamExtras& e = ExtrasLocked(*stream);
  e.tags = std::move(tags);
  e.ready_ms = NowMs() + absl::ToInt64Milliseconds(options_.create_delay);
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::DeleteStream(Call& c) {
  Advance();
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kDescribe);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<bool>> enforce = OptBool(c.in, "EnforceConsumerDeletion");
  if (!enforce.ok()) return enforce.status();
  const std::string name = (*stream)->name();
  if (options_.delete_delay <= absl::ZeroDuration()) {
    absl::Status s = registry_->DeleteStream(name, enforce->value_or(false));
    generation_.fetch_add(1, std::memory_order_acq_rel);
    return s;
  }
  if (!enforce->value_or(false)) {
    absl::StatusOr<std::vector<StreamConsumerDescription>> consumers =
        (*stream)->ListStreamConsumers();
    if (!consumers.ok()) return consumers.status();
    if (!consumers->empty()) {
      return ResourceInUse(absl::StrCat("Stream ", name, " under account ", account_id_, " has ",
                                        consumers->size(),
                                        " registered consumers: deregister them first, or "
                                        "delete with EnforceConsumerDeletion."));
    }
  }
  detail::MutexLock lock(&state_mu_);
  StreamExtras& e = ExtrasLocked(*stream);
  if (e.deleting_ms >= 0) {
    return ResourceInUse(absl::StrCat("Stream ", name, " under account ", account_id_,
                                      " not ACTIVE, instead in state DELETING"));
  }
  e.deleting_ms = NowMs() + absl::ToInt64Milliseconds(options_.delete_delay);
  pending_deletes_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

template <typename Description>
void KinesisService::Impl::WriteDescriptionCommon(wire::Writer& w, const StreamPtr& stream,
                                                  const Description& d) {
  std::set<std::string> metrics;
  bool kms = false;
  std::string key_id;
  {
    detail::MutexLock lock(&state_mu_);
    const StreamExtras& e = ExtrasLocked(stream);
    metrics = e.shard_level_metrics;
    kms = e.kms;
    key_id = e.key_id;
  }
  w.Key("StreamName");
  w.String(d.stream_name);
  w.Key("StreamARN");
  w.String(StreamArn(d.stream_name));
  w.Key("StreamStatus");
  w.String(StatusOf(*stream, StreamStatusName(d.stream_status)));
  WriteMode(w, d.stream_mode);
  w.Key("RetentionPeriodHours");
  w.Int(RetentionHours(d.retention_period));
  w.Key("StreamCreationTimestamp");
  w.Time(d.stream_creation_timestamp);
  WriteMonitoring(w, metrics);
  w.Key("EncryptionType");
  w.String(kms ? "KMS" : "NONE");
  if (kms) {
    w.Key("KeyId");
    w.String(key_id);
  }
}

absl::Status KinesisService::Impl::DescribeStream(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kDescribe);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<int64_t>> limit = OptInt(c.in, "Limit");
  if (!limit.ok()) return limit.status();
  if (*limit && (**limit < 1 || **limit > 10000)) return RangeError("limit", **limit, 1, 10000);
  absl::StatusOr<std::optional<std::string_view>> start = OptString(c.in, "ExclusiveStartShardId");
  if (!start.ok()) return start.status();
  absl::StatusOr<StreamDescription> d = (*stream)->DescribeStream();
  if (!d.ok()) return d.status();
  int64_t after = -1;
  if (*start) {
    std::string_view id = **start;
    if (size_t dash = id.rfind('-'); dash != std::string_view::npos) id = id.substr(dash + 1);
    if (!absl::SimpleAtoi(detail::ToAbsl(id), &after)) after = -1;
  }
  const size_t page = static_cast<size_t>(std::min<int64_t>(limit->value_or(100), 100));
  std::vector<const ShardDescription*> shards;
  bool more = false;
  for (const ShardDescription& s : d->shards) {
    std::string_view id = s.shard_id;
    int64_t index = 0;
    (void)absl::SimpleAtoi(detail::ToAbsl(id.substr(id.rfind('-') + 1)), &index);
    if (index <= after) continue;
    if (shards.size() == page) {
      more = true;
      break;
    }
    shards.push_back(&s);
  }
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("StreamDescription");
  w.BeginObject();
  WriteDescriptionCommon(w, *stream, *d);
  w.Key("Shards");
  w.BeginArray();
  for (const ShardDescription* s : shards) WriteShard(w, *s);
  w.EndArray();
  w.Key("HasMoreShards");
  w.Bool(more);
  w.EndObject();
  w.EndObject();
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::DescribeStreamSummary(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kDescribe);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<StreamDescriptionSummary> d = (*stream)->DescribeStreamSummary();
  if (!d.ok()) return d.status();
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("StreamDescriptionSummary");
  w.BeginObject();
  WriteDescriptionCommon(w, *stream, *d);
  w.Key("OpenShardCount");
  w.Int(d->open_shard_count);
  w.Key("ConsumerCount");
  w.Int(d->consumer_count);
  w.Key("MaxRecordSizeInKiB");
  w.Int(static_cast<int64_t>(d->max_record_size_bytes / 1024));
  w.EndObject();
  w.EndObject();
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::ListStreams(Call& c) {
  Advance();
  absl::StatusOr<std::optional<int64_t>> limit = OptInt(c.in, "Limit");
  if (!limit.ok()) return limit.status();
  if (*limit && (**limit < 1 || **limit > 10000)) return RangeError("limit", **limit, 1, 10000);
  absl::StatusOr<std::optional<std::string_view>> start =
      OptString(c.in, "ExclusiveStartStreamName");
  if (!start.ok()) return start.status();
  absl::StatusOr<std::optional<std::string_view>> token = OptString(c.in, "NextToken");
  if (!token.ok()) return token.status();
  std::string after = start->has_value() ? std::string(**start) : std::string();
  const int64_t now = NowMs();
  if (*token) {
    // kinlet-lst.<base64url(last name)>.<issued ms>
    const std::vector<absl::string_view> parts = absl::StrSplit(detail::ToAbsl(**token), '.');
    std::string last;
    int64_t issued = 0;
    if (parts.size() != 3 || parts[0] != "kinlet-lst" ||
        !absl::WebSafeBase64Unescape(parts[1], &last) || !absl::SimpleAtoi(parts[2], &issued)) {
      return InvalidArgument(absl::StrCat("NextToken ", detail::ToAbsl(**token), " is invalid."));
    }
    if (now - issued > kListTokenTtlMs) {
      return ExpiredNextToken(absl::StrCat("The NextToken has expired: it was issued at ", issued,
                                           " and tokens are valid for 300000 milliseconds."));
    }
    after = std::move(last);
  }
  const size_t page = static_cast<size_t>(limit->value_or(100));
  std::vector<StreamPtr> streams;
  bool more = false;
  for (const std::string& name : registry_->ListStreams()) {
    if (!after.empty() && name <= after) continue;
    absl::StatusOr<StreamPtr> s = registry_->GetStream(name);
    if (!s.ok()) continue;
    if (streams.size() == page) {
      more = true;
      break;
    }
    streams.push_back(*std::move(s));
  }
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("StreamNames");
  w.BeginArray();
  for (const StreamPtr& s : streams) w.String(s->name());
  w.EndArray();
  w.Key("HasMoreStreams");
  w.Bool(more);
  if (more) {
    w.Key("NextToken");
    w.String(
        absl::StrCat("kinlet-lst.", absl::WebSafeBase64Escape(streams.back()->name()), ".", now));
  }
  w.Key("StreamSummaries");
  w.BeginArray();
  for (const StreamPtr& s : streams) {
    absl::StatusOr<StreamDescriptionSummary> d = s->DescribeStreamSummary();
    w.BeginObject();
    w.Key("StreamName");
    w.String(s->name());
    w.Key("StreamARN");
    w.String(StreamArn(s->name()));
    w.Key("StreamStatus");
    w.String(StatusOf(*s, d.ok() ? StreamStatusName(d->stream_status) : "DELETING"));
    WriteMode(w, s->stream_mode());
    if (d.ok()) {
      w.Key("StreamCreationTimestamp");
      w.Time(d->stream_creation_timestamp);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return absl::OkStatus();
}

namespace {
absl::Status RetentionRange(int64_t hours) {
  if (hours < 24) {
    return InvalidArgument(
        absl::StrCat("Minimum allowed retention period is 24 hours. Requested retention period (",
                     hours, " hours) is too short."));
  }
  if (hours > 8760) {
    return InvalidArgument(
        absl::StrCat("Maximum allowed retention period is 8760 hours. Requested retention period (",
                     hours, " hours) is too long."));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status KinesisService::Impl::IncreaseStreamRetentionPeriod(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<int64_t>> hours = OptInt(c.in, "RetentionPeriodHours");
  if (!hours.ok()) return hours.status();
  if (!*hours) return NullMember("retentionPeriodHours");
  if (absl::Status s = RetentionRange(**hours); !s.ok()) return s;
  const int64_t current = absl::ToInt64Hours((*stream)->retention_period());
  if (**hours < current) {
    return InvalidArgument(absl::StrCat("Requested retention period (", **hours,
                                        " hours) for stream ", (*stream)->name(),
                                        " can not be shorter than existing retention period (",
                                        current, " hours). Use DecreaseRetentionPeriod API."));
  }
  if ((*stream)->retention_period() == absl::Hours(**hours)) return absl::OkStatus();
  return (*stream)->IncreaseStreamRetentionPeriod(absl::Hours(**hours));
}

absl::Status KinesisService::Impl::DecreaseStreamRetentionPeriod(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<int64_t>> hours = OptInt(c.in, "RetentionPeriodHours");
  if (!hours.ok()) return hours.status();
  if (!*hours) return NullMember("retentionPeriodHours");
  if (absl::Status s = RetentionRange(**hours); !s.ok()) return s;
  const absl::Duration current = (*stream)->retention_period();
  if (absl::Hours(**hours) > current) {
    return InvalidArgument(
        absl::StrCat("Requested retention period (", **hours, " hours) for stream ",
                     (*stream)->name(), " can not be longer than existing retention period (",
                     absl::ToInt64Hours(current), " hours). Use IncreaseRetentionPeriod API."));
  }
  if (current == absl::Hours(**hours)) return absl::OkStatus();
  return (*stream)->DecreaseStreamRetentionPeriod(absl::Hours(**hours));
}

absl::Status KinesisService::Impl::UpdateStreamMode(Call& c) {
  absl::StatusOr<std::optional<std::string_view>> arn = OptString(c.in, "StreamARN");
  if (!arn.ok()) return arn.status();
  if (!*arn) return NullMember("streamARN");
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<StreamMode>> mode = ModeOf(c.in);
  if (!mode.ok()) return mode.status();
  if (!*mode) return NullMember("streamModeDetails");
  return (*stream)->UpdateStreamMode(**mode);
}

absl::Status KinesisService::Impl::AddTagsToStream(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  std::map<std::string, std::string> tags;
  if (absl::Status s = ReadTags(c.in, &tags); !s.ok()) return s;
  const Value* t = c.in.Find("Tags");
  if (t == nullptr || t->kind() == Value::Kind::kNull) return NullMember("tags");
  if (tags.empty() || tags.size() > 50) {
    return RangeError("tags", static_cast<int64_t>(tags.size()), 1, 50);
  }
  detail::MutexLock lock(&state_mu_);
  StreamExtras& e = ExtrasLocked(*stream);
  size_t total = e.tags.size();
  for (const auto& [k, v] : tags) total += e.tags.contains(k) ? 0 : 1;
  if (total > 50) {
    return LimitExceeded(absl::StrCat("Failed to add tags to stream ", (*stream)->name(),
                                      " under account ", account_id_,
                                      " because a given stream cannot have more than 50 tags."));
  }
  for (auto& [k, v] : tags) e.tags[k] = v;
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::RemoveTagsFromStream(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  const Value* keys = c.in.Find("TagKeys");
  if (keys == nullptr || keys->kind() == Value::Kind::kNull) return NullMember("tagKeys");
  if (keys->kind() != Value::Kind::kArray) {
    return wire::SerializationError("Start of list found where not expected");
  }
  if (keys->items().empty() || keys->items().size() > 50) {
    return RangeError("tagKeys", static_cast<int64_t>(keys->items().size()), 1, 50);
  }
  std::vector<std::string> remove;
  for (const Value& k : keys->items()) {
    absl::StatusOr<std::string_view> s = wire::StringOf(k, "TagKeys");
    if (!s.ok()) return s.status();
    remove.emplace_back(*s);
  }
  detail::MutexLock lock(&state_mu_);
  StreamExtras& e = ExtrasLocked(*stream);
  for (const std::string& k : remove) e.tags.erase(k);
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::ListTagsForStream(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kDescribe);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<int64_t>> limit = OptInt(c.in, "Limit");
  if (!limit.ok()) return limit.status();
  if (*limit && (**limit < 1 || **limit > 50)) return RangeError("limit", **limit, 1, 50);
  absl::StatusOr<std::optional<std::string_view>> start = OptString(c.in, "ExclusiveStartTagKey");
  if (!start.ok()) return start.status();
  std::vector<std::pair<std::string, std::string>> tags;
  bool more = false;
  {
    detail::MutexLock lock(&state_mu_);
    const StreamExtras& e = ExtrasLocked(*stream);
    auto it = *start ? e.tags.upper_bound(std::string(**start)) : e.tags.begin();
    const size_t page = static_cast<size_t>(limit->value_or(50));
    for (; it != e.tags.end(); ++it) {
      if (tags.size() == page) {
        more = true;
        break;
      }
      tags.emplace_back(it->first, it->second);
    }
  }
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("Tags");
  w.BeginArray();
  for (const auto& [k, v] : tags) {
    w.BeginObject();
    w.Key("Key");
    w.String(k);
    w.Key("Value");
    w.String(v);
    w.EndObject();
  }
  w.EndArray();
  w.Key("HasMoreTags");
  w.Bool(more);
  w.EndObject();
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::DescribeLimits(Call& c) {
  int64_t open = 0, on_demand = 0;
  for (const std::string& name : registry_->ListStreams()) {
    absl::StatusOr<StreamPtr> s = registry_->GetStream(name);
    if (!s.ok()) continue;
    open += (*s)->open_shard_count();
    if ((*s)->stream_mode() == StreamMode::kOnDemand) ++on_demand;
  }
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("ShardLimit");
  w.Int(options_.stream_defaults.max_open_shard_count);
  w.Key("OpenShardCount");
  w.Int(open);
  w.Key("OnDemandStreamCount");
  w.Int(on_demand);
  w.Key("OnDemandStreamCountLimit");
  w.Int(50);
  w.EndObject();
  return absl::OkStatus();
}

namespace {
absl::Status ReadMetrics(const Value& in, std::set<std::string>* out) {
  const Value* m = in.Find("ShardLevelMetrics");
  if (m == nullptr || m->kind() == Value::Kind::kNull) return NullMember("shardLevelMetrics");
  if (m->kind() != Value::Kind::kArray) {
    return wire::SerializationError("Start of list found where not expected");
  }
  if (m->items().empty() || m->items().size() > 7) {
    return RangeError("shardLevelMetrics", static_cast<int64_t>(m->items().size()), 1, 7);
  }
  for (const Value& v : m->items()) {
    absl::StatusOr<std::string_view> s = wire::StringOf(v, "ShardLevelMetrics");
    if (!s.ok()) return s.status();
    if (*s == "ALL") {
      for (std::string_view k : kMetrics) out->insert(std::string(k));
      continue;
    }
    if (std::find(std::begin(kMetrics), std::end(kMetrics), *s) == std::end(kMetrics)) {
      return PatternError(
          "shardLevelMetrics", *s,
          "Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, "
          "OutgoingRecords, IteratorAgeMilliseconds, IncomingRecords, "
          "ReadProvisionedThroughputExceeded, WriteProvisionedThroughputExceeded, "
          "OutgoingBytes, ALL]]");
    }
    out->insert(std::string(*s));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status KinesisService::Impl::EnableEnhancedMonitoring(Call& c) {
  return UpdateMonitoring(c, /*enable=*/true);
}

absl::Status KinesisService::Impl::DisableEnhancedMonitoring(Call& c) {
  return UpdateMonitoring(c, /*enable=*/false);
}

absl::Status KinesisService::Impl::UpdateMonitoring(Call& c, bool enable) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  std::set<std::string> metrics;
  if (absl::Status s = ReadMetrics(c.in, &metrics); !s.ok()) return s;
  std::set<std::string> current, desired;
  {
    detail::MutexLock lock(&state_mu_);
    StreamExtras& e = ExtrasLocked(*stream);
    current = e.shard_level_metrics;
    for (const std::string& m : metrics) {
      if (enable) {
        e.shard_level_metrics.insert(m);
      } else {
        e.shard_level_metrics.erase(m);
      }
    }
    desired = e.shard_level_metrics;
  }
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("StreamName");
  w.String((*stream)->name());
  w.Key("StreamARN");
  w.String(StreamArn((*stream)->name()));
  w.Key("CurrentShardLevelMetrics");
  w.BeginArray();
  for (const std::string& m : current) w.String(m);
  w.EndArray();
  w.Key("DesiredShardLevelMetrics");
  w.BeginArray();
  for (const std::string& m : desired) w.String(m);
  w.EndArray();
  w.EndObject();
  return absl::OkStatus();
}

namespace {
absl::Status ReadEncryption(const Value& in, std::string_view* key_id) {
  absl::StatusOr<std::optional<std::string_view>> type = OptString(in, "EncryptionType");
  if (!type.ok()) return type.status();
  if (!*type) return NullMember("encryptionType");
  absl::StatusOr<std::optional<std::string_view>> key = OptString(in, "KeyId");
  if (!key.ok()) return key.status();
  if (!*key) return NullMember("keyId");
  if (**type != "KMS" && **type != "NONE") {
    return PatternError("encryptionType", **type,
                        "Member must satisfy enum value set: [KMS, NONE]");
  }
  if (**type != "KMS") {
    return InvalidArgument("Encryption type must be KMS.");
  }
  if ((*key)->empty() || (*key)->size() > 2048) {
    return PatternError("keyId", **key,
                        "Member must have length less than or equal to 2048 and greater than or "
                        "equal to 1");
  }
  *key_id = **key;
  return absl::OkStatus();
}
}  // namespace

absl::Status KinesisService::Impl::StartStreamEncryption(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  std::string_view key;
  if (absl::Status s = ReadEncryption(c.in, &key); !s.ok()) return s;
  // The stream checks the key (a durable stream's KMS) and encrypts new records.
  if (absl::Status s = (*stream)->StartStreamEncryption(EncryptionType::kKms, key); !s.ok()) {
    return s;
  }
  detail::MutexLock lock(&state_mu_);
  StreamExtras& e = ExtrasLocked(*stream);
  if (!e.kms) kms_streams_.fetch_add(1, std::memory_order_relaxed);
  e.kms = true;
  e.key_id = std::string(key);
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::StopStreamEncryption(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kControl);
  if (!stream.ok()) return stream.status();
  std::string_view key;
  if (absl::Status s = ReadEncryption(c.in, &key); !s.ok()) return s;
  if (absl::Status s = (*stream)->StopStreamEncryption(EncryptionType::kKms, key); !s.ok()) {
    return s;
  }
  detail::MutexLock lock(&state_mu_);
  StreamExtras& e = ExtrasLocked(*stream);
  if (e.kms) kms_streams_.fetch_sub(1, std::memory_order_relaxed);
  e.kms = false;
  e.key_id.clear();
  return absl::OkStatus();
}

}  // namespace kinlet::gateway
