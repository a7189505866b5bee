// tests/remote/endpoint_scenario.hpp: the scenario suite of RemoteStream and
// RemoteRegistry, a function of an endpoint and its profile
// (endpoint_profile.hpp): every call with its results and errors, the same
// assertions against kinlet-gateway (in-process, in remote_stream_test.cpp),
// kinesalite and kinesis-mock (endpoint_test.cpp, started by
// endpoint_driver.py). Catch2 assertions; call from a TEST_CASE.
#pragma once

#include <string>

#include "endpoint_profile.hpp"
#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/remote/remote_registry.hpp"

namespace kinlet::remote::testing {

// A RemoteOptions for `endpoint` as `profile` says (HTTP version, TLS
// verification), with static test credentials and short retry delays.
RemoteOptions OptionsFor(const std::string& endpoint, const EndpointProfile& profile);

// Streams: create, list, open by name and ARN, PutRecord(s), GetShardIterator
// (all five types), GetRecords (next iterator, MillisBehindLatest, child
// shards), ListShards (filters, paging), DescribeStream(Summary), retention,
// tags, SplitShard, MergeShards, UpdateShardCount, UpdateStreamMode, fan-out
// consumers, delete, and the errors of each. `local`, when given, is the
// endpoint's own registry (the in-process gateway): results are compared with
// the same streams read in-process, and per-entry PutRecords failures are
// injected there. Stream names start with `prefix`.
void RunScenario(RemoteRegistry& remote, const EndpointProfile& profile,
                 gateway::WireRegistry* local, const std::string& prefix);

// Where the profile says an endpoint accepts SplitShard / MergeShards of a
// closed shard (which in-process and Kinesis refuse): checks that it does, on
// a stream of its own (the accepted calls change its shards). Nothing to do
// for an endpoint that refuses them (RunScenario checks the refusal).
void RunClosedShardQuirks(RemoteRegistry& remote, const EndpointProfile& profile,
                          const std::string& prefix);

// SubscribeToShard: the pull handle and the callback form, a second
// subscription of the same consumer, Cancel, an unknown shard. Where the
// profile says the endpoint has no fan-out, checks the error it answers.
void RunSubscribeScenario(RemoteRegistry& remote, const EndpointProfile& profile,
                          const std::string& prefix);

}  // namespace kinlet::remote::testing
