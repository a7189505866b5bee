// The DynamoDB lease table (kinlet/remote/dynamodb_checkpoint_store.hpp).
#include "kinlet/remote/dynamodb_checkpoint_store.hpp"

#include <algorithm>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kinesis_client.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/remote/credentials.hpp"
#include "kinlet/wire/document.hpp"

namespace kinlet::remote {

using wire::Value;
using wire::Writer;

namespace {

// The KCL's attribute names (DynamoDBLeaseSerializer), and kinlet's one extra.
constexpr std::string_view kLeaseKey = "leaseKey";
constexpr std::string_view kLeaseOwner = "leaseOwner";
constexpr std::string_view kLeaseCounter = "leaseCounter";
constexpr std::string_view kCheckpoint = "checkpoint";
constexpr std::string_view kCheckpointSub = "checkpointSubSequenceNumber";
constexpr std::string_view kOwnerSwitches = "ownerSwitchesSinceCheckpoint";
constexpr std::string_view kParentShardId = "parentShardId";
constexpr std::string_view kLastRenewal = "kinletLastRenewalMillis";

using detail::ToAbsl;

bool ValidTableName(std::string_view name) {
  if (name.size() < 3 || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

absl::Status Validate(const Lease& lease) {
  if (lease.lease_key.empty()) return InvalidArgument("A lease key must not be empty");
  std::set<std::string_view> seen;
  for (const std::string& parent : lease.parent_shard_ids) {
    if (parent.empty() || !seen.insert(parent).second) {
      return InvalidArgument(absl::StrCat("Parent shard id '", parent, "' of lease ",
                                          lease.lease_key, " is empty or repeated"));
    }
  }
  return absl::OkStatus();
}

void StringAttr(Writer& w, std::string_view s) {
  w.BeginObject();
  w.Key("S");
  w.String(s);
  w.EndObject();
}

template <typename Int>
void NumberAttr(Writer& w, Int n) {
  w.BeginObject();
  w.Key("N");
  w.String(absl::StrCat(n));
  w.EndObject();
}

void TableKey(Writer& w, std::string_view table) {
  w.Key("TableName");
  w.String(table);
}

// "Key": {"leaseKey": {"S": key}}
void ItemKey(Writer& w, std::string_view key) {
  w.Key("Key");
  w.BeginObject();
  w.Key(kLeaseKey);
  StringAttr(w, key);
  w.EndObject();
}

// The condition of UpdateLease and DeleteLease (the caller defines #k, #c and
// :expected).
void CounterCondition(Writer& w) {
  w.Key("ConditionExpression");
  w.String("attribute_exists(#k) AND #c = :expected");
}

// An attribute value's text: "S" or "N" (nullptr when absent or another type).
const std::string* Scalar(const Value& item, std::string_view name, std::string_view type) {
  const Value* attr = item.Find(name);
  if (attr == nullptr || attr->kind() != Value::Kind::kObject) return nullptr;
  const Value* v = attr->Find(type);
  if (v == nullptr || v->kind() != Value::Kind::kString) return nullptr;
  return &v->str();
}

template <typename Int>
absl::Status ReadNumber(const Value& item, std::string_view name, Int* out) {
  const std::string* text = Scalar(item, name, "N");
  if (text == nullptr) {
    *out = 0;
    return absl::OkStatus();
  }
  if (!absl::SimpleAtoi(*text, out)) {
    return InternalFailure(
        absl::StrCat("Lease attribute ", ToAbsl(name), " is not an integer: '", *text, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Lease> LeaseOf(const Value& item) {
  Lease lease;
  const std::string* key = Scalar(item, kLeaseKey, "S");
  if (key == nullptr) return InternalFailure("A lease item has no leaseKey string");
  lease.lease_key = *key;
  if (const std::string* owner = Scalar(item, kLeaseOwner, "S")) lease.owner = *owner;
  if (const std::string* checkpoint = Scalar(item, kCheckpoint, "S")) {
    lease.checkpoint = *checkpoint;
  }
  for (auto [name, out] : {std::pair{kLeaseCounter, &lease.lease_counter},
                           std::pair{kOwnerSwitches, &lease.owner_switches_since_checkpoint}}) {
    if (absl::Status s = ReadNumber(item, name, out); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(s.message(), " (lease ", lease.lease_key, ")"));
    }
  }
  if (absl::Status s = ReadNumber(item, kLastRenewal, &lease.last_renewal_ms); !s.ok()) return s;
  if (const Value* parents = item.Find(kParentShardId);
      parents != nullptr && parents->kind() == Value::Kind::kObject) {
    if (const Value* set = parents->Find("SS"); set != nullptr) {
      for (const Value& p : set->items()) {
        if (p.kind() == Value::Kind::kString) lease.parent_shard_ids.push_back(p.str());
      }
    }
    std::sort(lease.parent_shard_ids.begin(), lease.parent_shard_ids.end());
  }
  return lease;
}

// A status of `s`'s code and payload with `context` before its message.
absl::Status WithContext(const absl::Status& s, std::string_view context) {
  absl::Status out(s.code(), absl::StrCat(ToAbsl(context), ": ", s.message()));
  s.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace

absl::StatusOr<RemoteOptions> ResolveDynamoDbRemoteOptions(RemoteConfigOptions config) {
  config.service = "dynamodb";
  return DefaultRemoteOptions(config);
}

DynamoDbCheckpointStore::DynamoDbCheckpointStore(DynamoDbCheckpointStoreOptions options,
                                                 std::shared_ptr<KinesisClient> client)
    : options_(std::move(options)), client_(std::move(client)) {}

DynamoDbCheckpointStore::~DynamoDbCheckpointStore() = default;

uint64_t DynamoDbCheckpointStore::scan_pages() const {
  return scan_pages_.load(std::memory_order_relaxed);
}

absl::StatusOr<std::unique_ptr<DynamoDbCheckpointStore>> DynamoDbCheckpointStore::Open(
    DynamoDbCheckpointStoreOptions options) {
  if (!ValidTableName(options.table)) {
    return InvalidArgument(absl::StrCat("DynamoDbCheckpointStore: bad table name '", options.table,
                                        "' (3 to 255 letters, digits, '_', '-' and '.')"));
  }
  if (options.scan_page_limit < 0) return InvalidArgument("scan_page_limit must be >= 0");
  if (options.poll_interval <= absl::ZeroDuration()) {
    return InvalidArgument("poll_interval must be positive");
  }
  absl::StatusOr<std::shared_ptr<KinesisClient>> client =
      KinesisClient::Create(options.remote, AwsJsonService::DynamoDb());
  if (!client.ok()) return client.status();
  std::unique_ptr<DynamoDbCheckpointStore> store(
      new DynamoDbCheckpointStore(std::move(options), std::move(*client)));
  if (absl::Status s = store->EnsureTable(); !s.ok()) return s;
  return store;
}

absl::Status DynamoDbCheckpointStore::EnsureTable() {
  const std::string& table = options_.table;
  Writer describe(wire::Format::kJson);
  describe.BeginObject();
  TableKey(describe, table);
  describe.EndObject();
  const absl::Time deadline = absl::Now() + options_.table_ready_timeout;
  bool created = false;
  for (;;) {
    absl::StatusOr<Value> r = client_->Call("DescribeTable", describe.data());
    if (!r.ok() && IsResourceNotFound(r.status()) && !created) {
      if (!options_.create_table_if_missing) {
        return WithContext(r.status(), absl::StrCat("Lease table ", table, " does not exist"));
      }
      Writer w(wire::Format::kJson);
      w.BeginObject();
      TableKey(w, table);
      w.Key("AttributeDefinitions");
      w.BeginArray();
      w.BeginObject();
      w.Key("AttributeName");
      w.String(kLeaseKey);
      w.Key("AttributeType");
      w.String("S");
      w.EndObject();
      w.EndArray();
      w.Key("KeySchema");
      w.BeginArray();
      w.BeginObject();
      w.Key("AttributeName");
      w.String(kLeaseKey);
      w.Key("KeyType");
      w.String("HASH");
      w.EndObject();
      w.EndArray();
      w.Key("BillingMode");
      w.String("PAY_PER_REQUEST");
      w.EndObject();
      absl::StatusOr<Value> c = client_->Call("CreateTable", w.data(), /*on_create=*/true);
      // Another worker creating it at the same time is fine.
      if (!c.ok() && !absl::IsAlreadyExists(c.status())) {
        return WithContext(c.status(), absl::StrCat("CreateTable ", table));
      }
      created = true;
      continue;
    }
    if (!r.ok() && !(created && IsResourceNotFound(r.status()))) {
      return WithContext(r.status(), absl::StrCat("DescribeTable ", table));
    }
    if (r.ok()) {
      const Value* t = r->Find("Table");
      if (t == nullptr || t->kind() != Value::Kind::kObject) {
        return InternalFailure(absl::StrCat("DescribeTable ", table, ": no Table in the response"));
      }
      // The key must be the KCL's: leaseKey, a string, hash only.
      bool key_ok = false;
      if (const Value* schema = t->Find("KeySchema"); schema != nullptr) {
        if (schema->items().size() == 1) {
          const Value* name = schema->items()[0].Find("AttributeName");
          key_ok =
              name != nullptr && name->kind() == Value::Kind::kString && name->str() == kLeaseKey;
        }
      }
      if (const Value* defs = t->Find("AttributeDefinitions"); key_ok && defs != nullptr) {
        for (const Value& d : defs->items()) {
          const Value* name = d.Find("AttributeName");
          const Value* type = d.Find("AttributeType");
          if (name != nullptr && name->kind() == Value::Kind::kString && name->str() == kLeaseKey &&
              (type == nullptr || type->kind() != Value::Kind::kString || type->str() != "S")) {
            key_ok = false;
          }
        }
      }
      if (!key_ok) {
        return absl::FailedPreconditionError(absl::StrCat(
            "Table ", table, " is not a lease table: its key must be the hash key leaseKey (S)"));
      }
      const Value* status = t->Find("TableStatus");
      const std::string state =
          status != nullptr && status->kind() == Value::Kind::kString ? status->str() : "";
      if (state == "ACTIVE") return absl::OkStatus();
      if (state == "DELETING") {
        return absl::FailedPreconditionError(
            absl::StrCat("Lease table ", table, " is being deleted"));
      }
    }
    if (absl::Now() + options_.poll_interval > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("Lease table ", table, " is not ACTIVE after ",
                       absl::FormatDuration(options_.table_ready_timeout)));
    }
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(options_.poll_interval));
  }
}

absl::StatusOr<std::vector<Lease>> DynamoDbCheckpointStore::ListLeases() {
  std::vector<Lease> leases;
  std::optional<Value> start;
  do {
    Writer w(wire::Format::kJson);
    w.BeginObject();
    TableKey(w, options_.table);
    w.Key("ConsistentRead");
    w.Bool(true);
    if (options_.scan_page_limit > 0) {
      w.Key("Limit");
      w.Int(options_.scan_page_limit);
    }
    if (start.has_value()) {
      w.Key("ExclusiveStartKey");
      w.Write(*start);
    }
    w.EndObject();
    absl::StatusOr<Value> r = client_->Call("Scan", w.data());
    if (!r.ok()) return WithContext(r.status(), absl::StrCat("Scan ", options_.table));
    scan_pages_.fetch_add(1, std::memory_order_relaxed);
    if (const Value* items = r->Find("Items"); items != nullptr) {
      for (const Value& item : items->items()) {
        absl::StatusOr<Lease> lease = LeaseOf(item);
        if (!lease.ok()) return lease.status();
        leases.push_back(*std::move(lease));
      }
    }
    start.reset();
    if (const Value* last = r->Find("LastEvaluatedKey");
        last != nullptr && last->kind() == Value::Kind::kObject && !last->members().empty()) {
      start = *last;
    }
  } while (start.has_value());
  std::sort(leases.begin(), leases.end(),
            [](const Lease& a, const Lease& b) { return a.lease_key < b.lease_key; });
  return leases;
}

absl::Status DynamoDbCheckpointStore::CreateLeaseIfNotExists(const Lease& lease) {
  if (absl::Status s = Validate(lease); !s.ok()) return s;
  Writer w(wire::Format::kJson);
  w.BeginObject();
  TableKey(w, options_.table);
  w.Key("Item");
  w.BeginObject();
  w.Key(kLeaseKey);
  StringAttr(w, lease.lease_key);
  if (!lease.owner.empty()) {
    w.Key(kLeaseOwner);
    StringAttr(w, lease.owner);
  }
  w.Key(kLeaseCounter);
  NumberAttr(w, lease.lease_counter);
  if (!lease.checkpoint.empty()) {
    w.Key(kCheckpoint);
    StringAttr(w, lease.checkpoint);
  }
  w.Key(kCheckpointSub);
  NumberAttr(w, 0);
  w.Key(kOwnerSwitches);
  NumberAttr(w, lease.owner_switches_since_checkpoint);
  w.Key(kLastRenewal);
  NumberAttr(w, lease.last_renewal_ms);
  if (!lease.parent_shard_ids.empty()) {
    w.Key(kParentShardId);
    w.BeginObject();
    w.Key("SS");
    w.BeginArray();
    for (const std::string& p : lease.parent_shard_ids) w.String(p);
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  w.Key("ConditionExpression");
  w.String("attribute_not_exists(#k)");
  w.Key("ExpressionAttributeNames");
  w.BeginObject();
  w.Key("#k");
  w.String(kLeaseKey);
  w.EndObject();
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("PutItem", w.data());
  if (r.ok() || IsConditionalCheckFailed(r.status())) return absl::OkStatus();  // exists
  return WithContext(r.status(), absl::StrCat("PutItem ", options_.table, " ", lease.lease_key));
}

absl::Status DynamoDbCheckpointStore::UpdateLease(const Lease& lease, uint64_t expected_counter) {
  if (absl::Status s = Validate(lease); !s.ok()) return s;
  // SET what the lease has, REMOVE the optional attributes it has not.
  std::string set = "#c = :counter, #sub = :zero, #sw = :switches, #r = :renewal";
  std::string remove;
  auto add_remove = [&](std::string_view name) {
    absl::StrAppend(&remove, remove.empty() ? " REMOVE " : ", ", ToAbsl(name));
  };
  if (lease.owner.empty()) {
    add_remove("#o");
  } else {
    set += ", #o = :owner";
  }
  if (lease.checkpoint.empty()) {
    add_remove("#cp");
  } else {
    set += ", #cp = :checkpoint";
  }
  if (lease.parent_shard_ids.empty()) {
    add_remove("#p");
  } else {
    set += ", #p = :parents";
  }
  Writer w(wire::Format::kJson);
  w.BeginObject();
  TableKey(w, options_.table);
  ItemKey(w, lease.lease_key);
  w.Key("UpdateExpression");
  w.String(absl::StrCat("SET ", set, remove));
  CounterCondition(w);
  w.Key("ExpressionAttributeNames");
  w.BeginObject();
  for (auto [alias, name] : {std::pair{"#k", kLeaseKey}, std::pair{"#c", kLeaseCounter},
                             std::pair{"#sub", kCheckpointSub}, std::pair{"#sw", kOwnerSwitches},
                             std::pair{"#r", kLastRenewal}, std::pair{"#o", kLeaseOwner},
                             std::pair{"#cp", kCheckpoint}, std::pair{"#p", kParentShardId}}) {
    w.Key(alias);
    w.String(name);
  }
  w.EndObject();
  w.Key("ExpressionAttributeValues");
  w.BeginObject();
  w.Key(":expected");
  NumberAttr(w, expected_counter);
  w.Key(":counter");
  NumberAttr(w, lease.lease_counter);
  w.Key(":zero");
  NumberAttr(w, 0);
  w.Key(":switches");
  NumberAttr(w, lease.owner_switches_since_checkpoint);
  w.Key(":renewal");
  NumberAttr(w, lease.last_renewal_ms);
  if (!lease.owner.empty()) {
    w.Key(":owner");
    StringAttr(w, lease.owner);
  }
  if (!lease.checkpoint.empty()) {
    w.Key(":checkpoint");
    StringAttr(w, lease.checkpoint);
  }
  if (!lease.parent_shard_ids.empty()) {
    w.Key(":parents");
    w.BeginObject();
    w.Key("SS");
    w.BeginArray();
    for (const std::string& p : lease.parent_shard_ids) w.String(p);
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("UpdateItem", w.data());
  if (r.ok()) return absl::OkStatus();
  if (IsConditionalCheckFailed(r.status())) {
    return ExplainConditionFailure(lease.lease_key, expected_counter);
  }
  return WithContext(r.status(), absl::StrCat("UpdateItem ", options_.table, " ", lease.lease_key));
}

absl::Status DynamoDbCheckpointStore::DeleteLease(std::string_view lease_key,
                                                  uint64_t expected_counter) {
  if (lease_key.empty()) return InvalidArgument("A lease key must not be empty");
  Writer w(wire::Format::kJson);
  w.BeginObject();
  TableKey(w, options_.table);
  ItemKey(w, lease_key);
  CounterCondition(w);
  w.Key("ExpressionAttributeNames");
  w.BeginObject();
  w.Key("#k");
  w.String(kLeaseKey);
  w.Key("#c");
  w.String(kLeaseCounter);
  w.EndObject();
  w.Key("ExpressionAttributeValues");
  w.BeginObject();
  w.Key(":expected");
  NumberAttr(w, expected_counter);
  w.EndObject();
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("DeleteItem", w.data());
  if (r.ok()) return absl::OkStatus();
  if (IsConditionalCheckFailed(r.status())) {
    return ExplainConditionFailure(lease_key, expected_counter);
  }
  return WithContext(r.status(),
                     absl::StrCat("DeleteItem ", options_.table, " ", ToAbsl(lease_key)));
}

absl::Status DynamoDbCheckpointStore::ExplainConditionFailure(std::string_view key,
                                                              uint64_t expected_counter) {
  Writer w(wire::Format::kJson);
  w.BeginObject();
  TableKey(w, options_.table);
  ItemKey(w, key);
  w.Key("ConsistentRead");
  w.Bool(true);
  w.EndObject();
  absl::StatusOr<Value> r = client_->Call("GetItem", w.data());
  if (!r.ok()) {
    return WithContext(r.status(), absl::StrCat("GetItem ", options_.table, " ", ToAbsl(key)));
  }
  const Value* item = r->Find("Item");
  if (item == nullptr || item->kind() != Value::Kind::kObject) {
    return ResourceNotFound(absl::StrCat("No lease for ", ToAbsl(key)));
  }
  uint64_t stored = 0;
  if (absl::Status s = ReadNumber(*item, kLeaseCounter, &stored); !s.ok()) return s;
  if (stored == expected_counter) {  // changed and changed back since the write
    return ConditionalCheckFailed(absl::StrCat("The conditional request failed: lease ",
                                               ToAbsl(key), " changed during the write"));
  }
  return ConditionalCheckFailed(absl::StrCat("The conditional request failed: lease ", ToAbsl(key),
                                             " is at counter ", stored, ", not ",
                                             expected_counter));
}

}  // namespace kinlet::remote
