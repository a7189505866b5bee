// tests/gateway/service_subscribe_test.cpp: SubscribeToShard's event stream,
// read as a server would (Start, Pull after wakes) and decoded with
// wire::EventStreamDecoder.
#include "service_test_util.hpp"

namespace kinlet::gateway::testing {
namespace {

const char kArn[] = "arn:aws:kinesis:us-east-1:000000000000:stream/e";

struct Fixture {
  explicit Fixture(absl::Duration lifetime = absl::Minutes(5)) {
    KinesisServiceOptions o;
    o.stream_defaults = *WireStreamDefaults("unlimited");
    o.stream_defaults.subscription_heartbeat = absl::Milliseconds(50);
    o.stream_defaults.subscription_takeover_after = absl::ZeroDuration();
    o.subscription_lifetime = lifetime;
    service = std::make_unique<KinesisService>(registry, o);
    REQUIRE(Call(*service, "CreateStream", Format::kJson, [](wire::Writer& w) {
              w.Key("StreamName");
              w.String("e");
              w.Key("ShardCount");
              w.Int(1);
            }).status == 200);
    Answer reg = Call(*service, "RegisterStreamConsumer", Format::kJson, [](wire::Writer& w) {
      w.Key("StreamARN");
      w.String(kArn);
      w.Key("ConsumerName");
      w.String("c");
    });
    REQUIRE(reg.status == 200);
    consumer_arn = At(At(reg.doc, "Consumer"), "ConsumerARN").str();
  }
  Answer Subscribe(Format f, std::string_view type = "TRIM_HORIZON") {
    return Call(*service, "SubscribeToShard", f, [&](wire::Writer& w) {
      w.Key("ConsumerARN");
      w.String(consumer_arn);
      w.Key("ShardId");
      w.String("shardId-000000000000");
      w.Key("StartingPosition");
      w.BeginObject();
      w.Key("Type");
      w.String(type);
      w.EndObject();
    });
  }
  void Put(std::string_view data) {
    REQUIRE(Call(*service, "PutRecord", Format::kJson, [&](wire::Writer& w) {
              w.Key("StreamName");
              w.String("e");
              w.Key("Data");
              w.Blob(data);
              w.Key("PartitionKey");
              w.String("k");
            }).status == 200);
  }
  std::shared_ptr<WireRegistry> registry = std::make_shared<WireRegistry>();
  std::unique_ptr<KinesisService> service;
  std::string consumer_arn;
};

// The records of the SubscribeToShardEvents among `messages`, in order.
std::vector<std::string> RecordsOf(const std::vector<wire::EventMessage>& messages) {
  std::vector<std::string> out;
  for (const wire::EventMessage& m : messages) {
    const std::string* type = m.FindString(":event-type");
    if (type == nullptr || *type != "SubscribeToShardEvent") continue;
    absl::StatusOr<Value> v = wire::ParseJson(m.payload);
    REQUIRE(v.ok());
    for (const Value& r : At(*v, "Records").items()) {
      out.push_back(*wire::BlobOf(At(r, "Data"), Format::kJson, "Data"));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("SubscribeToShard: initial-response, records in order, continuations, child shards",
          "[gateway][service]") {
  for (Format f : {Format::kJson, Format::kCbor}) {
    Fixture fx;
    fx.Put("a");
    Answer sub = fx.Subscribe(f);
    REQUIRE(sub.status == 200);
    REQUIRE(sub.raw.stream != nullptr);
    CHECK(*Header(sub.raw, "content-type") == "application/vnd.amazon.eventstream");
    BodyReader reader(sub.raw.stream);
    REQUIRE(reader.PullUntil([](const auto& m) { return RecordsOf(m).size() == 1; }));
    const wire::EventMessage& first = reader.messages.front();
    CHECK(*first.FindString(":message-type") == "event");
    CHECK(*first.FindString(":event-type") == "initial-response");
    CHECK(first.payload == "{}");
    fx.Put("b");
    fx.Put("c");
    REQUIRE(reader.PullUntil([](const auto& m) { return RecordsOf(m).size() == 3; }));
    CHECK(RecordsOf(reader.messages) == std::vector<std::string>{"a", "b", "c"});
    // Every event carries a continuation and MillisBehindLatest.
    std::string last_continuation;
    for (size_t i = 1; i < reader.messages.size(); ++i) {
      absl::StatusOr<Value> v = wire::ParseJson(reader.messages[i].payload);
      REQUIRE(v.ok());
      last_continuation = At(*v, "ContinuationSequenceNumber").str();
      CHECK(v->Find("MillisBehindLatest") != nullptr);
    }
    // Split: the final event names the children, then the body ends.
    REQUIRE(Call(*fx.service, "SplitShard", Format::kJson, [](wire::Writer& w) {
              w.Key("StreamName");
              w.String("e");
              w.Key("ShardToSplit");
              w.String("shardId-000000000000");
              w.Key("NewStartingHashKey");
              w.String("1000");
            }).status == 200);
    REQUIRE(reader.PullUntil([](const auto&) { return false; }) == false);
    CHECK(reader.finished);
    absl::StatusOr<Value> last = wire::ParseJson(reader.messages.back().payload);
    REQUIRE(last.ok());
    REQUIRE(last->Find("ChildShards") != nullptr);
    CHECK(At(*last, "ChildShards").items().size() == 2);
    CHECK(last->Find("ContinuationSequenceNumber") == nullptr);
  }
}

TEST_CASE("SubscribeToShard: errors before the stream are ordinary responses",
          "[gateway][service]") {
  Fixture fx;
  Answer bad = Call(*fx.service, "SubscribeToShard", Format::kJson, [](wire::Writer& w) {
    w.Key("ConsumerARN");
    w.String("arn:aws:kinesis:us-east-1:000000000000:stream/e/consumer/nope:1");
    w.Key("ShardId");
    w.String("shardId-000000000000");
    w.Key("StartingPosition");
    w.BeginObject();
    w.Key("Type");
    w.String("LATEST");
    w.EndObject();
  });
  CHECK(bad.status == 400);
  CHECK(bad.type == "ResourceNotFoundException");
  Answer malformed = Call(*fx.service, "SubscribeToShard", Format::kJson, [](wire::Writer& w) {
    w.Key("ConsumerARN");
    w.String("not an arn");
    w.Key("ShardId");
    w.String("shardId-000000000000");
    w.Key("StartingPosition");
    w.BeginObject();
    w.Key("Type");
    w.String("LATEST");
    w.EndObject();
  });
  CHECK(malformed.type == "ValidationException");
}

TEST_CASE("SubscribeToShard: a takeover ends the old stream with an exception message",
          "[gateway][service]") {
  Fixture fx;
  Answer one = fx.Subscribe(Format::kJson, "LATEST");
  REQUIRE(one.raw.stream != nullptr);
  BodyReader reader(one.raw.stream);
  Answer two = fx.Subscribe(Format::kJson, "LATEST");
  REQUIRE(two.status == 200);
  REQUIRE(reader.PullUntil([](const auto&) { return false; }) == false);
  CHECK(reader.finished);
  const wire::EventMessage& end = reader.messages.back();
  CHECK(*end.FindString(":message-type") == "exception");
  CHECK(*end.FindString(":exception-type") == "ResourceInUseException");
}

TEST_CASE("SubscribeToShard: the stream ends at its lifetime and at Stop", "[gateway][service]") {
  SECTION("lifetime") {
    Fixture fx(absl::Milliseconds(200));
    Answer sub = fx.Subscribe(Format::kJson, "LATEST");
    REQUIRE(sub.raw.stream != nullptr);
    BodyReader reader(sub.raw.stream);
    REQUIRE(reader.PullUntil([](const auto&) { return false; }) == false);
    CHECK(reader.finished);
    CHECK(*reader.messages.front().FindString(":event-type") == "initial-response");
  }
  SECTION("Stop: a final event, then the end") {
    Fixture fx;
    fx.Put("a");
    Answer sub = fx.Subscribe(Format::kJson);
    REQUIRE(sub.raw.stream != nullptr);
    BodyReader reader(sub.raw.stream);
    REQUIRE(reader.PullUntil([](const auto& m) { return RecordsOf(m).size() == 1; }));
    const size_t before = reader.messages.size();
    fx.service->Stop();
    fx.service->Stop();  // idempotent
    REQUIRE(reader.PullUntil([](const auto&) { return false; }) == false);
    CHECK(reader.finished);
    REQUIRE(reader.messages.size() == before + 1);
    absl::StatusOr<Value> last = wire::ParseJson(reader.messages.back().payload);
    REQUIRE(last.ok());
    CHECK(At(*last, "Records").items().empty());
    CHECK(!At(*last, "ContinuationSequenceNumber").str().empty());
    Answer after = fx.Subscribe(Format::kJson);
    CHECK(after.status == 500);
  }
}

}  // namespace kinlet::gateway::testing
