// libFuzzer target: ParseJson on any bytes. It must refuse bad input with a
// SerializationException (never crash, hang or over-read) and round-trip what
// it accepts: Writer's JSON of the tree parses back to an equal tree, and
// writing that again gives the same bytes. Every accessor runs on every value.
#include <cstdint>
#include <cstdlib>
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
  auto doc = kinlet::wire::ParseJson(body);
  if (!doc.ok()) {
    Require(kinlet::wire::ErrorTypeOf(doc.status()) == "SerializationException");
    return 0;
  }
  Require(doc->kind() == Value::Kind::kObject);
  Touch(*doc, Format::kJson);
  kinlet::wire::Writer writer(Format::kJson);
  writer.Write(*doc);
  const std::string text = writer.Take();
  auto back = kinlet::wire::ParseJson(text);
  Require(back.ok());
  Require(*back == *doc);
  writer.Write(*back);
  Require(writer.data() == text);
  // The same tree through CBOR.
  kinlet::wire::Writer cbor(Format::kCbor);
  cbor.Write(*doc);
  auto via_cbor = kinlet::wire::ParseCbor(cbor.data());
  Require(via_cbor.ok() && *via_cbor == *doc);
  return 0;
}
