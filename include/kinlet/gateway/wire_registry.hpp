// kinlet/gateway/wire_registry.hpp: the kind of registry a gateway serves.
//
// Streams served over Kinesis's wire protocol carry bytes (std::string
// payloads) and place records by the MD5 of the partition key, as Kinesis does:
// a key lands on the shard it would land on in AWS, so code and tests that
// depend on placement (explicit hash keys next to partition keys, ListShards
// by hash range) see AWS's answer. Create the registry in C++ and hand it to
// the gateway to share its streams between the process and the wire.
#pragma once

#include <string>

#include "kinlet/md5_hasher.hpp"
#include "kinlet/registry.hpp"
#include "kinlet/traits.hpp"

namespace kinlet::gateway {

struct WireStreamTraits : DefaultStreamTraits {
  using Hasher = Md5Hasher;
};

using WireRegistry = Registry<std::string, WireStreamTraits>;
using WireStream = WireRegistry::StreamType;

}  // namespace kinlet::gateway
