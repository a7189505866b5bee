// Tests for kinlet/stream_options.hpp: CreateStream's option checks and status names.
#include "kinlet/stream_options.hpp"

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "kinlet/errors.hpp"
#include "kinlet/stream.hpp"

namespace {

using Catch::Matchers::Contains;
using kinlet::kMiB;
using kinlet::StreamOptions;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

StreamOptions Valid() {
  StreamOptions o;
  o.name = "orders";
  return o;
}

// The ring bytes a record of the maximum size needs with a 1024-byte key: both are
// multiples of 8, so no rounding.
constexpr size_t kNeededFor1MiB = 1024 + kMiB;

struct BadCase {
  const char* label;
  std::function<void(StreamOptions&)> change;
  bool validation;  // ValidationException rather than InvalidArgumentException
};

std::vector<BadCase> BadCases() {
  return {
      {"empty name", [](StreamOptions& o) { o.name = ""; }, true},
      {"129-character name", [](StreamOptions& o) { o.name = std::string(129, 'a'); }, true},
      {"name with a space and '!'", [](StreamOptions& o) { o.name = "bad name!"; }, true},
      {"name with '/'", [](StreamOptions& o) { o.name = "a/b"; }, true},
      {"name with ':'", [](StreamOptions& o) { o.name = "a:b"; }, true},
      {"name with non-ASCII", [](StreamOptions& o) { o.name = "caf\xc3\xa9"; }, true},
      {"shard_count 0", [](StreamOptions& o) { o.shard_count = 0; }, false},
      {"shard_count negative", [](StreamOptions& o) { o.shard_count = -1; }, false},
      {"shard_count over max_shard_count",
       [](StreamOptions& o) {
         o.max_shard_count = 8;
         o.shard_count = 9;
       },
       false},
      {"max_shard_count 0", [](StreamOptions& o) { o.max_shard_count = 0; }, false},
      {"retention 0", [](StreamOptions& o) { o.retention_period = absl::ZeroDuration(); }, false},
      {"retention negative", [](StreamOptions& o) { o.retention_period = absl::Hours(-1); }, false},
      {"max record size 0", [](StreamOptions& o) { o.max_record_size_bytes = 0; }, true},
      {"max record size 10 MiB + 1",
       [](StreamOptions& o) { o.max_record_size_bytes = 10 * kMiB + 1; }, true},
      {"shard_capacity_records 0", [](StreamOptions& o) { o.shard_capacity_records = 0; }, false},
      {"shard_capacity_bytes too small", [](StreamOptions& o) { o.shard_capacity_bytes = 1024; },
       false},
      {"iterator_ttl 0", [](StreamOptions& o) { o.iterator_ttl = absl::ZeroDuration(); }, false},
      {"iterator_ttl negative", [](StreamOptions& o) { o.iterator_ttl = absl::Seconds(-1); },
       false},
      {"max_put_records_entries 0", [](StreamOptions& o) { o.max_put_records_entries = 0; }, false},
      {"max_put_records_bytes 0", [](StreamOptions& o) { o.max_put_records_bytes = 0; }, false},
      {"max_get_records_bytes 0", [](StreamOptions& o) { o.max_get_records_bytes = 0; }, false},
      {"max_get_records_limit 0", [](StreamOptions& o) { o.max_get_records_limit = 0; }, false},
  };
}

}  // namespace

TEST_CASE("Default options with a valid name are valid", "[stream_options]") {
  const StreamOptions o = Valid();
  CHECK(kinlet::ValidateStreamOptions(o).ok());
  CHECK(o.shard_count == 1);
  CHECK(o.retention_period == absl::Hours(24));
  CHECK(o.max_record_size_bytes == kMiB);
  CHECK(o.iterator_ttl == absl::Minutes(5));
  CHECK(o.max_put_records_entries == 500);
  CHECK(o.max_put_records_bytes == 5 * kMiB);
  CHECK(o.max_get_records_bytes == 10 * kMiB);
  CHECK(o.max_get_records_limit == 10000);
  SECTION("but the default name is empty and invalid") {
    CHECK(kinlet::IsValidationError(kinlet::ValidateStreamOptions(StreamOptions{})));
  }
}

TEST_CASE("Stream names follow [a-zA-Z0-9_.-]{1,128}", "[stream_options]") {
  StreamOptions o = Valid();
  SECTION("128 characters") {
    o.name = std::string(128, 'x');
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
  SECTION("every allowed character class") {
    o.name = "a-b_c.D9";
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
  SECTION("one character") {
    o.name = "Z";
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
  SECTION("129 characters") {
    o.name = std::string(129, 'x');
    const absl::Status s = kinlet::ValidateStreamOptions(o);
    CHECK(kinlet::IsValidationError(s));
    CHECK_THAT(Msg(s), Contains("streamName"));
  }
  SECTION("empty") {
    o.name = "";
    CHECK(kinlet::IsValidationError(kinlet::ValidateStreamOptions(o)));
  }
  SECTION("bad characters") {
    o.name = "bad name!";
    const absl::Status s = kinlet::ValidateStreamOptions(o);
    CHECK(kinlet::IsValidationError(s));
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(Msg(s), Contains("bad name!") && Contains("streamName"));
  }
}

TEST_CASE("Shard count must be between 1 and max_shard_count", "[stream_options]") {
  StreamOptions o = Valid();
  o.max_shard_count = 8;
  SECTION("0") {
    o.shard_count = 0;
    const absl::Status s = kinlet::ValidateStreamOptions(o);
    CHECK(kinlet::IsInvalidArgument(s));
    CHECK_THAT(Msg(s), Contains("ShardCount"));
  }
  SECTION("max_shard_count + 1") {
    o.shard_count = 9;
    CHECK(kinlet::IsInvalidArgument(kinlet::ValidateStreamOptions(o)));
  }
  SECTION("exactly max_shard_count") {
    o.shard_count = 8;
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
  SECTION("the default open shard limit is Kinesis's 10,000; held shards 100,000") {
    StreamOptions d = Valid();
    CHECK(d.max_open_shard_count == 10000);
    CHECK(d.max_shard_count == 100000);
    d.shard_count = 10001;
    CHECK(kinlet::IsInvalidArgument(kinlet::ValidateStreamOptions(d)));
  }
}

TEST_CASE("Retention period must be positive", "[stream_options]") {
  StreamOptions o = Valid();
  SECTION("zero") {
    o.retention_period = absl::ZeroDuration();
    CHECK(kinlet::IsInvalidArgument(kinlet::ValidateStreamOptions(o)));
  }
  SECTION("negative") {
    o.retention_period = absl::Seconds(-1);
    CHECK(kinlet::IsInvalidArgument(kinlet::ValidateStreamOptions(o)));
  }
  SECTION("shorter than Kinesis allows is fine in-process") {
    o.retention_period = absl::Milliseconds(1);
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
  SECTION("a year") {
    o.retention_period = absl::Hours(8760);
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
}

TEST_CASE("Max record size is 1 byte to 10 MiB", "[stream_options]") {
  StreamOptions o = Valid();
  SECTION("0 is invalid") {
    o.max_record_size_bytes = 0;
    const absl::Status s = kinlet::ValidateStreamOptions(o);
    CHECK(kinlet::IsValidationError(s));  // AWS: MaxRecordSizeInKiB out of range
    CHECK_THAT(Msg(s), Contains("MaxRecordSize"));
  }
  SECTION("10 MiB + 1 is invalid") {
    o.max_record_size_bytes = 10 * kMiB + 1;
    CHECK(kinlet::IsValidationError(kinlet::ValidateStreamOptions(o)));
    o.shard_capacity_bytes = 256 * kMiB;  // not a capacity problem
    CHECK(kinlet::IsValidationError(kinlet::ValidateStreamOptions(o)));
  }
  SECTION("10 MiB is valid with automatic capacity") {
    o.max_record_size_bytes = 10 * kMiB;
    o.shard_capacity_bytes = 0;
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
  SECTION("10 MiB is valid with an explicit capacity large enough") {
    o.max_record_size_bytes = 10 * kMiB;
    o.shard_capacity_bytes = 16 * kMiB;
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
  SECTION("1 byte is valid") {
    o.max_record_size_bytes = 1;
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
}

TEST_CASE("Shard capacity must hold a record of the maximum size", "[stream_options]") {
  StreamOptions o = Valid();  // max record 1 MiB; the key may add 1024 bytes
  SECTION("far too small") {
    o.shard_capacity_bytes = 1024;
    const absl::Status s = kinlet::ValidateStreamOptions(o);
    CHECK(kinlet::IsInvalidArgument(s));
    CHECK_THAT(Msg(s), Contains("shard_capacity_bytes"));
  }
  SECTION("smaller than the max record itself") {
    o.max_record_size_bytes = 10 * kMiB;
    o.shard_capacity_bytes = 8 * kMiB;
    CHECK(kinlet::IsInvalidArgument(kinlet::ValidateStreamOptions(o)));
  }
  SECTION("one byte short of a max key plus a max payload") {
    o.shard_capacity_bytes = kNeededFor1MiB - 1;
    CHECK(kinlet::IsInvalidArgument(kinlet::ValidateStreamOptions(o)));
  }
  SECTION("exactly a max key plus a max payload") {
    o.shard_capacity_bytes = kNeededFor1MiB;
    CHECK(kinlet::ValidateStreamOptions(o).ok());
  }
}

TEST_CASE("EffectiveShardCapacityBytes defaults to max(64 MiB, 4 x max record)",
          "[stream_options]") {
  StreamOptions o = Valid();
  CHECK(o.shard_capacity_bytes == 0);
  CHECK(o.EffectiveShardCapacityBytes() == 64 * kMiB);
  o.max_record_size_bytes = 10 * kMiB;
  CHECK(o.EffectiveShardCapacityBytes() == 64 * kMiB);  // 40 MiB < 64 MiB
  o.max_record_size_bytes = 20 * kMiB;                  // invalid, but the formula still applies
  CHECK(o.EffectiveShardCapacityBytes() == 80 * kMiB);
  SECTION("an explicit capacity is used as given") {
    o.shard_capacity_bytes = 3 * kMiB;
    CHECK(o.EffectiveShardCapacityBytes() == 3 * kMiB);
  }
}

TEST_CASE("Iterator TTL must be positive", "[stream_options]") {
  StreamOptions o = Valid();
  o.iterator_ttl = absl::ZeroDuration();
  const absl::Status s = kinlet::ValidateStreamOptions(o);
  CHECK(kinlet::IsInvalidArgument(s));
  CHECK_THAT(Msg(s), Contains("iterator_ttl"));
  o.iterator_ttl = absl::Milliseconds(1);
  CHECK(kinlet::ValidateStreamOptions(o).ok());
}

TEST_CASE("Every bad option is reported with the right error kind", "[stream_options]") {
  for (const BadCase& c : BadCases()) {
    StreamOptions o = Valid();
    c.change(o);
    const absl::Status s = kinlet::ValidateStreamOptions(o);
    INFO(c.label << ": " << s.ToString());
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    if (c.validation) {
      CHECK(kinlet::IsValidationError(s));
    } else {
      CHECK(kinlet::IsInvalidArgument(s));
    }
  }
}

TEST_CASE("Stream::Create rejects bad options with ValidateStreamOptions's error",
          "[stream_options]") {
  for (const BadCase& c : BadCases()) {
    StreamOptions o = Valid();
    c.change(o);
    const absl::Status expected = kinlet::ValidateStreamOptions(o);
    auto stream = kinlet::Stream<std::string>::Create(o);
    INFO(c.label << ": " << expected.ToString());
    REQUIRE_FALSE(stream.ok());
    CHECK(stream.status() == expected);
    CHECK(kinlet::ErrorCodeOf(stream.status()) == kinlet::ErrorCodeOf(expected));
  }
  SECTION("and accepts good ones") {
    StreamOptions o = Valid();
    o.name = "a-b_c.D9";
    o.shard_count = 2;
    o.shard_capacity_records = 16;
    o.shard_capacity_bytes = kNeededFor1MiB;
    auto stream = kinlet::Stream<std::string>::Create(o);
    REQUIRE(stream.ok());
    CHECK((*stream)->name() == "a-b_c.D9");
    CHECK((*stream)->open_shard_count() == 2);
  }
}

TEST_CASE("StreamStatusName spells the Kinesis status enum", "[stream_options]") {
  CHECK(kinlet::StreamStatusName(kinlet::StreamStatus::kCreating) == "CREATING");
  CHECK(kinlet::StreamStatusName(kinlet::StreamStatus::kDeleting) == "DELETING");
  CHECK(kinlet::StreamStatusName(kinlet::StreamStatus::kActive) == "ACTIVE");
  CHECK(kinlet::StreamStatusName(kinlet::StreamStatus::kUpdating) == "UPDATING");
  static_assert(kinlet::StreamStatusName(kinlet::StreamStatus::kActive) == "ACTIVE");
}
