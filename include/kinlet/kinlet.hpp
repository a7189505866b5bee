// kinlet/kinlet.hpp: the umbrella header. Include this, or the one header of
// the concept you use. kinlet/md5_hasher.hpp is separate (it needs OpenSSL).
#pragma once

#include "kinlet/clock.hpp"
#include "kinlet/config.hpp"
#include "kinlet/consumer.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/hasher.hpp"
#include "kinlet/payload.hpp"
#include "kinlet/record.hpp"
#include "kinlet/registry.hpp"
#include "kinlet/ring_log.hpp"
#include "kinlet/sequence_number.hpp"
#include "kinlet/shard.hpp"
#include "kinlet/shard_iterator.hpp"
#include "kinlet/stream.hpp"
#include "kinlet/stream_options.hpp"
#include "kinlet/traits.hpp"
