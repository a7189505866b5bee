// libFuzzer target: the event-stream codec. The first byte picks a mode:
//  - even: the rest is a byte stream, fed to an EventStreamDecoder in pieces
//    whose sizes come from the input's tail; the result (messages and error)
//    must equal a one-piece decode, and the decoded messages must re-encode to
//    exactly the bytes they came from.
//  - odd: the rest describes a message (headers of every type, a payload); its
//    encoding, fed in random pieces, decodes back to it.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kinlet/wire/errors.hpp"
#include "kinlet/wire/event_stream.hpp"

namespace {

using kinlet::wire::EventHeader;
using kinlet::wire::EventMessage;
using kinlet::wire::EventStreamDecoder;

void Require(bool ok) {
  if (!ok) std::abort();
}

// Feeds `bytes` in pieces sized by `fdp`; returns the first error.
absl::Status FeedInPieces(std::string_view bytes, FuzzedDataProvider& fdp,
                          std::vector<EventMessage>* out, size_t* buffered) {
  EventStreamDecoder decoder;
  absl::Status status;
  while (!bytes.empty() && status.ok()) {
    size_t n = fdp.ConsumeIntegralInRange<size_t>(0, bytes.size());
    if (fdp.remaining_bytes() == 0) n = bytes.size();
    status = decoder.Feed(bytes.substr(0, n), out);
    bytes.remove_prefix(n);
  }
  *buffered = decoder.buffered();
  return status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider fdp(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    // Stream bytes first, split sizes from what is left after them.
    const std::string stream = fdp.ConsumeRandomLengthString(size);
    EventStreamDecoder whole;
    std::vector<EventMessage> expected;
    const absl::Status whole_status = whole.Feed(stream, &expected);
    if (!whole_status.ok()) {
      Require(kinlet::wire::ErrorTypeOf(whole_status) == "SerializationException");
    }
    std::vector<EventMessage> got;
    size_t buffered = 0;
    const absl::Status status = FeedInPieces(stream, fdp, &got, &buffered);
    Require(status.ok() == whole_status.ok());
    Require(got == expected);
    std::string again;
    for (const EventMessage& m : expected) kinlet::wire::AppendEventMessage(m, &again);
    Require(std::string_view(stream).substr(0, again.size()) == again);
    if (whole_status.ok()) Require(again.size() + whole.buffered() == stream.size());
    return 0;
  }
  EventMessage message;
  const int count = fdp.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < count; ++i) {
    EventHeader h;
    h.name = fdp.ConsumeRandomLengthString(255);
    if (h.name.empty()) h.name = "x";
    h.name += std::to_string(i);  // distinct names
    if (h.name.size() > 255) continue;
    h.type = static_cast<EventHeader::Type>(fdp.ConsumeIntegralInRange<int>(0, 9));
    switch (h.type) {
      case EventHeader::Type::kTrue:
        h.int_value = 1;
        break;
      case EventHeader::Type::kFalse:
        break;
      case EventHeader::Type::kInt8:
        h.int_value = fdp.ConsumeIntegral<int8_t>();
        break;
      case EventHeader::Type::kInt16:
        h.int_value = fdp.ConsumeIntegral<int16_t>();
        break;
      case EventHeader::Type::kInt32:
        h.int_value = fdp.ConsumeIntegral<int32_t>();
        break;
      case EventHeader::Type::kInt64:
      case EventHeader::Type::kTimestamp:
        h.int_value = fdp.ConsumeIntegral<int64_t>();
        break;
      case EventHeader::Type::kUuid:
        h.str_value = fdp.ConsumeBytesAsString(16);
        h.str_value.resize(16, '\0');
        break;
      case EventHeader::Type::kBytes:
      case EventHeader::Type::kString:
        h.str_value = fdp.ConsumeRandomLengthString(1024);
        break;
    }
    message.headers.push_back(std::move(h));
  }
  message.payload = fdp.ConsumeRandomLengthString(4096);
  std::string bytes;
  kinlet::wire::AppendEventMessage(message, &bytes);
  kinlet::wire::AppendEventMessage(message, &bytes);
  std::vector<EventMessage> got;
  size_t buffered = 0;
  Require(FeedInPieces(bytes, fdp, &got, &buffered).ok());
  Require(buffered == 0);
  Require(got.size() == 2 && got[0] == message && got[1] == message);
  return 0;
}
