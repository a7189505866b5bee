#include "kinlet/wire/event_stream.hpp"

#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "kinlet/wire/errors.hpp"

using kinlet::wire::AppendEventMessage;
using kinlet::wire::EventHeader;
using kinlet::wire::EventMessage;
using kinlet::wire::EventStreamDecoder;
using Type = kinlet::wire::EventHeader::Type;

namespace {

// A vector file: tests/wire/data/eventstream/<dir>/<name>.bin.
std::string ReadVector(const std::string& name, const std::string& dir = "positive") {
  std::ifstream in(std::string(KINLET_TEST_DATA_DIR) + "/eventstream/" + dir + "/" + name + ".bin",
                   std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

EventHeader Header(std::string name, Type type, int64_t i, std::string s = "") {
  EventHeader h;
  h.name = std::move(name);
  h.type = type;
  h.int_value = i;
  h.str_value = std::move(s);
  return h;
}

EventHeader StringHeader(std::string name, std::string value) {
  return Header(std::move(name), Type::kString, 0, std::move(value));
}

// Decodes `bytes` fed in one piece; REQUIREs success.
std::vector<EventMessage> DecodeAll(std::string_view bytes) {
  EventStreamDecoder decoder;
  std::vector<EventMessage> out;
  REQUIRE(decoder.Feed(bytes, &out).ok());
  CHECK(decoder.buffered() == 0);
  return out;
}

std::string Encode(const EventMessage& m) {
  std::string out;
  AppendEventMessage(m, &out);
  return out;
}

// botocore's vectors and the messages they decode to (restated from its test).
struct Vector {
  const char* name;
  EventMessage message;
};

std::vector<Vector> PositiveVectors() {
  std::vector<Vector> v;
  v.push_back({"empty_message", {}});
  v.push_back({"int8_header", {{Header("byte", Type::kInt8, -1)}, ""}});
  v.push_back({"int16_header", {{Header("short", Type::kInt16, -1)}, ""}});
  v.push_back({"int32_header", {{Header("integer", Type::kInt32, -1)}, ""}});
  v.push_back({"int64_header", {{Header("long", Type::kInt64, -1)}, ""}});
  v.push_back({"payload_no_headers", {{}, "{'foo':'bar'}"}});
  v.push_back({"payload_one_str_header",
               {{StringHeader("content-type", "application/json")}, "{'foo':'bar'}"}});
  v.push_back(
      {"all_headers_types",
       {{Header("0", Type::kTrue, 1), Header("1", Type::kFalse, 0), Header("2", Type::kInt8, 2),
         Header("3", Type::kInt16, 3), Header("4", Type::kInt32, 4), Header("5", Type::kInt64, 5),
         Header("6", Type::kBytes, 0, "bytes"), StringHeader("7", "utf8"),
         Header("8", Type::kTimestamp, 8), Header("9", Type::kUuid, 0, "0123456789abcdef")},
        ""}});
  v.push_back({"error_event_message",
               {{StringHeader(":message-type", "error"), StringHeader(":error-code", "code"),
                 StringHeader(":error-message", "message")},
                ""}});
  v.push_back(
      {"initial_response",
       {{StringHeader(":message-type", "event"), StringHeader(":event-type", "initial-response"),
         StringHeader(":content-type", "text/json")},
        R"({"InitialResponse": "sometext"})"}});
  v.push_back({"event_id_int32", {{Header("event-id", Type::kInt32, 0xa00c)}, "{'foo':'bar'}"}});
  return v;
}

// A message with a valid prelude CRC for the given lengths, padded with zeros
// to `total` bytes when total >= 12 (its message CRC is wrong unless fixed up).
std::string Prelude(uint32_t total, uint32_t headers) {
  std::string p;
  for (uint32_t v : {total, headers}) {
    for (int i = 0; i < 4; ++i) p.push_back(static_cast<char>(v >> (24 - 8 * i)));
  }
  const auto crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(p.data()), 8));
  for (int i = 0; i < 4; ++i) p.push_back(static_cast<char>(crc >> (24 - 8 * i)));
  return p;
}

// Rewrites the trailing message CRC of `message` so that only its contents matter.
void FixCrc(std::string* message) {
  const auto crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(message->data()),
                                               static_cast<uInt>(message->size() - 4)));
  for (int i = 0; i < 4; ++i) {
    (*message)[message->size() - 4 + i] = static_cast<char>(crc >> (24 - 8 * i));
  }
}

bool IsSerialization(const absl::Status& status) {
  return !status.ok() && kinlet::wire::ErrorTypeOf(status) == "SerializationException";
}

}  // namespace

TEST_CASE("EventStreamDecoder decodes botocore's positive vectors", "[wire][event_stream]") {
  for (const Vector& v : PositiveVectors()) {
    INFO(v.name);
    const std::string bytes = ReadVector(v.name);
    auto messages = DecodeAll(bytes);
    REQUIRE(messages.size() == 1);
    CHECK(messages[0] == v.message);
    // And our encoder produces the very same bytes.
    CHECK(Encode(v.message) == bytes);
  }
}

TEST_CASE("EventStreamDecoder: all vectors in one stream, split at every point",
          "[wire][event_stream]") {
  std::string stream;
  std::vector<EventMessage> expected;
  for (const Vector& v : PositiveVectors()) {
    stream += ReadVector(v.name);
    expected.push_back(v.message);
  }
  CHECK(DecodeAll(stream) == expected);
  for (size_t split = 0; split <= stream.size(); ++split) {
    EventStreamDecoder decoder;
    std::vector<EventMessage> out;
    REQUIRE(decoder.Feed(std::string_view(stream).substr(0, split), &out).ok());
    REQUIRE(decoder.Feed(std::string_view(stream).substr(split), &out).ok());
    REQUIRE(out == expected);
    CHECK(decoder.buffered() == 0);
  }
  // One byte at a time.
  EventStreamDecoder decoder;
  std::vector<EventMessage> out;
  for (size_t i = 0; i < stream.size(); ++i) {
    REQUIRE(decoder.Feed(std::string_view(stream).substr(i, 1), &out).ok());
  }
  CHECK(out == expected);
  CHECK(decoder.buffered() == 0);
  // A partial message is held, not delivered.
  EventStreamDecoder partial;
  std::vector<EventMessage> none;
  REQUIRE(partial.Feed(std::string_view(stream).substr(0, 15), &none).ok());
  CHECK(none.empty());
  CHECK(partial.buffered() == 15);
}

TEST_CASE("EventStreamDecoder refuses botocore's negative vectors", "[wire][event_stream]") {
  for (const char* name : {"corrupted_header_length", "corrupted_headers", "corrupted_length",
                           "corrupted_payload", "duplicate_header"}) {
    INFO(name);
    const std::string bytes = ReadVector(name, "negative");
    EventStreamDecoder decoder;
    std::vector<EventMessage> out;
    absl::Status status = decoder.Feed(bytes, &out);
    CHECK(IsSerialization(status));
    CHECK(out.empty());
    // The decoder stays failed, even for good bytes.
    CHECK_FALSE(decoder.Feed(ReadVector("empty_message"), &out).ok());
    CHECK(out.empty());
  }
}

TEST_CASE("EventStreamDecoder: CRC, length and header errors", "[wire][event_stream]") {
  const std::string good = ReadVector("payload_one_str_header");
  auto fails = [](std::string_view bytes) {
    EventStreamDecoder decoder;
    std::vector<EventMessage> out;
    return IsSerialization(decoder.Feed(bytes, &out)) && out.empty();
  };
  // Any flipped bit is caught by one of the two CRCs (or a length check).
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    INFO(i);
    CHECK(fails(bad));
  }
  // The corrupt prelude is reported as soon as its 12 bytes are in.
  {
    std::string bad = good;
    bad[0] = 0x7f;
    EventStreamDecoder decoder;
    std::vector<EventMessage> out;
    CHECK(IsSerialization(decoder.Feed(std::string_view(bad).substr(0, 12), &out)));
  }
  // Lengths out of range, with a valid prelude CRC.
  CHECK(fails(Prelude(15, 0) + std::string(3, '\0')));           // total < 16
  CHECK(fails(Prelude(0, 0)));                                   // total 0
  CHECK(fails(Prelude(32, 17) + std::string(20, '\0')));         // headers past the end
  CHECK(fails(Prelude(0xffffffff, 0)));                          // payload > 24 MiB
  CHECK(fails(Prelude(16 + (24 << 20) + 1, 0)));                 // payload 24 MiB + 1
  CHECK(fails(Prelude(16 + (128 << 10) + 1, (128 << 10) + 1)));  // headers > 128 KiB
  // The limits themselves are not errors: the decoder waits for the bytes.
  {
    EventStreamDecoder decoder;
    std::vector<EventMessage> out;
    CHECK(decoder.Feed(Prelude(16 + (24 << 20), 0), &out).ok());
    EventStreamDecoder decoder2;
    CHECK(decoder2.Feed(Prelude(16 + (128 << 10), 128 << 10), &out).ok());
    CHECK(out.empty());
  }
  // Malformed headers inside a message whose CRCs are right.
  auto with_headers = [](std::string headers) {
    std::string m =
        Prelude(static_cast<uint32_t>(16 + headers.size()), static_cast<uint32_t>(headers.size())) +
        headers + std::string(4, '\0');
    FixCrc(&m);
    return m;
  };
  CHECK_FALSE(
      fails(with_headers(std::string("\x01"
                                     "a\x00",
                                     3))));                // a valid one
  CHECK(fails(with_headers(std::string("\x00\x00", 2))));  // empty name
  CHECK(
      fails(with_headers(std::string("\x01"
                                     "a\x0a",
                                     3))));  // type 10
  CHECK(
      fails(with_headers(std::string("\x05"
                                     "ab",
                                     3))));  // name past the end
  CHECK(
      fails(with_headers(std::string("\x01"
                                     "a",
                                     2))));  // no type
  CHECK(
      fails(with_headers(std::string("\x01"
                                     "a\x04\x00\x00",
                                     5))));  // int32 cut short
  CHECK(
      fails(with_headers(std::string("\x01"
                                     "a\x07\x00\x05"
                                     "abc",
                                     8))));  // string cut
  CHECK(
      fails(with_headers(std::string("\x01"
                                     "a\x07\x00",
                                     4))));  // no string length
  CHECK(
      fails(with_headers(std::string("\x01"
                                     "a\x09"
                                     "0123456789",
                                     13))));  // short UUID
  CHECK(
      fails(with_headers(std::string("\x01"
                                     "a\x00\x01"
                                     "b\x00\x01"
                                     "a\x01",
                                     9))));  // dup
}

TEST_CASE("AppendEventMessage: the Kinesis form and round trips", "[wire][event_stream]") {
  std::string stream;
  AppendEventMessage({{":message-type", "event"},
                      {":event-type", "initial-response"},
                      {":content-type", "text/json"}},
                     R"({"InitialResponse": "sometext"})", &stream);
  CHECK(stream == ReadVector("initial_response"));  // byte-identical to botocore's vector

  EventMessage big;
  big.headers.push_back(StringHeader(":message-type", "event"));
  big.headers.push_back(Header("ts", Type::kTimestamp, 1787036486712));
  big.headers.push_back(Header("neg8", Type::kInt8, -128));
  big.headers.push_back(Header("neg16", Type::kInt16, -32768));
  big.headers.push_back(Header("i32", Type::kInt32, 2147483647));
  big.headers.push_back(Header("i64", Type::kInt64, INT64_MIN));
  big.headers.push_back(Header("bytes", Type::kBytes, 0, std::string("\0\xff", 2)));
  big.headers.push_back(StringHeader(std::string(255, 'n'), std::string(65535, 'v')));
  big.payload.assign(1 << 20, 'p');
  AppendEventMessage(big, &stream);
  AppendEventMessage(EventMessage{}, &stream);
  auto messages = DecodeAll(stream);
  REQUIRE(messages.size() == 3);
  CHECK(*messages[0].FindString(":event-type") == "initial-response");
  CHECK(messages[0].FindString("missing") == nullptr);
  CHECK(messages[1] == big);
  CHECK(messages[1].FindString("ts") == nullptr);  // not a string header
  CHECK(messages[2] == EventMessage{});
  std::string again;
  for (const EventMessage& m : messages) AppendEventMessage(m, &again);
  CHECK(again == stream);
}
