// tests/model/reference_model.hpp: the stream semantics written the plain way,
// as the differential tests' oracle. Single-threaded, plain vectors, no ring,
// no atomics, no fast paths: every rule is a line that can be checked against
// ../shared/reference/kinesis-semantics.md. It never reclaims memory: a record
// is gone when retention says so, and that is all "trimmed" means here.
//
// What it models: PutRecord and PutRecords (validation, routing by hash key,
// per-shard positions, arrival times), GetShardIterator (all five types and
// their errors), GetRecords (limit, expiry, trimming, the end of a closed
// shard, millis_behind_latest), retention under a manual clock, SplitShard
// and MergeShards (rules, child ids, ranges, lineage), enhanced fan-out
// (consumer registration and its limit, SubscribeToShard from every position,
// events with continuation and lag: every event but a closed shard's final one
// has a continuation, the shard's starting position when nothing precedes the
// subscription's; the final event of a closed shard, the
// 5-minute lifetime, the 5-second takeover rule, deregistration), the
// per-shard throughput limits (writes: records and bytes per second, a record
// larger than a second's bytes passing a full bucket into debt; reads: calls
// per second and bytes per second with debt; GetShardIterator calls per
// second) and a shard's record capacity (a full shard refuses with
// ShardFullException, or drops its oldest record when overwriting; expired
// records make room first). Not modelled: on-demand scaling, the enhanced
// fan-out read budget, capacity in bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/hash_key.hpp"

namespace kinlet_model {

using kinlet::ErrorCode;
using kinlet::HashKey;

struct Record {
  uint64_t position = 0;
  int64_t arrival_ms = 0;
  std::string key;
  std::string data;
};

// A per-second allowance that holds at most one second's worth, starts full
// and refills continuously by the millisecond. Levels are in thousandths of a
// unit so that the refill is exact; a level below zero is a debt. Rate 0:
// unlimited.
struct Allowance {
  int64_t rate = 0;
  int64_t level = 0;  // thousandths
  int64_t at_ms = 0;

  void Catch(int64_t now_ms) {
    if (now_ms <= at_ms) return;
    level = std::min(rate * 1000, level + (now_ms - at_ms) * rate);
    at_ms = now_ms;
  }
  bool Has(int64_t n, int64_t now_ms) {
    if (rate == 0) return true;
    Catch(now_ms);
    return level >= n * 1000;
  }
  bool InCredit(int64_t now_ms) {
    if (rate == 0) return true;
    Catch(now_ms);
    return level > 0;
  }
  void Use(int64_t n, int64_t now_ms) {
    if (rate == 0) return;
    Catch(now_ms);
    level -= n * 1000;
  }
};

// Per shard, per second; 0 is unlimited.
struct Limits {
  int64_t write_records = 0;
  int64_t write_bytes = 0;
  int64_t read_calls = 0;
  int64_t read_bytes = 0;
  int64_t iterator_calls = 0;
};

struct Config {
  int shards = 2;
  int64_t retention_ms = 24 * 3600 * 1000;
  Limits limits;
  size_t capacity_records = 0;  // 0: unbounded
  bool overwrite = false;       // a full shard drops its oldest record instead of refusing
};

struct Shard {
  std::string id;
  HashKey start = 0;
  HashKey end = 0;
  std::optional<std::string> parent;
  std::optional<std::string> adjacent_parent;
  bool open = true;
  int64_t closed_ms = 0;
  std::vector<Record> records;
  std::vector<std::string> children;
  uint64_t dropped = 0;  // records [0, dropped) were dropped for capacity
  Allowance write_records, write_bytes, read_calls, read_bytes, iterator_calls;
};

struct Iterator {
  size_t shard = 0;
  uint64_t position = 0;
  int64_t issued_ms = 0;
};

struct PutResult {
  ErrorCode error = ErrorCode::kNone;
  size_t shard = 0;
  uint64_t position = 0;
};

struct Page {
  ErrorCode error = ErrorCode::kNone;
  std::vector<Record> records;
  std::optional<Iterator> next;
  std::vector<std::string> children;
  int64_t millis_behind_latest = 0;
};

// How a subscription's pull ends or what it returns.
enum class EventKind { kRecords, kHeartbeat, kShardEnd, kEnded };

struct Event {
  ErrorCode error = ErrorCode::kNone;  // when ended: why (kUnknown: a normal end, OutOfRange)
  EventKind kind = EventKind::kHeartbeat;
  std::vector<Record> records;
  // Position of the last record delivered (or of the one before the start);
  // at the shard's start (nothing before), position 0 with at_start set: the
  // shard's starting sequence number. Empty only in a shard's final event.
  std::optional<uint64_t> continuation;
  bool continuation_at_start = false;
  int64_t millis_behind_latest = 0;
  std::vector<std::string> children;
};

class Model {
 public:
  static constexpr int64_t kSubscriptionLifetimeMs = 5 * 60 * 1000;
  static constexpr int64_t kTakeoverAfterMs = 5 * 1000;
  static constexpr size_t kMaxConsumers = 20;
  static constexpr int64_t kIteratorTtlMs = 5 * 60 * 1000;
  static constexpr size_t kMaxRecordBytes = 1 << 20;
  static constexpr size_t kMaxBatchBytes = 5 << 20;
  static constexpr int kMaxBatchEntries = 500;

  // `shards` uniform shards over the hash key space, as CreateStream makes them.
  Model(int shards, int64_t retention_ms) : Model(MakeConfig(shards, retention_ms)) {}
  static Config MakeConfig(int shards, int64_t retention_ms) {
    Config c;
    c.shards = shards;
    c.retention_ms = retention_ms;
    return c;
  }
  explicit Model(const Config& config)
      : retention_ms_(config.retention_ms), limits_(config.limits), config_(config) {
    const int shards = config.shards;
    // Shard i starts at i * floor(2^128 / N); 2^128 = (2^128 - 1) + 1.
    const HashKey n = static_cast<unsigned>(shards);
    const HashKey step = kinlet::kMaxHashKey / n + (kinlet::kMaxHashKey % n == n - 1 ? 1 : 0);
    for (int i = 0; i < shards; ++i) {
      const HashKey start = step * static_cast<unsigned>(i);
      const HashKey end = i + 1 == shards ? kinlet::kMaxHashKey : start + step - 1;
      AddShard(start, end, std::nullopt, std::nullopt);
    }
  }

  const std::vector<Shard>& shards() const { return shards_; }

  // The error of a record that fails validation, kNone if it is valid.
  static ErrorCode Validate(std::string_view key, size_t data_size) {
    const int64_t chars = kinlet::detail::Utf8CodePoints(key);
    if (chars < 0) return ErrorCode::kInvalidArgument;  // not UTF-8
    if (chars < 1 || chars > 256) return ErrorCode::kValidation;
    if (data_size + key.size() > kMaxRecordBytes) return ErrorCode::kValidation;
    return ErrorCode::kNone;
  }

  PutResult Put(std::string_view key, std::string_view data, HashKey hash, int64_t now_ms) {
    if (ErrorCode e = Validate(key, data.size()); e != ErrorCode::kNone) return {e, 0, 0};
    return Append(key, data, hash, now_ms);
  }

  // A batch: all entries valid, or the call fails with the first error.
  struct Entry {
    std::string key;
    std::string data;
    HashKey hash;
  };
  // Entries fail one by one (throttled, shard full) without failing the call.
  std::pair<ErrorCode, std::vector<PutResult>> PutBatch(const std::vector<Entry>& entries,
                                                        int64_t now_ms) {
    if (entries.empty() || entries.size() > kMaxBatchEntries) return {ErrorCode::kValidation, {}};
    size_t total = 0;
    for (const Entry& e : entries) {
      if (ErrorCode err = Validate(e.key, e.data.size()); err != ErrorCode::kNone) {
        return {err, {}};
      }
      total += e.key.size() + e.data.size();
    }
    if (total > kMaxBatchBytes) return {ErrorCode::kInvalidArgument, {}};
    std::vector<PutResult> out;
    for (const Entry& e : entries) out.push_back(Append(e.key, e.data, e.hash, now_ms));
    return {ErrorCode::kNone, out};
  }

  // The shard with this id, if any.
  std::optional<size_t> Find(std::string_view id) const {
    for (size_t i = 0; i < shards_.size(); ++i) {
      if (shards_[i].id == id) return i;
    }
    return std::nullopt;
  }

  // The first position whose record is still there: neither dropped for
  // capacity nor expired (the end if none).
  uint64_t TrimHorizon(size_t shard, int64_t now_ms) const {
    const Shard& s = shards_[shard];
    for (uint64_t p = s.dropped; p < s.records.size(); ++p) {
      if (!Gone(s, p, now_ms)) return p;
    }
    return s.records.size();
  }

  // True if the stored record at `position` has been dropped or has expired.
  bool Gone(const Shard& s, uint64_t position, int64_t now_ms) const {
    return position < s.dropped || s.records[position].arrival_ms < now_ms - retention_ms_;
  }

  enum class Type { kTrimHorizon, kLatest, kAtSequence, kAfterSequence, kAtTimestamp };

  // `seq_shard`/`seq_position`: the shard index and position a sequence
  // number encodes; `seq_from_this_stream` false for a number of another stream.
  // GetShardIterator: takes one of the shard's iterator calls first.
  std::pair<ErrorCode, Iterator> GetShardIterator(std::string_view shard_id, Type type,
                                                  bool seq_from_this_stream, size_t seq_shard,
                                                  uint64_t seq_position, int64_t timestamp_ms,
                                                  int64_t now_ms) {
    const std::optional<size_t> found = Find(shard_id);
    if (!found || Deleted(*found, now_ms)) return {ErrorCode::kResourceNotFound, {}};
    Allowance& calls = shards_[*found].iterator_calls;
    if (!calls.Has(1, now_ms)) return {ErrorCode::kProvisionedThroughputExceeded, {}};
    calls.Use(1, now_ms);
    return Resolve(shard_id, type, seq_from_this_stream, seq_shard, seq_position, timestamp_ms,
                   now_ms);
  }

  // Where a starting position points (GetShardIterator's rules and errors).
  std::pair<ErrorCode, Iterator> Resolve(std::string_view shard_id, Type type,
                                         bool seq_from_this_stream, size_t seq_shard,
                                         uint64_t seq_position, int64_t timestamp_ms,
                                         int64_t now_ms) const {
    const std::optional<size_t> found = Find(shard_id);
    if (!found || Deleted(*found, now_ms)) return {ErrorCode::kResourceNotFound, {}};
    const Shard& s = shards_[*found];
    const uint64_t end = s.records.size();
    uint64_t at = 0;
    switch (type) {
      case Type::kTrimHorizon:
        at = TrimHorizon(*found, now_ms);
        break;
      case Type::kLatest:
        at = end;
        break;
      case Type::kAtSequence:
      case Type::kAfterSequence:
        if (!seq_from_this_stream || seq_shard != *found || seq_position >= end) {
          return {ErrorCode::kInvalidArgument, {}};
        }
        at = seq_position + (type == Type::kAfterSequence ? 1 : 0);
        break;
      case Type::kAtTimestamp: {
        if (timestamp_ms > now_ms) return {ErrorCode::kInvalidArgument, {}};
        at = end;
        for (const Record& r : s.records) {
          if (r.arrival_ms >= timestamp_ms) {
            at = r.position;
            break;
          }
        }
        at = std::max(at, TrimHorizon(*found, now_ms));
        break;
      }
    }
    return {ErrorCode::kNone, Iterator{*found, at, now_ms}};
  }

  // Reads take one of the shard's read calls, if its read bytes are not in
  // debt, and are charged the bytes they return afterwards (into debt).
  Page GetRecords(const Iterator& it, int limit, int64_t now_ms) {
    Page page;
    if (limit < 1 || limit > 10000) {
      page.error = ErrorCode::kValidation;
      return page;
    }
    if (Deleted(it.shard, now_ms)) {
      page.error = ErrorCode::kResourceNotFound;
      return page;
    }
    if (now_ms - it.issued_ms > kIteratorTtlMs) {
      page.error = ErrorCode::kExpiredIterator;
      return page;
    }
    Shard& s = shards_[it.shard];
    if (!s.read_bytes.InCredit(now_ms) || !s.read_calls.Has(1, now_ms)) {
      page.error = ErrorCode::kProvisionedThroughputExceeded;
      return page;
    }
    s.read_calls.Use(1, now_ms);
    const uint64_t end = s.records.size();
    if (it.position < end && Gone(s, it.position, now_ms)) {
      page.error = ErrorCode::kTrimmedDataAccess;
      return page;
    }
    uint64_t next = it.position;
    int64_t bytes = 0;
    while (next < end && page.records.size() < static_cast<size_t>(limit)) {
      const Record& r = s.records[next++];
      bytes += static_cast<int64_t>(r.key.size() + r.data.size());
      page.records.push_back(r);
    }
    if (bytes > 0) s.read_bytes.Use(bytes, now_ms);
    if (!s.open && next >= end) {
      page.children = s.children;
    } else {
      page.next = Iterator{it.shard, next, now_ms};
    }
    if (next < end)
      page.millis_behind_latest = std::max<int64_t>(0, now_ms - s.records[next].arrival_ms);
    return page;
  }

  ErrorCode Split(std::string_view shard_id, HashKey new_start, int64_t now_ms) {
    const std::optional<size_t> found = Find(shard_id);
    if (!found || Deleted(*found, now_ms)) return ErrorCode::kResourceNotFound;
    if (!shards_[*found].open) return ErrorCode::kInvalidArgument;
    const HashKey start = shards_[*found].start;
    const HashKey end = shards_[*found].end;
    if (!(start + 1 < new_start && new_start < end)) return ErrorCode::kInvalidArgument;
    Close(*found, now_ms);
    const std::string parent = shards_[*found].id;
    AddShard(start, new_start - 1, parent, std::nullopt);
    AddShard(new_start, end, parent, std::nullopt);
    shards_[*found].children = {shards_[shards_.size() - 2].id, shards_.back().id};
    return ErrorCode::kNone;
  }

  ErrorCode Merge(std::string_view shard_id, std::string_view adjacent_id, int64_t now_ms) {
    const std::optional<size_t> a = Find(shard_id);
    const std::optional<size_t> b = Find(adjacent_id);
    if (!a || !b || Deleted(*a, now_ms) || Deleted(*b, now_ms)) {
      return ErrorCode::kResourceNotFound;
    }
    if (!shards_[*a].open || !shards_[*b].open) return ErrorCode::kInvalidArgument;
    const Shard& x = shards_[*a];
    const Shard& y = shards_[*b];
    const bool adjacent = (x.end != kinlet::kMaxHashKey && x.end + 1 == y.start) ||
                          (y.end != kinlet::kMaxHashKey && y.end + 1 == x.start);
    if (!adjacent) return ErrorCode::kInvalidArgument;
    const HashKey start = std::min(x.start, y.start);
    const HashKey end = std::max(x.end, y.end);
    Close(*a, now_ms);
    Close(*b, now_ms);
    AddShard(start, end, shards_[*a].id, shards_[*b].id);
    shards_[*a].children = {shards_.back().id};
    shards_[*b].children = {shards_.back().id};
    return ErrorCode::kNone;
  }

  // ---- Enhanced fan-out ----------------------------------------------------

  ErrorCode RegisterConsumer(const std::string& name) {
    for (const std::string& c : consumers_) {
      if (c == name) return ErrorCode::kResourceInUse;
    }
    if (consumers_.size() >= kMaxConsumers) return ErrorCode::kLimitExceeded;
    consumers_.push_back(name);
    return ErrorCode::kNone;
  }

  // Ends the consumer's subscriptions (those whose lifetime is not over).
  ErrorCode DeregisterConsumer(const std::string& name, int64_t now_ms) {
    auto it = std::find(consumers_.begin(), consumers_.end(), name);
    if (it == consumers_.end()) return ErrorCode::kResourceNotFound;
    consumers_.erase(it);
    for (Subscription& sub : subscriptions_) {
      if (sub.consumer == name && !Over(sub, now_ms)) End(sub, ErrorCode::kResourceNotFound);
    }
    return ErrorCode::kNone;
  }

  // A new subscription's id, or the error. Positions resolve as for iterators.
  std::pair<ErrorCode, size_t> Subscribe(const std::string& consumer, std::string_view shard_id,
                                         Type type, bool seq_from_this_stream, size_t seq_shard,
                                         uint64_t seq_position, int64_t timestamp_ms,
                                         int64_t now_ms) {
    const std::optional<size_t> shard = Find(shard_id);
    if (!shard || Deleted(*shard, now_ms)) return {ErrorCode::kResourceNotFound, 0};
    if (std::find(consumers_.begin(), consumers_.end(), consumer) == consumers_.end()) {
      return {ErrorCode::kResourceNotFound, 0};
    }
    Subscription* previous = nullptr;
    for (Subscription& sub : subscriptions_) {
      if (sub.consumer == consumer && sub.shard == *shard && sub.current) previous = &sub;
    }
    if (previous != nullptr && !Over(*previous, now_ms) &&
        now_ms - previous->started_ms < kTakeoverAfterMs) {
      return {ErrorCode::kResourceInUse, 0};
    }
    auto [error, it] = Resolve(shard_id, type, seq_from_this_stream, seq_shard, seq_position,
                               timestamp_ms, now_ms);
    if (error != ErrorCode::kNone) return {error, 0};
    if (previous != nullptr) {
      previous->current = false;
      if (!Over(*previous, now_ms)) End(*previous, ErrorCode::kResourceInUse);  // taken over
    }
    subscriptions_.push_back(Subscription{consumer, *shard, it.position, now_ms});
    return {ErrorCode::kNone, subscriptions_.size() - 1};
  }

  // The next position subscription `id` delivers.
  uint64_t Position(size_t id) const { return subscriptions_[id].position; }

  // The caller dropped subscription `id` (kinlet: destroying the handle).
  void Cancel(size_t id) {
    if (!subscriptions_[id].ended) End(subscriptions_[id], ErrorCode::kUnknown);
  }

  // The next event of subscription `id` without waiting.
  Event Next(size_t id, int64_t now_ms) {
    Subscription& sub = subscriptions_[id];
    Event event;
    // Whichever came first ends it: the shard's deletion or the lifetime.
    const bool lifetime_over = now_ms - sub.started_ms >= kSubscriptionLifetimeMs;
    if (!sub.ended && Deleted(sub.shard, now_ms) &&
        !(lifetime_over && sub.started_ms + kSubscriptionLifetimeMs <
                               shards_[sub.shard].closed_ms + retention_ms_ + 1)) {
      End(sub, ErrorCode::kResourceNotFound);
    }
    if (!sub.ended && now_ms - sub.started_ms >= kSubscriptionLifetimeMs) {
      End(sub, ErrorCode::kUnknown);
    }
    if (sub.ended) {
      event.kind = EventKind::kEnded;
      event.error = sub.why;
      return event;
    }
    const Shard& s = shards_[sub.shard];
    const uint64_t end = s.records.size();
    if (sub.position < end) {
      if (Gone(s, sub.position, now_ms)) {
        End(sub, ErrorCode::kTrimmedDataAccess);
        event.kind = EventKind::kEnded;
        event.error = sub.why;
        return event;
      }
      event.kind = EventKind::kRecords;
      while (sub.position < end && event.records.size() < 10000) {
        event.records.push_back(s.records[sub.position++]);
      }
      event.continuation = sub.position - 1;
      if (sub.position < end) {
        event.millis_behind_latest =
            std::max<int64_t>(0, now_ms - s.records[sub.position].arrival_ms);
      }
      return event;
    }
    if (!s.open) {
      event.kind = EventKind::kShardEnd;
      event.children = s.children;
      End(sub, ErrorCode::kUnknown);
      return event;
    }
    event.continuation = sub.position > 0 ? sub.position - 1 : 0;
    event.continuation_at_start = sub.position == 0;
    return event;  // a heartbeat
  }

 private:
  struct Subscription {
    std::string consumer;
    size_t shard = 0;
    uint64_t position = 0;  // the next record to deliver
    int64_t started_ms = 0;
    bool current = true;  // the consumer's latest subscription to the shard
    bool ended = false;
    ErrorCode why = ErrorCode::kNone;
  };

  static void End(Subscription& sub, ErrorCode why) {
    sub.ended = true;
    sub.why = why;
  }
  bool Over(const Subscription& sub, int64_t now_ms) const {
    return sub.ended || now_ms - sub.started_ms >= kSubscriptionLifetimeMs;
  }

  std::vector<std::string> consumers_;
  std::vector<Subscription> subscriptions_;

  static std::string IdFor(size_t index) {
    std::string digits = std::to_string(index);
    return "shardId-" + std::string(12 - digits.size(), '0') + digits;
  }

  void AddShard(HashKey start, HashKey end, std::optional<std::string> parent,
                std::optional<std::string> adjacent) {
    Shard s;
    // Allowances start full (the time they start at does not matter: full
    // is as full as they get).
    for (auto [a, rate] : {std::pair{&s.write_records, limits_.write_records},
                           std::pair{&s.write_bytes, limits_.write_bytes},
                           std::pair{&s.read_calls, limits_.read_calls},
                           std::pair{&s.read_bytes, limits_.read_bytes},
                           std::pair{&s.iterator_calls, limits_.iterator_calls}}) {
      a->rate = rate;
      a->level = rate * 1000;
    }
    s.id = IdFor(shards_.size());
    s.start = start;
    s.end = end;
    s.parent = std::move(parent);
    s.adjacent_parent = std::move(adjacent);
    shards_.push_back(std::move(s));
  }

  void Close(size_t shard, int64_t now_ms) {
    shards_[shard].open = false;
    shards_[shard].closed_ms = now_ms;
  }

 public:
  // A closed shard is deleted once every record in it is past retention
  // (AWS): from then on every call naming it is ResourceNotFound.
  bool Deleted(size_t shard, int64_t now_ms) const {
    const Shard& s = shards_[shard];
    return !s.open && s.closed_ms < now_ms - retention_ms_;
  }

 private:
  PutResult Append(std::string_view key, std::string_view data, HashKey hash, int64_t now_ms) {
    for (size_t i = 0; i < shards_.size(); ++i) {
      Shard& s = shards_[i];
      if (!s.open || hash < s.start || hash > s.end) continue;
      const PutResult refused{ErrorCode::kProvisionedThroughputExceeded, i, 0};
      const int64_t bytes = static_cast<int64_t>(key.size() + data.size());
      if (!s.write_records.Has(1, now_ms)) return refused;
      // A record larger than a second's bytes needs a full allowance.
      if (!s.write_bytes.Has(std::min(bytes, s.write_bytes.rate), now_ms)) return refused;
      if (config_.capacity_records > 0) {
        // Make room: expired records first, then (overwriting) the oldest.
        while (s.records.size() - s.dropped >= config_.capacity_records) {
          const bool expired = s.records[s.dropped].arrival_ms < now_ms - retention_ms_;
          if (!expired && !config_.overwrite) return {ErrorCode::kShardFull, i, 0};
          ++s.dropped;
        }
      }
      s.write_records.Use(1, now_ms);
      s.write_bytes.Use(bytes, now_ms);
      const int64_t last = s.records.empty() ? now_ms : s.records.back().arrival_ms;
      s.records.push_back(
          Record{s.records.size(), std::max(now_ms, last), std::string(key), std::string(data)});
      return {ErrorCode::kNone, i, s.records.size() - 1};
    }
    return {ErrorCode::kInternalFailure, 0, 0};  // unreachable: open shards cover the space
  }

  int64_t retention_ms_;
  Limits limits_;
  Config config_;
  std::vector<Shard> shards_;
};

}  // namespace kinlet_model
