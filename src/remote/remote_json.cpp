// Reading Kinesis JSON responses into kinlet's types (see remote_json.hpp).
#include "remote_json.hpp"

#include "absl/strings/str_cat.h"
#include "kinlet/errors.hpp"
#include "kinlet/hash_key.hpp"

namespace kinlet::remote::json {

using wire::Value;

namespace {
absl::Status Malformed(absl::string_view what) {
  return InternalFailure(absl::StrCat("malformed response: ", what));
}
absl::StatusOr<absl::Time> TimeMember(const Value& v, std::string_view key) {
  const Value* m = v.Find(key);
  if (m == nullptr || m->kind() == Value::Kind::kNull) return absl::Time();
  absl::StatusOr<absl::Time> t = wire::TimeOf(*m, wire::Format::kJson, key);
  if (!t.ok()) return Malformed(t.status().message());
  return t;
}
absl::StatusOr<HashKey> HashMember(const Value& v, std::string_view key) {
  absl::StatusOr<HashKey> k = ParseHashKey(Str(v, key));
  if (!k.ok()) return Malformed(absl::StrCat(detail::ToAbsl(key), ": ", k.status().message()));
  return k;
}
absl::Status Range(const Value& v, HashKeyRange* range) {
  const Value* r = v.Find("HashKeyRange");
  if (r == nullptr) return Malformed("no HashKeyRange");
  absl::StatusOr<HashKey> start = HashMember(*r, "StartingHashKey");
  if (!start.ok()) return start.status();
  absl::StatusOr<HashKey> end = HashMember(*r, "EndingHashKey");
  if (!end.ok()) return end.status();
  range->starting_hash_key = *start;
  range->ending_hash_key = *end;
  return absl::OkStatus();
}
const std::vector<Value>* ArrayMember(const Value& v, std::string_view key) {
  const Value* m = v.Find(key);
  if (m == nullptr || m->kind() != Value::Kind::kArray) return nullptr;
  return &m->items();
}
}  // namespace

std::string Str(const Value& v, std::string_view key) {
  const Value* m = v.Find(key);
  if (m == nullptr || m->kind() != Value::Kind::kString) return {};
  return m->str();
}

int64_t Int(const Value& v, std::string_view key) {
  const Value* m = v.Find(key);
  if (m == nullptr) return 0;
  if (m->kind() == Value::Kind::kInt) return m->int_value();
  if (m->kind() == Value::Kind::kDouble) return static_cast<int64_t>(m->double_value());
  return 0;
}

absl::StatusOr<SequenceNumber> Sequence(const Value& v, std::string_view key) {
  absl::StatusOr<SequenceNumber> s = SequenceNumber::Parse(Str(v, key));
  if (!s.ok()) return Malformed(absl::StrCat(detail::ToAbsl(key), ": ", s.status().message()));
  return s;
}

absl::Status Records(const Value& v, std::vector<Record<std::string>>* out) {
  const std::vector<Value>* records = ArrayMember(v, "Records");
  if (records == nullptr) return absl::OkStatus();
  out->reserve(out->size() + records->size());
  for (const Value& r : *records) {
    Record<std::string> record;
    absl::StatusOr<SequenceNumber> seq = Sequence(r, "SequenceNumber");
    if (!seq.ok()) return seq.status();
    record.sequence_number = *seq;
    absl::StatusOr<absl::Time> at = TimeMember(r, "ApproximateArrivalTimestamp");
    if (!at.ok()) return at.status();
    record.approximate_arrival_timestamp = *at;
    record.partition_key = Str(r, "PartitionKey");
    if (const Value* data = r.Find("Data"); data != nullptr) {
      absl::StatusOr<std::string> bytes = wire::BlobOf(*data, wire::Format::kJson, "Data");
      if (!bytes.ok()) return Malformed(bytes.status().message());
      record.data = std::move(*bytes);
    }
    out->push_back(std::move(record));
  }
  return absl::OkStatus();
}

absl::Status ChildShards(const Value& v, std::vector<ChildShard>* out) {
  const std::vector<Value>* children = ArrayMember(v, "ChildShards");
  if (children == nullptr) return absl::OkStatus();
  for (const Value& c : *children) {
    ChildShard child;
    child.shard_id = Str(c, "ShardId");
    if (const std::vector<Value>* parents = ArrayMember(c, "ParentShards")) {
      for (const Value& p : *parents) {
        if (p.kind() == Value::Kind::kString) child.parent_shards.push_back(p.str());
      }
    }
    if (absl::Status s = Range(c, &child.hash_key_range); !s.ok()) return s;
    out->push_back(std::move(child));
  }
  return absl::OkStatus();
}

absl::Status Shards(const Value& v, std::vector<ShardDescription>* out) {
  const std::vector<Value>* shards = ArrayMember(v, "Shards");
  if (shards == nullptr) return absl::OkStatus();
  for (const Value& s : *shards) {
    ShardDescription d;
    d.shard_id = Str(s, "ShardId");
    if (std::string p = Str(s, "ParentShardId"); !p.empty()) d.parent_shard_id = p;
    if (std::string p = Str(s, "AdjacentParentShardId"); !p.empty()) {
      d.adjacent_parent_shard_id = p;
    }
    if (absl::Status st = Range(s, &d.hash_key_range); !st.ok()) return st;
    if (const Value* r = s.Find("SequenceNumberRange"); r != nullptr) {
      absl::StatusOr<SequenceNumber> start = Sequence(*r, "StartingSequenceNumber");
      if (!start.ok()) return start.status();
      d.sequence_number_range.starting_sequence_number = *start;
      if (!Str(*r, "EndingSequenceNumber").empty()) {
        absl::StatusOr<SequenceNumber> end = Sequence(*r, "EndingSequenceNumber");
        if (!end.ok()) return end.status();
        d.sequence_number_range.ending_sequence_number = *end;
      }
    }
    out->push_back(std::move(d));
  }
  return absl::OkStatus();
}

absl::StatusOr<StreamDescriptionSummary> Summary(const Value& response) {
  const Value* v = response.Find("StreamDescriptionSummary");
  if (v == nullptr) return Malformed("no StreamDescriptionSummary");
  StreamDescriptionSummary d;
  d.stream_name = Str(*v, "StreamName");
  d.stream_arn = Str(*v, "StreamARN");
  const std::string status = Str(*v, "StreamStatus");
  for (StreamStatus s : {StreamStatus::kCreating, StreamStatus::kDeleting, StreamStatus::kActive,
                         StreamStatus::kUpdating}) {
    if (StreamStatusName(s) == status) d.stream_status = s;
  }
  d.retention_period = absl::Hours(Int(*v, "RetentionPeriodHours"));
  absl::StatusOr<absl::Time> created = TimeMember(*v, "StreamCreationTimestamp");
  if (!created.ok()) return created.status();
  d.stream_creation_timestamp = *created;
  d.open_shard_count = static_cast<int>(Int(*v, "OpenShardCount"));
  const int64_t kib = Int(*v, "MaxRecordSizeInKiB");
  d.max_record_size_bytes = kib > 0 ? static_cast<size_t>(kib) * 1024 : kMiB;
  if (const Value* mode = v->Find("StreamModeDetails"); mode != nullptr) {
    d.stream_mode =
        Str(*mode, "StreamMode") == "ON_DEMAND" ? StreamMode::kOnDemand : StreamMode::kProvisioned;
  }
  d.consumer_count = static_cast<int>(Int(*v, "ConsumerCount"));
  return d;
}

absl::StatusOr<StreamConsumerDescription> Consumer(const Value& v, const std::string& stream_arn) {
  StreamConsumerDescription d;
  d.consumer_name = Str(v, "ConsumerName");
  d.consumer_arn = Str(v, "ConsumerARN");
  const std::string status = Str(v, "ConsumerStatus");
  d.consumer_status = status == "CREATING"   ? ConsumerStatus::kCreating
                      : status == "DELETING" ? ConsumerStatus::kDeleting
                                             : ConsumerStatus::kActive;
  absl::StatusOr<absl::Time> created = TimeMember(v, "ConsumerCreationTimestamp");
  if (!created.ok()) return created.status();
  d.consumer_creation_timestamp = *created;
  d.stream_arn = Str(v, "StreamARN");
  if (d.stream_arn.empty()) d.stream_arn = stream_arn;
  return d;
}

}  // namespace kinlet::remote::json
