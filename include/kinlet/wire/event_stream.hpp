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
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
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
  int64_t int_value = 0;  // the integer types, kTimestamp; kTrue 1, kFalse 0
  std::string str_value;  // kBytes, kString, kUuid (16 bytes)

  friend bool operator==(const EventHeader& a, const EventHeader& b) {
    return a.name == b.name && a.type == b.type && a.int_value == b.int_value &&
           a.str_value == b.str_value;
  }
};

struct EventMessage {
  std::vector<EventHeader> headers;
  std::string payload;

  // The value of a string header, or nullptr.
  const std::string* FindString(std::string_view name) const;

  friend bool operator==(const EventMessage& a, const EventMessage& b) {
    return a.headers == b.headers && a.payload == b.payload;
  }
};

// Limits of the format (what the decoder enforces).
inline constexpr size_t kEventMaxPayload = 24 << 20;
inline constexpr size_t kEventMaxHeaders = 128 << 10;

// Appends one encoded message to *out. REQUIRES: names of 1..255 bytes, kBytes
// and kString values under 64 KiB, kUuid values of 16 bytes, headers and payload
// within the limits above (longer ones are cut to fit, so the output always
// decodes; a caller bug, not an error). Integer values are written in their
// type's width (the low bytes of int_value).
void AppendEventMessage(const EventMessage& message, std::string* out);

// Appends a message whose headers are all strings (what Kinesis sends:
// ":message-type", ":event-type", ":content-type", ":exception-type"), without
// building an EventMessage.
void AppendEventMessage(
    std::initializer_list<std::pair<std::string_view, std::string_view>> headers,
    std::string_view payload, std::string* out);

// Decodes messages from a byte stream fed in pieces of any size.
// Errors (the stream is then unusable: every later Feed returns the same
// error): a CRC mismatch, a length out of range (total < 16, headers longer
// than the message, payload > 24 MiB, headers > 128 KiB), a malformed header
// (empty name, unknown type, value past the headers' end) or a repeated one.
// They are SerializationException (kinlet/wire/errors.hpp). The prelude is
// checked as soon as its 12 bytes arrive, so a corrupt length is reported at
// once, not after waiting for the bytes it announces. Bytes are copied into the
// decoder only when a message is split across Feed calls.
class EventStreamDecoder {
 public:
  // Adds bytes; appends every message now complete to *messages.
  absl::Status Feed(std::string_view bytes, std::vector<EventMessage>* messages);
  // Bytes held of a message not yet complete.
  size_t buffered() const { return buffer_.size(); }

 private:
  // Decodes whole messages from the front of `data`; returns how many bytes
  // they took, or an error.
  absl::Status DecodeSome(std::string_view data, size_t* consumed,
                          std::vector<EventMessage>* messages);

  std::string buffer_;  // the start of a message not yet complete
  bool failed_ = false;
  absl::Status error_;  // when failed_
};

}  // namespace kinlet::wire
