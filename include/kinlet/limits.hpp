// kinlet/limits.hpp: Kinesis's per-shard throughput limits, as presets and
// custom numbers.
//
// Each open shard of a stream enforces these (so adding shards adds capacity):
//  - writes: write_bytes_per_second (payload + partition key) and
//    write_records_per_second, each a bucket of one second's worth that refills
//    continuously ("1-second bucket", AWS's observed behaviour). A throttled
//    PutRecord fails with ProvisionedThroughputExceededException; a throttled
//    PutRecords entry fails alone; nothing refused is written.
//  - polling reads: read_calls_per_second GetRecords calls and
//    read_bytes_per_second, shared by every polling reader of the shard. A read
//    may overdraw the byte bucket: after a 10 MiB response the bucket owes
//    8 MiB and calls throttle for about the next 4 seconds, as Kinesis's
//    "calls within the next 5 seconds throw" documents.
//  - get_shard_iterator_calls_per_second (Kinesis: 5 per shard).
// A value of 0 lifts that limit. Thread safety: plain values.
#pragma once

#include <cstdint>

namespace kinlet {

struct ThroughputLimits {
  int64_t write_bytes_per_second = int64_t{1} << 20;
  int64_t write_records_per_second = 1000;
  int64_t read_calls_per_second = 5;
  int64_t read_bytes_per_second = int64_t{2} << 20;
  int64_t get_shard_iterator_calls_per_second = 5;
  // Enhanced fan-out: each registered consumer's own read budget per shard.
  int64_t subscribe_bytes_per_second = int64_t{2} << 20;

  // AWS's defaults for a provisioned shard (the default of StreamOptions).
  static constexpr ThroughputLimits Kinesis() { return ThroughputLimits{}; }
  // No limit at all: for applications that want raw speed.
  static constexpr ThroughputLimits Unlimited() { return ThroughputLimits{0, 0, 0, 0, 0, 0}; }

  bool limits_writes() const { return write_bytes_per_second > 0 || write_records_per_second > 0; }
  bool limits_reads() const { return read_calls_per_second > 0 || read_bytes_per_second > 0; }
  bool valid() const {
    return write_bytes_per_second >= 0 && write_records_per_second >= 0 &&
           read_calls_per_second >= 0 && read_bytes_per_second >= 0 &&
           get_shard_iterator_calls_per_second >= 0 && subscribe_bytes_per_second >= 0;
  }
  friend bool operator==(const ThroughputLimits&, const ThroughputLimits&) = default;
};

}  // namespace kinlet
