#include "kinlet/wire/document.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "kinlet/wire/errors.hpp"

using kinlet::wire::BlobOf;
using kinlet::wire::Format;
using kinlet::wire::IntOf;
using kinlet::wire::ParseCbor;
using kinlet::wire::ParseJson;
using kinlet::wire::StringOf;
using kinlet::wire::TimeOf;
using kinlet::wire::Value;
using kinlet::wire::Writer;
using Kind = kinlet::wire::Value::Kind;

namespace {

std::string Hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string Write(Format format, const Value& value) {
  Writer w(format);
  w.Write(value);
  return w.Take();
}

// A Serialization error with exactly `message`.
void CheckSerialization(const absl::Status& status, std::string_view message) {
  REQUIRE_FALSE(status.ok());
  CHECK(kinlet::wire::ErrorTypeOf(status) == "SerializationException");
  CHECK(std::string(status.message()) == std::string(message));
}

bool IsSerialization(const absl::Status& status) {
  return !status.ok() && kinlet::wire::ErrorTypeOf(status) == "SerializationException";
}

// A document with every kind, nested.
Value Sample() {
  std::vector<Value::Member> inner;
  inner.emplace_back("deep", Value::Array({Value::Array({Value::Object({})}), Value::Array({})}));
  inner.emplace_back(
      "s", Value::String("quote\" back\\ nl\n tab\t ctl\x01 \x7f utf8 \xc3\xa9 \xf0\x9f\x98\x80"));
  std::vector<Value::Member> members;
  members.emplace_back("null", Value::Null());
  members.emplace_back("t", Value::Bool(true));
  members.emplace_back("f", Value::Bool(false));
  members.emplace_back("i", Value::Int(-42));
  members.emplace_back("max", Value::Int(std::numeric_limits<int64_t>::max()));
  members.emplace_back("min", Value::Int(std::numeric_limits<int64_t>::min()));
  members.emplace_back("d", Value::Double(0.1));
  members.emplace_back("neg0", Value::Double(-0.0));
  members.emplace_back("two", Value::Double(2.0));
  members.emplace_back("big", Value::Double(1e300));
  members.emplace_back("", Value::String(""));
  members.emplace_back("obj", Value::Object(std::move(inner)));
  members.emplace_back("dup", Value::Int(1));
  members.emplace_back("dup", Value::Int(2));
  return Value::Object(std::move(members));
}

}  // namespace

// ---------------------------------------------------------------------------
// JSON

TEST_CASE("ParseJson reads a PutRecords body", "[wire][document]") {
  auto doc = ParseJson(R"({"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"pk"},)"
                       R"({"Data":"","PartitionKey":"k2","ExplicitHashKey":"0"}]})");
  REQUIRE(doc.ok());
  CHECK(doc->kind() == Kind::kObject);
  REQUIRE(doc->Find("StreamName") != nullptr);
  CHECK(*StringOf(*doc->Find("StreamName"), "StreamName") == "s");
  const Value* records = doc->Find("Records");
  REQUIRE(records != nullptr);
  REQUIRE(records->items().size() == 2);
  CHECK(*BlobOf(*records->items()[0].Find("Data"), Format::kJson, "Data") == "hi");
  CHECK(BlobOf(*records->items()[1].Find("Data"), Format::kJson, "Data")->empty());
  CHECK(records->items()[1].Find("ExplicitHashKey")->str() == "0");
  CHECK(doc->Find("Missing") == nullptr);
  CHECK(records->Find("Data") == nullptr);  // not an object
}

TEST_CASE("ParseJson: empty body, numbers, duplicates, null", "[wire][document]") {
  auto empty = ParseJson("");
  REQUIRE(empty.ok());
  CHECK(empty->kind() == Kind::kObject);
  CHECK(empty->members().empty());

  auto doc = ParseJson(R"({"a":1, "b":-9223372036854775808, "c":18446744073709551615, "d":1.5e3,)"
                       R"( "e":null, "a":2, "f":-0, "g":1767225600.5})");
  REQUIRE(doc.ok());
  CHECK(doc->Find("a")->int_value() == 1);  // the first of duplicates
  CHECK(doc->members().size() == 8);
  CHECK(doc->Find("b")->int_value() == std::numeric_limits<int64_t>::min());
  CHECK(doc->Find("c")->kind() == Kind::kDouble);  // above int64: a double
  CHECK(doc->Find("c")->double_value() == 18446744073709551615.0);
  CHECK(doc->Find("d")->double_value() == 1500.0);
  CHECK(doc->Find("e")->kind() == Kind::kNull);
  CHECK(doc->Find("f")->kind() == Kind::kInt);
  CHECK(doc->Find("g")->kind() == Kind::kDouble);
}

TEST_CASE("ParseJson refuses malformed documents with SerializationException", "[wire][document]") {
  const char* bad[] = {
      "{",
      R"({"a":1)",
      R"({"a":1}x)",
      R"({"a":1} {})",
      "[]",
      "1",
      R"("s")",
      "null",
      " ",
      R"({"a":01})",
      R"({"a":1e400})",
      R"({"a":123456789012345678901234567890})",
      R"({"a":"\x"})",
      "{\"a\":\"\xff\"}",  // bad UTF-8
      "{\"a\":\"\x01\"}",  // raw control character
      R"({'a':1})",
      R"({"a":1,})",
      R"({"a":[1,]})",
      R"({"a":tru})",
  };
  for (const char* text : bad) {
    INFO(text);
    CHECK(IsSerialization(ParseJson(text).status()));
  }
  const std::string body = R"({"a":1})";
  for (size_t n = 1; n < body.size(); ++n) {
    CHECK(IsSerialization(ParseJson(body.substr(0, n)).status()));
  }
}

TEST_CASE("ParseJson allows 64 levels of nesting, not 65", "[wire][document]") {
  auto nested = [](int depth) {  // depth containers: the object and depth-1 arrays
    std::string s = "{\"a\":";
    for (int i = 1; i < depth; ++i) s += '[';
    s += '1';
    for (int i = 1; i < depth; ++i) s += ']';
    return s + '}';
  };
  CHECK(ParseJson(nested(64)).ok());
  CHECK(IsSerialization(ParseJson(nested(65)).status()));
  CHECK(IsSerialization(ParseJson(nested(5000)).status()));
}

TEST_CASE("JSON documents round-trip through Writer", "[wire][document]") {
  const Value sample = Sample();
  const std::string text = Write(Format::kJson, sample);
  auto back = ParseJson(text);
  REQUIRE(back.ok());
  CHECK(*back == sample);
  CHECK(Write(Format::kJson, *back) == text);

  // A compact document comes back byte for byte.
  const std::string compact =
      R"({"A":[1,-2,true,false,null,"x\"\\\n\u0001é"],"B":{"C":{}},"D":[],"E":0.5})";
  auto doc = ParseJson(compact);
  REQUIRE(doc.ok());
  CHECK(Write(Format::kJson, *doc) == compact);
}

TEST_CASE("Writer JSON: escaping, numbers, blobs", "[wire][document]") {
  Writer w(Format::kJson);
  w.BeginObject();
  w.Key("s");
  w.String(std::string("a\"b\\c\b\f\n\r\t\x00\x1f\x7f\xc3\xa9", 15));
  w.Key("k\n");
  w.Int(-7);
  w.Key("blob");
  w.Blob("hello");
  w.Key("arr");
  w.BeginArray();
  w.Bool(true);
  w.Null();
  w.BeginObject();
  w.EndObject();
  w.BeginArray();
  w.EndArray();
  w.Double(2.0);
  w.Double(0.1);
  w.Double(std::nan(""));
  w.EndArray();
  w.EndObject();
  CHECK(w.data() ==
        "{\"s\":\"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0000\\u001f\x7f\xc3\xa9\",\"k\\n\":-7,"
        "\"blob\":\"aGVsbG8=\",\"arr\":[true,null,{},[],2.0,0.1,null]}");
  std::string taken = w.Take();
  CHECK(w.data().empty());
  w.BeginObject();
  w.EndObject();
  CHECK(w.data() == "{}");  // no stale separator state after Take()
}

TEST_CASE("Writer JSON timestamps are plain decimal seconds, at most 3 fraction digits",
          "[wire][document]") {
  auto text = [](absl::Time t) {
    Writer w(Format::kJson);
    w.Time(t);
    return w.Take();
  };
  CHECK(text(absl::FromUnixMillis(1767225600500)) == "1767225600.5");
  CHECK(text(absl::FromUnixSeconds(1767225600)) == "1767225600");
  CHECK(text(absl::FromUnixMillis(1767225600123)) == "1767225600.123");
  CHECK(text(absl::FromUnixMillis(1767225600120)) == "1767225600.12");
  CHECK(text(absl::FromUnixMillis(1767225600001)) == "1767225600.001");
  CHECK(text(absl::FromUnixMicros(1767225600123999)) == "1767225600.123");  // truncated
  CHECK(text(absl::FromUnixSeconds(1547993531) + absl::Milliseconds(819)) ==
        "1547993531.819");  // not 1.547993531819E9
  CHECK(text(absl::UnixEpoch()) == "0");
  CHECK(text(absl::FromUnixMillis(-500)) == "-0.5");
  CHECK(text(absl::FromUnixMillis(-1500)) == "-1.5");
  // And they read back.
  auto doc = ParseJson("{\"T\":" + text(absl::FromUnixMillis(1767225600123)) + "}");
  REQUIRE(doc.ok());
  CHECK(*TimeOf(*doc->Find("T"), Format::kJson, "T") == absl::FromUnixMillis(1767225600123));
}

// ---------------------------------------------------------------------------
// Accessors

TEST_CASE("BlobOf: strict base64 with AWS's messages", "[wire][document]") {
  auto blob = [](std::string_view json) {
    auto doc = ParseJson(std::string("{\"Data\":") + std::string(json) + "}");
    REQUIRE(doc.ok());
    return BlobOf(*doc->Find("Data"), Format::kJson, "Data");
  };
  CHECK(*blob(R"("aGVsbG8=")") == "hello");
  CheckSerialization(blob(R"("23456")").status(),
                     "'23456' can not be converted to a Blob: Base64 encoded length is expected a "
                     "multiple of 4 bytes but found: 5");
  CheckSerialization(blob(R"("=+/=")").status(),
                     "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='");
  CheckSerialization(
      blob(R"("+/+=")").status(),
      "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected");
  CheckSerialization(blob("true").status(),
                     "class java.lang.Boolean can not be converted to a Blob");
  CheckSerialization(blob("23").status(),
                     "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be "
                     "converted to a Blob");
  CheckSerialization(blob("34.56").status(),
                     "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be "
                     "converted to a Blob");
  CheckSerialization(blob("[]").status(), "Start of list found where not expected");
  CheckSerialization(blob("{}").status(), "Start of structure or map found where not expected.");
  CheckSerialization(BlobOf(Value::Null(), Format::kJson, "Data").status(),
                     "Unexpected null value for 'Data'");
  // CBOR: byte strings, and text strings as their bytes (never base64).
  CHECK(*BlobOf(Value::Bytes(std::string("\0\1", 2)), Format::kCbor, "Data") ==
        std::string("\0\1", 2));
  CHECK(*BlobOf(Value::String("aGk="), Format::kCbor, "Data") == "aGk=");
}

TEST_CASE("TimeOf: JSON seconds, CBOR tag-1 milliseconds", "[wire][document]") {
  auto doc = ParseJson(R"({"i":1767225600,"d":1767225600.5,"m":1767225600.123,"s":"1767225600",)"
                       R"("b":true,"a":[],"o":{}})");
  REQUIRE(doc.ok());
  CHECK(*TimeOf(*doc->Find("i"), Format::kJson, "i") == absl::FromUnixSeconds(1767225600));
  CHECK(*TimeOf(*doc->Find("d"), Format::kJson, "d") == absl::FromUnixMillis(1767225600500));
  CHECK(*TimeOf(*doc->Find("m"), Format::kJson, "m") == absl::FromUnixMillis(1767225600123));
  CheckSerialization(TimeOf(*doc->Find("s"), Format::kJson, "s").status(),
                     "class java.lang.String can not be converted to milliseconds since epoch");
  CheckSerialization(TimeOf(*doc->Find("b"), Format::kJson, "b").status(),
                     "class java.lang.Boolean can not be converted to milliseconds since epoch");
  CheckSerialization(TimeOf(*doc->Find("a"), Format::kJson, "a").status(),
                     "Start of list found where not expected");
  CheckSerialization(TimeOf(*doc->Find("o"), Format::kJson, "o").status(),
                     "Start of structure or map found where not expected.");
  CHECK(IsSerialization(TimeOf(Value::Double(1e300), Format::kJson, "x").status()));

  Value tagged = Value::Int(1787036486712);
  tagged.set_tagged_time(true);
  CHECK(*TimeOf(tagged, Format::kCbor, "T") == absl::FromUnixMillis(1787036486712));
  Value tagged_double = Value::Double(1787036486712.0);
  tagged_double.set_tagged_time(true);
  CHECK(*TimeOf(tagged_double, Format::kCbor, "T") == absl::FromUnixMillis(1787036486712));
  CHECK(*TimeOf(Value::Int(1767225600), Format::kCbor, "T") == absl::FromUnixSeconds(1767225600));
}

TEST_CASE("IntOf and StringOf: AWS's type messages", "[wire][document]") {
  CHECK(*IntOf(Value::Int(-5), "Limit") == -5);
  CHECK(*IntOf(Value::Double(34.56), "Limit") == 34);  // truncated, as AWS does
  CHECK(*IntOf(Value::Double(-34.56), "Limit") == -34);
  CHECK(IsSerialization(IntOf(Value::Double(1e19), "Limit").status()));
  CHECK(IsSerialization(IntOf(Value::Double(std::nan("")), "Limit").status()));
  CheckSerialization(IntOf(Value::String("23"), "Limit").status(),
                     "class java.lang.String can not be converted to an Integer");
  CheckSerialization(IntOf(Value::Bool(true), "Limit").status(),
                     "class java.lang.Boolean can not be converted to an Integer");
  CHECK(*StringOf(Value::String("x"), "StreamName") == "x");
  CheckSerialization(StringOf(Value::Bool(true), "StreamName").status(),
                     "class java.lang.Boolean can not be converted to an String");
  CheckSerialization(StringOf(Value::Int(23), "StreamName").status(),
                     "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be "
                     "converted to an String");
  CheckSerialization(StringOf(Value::Array({}), "StreamName").status(),
                     "Start of list found where not expected");
}

// ---------------------------------------------------------------------------
// CBOR

TEST_CASE("ParseCbor reads a PutRecords body (python3-cbor2 5.4.6 dumps)", "[wire][document]") {
  // cbor2.dumps({"StreamName":"s","Records":[{"Data":b"\x00\x01hi","PartitionKey":"pk"},
  //              {"Data":b"","PartitionKey":"k2","ExplicitHashKey":"0"}]})
  auto doc = ParseCbor(
      Hex("a26a53747265616d4e616d656173675265636f72647382a2644461746144000168696c506172746974696f"
          "6e4b657962706ba36444617461406c506172746974696f6e4b6579626b326f4578706c69636974486173684b"
          "65796130"));
  REQUIRE(doc.ok());
  CHECK(*StringOf(*doc->Find("StreamName"), "StreamName") == "s");
  const auto& records = doc->Find("Records")->items();
  REQUIRE(records.size() == 2);
  CHECK(records[0].Find("Data")->kind() == Kind::kBytes);
  CHECK(*BlobOf(*records[0].Find("Data"), Format::kCbor, "Data") == std::string("\0\1hi", 4));
  CHECK(*StringOf(*records[0].Find("PartitionKey"), "PartitionKey") == "pk");
  CHECK(BlobOf(*records[1].Find("Data"), Format::kCbor, "Data")->empty());
  CHECK(records[1].Find("ExplicitHashKey")->str() == "0");
}

TEST_CASE("ParseCbor reads a Java-SDK-v2-style GetShardIterator (indefinite map, c1 1b ms)",
          "[wire][document]") {
  // Jackson's CBORGenerator: indefinite-length map, definite strings; the timestamp as
  // captured in floci-io/floci#2368: c1 1b 000001a013accc38 = 1787036486712 ms.
  auto doc = ParseCbor(
      Hex("bf6a53747265616d4e616d656173675368617264496474736861726449642d303030303030303030303030"
          "7153686172644974657261746f72547970656c41545f54494d455354414d506954696d657374616d70c11b00"
          "0001a013accc38ff"));
  REQUIRE(doc.ok());
  CHECK(doc->Find("ShardId")->str() == "shardId-000000000000");
  CHECK(doc->Find("ShardIteratorType")->str() == "AT_TIMESTAMP");
  const Value* ts = doc->Find("Timestamp");
  REQUIRE(ts != nullptr);
  CHECK(ts->tagged_time());
  CHECK(ts->int_value() == 1787036486712);
  CHECK(*TimeOf(*ts, Format::kCbor, "Timestamp") == absl::FromUnixMillis(1787036486712));
}

TEST_CASE("ParseCbor: every major type, RFC 8949 Appendix A examples", "[wire][document]") {
  auto one = [](std::string_view item_hex) -> absl::StatusOr<Value> {
    auto doc = ParseCbor(Hex(std::string("a16178") + std::string(item_hex)));  // {"x": item}
    if (!doc.ok()) return doc.status();
    return *doc->Find("x");
  };
  CHECK(one("00")->int_value() == 0);
  CHECK(one("17")->int_value() == 23);
  CHECK(one("1818")->int_value() == 24);
  CHECK(one("1903e8")->int_value() == 1000);
  CHECK(one("1a000f4240")->int_value() == 1000000);
  CHECK(one("1b000000e8d4a51000")->int_value() == 1000000000000);
  CHECK(one("1b7fffffffffffffff")->int_value() == std::numeric_limits<int64_t>::max());
  CHECK(one("1bffffffffffffffff")->double_value() == 18446744073709551615.0);
  CHECK(one("20")->int_value() == -1);
  CHECK(one("3863")->int_value() == -100);
  CHECK(one("3b7fffffffffffffff")->int_value() == std::numeric_limits<int64_t>::min());
  CHECK(one("3bffffffffffffffff")->double_value() == -18446744073709551616.0);
  CHECK(one("f90000")->double_value() == 0.0);
  CHECK(std::signbit(one("f98000")->double_value()));
  CHECK(one("f93c00")->double_value() == 1.0);
  CHECK(one("f93e00")->double_value() == 1.5);
  CHECK(one("f97bff")->double_value() == 65504.0);
  CHECK(one("f90001")->double_value() == 5.960464477539063e-8);
  CHECK(one("f90400")->double_value() == 0.00006103515625);
  CHECK(one("f9c400")->double_value() == -4.0);
  CHECK(std::isinf(one("f97c00")->double_value()));
  CHECK(std::isnan(one("f97e00")->double_value()));
  CHECK(one("f9fc00")->double_value() == -INFINITY);
  CHECK(one("fa47c35000")->double_value() == 100000.0);
  CHECK(one("fa7f7fffff")->double_value() == 3.4028234663852886e+38);
  CHECK(one("fb3ff199999999999a")->double_value() == 1.1);
  CHECK(one("fbc010666666666666")->double_value() == -4.1);
  CHECK(one("f4")->kind() == Kind::kBool);
  CHECK_FALSE(one("f4")->bool_value());
  CHECK(one("f5")->bool_value());
  CHECK(one("f6")->kind() == Kind::kNull);
  CHECK(one("f7")->kind() == Kind::kNull);  // undefined
  CHECK(one("40")->str().empty());
  CHECK(one("4401020304")->str() == "\x01\x02\x03\x04");
  CHECK(one("6449455446")->str() == "IETF");
  CHECK(one("62225c")->str() == "\"\\");
  CHECK(one("63e6b0b4")->str() == "\xe6\xb0\xb4");
  CHECK(one("5f42010243030405ff")->str() == "\x01\x02\x03\x04\x05");
  CHECK(one("5f42010243030405ff")->kind() == Kind::kBytes);
  CHECK(one("7f657374726561646d696e67ff")->str() == "streaming");
  CHECK(one("7fff")->str().empty());
  CHECK(one("62ffc3")->str() == "\xff\xc3");  // bad UTF-8 passes as bytes
  CHECK(one("80")->items().empty());
  CHECK(one("83010203")->items().size() == 3);
  CHECK(one("9f018202039f0405ffff")->items()[2].items()[1].int_value() == 5);
  CHECK(one("9fff")->items().empty());
  CHECK(one("a0")->members().empty());
  CHECK(one("bf61610161629f0203ffff")->Find("b")->items()[1].int_value() == 3);
  CHECK(one("bf7f6161ff01ff")->Find("a")->int_value() == 1);  // indefinite key
  CHECK(one("c074323031332d30332d32315432303a30343a30305a")->str() ==
        "2013-03-21T20:04:00Z");  // other tags are read through
  CHECK_FALSE(one("c074323031332d30332d32315432303a30343a30305a")->tagged_time());
  CHECK(one("c11a514b67b0")->tagged_time());
  CHECK(one("c1fb41d452d9ec200000")->tagged_time());
}

TEST_CASE("ParseCbor refuses malformed input with SerializationException, never reads past the end",
          "[wire][document]") {
  const char* bad[] = {
      "a1",                        // truncated map
      "a16178",                    // key without value
      "a1617801ff",                // trailing byte
      "a0a0",                      // two documents
      "80",                        // array at the top
      "01",                        // integer at the top
      "a1617818",                  // argument byte missing
      "a161781b000000",            // 8-byte argument cut short
      "a161785bffffffffffffffff",  // huge byte-string length
      "a161787bffffffffffffffff",  // huge text-string length
      "a161789bffffffffffffffff",  // huge array length
      "a16178bbffffffffffffffff",  // huge map length
      "a161789a7fffffff",          // large array, no items
      "a161785a00010000",          // 65536-byte string in a short body
      "a161781c",                  // reserved additional info
      "a161783f",                  // indefinite negative integer
      "a1617800ff",                // stray break
      "a16178ff",                  // break as a value
      "a101016178",                // non-text key
      "a14161786178",              // byte-string key
      "a16178c16178",              // tag 1 on a string
      "a16178c1",                  // tag without content
      "a161785f6161ff",            // text chunk in an indefinite byte string
      "a161785f5f4101ffff",        // nested indefinite chunk
      "a16178f818",                // simple value 24
      "a16178e0",                  // simple value 0
      "a161789f01",                // unterminated indefinite array
      "a16178bf6161",              // unterminated indefinite map
      "bf",                        // unterminated indefinite top map
      "a16178df",                  // indefinite tag
  };
  for (const char* hex : bad) {
    INFO(hex);
    const std::string body = Hex(hex);
    // A heap copy of exactly the body's size, so that ASan sees any over-read.
    std::unique_ptr<char[]> exact(new char[body.size()]);
    std::memcpy(exact.get(), body.data(), body.size());
    CHECK(IsSerialization(ParseCbor(std::string_view(exact.get(), body.size())).status()));
  }
  // Every proper prefix of a valid document is refused.
  const std::string doc = Write(Format::kCbor, Sample());
  REQUIRE(ParseCbor(doc).ok());
  for (size_t n = 1; n < doc.size(); ++n) {
    std::unique_ptr<char[]> exact(new char[n]);
    std::memcpy(exact.get(), doc.data(), n);
    CHECK(IsSerialization(ParseCbor(std::string_view(exact.get(), n)).status()));
  }
}

TEST_CASE("ParseCbor allows 64 levels of nesting, not 65", "[wire][document]") {
  auto nested = [](int depth, std::string_view open, std::string_view close) {
    std::string s = Hex("a16178");  // {"x": ...} is level 1
    for (int i = 1; i < depth; ++i) s += Hex(open);
    s += Hex("01");
    for (int i = 1; i < depth; ++i) s += Hex(close);
    return s;
  };
  CHECK(ParseCbor(nested(64, "81", "")).ok());
  CHECK(IsSerialization(ParseCbor(nested(65, "81", "")).status()));
  CHECK(ParseCbor(nested(64, "9f", "ff")).ok());
  CHECK(IsSerialization(ParseCbor(nested(65, "9f", "ff")).status()));
  CHECK(IsSerialization(ParseCbor(nested(100000, "c2", "")).status()));  // tags count too
  CHECK(IsSerialization(ParseCbor(nested(100000, "a16178", "")).status()));
}

TEST_CASE("Writer CBOR: heads, indefinite containers, tag-1 milliseconds", "[wire][document]") {
  Writer w(Format::kCbor);
  w.BeginObject();
  w.Key("a");
  w.BeginArray();
  for (int64_t i :
       std::initializer_list<int64_t>{0, 23, 24, 255, 256, 65535, 65536, 4294967295, 4294967296, -1,
                                      -24, -25, std::numeric_limits<int64_t>::min()}) {
    w.Int(i);
  }
  w.EndArray();
  w.Key("t");
  w.Time(absl::FromUnixMillis(1787036486712));
  w.Key("b");
  w.Blob("hi");
  w.Key("s");
  w.String("x");
  w.Key("n");
  w.Null();
  w.Key("f");
  w.Bool(false);
  w.Key("d");
  w.Double(1.1);
  w.EndObject();
  CHECK(ToHex(w.data()) ==
        "bf"
        "6161"
        "9f"
        "00"
        "17"
        "1818"
        "18ff"
        "190100"
        "19ffff"
        "1a00010000"
        "1affffffff"
        "1b0000000100000000"
        "20"
        "37"
        "3818"
        "3b7fffffffffffffff"
        "ff"
        "6174"
        "c11b000001a013accc38"
        "6162"
        "426869"
        "6173"
        "6178"
        "616e"
        "f6"
        "6166"
        "f4"
        "6164"
        "fb3ff199999999999a"
        "ff");
  // cbor2-equivalent reading of what we wrote.
  auto doc = ParseCbor(w.data());
  REQUIRE(doc.ok());
  CHECK(*TimeOf(*doc->Find("t"), Format::kCbor, "t") == absl::FromUnixMillis(1787036486712));
}

TEST_CASE("CBOR documents round-trip through Writer", "[wire][document]") {
  Value sample = Sample();
  std::vector<Value::Member> extra = sample.members();
  extra.emplace_back("bytes", Value::Bytes(std::string("\0\xff\x01", 3)));
  Value tagged = Value::Int(1767225600500);
  tagged.set_tagged_time(true);
  extra.emplace_back("ts", tagged);
  extra.emplace_back("nan", Value::Double(std::nan("")));
  extra.emplace_back("inf", Value::Double(-INFINITY));
  const Value doc = Value::Object(std::move(extra));
  const std::string bytes = Write(Format::kCbor, doc);
  auto back = ParseCbor(bytes);
  REQUIRE(back.ok());
  CHECK(*back == doc);
  CHECK(Write(Format::kCbor, *back) == bytes);
  // JSON -> Value -> CBOR -> Value: the same tree (strings and numbers alike).
  auto json = ParseJson(Write(Format::kJson, Sample()));
  REQUIRE(json.ok());
  auto via_cbor = ParseCbor(Write(Format::kCbor, *json));
  REQUIRE(via_cbor.ok());
  CHECK(*via_cbor == *json);
}

TEST_CASE("ContentType names the two formats", "[wire][document]") {
  CHECK(kinlet::wire::ContentType(Format::kJson) == "application/x-amz-json-1.1");
  CHECK(kinlet::wire::ContentType(Format::kCbor) == "application/x-amz-cbor-1.1");
  CHECK(kinlet::wire::Parse(Format::kCbor, Hex("a0")).ok());
  CHECK(kinlet::wire::Parse(Format::kJson, "{}").ok());
}
