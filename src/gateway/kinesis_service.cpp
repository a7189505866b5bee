// src/gateway/kinesis_service.cpp: the envelope (method, target, content type,
// body, auth, errors), the dispatch, and streams by name or ARN.
#include "kinlet/gateway/kinesis_service.hpp"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kinlet/wire/base64.hpp"
#include "service_impl.hpp"

namespace kinlet::gateway {
namespace {

constexpr std::string_view kTargetPrefix = "Kinesis_20131202";
constexpr std::string_view kJsonType = "application/x-amz-json-1.1";
constexpr std::string_view kCborType = "application/x-amz-cbor-1.1";

using Op = absl::Status (KinesisService::Impl::*)(Call&);
using I = KinesisService::Impl;

const absl::flat_hash_map<std::string_view, Op>& Operations() {
  static const auto* ops = new absl::flat_hash_map<std::string_view, Op>{
      {"AddTagsToStream", &I::AddTagsToStream},
      {"CreateStream", &I::CreateStream},
      {"DecreaseStreamRetentionPeriod", &I::DecreaseStreamRetentionPeriod},
      {"DeleteStream", &I::DeleteStream},
      {"DeregisterStreamConsumer", &I::DeregisterStreamConsumer},
      {"DescribeLimits", &I::DescribeLimits},
      {"DescribeStream", &I::DescribeStream},
      {"DescribeStreamConsumer", &I::DescribeStreamConsumer},
      {"DescribeStreamSummary", &I::DescribeStreamSummary},
      {"DisableEnhancedMonitoring", &I::DisableEnhancedMonitoring},
      {"EnableEnhancedMonitoring", &I::EnableEnhancedMonitoring},
      {"GetRecords", &I::GetRecords},
      {"GetShardIterator", &I::GetShardIterator},
      {"IncreaseStreamRetentionPeriod", &I::IncreaseStreamRetentionPeriod},
      {"ListShards", &I::ListShards},
      {"ListStreamConsumers", &I::ListStreamConsumers},
      {"ListStreams", &I::ListStreams},
      {"ListTagsForStream", &I::ListTagsForStream},
      {"MergeShards", &I::MergeShards},
      {"PutRecord", &I::PutRecord},
      {"PutRecords", &I::PutRecords},
      {"RegisterStreamConsumer", &I::RegisterStreamConsumer},
      {"RemoveTagsFromStream", &I::RemoveTagsFromStream},
      {"SplitShard", &I::SplitShard},
      {"StartStreamEncryption", &I::StartStreamEncryption},
      {"StopStreamEncryption", &I::StopStreamEncryption},
      {"SubscribeToShard", &I::SubscribeToShard},
      {"UpdateShardCount", &I::UpdateShardCount},
      {"UpdateStreamMode", &I::UpdateStreamMode},
  };
  return *ops;
}

std::string RandomId2() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string bytes(72, '\0');
  for (size_t i = 0; i < bytes.size(); i += 8) {
    uint64_t r = rng();
    for (size_t j = 0; j < 8 && i + j < bytes.size(); ++j)
      bytes[i + j] = static_cast<char>(r >> (8 * j));
  }
  std::string out;
  wire::Base64Encode(bytes, &out);
  return out;
}

void XmlError(wire::HttpResponse* r, int status, std::string_view type, std::string_view message) {
  r->status = status;
  r->headers.push_back({"content-type", "application/xml"});
  if (message.empty()) {
    r->body = absl::StrCat("<", detail::ToAbsl(type), "/>\n");
  } else {
    r->body = absl::StrCat("<", detail::ToAbsl(type), ">\n  <Message>", detail::ToAbsl(message),
                           "</Message>\n</", detail::ToAbsl(type), ">\n");
  }
}

// The `__type` the wire shows for a status: kinlet's own extensions map to
// what a Kinesis client expects.
std::string WireType(const absl::Status& s) {
  std::string type = wire::ErrorTypeOf(s);
  if (type == ErrorName(ErrorCode::kShardFull)) {
    return std::string(ErrorName(ErrorCode::kProvisionedThroughputExceeded));
  }
  // A durable stream's disk errors are the service's failure, as AWS's would be.
  if (type == ErrorName(ErrorCode::kInternalFailure) || type == "UnknownError" ||
      type == ErrorName(ErrorCode::kTrimmedDataAccess) || type == ErrorName(ErrorCode::kDataLoss) ||
      type == ErrorName(ErrorCode::kStorageFailure)) {
    return "InternalFailureException";
  }
  return type;
}

void DocError(wire::HttpResponse* r, wire::Format format, std::string_view type,
              std::string_view message) {
  r->status = type == "InternalFailureException" ? 500 : 400;
  r->headers.push_back({"content-type", std::string(wire::ContentType(format))});
  wire::Writer w(format);
  w.BeginObject();
  w.Key("__type");
  w.String(type);
  if (!message.empty()) {
    w.Key(type == wire::kSerializationException ? "Message" : "message");
    w.String(message);
  }
  w.EndObject();
  r->body = w.Take();
}

void StatusError(wire::HttpResponse* r, wire::Format format, const absl::Status& s) {
  std::string type = WireType(s);
  std::string_view message = detail::ToStd(s.message());
  if (message.empty() && type == ErrorName(ErrorCode::kProvisionedThroughputExceeded)) {
    message = "Rate exceeded for shard.";
  }
  DocError(r, format, type, message);
}

}  // namespace

// ---- Public surface -----------------------------------------------------------

absl::StatusOr<StreamOptions> WireStreamDefaults(std::string_view limits) {
  StreamOptions o;
  o.trimmed_reads = TrimmedReads::kContinueFromTrimHorizon;
  if (limits == "kinesis") return o;
  if (limits == "unlimited") {
    o.limits = ThroughputLimits::Unlimited();
    o.max_shard_count_updates_per_day = 1 << 30;
    o.max_stream_mode_updates_per_day = 1 << 30;
    o.max_stream_consumers = 1 << 20;
    return o;
  }
  return InvalidArgument(
      absl::StrCat("limits must be 'kinesis' or 'unlimited', not '", detail::ToAbsl(limits), "'"));
}

absl::Status RequireAuthentication(const wire::HttpRequest& request) {
  const bool header = request.FindHeader("authorization") != nullptr;
  const size_t q = request.target.find('?');
  const bool query = q != std::string::npos &&
                     absl::StrContains(detail::ToAbsl(std::string_view(request.target).substr(q)),
                                       "X-Amz-Algorithm=");
  if (header && query) {
    return wire::WireError(absl::StatusCode::kUnauthenticated, wire::kInvalidSignatureException,
                           "Found both 'X-Amz-Algorithm' as a query-string param and "
                           "'Authorization' as HTTP header.");
  }
  if (!header && !query) {
    return wire::WireError(absl::StatusCode::kUnauthenticated,
                           wire::kMissingAuthenticationTokenException,
                           "Missing Authentication Token");
  }
  return absl::OkStatus();
}

KinesisService::KinesisService(std::shared_ptr<WireRegistry> registry,
                               KinesisServiceOptions options)
    : impl_(std::make_shared<Impl>(std::move(registry), std::move(options))) {}

KinesisService::~KinesisService() { Stop(); }

wire::HttpResponse KinesisService::Handle(wire::HttpRequest& request) {
  return impl_->Handle(request);
}

wire::HttpHandler KinesisService::AsHandler() {
  return [impl = impl_](wire::HttpRequest& request) { return impl->Handle(request); };
}

void KinesisService::Stop() { impl_->Stop(); }

// ---- Envelope -------------------------------------------------------------------

namespace {
uint64_t NextServiceId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

KinesisService::Impl::Impl(std::shared_ptr<WireRegistry> registry, KinesisServiceOptions options)
    : registry_(std::move(registry)),
      options_(std::move(options)),
      account_id_(options_.account_id.empty() ? registry_->account_id() : options_.account_id),
      arn_prefix_(absl::StrCat("arn:aws:kinesis:", options_.region, ":", account_id_, ":stream/")),
      id_(NextServiceId()),
      has_delays_(options_.create_delay > absl::ZeroDuration() ||
                  options_.delete_delay > absl::ZeroDuration()) {}

wire::HttpResponse KinesisService::Impl::Handle(wire::HttpRequest& request) {
  wire::HttpResponse r;
  r.headers.reserve(4);
  r.headers.push_back({"x-amzn-requestid", MakeUuid()});
  r.headers.push_back({"x-amz-id-2", RandomId2()});
  if (request.method != "POST") {
    XmlError(&r, 403, wire::kAccessDeniedException,
             "Unable to determine service/operation name to be authorized");
    return r;
  }
  const std::string* ct_header = request.FindHeader("content-type");
  std::string_view ct = ct_header != nullptr ? std::string_view(*ct_header) : std::string_view();
  if (size_t semi = ct.find(';'); semi != std::string_view::npos) ct = ct.substr(0, semi);
  ct = detail::ToStd(absl::StripAsciiWhitespace(detail::ToAbsl(ct)));
  std::optional<wire::Format> format;
  if (ct == kJsonType) format = wire::Format::kJson;
  if (ct == kCborType) format = wire::Format::kCbor;

  const std::string* target_header = request.FindHeader("x-amz-target");
  std::string_view target = target_header != nullptr ? std::string_view(*target_header) : "";
  std::string_view service = target, operation;
  if (size_t dot = target.find('.'); dot != std::string_view::npos) {
    service = target.substr(0, dot);
    operation = target.substr(dot + 1);
  }
  const Op* op = nullptr;
  if (service == kTargetPrefix) {
    auto it = Operations().find(operation);
    if (it != Operations().end()) op = &it->second;
  }

  if (!format) {
    if (request.body.empty()) {
      DocError(&r, wire::Format::kCbor,
               op != nullptr ? wire::kSerializationException : wire::kUnknownOperationException,
               "");
    } else if (service.empty() || operation.empty()) {
      XmlError(&r, 403, wire::kAccessDeniedException,
               "Unable to determine service/operation name to be authorized");
    } else {
      XmlError(&r, 404, wire::kUnknownOperationException, "");
    }
    return r;
  }
  absl::StatusOr<Value> input = wire::Parse(*format, request.body);
  if (!input.ok()) {
    StatusError(&r, *format, input.status());
    return r;
  }
  if (op == nullptr) {
    DocError(&r, *format, wire::kUnknownOperationException, "");
    return r;
  }
  absl::Status auth =
      options_.authenticate ? options_.authenticate(request) : RequireAuthentication(request);
  if (!auth.ok()) {
    StatusError(&r, *format, auth);
    return r;
  }
  Call call(*format, &*input);
  absl::Status status = (this->**op)(call);
  if (!status.ok()) {
    StatusError(&r, *format, status);
    return r;
  }
  if (call.stream != nullptr) {
    r.headers.push_back({"content-type", "application/vnd.amazon.eventstream"});
    r.stream = std::move(call.stream);
    return r;
  }
  r.headers.push_back({"content-type", std::string(wire::ContentType(*format))});
  r.body = call.out.Take();
  return r;
}

// ---- Streams by name or ARN -------------------------------------------------------

std::string KinesisService::Impl::StreamArn(std::string_view name) const {
  return absl::StrCat(arn_prefix_, detail::ToAbsl(name));
}

absl::StatusOr<std::string> KinesisService::Impl::NameFromArn(std::string_view arn) const {
  // arn:aws[-partition]:kinesis:{region}:{account}:stream/{name}
  const std::vector<absl::string_view> parts =
      absl::StrSplit(detail::ToAbsl(arn), absl::MaxSplits(':', 5));
  if (parts.size() != 6 || parts[0] != "arn" || !absl::StartsWith(parts[1], "aws") ||
      parts[2] != "kinesis" || !absl::StartsWith(parts[5], "stream/") || parts[5].size() <= 7 ||
      parts[4].size() != 12) {
    return PatternError("streamARN", arn,
                        "Member must satisfy regular expression pattern: "
                        "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+");
  }
  std::string name(parts[5].substr(7));
  if (parts[3] != options_.region || parts[4] != account_id_ ||
      name.find('/') != std::string::npos) {
    return ResourceNotFound(
        absl::StrCat("Stream ", name, " under account ", parts[4], " not found."));
  }
  return name;
}

absl::StatusOr<StreamPtr> KinesisService::Impl::ResolveStream(const Value& in, Plane plane) {
  absl::StatusOr<std::optional<std::string_view>> name = OptString(in, "StreamName");
  if (!name.ok()) return name.status();
  absl::StatusOr<std::optional<std::string_view>> arn = OptString(in, "StreamARN");
  if (!arn.ok()) return arn.status();
  if (absl::StatusOr<std::optional<std::string_view>> id = OptString(in, "StreamId"); !id.ok()) {
    return id.status();
  }
  if (!*name && !*arn) {
    return InvalidArgument("Stream arn and stream name can't be empty at the same time");
  }
  if (*name && !detail::IsResourceName(**name)) {
    return PatternError("streamName", **name,
                        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
  }
  if (*arn) {
    absl::StatusOr<std::string> from_arn = NameFromArn(**arn);
    if (!from_arn.ok()) return from_arn.status();
    if (*name && **name != *from_arn) {
      return InvalidArgument(absl::StrCat("StreamARN ", detail::ToAbsl(**arn), " and StreamName ",
                                          detail::ToAbsl(**name), " do not name the same stream."));
    }
    return StreamByName(*from_arn, plane);
  }
  return StreamByName(**name, plane);
}

namespace {
// A server thread's cache of streams by name and by iterator tag. The
// registry stays the authority: an entry is used only while its stream is
// not deleted, and the whole cache is dropped when the service's generation
// moves (it created or deleted a stream).
struct StreamCache {
  uint64_t owner = 0;
  uint64_t generation = 0;
  absl::flat_hash_map<std::string, StreamPtr> by_name;
  absl::flat_hash_map<uint32_t, StreamPtr> by_tag;

  void Sync(uint64_t id, uint64_t gen) {
    if (owner == id && generation == gen) return;
    owner = id;
    generation = gen;
    by_name.clear();
    by_tag.clear();
  }
};
thread_local StreamCache tls_cache;
constexpr size_t kMaxCached = 512;
}  // namespace

absl::StatusOr<StreamPtr> KinesisService::Impl::StreamByName(std::string_view name, Plane plane) {
  if (pending_deletes_.load(std::memory_order_relaxed) > 0) Advance();
  StreamCache& cache = tls_cache;
  cache.Sync(id_, generation_.load(std::memory_order_acquire));
  StreamPtr stream;
  auto it = cache.by_name.find(detail::ToAbsl(name));
  if (it != cache.by_name.end() && !it->second->deleted()) {
    stream = it->second;
  } else {
    absl::StatusOr<StreamPtr> found = registry_->GetStream(name);
    if (!found.ok()) {
      if (it != cache.by_name.end()) cache.by_name.erase(it);
      return found.status();
    }
    if (cache.by_name.size() >= kMaxCached) cache.by_name.clear();
    stream = *found;
    cache.by_name[std::string(name)] = stream;
  }
  if (has_delays_ && plane != Plane::kDescribe) {
    detail::MutexLock lock(&state_mu_);
    auto e = extras_.find(detail::ToAbsl(name));
    if (e != extras_.end() && e->second.stream.lock() == stream) {
      const bool creating = NowMs() < e->second.ready_ms;
      const bool deleting = e->second.deleting_ms >= 0;
      if (creating || deleting) {
        if (plane == Plane::kData) {
          return ResourceNotFound(absl::StrCat("Stream ", detail::ToAbsl(name), " under account ",
                                               account_id_, " not found."));
        }
        return ResourceInUse(absl::StrCat("Stream ", detail::ToAbsl(name), " under account ",
                                          account_id_, " not ACTIVE, instead in state ",
                                          creating ? "CREATING" : "DELETING"));
      }
    }
  }
  return stream;
}

void KinesisService::Impl::RememberTag(uint32_t tag, const StreamPtr& stream) {
  StreamCache& cache = tls_cache;
  cache.Sync(id_, generation_.load(std::memory_order_acquire));
  if (cache.by_tag.contains(tag)) return;
  if (cache.by_tag.size() >= kMaxCached) cache.by_tag.clear();
  cache.by_tag[tag] = stream;
  detail::MutexLock lock(&state_mu_);
  tags_[tag] = stream;
}

StreamPtr KinesisService::Impl::StreamByTag(uint32_t tag) {
  StreamCache& cache = tls_cache;
  cache.Sync(id_, generation_.load(std::memory_order_acquire));
  auto it = cache.by_tag.find(tag);
  if (it != cache.by_tag.end() && !it->second->deleted()) return it->second;
  StreamPtr found;
  {
    detail::MutexLock lock(&state_mu_);
    auto t = tags_.find(tag);
    if (t != tags_.end()) found = t->second.lock();
  }
  if (found == nullptr || found->deleted()) {
    // An iterator issued in-process: learn the tags of the registry's streams.
    found = nullptr;
    for (const std::string& name : registry_->ListStreams()) {
      absl::StatusOr<StreamPtr> s = registry_->GetStream(name);
      if (!s.ok()) continue;
      std::vector<StreamT::ShardHandle> shards = (*s)->AllShards();
      if (shards.empty()) continue;
      absl::StatusOr<ShardIterator> probe =
          shards.front()->GetShardIterator(IteratorPosition::Latest());
      if (!probe.ok()) continue;
      detail::MutexLock lock(&state_mu_);
      tags_[probe->stream_tag()] = *s;
      if (probe->stream_tag() == tag) found = *s;
    }
  }
  if (found == nullptr) return nullptr;
  if (cache.by_tag.size() >= kMaxCached) cache.by_tag.clear();
  cache.by_tag[tag] = found;
  return found;
}

StreamExtras& KinesisService::Impl::ExtrasLocked(const StreamPtr& stream) {
  StreamExtras& e = extras_[stream->name()];
  if (e.stream.lock() != stream) {
    if (e.kms) kms_streams_.fetch_sub(1, std::memory_order_relaxed);
    e = StreamExtras();
    e.stream = stream;
  }
  return e;
}

std::string_view KinesisService::Impl::StatusOf(const StreamT& stream,
                                                std::string_view core_status) {
  if (!has_delays_) return core_status;
  detail::MutexLock lock(&state_mu_);
  auto e = extras_.find(stream.name());
  if (e == extras_.end() || e->second.stream.lock().get() != &stream) return core_status;
  if (e->second.deleting_ms >= 0) return "DELETING";
  if (NowMs() < e->second.ready_ms) return "CREATING";
  return core_status;
}

void KinesisService::Impl::Advance() {
  if (pending_deletes_.load(std::memory_order_relaxed) == 0) return;
  std::vector<std::string> due;
  {
    detail::MutexLock lock(&state_mu_);
    const int64_t now = NowMs();
    for (auto& [name, e] : extras_) {
      if (e.deleting_ms >= 0 && e.deleting_ms <= now) {
        due.push_back(name);
        e.deleting_ms = -1;
        pending_deletes_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
  }
  for (const std::string& name : due) {
    (void)registry_->DeleteStream(name, /*enforce_consumer_deletion=*/true);
  }
  if (!due.empty()) generation_.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace kinlet::gateway
