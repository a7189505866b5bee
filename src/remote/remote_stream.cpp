// RemoteStream: kinlet's Stream API as Kinesis JSON 1.1 calls (see
// kinlet/remote/remote_stream.hpp).
#include "kinlet/remote/remote_stream.hpp"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kinesis_client.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/remote/remote_errors.hpp"
#include "remote_json.hpp"

namespace kinlet::remote {

using wire::Value;
using wire::Writer;

// ---- RemoteShardIterator -----------------------------------------------------

absl::StatusOr<RemoteShardIterator> RemoteShardIterator::Parse(std::string_view text,
                                                               std::string_view shard_id) {
  if (text.empty() || text.size() > 512) return InvalidArgument("Invalid ShardIterator.");
  RemoteShardIterator it;
  it.text_ = std::string(text);
  it.shard_id_ = std::string(shard_id);
  it.issued_at_ = absl::Now();
  return it;
}

// ---- RemoteStream ------------------------------------------------------------

struct RemoteStream::Interned {
  detail::Mutex mu;
  std::set<std::string, std::less<>> ids ABSL_GUARDED_BY(mu);
};

RemoteStream::RemoteStream(std::shared_ptr<KinesisClient> client, std::string name, std::string arn)
    : client_(std::move(client)),
      name_(std::move(name)),
      arn_(std::move(arn)),
      interned_(std::make_unique<Interned>()) {}

RemoteStream::~RemoteStream() = default;

std::string_view RemoteStream::Intern(std::string_view shard_id) {
  detail::MutexLock lock(&interned_->mu);
  auto it = interned_->ids.find(shard_id);
  if (it == interned_->ids.end()) it = interned_->ids.emplace(shard_id).first;
  return *it;
}

namespace {

void NameKey(Writer& w, const std::string& name) {
  w.Key("StreamName");
  w.String(name);
}

}  // namespace

absl::StatusOr<PutRecordResult> RemoteStream::PutRecord(std::string_view partition_key,
                                                        std::string_view data,
                                                        const PutRecordOptions& options) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  NameKey(w, name_);
  w.Key("PartitionKey");
  w.String(partition_key);
  w.Key("Data");
  w.Blob(data);
  if (options.explicit_hash_key) {
    w.Key("ExplicitHashKey");
    w.String(HashKeyToString(*options.explicit_hash_key));
  }
  if (options.sequence_number_for_ordering) {
    w.Key("SequenceNumberForOrdering");
    w.String(options.sequence_number_for_ordering->ToString());
  }
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("PutRecord", w.data());
  if (!r.ok()) return r.status();
  absl::StatusOr<SequenceNumber> seq = json::Sequence(*r, "SequenceNumber");
  if (!seq.ok()) return seq.status();
  return PutRecordResult{Intern(json::Str(*r, "ShardId")), *seq};
}

absl::Status RemoteStream::PutRecords(std::span<const Entry> entries, PutRecordsResult* result) {
  result->failed_record_count = 0;
  result->records.assign(entries.size(), PutRecordsResultEntry{});
  std::vector<size_t> pending(entries.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  KinesisClient::CallState state = client_->BeginCall();
  bool first = true;
  for (;;) {
    Writer w(wire::Format::kJson);
    w.BeginObject();
    NameKey(w, name_);
    w.Key("Records");
    w.BeginArray();
    for (size_t i : pending) {
      w.BeginObject();
      w.Key("Data");
      w.Blob(entries[i].data);
      w.Key("PartitionKey");
      w.String(entries[i].partition_key);
      if (entries[i].explicit_hash_key) {
        w.Key("ExplicitHashKey");
        w.String(HashKeyToString(*entries[i].explicit_hash_key));
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    absl::StatusOr<Value> r = client_->CallWithin(state, "PutRecords", w.data());
    if (!r.ok()) {
      if (first) {
        result->records.clear();
        return r.status();
      }
      // Earlier rounds wrote some entries: report the rest as failed by this.
      for (size_t i : pending) {
        result->records[i].error_code = ErrorCodeOf(r.status());
        result->records[i].error_message = std::string(r.status().message());
      }
      break;
    }
    first = false;
    const Value* records = r->Find("Records");
    if (records == nullptr || records->kind() != Value::Kind::kArray ||
        records->items().size() != pending.size()) {
      return InternalFailure("malformed PutRecords response: Records does not match the request");
    }
    std::vector<size_t> retry;
    bool throttled = false;
    for (size_t k = 0; k < pending.size(); ++k) {
      const Value& e = records->items()[k];
      PutRecordsResultEntry& out = result->records[pending[k]];
      const std::string code = json::Str(e, "ErrorCode");
      if (code.empty()) {
        absl::StatusOr<SequenceNumber> seq = json::Sequence(e, "SequenceNumber");
        if (!seq.ok()) return seq.status();
        out.sequence_number = *seq;
        out.shard_id = Intern(json::Str(e, "ShardId"));
        out.error_code = ErrorCode::kNone;
        out.error_message.clear();
        continue;
      }
      const absl::Status error = ErrorFromType(code, json::Str(e, "ErrorMessage"));
      out.shard_id = {};
      out.sequence_number = {};
      out.error_code = ErrorCodeOf(error);
      out.error_message = std::string(error.message());
      if (out.error_code == ErrorCode::kProvisionedThroughputExceeded ||
          out.error_code == ErrorCode::kInternalFailure ||
          out.error_code == ErrorCode::kShardFull) {
        retry.push_back(pending[k]);
        throttled = throttled || out.error_code != ErrorCode::kInternalFailure;
      }
    }
    if (retry.empty()) {
      client_->Succeeded(state);
      break;
    }
    const absl::Status why = throttled ? ProvisionedThroughputExceeded("PutRecords entries")
                                       : InternalFailure("PutRecords entries");
    if (!client_->RetryAfter(why, state)) break;
    pending = std::move(retry);
  }
  for (const PutRecordsResultEntry& e : result->records) {
    if (!e.ok()) ++result->failed_record_count;
  }
  return absl::OkStatus();
}

absl::StatusOr<PutRecordsResult> RemoteStream::PutRecords(std::span<const Entry> entries) {
  PutRecordsResult result;
  if (absl::Status s = PutRecords(entries, &result); !s.ok()) return s;
  return result;
}

absl::StatusOr<PutRecordResult> RemoteStream::PutRecordWithRetry(std::string_view partition_key,
                                                                 std::string_view data,
                                                                 const RetryOptions& retry,
                                                                 const PutRecordOptions& options) {
  return RetryWithBackoff(*SystemClock::Default(), retry,
                          [&] { return PutRecord(partition_key, data, options); });
}

absl::Status RemoteStream::PutRecordsWithRetry(std::span<const Entry> entries,
                                               const RetryOptions& retry,
                                               PutRecordsResult* result) {
  return detail::PutRecordsRetrying(
      *SystemClock::Default(), retry, entries, result,
      [&](std::span<const Entry> batch, PutRecordsResult* out) { return PutRecords(batch, out); });
}

// ---- Reads -------------------------------------------------------------------

absl::StatusOr<RemoteShardIterator> RemoteStream::GetShardIterator(
    std::string_view shard_id, const IteratorPosition& position) const {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  NameKey(w, name_);
  w.Key("ShardId");
  w.String(shard_id);
  w.Key("ShardIteratorType");
  w.String(ShardIteratorTypeName(position.type));
  if (position.type == ShardIteratorType::kAtSequenceNumber ||
      position.type == ShardIteratorType::kAfterSequenceNumber) {
    w.Key("StartingSequenceNumber");
    w.String(position.sequence_number.ToString());
  }
  if (position.type == ShardIteratorType::kAtTimestamp) {
    w.Key("Timestamp");
    w.Time(position.timestamp);
  }
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("GetShardIterator", w.data());
  if (!r.ok()) return r.status();
  return RemoteShardIterator::Parse(json::Str(*r, "ShardIterator"), shard_id);
}

absl::Status RemoteStream::GetRecords(const RemoteShardIterator& iterator, int limit,
                                      Page* page) const {
  page->records.clear();
  page->next_shard_iterator.reset();
  page->child_shards.clear();
  page->millis_behind_latest = 0;
  Writer w(wire::Format::kJson);
  w.BeginObject();
  w.Key("ShardIterator");
  w.String(iterator.ToString());
  w.Key("Limit");
  w.Int(limit);
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("GetRecords", w.data());
  if (!r.ok()) return r.status();
  if (absl::Status s = json::Records(*r, &page->records); !s.ok()) return s;
  if (std::string next = json::Str(*r, "NextShardIterator"); !next.empty()) {
    absl::StatusOr<RemoteShardIterator> it = RemoteShardIterator::Parse(next, iterator.shard_id());
    if (!it.ok()) return it.status();
    page->next_shard_iterator = std::move(*it);
  }
  page->millis_behind_latest = json::Int(*r, "MillisBehindLatest");
  return json::ChildShards(*r, &page->child_shards);
}

absl::StatusOr<RemoteStream::Page> RemoteStream::GetRecords(const RemoteShardIterator& iterator,
                                                            int limit) const {
  Page page;
  if (absl::Status s = GetRecords(iterator, limit, &page); !s.ok()) return s;
  return page;
}

absl::StatusOr<RemoteStream::Page> RemoteStream::GetRecords(std::string_view shard_iterator,
                                                            int limit) const {
  absl::StatusOr<RemoteShardIterator> it = RemoteShardIterator::Parse(shard_iterator);
  if (!it.ok()) return it.status();
  return GetRecords(*it, limit);
}

// ---- Shards and description ---------------------------------------------------

absl::StatusOr<ListShardsResult> RemoteStream::ListShards(const ListShardsRequest& request) const {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  if (request.next_token.empty()) {
    NameKey(w, name_);
  } else {
    w.Key("NextToken");
    w.String(request.next_token);
  }
  if (!request.exclusive_start_shard_id.empty()) {
    w.Key("ExclusiveStartShardId");
    w.String(request.exclusive_start_shard_id);
  }
  if (request.filter) {
    w.Key("ShardFilter");
    w.BeginObject();
    w.Key("Type");
    w.String(ShardFilterTypeName(request.filter->type));
    if (request.filter->type == ShardFilter::Type::kAfterShardId) {
      w.Key("ShardId");
      w.String(request.filter->shard_id);
    }
    if (request.filter->type == ShardFilter::Type::kAtTimestamp ||
        request.filter->type == ShardFilter::Type::kFromTimestamp) {
      w.Key("Timestamp");
      w.Time(request.filter->timestamp);
    }
    w.EndObject();
  }
  w.Key("MaxResults");
  w.Int(request.max_results);
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("ListShards", w.data());
  if (!r.ok()) return r.status();
  ListShardsResult out;
  if (absl::Status s = json::Shards(*r, &out.shards); !s.ok()) return s;
  out.next_token = json::Str(*r, "NextToken");
  return out;
}

absl::StatusOr<std::vector<ShardDescription>> RemoteStream::ListShards() const {
  std::vector<ShardDescription> all;
  ListShardsRequest request;
  for (;;) {
    absl::StatusOr<ListShardsResult> page = ListShards(request);
    if (!page.ok()) return page.status();
    for (ShardDescription& s : page->shards) all.push_back(std::move(s));
    if (page->next_token.empty()) return all;
    request = ListShardsRequest{};
    request.next_token = page->next_token;
  }
}

absl::StatusOr<StreamDescriptionSummary> RemoteStream::DescribeStreamSummary() const {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  NameKey(w, name_);
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("DescribeStreamSummary", w.data());
  if (!r.ok()) return r.status();
  return json::Summary(*r);
}

absl::StatusOr<StreamDescription> RemoteStream::DescribeStream() const {
  absl::StatusOr<StreamDescriptionSummary> summary = DescribeStreamSummary();
  if (!summary.ok()) return summary.status();
  StreamDescription d;
  static_cast<StreamDescriptionSummary&>(d) = *std::move(summary);
  std::string start;
  for (;;) {
    Writer w(wire::Format::kJson);
    w.BeginObject();
    NameKey(w, name_);
    if (!start.empty()) {
      w.Key("ExclusiveStartShardId");
      w.String(start);
    }
    w.EndObject();
    absl::StatusOr<Value> r = client_->Call("DescribeStream", w.data());
    if (!r.ok()) return r.status();
    const Value* desc = r->Find("StreamDescription");
    if (desc == nullptr) return InternalFailure("malformed DescribeStream response");
    const size_t before = d.shards.size();
    if (absl::Status s = json::Shards(*desc, &d.shards); !s.ok()) return s;
    const Value* more = desc->Find("HasMoreShards");
    if (more == nullptr || !more->bool_value() || d.shards.size() == before) break;
    start = d.shards.back().shard_id;
  }
  d.options.name = d.stream_name;
  d.options.shard_count = std::max(1, d.open_shard_count);
  d.options.retention_period = d.retention_period;
  d.options.stream_mode = d.stream_mode;
  d.options.max_record_size_bytes = d.max_record_size_bytes;
  return d;
}

namespace {
absl::Status Retention(KinesisClient& client, const std::string& name, absl::Duration period,
                       std::string_view operation) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  NameKey(w, name);
  w.Key("RetentionPeriodHours");
  w.Int(absl::ToInt64Hours(period));
  w.EndObject();
  return client.Call(operation, w.data()).status();
}
}  // namespace

absl::Status RemoteStream::IncreaseStreamRetentionPeriod(absl::Duration period) {
  return Retention(*client_, name_, period, "IncreaseStreamRetentionPeriod");
}
absl::Status RemoteStream::DecreaseStreamRetentionPeriod(absl::Duration period) {
  return Retention(*client_, name_, period, "DecreaseStreamRetentionPeriod");
}

// ---- Resharding ----------------------------------------------------------------

absl::Status RemoteStream::SplitShard(std::string_view shard_to_split,
                                      HashKey new_starting_hash_key) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  NameKey(w, name_);
  w.Key("ShardToSplit");
  w.String(shard_to_split);
  w.Key("NewStartingHashKey");
  w.String(HashKeyToString(new_starting_hash_key));
  w.EndObject();
  return client_->Call("SplitShard", w.data()).status();
}

absl::Status RemoteStream::MergeShards(std::string_view shard_to_merge,
                                       std::string_view adjacent_shard_to_merge) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  NameKey(w, name_);
  w.Key("ShardToMerge");
  w.String(shard_to_merge);
  w.Key("AdjacentShardToMerge");
  w.String(adjacent_shard_to_merge);
  w.EndObject();
  return client_->Call("MergeShards", w.data()).status();
}

absl::StatusOr<UpdateShardCountResult> RemoteStream::UpdateShardCount(int target_shard_count,
                                                                      ScalingType scaling_type) {
  (void)scaling_type;  // UNIFORM_SCALING is the only type
  Writer w(wire::Format::kJson);
  w.BeginObject();
  NameKey(w, name_);
  w.Key("TargetShardCount");
  w.Int(target_shard_count);
  w.Key("ScalingType");
  w.String("UNIFORM_SCALING");
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("UpdateShardCount", w.data());
  if (!r.ok()) return r.status();
  UpdateShardCountResult out;
  out.stream_name = json::Str(*r, "StreamName");
  if (out.stream_name.empty()) out.stream_name = name_;
  out.stream_arn = json::Str(*r, "StreamARN");
  if (out.stream_arn.empty()) out.stream_arn = arn_;
  out.current_shard_count = static_cast<int>(json::Int(*r, "CurrentShardCount"));
  out.target_shard_count = static_cast<int>(json::Int(*r, "TargetShardCount"));
  return out;
}

absl::Status RemoteStream::UpdateStreamMode(StreamMode mode) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  w.Key("StreamARN");
  w.String(arn_);
  w.Key("StreamModeDetails");
  w.BeginObject();
  w.Key("StreamMode");
  w.String(StreamModeName(mode));
  w.EndObject();
  w.EndObject();
  return client_->Call("UpdateStreamMode", w.data()).status();
}

// ---- Consumers -------------------------------------------------------------------

namespace {
void ConsumerKeys(Writer& w, const std::string& stream_arn, std::string_view consumer) {
  if (consumer.substr(0, 4) == "arn:") {
    w.Key("ConsumerARN");
    w.String(consumer);
  } else {
    w.Key("StreamARN");
    w.String(stream_arn);
    w.Key("ConsumerName");
    w.String(consumer);
  }
}
}  // namespace

absl::StatusOr<StreamConsumerDescription> RemoteStream::RegisterStreamConsumer(
    std::string_view consumer_name) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  w.Key("StreamARN");
  w.String(arn_);
  w.Key("ConsumerName");
  w.String(consumer_name);
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("RegisterStreamConsumer", w.data(), /*on_create=*/false);
  if (!r.ok()) return r.status();
  const Value* c = r->Find("Consumer");
  if (c == nullptr) return InternalFailure("malformed RegisterStreamConsumer response");
  return json::Consumer(*c, arn_);
}

absl::Status RemoteStream::DeregisterStreamConsumer(std::string_view consumer) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  ConsumerKeys(w, arn_, consumer);
  w.EndObject();
  return client_->Call("DeregisterStreamConsumer", w.data()).status();
}

absl::StatusOr<StreamConsumerDescription> RemoteStream::DescribeStreamConsumer(
    std::string_view consumer) const {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  ConsumerKeys(w, arn_, consumer);
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("DescribeStreamConsumer", w.data());
  if (!r.ok()) return r.status();
  const Value* c = r->Find("ConsumerDescription");
  if (c == nullptr) return InternalFailure("malformed DescribeStreamConsumer response");
  return json::Consumer(*c, arn_);
}

absl::StatusOr<std::vector<StreamConsumerDescription>> RemoteStream::ListStreamConsumers() const {
  std::vector<StreamConsumerDescription> all;
  std::string token;
  for (;;) {
    Writer w(wire::Format::kJson);
    w.BeginObject();
    w.Key("StreamARN");
    w.String(arn_);
    if (!token.empty()) {
      w.Key("NextToken");
      w.String(token);
    }
    w.EndObject();
    absl::StatusOr<Value> r = client_->Call("ListStreamConsumers", w.data());
    if (!r.ok()) return r.status();
    if (const Value* cs = r->Find("Consumers");
        cs != nullptr && cs->kind() == Value::Kind::kArray) {
      for (const Value& c : cs->items()) {
        absl::StatusOr<StreamConsumerDescription> d = json::Consumer(c, arn_);
        if (!d.ok()) return d.status();
        all.push_back(std::move(*d));
      }
    }
    token = json::Str(*r, "NextToken");
    if (token.empty()) return all;
  }
}

// ---- Tags ----------------------------------------------------------------------

absl::Status RemoteStream::AddTagsToStream(const std::map<std::string, std::string>& tags) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  NameKey(w, name_);
  w.Key("Tags");
  w.BeginObject();
  for (const auto& [k, v] : tags) {
    w.Key(k);
    w.String(v);
  }
  w.EndObject();
  w.EndObject();
  return client_->Call("AddTagsToStream", w.data()).status();
}

absl::Status RemoteStream::RemoveTagsFromStream(const std::vector<std::string>& tag_keys) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  NameKey(w, name_);
  w.Key("TagKeys");
  w.BeginArray();
  for (const std::string& k : tag_keys) w.String(k);
  w.EndArray();
  w.EndObject();
  return client_->Call("RemoveTagsFromStream", w.data()).status();
}

absl::StatusOr<std::map<std::string, std::string>> RemoteStream::ListTagsForStream() const {
  std::map<std::string, std::string> all;
  std::string start;
  for (;;) {
    Writer w(wire::Format::kJson);
    w.BeginObject();
    NameKey(w, name_);
    if (!start.empty()) {
      w.Key("ExclusiveStartTagKey");
      w.String(start);
    }
    w.EndObject();
    absl::StatusOr<Value> r = client_->Call("ListTagsForStream", w.data());
    if (!r.ok()) return r.status();
    const Value* tags = r->Find("Tags");
    size_t got = 0;
    if (tags != nullptr && tags->kind() == Value::Kind::kArray) {
      for (const Value& t : tags->items()) {
        start = json::Str(t, "Key");
        all[start] = json::Str(t, "Value");
        ++got;
      }
    }
    const Value* more = r->Find("HasMoreTags");
    if (more == nullptr || !more->bool_value() || got == 0) return all;
  }
}

}  // namespace kinlet::remote
