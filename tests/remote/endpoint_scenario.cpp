// The scenario suite of RemoteStream and RemoteRegistry (see
// endpoint_scenario.hpp) and the endpoint profiles (endpoint_profile.hpp).
#include "endpoint_scenario.hpp"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "kinlet/remote/remote_errors.hpp"
#include "kinlet/wire/errors.hpp"
#include "test_credentials.hpp"

namespace kinlet::remote::testing {

// ---- Profiles ---------------------------------------------------------------

EndpointProfile GatewayProfile() {
  EndpointProfile p;
  p.name = "kinlet-gateway";
  return p;
}

EndpointProfile KinesaliteProfile() {
  EndpointProfile p;
  p.name = "kinesalite";
  p.http_version = HttpVersion::kHttp11;  // kinesalite serves HTTP/1.1 only
  p.async_updates = true;
  p.update_shard_count_missing = "UnknownOperationException";
  p.update_stream_mode_missing = "UnknownOperationException";
  p.fan_out_missing = "UnknownOperationException";
  p.stream_arn_error = "ValidationException";
  p.child_shards_in_get_records = false;
  p.list_shards_pages = false;
  p.list_shards_filters = false;
  p.resplit_error = "";
  p.merge_closed_error = "";
  return p;
}

EndpointProfile KinesisMockProfile() {
  EndpointProfile p;
  p.name = "kinesis-mock";
  p.http_version = HttpVersion::kHttp2Tls;
  p.verify_tls = false;  // its own self-signed certificate (no name for 127.0.0.1)
  p.async_updates = true;
  p.zero_shards_error = "LimitExceededException";
  p.empty_key_error = "InvalidArgumentException";
  p.empty_put_records_error = "";
  p.too_big_error = "InvalidArgumentException";
  p.zero_limit_error = "InvalidArgumentException";
  p.unknown_shard_subscription_starts = true;
  p.second_subscription_error = "";
  p.bad_iterator_error = "InternalFailure";
  p.resplit_error = "ResourceInUseException";
  p.merge_closed_error = "ResourceInUseException";
  p.update_shard_count_too_far_error = "InvalidArgumentException";
  p.on_demand_update_shard_count_error = "";
  p.same_stream_mode_error = "";
  p.refused_delete_deletes = true;
  p.at_trim_horizon_lists_all = true;
  return p;
}

std::optional<EndpointProfile> ProfileNamed(const std::string& name) {
  for (EndpointProfile p : {GatewayProfile(), KinesaliteProfile(), KinesisMockProfile()}) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}

// ---- Helpers ----------------------------------------------------------------

namespace {

std::string TypeOf(const absl::Status& s) { return s.ok() ? "" : wire::ErrorTypeOf(s); }

// After an update (reshard, mode switch): the stream is ACTIVE at once on a
// synchronous endpoint; an asynchronous one is polled until it is.
void AwaitActive(const RemoteStream& stream, const EndpointProfile& profile) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    auto summary = stream.DescribeStreamSummary();
    INFO(summary.status().ToString());
    REQUIRE(summary.ok());
    if (!profile.async_updates) {
      CHECK(summary->stream_status == StreamStatus::kActive);
      return;
    }
    if (summary->stream_status == StreamStatus::kActive) return;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The same for a consumer after RegisterStreamConsumer; returns its description.
StreamConsumerDescription AwaitConsumerActive(const RemoteStream& stream,
                                              const StreamConsumerDescription& registered,
                                              const EndpointProfile& profile) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    auto d = stream.DescribeStreamConsumer(registered.consumer_arn);
    INFO(d.status().ToString());
    REQUIRE(d.ok());
    if (!profile.async_updates) {
      CHECK(d->consumer_status == ConsumerStatus::kActive);
      return *d;
    }
    if (d->consumer_status == ConsumerStatus::kActive) return *d;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::vector<std::string> IdsOf(const std::vector<ShardDescription>& shards) {
  std::vector<std::string> ids;
  for (const auto& s : shards) ids.push_back(s.shard_id);
  return ids;
}

std::vector<std::string> ListIds(const RemoteStream& stream, ShardFilter filter) {
  ListShardsRequest request;
  request.filter = std::move(filter);
  auto page = stream.ListShards(request);
  INFO(page.status().ToString());
  REQUIRE(page.ok());
  return IdsOf(page->shards);
}

}  // namespace

RemoteOptions OptionsFor(const std::string& endpoint, const EndpointProfile& profile) {
  RemoteOptions options;
  options.endpoint = endpoint;
  options.credentials = kinlet_test::TestCredentials();
  options.http.http_version = profile.http_version;
  options.http.tls.verify_peer = profile.verify_tls;
  options.retry.base_delay = absl::Milliseconds(1);
  options.retry.throttle_base_delay = absl::Milliseconds(2);
  options.retry.call_timeout = absl::Seconds(20);
  return options;
}

// ---- The suite ----------------------------------------------------------------

void RunScenario(RemoteRegistry& remote, const EndpointProfile& profile,
                 gateway::WireRegistry* local, const std::string& prefix) {
  INFO("endpoint " << profile.name);
  const std::string name = prefix + "-orders";
  StreamOptions so;
  so.name = name;
  so.shard_count = 2;
  auto created = remote.CreateStream(so);
  INFO(created.status().ToString());
  REQUIRE(created.ok());
  std::shared_ptr<RemoteStream> stream = *created;
  CHECK(stream->name() == name);
  CHECK(stream->arn() == "arn:aws:kinesis:us-east-1:" + profile.account_id + ":stream/" + name);

  // Creating it again: ResourceInUseException, kAlreadyExists as in-process.
  auto again = remote.CreateStream(so);
  REQUIRE_FALSE(again.ok());
  CHECK(IsResourceInUse(again.status()));
  CHECK(again.status().code() == absl::StatusCode::kAlreadyExists);
  // Invalid arguments: ValidationException before anything is created.
  StreamOptions no_shards = so;
  no_shards.name = prefix + "-empty";
  no_shards.shard_count = 0;
  auto refused = remote.CreateStream(no_shards);
  REQUIRE_FALSE(refused.ok());
  CHECK(TypeOf(refused.status()) == profile.zero_shards_error);

  // Listing and opening by name and by ARN.
  auto names = remote.ListStreams();
  REQUIRE(names.ok());
  CHECK(std::find(names->begin(), names->end(), name) != names->end());
  CHECK(std::find(names->begin(), names->end(), no_shards.name) == names->end());
  auto by_arn = remote.GetStream(stream->arn());
  if (profile.stream_arn_error.empty()) {
    REQUIRE(by_arn.ok());
    CHECK((*by_arn)->name() == name);
  } else {
    REQUIRE_FALSE(by_arn.ok());
    CHECK(TypeOf(by_arn.status()) == profile.stream_arn_error);
  }
  auto missing = remote.GetStream(prefix + "-missing");
  REQUIRE_FALSE(missing.ok());
  CHECK(IsResourceNotFound(missing.status()));
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK_FALSE(missing.status().message().empty());

  // PutRecord and PutRecords.
  auto put = stream->PutRecord("user-1", "hello");
  INFO(put.status().ToString());
  REQUIRE(put.ok());
  CHECK(put->shard_id.substr(0, 8) == "shardId-");
  // Real Kinesis, kinesalite and kinesis-mock print 56 digits; kinlet-gateway
  // its own (shorter) numbers: both parse and round-trip.
  const std::string sequence_text = put->sequence_number.ToString();
  CHECK(SequenceNumber::Parse(sequence_text).value() == put->sequence_number);
  const std::string shard(put->shard_id);
  auto hashed = stream->PutRecord("k", "explicit", {HashKey{0}, std::nullopt});
  REQUIRE(hashed.ok());
  CHECK(hashed->shard_id == "shardId-000000000000");
  CHECK(hashed->sequence_number != put->sequence_number);
  std::vector<std::string> keys = {"a", "b", "c"};
  std::vector<std::string> datas = {"1", "22", "333"};
  std::vector<RemoteStream::Entry> entries;
  for (size_t i = 0; i < keys.size(); ++i) entries.push_back({keys[i], datas[i], std::nullopt});
  entries.push_back({"d", "4444", kMaxHashKey});
  auto batch = stream->PutRecords(entries);
  REQUIRE(batch.ok());
  CHECK(batch->failed_record_count == 0);
  REQUIRE(batch->records.size() == 4);
  for (const auto& r : batch->records) CHECK(r.ok());
  CHECK(batch->records[3].shard_id == "shardId-000000000001");

  size_t accepted_under_faults = 0;
  // Per-entry failures: only an endpoint we can throttle on demand (the
  // in-process one, by its fault injection) gives them reproducibly.
  if (local != nullptr) {
    auto in_process = local->GetStream(name);
    REQUIRE(in_process.ok());
    FaultInjection half;  // deterministic for a seed: the same entries fail each run
    half.throttle_put_fraction = 0.5;
    half.seed = 11;
    REQUIRE((*in_process)->SetFaultInjection(half).ok());
    RemoteOptions impatient = remote.options();
    impatient.retry.max_attempts = 1;  // the per-entry failures come back unretried
    auto once = RemoteRegistry::Create(impatient);
    REQUIRE(once.ok());
    auto once_stream = (*once)->GetStream(name);
    REQUIRE(once_stream.ok());
    std::vector<std::string> mixed_keys;
    for (int i = 0; i < 10; ++i) mixed_keys.push_back("m" + std::to_string(i));
    std::vector<RemoteStream::Entry> mixed;
    for (const auto& k : mixed_keys) mixed.push_back({k, "mixed", std::nullopt});
    auto partial = (*once_stream)->PutRecords(mixed);
    REQUIRE(partial.ok());
    REQUIRE(partial->records.size() == mixed.size());
    int failed = 0;
    for (const auto& r : partial->records) {
      if (r.ok()) continue;
      ++failed;
      CHECK(r.error_code == ErrorCode::kProvisionedThroughputExceeded);
    }
    CHECK(failed == partial->failed_record_count);
    CHECK(failed > 0);
    CHECK(failed < static_cast<int>(mixed.size()));
    accepted_under_faults = mixed.size() - failed;
    REQUIRE((*in_process)->SetFaultInjection({}).ok());
  }

  // Request-level errors, as in-process.
  auto empty_key = stream->PutRecord("", "x");
  REQUIRE_FALSE(empty_key.ok());
  CHECK(TypeOf(empty_key.status()) == profile.empty_key_error);
  auto no_entries = stream->PutRecords(std::span<const RemoteStream::Entry>());
  if (profile.empty_put_records_error.empty()) {
    REQUIRE(no_entries.ok());
    CHECK(no_entries->records.empty());
    CHECK(no_entries->failed_record_count == 0);
  } else {
    REQUIRE_FALSE(no_entries.ok());
    CHECK(TypeOf(no_entries.status()) == profile.empty_put_records_error);
  }
  auto too_big = stream->PutRecord("k", std::string(1024 * 1024 + 1, 'x'));
  REQUIRE_FALSE(too_big.ok());
  CHECK(TypeOf(too_big.status()) == profile.too_big_error);

  // GetShardIterator (all five types) and GetRecords.
  auto at =
      stream->GetShardIterator(shard, IteratorPosition::AtSequenceNumber(put->sequence_number));
  INFO(at.status().ToString());
  REQUIRE(at.ok());
  auto page = stream->GetRecords(*at, 1);
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 1);
  CHECK(page->records[0].data == "hello");
  CHECK(page->records[0].partition_key == "user-1");
  CHECK(page->records[0].sequence_number == put->sequence_number);
  CHECK(page->records[0].approximate_arrival_timestamp > absl::UnixEpoch());
  CHECK(page->millis_behind_latest >= 0);
  REQUIRE(page->next_shard_iterator.has_value());
  CHECK(page->next_shard_iterator->shard_id() == shard);
  auto by_text = stream->GetRecords(page->next_shard_iterator->ToString());
  REQUIRE(by_text.ok());
  // Read to the tip: nothing is behind.
  CHECK(by_text->millis_behind_latest == 0);
  auto after =
      stream->GetShardIterator(shard, IteratorPosition::AfterSequenceNumber(put->sequence_number));
  REQUIRE(after.ok());
  auto after_page = stream->GetRecords(*after);
  REQUIRE(after_page.ok());
  CHECK(after_page->records.size() == by_text->records.size());
  std::map<std::string, std::vector<std::string>> by_shard;  // data read from each shard
  for (const std::string& s :
       {std::string("shardId-000000000000"), std::string("shardId-000000000001")}) {
    auto trim = stream->GetShardIterator(s, IteratorPosition::TrimHorizon());
    REQUIRE(trim.ok());
    auto p = stream->GetRecords(*trim);
    REQUIRE(p.ok());
    CHECK(p->millis_behind_latest == 0);
    for (const auto& r : p->records) by_shard[s].push_back(r.data);
    auto latest = stream->GetShardIterator(s, IteratorPosition::Latest());
    REQUIRE(latest.ok());
    auto none = stream->GetRecords(*latest);
    REQUIRE(none.ok());
    CHECK(none->records.empty());
    REQUIRE(none->next_shard_iterator.has_value());
    auto since =
        stream->GetShardIterator(s, IteratorPosition::AtTimestamp(absl::Now() - absl::Minutes(1)));
    REQUIRE(since.ok());
    auto all = stream->GetRecords(*since);
    REQUIRE(all.ok());
    CHECK(all->records.size() == p->records.size());
    auto future =
        stream->GetShardIterator(s, IteratorPosition::AtTimestamp(absl::Now() + absl::Hours(1)));
    if (profile.future_timestamp_error.empty()) {
      REQUIRE(future.ok());
      auto nothing = stream->GetRecords(*future);
      REQUIRE(nothing.ok());
      CHECK(nothing->records.empty());
    } else {
      REQUIRE_FALSE(future.ok());
      CHECK(TypeOf(future.status()) == profile.future_timestamp_error);
    }
  }
  // Every record written went to one shard: 2 PutRecord + 4 PutRecords
  // (+ those accepted under fault injection).
  const size_t written = 6 + accepted_under_faults;
  CHECK(by_shard["shardId-000000000000"].size() + by_shard["shardId-000000000001"].size() ==
        written);
  CHECK(std::count(by_shard["shardId-000000000000"].begin(), by_shard["shardId-000000000000"].end(),
                   "explicit") == 1);
  CHECK(std::count(by_shard["shardId-000000000001"].begin(), by_shard["shardId-000000000001"].end(),
                   "4444") == 1);

  auto bad_shard = stream->GetShardIterator("shardId-000000000099", IteratorPosition::Latest());
  REQUIRE_FALSE(bad_shard.ok());
  CHECK(IsResourceNotFound(bad_shard.status()));
  auto bad_iterator = stream->GetRecords(std::string_view("not-an-iterator"));
  REQUIRE_FALSE(bad_iterator.ok());
  CHECK(TypeOf(bad_iterator.status()) == profile.bad_iterator_error);
  auto bad_limit = stream->GetRecords(*at, 0);
  REQUIRE_FALSE(bad_limit.ok());
  CHECK(bad_limit.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(TypeOf(bad_limit.status()) == profile.zero_limit_error);

  // ListShards (paging, filters), DescribeStream(Summary), compared with in-process.
  auto shards = stream->ListShards();
  REQUIRE(shards.ok());
  REQUIRE(shards->size() == 2);
  CHECK(IdsOf(*shards) == std::vector<std::string>{"shardId-000000000000", "shardId-000000000001"});
  CHECK((*shards)[0].hash_key_range.starting_hash_key == HashKey{0});
  CHECK((*shards)[1].hash_key_range.ending_hash_key == kMaxHashKey);
  CHECK((*shards)[0].hash_key_range.ending_hash_key + 1 ==
        (*shards)[1].hash_key_range.starting_hash_key);
  ListShardsRequest one;
  one.max_results = 1;
  auto first_page = stream->ListShards(one);
  REQUIRE(first_page.ok());
  if (profile.list_shards_pages) {
    REQUIRE(first_page->shards.size() == 1);
    REQUIRE_FALSE(first_page->next_token.empty());
    ListShardsRequest next;
    next.next_token = first_page->next_token;
    auto second_page = stream->ListShards(next);
    REQUIRE(second_page.ok());
    REQUIRE(second_page->shards.size() == 1);
    CHECK(second_page->shards[0].shard_id == (*shards)[1].shard_id);
    CHECK(second_page->next_token.empty());
    ListShardsRequest token_and_filter;  // a token with a filter: InvalidArgument
    token_and_filter.next_token = first_page->next_token;
    token_and_filter.filter = ShardFilter::AtLatest();
    auto both = stream->ListShards(token_and_filter);
    REQUIRE_FALSE(both.ok());
    CHECK(kinlet::IsInvalidArgument(both.status()));
  } else {
    // MaxResults ignored: every shard on one page, no token to send.
    CHECK(IdsOf(first_page->shards) == IdsOf(*shards));
    CHECK(first_page->next_token.empty());
  }
  ListShardsRequest exclusive;
  exclusive.exclusive_start_shard_id = (*shards)[0].shard_id;
  auto after_first = stream->ListShards(exclusive);
  REQUIRE(after_first.ok());
  CHECK(IdsOf(after_first->shards) == std::vector<std::string>{(*shards)[1].shard_id});
  CHECK(ListIds(*stream, ShardFilter::AfterShardId((*shards)[0].shard_id)) ==
        (profile.list_shards_filters ? std::vector<std::string>{(*shards)[1].shard_id}
                                     : IdsOf(*shards)));
  auto summary = stream->DescribeStreamSummary();
  REQUIRE(summary.ok());
  CHECK(summary->stream_name == name);
  CHECK(summary->stream_arn == stream->arn());
  CHECK(summary->open_shard_count == 2);
  CHECK(summary->stream_status == StreamStatus::kActive);
  CHECK(summary->retention_period == absl::Hours(24));
  CHECK(summary->stream_mode == StreamMode::kProvisioned);
  CHECK(summary->stream_creation_timestamp > absl::Now() - absl::Hours(1));
  auto description = stream->DescribeStream();
  REQUIRE(description.ok());
  CHECK(IdsOf(description->shards) == IdsOf(*shards));
  CHECK(description->stream_name == name);
  auto by_registry = remote.DescribeStreamSummary(name);
  REQUIRE(by_registry.ok());
  CHECK(by_registry->stream_arn == stream->arn());
  if (local != nullptr) {
    auto in_process = local->GetStream(name);
    REQUIRE(in_process.ok());
    auto local_shards = (*in_process)->ListShards();
    REQUIRE(local_shards.ok());
    REQUIRE(local_shards->size() == shards->size());
    for (size_t i = 0; i < shards->size(); ++i) {
      CHECK((*shards)[i].shard_id == (*local_shards)[i].shard_id);
      CHECK((*shards)[i].hash_key_range == (*local_shards)[i].hash_key_range);
      CHECK((*shards)[i].sequence_number_range.starting_sequence_number ==
            (*local_shards)[i].sequence_number_range.starting_sequence_number);
    }
    auto local_summary = (*in_process)->DescribeStreamSummary();
    REQUIRE(local_summary.ok());
    CHECK(local_summary->stream_arn == summary->stream_arn);
    // The record read remotely is the one stored in-process.
    auto local_it =
        (*in_process)
            ->GetShardIterator(shard, IteratorPosition::AtSequenceNumber(put->sequence_number));
    REQUIRE(local_it.ok());
    auto local_page = (*in_process)->GetRecords(*local_it, 1);
    REQUIRE(local_page.ok());
    REQUIRE(local_page->records.size() == 1);
    CHECK(local_page->records[0].data == "hello");
  }

  // Retention: increase, a shorter "increase" refused, decrease.
  REQUIRE(stream->IncreaseStreamRetentionPeriod(absl::Hours(48)).ok());
  CHECK(stream->DescribeStreamSummary()->retention_period == absl::Hours(48));
  auto shorter = stream->IncreaseStreamRetentionPeriod(absl::Hours(30));
  REQUIRE_FALSE(shorter.ok());
  CHECK(TypeOf(shorter) == profile.retention_direction_error);
  auto longer = stream->DecreaseStreamRetentionPeriod(absl::Hours(72));
  REQUIRE_FALSE(longer.ok());
  CHECK(TypeOf(longer) == profile.retention_direction_error);
  auto below_minimum = stream->DecreaseStreamRetentionPeriod(absl::Hours(12));
  REQUIRE_FALSE(below_minimum.ok());
  CHECK((IsValidationError(below_minimum) || kinlet::IsInvalidArgument(below_minimum)));
  REQUIRE(stream->DecreaseStreamRetentionPeriod(absl::Hours(24)).ok());
  CHECK(stream->DescribeStreamSummary()->retention_period == absl::Hours(24));

  // Tags.
  REQUIRE(stream->AddTagsToStream({{"team", "data"}, {"env", "test"}}).ok());
  REQUIRE(stream->RemoveTagsFromStream({"env"}).ok());
  auto tags = stream->ListTagsForStream();
  REQUIRE(tags.ok());
  CHECK(*tags == std::map<std::string, std::string>{{"team", "data"}});
  auto bad_tag = stream->AddTagsToStream({{"", "empty key"}});
  REQUIRE_FALSE(bad_tag.ok());
  CHECK((IsValidationError(bad_tag) || kinlet::IsInvalidArgument(bad_tag)));

  // Resharding, then reading a closed parent to its end.
  const HashKey middle = (*shards)[0].hash_key_range.ending_hash_key / 2;
  const absl::Time before_split = absl::Now();
  REQUIRE(stream->SplitShard((*shards)[0].shard_id, middle).ok());
  AwaitActive(*stream, profile);
  if (!profile.resplit_error.empty()) {
    auto resplit = stream->SplitShard((*shards)[0].shard_id, middle);
    REQUIRE_FALSE(resplit.ok());
    CHECK(TypeOf(resplit) == profile.resplit_error);
  }  // else: accepted, checked on a stream of its own (RunClosedShardQuirks)
  auto unknown_split = stream->SplitShard("shardId-000000000099", middle);
  CHECK(IsResourceNotFound(unknown_split));
  auto parent_it = stream->GetShardIterator((*shards)[0].shard_id, IteratorPosition::TrimHorizon());
  REQUIRE(parent_it.ok());
  std::optional<RemoteShardIterator> cursor = *parent_it;
  std::vector<ChildShard> children;
  size_t parent_records = 0;
  for (int i = 0; i < 10 && cursor.has_value(); ++i) {
    auto p = stream->GetRecords(*cursor);
    REQUIRE(p.ok());
    parent_records += p->records.size();
    cursor = p->next_shard_iterator;
    if (!p->child_shards.empty()) children = p->child_shards;
  }
  CHECK_FALSE(cursor.has_value());
  CHECK(parent_records == by_shard["shardId-000000000000"].size());
  if (!profile.child_shards_in_get_records) {
    // None in the last page: the children as ListShards describes them.
    CHECK(children.empty());
    auto listed = stream->ListShards();
    REQUIRE(listed.ok());
    for (const auto& d : *listed) {
      if (d.parent_shard_id.has_value()) {
        CHECK_FALSE(d.adjacent_parent_shard_id.has_value());
        children.push_back({d.shard_id, {*d.parent_shard_id}, d.hash_key_range});
      }
    }
  }
  REQUIRE(children.size() == 2);
  CHECK(children[0].shard_id == "shardId-000000000002");
  CHECK(children[1].shard_id == "shardId-000000000003");
  for (const auto& child : children) {
    CHECK(child.parent_shards == std::vector<std::string>{(*shards)[0].shard_id});
  }
  CHECK(children[0].hash_key_range.ending_hash_key + 1 == middle);
  CHECK(children[1].hash_key_range.starting_hash_key == middle);
  auto all = stream->ListShards();
  REQUIRE(all.ok());
  CHECK(all->size() == 4);
  const std::vector<std::string> every = {"shardId-000000000000", "shardId-000000000001",
                                          "shardId-000000000002", "shardId-000000000003"};
  const std::vector<std::string> open_now = {"shardId-000000000001", "shardId-000000000002",
                                             "shardId-000000000003"};
  const std::vector<std::string> at_start = {"shardId-000000000000", "shardId-000000000001"};
  const auto filtered = [&](const std::vector<std::string>& want) {
    return profile.list_shards_filters ? want : every;
  };
  CHECK(IdsOf(*all) == every);
  CHECK(ListIds(*stream, ShardFilter::AtLatest()) == filtered(open_now));
  CHECK(ListIds(*stream, ShardFilter::AtTrimHorizon()) ==
        filtered(profile.at_trim_horizon_lists_all ? every : at_start));
  CHECK(ListIds(*stream, ShardFilter::FromTrimHorizon()) == every);
  CHECK(ListIds(*stream, ShardFilter::AtTimestamp(before_split - absl::Seconds(1))) ==
        filtered(at_start));
  CHECK(ListIds(*stream, ShardFilter::FromTimestamp(absl::Now() + absl::Seconds(1))) ==
        filtered(open_now));
  auto summary_after = stream->DescribeStreamSummary();
  REQUIRE(summary_after.ok());
  CHECK(summary_after->open_shard_count == 3);

  REQUIRE(stream->MergeShards("shardId-000000000002", "shardId-000000000003").ok());
  AwaitActive(*stream, profile);
  if (profile.list_shards_filters) {
    CHECK(ListIds(*stream, ShardFilter::AtLatest()) ==
          std::vector<std::string>{"shardId-000000000001", "shardId-000000000004"});
  }
  CHECK(stream->DescribeStreamSummary()->open_shard_count == 2);
  auto unknown_merge = stream->MergeShards("shardId-000000000009", "shardId-000000000001");
  CHECK(IsResourceNotFound(unknown_merge));
  if (!profile.merge_closed_error.empty()) {
    auto closed = stream->MergeShards("shardId-000000000000", "shardId-000000000001");
    REQUIRE_FALSE(closed.ok());  // shard 0 is closed
    CHECK(TypeOf(closed) == profile.merge_closed_error);
  }  // else: accepted, checked on a stream of its own (RunClosedShardQuirks)

  auto scaled = stream->UpdateShardCount(4);
  if (profile.update_shard_count_missing.empty()) {
    INFO(scaled.status().ToString());
    REQUIRE(scaled.ok());
    CHECK(scaled->current_shard_count == 2);
    CHECK(scaled->target_shard_count == 4);
    AwaitActive(*stream, profile);
    CHECK(stream->DescribeStreamSummary()->open_shard_count == 4);
    auto too_far = stream->UpdateShardCount(100);
    REQUIRE_FALSE(too_far.ok());
    CHECK(TypeOf(too_far.status()) == profile.update_shard_count_too_far_error);
  } else {
    REQUIRE_FALSE(scaled.ok());
    CHECK(TypeOf(scaled.status()) == profile.update_shard_count_missing);
  }

  // Capacity modes.
  auto same_mode = stream->UpdateStreamMode(StreamMode::kProvisioned);
  if (profile.update_stream_mode_missing.empty()) {
    if (profile.same_stream_mode_error.empty()) {
      CHECK(same_mode.ok());
      AwaitActive(*stream, profile);
    } else {
      REQUIRE_FALSE(same_mode.ok());
      CHECK(TypeOf(same_mode) == profile.same_stream_mode_error);
    }
    INFO("UpdateStreamMode(ON_DEMAND)");
    REQUIRE(stream->UpdateStreamMode(StreamMode::kOnDemand).ok());
    AwaitActive(*stream, profile);
    CHECK(stream->DescribeStreamSummary()->stream_mode == StreamMode::kOnDemand);
    auto on_demand_scale = stream->UpdateShardCount(2);
    if (profile.on_demand_update_shard_count_error.empty()) {
      CHECK(on_demand_scale.ok());
      AwaitActive(*stream, profile);
    } else {
      REQUIRE_FALSE(on_demand_scale.ok());
      CHECK(TypeOf(on_demand_scale.status()) == profile.on_demand_update_shard_count_error);
    }
    REQUIRE(stream->UpdateStreamMode(StreamMode::kProvisioned).ok());
    AwaitActive(*stream, profile);
    CHECK(stream->DescribeStreamSummary()->stream_mode == StreamMode::kProvisioned);
  } else {
    REQUIRE_FALSE(same_mode.ok());
    CHECK(TypeOf(same_mode) == profile.update_stream_mode_missing);
  }

  // Enhanced fan-out consumers.
  auto consumer = stream->RegisterStreamConsumer("alerts");
  if (profile.fan_out_missing.empty()) {
    INFO(consumer.status().ToString());
    REQUIRE(consumer.ok());
    CHECK(consumer->consumer_name == "alerts");
    CHECK(consumer->stream_arn == stream->arn());
    CHECK(consumer->consumer_arn.rfind(stream->arn() + "/consumer/alerts:", 0) == 0);
    const StreamConsumerDescription active = AwaitConsumerActive(*stream, *consumer, profile);
    CHECK(active.consumer_arn == consumer->consumer_arn);
    auto taken = stream->RegisterStreamConsumer("alerts");
    REQUIRE_FALSE(taken.ok());
    CHECK(IsResourceInUse(taken.status()));
    auto described = stream->DescribeStreamConsumer("alerts");  // by name
    REQUIRE(described.ok());
    CHECK(described->consumer_arn == consumer->consumer_arn);
    auto listed = stream->ListStreamConsumers();
    REQUIRE(listed.ok());
    REQUIRE(listed->size() == 1);
    CHECK((*listed)[0].consumer_name == "alerts");
    CHECK(stream->DescribeStreamSummary()->consumer_count == 1);
    REQUIRE(stream->DeregisterStreamConsumer(consumer->consumer_arn).ok());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    absl::Status gone_consumer;
    for (;;) {
      gone_consumer = stream->DescribeStreamConsumer("alerts").status();
      if (!gone_consumer.ok() || !profile.async_updates) break;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(IsResourceNotFound(gone_consumer));
    CHECK(IsResourceNotFound(stream->DeregisterStreamConsumer("alerts")));
  } else {
    REQUIRE_FALSE(consumer.ok());
    CHECK(TypeOf(consumer.status()) == profile.fan_out_missing);
    auto listed = stream->ListStreamConsumers();
    REQUIRE_FALSE(listed.ok());
    CHECK(TypeOf(listed.status()) == profile.fan_out_missing);
    auto described = stream->DescribeStreamConsumer(stream->arn() + "/consumer/alerts:1");
    REQUIRE_FALSE(described.ok());
    CHECK(TypeOf(described.status()) == profile.fan_out_missing);
    auto deregistered = stream->DeregisterStreamConsumer(stream->arn() + "/consumer/alerts:1");
    REQUIRE_FALSE(deregistered.ok());
    CHECK(TypeOf(deregistered) == profile.fan_out_missing);
  }

  // Deletion: refused while a consumer is registered, then enforced.
  bool deleted = false;
  if (profile.fan_out_missing.empty()) {
    auto blocker = stream->RegisterStreamConsumer("blocker");
    REQUIRE(blocker.ok());
    AwaitConsumerActive(*stream, *blocker, profile);
    auto busy = remote.DeleteStream(name);
    REQUIRE_FALSE(busy.ok());
    CHECK(TypeOf(busy) == profile.delete_with_consumer_error);
    auto still = stream->DescribeStreamSummary();
    if (profile.refused_delete_deletes) {
      REQUIRE_FALSE(still.ok());
      CHECK(IsResourceNotFound(still.status()));
      deleted = true;
    } else {
      REQUIRE(still.ok());
      CHECK(still->consumer_count == 1);
      REQUIRE(remote.DeleteStream(name, /*enforce_consumer_deletion=*/true).ok());
      deleted = true;
    }
  }
  if (!deleted) REQUIRE(remote.DeleteStream(name).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    auto s = stream->DescribeStreamSummary();
    if (!s.ok()) {
      CHECK(IsResourceNotFound(s.status()));
      break;
    }
    REQUIRE(profile.async_updates);  // a synchronous endpoint has deleted it
    INFO("status " << static_cast<int>(s->stream_status));
    CHECK(s->stream_status == StreamStatus::kDeleting);
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto gone = stream->PutRecord("k", "v");
  REQUIRE_FALSE(gone.ok());
  CHECK(IsResourceNotFound(gone.status()));
  CHECK(IsResourceNotFound(remote.DeleteStream(name)));
  auto listed_after = remote.ListStreams();
  REQUIRE(listed_after.ok());
  CHECK(std::find(listed_after->begin(), listed_after->end(), name) == listed_after->end());
}

void RunClosedShardQuirks(RemoteRegistry& remote, const EndpointProfile& profile,
                          const std::string& prefix) {
  if (!profile.resplit_error.empty() && !profile.merge_closed_error.empty()) return;
  INFO("endpoint " << profile.name << ": closed shards accepted by SplitShard / MergeShards");
  StreamOptions so;
  so.name = prefix + "-closed";
  so.shard_count = 2;
  auto stream = remote.CreateStream(so);
  REQUIRE(stream.ok());
  auto shards = (*stream)->ListShards();
  REQUIRE(shards.ok());
  const HashKey middle = (*shards)[0].hash_key_range.ending_hash_key / 2;
  REQUIRE((*stream)->SplitShard("shardId-000000000000", middle).ok());
  AwaitActive(**stream, profile);
  if (profile.resplit_error.empty()) {
    // Accepted: the closed parent is split again, two more children appear.
    CHECK((*stream)->SplitShard("shardId-000000000000", middle).ok());
    AwaitActive(**stream, profile);
    auto after = (*stream)->ListShards();
    REQUIRE(after.ok());
    CHECK(after->size() == 6);
  }
  if (profile.merge_closed_error.empty()) {
    // Accepted: the closed shard 0 is merged with shard 1.
    CHECK((*stream)->MergeShards("shardId-000000000000", "shardId-000000000001").ok());
    AwaitActive(**stream, profile);
  }
  REQUIRE(remote.DeleteStream(so.name).ok());
}

void RunSubscribeScenario(RemoteRegistry& remote, const EndpointProfile& profile,
                          const std::string& prefix) {
  INFO("endpoint " << profile.name);
  StreamOptions so;
  so.name = prefix + "-events";
  auto stream = remote.CreateStream(so);
  INFO(stream.status().ToString());
  REQUIRE(stream.ok());
  if (!profile.fan_out_missing.empty()) {
    // No consumers: SubscribeToShard cannot name one; by ARN it is refused.
    auto sub = (*stream)->SubscribeToShard((*stream)->arn() + "/consumer/reader:1",
                                           "shardId-000000000000", IteratorPosition::TrimHorizon());
    REQUIRE_FALSE(sub.ok());
    CHECK(TypeOf(sub.status()) == profile.fan_out_missing);
    REQUIRE(remote.DeleteStream(so.name).ok());
    return;
  }
  auto consumer = (*stream)->RegisterStreamConsumer("reader");
  REQUIRE(consumer.ok());
  AwaitConsumerActive(**stream, *consumer, profile);
  for (int i = 0; i < 3; ++i) REQUIRE((*stream)->PutRecord("k", "r" + std::to_string(i)).ok());

  auto sub = (*stream)->SubscribeToShard("reader", "shardId-000000000000",
                                         IteratorPosition::TrimHorizon());
  if (!profile.subscribe_missing.empty()) {
    REQUIRE_FALSE(sub.ok());
    CHECK(TypeOf(sub.status()) == profile.subscribe_missing);
    REQUIRE(remote.DeleteStream(so.name, /*enforce_consumer_deletion=*/true).ok());
    return;
  }
  INFO(sub.status().ToString());
  REQUIRE(sub.ok());
  std::vector<std::string> got;
  bool live_put = false;
  SubscribeToShardEvent<std::string> event;
  for (int i = 0; i < 100 && got.size() < 4; ++i) {
    absl::Status next = (*sub)->Next(&event, absl::Milliseconds(200));
    if (absl::IsDeadlineExceeded(next)) continue;
    INFO(next.ToString());
    REQUIRE(next.ok());
    for (const auto& r : event.records()) got.push_back(r.data);
    if (got.size() == 3 && !live_put) {
      REQUIRE((*stream)->PutRecord("k", "live").ok());
      live_put = true;
    }
  }
  CHECK(got == std::vector<std::string>{"r0", "r1", "r2", "live"});
  REQUIRE(event.continuation_sequence_number.has_value());

  // A second subscription of the same consumer and shard while the first is live.
  auto second = (*stream)->SubscribeToShard(consumer->consumer_arn, "shardId-000000000000",
                                            IteratorPosition::Latest());
  if (profile.second_subscription_error.empty()) {
    CHECK(second.ok());
    second->reset();
  } else {
    REQUIRE_FALSE(second.ok());
    CHECK(TypeOf(second.status()) == profile.second_subscription_error);
  }
  (*sub)->Cancel();
  absl::Status end;
  for (int i = 0; i < 20; ++i) {
    end = (*sub)->Next(&event, absl::Milliseconds(100));
    if (!end.ok() && !absl::IsDeadlineExceeded(end)) break;
  }
  CHECK(end.code() == absl::StatusCode::kOutOfRange);
  CHECK((*sub)->ended());
  sub->reset();

  // Unknown shard: an error before the stream starts.
  auto unknown =
      (*stream)->SubscribeToShard("reader", "shardId-000000000007", IteratorPosition::Latest());
  if (profile.unknown_shard_subscription_starts) {
    INFO(unknown.status().ToString());
    REQUIRE(unknown.ok());
    absl::Status first;
    for (int i = 0; i < 20; ++i) {
      first = (*unknown)->Next(&event, absl::Milliseconds(100));
      if (!absl::IsDeadlineExceeded(first)) break;
    }
    // An event stream of empty events, as if the shard existed and were empty.
    CHECK(first.ok());
    CHECK(event.records().empty());
    unknown->reset();
  } else {
    REQUIRE_FALSE(unknown.ok());
    CHECK(IsResourceNotFound(unknown.status()));
  }
  // Unknown consumer.
  auto nobody =
      (*stream)->SubscribeToShard("nobody", "shardId-000000000000", IteratorPosition::Latest());
  REQUIRE_FALSE(nobody.ok());
  CHECK(IsResourceNotFound(nobody.status()));

  // The callback form, on a second consumer.
  auto pusher = (*stream)->RegisterStreamConsumer("pusher");
  REQUIRE(pusher.ok());
  AwaitConsumerActive(**stream, *pusher, profile);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> pushed;  // guarded by mu: written by the delivery thread
  std::atomic<int> ends{0};
  auto push = (*stream)->SubscribeToShard(
      "pusher", "shardId-000000000000", IteratorPosition::TrimHorizon(),
      [&](const SubscribeToShardEvent<std::string>& ev) {
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& r : ev.records()) pushed.push_back(r.data);
        cv.notify_all();
      },
      [&](const absl::Status&) { ends.fetch_add(1); });
  INFO(push.status().ToString());
  REQUIRE(push.ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return pushed.size() >= 4; });
    CHECK(pushed == std::vector<std::string>{"r0", "r1", "r2", "live"});
  }
  push->reset();
  CHECK(ends.load() == 1);
  REQUIRE(remote.DeleteStream(so.name, /*enforce_consumer_deletion=*/true).ok());
}

}  // namespace kinlet::remote::testing
