// kinlet/remote/remote_stream.hpp: a Kinesis data stream on an endpoint
// (Amazon Kinesis, kinlet-gateway, kinesalite, kinesis-mock) with the calls,
// results and errors of kinlet::Stream<std::string>.
//
//   kinlet::remote::RemoteOptions options;
//   options.endpoint = "https://kinesis.eu-west-1.amazonaws.com";
//   options.region = "eu-west-1";
//   options.credentials = my_provider;  // kinlet/remote/credentials.hpp
//   auto registry = kinlet::remote::RemoteRegistry::Create(options).value();
//   auto stream = registry->GetStream("clickstream-data").value();
//   auto put = stream->PutRecord("user123", R"({"event":"viewed_product"})");
//   auto it = stream->GetShardIterator(std::string(put->shard_id),
//                 kinlet::IteratorPosition::AtSequenceNumber(put->sequence_number));
//   auto page = stream->GetRecords(*it, /*limit=*/100);
//
// Every call is one Kinesis JSON 1.1 request (POST /, X-Amz-Target
// Kinesis_20131202.<Operation>, SigV4-signed with kinlet::wire::SignRequest),
// or a few for the unpaged forms (ListShards(), DescribeStream(),
// ListStreamConsumers(), ListTagsForStream() follow the pages). Results are
// kinlet's types: SequenceNumber and HashKey parsed from the wire's decimal
// strings, times from epoch seconds. Errors are kinlet's statuses mapped from
// AWS's `__type` (kinlet/remote/remote_errors.hpp: the same absl codes and
// predicates as in-process, AWS's message kept); a transport failure
// (connection, TLS, timeout) is kUnavailable. Throttling and transient errors
// are retried as the AWS SDKs' standard mode (RetryPolicy).
//
// Differences from Stream<std::string>, forced by the remote side:
//  - Shard iterators are AWS's opaque strings (up to 512 characters), which
//    kinlet's ShardIterator (a sealed 32-byte value of this process) cannot
//    hold: GetShardIterator returns a RemoteShardIterator (ToString()/Parse()
//    as ShardIterator, plus the shard it reads and when it was received), and
//    GetRecords pages are RemoteGetRecordsResult (the same fields as
//    GetRecordsResult<std::string> with a RemoteShardIterator).
//  - PutRecordResult::shard_id views a string interned by the RemoteStream:
//    valid as long as the RemoteStream, as in-process.
//  - There is no in-process state to reach: no GetShard/OpenShards handles,
//    metrics, fault injection or HasRecords/WaitForRecords.
//
// RemoteStream satisfies kinlet::KinesisStream and kinlet::FanOutStream
// (kinlet/stream_concept.hpp): StreamConsumer<RemoteStream>,
// StreamConsumerGroup<RemoteStream>, PutRecordWithRetry and
// Producer<RemoteStream> run over it unchanged. Its clock is the wall clock
// (SystemClock): lease expiry and backoffs of consumer groups in several
// processes or hosts compare wall-clock times, as the KCL's do.
//
// Thread safety: every method is thread-safe. Lifetime: a RemoteStream keeps
// its client (connections, credentials) alive; subscriptions keep it alive too.
#pragma once

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kinlet/clock.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/fan_out.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/md5_hasher.hpp"
#include "kinlet/put_records.hpp"
#include "kinlet/record.hpp"
#include "kinlet/remote/config.hpp"
#include "kinlet/remote/credentials.hpp"
#include "kinlet/remote/http_client.hpp"
#include "kinlet/resharding.hpp"
#include "kinlet/retry.hpp"
#include "kinlet/sequence_number.hpp"
#include "kinlet/shard_iterator.hpp"
#include "kinlet/stream_options.hpp"

namespace kinlet::remote {

// The AWS SDKs' "standard" retry mode.
struct RetryPolicy {
  // Attempts per call, the first included (the SDKs' default: 3).
  int max_attempts = 3;
  // Backoff before retry n (n = 1, 2, ...): uniform in [0, min(max_backoff,
  // base * 2^(n-1))] ("full jitter"); `throttle_base_delay` for throttling
  // errors, `base_delay` for transient ones.
  absl::Duration base_delay = absl::Milliseconds(100);
  absl::Duration throttle_base_delay = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(20);
  // The retry quota (a token bucket shared by the client's calls): a retry
  // takes `retry_cost` tokens (`timeout_retry_cost` after a timeout) and is not
  // made when the bucket has fewer; a call that succeeds gives back what its
  // retries took, or `success_refund` when it needed none.
  int quota_capacity = 500;
  int retry_cost = 5;
  int timeout_retry_cost = 10;
  int success_refund = 1;
  // Each call (all its attempts and backoffs) ends by this deadline; each
  // attempt also by attempt_timeout. A retry whose backoff would pass the
  // deadline is not made.
  absl::Duration call_timeout = absl::Seconds(60);
  absl::Duration attempt_timeout = absl::Seconds(30);
};

struct RemoteOptions {
  // "https://host[:port]" (or http://). Empty: https://kinesis.<region>.amazonaws.com
  // (.cn for cn- regions).
  std::string endpoint;
  std::string region = "us-east-1";
  // Required: signs every request.
  std::shared_ptr<CredentialsProvider> credentials;
  HttpClientOptions http;  // HTTP version, TLS, connect timeout
  RetryPolicy retry;
};

// RemoteOptions as an AWS SDK configures a client, so operators need nothing
// new: region and endpoint by ResolveRemoteConfig(config) (options, then
// AWS_REGION / AWS_ENDPOINT_URL_<config.service> / AWS_ENDPOINT_URL, then the
// shared files' profile; kinlet/remote/config.hpp), credentials by a
// DefaultCredentialsChain for that profile (explicit keys in `credentials`,
// the environment, the shared files, container, instance metadata;
// kinlet/remote/credentials.hpp), resolved lazily at the first call and
// refreshed before they expire. Errors: those of ResolveRemoteConfig (no
// region, a malformed endpoint or shared file). Thread safety: reads the
// process environment (getenv): do not change it concurrently.
absl::StatusOr<RemoteOptions> DefaultRemoteOptions(const RemoteConfigOptions& config = {},
                                                   CredentialsOptions credentials = {});

// An AWS shard iterator: opaque text of 1..512 characters.
class RemoteShardIterator {
 public:
  RemoteShardIterator() = default;
  // InvalidArgumentException "Invalid ShardIterator." for an empty text or one
  // over 512 characters.
  static absl::StatusOr<RemoteShardIterator> Parse(std::string_view text,
                                                   std::string_view shard_id = {});
  // The wire text, as received.
  const std::string& ToString() const { return text_; }
  // The shard it reads ("" when parsed without one).
  const std::string& shard_id() const { return shard_id_; }
  // When this client received it (iterators expire 5 minutes after issue).
  absl::Time issued_at() const { return issued_at_; }
  friend bool operator==(const RemoteShardIterator& a, const RemoteShardIterator& b) {
    return a.text_ == b.text_;
  }

 private:
  std::string text_;
  std::string shard_id_;
  absl::Time issued_at_;
};

// A GetRecords page (GetRecordsResult<std::string> with a remote iterator).
struct RemoteGetRecordsResult {
  std::vector<Record<std::string>> records;
  // Empty once a closed shard has been read to its end.
  std::optional<RemoteShardIterator> next_shard_iterator;
  int64_t millis_behind_latest = 0;
  std::vector<ChildShard> child_shards;  // at the end of a closed shard
};

class KinesisClient;  // the shared client core (src/remote)

// A SubscribeToShard response in progress: events decoded incrementally from
// the event stream (HTTP/2, or HTTP/1.1 chunked) as they arrive.
class RemoteSubscription {
 public:
  using Event = SubscribeToShardEvent<std::string>;
  using Callback = std::function<void(const Event&)>;
  using EndCallback = std::function<void(const absl::Status&)>;

  // Cancels the subscription (the HTTP exchange ends). In push mode it waits
  // for the callback in progress; on_end has run once when it returns. Not
  // from inside its own callback.
  ~RemoteSubscription();
  RemoteSubscription(const RemoteSubscription&) = delete;
  RemoteSubscription& operator=(const RemoteSubscription&) = delete;

  // Pull mode: the next event, waiting up to `timeout` for one (a heartbeat
  // event with no records from the endpoint counts as one). DeadlineExceeded
  // when none came in time (the subscription goes on). Once the stream is
  // over: OutOfRange "subscription ended: ..." when the endpoint ended it
  // normally (lifetime elapsed: subscribe again from the last event's
  // ResumePosition()) or after Cancel; an exception event's status (e.g.
  // ResourceInUseException when another subscription took over,
  // ResourceNotFoundException); kUnavailable for a transport failure;
  // SerializationException for a malformed event stream. The final event of
  // a closed shard has end_of_shard set and child_shards. Not thread-safe (one
  // caller at a time); not in push mode.
  absl::Status Next(Event* event, absl::Duration timeout);

  // Ends the subscription; a waiting Next returns. Thread-safe.
  void Cancel();
  // True once the subscription is over (Next has returned, or would return,
  // its end status after the events already received).
  bool ended() const;
  // Why it is over (kNone while it is not; as Subscription::end()):
  // kShardEnded after a closed shard's final event; kTakenOver for
  // ResourceInUseException; kStreamDeleted for ResourceNotFoundException (the
  // stream or the consumer is gone: the endpoint does not say which);
  // kCancelled after Cancel or the destructor; otherwise kLifetimeElapsed:
  // the endpoint ended the event stream, or a transport failure, an
  // InternalFailure or a malformed event cut it (either way: subscribe again
  // after the last event received). Never kDataTrimmed. Thread-safe.
  SubscriptionEnd end() const;
  const std::string& consumer_arn() const { return consumer_arn_; }
  const std::string& shard_id() const { return shard_id_; }

  struct State;

 private:
  friend class RemoteStream;
  RemoteSubscription(std::shared_ptr<State> state, std::string consumer_arn, std::string shard_id);
  void StartDelivery(Callback on_event, EndCallback on_end);

  std::shared_ptr<State> state_;
  std::string consumer_arn_;
  std::string shard_id_;
};

class RemoteStream {
 public:
  using Entry = PutRecordsRequestEntry<std::string>;
  using Page = RemoteGetRecordsResult;
  using Event = SubscribeToShardEvent<std::string>;
  using SubscriptionType = RemoteSubscription;
  // What PutRecord takes as data (as Stream<std::string>::View).
  using View = std::string_view;
  // The clock of consumer groups and producers over this stream: wall time.
  using Clock = SystemClock;
  // How Kinesis (and every endpoint speaking its protocol) places partition
  // keys: MD5 of the key as a 128-bit hash key. A Producer routes its
  // batches per shard with it.
  using Hasher = Md5Hasher;

  // Use RemoteRegistry::GetStream / CreateStream.
  RemoteStream(std::shared_ptr<KinesisClient> client, std::string name, std::string arn);
  ~RemoteStream();
  RemoteStream(const RemoteStream&) = delete;
  RemoteStream& operator=(const RemoteStream&) = delete;

  const std::string& name() const { return name_; }
  const std::string& arn() const { return arn_; }
  // SystemClock::Default(), shared by every RemoteStream. Thread-safe.
  Clock* clock() const { return SystemClock::Default(); }

  // ---- Writes ---------------------------------------------------------------

  // PutRecord. Errors as Stream::PutRecord, from the endpoint
  // (ProvisionedThroughputExceededException once the retries are spent,
  // ValidationException, InvalidArgumentException, ResourceNotFoundException,
  // KMS errors), kUnavailable for a transport failure.
  absl::StatusOr<PutRecordResult> PutRecord(std::string_view partition_key, std::string_view data,
                                            const PutRecordOptions& options = {});

  // PutRecords: one result entry per request entry, in request order, with
  // per-entry failures (ProvisionedThroughputExceeded, InternalFailure).
  // Entries that fail with a retryable code are resent (only they, in their
  // order; the results merged) under the client's RetryPolicy, sharing its
  // attempts, quota and deadline, so a call returns per-entry failures only
  // when retries are spent. Request-level errors as Stream::PutRecords.
  absl::Status PutRecords(std::span<const Entry> entries, PutRecordsResult* result);
  absl::StatusOr<PutRecordsResult> PutRecords(std::span<const Entry> entries);
  absl::StatusOr<PutRecordsResult> PutRecords(std::initializer_list<Entry> entries) {
    return PutRecords(std::span<const Entry>(entries.begin(), entries.size()));
  }
  // As Stream::PutRecordWithRetry / PutRecordsWithRetry: kinlet's own retry
  // loop (RetryOptions, wall clock) around the calls above.
  absl::StatusOr<PutRecordResult> PutRecordWithRetry(std::string_view partition_key,
                                                     std::string_view data,
                                                     const RetryOptions& retry = {},
                                                     const PutRecordOptions& options = {});
  absl::Status PutRecordsWithRetry(std::span<const Entry> entries, const RetryOptions& retry,
                                   PutRecordsResult* result);

  // ---- Reads ----------------------------------------------------------------

  // GetShardIterator, all five types. Errors as Stream::GetShardIterator.
  absl::StatusOr<RemoteShardIterator> GetShardIterator(std::string_view shard_id,
                                                       const IteratorPosition& position) const;
  // GetRecords: `limit` 1..10000. Errors: ExpiredIteratorException,
  // ProvisionedThroughputExceededException (after retries),
  // InvalidArgumentException, ResourceNotFoundException, kUnavailable.
  absl::Status GetRecords(const RemoteShardIterator& iterator, int limit, Page* page) const;
  absl::StatusOr<Page> GetRecords(const RemoteShardIterator& iterator, int limit = 10000) const;
  absl::StatusOr<Page> GetRecords(std::string_view shard_iterator, int limit = 10000) const;

  // ---- Shards and description ----------------------------------------------

  // Every shard within retention (all ListShards pages).
  absl::StatusOr<std::vector<ShardDescription>> ListShards() const;
  // One ListShards page (filter, exclusive start, next token, max results).
  absl::StatusOr<ListShardsResult> ListShards(const ListShardsRequest& request) const;
  // DescribeStreamSummary. DescribeStream follows HasMoreShards; its
  // `options` holds what the endpoint reports (name, shard count, retention,
  // mode), the rest is default.
  absl::StatusOr<StreamDescriptionSummary> DescribeStreamSummary() const;
  absl::StatusOr<StreamDescription> DescribeStream() const;

  // Retention in whole hours (the wire's unit; a period is rounded down).
  absl::Status IncreaseStreamRetentionPeriod(absl::Duration period);
  absl::Status DecreaseStreamRetentionPeriod(absl::Duration period);

  // ---- Resharding and capacity modes ---------------------------------------

  absl::Status SplitShard(std::string_view shard_to_split, HashKey new_starting_hash_key);
  absl::Status MergeShards(std::string_view shard_to_merge,
                           std::string_view adjacent_shard_to_merge);
  absl::StatusOr<UpdateShardCountResult> UpdateShardCount(
      int target_shard_count, ScalingType scaling_type = ScalingType::kUniformScaling);
  absl::Status UpdateStreamMode(StreamMode mode);

  // ---- Enhanced fan-out ----------------------------------------------------

  absl::StatusOr<StreamConsumerDescription> RegisterStreamConsumer(std::string_view consumer_name);
  // By name or ARN (a consumer ARN starts with "arn:").
  absl::Status DeregisterStreamConsumer(std::string_view consumer);
  absl::StatusOr<StreamConsumerDescription> DescribeStreamConsumer(std::string_view consumer) const;
  // Every consumer (all pages).
  absl::StatusOr<std::vector<StreamConsumerDescription>> ListStreamConsumers() const;

  // SubscribeToShard, pull mode. `consumer` by name or ARN (a name is looked
  // up with DescribeStreamConsumer first). Errors before the event stream
  // starts, as Stream::SubscribeToShard: ResourceNotFoundException,
  // ResourceInUseException, InvalidArgumentException; kUnavailable.
  absl::StatusOr<std::unique_ptr<RemoteSubscription>> SubscribeToShard(
      std::string_view consumer, std::string_view shard_id, const IteratorPosition& start);
  // Push mode: `on_event` runs for every event on the subscription's own
  // delivery thread, one at a time and in order; `on_end` once with the
  // status that ended it (as Next's).
  absl::StatusOr<std::unique_ptr<RemoteSubscription>> SubscribeToShard(
      std::string_view consumer, std::string_view shard_id, const IteratorPosition& start,
      RemoteSubscription::Callback on_event, RemoteSubscription::EndCallback on_end = {});

  // ---- Tags ----------------------------------------------------------------

  absl::Status AddTagsToStream(const std::map<std::string, std::string>& tags);
  absl::Status RemoveTagsFromStream(const std::vector<std::string>& tag_keys);
  // Every tag (all pages), sorted by key.
  absl::StatusOr<std::map<std::string, std::string>> ListTagsForStream() const;

 private:
  std::string_view Intern(std::string_view shard_id);

  std::shared_ptr<KinesisClient> client_;
  const std::string name_;
  const std::string arn_;
  struct Interned;
  std::unique_ptr<Interned> interned_;
};

}  // namespace kinlet::remote
