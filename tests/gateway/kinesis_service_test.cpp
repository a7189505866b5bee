// tests/gateway/kinesis_service_test.cpp: the envelope and the record path,
// through KinesisService::Handle (no network), in JSON and in CBOR.
#include "kinlet/gateway/kinesis_service.hpp"

#include "service_test_util.hpp"

namespace kinlet::gateway::testing {
namespace {

KinesisServiceOptions Unlimited() {
  KinesisServiceOptions o;
  o.stream_defaults = *WireStreamDefaults("unlimited");
  return o;
}

void Create(KinesisService& s, Format f, std::string_view name, int shards) {
  Answer a = Call(s, "CreateStream", f, [&](wire::Writer& w) {
    w.Key("StreamName");
    w.String(name);
    w.Key("ShardCount");
    w.Int(shards);
  });
  REQUIRE(a.status == 200);
  REQUIRE(a.raw.body.empty());
}

const Format kFormats[] = {Format::kJson, Format::kCbor};

}  // namespace

TEST_CASE("envelope: method, target, content type, auth, malformed bodies", "[gateway][service]") {
  auto registry = std::make_shared<WireRegistry>();
  KinesisService service(registry, Unlimited());
  SECTION("GET is 403 XML AccessDeniedException") {
    wire::HttpRequest r = MakeRequest("ListStreams", Format::kJson, "{}");
    r.method = "GET";
    wire::HttpResponse resp = service.Handle(r);
    CHECK(resp.status == 403);
    CHECK(resp.body.find("<AccessDeniedException>") != std::string::npos);
    CHECK(resp.body.find("Unable to determine service/operation name to be authorized") !=
          std::string::npos);
  }
  SECTION("request id and id-2 headers on every answer") {
    wire::HttpRequest r = MakeRequest("ListStreams", Format::kJson, "{}");
    wire::HttpResponse resp = service.Handle(r);
    CHECK(resp.status == 200);
    REQUIRE(Header(resp, "x-amzn-requestid") != nullptr);
    const std::string& id = *Header(resp, "x-amzn-requestid");
    CHECK(id.size() == 36);
    CHECK(id[14] == '4');
    REQUIRE(Header(resp, "x-amz-id-2") != nullptr);
    CHECK(Header(resp, "x-amz-id-2")->size() == 96);
    CHECK(*Header(resp, "content-type") == "application/x-amz-json-1.1");
  }
  for (Format f : kFormats) {
    DYNAMIC_SECTION("unknown target " << static_cast<int>(f)) {
      Answer a = Call(service, "NoSuchOperation", f);
      CHECK(a.status == 400);
      CHECK(a.type == "UnknownOperationException");
      CHECK(*Header(a.raw, "content-type") == wire::ContentType(f));
    }
    DYNAMIC_SECTION("missing auth " << static_cast<int>(f)) {
      wire::HttpRequest r = MakeRequest("ListStreams", f, Body(f, [](wire::Writer&) {}));
      r.headers.erase(r.headers.begin() + 2);
      wire::HttpResponse resp = service.Handle(r);
      CHECK(resp.status == 400);
      absl::StatusOr<Value> v = wire::Parse(f, resp.body);
      REQUIRE(v.ok());
      CHECK(At(*v, "__type").str() == "MissingAuthenticationTokenException");
      CHECK(At(*v, "message").str() == "Missing Authentication Token");
    }
    DYNAMIC_SECTION("wrong member type " << static_cast<int>(f)) {
      Answer a = Call(service, "DescribeStream", f, [](wire::Writer& w) {
        w.Key("StreamName");
        w.Int(5);
      });
      CHECK(a.status == 400);
      CHECK(a.type == "SerializationException");
      CHECK(a.doc.Find("Message") != nullptr);
    }
  }
  SECTION("malformed JSON is SerializationException with capital Message") {
    wire::HttpRequest r = MakeRequest("ListStreams", Format::kJson, "{\"Limit\":");
    wire::HttpResponse resp = service.Handle(r);
    CHECK(resp.status == 400);
    absl::StatusOr<Value> v = wire::ParseJson(resp.body);
    REQUIRE(v.ok());
    CHECK(At(*v, "__type").str() == "SerializationException");
  }
  SECTION("an empty body is {}") {
    wire::HttpRequest r = MakeRequest("ListStreams", Format::kJson, "");
    CHECK(service.Handle(r).status == 200);
  }
  SECTION("an empty body without a known content type: CBOR error") {
    wire::HttpRequest r = MakeRequest("ListStreams", Format::kJson, "");
    r.headers[0].value = "text/plain";
    wire::HttpResponse resp = service.Handle(r);
    CHECK(resp.status == 400);
    CHECK(*Header(resp, "content-type") == "application/x-amz-cbor-1.1");
    absl::StatusOr<Value> v = wire::ParseCbor(resp.body);
    REQUIRE(v.ok());
    CHECK(At(*v, "__type").str() == "SerializationException");
  }
  SECTION("a body with an unknown content type is 404") {
    wire::HttpRequest r = MakeRequest("ListStreams", Format::kJson, "{}");
    r.headers[0].value = "text/plain";
    CHECK(service.Handle(r).status == 404);
  }
  SECTION("the authenticate hook runs before the operation") {
    KinesisServiceOptions o = Unlimited();
    o.authenticate = [](const wire::HttpRequest&) {
      return wire::WireError(absl::StatusCode::kUnauthenticated, wire::kUnrecognizedClientException,
                             "The security token included in the request is invalid");
    };
    KinesisService guarded(registry, o);
    Answer a = Call(guarded, "CreateStream", Format::kJson, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("never");
      w.Key("ShardCount");
      w.Int(1);
    });
    CHECK(a.type == "UnrecognizedClientException");
    CHECK(!registry->GetStream("never").ok());
  }
}

TEST_CASE("record path: put, iterate, get, in JSON and CBOR", "[gateway][service]") {
  for (Format f : kFormats) {
    auto registry = std::make_shared<WireRegistry>();
    KinesisService service(registry, Unlimited());
    Create(service, f, "s", 2);
    const std::string arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    // PutRecord by name, PutRecords by ARN.
    Answer put = Call(service, "PutRecord", f, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("s");
      w.Key("Data");
      w.Blob(std::string("hello\0world", 11));
      w.Key("PartitionKey");
      w.String("k");
      w.Key("ExplicitHashKey");
      w.String("0");
    });
    REQUIRE(put.status == 200);
    CHECK(At(put.doc, "ShardId").str() == "shardId-000000000000");
    const std::string first = At(put.doc, "SequenceNumber").str();
    Answer batch = Call(service, "PutRecords", f, [&](wire::Writer& w) {
      w.Key("StreamARN");
      w.String(arn);
      w.Key("Records");
      w.BeginArray();
      for (int i = 0; i < 3; ++i) {
        w.BeginObject();
        w.Key("Data");
        w.Blob(absl::StrCat("r", i));
        w.Key("PartitionKey");
        w.String("k");
        w.Key("ExplicitHashKey");
        w.String("1");
        w.EndObject();
      }
      w.EndArray();
    });
    REQUIRE(batch.status == 200);
    CHECK(At(batch.doc, "FailedRecordCount").int_value() == 0);
    REQUIRE(At(batch.doc, "Records").items().size() == 3);
    for (const Value& r : At(batch.doc, "Records").items()) {
      CHECK(At(r, "ShardId").str() == "shardId-000000000000");
      CHECK(r.Find("ErrorCode") == nullptr);
    }
    Answer it = Call(service, "GetShardIterator", f, [&](wire::Writer& w) {
      w.Key("StreamARN");
      w.String(arn);
      w.Key("ShardId");
      w.String("shardId-000000000000");
      w.Key("ShardIteratorType");
      w.String("AT_SEQUENCE_NUMBER");
      w.Key("StartingSequenceNumber");
      w.String(first);
    });
    REQUIRE(it.status == 200);
    Answer got = Call(service, "GetRecords", f, [&](wire::Writer& w) {
      w.Key("ShardIterator");
      w.String(At(it.doc, "ShardIterator").str());
      w.Key("Limit");
      w.Int(3);
    });
    REQUIRE(got.status == 200);
    const auto& records = At(got.doc, "Records").items();
    REQUIRE(records.size() == 3);
    CHECK(*wire::BlobOf(At(records[0], "Data"), f, "Data") == std::string("hello\0world", 11));
    CHECK(At(records[0], "SequenceNumber").str() == first);
    CHECK(At(records[0], "PartitionKey").str() == "k");
    CHECK(*wire::BlobOf(At(records[1], "Data"), f, "Data") == "r0");
    const Value& ts = At(records[0], "ApproximateArrivalTimestamp");
    if (f == Format::kCbor) CHECK(ts.tagged_time());
    CHECK(got.doc.Find("NextShardIterator") != nullptr);
    CHECK(At(got.doc, "MillisBehindLatest").int_value() >= 0);
    CHECK(got.doc.Find("ChildShards") == nullptr);
    if (f == Format::kJson) {
      // Plain decimal seconds, never an exponent.
      CHECK(got.raw.body.find("e+") == std::string::npos);
      CHECK(got.raw.body.find("E9") == std::string::npos);
    }
  }
}

TEST_CASE("record path errors", "[gateway][service]") {
  auto registry = std::make_shared<WireRegistry>();
  KinesisService service(registry, Unlimited());
  Create(service, Format::kJson, "s", 1);
  SECTION("neither name nor ARN") {
    Answer a = Call(service, "PutRecord", Format::kJson, [](wire::Writer& w) {
      w.Key("Data");
      w.Blob("x");
      w.Key("PartitionKey");
      w.String("k");
    });
    CHECK(a.status == 400);
    CHECK(a.type == "InvalidArgumentException");
    CHECK(a.message == "Stream arn and stream name can't be empty at the same time");
  }
  SECTION("unknown stream") {
    Answer a = Call(service, "PutRecord", Format::kJson, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("nope");
      w.Key("Data");
      w.Blob("x");
      w.Key("PartitionKey");
      w.String("k");
    });
    CHECK(a.type == "ResourceNotFoundException");
    CHECK(a.message == "Stream nope under account 000000000000 not found.");
  }
  SECTION("bad base64") {
    wire::HttpRequest r = MakeRequest("PutRecord", Format::kJson,
                                      R"({"StreamName":"s","Data":"abcde","PartitionKey":"k"})");
    wire::HttpResponse resp = service.Handle(r);
    CHECK(resp.status == 400);
    absl::StatusOr<Value> v = wire::ParseJson(resp.body);
    REQUIRE(v.ok());
    CHECK(At(*v, "__type").str() == "SerializationException");
    CHECK(At(*v, "Message").str().find("multiple of 4") != std::string::npos);
  }
  SECTION("missing partition key") {
    Answer a = Call(service, "PutRecord", Format::kJson, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("s");
      w.Key("Data");
      w.Blob("x");
    });
    CHECK(a.type == "ValidationException");
    CHECK(a.message ==
          "1 validation error detected: Value null at 'partitionKey' failed to satisfy "
          "constraint: Member must not be null");
  }
  SECTION("bad iterator") {
    Answer a = Call(service, "GetRecords", Format::kJson, [](wire::Writer& w) {
      w.Key("ShardIterator");
      w.String("AAAA");
    });
    CHECK(a.type == "InvalidArgumentException");
  }
  SECTION("another account's ARN") {
    Answer a = Call(service, "DescribeStreamSummary", Format::kJson, [](wire::Writer& w) {
      w.Key("StreamARN");
      w.String("arn:aws:kinesis:us-east-1:123456789012:stream/s");
    });
    CHECK(a.type == "ResourceNotFoundException");
  }
}

TEST_CASE("throttling is ProvisionedThroughputExceededException", "[gateway][service]") {
  auto registry = std::make_shared<WireRegistry>();
  KinesisServiceOptions o;
  o.stream_defaults = *WireStreamDefaults("kinesis");
  KinesisService service(registry, o);
  Create(service, Format::kJson, "t", 1);
  // 1,000 records per second per shard: two batches of 600 cannot both pass.
  int failed = 0;
  for (int round = 0; round < 2; ++round) {
    Answer a = Call(service, "PutRecords", Format::kJson, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("t");
      w.Key("Records");
      w.BeginArray();
      for (int i = 0; i < 500; ++i) {
        w.BeginObject();
        w.Key("Data");
        w.Blob("x");
        w.Key("PartitionKey");
        w.String("k");
        w.EndObject();
      }
      w.EndArray();
    });
    REQUIRE(a.status == 200);
    failed += static_cast<int>(At(a.doc, "FailedRecordCount").int_value());
    for (const Value& r : At(a.doc, "Records").items()) {
      if (r.Find("ErrorCode") != nullptr) {
        CHECK(At(r, "ErrorCode").str() == "ProvisionedThroughputExceededException");
        CHECK(!At(r, "ErrorMessage").str().empty());
      }
    }
  }
  // Then a single put is refused as a whole.
  for (int i = 0; i < 2000 && failed >= 0; ++i) {
    Answer a = Call(service, "PutRecord", Format::kJson, [](wire::Writer& w) {
      w.Key("StreamName");
      w.String("t");
      w.Key("Data");
      w.Blob("x");
      w.Key("PartitionKey");
      w.String("k");
    });
    if (a.status != 200) {
      CHECK(a.status == 400);
      CHECK(a.type == "ProvisionedThroughputExceededException");
      failed = -1;
    }
  }
  CHECK(failed == -1);
}

}  // namespace kinlet::gateway::testing
