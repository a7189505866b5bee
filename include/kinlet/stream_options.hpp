// kinlet/stream_options.hpp: what a stream is created with, and the plain
// structs that describe streams and shards (DescribeStream, ListShards).
// Thread safety: plain values; not synchronised.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/faults.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/limits.hpp"
#include "kinlet/on_demand.hpp"
#include "kinlet/resharding.hpp"
#include "kinlet/ring_log.hpp"
#include "kinlet/sequence_number.hpp"
#include "kinlet/storage/encryption.hpp"
#include "kinlet/storage/storage_options.hpp"

namespace kinlet {

inline constexpr size_t kMiB = size_t{1} << 20;

// What a read of records that retention or ring capacity removed does.
enum class TrimmedReads {
  // kinlet's loud default: GetRecords fails with TrimmedDataAccessException
  // and a fan-out subscription ends with kDataTrimmed, so that a reader
  // learns that it lost records (Consumer's TrimmedPolicy decides what next).
  kReport,
  // Exactly as Kinesis: GetRecords and SubscribeToShard continue from the
  // trim horizon, silently (Kinesis never sends TrimmedDataAccessException,
  // a DynamoDB Streams error). For code written against Kinesis, and the
  // wire gateway.
  kContinueFromTrimHorizon,
};

struct StreamOptions {
  // [a-zA-Z0-9_.-]{1,128}.
  std::string name;
  // Shards at creation, >= 1 and <= max_shard_count.
  int shard_count = 1;
  // How long a record stays readable; any positive duration (Kinesis allows
  // 24 h to 365 days; in-process shorter periods are useful).
  absl::Duration retention_period = absl::Hours(24);
  // Largest partition key + payload, bytes; 1 byte .. 10 MiB (Kinesis default 1 MiB).
  size_t max_record_size_bytes = kMiB;
  // Per-shard ring capacity, rounded up to powers of two. The ring bounds what
  // a shard holds, whatever the retention period. 0 bytes means
  // max(64 MiB, 4 x max_record_size_bytes).
  size_t shard_capacity_records = size_t{1} << 16;
  size_t shard_capacity_bytes = 0;
  // What a put does when a shard's ring is full of unexpired records.
  FullPolicy full_policy = FullPolicy::kReject;
  // Iterators expire this long after they are issued (Kinesis: 5 minutes).
  absl::Duration iterator_ttl = absl::Minutes(5);
  // PutRecords: entries per call and bytes (keys + payloads) per call.
  int max_put_records_entries = 500;
  size_t max_put_records_bytes = 5 * kMiB;
  // GetRecords: bytes per call (Kinesis: 10 MiB) and the largest limit (10,000).
  size_t max_get_records_bytes = 10 * kMiB;
  int max_get_records_limit = 10000;
  // Per-shard throughput limits (see limits.hpp). Kinesis's by default;
  // ThroughputLimits::Unlimited() for raw speed.
  ThroughputLimits limits = ThroughputLimits::Kinesis();
  // Injected faults for tests (see faults.hpp); off by default. Can also be
  // changed at run time with Stream::SetFaultInjection.
  FaultInjection faults;
  // Measure GetRecords.Latency (two steady-clock reads per GetRecords call).
  bool measure_get_records_latency = false;
  // Shards the stream may hold at once: open ones, and closed ones still
  // readable. A reshard closes its parents; a closed shard is deleted (and its
  // memory returned) once every record in it is past retention, as AWS does,
  // and then no longer counts. AWS itself limits only open shards
  // (max_open_shard_count); this bounds the memory of closed ones too.
  int max_shard_count = 100000;
  // Open shards at once (Kinesis: 10,000 per stream, less by account quota):
  // SplitShard and UpdateShardCount beyond it are LimitExceededException.
  int max_open_shard_count = 10000;
  // Capacity mode. kOnDemand starts with on_demand.min_shard_count shards (or
  // shard_count if larger) and reshards by itself (see on_demand.hpp).
  StreamMode stream_mode = StreamMode::kProvisioned;
  OnDemandOptions on_demand;
  // How long the stream stays UPDATING after a reshard or mode switch. The
  // change itself takes effect at once (reads and writes never stop); during
  // this time DescribeStreamSummary says UPDATING and another reshard or mode
  // switch is ResourceInUseException, as on AWS. Zero (the default): ACTIVE again at once.
  absl::Duration update_duration = absl::ZeroDuration();
  // UpdateShardCount calls and mode switches allowed per rolling 24 hours
  // (Kinesis: 10 and 2); more is LimitExceededException.
  int max_shard_count_updates_per_day = 10;
  int max_stream_mode_updates_per_day = 2;
  // Enhanced fan-out (see fan_out.hpp): registered consumers per stream
  // (Kinesis: 20); how long a subscription lasts (5 minutes); how soon one
  // consumer may subscribe to one shard again, taking over (5 seconds); how
  // often an idle push subscription delivers an empty heartbeat event (AWS
  // sends one at least every 5 seconds).
  int max_stream_consumers = 20;
  absl::Duration subscription_lifetime = absl::Minutes(5);
  absl::Duration subscription_takeover_after = absl::Seconds(5);
  absl::Duration subscription_heartbeat = absl::Seconds(5);
  // Reads of trimmed data: kinlet's loud report (default) or Kinesis's
  // silent continuation from the trim horizon. See TrimmedReads.
  TrimmedReads trimmed_reads = TrimmedReads::kReport;
  // Where records are kept: in memory (the default) or durable in a
  // directory, with a sync policy (see storage/storage_options.hpp). A
  // durable stream survives its process: Stream::Open reopens it.
  StorageOptions storage;
  // For ARNs and AWS-style messages.
  std::string region = "us-east-1";
  std::string account_id = "000000000000";

  size_t EffectiveShardCapacityBytes() const {
    if (shard_capacity_bytes != 0) return shard_capacity_bytes;
    return std::max<size_t>(64 * kMiB, 4 * max_record_size_bytes);
  }
};

// Checks `options` as CreateStream would. InvalidArgumentException naming the
// first bad field, or ValidationException for the name and the maximum record
// size (as AWS answers a bad StreamName or MaxRecordSizeInKiB).
inline absl::Status ValidateStreamOptions(const StreamOptions& o) {
  if (!detail::IsResourceName(o.name)) {
    return ValidationError(absl::StrCat(
        "1 validation error detected: Value '", o.name,
        "' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression "
        "pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128"));
  }
  if (o.max_shard_count < 1) return InvalidArgument("max_shard_count must be at least 1");
  if (o.max_open_shard_count < 1) return InvalidArgument("max_open_shard_count must be at least 1");
  if (o.shard_count < 1 || o.shard_count > o.max_shard_count ||
      o.shard_count > o.max_open_shard_count) {
    return InvalidArgument(absl::StrCat("ShardCount ", o.shard_count,
                                        " is invalid: it must be between 1 and ",
                                        std::min(o.max_shard_count, o.max_open_shard_count)));
  }
  if (o.retention_period <= absl::ZeroDuration()) {
    return InvalidArgument("RetentionPeriod must be positive");
  }
  if (o.max_record_size_bytes < 1 || o.max_record_size_bytes > 10 * kMiB) {
    return ValidationError(absl::StrCat("MaxRecordSize ", o.max_record_size_bytes,
                                        " bytes is invalid: it must be between 1 and 10 MiB"));
  }
  if (o.shard_capacity_records < 1) {
    return InvalidArgument("shard_capacity_records must be at least 1");
  }
  // Any valid record (key up to 256 characters, 1024 bytes of UTF-8) must fit.
  const size_t largest = 8 * detail::WordsFor(1024 + o.max_record_size_bytes);
  if (o.EffectiveShardCapacityBytes() < largest) {
    return InvalidArgument(absl::StrCat("shard_capacity_bytes ", o.EffectiveShardCapacityBytes(),
                                        " cannot hold a record of the maximum size (needs ",
                                        largest, " bytes)"));
  }
  if (o.iterator_ttl <= absl::ZeroDuration()) {
    return InvalidArgument("iterator_ttl must be positive");
  }
  if (!o.limits.valid()) return InvalidArgument("throughput limits must not be negative");
  for (double f : {o.faults.throttle_put_fraction, o.faults.throttle_read_fraction,
                   o.faults.internal_failure_fraction, o.faults.expire_iterator_fraction}) {
    if (!(f >= 0 && f <= 1)) return InvalidArgument("fault fractions must be within [0, 1]");
  }
  if (o.faults.visibility_delay < absl::ZeroDuration()) {
    return InvalidArgument("visibility_delay must not be negative");
  }
  if (o.max_put_records_entries < 1 || o.max_put_records_bytes < 1 || o.max_get_records_bytes < 1 ||
      o.max_get_records_limit < 1) {
    return InvalidArgument("PutRecords and GetRecords limits must be positive");
  }
  if (o.max_stream_consumers < 0 || o.subscription_lifetime <= absl::ZeroDuration() ||
      o.subscription_takeover_after < absl::ZeroDuration() ||
      o.subscription_heartbeat <= absl::ZeroDuration()) {
    return InvalidArgument(
        "max_stream_consumers must not be negative and subscription durations must be positive");
  }
  if (o.update_duration < absl::ZeroDuration()) {
    return InvalidArgument("update_duration must not be negative");
  }
  if (o.max_shard_count_updates_per_day < 0 || o.max_stream_mode_updates_per_day < 0) {
    return InvalidArgument("updates per day must not be negative");
  }
  if (absl::Status s = ValidateOnDemandOptions(o.on_demand); !s.ok()) return s;
  if (o.storage.durable() && o.storage.directory.empty()) {
    return InvalidArgument("storage.directory is required for a durable stream");
  }
  if (o.storage.sync == SyncPolicy::kInterval && o.storage.sync_interval <= absl::ZeroDuration()) {
    return InvalidArgument("storage.sync_interval must be positive");
  }
  if (o.stream_mode == StreamMode::kOnDemand &&
      (o.on_demand.min_shard_count > o.max_shard_count ||
       o.on_demand.min_shard_count > o.max_open_shard_count)) {
    return InvalidArgument("on_demand.min_shard_count exceeds the stream's shard limits");
  }
  return absl::OkStatus();
}

enum class StreamStatus { kCreating, kDeleting, kActive, kUpdating };

constexpr std::string_view StreamStatusName(StreamStatus s) {
  switch (s) {
    case StreamStatus::kCreating:
      return "CREATING";
    case StreamStatus::kDeleting:
      return "DELETING";
    case StreamStatus::kActive:
      return "ACTIVE";
    case StreamStatus::kUpdating:
      return "UPDATING";
  }
  return "";
}

struct SequenceNumberRange {
  SequenceNumber starting_sequence_number;
  std::optional<SequenceNumber> ending_sequence_number;  // empty while the shard is open
};

struct ShardDescription {
  std::string shard_id;
  std::optional<std::string> parent_shard_id;
  std::optional<std::string> adjacent_parent_shard_id;
  HashKeyRange hash_key_range;
  SequenceNumberRange sequence_number_range;
};

// One page of ListShards. `next_token` is empty on the last page; pass it
// (alone) in the next request to continue.
struct ListShardsResult {
  std::vector<ShardDescription> shards;
  std::string next_token;
};

struct StreamDescriptionSummary {
  std::string stream_name;
  std::string stream_arn;
  StreamStatus stream_status = StreamStatus::kActive;
  absl::Duration retention_period;
  absl::Time stream_creation_timestamp;
  int open_shard_count = 0;
  size_t max_record_size_bytes = 0;
  StreamMode stream_mode = StreamMode::kProvisioned;
  int consumer_count = 0;  // registered enhanced fan-out consumers
  // Server-side encryption (StartStreamEncryption): KMS and the key id, or NONE.
  EncryptionType encryption_type = EncryptionType::kNone;
  std::string key_id;
};

struct StreamDescription : StreamDescriptionSummary {
  std::vector<ShardDescription> shards;
  StreamOptions options;
};

}  // namespace kinlet
