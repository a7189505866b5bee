// src/gateway/service_records.cpp: the data plane: PutRecord, PutRecords,
// GetShardIterator, GetRecords. Hot: no service lock (see service_impl.hpp),
// each Data blob decoded once into the buffer the stream copies from, and the
// page and batch buffers reused per thread.
#include "absl/strings/str_cat.h"
#include "service_impl.hpp"

namespace kinlet::gateway {
namespace {

absl::Status PartitionKeyMissing(std::string_view member) { return NullMember(member); }

absl::StatusOr<std::optional<HashKey>> OptHashKey(const Value& in, std::string_view key) {
  absl::StatusOr<std::optional<std::string_view>> text = OptString(in, key);
  if (!text.ok()) return text.status();
  if (!*text) return std::optional<HashKey>();
  absl::StatusOr<HashKey> h = ParseHashKey(**text);
  if (!h.ok()) return h.status();
  return std::optional<HashKey>(*h);
}

void WriteEncryption(wire::Writer& w, bool kms) {
  if (!kms) return;
  w.Key("EncryptionType");
  w.String("KMS");
}

}  // namespace

void WriteRecords(wire::Writer& w, const std::vector<Record<std::string>>& records) {
  w.Key("Records");
  w.BeginArray();
  for (const Record<std::string>& r : records) {
    w.BeginObject();
    w.Key("SequenceNumber");
    w.String(r.sequence_number.ToString());
    w.Key("ApproximateArrivalTimestamp");
    w.Time(r.approximate_arrival_timestamp);
    w.Key("Data");
    w.Blob(r.data);
    w.Key("PartitionKey");
    w.String(r.partition_key);
    w.EndObject();
  }
  w.EndArray();
}

void WriteChildShards(wire::Writer& w, const std::vector<ChildShard>& children) {
  w.Key("ChildShards");
  w.BeginArray();
  for (const ChildShard& child : children) {
    w.BeginObject();
    w.Key("ShardId");
    w.String(child.shard_id);
    w.Key("ParentShards");
    w.BeginArray();
    for (const std::string& p : child.parent_shards) w.String(p);
    w.EndArray();
    w.Key("HashKeyRange");
    w.BeginObject();
    w.Key("StartingHashKey");
    w.String(HashKeyToString(child.hash_key_range.starting_hash_key));
    w.Key("EndingHashKey");
    w.String(HashKeyToString(child.hash_key_range.ending_hash_key));
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
}

absl::Status KinesisService::Impl::PutRecord(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kData);
  if (!stream.ok()) return stream.status();
  const Value* data = c.in.Find("Data");
  if (data == nullptr || data->kind() == Value::Kind::kNull) return NullMember("data");
  absl::StatusOr<std::optional<std::string_view>> key = OptString(c.in, "PartitionKey");
  if (!key.ok()) return key.status();
  if (!*key) return PartitionKeyMissing("partitionKey");
  PutRecordOptions options;
  absl::StatusOr<std::optional<HashKey>> explicit_key = OptHashKey(c.in, "ExplicitHashKey");
  if (!explicit_key.ok()) return explicit_key.status();
  options.explicit_hash_key = *explicit_key;
  absl::StatusOr<std::optional<std::string_view>> ordering =
      OptString(c.in, "SequenceNumberForOrdering");
  if (!ordering.ok()) return ordering.status();
  if (*ordering) {
    absl::StatusOr<SequenceNumber> s = SequenceNumber::Parse(**ordering);
    if (!s.ok()) return s.status();
    options.sequence_number_for_ordering = *s;
  }
  absl::StatusOr<std::string> bytes = wire::BlobOf(*data, c.format, "Data");
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<PutRecordResult> put = (*stream)->PutRecord(**key, *bytes, options);
  if (!put.ok()) return put.status();
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("ShardId");
  w.String(put->shard_id);
  w.Key("SequenceNumber");
  w.String(put->sequence_number.ToString());
  if (kms_streams_.load(std::memory_order_relaxed) > 0) {
    detail::MutexLock lock(&state_mu_);
    WriteEncryption(w, ExtrasLocked(*stream).kms);
  }
  w.EndObject();
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::PutRecords(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kData);
  if (!stream.ok()) return stream.status();
  const Value* records = c.in.Find("Records");
  if (records == nullptr || records->kind() == Value::Kind::kNull) return NullMember("records");
  if (records->kind() != Value::Kind::kArray) {
    return wire::SerializationError("Start of list found where not expected");
  }
  const std::vector<Value>& items = records->items();
  // Per-thread buffers: a steady producer allocates only what it decodes.
  thread_local std::vector<std::string> blobs;
  thread_local std::vector<StreamT::Entry> entries;
  thread_local PutRecordsResult result;
  if (blobs.size() < items.size()) blobs.resize(items.size());
  entries.clear();
  for (size_t i = 0; i < items.size(); ++i) {
    const Value& item = items[i];
    if (item.kind() != Value::Kind::kObject) {
      return wire::SerializationError("Start of structure or map found where not expected");
    }
    const std::string where = absl::StrCat("records.", i + 1, ".member.");
    const Value* data = item.Find("Data");
    if (data == nullptr || data->kind() == Value::Kind::kNull) {
      return NullMember(absl::StrCat(where, "data"));
    }
    absl::StatusOr<std::optional<std::string_view>> key = OptString(item, "PartitionKey");
    if (!key.ok()) return key.status();
    if (!*key) return NullMember(absl::StrCat(where, "partitionKey"));
    absl::StatusOr<std::optional<HashKey>> explicit_key = OptHashKey(item, "ExplicitHashKey");
    if (!explicit_key.ok()) return explicit_key.status();
    blobs[i].clear();
    if (data->kind() == Value::Kind::kBytes) {
      blobs[i] = data->str();
    } else {
      absl::StatusOr<std::string> bytes = wire::BlobOf(*data, c.format, "Data");
      if (!bytes.ok()) return bytes.status();
      blobs[i] = *std::move(bytes);
    }
    entries.push_back(StreamT::Entry{**key, blobs[i], *explicit_key});
  }
  absl::Status s = (*stream)->PutRecords(entries, &result);
  if (!s.ok()) return s;
  wire::Writer& w = c.out;
  w.BeginObject();
  w.Key("FailedRecordCount");
  w.Int(result.failed_record_count);
  w.Key("Records");
  w.BeginArray();
  for (const PutRecordsResultEntry& e : result.records) {
    w.BeginObject();
    if (e.ok()) {
      w.Key("SequenceNumber");
      w.String(e.sequence_number.ToString());
      w.Key("ShardId");
      w.String(e.shard_id);
    } else {
      w.Key("ErrorCode");
      w.String(e.error_code == ErrorCode::kInternalFailure ||
                       e.error_code == ErrorCode::kStorageFailure
                   ? "InternalFailure"
                   : ErrorName(ErrorCode::kProvisionedThroughputExceeded));
      w.Key("ErrorMessage");
      w.String(e.error_message.empty() ? "Rate exceeded for shard." : e.error_message);
    }
    w.EndObject();
  }
  w.EndArray();
  if (kms_streams_.load(std::memory_order_relaxed) > 0) {
    detail::MutexLock lock(&state_mu_);
    WriteEncryption(w, ExtrasLocked(*stream).kms);
  }
  w.EndObject();
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::GetShardIterator(Call& c) {
  absl::StatusOr<StreamPtr> stream = ResolveStream(c.in, Plane::kData);
  if (!stream.ok()) return stream.status();
  absl::StatusOr<std::optional<std::string_view>> shard_id = OptString(c.in, "ShardId");
  if (!shard_id.ok()) return shard_id.status();
  if (!*shard_id) return NullMember("shardId");
  absl::StatusOr<std::optional<std::string_view>> type = OptString(c.in, "ShardIteratorType");
  if (!type.ok()) return type.status();
  if (!*type) return NullMember("shardIteratorType");
  absl::StatusOr<std::optional<std::string_view>> seq = OptString(c.in, "StartingSequenceNumber");
  if (!seq.ok()) return seq.status();
  absl::StatusOr<std::optional<absl::Time>> ts = OptTime(c.in, c.format, "Timestamp");
  if (!ts.ok()) return ts.status();
  absl::StatusOr<IteratorPosition> position = IteratorPosition::FromKinesis(**type, *seq, *ts);
  if (!position.ok()) return position.status();
  absl::StatusOr<ShardIterator> it = (*stream)->GetShardIterator(**shard_id, *position);
  if (IsTrimmedDataAccess(it.status())) {
    // A stream created in-process with TrimmedReads::kReport: read as Kinesis.
    it = (*stream)->GetShardIterator(**shard_id, IteratorPosition::TrimHorizon());
  }
  if (!it.ok()) return it.status();
  RememberTag(it->stream_tag(), *stream);
  c.out.BeginObject();
  c.out.Key("ShardIterator");
  c.out.String(it->ToString());
  c.out.EndObject();
  return absl::OkStatus();
}

absl::Status KinesisService::Impl::GetRecords(Call& c) {
  absl::StatusOr<std::optional<std::string_view>> text = OptString(c.in, "ShardIterator");
  if (!text.ok()) return text.status();
  if (!*text) return NullMember("shardIterator");
  absl::StatusOr<std::optional<int64_t>> limit = OptInt(c.in, "Limit");
  if (!limit.ok()) return limit.status();
  if (*limit && (**limit < 1 || **limit > 10000)) return RangeError("limit", **limit, 1, 10000);
  if (absl::StatusOr<std::optional<std::string_view>> arn = OptString(c.in, "StreamARN");
      !arn.ok()) {
    return arn.status();
  }
  absl::StatusOr<ShardIterator> it = ShardIterator::Parse(**text);
  if (!it.ok()) return it.status();
  StreamPtr stream = StreamByTag(it->stream_tag());
  if (stream == nullptr) return InvalidArgument("Invalid ShardIterator.");
  thread_local StreamT::Page page;
  const int n = static_cast<int>(limit->value_or(10000));
  absl::Status s = stream->GetRecords(*it, n, &page);
  if (IsTrimmedDataAccess(s)) {
    absl::StatusOr<ShardIterator> horizon =
        stream->GetShardIterator(absl::StrCat(it->shard_index()), IteratorPosition::TrimHorizon());
    if (!horizon.ok()) return horizon.status();
    s = stream->GetRecords(*horizon, n, &page);
  }
  if (!s.ok()) return s;
  wire::Writer& w = c.out;
  w.BeginObject();
  WriteRecords(w, page.records);
  if (page.next_shard_iterator) {
    w.Key("NextShardIterator");
    w.String(page.next_shard_iterator->ToString());
  }
  w.Key("MillisBehindLatest");
  w.Int(page.millis_behind_latest);
  if (!page.child_shards.empty()) WriteChildShards(w, page.child_shards);
  w.EndObject();
  return absl::OkStatus();
}

}  // namespace kinlet::gateway
