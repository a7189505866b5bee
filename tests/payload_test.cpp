// Tests of kinlet/payload.hpp: byte, trivially copyable and object payloads,
// and the customisable size trait.
#include "kinlet/payload.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "kinlet/stream.hpp"

namespace {

struct Telemetry {  // trivially copyable: stored as its bytes
  uint64_t entity;
  float position[3];
};

struct Event {  // not trivially copyable: stored as an object in the ring slot
  std::string name;
  std::vector<int> values;
};

struct Sized {
  std::string body;
};

}  // namespace

template <>
struct kinlet::PayloadTraits<Sized> : kinlet::ObjectPayloadTraits<Sized> {
  static size_t Size(View v) { return v->body.size(); }
};

namespace {

template <typename P>
std::unique_ptr<kinlet::Stream<P, kinlet::ManualClockTraits>> MakeStream(
    kinlet::ManualClock* clock, size_t max_record = 1 << 20) {
  kinlet::StreamOptions options;
  options.name = "typed";
  options.limits = kinlet::ThroughputLimits::Unlimited();  // limits are tested in limits_test
  options.shard_capacity_bytes = 1 << 22;
  options.shard_capacity_records = 64;
  options.max_record_size_bytes = max_record;
  return std::move(*kinlet::Stream<P, kinlet::ManualClockTraits>::Create(options, clock));
}

template <typename P>
std::vector<kinlet::Record<P>> ReadAll(kinlet::Stream<P, kinlet::ManualClockTraits>& s) {
  auto it = s.GetShardIterator("0", kinlet::IteratorPosition::TrimHorizon());
  auto page = s.GetRecords(*it, 100);
  REQUIRE(page.ok());
  return page->records;
}

}  // namespace

TEST_CASE("Payload storage follows the type", "[payload]") {
  STATIC_REQUIRE(kinlet::PayloadTraits<std::string>::kStorage == kinlet::PayloadStorage::kBytes);
  STATIC_REQUIRE(kinlet::PayloadTraits<std::vector<uint8_t>>::kStorage ==
                 kinlet::PayloadStorage::kBytes);
  STATIC_REQUIRE(kinlet::PayloadTraits<Telemetry>::kStorage == kinlet::PayloadStorage::kTrivial);
  STATIC_REQUIRE(kinlet::PayloadTraits<Event>::kStorage == kinlet::PayloadStorage::kObject);
  STATIC_REQUIRE(kinlet::RecordPayload<Event>);
  CHECK(kinlet::PayloadTraits<std::string>::Size("abc") == 3);
  CHECK(kinlet::PayloadTraits<Telemetry>::Size(Telemetry{}) == sizeof(Telemetry));
  CHECK(kinlet::PayloadTraits<Sized>::Size(Sized{"12345"}) == 5);
}

TEST_CASE("Trivially copyable payloads round-trip by value", "[payload]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream<Telemetry>(&clock);
  REQUIRE(stream->PutRecord("entity-7", Telemetry{7, {1.f, 2.f, 3.f}}).ok());
  auto records = ReadAll(*stream);
  REQUIRE(records.size() == 1);
  CHECK(records[0].data.entity == 7);
  CHECK(records[0].data.position[2] == 3.f);
  CHECK(records[0].partition_key == "entity-7");
}

TEST_CASE("Object payloads round-trip as copies", "[payload]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream<Event>(&clock);
  Event e{"click", {1, 2, 3}};
  REQUIRE(stream->PutRecord("u", e).ok());
  e.values.push_back(4);  // the stored record is a copy
  // Entries refer to their payloads: keep them alive until PutRecords returns.
  const Event a{"a", {}};
  const Event b{"b", {9}};
  std::vector<kinlet::PutRecordsRequestEntry<Event>> batch = {{"u", a, {}}, {"v", b, {}}};
  REQUIRE(stream->PutRecords(batch).ok());
  auto records = ReadAll(*stream);
  REQUIRE(records.size() == 3);
  CHECK(records[0].data.name == "click");
  CHECK(records[0].data.values == std::vector<int>{1, 2, 3});
  CHECK(records[2].data.values == std::vector<int>{9});
  SECTION("object slots are reused when the ring wraps") {
    for (int i = 0; i < 200; ++i) {
      if (!stream->PutRecord("u", Event{std::to_string(i), {i}}).ok()) break;
    }
    CHECK(ReadAll(*stream).size() == 64);
  }
}

TEST_CASE("Byte vector payloads round-trip", "[payload]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream<std::vector<uint8_t>>(&clock);
  std::vector<uint8_t> bytes = {0, 1, 2, 255, 0};
  REQUIRE(stream->PutRecord("k", bytes).ok());
  auto records = ReadAll(*stream);
  REQUIRE(records.size() == 1);
  CHECK(records[0].data == bytes);
}

TEST_CASE("The size trait is what the record-size limit counts", "[payload]") {
  kinlet::ManualClock clock;
  auto stream = MakeStream<Sized>(&clock, /*max_record=*/100);
  CHECK(stream->PutRecord("k", Sized{std::string(99, 'x')}).ok());
  CHECK(kinlet::IsValidationError(stream->PutRecord("k", Sized{std::string(101, 'x')}).status()));
  CHECK(kinlet::IsInvalidArgument(stream->PutRecord("kk", Sized{std::string(99, 'x')}).status()));
}
