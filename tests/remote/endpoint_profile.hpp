// tests/remote/endpoint_profile.hpp: what an endpoint forces the scenario
// suite (endpoint_scenario.hpp) to expect differently from kinlet's in-process
// stream. Every field that is not the in-process default is a difference that
// the suite asserts (the endpoint's actual answer), never a skipped check;
// tests/remote/ENDPOINTS.md lists each with the server's response.
#pragma once

#include <optional>
#include <string>

#include "kinlet/remote/http_client.hpp"

namespace kinlet::remote::testing {

struct EndpointProfile {
  // "kinlet-gateway", "kinesalite" or "kinesis-mock".
  std::string name;
  // How the client talks to it (kinesis-mock: HTTP/2 over TLS with its
  // self-signed certificate, verification off; the others: HTTP/1.1).
  HttpVersion http_version = HttpVersion::kHttp11;
  bool verify_tls = true;

  // Stream and consumer updates return before the stream (consumer) is ACTIVE
  // again: the suite waits for ACTIVE (DescribeStreamSummary /
  // DescribeStreamConsumer) after each. Otherwise it checks ACTIVE at once.
  bool async_updates = false;

  // Operations the endpoint does not offer: the `__type` it answers them with
  // (checked: the call must fail with exactly that type). Empty: offered.
  std::string update_shard_count_missing;
  std::string update_stream_mode_missing;
  std::string fan_out_missing;    // Register/Describe/List/DeregisterStreamConsumer
  std::string subscribe_missing;  // SubscribeToShard (with fan-out offered)

  // Error types where an endpoint answers differently from in-process (and
  // Kinesis). Empty where the endpoint accepts what in-process refuses.
  //   A stream addressed by StreamARN instead of StreamName (RemoteRegistry::
  //   GetStream / DescribeStreamSummary / DeleteStream by ARN; empty: understood):
  std::string stream_arn_error;
  //   CreateStream with ShardCount 0:
  std::string zero_shards_error = "ValidationException";
  //   PutRecord with an empty partition key:
  std::string empty_key_error = "ValidationException";
  //   PutRecords with no entries (empty: accepted, an empty result):
  std::string empty_put_records_error = "ValidationException";
  //   GetRecords with Limit 0:
  std::string zero_limit_error = "ValidationException";
  //   PutRecord of 1 MiB + 1 byte of data:
  std::string too_big_error = "ValidationException";
  //   GetRecords on an iterator text that is not one of the endpoint's:
  std::string bad_iterator_error = "InvalidArgumentException";
  //   GetShardIterator AT_TIMESTAMP an hour ahead (empty: accepted, reads nothing):
  std::string future_timestamp_error = "InvalidArgumentException";
  //   IncreaseStreamRetentionPeriod shorter / DecreaseStreamRetentionPeriod longer:
  std::string retention_direction_error = "InvalidArgumentException";
  //   SplitShard of a closed shard (empty: accepted; checked on a stream of its own):
  std::string resplit_error = "InvalidArgumentException";
  //   MergeShards of a closed shard with its open neighbour (empty: accepted, as above):
  std::string merge_closed_error = "InvalidArgumentException";
  //   UpdateShardCount to 100 from 2 (more than double):
  std::string update_shard_count_too_far_error = "LimitExceededException";
  //   UpdateShardCount on an ON_DEMAND stream (empty: accepted):
  std::string on_demand_update_shard_count_error = "ValidationException";
  //   UpdateStreamMode to the mode the stream has (empty: accepted):
  std::string same_stream_mode_error = "InvalidArgumentException";
  //   DeleteStream with a registered consumer, without EnforceConsumerDeletion:
  std::string delete_with_consumer_error = "ResourceInUseException";
  //   A second SubscribeToShard of the same consumer and shard while the
  //   first is live (empty: accepted):
  std::string second_subscription_error = "ResourceInUseException";

  // SubscribeToShard of a shard the stream does not have answers 200 and
  // starts an event stream of empty events (as for an empty shard) instead of
  // ResourceNotFoundException.
  bool unknown_shard_subscription_starts = false;
  // The refused DeleteStream above deletes the stream all the same.
  bool refused_delete_deletes = false;
  // GetRecords names the child shards on a closed shard's last page (false:
  // it ends the shard, no NextShardIterator, without ChildShards; the suite
  // takes the children from ListShards' ParentShardId).
  bool child_shards_in_get_records = true;
  // ListShards pages by MaxResults/NextToken; false: MaxResults is ignored
  // (every shard, no NextToken), and the suite sends no NextToken.
  bool list_shards_pages = true;
  // ListShards applies ShardFilter; false: ignored (every shard).
  bool list_shards_filters = true;
  // AT_TRIM_HORIZON lists every shard within retention (as FROM_TRIM_HORIZON),
  // not only those open at the trim horizon.
  bool at_trim_horizon_lists_all = false;

  // The stream's ARN account (kinlet-gateway and kinesis-mock: the
  // configured one; kinesalite: its own fixed one).
  std::string account_id = "000000000000";
};

// The profiles of the endpoints the suite runs against.
EndpointProfile GatewayProfile();
EndpointProfile KinesaliteProfile();
EndpointProfile KinesisMockProfile();
// By name ("kinlet-gateway", "kinesalite", "kinesis-mock"); nullopt otherwise.
std::optional<EndpointProfile> ProfileNamed(const std::string& name);

}  // namespace kinlet::remote::testing
