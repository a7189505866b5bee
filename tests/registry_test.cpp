// Tests for kinlet/registry.hpp: named streams, as an account's Kinesis endpoint has them.
#include "kinlet/registry.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "kinlet/clock.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/traits.hpp"

namespace {

using Catch::Matchers::Contains;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// Small rings: these tests write a handful of records.
kinlet::StreamOptions Options(std::string name, int shard_count = 1) {
  kinlet::StreamOptions o;
  o.name = std::move(name);
  o.shard_count = shard_count;
  o.max_record_size_bytes = 64 * 1024;
  o.shard_capacity_records = 64;
  o.shard_capacity_bytes = 1 << 20;
  return o;
}

template <typename Status>
void CheckNotFound(const Status& s, const std::string& name) {
  CHECK(kinlet::IsResourceNotFound(s));
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK_THAT(Msg(s), Contains("Stream " + name + " under account ") && Contains("not found."));
}

}  // namespace

TEST_CASE("Registry creates named streams and hands out the same object", "[registry]") {
  kinlet::Registry<std::string> reg;
  auto created = reg.CreateStream(Options("orders", 2));
  REQUIRE(created.ok());
  CHECK((*created)->name() == "orders");
  CHECK((*created)->open_shard_count() == 2);

  auto got = reg.GetStream("orders");
  REQUIRE(got.ok());
  CHECK(got->get() == created->get());

  auto description = reg.DescribeStream("orders");
  REQUIRE(description.ok());
  CHECK(description->stream_name == "orders");
  CHECK(description->shards.size() == 2);
  CHECK(description->stream_status == kinlet::StreamStatus::kActive);

  auto summary = reg.DescribeStreamSummary("orders");
  REQUIRE(summary.ok());
  CHECK(summary->stream_name == "orders");
  CHECK(summary->open_shard_count == 2);
}

TEST_CASE("Registry stamps its account id on its streams", "[registry]") {
  kinlet::Registry<std::string> reg(kinlet::SystemClock::Default(), "123456789012");
  kinlet::StreamOptions o = Options("billing");
  o.account_id = "999999999999";  // overridden by the registry's
  auto created = reg.CreateStream(o);
  REQUIRE(created.ok());
  CHECK((*created)->arn() == "arn:aws:kinesis:us-east-1:123456789012:stream/billing");
  auto missing = reg.GetStream("nope");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(Msg(missing.status()), Contains("under account 123456789012"));
}

TEST_CASE("CreateStream with a taken name is ResourceInUse (kAlreadyExists)", "[registry]") {
  kinlet::Registry<std::string> reg;
  auto first = reg.CreateStream(Options("orders"));
  REQUIRE(first.ok());
  auto second = reg.CreateStream(Options("orders", 3));
  REQUIRE_FALSE(second.ok());
  CHECK(kinlet::IsResourceInUse(second.status()));
  CHECK(second.status().code() == absl::StatusCode::kAlreadyExists);
  CHECK_THAT(Msg(second.status()), Contains("orders") && Contains("already exists"));
  SECTION("the first stream is untouched") {
    auto got = reg.GetStream("orders");
    REQUIRE(got.ok());
    CHECK(got->get() == first->get());
    CHECK((*got)->open_shard_count() == 1);
    CHECK(reg.ListStreams() == std::vector<std::string>{"orders"});
  }
}

TEST_CASE("CreateStream with bad options fails and registers nothing", "[registry]") {
  kinlet::Registry<std::string> reg;
  SECTION("bad name") {
    auto s = reg.CreateStream(Options("bad name!"));
    REQUIRE_FALSE(s.ok());
    CHECK(kinlet::IsValidationError(s.status()));
  }
  SECTION("bad shard count") {
    auto s = reg.CreateStream(Options("orders", 0));
    REQUIRE_FALSE(s.ok());
    CHECK(kinlet::IsInvalidArgument(s.status()));
    CHECK_FALSE(reg.GetStream("orders").ok());
  }
  CHECK(reg.ListStreams().empty());
}

TEST_CASE("Unknown stream names are ResourceNotFound", "[registry]") {
  kinlet::Registry<std::string> reg;
  REQUIRE(reg.CreateStream(Options("orders")).ok());
  SECTION("GetStream") { CheckNotFound(reg.GetStream("nope").status(), "nope"); }
  SECTION("DescribeStream") { CheckNotFound(reg.DescribeStream("nope").status(), "nope"); }
  SECTION("DescribeStreamSummary") {
    CheckNotFound(reg.DescribeStreamSummary("nope").status(), "nope");
  }
  SECTION("DeleteStream") {
    CheckNotFound(reg.DeleteStream("nope"), "nope");
    CHECK(reg.ListStreams() == std::vector<std::string>{"orders"});
  }
  SECTION("names are case-sensitive") { CheckNotFound(reg.GetStream("Orders").status(), "Orders"); }
}

TEST_CASE("ListStreams returns the names sorted", "[registry]") {
  kinlet::Registry<std::string> reg;
  CHECK(reg.ListStreams().empty());
  for (const char* name : {"zeta", "alpha", "Mid", "beta", "alpha.2", "0-first"}) {
    REQUIRE(reg.CreateStream(Options(name)).ok());
  }
  CHECK(reg.ListStreams() ==
        std::vector<std::string>{"0-first", "Mid", "alpha", "alpha.2", "beta", "zeta"});
  REQUIRE(reg.DeleteStream("beta").ok());
  CHECK(reg.ListStreams() ==
        std::vector<std::string>{"0-first", "Mid", "alpha", "alpha.2", "zeta"});
}

TEST_CASE("DeleteStream frees the name and fails every call on old handles", "[registry]") {
  kinlet::Registry<std::string> reg;
  auto created = reg.CreateStream(Options("orders", 2));
  REQUIRE(created.ok());
  std::shared_ptr<kinlet::Stream<std::string>> old = *created;

  auto put = old->PutRecord("user123", "before");
  REQUIRE(put.ok());
  const std::string shard_id(put->shard_id);
  auto iterator = old->GetShardIterator(shard_id, kinlet::IteratorPosition::TrimHorizon());
  REQUIRE(iterator.ok());
  const std::string iterator_text = iterator->ToString();
  REQUIRE(old->GetRecords(*iterator).ok());  // readable before deletion

  REQUIRE(reg.DeleteStream("orders").ok());
  CHECK(old->deleted());

  SECTION("the registry forgets it") {
    CheckNotFound(reg.GetStream("orders").status(), "orders");
    CheckNotFound(reg.DescribeStream("orders").status(), "orders");
    CheckNotFound(reg.DescribeStreamSummary("orders").status(), "orders");
    CHECK(reg.ListStreams().empty());
    CheckNotFound(reg.DeleteStream("orders"), "orders");  // a second delete
  }
  SECTION("PutRecord on the old handle") {
    CheckNotFound(old->PutRecord("user123", "after").status(), "orders");
  }
  SECTION("PutRecords on the old handle") {
    auto result = old->PutRecords({{"k", "v", std::nullopt}});
    CheckNotFound(result.status(), "orders");
  }
  SECTION("GetShardIterator on the old handle") {
    CheckNotFound(old->GetShardIterator(shard_id, kinlet::IteratorPosition::TrimHorizon()).status(),
                  "orders");
    CheckNotFound(old->GetShardIterator(shard_id, kinlet::IteratorPosition::Latest()).status(),
                  "orders");
  }
  SECTION("GetRecords with an iterator taken before deletion") {
    CheckNotFound(old->GetRecords(*iterator).status(), "orders");
    CheckNotFound(old->GetRecords(std::string_view(iterator_text)).status(), "orders");
    kinlet::GetRecordsResult<std::string> page;
    CheckNotFound(old->GetRecords(*iterator, 10, &page), "orders");
    CHECK(page.records.empty());
    CHECK_FALSE(page.next_shard_iterator.has_value());
  }
  SECTION("DescribeStream, DescribeStreamSummary and ListShards on the old handle") {
    CheckNotFound(old->DescribeStream().status(), "orders");
    CheckNotFound(old->DescribeStreamSummary().status(), "orders");
    CheckNotFound(old->ListShards().status(), "orders");
  }
  SECTION("the name is free for a new, unrelated stream") {
    auto fresh = reg.CreateStream(Options("orders", 1));
    REQUIRE(fresh.ok());
    CHECK(fresh->get() != old.get());
    CHECK_FALSE((*fresh)->deleted());
    CHECK((*fresh)->open_shard_count() == 1);
    auto got = reg.GetStream("orders");
    REQUIRE(got.ok());
    CHECK(got->get() == fresh->get());
    CHECK(reg.ListStreams() == std::vector<std::string>{"orders"});
    REQUIRE((*fresh)->PutRecord("user123", "after").ok());
    // The old stream stays deleted, and its iterators do not read the new one.
    CheckNotFound(old->PutRecord("user123", "after").status(), "orders");
    auto foreign = (*fresh)->GetRecords(*iterator);
    REQUIRE_FALSE(foreign.ok());
    CHECK(kinlet::IsInvalidArgument(foreign.status()));
  }
}

TEST_CASE("Streams of a registry share its ManualClock", "[registry][clock]") {
  kinlet::ManualClock clock;
  kinlet::Registry<std::string, kinlet::ManualClockTraits> reg(&clock);
  auto a = reg.CreateStream(Options("a"));
  auto b = reg.CreateStream(Options("b"));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK((*a)->clock() == &clock);
  CHECK((*b)->clock() == &clock);
  CHECK((*a)->DescribeStreamSummary()->stream_creation_timestamp == clock.Now());

  const absl::Time t0 = clock.Now();
  REQUIRE((*a)->PutRecord("k", "a0").ok());
  REQUIRE((*b)->PutRecord("k", "b0").ok());
  clock.Advance(absl::Milliseconds(1500));
  const absl::Time t1 = clock.Now();
  REQUIRE((*a)->PutRecord("k", "a1").ok());
  REQUIRE((*b)->PutRecord("k", "b1").ok());
  clock.Set(t0 + absl::Hours(2));
  const absl::Time t2 = clock.Now();
  REQUIRE((*b)->PutRecord("k", "b2").ok());

  auto read_all = [](kinlet::Stream<std::string, kinlet::ManualClockTraits>& stream) {
    auto it =
        stream.GetShardIterator("shardId-000000000000", kinlet::IteratorPosition::TrimHorizon());
    REQUIRE(it.ok());
    auto page = stream.GetRecords(*it, 100);
    REQUIRE(page.ok());
    return page->records;
  };

  const auto records_a = read_all(**a);
  REQUIRE(records_a.size() == 2);
  CHECK(records_a[0].data == "a0");
  CHECK(records_a[0].approximate_arrival_timestamp == t0);
  CHECK(records_a[1].data == "a1");
  CHECK(records_a[1].approximate_arrival_timestamp == t1);

  const auto records_b = read_all(**b);
  REQUIRE(records_b.size() == 3);
  CHECK(records_b[0].approximate_arrival_timestamp == t0);
  CHECK(records_b[1].approximate_arrival_timestamp == t1);
  CHECK(records_b[2].data == "b2");
  CHECK(records_b[2].approximate_arrival_timestamp == t2);
}
