// Tests for kinlet/hasher.hpp and kinlet/md5_hasher.hpp: partition-key hashers and
// Kinesis-compatible shard placement.
#include "kinlet/hasher.hpp"

#include <xxhash.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/numeric/int128.h"
#include "kinlet/hash_key.hpp"
#include "kinlet/md5_hasher.hpp"
#include "kinlet/stream.hpp"
#include "kinlet/traits.hpp"

namespace {

using kinlet::HashKey;

struct Md5Traits : kinlet::DefaultStreamTraits {
  using Hasher = kinlet::Md5Hasher;
};

HashKey ReferenceXxh3(std::string_view key) {
  const XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  return absl::MakeUint128(h.high64, h.low64);
}

// MD5 vectors (python3 hashlib), as hex and as the big-endian decimal Kinesis shows.
struct Md5Vector {
  std::string_view key;
  HashKey value;             // the hex digest, high 8 bytes first
  std::string_view decimal;  // int(hexdigest, 16)
};

const std::vector<Md5Vector>& Md5Vectors() {
  static const std::vector<Md5Vector> vectors = {
      // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
      {"a", absl::MakeUint128(0x0cc175b9c0f1b6a8u, 0x31c399e269772661u),
       "16955237001963240173058271559858726497"},
      // MD5("") = d41d8cd98f00b204e9800998ecf8427e
      {"", absl::MakeUint128(0xd41d8cd98f00b204u, 0xe9800998ecf8427eu),
       "281949768489412648962353822266799178366"},
      // MD5("user123") = 6ad14ba9986e3615423dfca256d04e3f
      {"user123", absl::MakeUint128(0x6ad14ba9986e3615u, 0x423dfca256d04e3fu),
       "141984892214089559021068280593678093887"},
      // MD5("beta") = 987bcab01b929eb2c07877b224215c92
      {"beta", absl::MakeUint128(0x987bcab01b929eb2u, 0xc07877b224215c92u),
       "202685418872336884493770735918403116178"},
      // MD5("omega") = c6d6bd7ebf806f43c76acc3681703b81
      {"omega", absl::MakeUint128(0xc6d6bd7ebf806f43u, 0xc76acc3681703b81u),
       "264302138110570267724244541192497281921"},
  };
  return vectors;
}

// The shard of a 4-shard stream that owns `hash`: shard i covers
// [i * 2^126, (i + 1) * 2^126 - 1], so the index is the top two bits.
int ExpectedShardOfFour(HashKey hash) { return static_cast<int>(absl::Uint128High64(hash) >> 62); }

}  // namespace

static_assert(kinlet::PartitionKeyHasher<kinlet::Xxh3Hasher>);
static_assert(kinlet::PartitionKeyHasher<kinlet::Md5Hasher>);
static_assert(kinlet::StreamTraits<Md5Traits>);

TEST_CASE("Xxh3Hasher is XXH3-128 with the high 64 bits first", "[hasher]") {
  for (std::string_view key :
       {std::string_view(""), std::string_view("a"), std::string_view("user123"),
        std::string_view("shardId-000000000000"),
        std::string_view("a much longer partition key that spans more "
                         "than one stripe of the XXH3 input block, "
                         "well past one hundred and twenty-eight bytes "
                         "of text, to take the long-input path")}) {
    INFO("'" << key << "'");
    const HashKey h = kinlet::Xxh3Hasher::Hash(key);
    CHECK(h == ReferenceXxh3(key));
    CHECK(h == kinlet::Xxh3Hasher::Hash(key));  // deterministic
  }
  SECTION("embedded NUL bytes count") {
    const std::string with_nul("a\0b", 3);
    CHECK(kinlet::Xxh3Hasher::Hash(with_nul) == ReferenceXxh3(with_nul));
    CHECK(kinlet::Xxh3Hasher::Hash(with_nul) != kinlet::Xxh3Hasher::Hash("a"));
  }
  SECTION("different keys give different hashes") {
    CHECK(kinlet::Xxh3Hasher::Hash("user123") != kinlet::Xxh3Hasher::Hash("user124"));
  }
}

TEST_CASE("Md5Hasher reads the MD5 digest as a big-endian 128-bit integer", "[hasher][md5]") {
  for (const Md5Vector& v : Md5Vectors()) {
    INFO("'" << v.key << "'");
    const HashKey h = kinlet::Md5Hasher::Hash(v.key);
    CHECK(h == v.value);
    CHECK(kinlet::HashKeyToString(h) == v.decimal);
    CHECK(kinlet::Md5Hasher::Hash(v.key) == h);  // deterministic
  }
  SECTION("the decimal of MD5(\"a\") is Kinesis's hash key for \"a\"") {
    CHECK(kinlet::HashKeyToString(kinlet::Md5Hasher::Hash("a")) ==
          "16955237001963240173058271559858726497");
  }
}

TEST_CASE("A 4-shard Md5 stream places keys in the shard real Kinesis would", "[hasher][md5]") {
  kinlet::StreamOptions options;
  options.name = "md5-placement";
  options.shard_count = 4;
  options.max_record_size_bytes = 64 * 1024;
  options.shard_capacity_records = 64;
  options.shard_capacity_bytes = 1 << 20;
  auto stream = kinlet::Stream<std::string, Md5Traits>::Create(options);
  REQUIRE(stream.ok());
  const std::vector<kinlet::HashKeyRange> ranges = kinlet::InitialHashKeyRanges(4);

  SECTION("user123") {
    // 141984892214089559021068280593678093887 / 2^126 = 1.67: shard 1.
    const HashKey hash = absl::MakeUint128(0x6ad14ba9986e3615u, 0x423dfca256d04e3fu);
    REQUIRE(kinlet::HashKeyToString(hash) == "141984892214089559021068280593678093887");
    const int expected = ExpectedShardOfFour(hash);
    CHECK(expected == 1);
    CHECK(ranges[static_cast<size_t>(expected)].Contains(hash));
    auto put = (*stream)->PutRecord("user123", "payload");
    REQUIRE(put.ok());
    CHECK(put->shard_id == kinlet::ShardIdFor(static_cast<uint32_t>(expected)));
    CHECK(put->shard_id == "shardId-000000000001");
    CHECK(put->sequence_number.shard_index() == static_cast<uint32_t>(expected));
  }
  SECTION("keys covering every shard") {
    for (const Md5Vector& v : Md5Vectors()) {
      if (v.key.empty()) continue;  // not a valid partition key
      INFO("'" << v.key << "'");
      const int expected = ExpectedShardOfFour(v.value);
      CHECK(ranges[static_cast<size_t>(expected)].Contains(v.value));
      auto put = (*stream)->PutRecord(v.key, "payload");
      REQUIRE(put.ok());
      CHECK(put->shard_id == kinlet::ShardIdFor(static_cast<uint32_t>(expected)));
    }
    // "a" -> 0, "user123" -> 1, "beta" -> 2, "omega" -> 3.
    CHECK((*stream)->PutRecord("a", "x")->shard_id == "shardId-000000000000");
    CHECK((*stream)->PutRecord("beta", "x")->shard_id == "shardId-000000000002");
    CHECK((*stream)->PutRecord("omega", "x")->shard_id == "shardId-000000000003");
  }
}
