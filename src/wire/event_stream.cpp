// The event-stream codec (see kinlet/wire/event_stream.hpp).
#include "kinlet/wire/event_stream.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kinlet/wire/errors.hpp"

namespace kinlet::wire {
namespace {

constexpr size_t kPreludeSize = 12;  // total, headers length, prelude CRC
constexpr size_t kOverhead = 16;     // prelude and message CRC

uint32_t Crc32(uint32_t crc, const char* data, size_t size) {
  // zlib takes a uInt length; messages are far below 4 GiB.
  return static_cast<uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
}

uint32_t LoadBE32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t(u[0]) << 24) | (uint32_t(u[1]) << 16) | (uint32_t(u[2]) << 8) | u[3];
}

uint64_t LoadBE(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void StoreBE(uint64_t v, size_t n, std::string* out) {
  char buf[8];
  for (size_t i = 0; i < n; ++i) buf[i] = static_cast<char>(v >> (8 * (n - 1 - i)));
  out->append(buf, n);
}

// The value width of a fixed-size type, or 0 for none, -1 for a u16-length one.
int FixedWidth(EventHeader::Type type) {
  switch (type) {
    case EventHeader::Type::kTrue:
    case EventHeader::Type::kFalse:
      return 0;
    case EventHeader::Type::kInt8:
      return 1;
    case EventHeader::Type::kInt16:
      return 2;
    case EventHeader::Type::kInt32:
      return 4;
    case EventHeader::Type::kInt64:
    case EventHeader::Type::kTimestamp:
      return 8;
    case EventHeader::Type::kUuid:
      return 16;
    case EventHeader::Type::kBytes:
    case EventHeader::Type::kString:
      return -1;
  }
  return -2;
}

absl::Status StreamError(std::string_view what) {
  return SerializationError(absl::StrCat("Malformed event stream: ", kinlet::detail::ToAbsl(what)));
}

absl::Status ParseHeaders(const char* p, size_t size, std::vector<EventHeader>* headers) {
  const char* end = p + size;
  while (p < end) {
    EventHeader h;
    const size_t name_len = static_cast<unsigned char>(*p++);
    if (name_len == 0) return StreamError("empty header name");
    if (static_cast<size_t>(end - p) < name_len + 1) return StreamError("header past the end");
    h.name.assign(p, name_len);
    p += name_len;
    const auto type_byte = static_cast<unsigned char>(*p++);
    if (type_byte > 9) return StreamError(absl::StrCat("unknown header type ", type_byte));
    h.type = static_cast<EventHeader::Type>(type_byte);
    const int width = FixedWidth(h.type);
    if (width == 0) {
      h.int_value = h.type == EventHeader::Type::kTrue ? 1 : 0;
    } else if (width > 0) {
      const auto w = static_cast<size_t>(width);
      if (static_cast<size_t>(end - p) < w) return StreamError("header past the end");
      if (h.type == EventHeader::Type::kUuid) {
        h.str_value.assign(p, w);
      } else {
        // Sign-extend from the type's width.
        const uint64_t raw = LoadBE(p, w);
        const unsigned shift = static_cast<unsigned>(64 - 8 * w);
        h.int_value = static_cast<int64_t>(raw << shift) >> shift;
      }
      p += w;
    } else {
      if (end - p < 2) return StreamError("header past the end");
      const size_t len = static_cast<size_t>(LoadBE(p, 2));
      p += 2;
      if (static_cast<size_t>(end - p) < len) return StreamError("header past the end");
      h.str_value.assign(p, len);
      p += len;
    }
    headers->push_back(std::move(h));
  }
  // Each name at most once: sort views of the names (n log n even for the
  // ~40,000 headers 128 KiB can hold).
  if (headers->size() > 1) {
    std::vector<std::string_view> names;
    names.reserve(headers->size());
    for (const EventHeader& h : *headers) names.emplace_back(h.name);
    std::sort(names.begin(), names.end());
    auto dup = std::adjacent_find(names.begin(), names.end());
    if (dup != names.end()) {
      return StreamError(absl::StrCat("duplicate header '", kinlet::detail::ToAbsl(*dup), "'"));
    }
  }
  return absl::OkStatus();
}

void AppendHeader(std::string_view name, EventHeader::Type type, int64_t int_value,
                  std::string_view str_value, std::string* out) {
  name = name.substr(0, 255);
  out->push_back(static_cast<char>(name.size()));
  out->append(name);
  out->push_back(static_cast<char>(type));
  const int width = FixedWidth(type);
  if (type == EventHeader::Type::kUuid) {
    std::string uuid(str_value.substr(0, 16));
    uuid.resize(16, '\0');
    out->append(uuid);
  } else if (width > 0) {
    StoreBE(static_cast<uint64_t>(int_value), static_cast<size_t>(width), out);
  } else if (width < 0) {
    str_value = str_value.substr(0, 0xffff);
    StoreBE(str_value.size(), 2, out);
    out->append(str_value);
  }
}

// Writes the prelude in place at `start` (reserved), then the message CRC.
void Finish(size_t start, size_t headers_size, std::string* out) {
  const size_t total = out->size() - start + 4;
  char* p = out->data() + start;
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(total >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<char>(headers_size >> (24 - 8 * i));
  const uint32_t prelude_crc = Crc32(0, p, 8);
  for (int i = 0; i < 4; ++i) p[8 + i] = static_cast<char>(prelude_crc >> (24 - 8 * i));
  const uint32_t crc = Crc32(0, out->data() + start, out->size() - start);
  StoreBE(crc, 4, out);
}

}  // namespace

const std::string* EventMessage::FindString(std::string_view name) const {
  for (const EventHeader& h : headers) {
    if (h.type == EventHeader::Type::kString && h.name == name) return &h.str_value;
  }
  return nullptr;
}

void AppendEventMessage(const EventMessage& message, std::string* out) {
  const size_t start = out->size();
  out->append(kPreludeSize, '\0');
  for (const EventHeader& h : message.headers) {
    AppendHeader(h.name, h.type, h.int_value, h.str_value, out);
  }
  const size_t headers_size = out->size() - start - kPreludeSize;
  out->append(std::string_view(message.payload).substr(0, kEventMaxPayload));
  Finish(start, headers_size, out);
}

void AppendEventMessage(
    std::initializer_list<std::pair<std::string_view, std::string_view>> headers,
    std::string_view payload, std::string* out) {
  const size_t start = out->size();
  out->append(kPreludeSize, '\0');
  for (const auto& [name, value] : headers) {
    AppendHeader(name, EventHeader::Type::kString, 0, value, out);
  }
  const size_t headers_size = out->size() - start - kPreludeSize;
  out->append(payload.substr(0, kEventMaxPayload));
  Finish(start, headers_size, out);
}

absl::Status EventStreamDecoder::DecodeSome(std::string_view data, size_t* consumed,
                                            std::vector<EventMessage>* messages) {
  size_t pos = 0;
  while (data.size() - pos >= kPreludeSize) {
    const char* m = data.data() + pos;
    const uint32_t total = LoadBE32(m);
    const uint32_t headers_size = LoadBE32(m + 4);
    const uint32_t prelude_crc = LoadBE32(m + 8);
    const uint32_t prelude_actual = Crc32(0, m, 8);
    if (prelude_crc != prelude_actual) {
      *consumed = pos;
      return StreamError(absl::StrCat("prelude checksum mismatch (sent ", prelude_crc,
                                      ", computed ", prelude_actual, ")"));
    }
    if (total < kOverhead || headers_size > total - kOverhead) {
      *consumed = pos;
      return StreamError(
          absl::StrCat("lengths out of range (total ", total, ", headers ", headers_size, ")"));
    }
    if (headers_size > kEventMaxHeaders) {
      *consumed = pos;
      return StreamError(absl::StrCat("headers of ", headers_size, " bytes (limit 128 KiB)"));
    }
    const size_t payload_size = total - kOverhead - headers_size;
    if (payload_size > kEventMaxPayload) {
      *consumed = pos;
      return StreamError(absl::StrCat("payload of ", payload_size, " bytes (limit 24 MiB)"));
    }
    if (data.size() - pos < total) break;  // wait for the rest
    const uint32_t crc = LoadBE32(m + total - 4);
    const uint32_t actual = Crc32(0, m, total - 4);
    if (crc != actual) {
      *consumed = pos;
      return StreamError(
          absl::StrCat("message checksum mismatch (sent ", crc, ", computed ", actual, ")"));
    }
    EventMessage message;
    absl::Status status = ParseHeaders(m + kPreludeSize, headers_size, &message.headers);
    if (!status.ok()) {
      *consumed = pos;
      return status;
    }
    message.payload.assign(m + kPreludeSize + headers_size, payload_size);
    messages->push_back(std::move(message));
    pos += total;
  }
  *consumed = pos;
  return absl::OkStatus();
}

absl::Status EventStreamDecoder::Feed(std::string_view bytes, std::vector<EventMessage>* messages) {
  if (failed_) return error_;
  absl::Status status;
  size_t consumed = 0;
  if (buffer_.empty()) {
    // Decode straight from the caller's bytes; keep only an incomplete tail.
    status = DecodeSome(bytes, &consumed, messages);
    if (status.ok()) buffer_.assign(bytes.substr(consumed));
  } else {
    buffer_.append(bytes);
    status = DecodeSome(buffer_, &consumed, messages);
    if (status.ok()) buffer_.erase(0, consumed);
  }
  if (!status.ok()) {
    failed_ = true;
    error_ = status;
    buffer_.clear();
  }
  return status;
}

}  // namespace kinlet::wire
