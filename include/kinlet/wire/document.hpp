// kinlet/wire/document.hpp: the request and response bodies of the Kinesis
// protocol, in either of its two encodings (JSON 1.1 and AWS's CBOR 1.1 dialect).
//
// A request body is parsed into a Value tree (ParseJson / ParseCbor); the
// service reads its members through the format-aware accessors below (a blob is
// base64 text in JSON and a byte string in CBOR; a timestamp is epoch seconds in
// JSON and a tag-1 integer of epoch milliseconds in CBOR). A response is written
// once, front to back, through a Writer of the request's format.
//
// Errors carry the `__type` and message AWS sends (kinlet/wire/errors.hpp):
// SerializationException for a body that is not a document of the format, or a
// member of the wrong type.
//
// Thread safety: a Value and a Writer are plain values (one thread at a time);
// the free functions are thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kinlet::wire {

enum class Format { kJson, kCbor };

// The content type of a format: "application/x-amz-json-1.1" or
// "application/x-amz-cbor-1.1".
std::string_view ContentType(Format format);

class Value {
 public:
  enum class Kind { kNull, kBool, kInt, kDouble, kString, kBytes, kArray, kObject };
  using Member = std::pair<std::string, Value>;

  Value() = default;
  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Double(double d);
  static Value String(std::string s);
  static Value Bytes(std::string b);
  static Value Array(std::vector<Value> items);
  static Value Object(std::vector<Member> members);

  Kind kind() const { return kind_; }
  // A number under CBOR tag 1 (AWS's CBOR timestamp: epoch milliseconds).
  bool tagged_time() const { return tagged_time_; }
  void set_tagged_time(bool t) { tagged_time_ = t; }

  bool bool_value() const { return int_ != 0; }
  int64_t int_value() const { return int_; }
  double double_value() const { return double_; }
  // kString and kBytes: the text or bytes.
  const std::string& str() const { return str_; }
  const std::vector<Value>& items() const { return items_; }
  const std::vector<Member>& members() const { return members_; }

  // The member named `key` of an object (the first one), or nullptr when this
  // is not an object or has no such member. A member whose value is null is
  // returned (callers treat null as absent, as AWS does).
  const Value* Find(std::string_view key) const;

  // Deep equality: same kind, tag and contents (members in order; doubles by
  // value, NaN equal to NaN). For tests and round-trip checks.
  friend bool operator==(const Value& a, const Value& b);
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

 private:
  Kind kind_ = Kind::kNull;
  bool tagged_time_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string str_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

// Parses a whole request body. An empty body is an empty object (clients may
// send none when an operation has no input). Errors: SerializationException
// (malformed document, trailing bytes, nesting deeper than 64 arrays/objects
// (and CBOR tags), a non-object at the top). The returned Value owns its data.
//
// Numbers: an integer that fits int64 is kInt; a larger one (JSON up to 2^64-1,
// CBOR any uint64/negative beyond int64) is kDouble (precision may be lost);
// JSON integers outside [-2^63, 2^64) and numbers outside double's range are
// refused (simdjson's NUMBER_ERROR).
// JSON: strict RFC 8259 (simdjson 3.0.1, DOM), UTF-8 validated; duplicate keys
// are kept (Find returns the first).
// CBOR (RFC 8949, AWS dialect): every major type, definite and indefinite
// lengths, half/single/double floats; map keys must be text strings; tag 1
// marks the number it wraps tagged_time(); other tags are read through (the
// tag number is dropped); undefined reads as null; text strings are not
// UTF-8-validated (their bytes pass through).
absl::StatusOr<Value> ParseJson(std::string_view body);
absl::StatusOr<Value> ParseCbor(std::string_view body);
absl::StatusOr<Value> Parse(Format format, std::string_view body);

// Format-aware reads of a member's value, with AWS's SerializationException
// texts when the value has the wrong type.
//  - BlobOf: JSON string decoded as strict base64 (kinlet/wire/base64.hpp); CBOR
//    byte string (a text string is accepted as its UTF-8 bytes). A bad base64
//    text gives AWS's "'<the text>' can not be converted to a Blob: <base64
//    error>" (AWS quotes the value, not the member name; observed, kinesalite).
//  - TimeOf: JSON number of epoch seconds (integer or fraction, rounded to the
//    millisecond; a string is refused with AWS's "class java.lang.String can not
//    be converted to milliseconds since epoch"); CBOR tag-1 number of epoch
//    milliseconds, or an untagged number of epoch seconds.
//  - IntOf: a number; a fraction is truncated toward zero as AWS does (its
//    TruncatingBigNumber); outside int64 is refused.
//  - StringOf: a string (the view lives as long as `value`).
// Wrong types give AWS's texts: "class java.lang.Boolean can not be converted
// to a Blob", "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can
// not be converted to an String", "Start of list found where not expected",
// "Start of structure or map found where not expected." (a CBOR byte string is
// "class java.nio.HeapByteBuffer ..."). REQUIRES: `value` is not null (callers
// treat null as absent); a null gives "Unexpected null value for '<member>'".
absl::StatusOr<std::string> BlobOf(const Value& value, Format format, std::string_view member);
absl::StatusOr<absl::Time> TimeOf(const Value& value, Format format, std::string_view member);
absl::StatusOr<int64_t> IntOf(const Value& value, std::string_view member);
absl::StatusOr<std::string_view> StringOf(const Value& value, std::string_view member);

// Writes one document. Calls must nest properly (Begin/End pairs; inside an
// object, Key before each value); the Writer does not check beyond what its
// encoding needs. JSON: compact, strings escaped, timestamps as plain decimal
// epoch seconds with at most 3 fraction digits (never an exponent). CBOR:
// definite-length maps and arrays are not required by AWS clients, so objects
// and arrays are indefinite-length; blobs are byte strings; timestamps are tag
// 1 around an integer of epoch milliseconds.
class Writer {
 public:
  explicit Writer(Format format);

  Format format() const { return format_; }
  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(std::string_view key);
  void String(std::string_view s);
  void Blob(std::string_view bytes);  // base64 in JSON, a byte string in CBOR
  void Int(int64_t i);
  void Bool(bool b);
  void Time(absl::Time t);  // millisecond precision
  void Null();
  // JSON: the shortest text that reads back as the same double, always with a
  // '.' or an exponent (so it reads back as a double); NaN/infinity as null.
  // CBOR: a float64. Not used by Kinesis responses; here for Write().
  void Double(double d);
  // Writes `value` as one value (a whole document when it is the top): kBytes
  // as Blob; a tagged_time() number as tag 1 around it in CBOR and as the bare
  // number in JSON.
  void Write(const Value& value);

  // The document written so far; Take() moves it out and resets the Writer.
  const std::string& data() const { return out_; }
  std::string Take();

 private:
  void BeforeValue();

  Format format_;
  std::string out_;
  // JSON only: for each open container, whether it has an element yet.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

}  // namespace kinlet::wire
