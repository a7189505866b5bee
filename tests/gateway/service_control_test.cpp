// tests/gateway/service_control_test.cpp: the control plane and consumers
// through KinesisService::Handle, in JSON and CBOR.
#include "service_test_util.hpp"

namespace kinlet::gateway::testing {
namespace {
KinesisServiceOptions Unlimited() {
  KinesisServiceOptions o;
  o.stream_defaults = *WireStreamDefaults("unlimited");
  return o;
}
auto Named(std::string_view name) {
  return [name](wire::Writer& w) {
    w.Key("StreamName");
    w.String(name);
  };
}
const char kArn[] = "arn:aws:kinesis:us-east-1:000000000000:stream/";
}  // namespace

TEST_CASE("control plane: create, describe, list, reshard, tags, delete", "[gateway][service]") {
  for (Format f : {Format::kJson, Format::kCbor}) {
    auto registry = std::make_shared<WireRegistry>();
    KinesisService service(registry, Unlimited());
    for (const char* name : {"a", "b", "c"}) {
      REQUIRE(Call(service, "CreateStream", f, [&](wire::Writer& w) {
                w.Key("StreamName");
                w.String(name);
                w.Key("ShardCount");
                w.Int(3);
                w.Key("Tags");
                w.BeginObject();
                w.Key("team");
                w.String("x");
                w.EndObject();
              }).status == 200);
    }
    Answer dup = Call(service, "CreateStream", f, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("a");
      w.Key("ShardCount");
      w.Int(1);
    });
    CHECK(dup.type == "ResourceInUseException");
    // ListStreams paging.
    Answer l1 = Call(service, "ListStreams", f, [](wire::Writer& w) {
      w.Key("Limit");
      w.Int(2);
    });
    REQUIRE(l1.status == 200);
    CHECK(At(l1.doc, "StreamNames").items().size() == 2);
    CHECK(At(l1.doc, "HasMoreStreams").bool_value());
    CHECK(At(At(l1.doc, "StreamSummaries").items()[0], "StreamARN").str() ==
          std::string(kArn) + "a");
    Answer l2 = Call(service, "ListStreams", f, [&](wire::Writer& w) {
      w.Key("NextToken");
      w.String(At(l1.doc, "NextToken").str());
    });
    REQUIRE(At(l2.doc, "StreamNames").items().size() == 1);
    CHECK(At(l2.doc, "StreamNames").items()[0].str() == "c");
    CHECK(!At(l2.doc, "HasMoreStreams").bool_value());
    // DescribeStream paging by ARN.
    Answer d1 = Call(service, "DescribeStream", f, [](wire::Writer& w) {
      w.Key("StreamARN");
      w.String(std::string(kArn) + "a");
      w.Key("Limit");
      w.Int(2);
    });
    REQUIRE(d1.status == 200);
    const Value& desc = At(d1.doc, "StreamDescription");
    CHECK(At(desc, "StreamStatus").str() == "ACTIVE");
    CHECK(At(desc, "HasMoreShards").bool_value());
    CHECK(At(desc, "Shards").items().size() == 2);
    CHECK(At(desc, "RetentionPeriodHours").int_value() == 24);
    CHECK(At(desc, "EncryptionType").str() == "NONE");
    CHECK(At(At(desc, "StreamModeDetails"), "StreamMode").str() == "PROVISIONED");
    CHECK(At(At(desc, "EnhancedMonitoring").items()[0], "ShardLevelMetrics").items().empty());
    Answer d2 = Call(service, "DescribeStream", f, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("a");
      w.Key("ExclusiveStartShardId");
      w.String("shardId-000000000001");
    });
    CHECK(At(At(d2.doc, "StreamDescription"), "Shards").items().size() == 1);
    CHECK(!At(At(d2.doc, "StreamDescription"), "HasMoreShards").bool_value());
    // ListShards paging and tokens.
    Answer s1 = Call(service, "ListShards", f, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("a");
      w.Key("MaxResults");
      w.Int(1);
    });
    REQUIRE(s1.status == 200);
    const std::string token = At(s1.doc, "NextToken").str();
    Answer s2 = Call(service, "ListShards", f, [&](wire::Writer& w) {
      w.Key("NextToken");
      w.String(token);
    });
    REQUIRE(s2.status == 200);
    CHECK(At(At(s2.doc, "Shards").items()[0], "ShardId").str() == "shardId-000000000001");
    Answer both = Call(service, "ListShards", f, [&](wire::Writer& w) {
      w.Key("NextToken");
      w.String(token);
      w.Key("StreamName");
      w.String("a");
    });
    CHECK(both.type == "InvalidArgumentException");
    // Split, then AT_LATEST lists the children.
    Answer split = Call(service, "SplitShard", f, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("a");
      w.Key("ShardToSplit");
      w.String("shardId-000000000000");
      w.Key("NewStartingHashKey");
      w.String("1000");
    });
    REQUIRE(split.status == 200);
    CHECK(split.raw.body.empty());
    Answer latest = Call(service, "ListShards", f, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("a");
      w.Key("ShardFilter");
      w.BeginObject();
      w.Key("Type");
      w.String("AT_LATEST");
      w.EndObject();
    });
    CHECK(At(latest.doc, "Shards").items().size() == 4);
    CHECK(At(At(latest.doc, "Shards").items()[2], "ParentShardId").str() == "shardId-000000000000");
    // UpdateShardCount answers with name and ARN.
    Answer u = Call(service, "UpdateShardCount", f, [](wire::Writer& w) {
      w.Key("StreamARN");
      w.String(std::string(kArn) + "b");
      w.Key("TargetShardCount");
      w.Int(6);
      w.Key("ScalingType");
      w.String("UNIFORM_SCALING");
    });
    REQUIRE(u.status == 200);
    CHECK(At(u.doc, "StreamName").str() == "b");
    CHECK(At(u.doc, "StreamARN").str() == std::string(kArn) + "b");
    CHECK(At(u.doc, "CurrentShardCount").int_value() == 3);
    CHECK(At(u.doc, "TargetShardCount").int_value() == 6);
    // Tags.
    CHECK(Call(service, "AddTagsToStream", f, [](wire::Writer& w) {
            w.Key("StreamName");
            w.String("a");
            w.Key("Tags");
            w.BeginObject();
            w.Key("env");
            w.String("test");
            w.EndObject();
          }).status == 200);
    CHECK(Call(service, "RemoveTagsFromStream", f, [](wire::Writer& w) {
            w.Key("StreamName");
            w.String("a");
            w.Key("TagKeys");
            w.BeginArray();
            w.String("team");
            w.EndArray();
          }).status == 200);
    Answer tags = Call(service, "ListTagsForStream", f, Named("a"));
    REQUIRE(At(tags.doc, "Tags").items().size() == 1);
    CHECK(At(At(tags.doc, "Tags").items()[0], "Key").str() == "env");
    CHECK(!At(tags.doc, "HasMoreTags").bool_value());
    // Retention, monitoring, encryption, summary.
    CHECK(Call(service, "IncreaseStreamRetentionPeriod", f, [](wire::Writer& w) {
            w.Key("StreamName");
            w.String("a");
            w.Key("RetentionPeriodHours");
            w.Int(48);
          }).status == 200);
    Answer shorter = Call(service, "IncreaseStreamRetentionPeriod", f, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("a");
      w.Key("RetentionPeriodHours");
      w.Int(30);
    });
    CHECK(shorter.type == "InvalidArgumentException");
    Answer mon = Call(service, "EnableEnhancedMonitoring", f, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("a");
      w.Key("ShardLevelMetrics");
      w.BeginArray();
      w.String("IncomingBytes");
      w.EndArray();
    });
    CHECK(At(mon.doc, "DesiredShardLevelMetrics").items().size() == 1);
    CHECK(Call(service, "StartStreamEncryption", f, [](wire::Writer& w) {
            w.Key("StreamName");
            w.String("a");
            w.Key("EncryptionType");
            w.String("KMS");
            w.Key("KeyId");
            w.String("alias/aws/kinesis");
          }).status == 200);
    Answer sum = Call(service, "DescribeStreamSummary", f, Named("a"));
    const Value& ds = At(sum.doc, "StreamDescriptionSummary");
    CHECK(At(ds, "RetentionPeriodHours").int_value() == 48);
    CHECK(At(ds, "EncryptionType").str() == "KMS");
    CHECK(At(ds, "KeyId").str() == "alias/aws/kinesis");
    CHECK(At(ds, "OpenShardCount").int_value() == 4);
    CHECK(At(At(ds, "EnhancedMonitoring").items()[0], "ShardLevelMetrics").items().size() == 1);
    Answer limits = Call(service, "DescribeLimits", f);
    CHECK(At(limits.doc, "OpenShardCount").int_value() == 4 + 6 + 3);
    // Consumers and EnforceConsumerDeletion.
    Answer reg = Call(service, "RegisterStreamConsumer", f, [](wire::Writer& w) {
      w.Key("StreamARN");
      w.String(std::string(kArn) + "c");
      w.Key("ConsumerName");
      w.String("app");
    });
    REQUIRE(reg.status == 200);
    const std::string consumer_arn = At(At(reg.doc, "Consumer"), "ConsumerARN").str();
    CHECK(consumer_arn.rfind(std::string(kArn) + "c/consumer/app:", 0) == 0);
    Answer dc = Call(service, "DescribeStreamConsumer", f, [&](wire::Writer& w) {
      w.Key("ConsumerARN");
      w.String(consumer_arn);
    });
    CHECK(At(At(dc.doc, "ConsumerDescription"), "ConsumerStatus").str() == "ACTIVE");
    Answer lc = Call(service, "ListStreamConsumers", f, [](wire::Writer& w) {
      w.Key("StreamARN");
      w.String(std::string(kArn) + "c");
    });
    CHECK(At(lc.doc, "Consumers").items().size() == 1);
    Answer refused = Call(service, "DeleteStream", f, Named("c"));
    CHECK(refused.type == "ResourceInUseException");
    Answer enforced = Call(service, "DeleteStream", f, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("c");
      w.Key("EnforceConsumerDeletion");
      w.Bool(true);
    });
    CHECK(enforced.status == 200);
    CHECK(Call(service, "DescribeStreamSummary", f, Named("c")).type ==
          "ResourceNotFoundException");
  }
}

TEST_CASE("GetRecords at a split parent's end: no NextShardIterator, ChildShards",
          "[gateway][service]") {
  auto registry = std::make_shared<WireRegistry>();
  KinesisService service(registry, Unlimited());
  const Format f = Format::kJson;
  REQUIRE(Call(service, "CreateStream", f, [](wire::Writer& w) {
            w.Key("StreamName");
            w.String("p");
            w.Key("ShardCount");
            w.Int(1);
          }).status == 200);
  Answer it = Call(service, "GetShardIterator", f, [](wire::Writer& w) {
    w.Key("StreamName");
    w.String("p");
    w.Key("ShardId");
    w.String("shardId-000000000000");
    w.Key("ShardIteratorType");
    w.String("TRIM_HORIZON");
  });
  REQUIRE(Call(service, "SplitShard", f, [](wire::Writer& w) {
            w.Key("StreamName");
            w.String("p");
            w.Key("ShardToSplit");
            w.String("shardId-000000000000");
            w.Key("NewStartingHashKey");
            w.String("170141183460469231731687303715884105728");
          }).status == 200);
  Answer got = Call(service, "GetRecords", f, [&](wire::Writer& w) {
    w.Key("ShardIterator");
    w.String(At(it.doc, "ShardIterator").str());
  });
  REQUIRE(got.status == 200);
  CHECK(got.doc.Find("NextShardIterator") == nullptr);
  REQUIRE(At(got.doc, "ChildShards").items().size() == 2);
  CHECK(At(At(got.doc, "ChildShards").items()[0], "ParentShards").items()[0].str() ==
        "shardId-000000000000");
}

TEST_CASE("create and delete delays: CREATING then ACTIVE, DELETING then gone",
          "[gateway][service]") {
  auto registry = std::make_shared<WireRegistry>();
  KinesisServiceOptions o = Unlimited();
  o.create_delay = absl::Seconds(1);
  o.delete_delay = absl::Seconds(1);
  KinesisService service(registry, o);
  const Format f = Format::kJson;
  REQUIRE(Call(service, "CreateStream", f, [](wire::Writer& w) {
            w.Key("StreamName");
            w.String("d");
            w.Key("ShardCount");
            w.Int(1);
          }).status == 200);
  auto status = [&] {
    Answer a = Call(service, "DescribeStreamSummary", f, Named("d"));
    return a.status == 200 ? At(At(a.doc, "StreamDescriptionSummary"), "StreamStatus").str()
                           : a.type;
  };
  CHECK(status() == "CREATING");
  Answer early = Call(service, "PutRecord", f, [](wire::Writer& w) {
    w.Key("StreamName");
    w.String("d");
    w.Key("Data");
    w.Blob("x");
    w.Key("PartitionKey");
    w.String("k");
  });
  CHECK(early.type == "ResourceNotFoundException");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(status() == "ACTIVE");
  REQUIRE(Call(service, "DeleteStream", f, Named("d")).status == 200);
  CHECK(status() == "DELETING");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(status() == "ResourceNotFoundException");
}

}  // namespace kinlet::gateway::testing
