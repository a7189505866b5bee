// libFuzzer target: ParseCbor on any bytes. It must refuse bad input with a
// SerializationException (never crash, hang or read past the end) and
// round-trip what it accepts: Writer's CBOR of the tree parses back to an
// equal tree, and writing that again gives the same bytes. Every accessor runs
// on every value, and the JSON Writer on the tree.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "kinlet/wire/document.hpp"
#include "kinlet/wire/errors.hpp"

namespace {

using kinlet::wire::Format;
using kinlet::wire::Value;

void Require(bool ok) {
  if (!ok) std::abort();
}

void Touch(const Value& v, Format format) {
  (void)kinlet::wire::BlobOf(v, format, "m");
  (void)kinlet::wire::TimeOf(v, format, "m");
  (void)kinlet::wire::IntOf(v, "m");
  (void)kinlet::wire::StringOf(v, "m");
  for (const Value& item : v.items()) Touch(item, format);
  for (const Value::Member& m : v.members()) Touch(m.second, format);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto doc = kinlet::wire::ParseCbor(body);
  if (!doc.ok()) {
    Require(kinlet::wire::ErrorTypeOf(doc.status()) == "SerializationException");
    return 0;
  }
  Require(doc->kind() == Value::Kind::kObject);
  Touch(*doc, Format::kCbor);
  kinlet::wire::Writer writer(Format::kCbor);
  writer.Write(*doc);
  const std::string bytes = writer.Take();
  auto back = kinlet::wire::ParseCbor(bytes);
  Require(back.ok());
  Require(*back == *doc);
  writer.Write(*back);
  Require(writer.data() == bytes);
  kinlet::wire::Writer json(Format::kJson);
  json.Write(*doc);
  (void)kinlet::wire::ParseJson(json.data());
  return 0;
}
