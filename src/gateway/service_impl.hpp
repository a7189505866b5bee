// src/gateway/service_impl.hpp: KinesisService's implementation, shared by the
// operation files (service_streams.cpp, service_records.cpp,
// service_shards.cpp, service_consumers.cpp, service_subscribe.cpp).
//
// Concurrency: registry_ is kinlet's (thread-safe). state_mu_ guards the
// service's own per-stream state (tags, monitoring, encryption, delays) and
// the iterator-tag map; the data plane touches it only when delays are
// configured (has_delays_) or a stream is encrypted (kms_streams_ > 0). Each
// server thread keeps its own cache of name -> stream and tag -> stream
// (thread_local, see StreamCache), so a put or read takes no service lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/registry.hpp"
#include "kinlet/wire/document.hpp"
#include "kinlet/wire/errors.hpp"
#include "kinlet/wire/http.hpp"

namespace kinlet::gateway {

using StreamT = WireStream;
using StreamPtr = std::shared_ptr<StreamT>;
using Value = wire::Value;

// One operation call: the parsed input and the response being written.
struct Call {
  explicit Call(wire::Format f, const Value* input) : format(f), in(*input), out(f) {}
  wire::Format format;
  const Value& in;
  wire::Writer out;                          // left empty by outputless operations
  std::shared_ptr<wire::StreamBody> stream;  // SubscribeToShard
};

// What the service keeps per stream beyond the core.
struct StreamExtras {
  std::weak_ptr<StreamT> stream;  // the stream these belong to (a recreated name resets them)
  std::map<std::string, std::string> tags;
  std::set<std::string> shard_level_metrics;
  bool kms = false;
  std::string key_id;
  int64_t ready_ms = 0;      // CREATING until then
  int64_t deleting_ms = -1;  // DELETING (gone at that time) when >= 0
};

// ---- Request reading (service_util.cpp) -------------------------------------
// Each returns nullopt for an absent or null member, SerializationException
// for a wrong type (the codec's texts).
absl::StatusOr<std::optional<std::string_view>> OptString(const Value& in, std::string_view key);
absl::StatusOr<std::optional<int64_t>> OptInt(const Value& in, std::string_view key);
absl::StatusOr<std::optional<bool>> OptBool(const Value& in, std::string_view key);
absl::StatusOr<std::optional<absl::Time>> OptTime(const Value& in, wire::Format format,
                                                  std::string_view key);
// ValidationException "1 validation error detected: Value null at 'member' ...".
absl::Status NullMember(std::string_view member);
// ValidationException for a value outside [lo, hi] at `member`.
absl::Status RangeError(std::string_view member, int64_t value, int64_t lo, int64_t hi);
// ValidationException for a string that fails the pattern and length constraint.
absl::Status PatternError(std::string_view member, std::string_view value,
                          std::string_view constraint);
std::string MakeUuid();

class KinesisService::Impl : public std::enable_shared_from_this<KinesisService::Impl> {
 public:
  Impl(std::shared_ptr<WireRegistry> registry, KinesisServiceOptions options);

  wire::HttpResponse Handle(wire::HttpRequest& request);
  void Stop();

  // ---- Operations (each in its area's file) ----
  absl::Status CreateStream(Call& c);
  absl::Status DeleteStream(Call& c);
  absl::Status DescribeStream(Call& c);
  absl::Status DescribeStreamSummary(Call& c);
  absl::Status ListStreams(Call& c);
  absl::Status IncreaseStreamRetentionPeriod(Call& c);
  absl::Status DecreaseStreamRetentionPeriod(Call& c);
  absl::Status UpdateStreamMode(Call& c);
  absl::Status AddTagsToStream(Call& c);
  absl::Status RemoveTagsFromStream(Call& c);
  absl::Status ListTagsForStream(Call& c);
  absl::Status DescribeLimits(Call& c);
  absl::Status EnableEnhancedMonitoring(Call& c);
  absl::Status DisableEnhancedMonitoring(Call& c);
  absl::Status StartStreamEncryption(Call& c);
  absl::Status StopStreamEncryption(Call& c);
  absl::Status ListShards(Call& c);
  absl::Status SplitShard(Call& c);
  absl::Status MergeShards(Call& c);
  absl::Status UpdateShardCount(Call& c);
  absl::Status PutRecord(Call& c);
  absl::Status PutRecords(Call& c);
  absl::Status GetShardIterator(Call& c);
  absl::Status GetRecords(Call& c);
  absl::Status RegisterStreamConsumer(Call& c);
  absl::Status DeregisterStreamConsumer(Call& c);
  absl::Status DescribeStreamConsumer(Call& c);
  absl::Status ListStreamConsumers(Call& c);
  absl::Status SubscribeToShard(Call& c);

  // ---- Streams by name or ARN (kinesis_service.cpp) ----
  enum class Plane { kData, kControl, kDescribe };
  // The stream named by StreamName and/or StreamARN (StreamId ignored), with
  // AWS's errors; `plane` decides what a CREATING/DELETING stream answers.
  absl::StatusOr<StreamPtr> ResolveStream(const Value& in, Plane plane);
  absl::StatusOr<StreamPtr> StreamByName(std::string_view name, Plane plane);
  // The stream name in a stream ARN of this region and account;
  // ResourceNotFound for another account's, InvalidArgument for a malformed one.
  absl::StatusOr<std::string> NameFromArn(std::string_view arn) const;
  std::string StreamArn(std::string_view name) const;
  // The stream of an iterator's tag (thread-local cache, then the registry).
  StreamPtr StreamByTag(uint32_t tag);
  void RememberTag(uint32_t tag, const StreamPtr& stream);
  // The status the wire shows for a stream (the core's, or CREATING/DELETING).
  std::string_view StatusOf(const StreamT& stream, std::string_view core_status);
  // Runs due transitions (delayed deletions).
  void Advance();
  int64_t NowMs() const { return NowMillis(*registry_->clock()); }
  // The consumer ARN the wire shows for a kinlet consumer ARN, and back.
  std::string WireConsumerArn(const StreamT& stream, std::string_view kinlet_arn) const;
  // Writes a Consumer shape's members.
  void WriteConsumer(wire::Writer& w, const StreamT& stream, const StreamConsumerDescription& d);
  // Writes the Shard shape.
  static void WriteShard(wire::Writer& w, const ShardDescription& s);
  // Writes the members StreamDescription and StreamDescriptionSummary share
  // (name, ARN, status, mode, retention, creation time, enhanced monitoring,
  // encryption) from `d`, either description, and the service's extras.
  // Defined in service_streams.cpp, its only user.
  // Enable/DisableEnhancedMonitoring: adds or removes the requested metrics
  // and answers both sets.
  absl::Status UpdateMonitoring(Call& c, bool enable);
  template <typename Description>
  void WriteDescriptionCommon(wire::Writer& w, const StreamPtr& stream, const Description& d);

  // The service's state for `stream` (created on first use). REQUIRES state_mu_.
  StreamExtras& ExtrasLocked(const StreamPtr& stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);

  const std::shared_ptr<WireRegistry> registry_;
  const KinesisServiceOptions options_;
  const std::string account_id_;
  const std::string arn_prefix_;  // "arn:aws:kinesis:{region}:{account}:stream/"
  const uint64_t id_;             // unique per service: thread-local caches key on it
  const bool has_delays_;
  // Bumped when the service deletes or creates a stream: thread caches drop
  // their entries (in-process deletions are seen through Stream::deleted()).
  std::atomic<uint64_t> generation_{1};
  std::atomic<int> kms_streams_{0};      // streams with encryption on (PutRecord's EncryptionType)
  std::atomic<int> pending_deletes_{0};  // streams DELETING
  std::atomic<bool> stopped_{false};

  mutable detail::Mutex state_mu_;
  absl::flat_hash_map<std::string, StreamExtras> extras_ ABSL_GUARDED_BY(state_mu_);
  absl::flat_hash_map<uint32_t, std::weak_ptr<StreamT>> tags_ ABSL_GUARDED_BY(state_mu_);

  // Open SubscribeToShard bodies, ended by Stop.
  class SubscriptionBody;
  detail::Mutex bodies_mu_;
  std::vector<std::weak_ptr<SubscriptionBody>> bodies_ ABSL_GUARDED_BY(bodies_mu_);
};

// The stream and kinlet's own consumer ARN for a wire ConsumerARN
// (service_consumers.cpp).
absl::StatusOr<std::pair<StreamPtr, std::string>> ResolveConsumerArn(
    KinesisService::Impl& impl, std::string_view arn, KinesisService::Impl::Plane plane);
// Writes a ChildShards member (GetRecords, SubscribeToShardEvent).
void WriteChildShards(wire::Writer& w, const std::vector<ChildShard>& children);
// Writes the "Records" member: GetRecords' and SubscribeToShardEvent's Record shapes.
void WriteRecords(wire::Writer& w, const std::vector<Record<std::string>>& records);

}  // namespace kinlet::gateway
