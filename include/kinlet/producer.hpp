// kinlet/producer.hpp: a batching producer (what the KPL gives Kinesis
// users), over any KinesisStream (stream_concept.hpp): an in-process Stream
// or a remote one.
//
//   auto producer = kinlet::MakeProducer(stream.get(), kinlet::ProducerOptions{});
//   std::future<absl::StatusOr<kinlet::ProducerResult>> f = (*producer)->Put("user-7", "clicked");
//   ...
//   (*producer)->Flush();        // everything put so far is acknowledged
//
// Put copies the record and returns at once; the record's outcome (its shard
// and sequence number, or its final error) comes through the future or the
// callback. Records are collected per shard (routed with the shard map from
// ListShards's hash key ranges and the stream's partition key hasher, when
// the stream names one; refreshed after a reshard is noticed, i.e. a record
// landed on another shard than predicted, and after a request-level error)
// into PutRecords requests of at most max_records_per_request records and
// max_bytes_per_request bytes, sent when full or once their oldest record has
// waited `linger` (stream clock), or at once on Flush and shutdown.
//
// Per-key order: a partition key's later record is never written before an
// earlier one, across retries too. Kinesis writes a request's entries
// independently (one may be throttled while the next is written), so a key
// has at most ONE record in flight at a time: its next record is sent once
// the previous one is acknowledged (written, or failed for good). A key
// lives on one shard, whose write limit (1000 records/s) is the real bound
// of a single key's rate anyway; distinct keys are batched freely.
//
// Retries: entries that fail with a retryable error (throttling, full shard,
// InternalFailure; or the whole request with one of those or a transport
// error: Unavailable, DeadlineExceeded) are sent again, alone of their key,
// after a backoff (retry: exponential, full jitter, per record), until
// retry.max_attempts or record_ttl. Duplicates: a record is written twice
// only when a request's outcome is lost (a transport error after the endpoint
// wrote it: never in-process); then the retry writes it again, as the KPL.
// Other errors fail the record at once (its future holds the error).
//
// Back-pressure: at most max_buffered_records records (and
// max_buffered_bytes bytes) are held, unacknowledged; beyond, Put blocks
// until there is room (kBlock) or fails at once with LimitExceededException
// "Producer buffer is full" (kFail).
//
// Threads: one sender thread per producer forms the requests; each request
// runs on that thread (one at a time) or, with `executor`, as a task on it,
// up to max_in_flight_requests at once. Futures are made ready, and callbacks
// run, on the thread that completed the request (the sender thread or an
// executor task) and, for records refused by Put itself, on Put's caller:
// keep callbacks short and do not call Flush/Shutdown from them.
//
// Thread safety: Put, Flush, stats are thread-safe. Shutdown (and the
// destructor, which calls it) flushes every record put before it, waits for
// their outcomes, then stops the thread: nothing acknowledged to the
// producer (Put returned) is lost. Put after Shutdown fails with
// ShutdownException. The stream must outlive the producer and be
// thread-safe (Stream and RemoteStream are).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "kinlet/errors.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/put_records.hpp"
#include "kinlet/retry.hpp"
#include "kinlet/stream.hpp"
#include "kinlet/stream_concept.hpp"

namespace kinlet {

struct ProducerOptions {
  // How long a record may wait for its request to fill (the KPL's
  // RecordMaxBufferedTime), by the stream's clock.
  absl::Duration linger = absl::Milliseconds(100);
  int max_records_per_request = 500;        // 1..500
  size_t max_bytes_per_request = 5u << 20;  // keys + data, 1..5 MiB
  int max_in_flight_requests = 4;           // with an executor; else 1
  size_t max_buffered_records = 100000;     // unacknowledged records, >= 1
  size_t max_buffered_bytes = 256u << 20;   // unacknowledged bytes
  enum class WhenFull { kBlock, kFail };
  WhenFull when_full = WhenFull::kBlock;
  // Per-record retries (jitter_seed mixed with the record); deadline unused:
  // record_ttl bounds a record's life (the KPL's RecordTtl).
  RetryOptions retry = DefaultRetry();
  absl::Duration record_ttl = absl::Seconds(30);
  // Runs a request (see Threads above); empty: on the sender thread.
  std::function<void(std::function<void()>)> executor;
  // The largest record accepted (key + data), as the stream's limit.
  size_t max_record_size = 1u << 20;

  static RetryOptions DefaultRetry() {
    RetryOptions retry;
    retry.max_attempts = 100;
    return retry;
  }
};

struct ProducerResult {
  std::string shard_id;
  SequenceNumber sequence_number;
  int attempts = 1;  // PutRecords attempts it took
};

struct ProducerStats {
  uint64_t records_put = 0;      // accepted by Put
  uint64_t records_written = 0;  // acknowledged by the stream
  uint64_t records_failed = 0;   // failed for good (or refused by Put)
  uint64_t entry_retries = 0;    // records sent again
  uint64_t requests_sent = 0;    // PutRecords calls
  uint64_t shard_map_refreshes = 0;
  int max_in_flight_seen = 0;
};

namespace detail {

// The partition key hasher a stream places records with, if it says:
// Stream<P, T>'s T::Hasher, or S::Hasher; void when unknown (the producer
// then batches without routing, one bucket for every shard).
template <typename S>
struct StreamHasher {
  using type = void;
};
template <typename S>
requires requires { typename S::Hasher; }
struct StreamHasher<S> {
  using type = typename S::Hasher;
};
template <RecordPayload P, StreamTraits T>
struct StreamHasher<Stream<P, T>> {
  using type = typename T::Hasher;
};

}  // namespace detail

template <typename S>
class Producer {
  static_assert(KinesisStream<S>, "Producer needs a KinesisStream (stream_concept.hpp)");
  static_assert(std::is_same_v<typename S::View, std::string_view>,
                "Producer writes byte payloads (streams of std::string)");

 public:
  using Result = absl::StatusOr<ProducerResult>;
  using Callback = std::function<void(Result)>;

  // Starts the sender thread. InvalidArgumentException for options out of
  // range or a null stream.
  static absl::StatusOr<std::unique_ptr<Producer>> Create(S* stream, ProducerOptions options) {
    if (stream == nullptr) return InvalidArgument("a stream is required");
    if (options.max_records_per_request < 1 || options.max_records_per_request > 500 ||
        options.max_bytes_per_request < 1 || options.max_bytes_per_request > (5u << 20) ||
        options.max_in_flight_requests < 1 || options.max_buffered_records < 1 ||
        options.max_buffered_bytes < 1 || options.linger < absl::ZeroDuration() ||
        options.retry.max_attempts < 1) {
      return InvalidArgument(
          "producer options: max_records_per_request 1..500, max_bytes_per_request 1..5 MiB, "
          "max_in_flight_requests >= 1, buffers >= 1, linger >= 0, retry.max_attempts >= 1");
    }
    std::unique_ptr<Producer> producer(new Producer(stream, std::move(options)));
    producer->sender_ = std::thread([p = producer.get()] { p->SenderLoop(); });
    return producer;
  }

  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  ~Producer() { (void)Shutdown(); }

  // Queues a record; its outcome comes through the future. Refused at once
  // (a ready future): ValidationException/InvalidArgumentException for a bad
  // key or a record over max_record_size; LimitExceededException when the
  // buffer is full (kFail); ShutdownException after Shutdown.
  std::future<Result> Put(std::string_view partition_key, std::string_view data,
                          std::optional<HashKey> explicit_hash_key = std::nullopt) {
    auto promise = std::make_shared<std::promise<Result>>();
    std::future<Result> future = promise->get_future();
    (void)Put(  // an error also reaches the promise
        partition_key, data, [promise](Result r) { promise->set_value(std::move(r)); },
        explicit_hash_key);
    return future;
  }

  // As above, with a callback (see Threads at the top). Returns OK when the
  // record was queued, else the error also given to the callback.
  absl::Status Put(std::string_view partition_key, std::string_view data, Callback done,
                   std::optional<HashKey> explicit_hash_key = std::nullopt) {
    absl::Status refused = detail::ValidateRecord(partition_key, data.size(), -1,
                                                  options_.max_record_size, stream_->name());
    auto item = std::make_unique<Item>();
    if (refused.ok()) {
      item->key = std::string(partition_key);
      item->data = std::string(data);
      item->explicit_hash_key = explicit_hash_key;
      item->done = std::move(done);
      std::unique_lock<std::mutex> lock(mu_);
      const size_t bytes = item->key.size() + item->data.size();
      auto fits = [&] {
        return buffered_records_ == 0 || (buffered_records_ < options_.max_buffered_records &&
                                          buffered_bytes_ + bytes <= options_.max_buffered_bytes);
      };
      if (!fits() && !shutting_down_ && options_.when_full == ProducerOptions::WhenFull::kBlock) {
        room_cv_.wait(lock, [&] { return shutting_down_ || fits(); });
      }
      if (shutting_down_) {
        refused = ShutdownError("The producer was shut down");
      } else if (!fits()) {
        refused = LimitExceeded(
            absl::StrCat("Producer buffer is full (", buffered_records_, " records, ",
                         buffered_bytes_, " bytes unacknowledged; limits ",
                         options_.max_buffered_records, " and ", options_.max_buffered_bytes, ")"));
      } else {
        Accept(std::move(item), bytes);
        lock.unlock();
        work_cv_.notify_one();
        return absl::OkStatus();
      }
      done = std::move(item->done);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.records_failed;
    }
    if (done) done(refused);
    return refused;
  }

  // Sends every record put before the call at once (without waiting for
  // linger) and waits until each has its outcome. Thread-safe; returns OK
  // (records' errors are in their futures).
  absl::Status Flush() {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t target = next_seq_;
    ++flushing_;
    work_cv_.notify_one();
    done_cv_.wait(lock, [&] { return outstanding_.empty() || *outstanding_.begin() >= target; });
    --flushing_;
    return absl::OkStatus();
  }

  // Flushes, then stops the sender thread; later Puts fail. Idempotent;
  // thread-safe (not from a callback).
  absl::Status Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutting_down_ = true;
    }
    room_cv_.notify_all();
    work_cv_.notify_all();
    std::lock_guard<std::mutex> join(join_mu_);
    if (sender_.joinable()) sender_.join();
    return absl::OkStatus();
  }

  ProducerStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  struct Item {
    std::string key;
    std::string data;
    std::optional<HashKey> explicit_hash_key;
    Callback done;
    uint64_t seq = 0;           // arrival order
    int64_t arrived_ms = 0;     // stream clock
    int64_t not_before_ms = 0;  // retry backoff
    int attempts = 0;
    std::string predicted_shard;
    uint64_t routed_with = 0;  // map_version_ of predicted_shard (0: never)
    std::optional<Backoff> backoff;
  };
  // A key's records in arrival order; only the front may be in flight.
  struct KeyQueue {
    std::deque<std::unique_ptr<Item>> items;
    bool in_flight = false;
  };
  struct Request {
    std::vector<Item*> items;
    std::vector<typename S::Entry> entries;
  };
  struct Completion {
    Callback done;
    Result result;
    uint64_t seq;
  };

  Producer(S* stream, ProducerOptions options) : stream_(stream), options_(std::move(options)) {}

  int64_t NowMs() const { return NowMillis(*stream_->clock()); }

  // Under mu_.
  void Accept(std::unique_ptr<Item> item, size_t bytes) {
    item->seq = next_seq_++;
    item->arrived_ms = NowMs();
    outstanding_.insert(item->seq);
    buffered_records_ += 1;
    buffered_bytes_ += bytes;
    ++stats_.records_put;
    KeyQueue& q = keys_[item->key];
    q.items.push_back(std::move(item));
    if (q.items.size() == 1 && !q.in_flight) ready_.emplace(q.items.front()->seq, &q);
  }

  // Under mu_: the shard `item` should land on ("" without a shard map).
  std::string Route(const Item& item) {
    using Hasher = typename detail::StreamHasher<S>::type;
    if constexpr (std::is_void_v<Hasher>) {
      (void)item;
      return std::string();
    } else {
      const HashKey hash =
          item.explicit_hash_key ? *item.explicit_hash_key : Hasher::Hash(item.key);
      auto it = shard_map_.upper_bound(hash);  // first range starting after hash
      if (it == shard_map_.begin()) return std::string();
      --it;
      return it->second.first.Contains(hash) ? it->second.second : std::string();
    }
  }

  // Under mu_ (ListShards is a call to the stream: quick in-process; remote,
  // it happens only after a reshard was noticed or a request failed).
  void RefreshShardMap() {
    refresh_map_ = false;
    ++map_version_;
    ++stats_.shard_map_refreshes;
    ListShardsRequest request;
    request.filter = ShardFilter::AtLatest();
    absl::StatusOr<std::vector<ShardDescription>> shards = ListAllShards(*stream_, request);
    shard_map_.clear();
    if (!shards.ok()) return;  // no map: one bucket until the next refresh
    for (const ShardDescription& d : *shards) {
      shard_map_[d.hash_key_range.starting_hash_key] = {d.hash_key_range, d.shard_id};
    }
  }

  // Under mu_: moves retries that are due back to ready_.
  void WakeDelayed(int64_t now) {
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      KeyQueue* q = delayed_.begin()->second;
      delayed_.erase(delayed_.begin());
      ready_.emplace(q->items.front()->seq, q);
    }
  }

  // Under mu_: the requests to send now (at most `slots`).
  std::vector<std::unique_ptr<Request>> TakeRequests(int slots, bool force, int64_t now) {
    std::vector<std::unique_ptr<Request>> out;
    if (slots <= 0 || ready_.empty()) return out;
    struct Bucket {
      std::unique_ptr<Request> request = std::make_unique<Request>();
      size_t bytes = 0;
      int64_t oldest_ms = 0;
      std::vector<KeyQueue*> queues;
    };
    std::map<std::string, Bucket> buckets;
    // Once `slots` requests (or every possible one: one per shard, plus the
    // unrouted) are full, no more can be sent this round: the scan stops there
    // (oldest records first) instead of walking every buffered key.
    int full_buckets = 0;
    const int possible_buckets = std::is_void_v<typename detail::StreamHasher<S>::type>
                                     ? 1
                                     : static_cast<int>(shard_map_.size()) + 1;
    const int enough = std::min(slots, possible_buckets);
    for (auto it = ready_.begin(); it != ready_.end() && full_buckets < enough; ++it) {
      Item* item = it->second->items.front().get();
      if (refresh_map_) RefreshShardMap();
      if (item->routed_with != map_version_) {
        item->predicted_shard = Route(*item);
        item->routed_with = map_version_;
      }
      Bucket& b = buckets[item->predicted_shard];
      const size_t bytes = item->key.size() + item->data.size();
      if (static_cast<int>(b.request->items.size()) >= options_.max_records_per_request ||
          b.bytes + bytes > options_.max_bytes_per_request) {
        continue;  // this shard's request is full: the record waits for the next
      }
      if (b.request->items.empty()) b.oldest_ms = item->arrived_ms;
      b.request->items.push_back(item);
      b.queues.push_back(it->second);
      b.bytes += bytes;
      if (static_cast<int>(b.request->items.size()) >= options_.max_records_per_request) {
        ++full_buckets;
      }
    }
    const int64_t linger_ms = absl::ToInt64Milliseconds(options_.linger);
    for (auto& [shard, b] : buckets) {
      if (static_cast<int>(out.size()) >= slots) break;
      const bool is_full =
          static_cast<int>(b.request->items.size()) >= options_.max_records_per_request ||
          b.bytes * 10 >= options_.max_bytes_per_request * 9;
      if (!force && !is_full && now - b.oldest_ms < linger_ms) continue;
      for (size_t i = 0; i < b.queues.size(); ++i) {
        KeyQueue* q = b.queues[i];
        q->in_flight = true;
        ready_.erase(q->items.front()->seq);
        Item* item = b.request->items[i];
        b.request->entries.push_back(
            typename S::Entry{item->key, item->data, item->explicit_hash_key});
        if (item->attempts++ > 0) ++stats_.entry_retries;
      }
      out.push_back(std::move(b.request));
    }
    return out;
  }

  // Under mu_: when the sender should look again (stream clock), if ever.
  std::optional<int64_t> NextWakeMs() const {
    std::optional<int64_t> wake;
    if (!ready_.empty()) {
      int64_t oldest = ready_.begin()->second->items.front()->arrived_ms;
      wake = oldest + absl::ToInt64Milliseconds(options_.linger);
    }
    if (!delayed_.empty()) {
      wake = wake ? std::min(*wake, delayed_.begin()->first) : delayed_.begin()->first;
    }
    return wake;
  }

  void SenderLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      const int64_t now = NowMs();
      WakeDelayed(now);
      const bool force = flushing_ > 0 || shutting_down_;
      const int limit = options_.executor ? options_.max_in_flight_requests : 1;
      std::vector<std::unique_ptr<Request>> requests = TakeRequests(limit - in_flight_, force, now);
      if (!requests.empty()) {
        in_flight_ += static_cast<int>(requests.size());
        stats_.requests_sent += requests.size();
        stats_.max_in_flight_seen = std::max(stats_.max_in_flight_seen, in_flight_);
        lock.unlock();
        for (auto& r : requests) {
          if (options_.executor) {
            std::shared_ptr<Request> shared(std::move(r));
            options_.executor([this, shared] { Send(*shared); });
          } else {
            Send(*r);
          }
        }
        lock.lock();
        continue;
      }
      if (shutting_down_ && outstanding_.empty() && in_flight_ == 0) return;
      // Sleep until new work, a completion, or the next linger/backoff
      // deadline; at most 5 ms, so that a simulated clock moved by a test is
      // noticed.
      // (Nothing sent although a deadline passed: every request slot is
      // taken; a completion notifies.) Always waits, releasing mu_.
      std::optional<int64_t> wake = NextWakeMs();
      int64_t wait_ms = 5;
      if (wake) wait_ms = std::clamp<int64_t>(*wake - now, 1, 5);
      work_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms));
    }
  }

  static bool RetryableRequestError(const absl::Status& s) {
    return IsRetryableWriteError(s) || absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) ||
           absl::IsResourceExhausted(s);
  }

  // Sends one request and records every entry's outcome. Runs on the sender
  // thread or an executor task, without mu_.
  void Send(Request& request) {
    PutRecordsResult result;
    const absl::Status status =
        stream_->PutRecords(std::span<const typename S::Entry>(request.entries), &result);
    std::vector<Completion> completions;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const int64_t now = NowMs();
      if (!status.ok()) refresh_map_ = true;
      for (size_t i = 0; i < request.items.size(); ++i) {
        Item* item = request.items[i];
        absl::Status error = status;
        if (status.ok()) {
          const PutRecordsResultEntry& r = result.records[i];
          if (r.ok()) {
            if (!item->predicted_shard.empty() && r.shard_id != item->predicted_shard) {
              refresh_map_ = true;  // resharded since the map was read
            }
            ++stats_.records_written;
            completions.push_back(
                {std::move(item->done),
                 ProducerResult{std::string(r.shard_id), r.sequence_number, item->attempts},
                 item->seq});
            Finish(item);
            continue;
          }
          error = MakeEntryError(r);
        }
        const bool retryable =
            status.ok() ? IsRetryableWriteError(error) : RetryableRequestError(error);
        const bool expired =
            now - item->arrived_ms >= absl::ToInt64Milliseconds(options_.record_ttl);
        if (retryable && item->attempts < options_.retry.max_attempts && !expired) {
          if (!item->backoff) {
            RetryOptions retry = options_.retry;
            retry.jitter_seed ^= (item->seq + 1) * 0x9E3779B97F4A7C15ull;
            item->backoff.emplace(retry);
          }
          // Rounded up: a sub-millisecond backoff still waits (ms clock).
          item->not_before_ms = now + absl::ToInt64Milliseconds(
                                          absl::Ceil(item->backoff->Next(), absl::Milliseconds(1)));
          KeyQueue& q = keys_[item->key];
          q.in_flight = false;
          delayed_.emplace(item->not_before_ms, &q);
          continue;
        }
        ++stats_.records_failed;
        completions.push_back({std::move(item->done), error, item->seq});
        Finish(item);
      }
    }
    room_cv_.notify_all();
    for (Completion& c : completions) {
      if (c.done) c.done(std::move(c.result));
    }
    // Only now are the outcomes delivered: Flush and Shutdown may return
    // (the producer may be destroyed once mu_ is released: touch nothing
    // after it).
    std::lock_guard<std::mutex> lock(mu_);
    for (const Completion& c : completions) outstanding_.erase(c.seq);
    --in_flight_;
    work_cv_.notify_one();
    done_cv_.notify_all();
  }

  static absl::Status MakeEntryError(const PutRecordsResultEntry& r) {
    switch (r.error_code) {
      case ErrorCode::kProvisionedThroughputExceeded:
        return ProvisionedThroughputExceeded(r.error_message);
      case ErrorCode::kShardFull:
        return ShardFull(r.error_message);
      case ErrorCode::kInternalFailure:
        return InternalFailure(r.error_message);
      default:
        return InternalFailure(r.error_message.empty() ? "PutRecords entry failed"
                                                       : r.error_message);
    }
  }

  // Under mu_: `item` (the front of its key's queue) has its outcome; the
  // key's next record becomes ready.
  void Finish(Item* item) {
    auto it = keys_.find(item->key);
    KeyQueue& q = it->second;
    buffered_records_ -= 1;
    buffered_bytes_ -= item->key.size() + item->data.size();
    q.items.pop_front();  // destroys *item
    q.in_flight = false;
    if (q.items.empty()) {
      keys_.erase(it);
    } else {
      ready_.emplace(q.items.front()->seq, &q);
    }
  }

  S* const stream_;
  const ProducerOptions options_;

  // Everything below is guarded by mu_ (Put's callers, the sender thread and
  // executor tasks all take it; callbacks run without it).
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // sender: new work, completions, flush, shutdown
  std::condition_variable room_cv_;  // blocked Puts: buffer space, shutdown
  std::condition_variable done_cv_;  // Flush: outcomes
  // Keys with unacknowledged records (node-stable: ready_/delayed_ point in).
  std::unordered_map<std::string, KeyQueue> keys_;
  std::map<uint64_t, KeyQueue*> ready_;        // sendable fronts, by arrival
  std::multimap<int64_t, KeyQueue*> delayed_;  // fronts waiting for a retry
  std::set<uint64_t> outstanding_;             // seqs without an outcome
  std::map<HashKey, std::pair<HashKeyRange, std::string>> shard_map_;
  bool refresh_map_ = true;
  uint64_t map_version_ = 0;
  uint64_t next_seq_ = 0;
  size_t buffered_records_ = 0;
  size_t buffered_bytes_ = 0;
  int in_flight_ = 0;
  int flushing_ = 0;
  bool shutting_down_ = false;
  ProducerStats stats_;

  std::mutex join_mu_;  // serialises Shutdown's join
  std::thread sender_;
};

// Deduces the producer type from the stream. As Producer<S>::Create.
template <typename S>
absl::StatusOr<std::unique_ptr<Producer<S>>> MakeProducer(S* stream, ProducerOptions options = {}) {
  return Producer<S>::Create(stream, std::move(options));
}

}  // namespace kinlet
