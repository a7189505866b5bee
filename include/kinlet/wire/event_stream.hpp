// kinlet/wire/event_stream.hpp: the `application/vnd.amazon.eventstream`
// message codec (SubscribeToShard's response body).
//
// A message: prelude (total length u32 BE, headers length u32 BE, CRC32 of those
// 8 bytes), headers (name length u8, name, value type u8, value), payload, and a
// CRC32 of everything before it. CRC32 is zlib's (IEEE).
//
// Thread safety: pure functions; an EventStreamDecoder is one thread's at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"

namespace kinlet::wire {

// A header value: the types of the format (bool, int8..int64, bytes, string,
// timestamp in epoch milliseconds, 16-byte UUID).
struct EventHeader {
  enum class Type : uint8_t {
    kTrue = 0,
    kFalse = 1,
    kInt8 = 2,
    kInt16 = 3,
    kInt32 = 4,
    kInt64 = 5,
    kBytes = 6,
    kString = 7,
    kTimestamp = 8,
    kUuid = 9,
  };
  std::string name;
  Type type = Type::kString;
  int64_t int_value = 0;  // the integer types, kTimestamp
  std::string str_value;  // kBytes, kString, kUuid (16 bytes)
};

struct EventMessage {
  std::vector<EventHeader> headers;
  std::string payload;

  // The value of a string header, or nullptr.
  const std::string* FindString(std::string_view name) const;
};

// Appends one encoded message to *out.
void AppendEventMessage(const EventMessage& message, std::string* out);

// Appends a message whose headers are all strings (what Kinesis sends:
// ":message-type", ":event-type", ":content-type", ":exception-type"), without
// building an EventMessage.
void AppendEventMessage(
    std::initializer_list<std::pair<std::string_view, std::string_view>> headers,
    std::string_view payload, std::string* out);

// Decodes messages from a byte stream fed in pieces of any size.
// Errors (the stream is then unusable): a CRC mismatch, a length out of range
// (total < 16, headers longer than the message, payload > 24 MiB, headers >
// 128 KiB), a malformed or repeated header.
class EventStreamDecoder {
 public:
  // Adds bytes; appends every message now complete to *messages.
  absl::Status Feed(std::string_view bytes, std::vector<EventMessage>* messages);
  // Bytes held of a message not yet complete.
  size_t buffered() const { return buffer_.size(); }

 private:
  std::string buffer_;
  bool failed_ = false;
};

}  // namespace kinlet::wire
