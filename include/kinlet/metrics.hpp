// kinlet/metrics.hpp: what a stream is doing, under CloudWatch's names.
//
// Stream::GetMetrics() returns a StreamMetrics snapshot: per shard and summed
// for the stream, the Kinesis metrics (IncomingBytes, IncomingRecords,
// PutRecord.Success, PutRecords.FailedRecords, WriteProvisionedThroughputExceeded,
// ReadProvisionedThroughputExceeded, GetRecords.Bytes/.Records/.Success,
// GetRecords.IteratorAgeMilliseconds, GetRecords.Latency) plus kinlet's
// own (ring occupancy, records trimmed by retention, records lost to
// overwrite, writes refused by a full ring). Counters are cumulative since the
// stream was created. The iterator age is a gauge, as CloudWatch reports it:
// its maximum over a period (the current and the previous one-minute window of
// the stream's clock, so an alarm on it clears a minute or two after readers
// catch up) and the current value (the age seen by the shard's latest
// GetRecords); ToPrometheusText() renders them in the Prometheus text
// exposition format, and HotShardReport compares two snapshots to show each
// shard's share of the traffic in between.
//
// Cost: write counters live on the shard's writer cache line and are updated
// by the writer lock holder with plain relaxed stores (no atomic RMW, no new
// shared line); read counters are one relaxed add per GetRecords call (not
// per record) on the shard's reader line.
// Thread safety: snapshots are plain values; the counters are read without
// locks (each value is exact; the set is not one instant).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "kinlet/config.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/resharding.hpp"

namespace kinlet {

struct ShardMetrics {
  std::string shard_id;
  bool open = true;
  // Kinesis (CloudWatch) metrics.
  uint64_t incoming_bytes = 0;                         // IncomingBytes
  uint64_t incoming_records = 0;                       // IncomingRecords
  uint64_t put_record_success = 0;                     // PutRecord.Success
  uint64_t put_records_successful_records = 0;         // PutRecords.SuccessfulRecords
  uint64_t put_records_failed_records = 0;             // PutRecords.FailedRecords
  uint64_t write_provisioned_throughput_exceeded = 0;  // records refused by a limit
  uint64_t read_provisioned_throughput_exceeded = 0;   // GetRecords calls refused
  uint64_t get_records_success = 0;                    // GetRecords.Success
  uint64_t get_records_bytes = 0;                      // GetRecords.Bytes
  uint64_t get_records_records = 0;                    // GetRecords.Records
  // GetRecords.IteratorAgeMilliseconds: the maximum over the current and the
  // previous kIteratorAgeWindow of the stream's clock (0 when no GetRecords in
  // that period was behind), and the age seen by the latest GetRecords.
  int64_t get_records_iterator_age_ms_max = 0;
  int64_t get_records_iterator_age_ms = 0;
  uint64_t get_records_latency_ns_total = 0;  // GetRecords.Latency (sum)
  // kinlet.
  uint64_t records_stored = 0;
  uint64_t ring_bytes_in_use = 0;
  uint64_t ring_capacity_bytes = 0;
  uint64_t ring_capacity_records = 0;
  uint64_t records_expired = 0;      // trimmed by retention
  uint64_t records_overwritten = 0;  // dropped unexpired by FullPolicy::kOverwrite
  uint64_t shard_full_rejections = 0;

  // Adds `o`'s counters to these (the maximum for the iterator ages).
  void Accumulate(const ShardMetrics& o) {
    incoming_bytes += o.incoming_bytes;
    incoming_records += o.incoming_records;
    put_record_success += o.put_record_success;
    put_records_successful_records += o.put_records_successful_records;
    put_records_failed_records += o.put_records_failed_records;
    write_provisioned_throughput_exceeded += o.write_provisioned_throughput_exceeded;
    read_provisioned_throughput_exceeded += o.read_provisioned_throughput_exceeded;
    get_records_success += o.get_records_success;
    get_records_bytes += o.get_records_bytes;
    get_records_records += o.get_records_records;
    get_records_iterator_age_ms_max =
        std::max(get_records_iterator_age_ms_max, o.get_records_iterator_age_ms_max);
    get_records_iterator_age_ms =
        std::max(get_records_iterator_age_ms, o.get_records_iterator_age_ms);
    get_records_latency_ns_total += o.get_records_latency_ns_total;
    records_stored += o.records_stored;
    ring_bytes_in_use += o.ring_bytes_in_use;
    ring_capacity_bytes += o.ring_capacity_bytes;
    ring_capacity_records += o.ring_capacity_records;
    records_expired += o.records_expired;
    records_overwritten += o.records_overwritten;
    shard_full_rejections += o.shard_full_rejections;
  }
};

struct StreamMetrics {
  std::string stream_name;
  absl::Time taken_at;
  ShardMetrics totals;               // shard_id empty
  std::vector<ShardMetrics> shards;  // every shard, in creation order
  int open_shard_count = 0;
  // The stream's scaling event log (Stream::ScalingEvents), oldest first.
  std::vector<ScalingEvent> scaling_events;
  // Events ever recorded, by ScalingEvent::Kind (the log keeps only the last ones).
  std::vector<uint64_t> scaling_event_counts;
};

namespace detail {

inline void AppendPrometheus(std::string* out, std::string_view name, std::string_view help,
                             std::string_view type, const StreamMetrics& m,
                             uint64_t ShardMetrics::*counter) {
  absl::StrAppend(out, "# HELP kinlet_", ToAbsl(name), " ", ToAbsl(help), "\n# TYPE kinlet_",
                  ToAbsl(name), " ", ToAbsl(type), "\n");
  for (const ShardMetrics& s : m.shards) {
    absl::StrAppend(out, "kinlet_", ToAbsl(name), "{stream=\"", m.stream_name, "\",shard=\"",
                    s.shard_id, "\"} ", s.*counter, "\n");
  }
}

// Written only by the holder of the shard's writer lock (relaxed load + store:
// no RMW); read by snapshots (relaxed).
struct WriteCounters {
  std::atomic<uint64_t> incoming_bytes{0};
  std::atomic<uint64_t> incoming_records{0};
  std::atomic<uint64_t> put_record_success{0};
  std::atomic<uint64_t> put_records_successful_records{0};
  std::atomic<uint64_t> put_records_failed_records{0};
  std::atomic<uint64_t> write_throttled{0};
  std::atomic<uint64_t> shard_full{0};

  static void Add(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// The window of GetRecords.IteratorAgeMilliseconds's maximum (CloudWatch's
// standard period). A snapshot reports the maximum of the current and the
// previous window, so a value stays visible for one to two minutes.
inline constexpr int64_t kIteratorAgeWindowMs = 60'000;

// The maximum iterator age per window, lock-free: one 64-bit word holding the
// window's number (high 24 bits, minutes modulo 2^24) and its maximum age (low
// 40 bits, capped at 2^40 - 1 ms, about 34 years). Two words alternate by
// window parity. Any reader updates with a CAS loop that only raises the age
// within its window or replaces an older window; snapshots read both (relaxed)
// and keep the words whose window is the current or the previous one.
class IteratorAgeMax {
 public:
  void Record(int64_t age_ms, int64_t now_ms) {
    const uint64_t window = Window(now_ms);
    const uint64_t age = static_cast<uint64_t>(std::clamp<int64_t>(age_ms, 0, kAgeMask));
    std::atomic<uint64_t>& slot = slots_[window & 1];
    uint64_t seen = slot.load(std::memory_order_relaxed);
    for (;;) {
      const bool same = (seen >> kAgeBits) == window;
      if (same && (seen & kAgeMask) >= age) return;
      if (!same && seen != 0 && Older(window, seen >> kAgeBits)) return;  // a newer window won
      if (slot.compare_exchange_weak(seen, (window << kAgeBits) | age, std::memory_order_relaxed)) {
        return;
      }
    }
  }

  // The maximum age recorded in the window of `now_ms` and the one before.
  int64_t Max(int64_t now_ms) const {
    const uint64_t window = Window(now_ms);
    const uint64_t previous = (window - 1) & kWindowMask;
    int64_t max = 0;
    for (const std::atomic<uint64_t>& slot : slots_) {
      const uint64_t word = slot.load(std::memory_order_relaxed);
      const uint64_t w = word >> kAgeBits;
      if (word != 0 && (w == window || w == previous)) {
        max = std::max(max, static_cast<int64_t>(word & kAgeMask));
      }
    }
    return max;
  }

 private:
  static constexpr int kAgeBits = 40;
  static constexpr int64_t kAgeMask = (int64_t{1} << kAgeBits) - 1;
  static constexpr uint64_t kWindowMask = (uint64_t{1} << (64 - kAgeBits)) - 1;

  static uint64_t Window(int64_t now_ms) {
    return static_cast<uint64_t>(std::max<int64_t>(now_ms, 0) / kIteratorAgeWindowMs) & kWindowMask;
  }
  // Whether window `a` is older than `b` (modular: within half the range).
  static bool Older(uint64_t a, uint64_t b) {
    return a != b && ((b - a) & kWindowMask) < (kWindowMask / 2);
  }

  std::atomic<uint64_t> slots_[2] = {};
};

// Updated by any reader: one relaxed RMW per GetRecords call each.
struct alignas(KINLET_CACHE_LINE_SIZE) ReadCounters {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> throttled{0};
  // The latest GetRecords' age (a relaxed store by each successful call) and
  // the windowed maximum (a CAS only when a call is behind).
  std::atomic<int64_t> iterator_age_ms{0};
  IteratorAgeMax iterator_age_ms_max;
  std::atomic<uint64_t> latency_ns_total{0};

  void RecordAge(int64_t age_ms, int64_t now_ms) {
    if (iterator_age_ms.load(std::memory_order_relaxed) != age_ms) {
      iterator_age_ms.store(age_ms, std::memory_order_relaxed);
    }
    if (age_ms > 0) iterator_age_ms_max.Record(age_ms, now_ms);
  }
};

}  // namespace detail

// The Prometheus text exposition format (version 0.0.4) of one stream's
// per-shard metrics, each labelled with stream and shard.
inline std::string ToPrometheusText(const StreamMetrics& m) {
  std::string out;
  using S = ShardMetrics;
  detail::AppendPrometheus(&out, "incoming_bytes_total", "IncomingBytes: bytes put (payload + key)",
                           "counter", m, &S::incoming_bytes);
  detail::AppendPrometheus(&out, "incoming_records_total", "IncomingRecords: records put",
                           "counter", m, &S::incoming_records);
  detail::AppendPrometheus(&out, "put_record_success_total", "PutRecord.Success", "counter", m,
                           &S::put_record_success);
  detail::AppendPrometheus(&out, "put_records_successful_records_total",
                           "PutRecords.SuccessfulRecords", "counter", m,
                           &S::put_records_successful_records);
  detail::AppendPrometheus(&out, "put_records_failed_records_total", "PutRecords.FailedRecords",
                           "counter", m, &S::put_records_failed_records);
  detail::AppendPrometheus(&out, "write_provisioned_throughput_exceeded_total",
                           "WriteProvisionedThroughputExceeded: records refused by a limit",
                           "counter", m, &S::write_provisioned_throughput_exceeded);
  detail::AppendPrometheus(&out, "read_provisioned_throughput_exceeded_total",
                           "ReadProvisionedThroughputExceeded: GetRecords calls refused", "counter",
                           m, &S::read_provisioned_throughput_exceeded);
  detail::AppendPrometheus(&out, "get_records_success_total", "GetRecords.Success", "counter", m,
                           &S::get_records_success);
  detail::AppendPrometheus(&out, "get_records_bytes_total", "GetRecords.Bytes", "counter", m,
                           &S::get_records_bytes);
  detail::AppendPrometheus(&out, "get_records_records_total", "GetRecords.Records", "counter", m,
                           &S::get_records_records);
  detail::AppendPrometheus(&out, "get_records_latency_nanoseconds_total",
                           "GetRecords.Latency: total time in GetRecords", "counter", m,
                           &S::get_records_latency_ns_total);
  absl::StrAppend(&out,
                  "# HELP kinlet_get_records_iterator_age_milliseconds "
                  "GetRecords.IteratorAgeMilliseconds (maximum over the last one to two "
                  "minutes)\n"
                  "# TYPE kinlet_get_records_iterator_age_milliseconds gauge\n");
  for (const ShardMetrics& s : m.shards) {
    absl::StrAppend(&out, "kinlet_get_records_iterator_age_milliseconds{stream=\"", m.stream_name,
                    "\",shard=\"", s.shard_id, "\"} ", s.get_records_iterator_age_ms_max, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP kinlet_get_records_iterator_age_current_milliseconds "
                  "GetRecords.IteratorAgeMilliseconds seen by the shard's latest GetRecords\n"
                  "# TYPE kinlet_get_records_iterator_age_current_milliseconds gauge\n");
  for (const ShardMetrics& s : m.shards) {
    absl::StrAppend(&out, "kinlet_get_records_iterator_age_current_milliseconds{stream=\"",
                    m.stream_name, "\",shard=\"", s.shard_id, "\"} ", s.get_records_iterator_age_ms,
                    "\n");
  }
  detail::AppendPrometheus(&out, "records_stored", "records in the shard's ring", "gauge", m,
                           &S::records_stored);
  detail::AppendPrometheus(&out, "ring_bytes_in_use", "bytes of the shard's ring in use", "gauge",
                           m, &S::ring_bytes_in_use);
  detail::AppendPrometheus(&out, "ring_capacity_bytes", "capacity of the shard's ring, bytes",
                           "gauge", m, &S::ring_capacity_bytes);
  detail::AppendPrometheus(&out, "records_expired_total", "records trimmed by retention", "counter",
                           m, &S::records_expired);
  detail::AppendPrometheus(&out, "records_overwritten_total",
                           "records dropped unexpired by FullPolicy::kOverwrite", "counter", m,
                           &S::records_overwritten);
  detail::AppendPrometheus(&out, "shard_full_rejections_total",
                           "records refused because the ring was full", "counter", m,
                           &S::shard_full_rejections);
  absl::StrAppend(&out, "# HELP kinlet_open_shards open shards of the stream\n",
                  "# TYPE kinlet_open_shards gauge\n", "kinlet_open_shards{stream=\"",
                  m.stream_name, "\"} ", m.open_shard_count, "\n");
  absl::StrAppend(&out,
                  "# HELP kinlet_scaling_events_total reshards, mode switches and on-demand "
                  "decisions, by kind\n# TYPE kinlet_scaling_events_total counter\n");
  for (size_t k = 0; k < m.scaling_event_counts.size(); ++k) {
    absl::StrAppend(&out, "kinlet_scaling_events_total{stream=\"", m.stream_name, "\",kind=\"",
                    detail::ToAbsl(ScalingEventKindName(static_cast<ScalingEvent::Kind>(k))),
                    "\"} ", m.scaling_event_counts[k], "\n");
  }
  return out;
}

// Each shard's share of a stream's incoming traffic between two snapshots.
struct HotShardReport {
  struct Entry {
    std::string shard_id;
    uint64_t bytes = 0;
    uint64_t records = 0;
    double bytes_share = 0;    // of the stream's bytes in the window, 0..1
    double records_share = 0;  // of the stream's records in the window, 0..1
  };
  absl::Duration window;
  std::vector<Entry> shards;  // hottest first (by bytes, then records)
  // Hottest shard's share over the mean share of the shards that were open
  // (1.0: perfectly even; N: everything on one of N shards).
  double bytes_skew = 0;
  double records_skew = 0;
};

// Compares snapshots `before` and `after` of one stream.
inline HotShardReport ComputeHotShardReport(const StreamMetrics& before,
                                            const StreamMetrics& after) {
  HotShardReport report;
  report.window = after.taken_at - before.taken_at;
  uint64_t total_bytes = 0;
  uint64_t total_records = 0;
  size_t open = 0;
  for (const ShardMetrics& s : after.shards) {
    HotShardReport::Entry e;
    e.shard_id = s.shard_id;
    e.bytes = s.incoming_bytes;
    e.records = s.incoming_records;
    for (const ShardMetrics& b : before.shards) {
      if (b.shard_id == s.shard_id) {
        e.bytes -= b.incoming_bytes;
        e.records -= b.incoming_records;
      }
    }
    total_bytes += e.bytes;
    total_records += e.records;
    if (s.open) ++open;
    report.shards.push_back(std::move(e));
  }
  double max_bytes = 0;
  double max_records = 0;
  for (auto& e : report.shards) {
    e.bytes_share = total_bytes ? static_cast<double>(e.bytes) / total_bytes : 0;
    e.records_share = total_records ? static_cast<double>(e.records) / total_records : 0;
    max_bytes = std::max(max_bytes, e.bytes_share);
    max_records = std::max(max_records, e.records_share);
  }
  std::sort(report.shards.begin(), report.shards.end(), [](const auto& a, const auto& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.records > b.records;
  });
  const double n = static_cast<double>(std::max<size_t>(open, 1));
  report.bytes_skew = max_bytes * n;
  report.records_skew = max_records * n;
  return report;
}

}  // namespace kinlet
