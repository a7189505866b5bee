// kinlet/remote/dynamodb_checkpoint_store.hpp: a CheckpointStore in an Amazon
// DynamoDB table with the KCL's lease-table layout, shared by workers on any
// number of machines.
//
//   kinlet::remote::DynamoDbCheckpointStoreOptions options;
//   options.table = "my-application";              // one table per application
//   options.remote = kinlet::remote::ResolveDynamoDbRemoteOptions({}).value();
//   auto store = kinlet::remote::DynamoDbCheckpointStore::Open(options).value();
//   auto group = kinlet::ConsumerGroup<...>::Create(stream, store.get(), factory, group_options);
//
// The contract is CheckpointStore's (kinlet/checkpoint_store.hpp), with the
// KCL's conditional writes:
//   CreateLeaseIfNotExists  PutItem, ConditionExpression attribute_not_exists(leaseKey)
//                           (a ConditionalCheckFailedException means the key
//                           exists: OK, nothing changed);
//   UpdateLease             UpdateItem (SET/REMOVE of the attributes below; any
//                           other attribute of the item, e.g. a KCL's
//                           childShardId, is kept), ConditionExpression
//                           attribute_exists(leaseKey) AND leaseCounter = :expected;
//   DeleteLease             DeleteItem with the same condition;
//   ListLeases              Scan (ConsistentRead, following LastEvaluatedKey),
//                           sorted by key.
// When a conditional update or delete fails, one consistent GetItem tells why:
// ResourceNotFoundException (no such lease) or ConditionalCheckFailedException
// ("... is at counter N, not M").
//
// Layout (the KCL's DynamoDBLeaseSerializer names): hash key leaseKey (S);
// leaseOwner (S, absent when the lease has no owner), leaseCounter (N),
// checkpoint (S, absent when empty), checkpointSubSequenceNumber (N, always 0:
// kinlet does not deaggregate checkpoints), ownerSwitchesSinceCheckpoint (N),
// parentShardId (SS, absent when there are none). kinlet's last_renewal_ms,
// which the KCL keeps in memory only, is the extra attribute
// kinletLastRenewalMillis (N); the KCL ignores it, and a lease written by a
// KCL reads with 0 there. A string set has no order: ListLeases returns
// parent_shard_ids sorted.
//
// Table: Open checks it with DescribeTable. A missing table is created when
// options.create_table_if_missing (CreateTable, PAY_PER_REQUEST, the key
// above; a concurrent creation by another worker is fine); Open then waits
// (DescribeTable every poll_interval, up to table_ready_timeout) until the
// table is ACTIVE.
//
// Requests: the kinlet::remote client (kinlet/remote/remote_stream.hpp's
// RemoteOptions: endpoint, region, credentials, HTTP, retries), DynamoDB's
// JSON 1.0 protocol (X-Amz-Target DynamoDB_20120810.<Operation>), SigV4 with
// service "dynamodb", the SDKs' standard retries (throttling:
// ProvisionedThroughputExceededException, ThrottlingException,
// RequestLimitExceeded; transient: 5xx, transport failures). A conditional
// write retried after a transport failure may meet its own first attempt: it
// then reports ConditionalCheckFailed although it was applied, as a KCL worker
// may see; the caller re-reads the lease (ConsumerGroup does).
//
// Errors of every call: AWS's, mapped by kinlet/remote/remote_errors.hpp
// (ResourceNotFoundException when the table is gone, AccessDenied,
// ValidationException, throttling after the retries, kUnavailable for the
// transport, DeadlineExceeded past retry.call_timeout). Writes also:
// InvalidArgumentException for an empty lease key or an empty or repeated
// parent shard id (nothing is sent).
//
// Thread safety: every call is thread-safe (the HTTP client is shared; no
// other state changes after Open); share one store between the workers of a
// process. Lifetime: independent of the options it was opened with.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kinlet/checkpoint_store.hpp"
#include "kinlet/remote/config.hpp"
#include "kinlet/remote/remote_stream.hpp"

namespace kinlet::remote {

class KinesisClient;  // the AWS JSON client core (src/remote)

struct DynamoDbCheckpointStoreOptions {
  // The application's lease table (the KCL names it after the application):
  // 3 to 255 characters, letters, digits, '_', '-' and '.'.
  std::string table;
  // Endpoint (empty: https://dynamodb.<region>.amazonaws.com), region,
  // credentials (required), HTTP and retry options.
  RemoteOptions remote;
  // Create the table when it does not exist; otherwise Open fails with
  // ResourceNotFoundException.
  bool create_table_if_missing = true;
  // How long Open waits for the table to become ACTIVE, and how often it asks.
  absl::Duration table_ready_timeout = absl::Minutes(2);
  absl::Duration poll_interval = absl::Milliseconds(100);
  // Items per Scan page (DynamoDB's Limit); 0: DynamoDB's own (1 MB pages).
  int scan_page_limit = 0;
};

// DefaultRemoteOptions (kinlet/remote/remote_stream.hpp) for DynamoDB: the
// same resolution with service "dynamodb" (AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL, the profile's services section, ...). Errors:
// ResolveRemoteConfig's.
absl::StatusOr<RemoteOptions> ResolveDynamoDbRemoteOptions(RemoteConfigOptions config = {});

class DynamoDbCheckpointStore : public CheckpointStore {
 public:
  // Opens the table (creating it as described above). Errors:
  // InvalidArgumentException for a bad table name, bad options, missing
  // credentials or an endpoint that is not http(s)://; ResourceNotFoundException
  // when the table is missing and not to be created; FailedPrecondition when
  // the table's key is not leaseKey (S) or it is being deleted;
  // DeadlineExceeded when it is not ACTIVE within table_ready_timeout; any
  // error of DescribeTable/CreateTable.
  static absl::StatusOr<std::unique_ptr<DynamoDbCheckpointStore>> Open(
      DynamoDbCheckpointStoreOptions options);

  ~DynamoDbCheckpointStore() override;
  DynamoDbCheckpointStore(const DynamoDbCheckpointStore&) = delete;
  DynamoDbCheckpointStore& operator=(const DynamoDbCheckpointStore&) = delete;

  absl::StatusOr<std::vector<Lease>> ListLeases() override;
  absl::Status CreateLeaseIfNotExists(const Lease& lease) override;
  absl::Status UpdateLease(const Lease& lease, uint64_t expected_counter) override;
  absl::Status DeleteLease(std::string_view lease_key, uint64_t expected_counter) override;

  const std::string& table() const { return options_.table; }
  // Scan requests ListLeases made since Open (pages), for tests and monitoring.
  uint64_t scan_pages() const;

 private:
  DynamoDbCheckpointStore(DynamoDbCheckpointStoreOptions options,
                          std::shared_ptr<KinesisClient> client);
  absl::Status EnsureTable();
  // Why a conditional write on `key` expecting `expected_counter` failed.
  absl::Status ExplainConditionFailure(std::string_view key, uint64_t expected_counter);

  const DynamoDbCheckpointStoreOptions options_;
  const std::shared_ptr<KinesisClient> client_;  // thread-safe
  std::atomic<uint64_t> scan_pages_{0};          // relaxed counter
};

}  // namespace kinlet::remote
