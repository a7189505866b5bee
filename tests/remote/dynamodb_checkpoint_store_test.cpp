// Tests of kinlet/remote/dynamodb_checkpoint_store.hpp against dynalite (npm
// dynalite, pinned in tests/clients/package-lock.json), a DynamoDB that no one
// here wrote, started by each test on 127.0.0.1 on a port the kernel picks and
// stopped by its process id. The same contract cases as the SQLite store's
// (conditional writes on the lease counter, ConditionalCheckFailed,
// ResourceNotFound, conditional delete, create-if-absent), plus what DynamoDB
// adds: the KCL's item layout, Scan pages, table creation and its wait for
// ACTIVE, bad tables, store instances contending from several threads, and
// ConsumerGroups sharing a stream's shards through the table.
//
// dynalite is looked for in $KINLET_DYNALITE_DIR, then in the build tree's
// npm install (tests/clients/npm/node_modules, as the client tests' harness
// makes it), which is made with the harness's `npm ci` when missing. When node
// or dynalite cannot be had, each test WARNs "dynalite not available: ..." and
// returns (Catch2 v2 has no SKIP); with KINLET_REQUIRE_NODE_SERVERS=1 it fails.
#include "kinlet/remote/dynamodb_checkpoint_store.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../src/remote/kinesis_client.hpp"  // white box: raw DynamoDB calls
#include "absl/strings/str_cat.h"
#include "aws_env.hpp"
#include "checkpoint_store_contract.hpp"
#include "dynalite.hpp"
#include "kinlet/consumer_group.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/remote/remote_errors.hpp"
#include "kinlet/stream.hpp"
#include "test_credentials.hpp"

extern char** environ;

namespace {

using kinlet::Lease;
using kinlet::remote::DynamoDbCheckpointStore;
using kinlet::remote::DynamoDbCheckpointStoreOptions;
using kinlet::wire::Value;
using kinlet_test::Dynalite;
using kinlet_test::StartDynalite;

kinlet::remote::RemoteOptions RemoteFor(const std::string& endpoint) {
  kinlet::remote::RemoteOptions options;
  options.endpoint = endpoint;
  options.credentials = kinlet_test::TestCredentials();
  options.http.http_version = kinlet::remote::HttpVersion::kHttp11;
  options.retry.base_delay = absl::Milliseconds(1);
  options.retry.throttle_base_delay = absl::Milliseconds(2);
  options.retry.call_timeout = absl::Seconds(30);
  return options;
}

DynamoDbCheckpointStoreOptions OptionsFor(const Dynalite& d, const std::string& table = "app") {
  DynamoDbCheckpointStoreOptions options;
  options.table = table;
  options.remote = RemoteFor(d.endpoint());
  options.poll_interval = absl::Milliseconds(20);
  return options;
}

std::unique_ptr<DynamoDbCheckpointStore> OpenStore(const Dynalite& d,
                                                   const std::string& table = "app") {
  auto store = DynamoDbCheckpointStore::Open(OptionsFor(d, table));
  REQUIRE(store.ok());
  return std::move(*store);
}

// A raw DynamoDB client on the same endpoint, to look at items and tables.
std::shared_ptr<kinlet::remote::KinesisClient> RawClient(const Dynalite& d) {
  auto client = kinlet::remote::KinesisClient::Create(RemoteFor(d.endpoint()),
                                                      kinlet::remote::AwsJsonService::DynamoDb());
  REQUIRE(client.ok());
  return *client;
}

using kinlet_test::MakeLease;

TEST_CASE("DynamoDB store: the CheckpointStore contract", "[remote][dynamodb]") {
  auto dynalite = StartDynalite();
  if (dynalite == nullptr) return;
  auto store = OpenStore(*dynalite);
  kinlet_test::CheckStoreContract(*store);
}

// The item GetItem returns for `key`.
Value GetItem(kinlet::remote::KinesisClient& client, const std::string& table,
              const std::string& key) {
  auto r =
      client.Call("GetItem", absl::StrCat(R"({"TableName":")", table,
                                          R"(","ConsistentRead":true,"Key":{"leaseKey":{"S":")",
                                          key, R"("}}})"));
  REQUIRE(r.ok());
  const Value* item = r->Find("Item");
  REQUIRE(item != nullptr);
  return *item;
}

std::string Attr(const Value& item, const std::string& name, const std::string& type) {
  const Value* attr = item.Find(name);
  if (attr == nullptr) return "<absent>";
  const Value* v = attr->Find(type);
  if (v == nullptr) return "<not " + type + ">";
  if (v->kind() == Value::Kind::kArray) {
    std::set<std::string> items;
    for (const Value& i : v->items()) items.insert(i.str());
    std::string out;
    for (const std::string& i : items) out += i + ";";
    return out;
  }
  return v->str();
}

TEST_CASE("DynamoDB store: items have the KCL's lease layout", "[remote][dynamodb]") {
  auto dynalite = StartDynalite();
  if (dynalite == nullptr) return;
  auto store = OpenStore(*dynalite, "kcl-app");
  auto raw = RawClient(*dynalite);
  Lease lease = MakeLease("shardId-000000000002", 3, "worker-7");
  lease.parent_shard_ids = {"shardId-000000000000", "shardId-000000000001"};
  lease.owner_switches_since_checkpoint = 2;
  lease.last_renewal_ms = 1234;
  REQUIRE(store->CreateLeaseIfNotExists(lease).ok());
  Value item = GetItem(*raw, "kcl-app", lease.lease_key);
  CHECK(Attr(item, "leaseKey", "S") == "shardId-000000000002");
  CHECK(Attr(item, "leaseOwner", "S") == "worker-7");
  CHECK(Attr(item, "leaseCounter", "N") == "3");
  CHECK(Attr(item, "checkpoint", "S") == "TRIM_HORIZON");
  CHECK(Attr(item, "checkpointSubSequenceNumber", "N") == "0");
  CHECK(Attr(item, "ownerSwitchesSinceCheckpoint", "N") == "2");
  CHECK(Attr(item, "parentShardId", "SS") == "shardId-000000000000;shardId-000000000001;");
  CHECK(Attr(item, "kinletLastRenewalMillis", "N") == "1234");

  // A KCL worker's extra attribute survives kinlet's updates; a released
  // lease has no leaseOwner, as the KCL writes it.
  REQUIRE(raw->Call("UpdateItem",
                    R"({"TableName":"kcl-app","Key":{"leaseKey":{"S":"shardId-000000000002"}},)"
                    R"("UpdateExpression":"SET childShardId = :c",)"
                    R"("ExpressionAttributeValues":{":c":{"SS":["shardId-000000000009"]}}})")
              .ok());
  Lease released = lease;
  released.owner.clear();
  released.lease_counter = 4;
  REQUIRE(store->UpdateLease(released, 3).ok());
  item = GetItem(*raw, "kcl-app", lease.lease_key);
  CHECK(Attr(item, "leaseOwner", "S") == "<absent>");
  CHECK(Attr(item, "leaseCounter", "N") == "4");
  CHECK(Attr(item, "childShardId", "SS") == "shardId-000000000009;");

  // A lease written by a KCL (no kinlet attribute, parents in any order)
  // reads back with what kinlet knows of it.
  REQUIRE(raw->Call("PutItem",
                    R"({"TableName":"kcl-app","Item":{"leaseKey":{"S":"shardId-000000000005"},)"
                    R"("leaseCounter":{"N":"12"},"leaseOwner":{"S":"kcl-worker"},)"
                    R"("checkpoint":{"S":"SHARD_END"},"checkpointSubSequenceNumber":{"N":"0"},)"
                    R"("ownerSwitchesSinceCheckpoint":{"N":"1"},)"
                    R"("parentShardId":{"SS":["shardId-000000000004","shardId-000000000003"]}}})")
              .ok());
  auto leases = store->ListLeases();
  REQUIRE(leases.ok());
  REQUIRE(leases->size() == 2);
  Lease expected = MakeLease("shardId-000000000005", 12, "kcl-worker");
  expected.checkpoint = "SHARD_END";
  expected.owner_switches_since_checkpoint = 1;
  expected.parent_shard_ids = {"shardId-000000000003", "shardId-000000000004"};  // sorted
  CHECK(leases->at(1) == expected);
}

TEST_CASE("DynamoDB store: ListLeases follows Scan pages", "[remote][dynamodb]") {
  auto dynalite = StartDynalite();
  if (dynalite == nullptr) return;
  DynamoDbCheckpointStoreOptions options = OptionsFor(*dynalite);
  options.scan_page_limit = 4;
  auto opened = DynamoDbCheckpointStore::Open(options);
  REQUIRE(opened.ok());
  auto& store = *opened;
  constexpr int kLeases = 23;
  std::set<std::string> keys;
  for (int i = 0; i < kLeases; ++i) {  // written out of key order
    const std::string key = absl::StrCat("shardId-", 100000 + i * 7 % kLeases);
    keys.insert(key);
    REQUIRE(store->CreateLeaseIfNotExists(MakeLease(key)).ok());
  }
  const uint64_t pages_before = store->scan_pages();
  auto leases = store->ListLeases();
  REQUIRE(leases.ok());
  CHECK(store->scan_pages() - pages_before >= (kLeases + 3) / 4);  // more than one page
  REQUIRE(leases->size() == keys.size());
  size_t i = 0;
  for (const std::string& key : keys) CHECK(leases->at(i++).lease_key == key);  // sorted
}

TEST_CASE("DynamoDB store: Open creates the table and waits until it is ACTIVE",
          "[remote][dynamodb]") {
  auto dynalite = StartDynalite(/*create_table_ms=*/300);  // tables stay CREATING a while
  if (dynalite == nullptr) return;
  auto raw = RawClient(*dynalite);
  CHECK(kinlet::IsResourceNotFound(
      raw->Call("DescribeTable", R"({"TableName":"fresh.app-1"})").status()));

  DynamoDbCheckpointStoreOptions no_create = OptionsFor(*dynalite, "fresh.app-1");
  no_create.create_table_if_missing = false;
  auto missing = DynamoDbCheckpointStore::Open(no_create);
  REQUIRE_FALSE(missing.ok());
  CHECK(kinlet::IsResourceNotFound(missing.status()));
  CHECK(missing.status().message().find("fresh.app-1") != std::string_view::npos);

  auto store = OpenStore(*dynalite, "fresh.app-1");
  // ACTIVE when Open returns: writes work at once.
  REQUIRE(store->CreateLeaseIfNotExists(MakeLease("shardId-000000000000")).ok());
  auto described = raw->Call("DescribeTable", R"({"TableName":"fresh.app-1"})");
  REQUIRE(described.ok());
  const Value* table = described->Find("Table");
  REQUIRE(table != nullptr);
  CHECK(table->Find("TableStatus")->str() == "ACTIVE");
  const Value* billing = table->Find("BillingModeSummary");
  REQUIRE(billing != nullptr);
  CHECK(billing->Find("BillingMode")->str() == "PAY_PER_REQUEST");
  const Value& key = table->Find("KeySchema")->items().at(0);
  CHECK(key.Find("AttributeName")->str() == "leaseKey");
  CHECK(key.Find("KeyType")->str() == "HASH");

  // Opening an existing table (another worker) changes nothing.
  auto again = OpenStore(*dynalite, "fresh.app-1");
  CHECK(again->ListLeases()->size() == 1);

  // Two workers creating the same table at once both succeed.
  std::vector<absl::Status> results(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      results[t] = DynamoDbCheckpointStore::Open(OptionsFor(*dynalite, "raced")).status();
    });
  }
  for (auto& t : threads) t.join();
  CHECK(results[0].ok());
  CHECK(results[1].ok());

  // A table whose key is not the lease key is refused.
  REQUIRE(raw->Call("CreateTable",
                    R"({"TableName":"not-leases","BillingMode":"PAY_PER_REQUEST",)"
                    R"("AttributeDefinitions":[{"AttributeName":"id","AttributeType":"S"}],)"
                    R"("KeySchema":[{"AttributeName":"id","KeyType":"HASH"}]})")
              .ok());
  auto wrong = DynamoDbCheckpointStore::Open(OptionsFor(*dynalite, "not-leases"));
  REQUIRE_FALSE(wrong.ok());
  CHECK(absl::IsFailedPrecondition(wrong.status()));
  CHECK(wrong.status().message().find("leaseKey") != std::string_view::npos);

  // Not ACTIVE in time: DeadlineExceeded, naming the table.
  DynamoDbCheckpointStoreOptions impatient = OptionsFor(*dynalite, "slow");
  impatient.table_ready_timeout = absl::Milliseconds(1);
  auto late = DynamoDbCheckpointStore::Open(impatient);
  REQUIRE_FALSE(late.ok());
  CHECK(absl::IsDeadlineExceeded(late.status()));
  CHECK(late.status().message().find("slow") != std::string_view::npos);
}

TEST_CASE("DynamoDB store: bad input and bad tables are clear errors", "[remote][dynamodb]") {
  auto dynalite = StartDynalite();
  if (dynalite == nullptr) return;
  for (const char* bad : {"", "ab", "leases; DROP", "a/b/c", "tab le"}) {
    auto store = DynamoDbCheckpointStore::Open(OptionsFor(*dynalite, bad));
    REQUIRE_FALSE(store.ok());
    CHECK(kinlet::IsInvalidArgument(store.status()));
    CHECK(store.status().message().find("bad table name") != std::string_view::npos);
  }
  DynamoDbCheckpointStoreOptions no_credentials = OptionsFor(*dynalite);
  no_credentials.remote.credentials = nullptr;
  CHECK(kinlet::IsInvalidArgument(DynamoDbCheckpointStore::Open(no_credentials).status()));

  auto store = OpenStore(*dynalite);
  CHECK(kinlet::IsInvalidArgument(store->CreateLeaseIfNotExists(MakeLease(""))));
  Lease repeated = MakeLease("s");
  repeated.parent_shard_ids = {"a", "a"};
  CHECK(kinlet::IsInvalidArgument(store->CreateLeaseIfNotExists(repeated)));
  Lease empty_parent = MakeLease("s");
  empty_parent.parent_shard_ids = {""};
  CHECK(kinlet::IsInvalidArgument(store->UpdateLease(empty_parent, 0)));
  CHECK(kinlet::IsInvalidArgument(store->DeleteLease("", 0)));
  CHECK(store->ListLeases()->empty());

  // The table deleted under the store: ResourceNotFound naming it.
  auto raw = RawClient(*dynalite);
  REQUIRE(raw->Call("DeleteTable", R"({"TableName":"app"})").ok());
  for (int i = 0; i < 100; ++i) {  // deleteTableMs is 0: gone after one tick
    if (!raw->Call("DescribeTable", R"({"TableName":"app"})").ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto gone = store->ListLeases();
  REQUIRE_FALSE(gone.ok());
  CHECK(kinlet::IsResourceNotFound(gone.status()));
  CHECK(gone.status().message().find("app") != std::string_view::npos);
  CHECK(kinlet::IsResourceNotFound(store->CreateLeaseIfNotExists(MakeLease("x"))));

  // Nothing listening: kUnavailable once the retries are spent, no hang.
  DynamoDbCheckpointStoreOptions closed = OptionsFor(*dynalite);
  closed.remote.endpoint = "http://127.0.0.1:1";
  closed.remote.retry.max_attempts = 2;
  auto unreachable = DynamoDbCheckpointStore::Open(closed);
  REQUIRE_FALSE(unreachable.ok());
  CHECK(absl::IsUnavailable(unreachable.status()));
}

TEST_CASE("DynamoDB store: throttling errors are retryable, a failed condition is not",
          "[remote][dynamodb]") {
  // The names DynamoDB throttles with (no server needed).
  for (const char* type :
       {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}) {
    const absl::Status s = kinlet::remote::ErrorFromResponse(
        400, absl::StrCat(R"({"__type":"com.amazonaws.dynamodb.v20120810#)", type,
                          R"(","message":"slow down"})"));
    CHECK(kinlet::remote::IsThrottlingError(s));
  }
  const absl::Status conditional = kinlet::remote::ErrorFromResponse(
      400,
      R"({"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"})");
  CHECK(kinlet::IsConditionalCheckFailed(conditional));
  CHECK_FALSE(kinlet::remote::IsThrottlingError(conditional));
  CHECK_FALSE(kinlet::remote::IsTransientError(conditional));
}

TEST_CASE("DynamoDB store: the endpoint is resolved as the SDKs do for dynamodb",
          "[remote][dynamodb]") {
  kinlet_test::ScopedAwsEnv env;
  env.Set("AWS_REGION", "eu-west-3");
  auto options = kinlet::remote::ResolveDynamoDbRemoteOptions();
  REQUIRE(options.ok());
  CHECK(options->endpoint == "https://dynamodb.eu-west-3.amazonaws.com");
  CHECK(options->region == "eu-west-3");
  CHECK(options->credentials != nullptr);
  env.Set("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:1111");  // not DynamoDB's
  env.Set("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2222");
  options = kinlet::remote::ResolveDynamoDbRemoteOptions();
  REQUIRE(options.ok());
  CHECK(options->endpoint == "http://127.0.0.1:2222");
  kinlet::remote::RemoteConfigOptions kinesis;
  auto config = kinlet::remote::ResolveRemoteConfig(kinesis);
  REQUIRE(config.ok());
  CHECK(config->endpoint == "http://127.0.0.1:1111");
  kinesis.service = "Bad Service";
  CHECK(kinlet::IsInvalidArgument(kinlet::remote::ResolveRemoteConfig(kinesis).status()));
}

using kinlet_test::Increment;

TEST_CASE("DynamoDB store: two instances, several threads, no lost update", "[remote][dynamodb]") {
  auto dynalite = StartDynalite();
  if (dynalite == nullptr) return;
  auto first = OpenStore(*dynalite);
  auto second = OpenStore(*dynalite);
  REQUIRE(first->CreateLeaseIfNotExists(MakeLease("shared")).ok());
  constexpr int kThreads = 4, kRounds = 25;
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(kThreads);
  std::atomic<int> conflicts{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      results[t] = Increment(t % 2 == 0 ? *first : *second, "shared", kRounds, absl::StrCat("t", t),
                             &conflicts);
    });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : results) CHECK(s.ok());
  // Every successful conditional write was exactly one increment.
  CHECK(second->ListLeases()->at(0).lease_counter == kThreads * kRounds);
}

// ConsumerGroups over the DynamoDB store.
TEST_CASE("DynamoDB store: consumer groups share shards and take over a dead worker's",
          "[remote][dynamodb][consumer_group]") {
  auto dynalite = StartDynalite();
  if (dynalite == nullptr) return;
  kinlet_test::CheckGroupsShareAndTakeOver(
      [&] { return std::unique_ptr<kinlet::CheckpointStore>(OpenStore(*dynalite)); });
}

}  // namespace
