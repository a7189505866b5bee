// RemoteRegistry: an endpoint's streams (see kinlet/remote/remote_registry.hpp).
#include "kinlet/remote/remote_registry.hpp"

#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "kinesis_client.hpp"
#include "remote_json.hpp"

namespace kinlet::remote {

using wire::Value;
using wire::Writer;

namespace {
void StreamKey(Writer& w, std::string_view name_or_arn) {
  w.Key(name_or_arn.substr(0, 4) == "arn:" ? "StreamARN" : "StreamName");
  w.String(name_or_arn);
}
}  // namespace

RemoteRegistry::RemoteRegistry(std::shared_ptr<KinesisClient> client)
    : client_(std::move(client)) {}
RemoteRegistry::~RemoteRegistry() = default;

absl::StatusOr<std::unique_ptr<RemoteRegistry>> RemoteRegistry::Create(RemoteOptions options) {
  absl::StatusOr<std::shared_ptr<KinesisClient>> client = KinesisClient::Create(std::move(options));
  if (!client.ok()) return client.status();
  return std::unique_ptr<RemoteRegistry>(new RemoteRegistry(std::move(*client)));
}

const RemoteOptions& RemoteRegistry::options() const { return client_->options(); }

absl::StatusOr<std::shared_ptr<RemoteStream>> RemoteRegistry::CreateStream(
    const StreamOptions& options) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  w.Key("StreamName");
  w.String(options.name);
  if (options.stream_mode == StreamMode::kOnDemand) {
    w.Key("StreamModeDetails");
    w.BeginObject();
    w.Key("StreamMode");
    w.String("ON_DEMAND");
    w.EndObject();
  } else {
    w.Key("ShardCount");
    w.Int(options.shard_count);
  }
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("CreateStream", w.data(), /*on_create=*/true);
  if (!r.ok()) return r.status();
  const absl::Time deadline = absl::Now() + client_->options().retry.call_timeout;
  absl::StatusOr<StreamDescriptionSummary> summary;
  for (;;) {
    summary = DescribeStreamSummary(options.name);
    if (summary.ok() && summary->stream_status == StreamStatus::kActive) break;
    if (!summary.ok() && !IsResourceNotFound(summary.status())) return summary.status();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError("CreateStream: the stream did not become ACTIVE");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto stream = std::make_shared<RemoteStream>(client_, summary->stream_name, summary->stream_arn);
  if (options.retention_period > summary->retention_period) {
    if (absl::Status s = stream->IncreaseStreamRetentionPeriod(options.retention_period); !s.ok()) {
      return s;
    }
  } else if (options.retention_period < summary->retention_period) {
    if (absl::Status s = stream->DecreaseStreamRetentionPeriod(options.retention_period); !s.ok()) {
      return s;
    }
  }
  return stream;
}

absl::Status RemoteRegistry::DeleteStream(std::string_view name_or_arn,
                                          bool enforce_consumer_deletion) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  StreamKey(w, name_or_arn);
  if (enforce_consumer_deletion) {
    w.Key("EnforceConsumerDeletion");
    w.Bool(true);
  }
  w.EndObject();
  return client_->Call("DeleteStream", w.data()).status();
}

absl::StatusOr<StreamDescriptionSummary> RemoteRegistry::DescribeStreamSummary(
    std::string_view name_or_arn) const {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  StreamKey(w, name_or_arn);
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("DescribeStreamSummary", w.data());
  if (!r.ok()) return r.status();
  return json::Summary(*r);
}

absl::StatusOr<std::shared_ptr<RemoteStream>> RemoteRegistry::GetStream(
    std::string_view name_or_arn) const {
  absl::StatusOr<StreamDescriptionSummary> summary = DescribeStreamSummary(name_or_arn);
  if (!summary.ok()) return summary.status();
  return std::make_shared<RemoteStream>(client_, summary->stream_name, summary->stream_arn);
}

absl::StatusOr<StreamDescription> RemoteRegistry::DescribeStream(
    std::string_view name_or_arn) const {
  absl::StatusOr<std::shared_ptr<RemoteStream>> stream = GetStream(name_or_arn);
  if (!stream.ok()) return stream.status();
  return (*stream)->DescribeStream();
}

absl::StatusOr<std::vector<std::string>> RemoteRegistry::ListStreams() const {
  std::vector<std::string> names;
  for (;;) {
    Writer w(wire::Format::kJson);
    w.BeginObject();
    if (!names.empty()) {
      w.Key("ExclusiveStartStreamName");
      w.String(names.back());
    }
    w.EndObject();
    absl::StatusOr<Value> r = client_->Call("ListStreams", w.data());
    if (!r.ok()) return r.status();
    size_t got = 0;
    if (const Value* list = r->Find("StreamNames");
        list != nullptr && list->kind() == Value::Kind::kArray) {
      for (const Value& n : list->items()) {
        if (n.kind() == Value::Kind::kString) {
          names.push_back(n.str());
          ++got;
        }
      }
    }
    const Value* more = r->Find("HasMoreStreams");
    if (more == nullptr || !more->bool_value() || got == 0) break;
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace kinlet::remote
