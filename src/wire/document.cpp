// Value, the format-aware accessors and Writer (see kinlet/wire/document.hpp).
// The parsers are in json_parser.cpp and cbor_parser.cpp.
#include "kinlet/wire/document.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "kinlet/wire/base64.hpp"
#include "kinlet/wire/errors.hpp"

namespace kinlet::wire {

std::string_view ContentType(Format format) {
  return format == Format::kJson ? "application/x-amz-json-1.1" : "application/x-amz-cbor-1.1";
}

absl::StatusOr<Value> Parse(Format format, std::string_view body) {
  return format == Format::kJson ? ParseJson(body) : ParseCbor(body);
}

// ---------------------------------------------------------------------------
// Value

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.int_ = b ? 1 : 0;
  return v;
}

Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.int_ = i;
  return v;
}

Value Value::Double(double d) {
  Value v;
  v.kind_ = Kind::kDouble;
  v.double_ = d;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.str_ = std::move(s);
  return v;
}

Value Value::Bytes(std::string b) {
  Value v;
  v.kind_ = Kind::kBytes;
  v.str_ = std::move(b);
  return v;
}

Value Value::Array(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::kArray;
  v.items_ = std::move(items);
  return v;
}

Value Value::Object(std::vector<Member> members) {
  Value v;
  v.kind_ = Kind::kObject;
  v.members_ = std::move(members);
  return v;
}

const Value* Value::Find(std::string_view key) const {
  if (kind_ != Kind::kObject) return nullptr;
  for (const Member& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

bool operator==(const Value& a, const Value& b) {
  if (a.kind_ != b.kind_ || a.tagged_time_ != b.tagged_time_) return false;
  switch (a.kind_) {
    case Value::Kind::kNull:
      return true;
    case Value::Kind::kBool:
    case Value::Kind::kInt:
      return a.int_ == b.int_;
    case Value::Kind::kDouble:
      return a.double_ == b.double_ || (std::isnan(a.double_) && std::isnan(b.double_));
    case Value::Kind::kString:
    case Value::Kind::kBytes:
      return a.str_ == b.str_;
    case Value::Kind::kArray:
      return a.items_ == b.items_;
    case Value::Kind::kObject:
      return a.members_ == b.members_;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Accessors

namespace {

using kinlet::detail::ToAbsl;

// AWS's (Coral's) text for a value of the wrong type; `target` is what the
// member should have been ("a Blob", "an String" [sic], ...).
absl::Status WrongType(const Value& value, std::string_view target, std::string_view member) {
  switch (value.kind()) {
    case Value::Kind::kNull:
      return SerializationError(absl::StrCat("Unexpected null value for '", ToAbsl(member), "'"));
    case Value::Kind::kBool:
      return SerializationError(
          absl::StrCat("class java.lang.Boolean can not be converted to ", ToAbsl(target)));
    case Value::Kind::kInt:
    case Value::Kind::kDouble:
      return SerializationError(absl::StrCat(
          "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to ",
          ToAbsl(target)));
    case Value::Kind::kString:
      return SerializationError(
          absl::StrCat("class java.lang.String can not be converted to ", ToAbsl(target)));
    case Value::Kind::kBytes:
      return SerializationError(
          absl::StrCat("class java.nio.HeapByteBuffer can not be converted to ", ToAbsl(target)));
    case Value::Kind::kArray:
      return SerializationError("Start of list found where not expected");
    case Value::Kind::kObject:
      return SerializationError("Start of structure or map found where not expected.");
  }
  return SerializationError("Unexpected value");
}

// Milliseconds (as a double) to a Time, rounded; out of int64 range: error.
absl::StatusOr<absl::Time> FromDoubleMillis(double ms) {
  // 9.2e18 < 2^63: llround cannot overflow below it.
  if (!(std::fabs(ms) < 9.2e18)) {
    return SerializationError(absl::StrCat("Timestamp out of range: ", ms));
  }
  return absl::FromUnixMillis(std::llround(ms));
}

// Epoch seconds (a JSON or untagged CBOR number) to a Time.
absl::StatusOr<absl::Time> FromSecondsValue(const Value& value) {
  if (value.kind() == Value::Kind::kInt) return absl::FromUnixSeconds(value.int_value());
  return FromDoubleMillis(value.double_value() * 1000.0);
}

}  // namespace

absl::StatusOr<std::string> BlobOf(const Value& value, Format format, std::string_view member) {
  if (value.kind() == Value::Kind::kBytes) return value.str();
  if (value.kind() != Value::Kind::kString) return WrongType(value, "a Blob", member);
  if (format == Format::kCbor) return value.str();
  std::string out;
  absl::Status status = Base64DecodeStrict(value.str(), &out);
  if (!status.ok()) {
    return SerializationError(
        absl::StrCat("'", value.str(), "' can not be converted to a Blob: ", status.message()));
  }
  return out;
}

absl::StatusOr<absl::Time> TimeOf(const Value& value, Format format, std::string_view member) {
  if (value.kind() != Value::Kind::kInt && value.kind() != Value::Kind::kDouble) {
    return WrongType(value, "milliseconds since epoch", member);
  }
  if (format == Format::kCbor && value.tagged_time()) {
    if (value.kind() == Value::Kind::kInt) return absl::FromUnixMillis(value.int_value());
    return FromDoubleMillis(value.double_value());
  }
  return FromSecondsValue(value);
}

absl::StatusOr<int64_t> IntOf(const Value& value, std::string_view member) {
  if (value.kind() == Value::Kind::kInt) return value.int_value();
  if (value.kind() != Value::Kind::kDouble) return WrongType(value, "an Integer", member);
  const double d = std::trunc(value.double_value());
  // [-2^63, 2^63): both bounds are exact doubles.
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
    return SerializationError(
        absl::StrCat("Numeric value (", value.double_value(), ") out of range of long"));
  }
  return static_cast<int64_t>(d);
}

absl::StatusOr<std::string_view> StringOf(const Value& value, std::string_view member) {
  if (value.kind() != Value::Kind::kString) return WrongType(value, "an String", member);
  return std::string_view(value.str());
}

// ---------------------------------------------------------------------------
// Writer

namespace {

// CBOR head: major type and argument, in the shortest form.
void AppendCborHead(std::string* out, uint8_t major, uint64_t arg) {
  const uint8_t mt = static_cast<uint8_t>(major << 5);
  char buf[9];
  size_t n;
  if (arg < 24) {
    buf[0] = static_cast<char>(mt | arg);
    n = 1;
  } else if (arg <= 0xff) {
    buf[0] = static_cast<char>(mt | 24);
    buf[1] = static_cast<char>(arg);
    n = 2;
  } else if (arg <= 0xffff) {
    buf[0] = static_cast<char>(mt | 25);
    buf[1] = static_cast<char>(arg >> 8);
    buf[2] = static_cast<char>(arg);
    n = 3;
  } else if (arg <= 0xffffffffu) {
    buf[0] = static_cast<char>(mt | 26);
    for (int i = 0; i < 4; ++i) buf[1 + i] = static_cast<char>(arg >> (24 - 8 * i));
    n = 5;
  } else {
    buf[0] = static_cast<char>(mt | 27);
    for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>(arg >> (56 - 8 * i));
    n = 9;
  }
  out->append(buf, n);
}

void AppendCborInt(std::string* out, int64_t i) {
  if (i >= 0) {
    AppendCborHead(out, 0, static_cast<uint64_t>(i));
  } else {
    AppendCborHead(out, 1, static_cast<uint64_t>(-(i + 1)));
  }
}

// Which bytes need escaping in a JSON string: '"', '\\' and controls.
constexpr bool NeedsEscape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending unescaped run
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!NeedsEscape(c)) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out->append(esc, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendDecimal(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

}  // namespace

Writer::Writer(Format format) : format_(format) {}

void Writer::BeforeValue() {
  if (format_ != Format::kJson) return;
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_element_.empty()) {
    if (has_element_.back()) out_.push_back(',');
    has_element_.back() = true;
  }
}

void Writer::BeginObject() {
  BeforeValue();
  if (format_ == Format::kJson) {
    out_.push_back('{');
    has_element_.push_back(false);
  } else {
    out_.push_back(static_cast<char>(0xbf));
  }
}

void Writer::EndObject() {
  if (format_ == Format::kJson) {
    out_.push_back('}');
    if (!has_element_.empty()) has_element_.pop_back();
  } else {
    out_.push_back(static_cast<char>(0xff));
  }
}

void Writer::BeginArray() {
  BeforeValue();
  if (format_ == Format::kJson) {
    out_.push_back('[');
    has_element_.push_back(false);
  } else {
    out_.push_back(static_cast<char>(0x9f));
  }
}

void Writer::EndArray() {
  if (format_ == Format::kJson) {
    out_.push_back(']');
    if (!has_element_.empty()) has_element_.pop_back();
  } else {
    out_.push_back(static_cast<char>(0xff));
  }
}

void Writer::Key(std::string_view key) {
  if (format_ == Format::kJson) {
    BeforeValue();
    AppendJsonString(&out_, key);
    out_.push_back(':');
    after_key_ = true;
  } else {
    AppendCborHead(&out_, 3, key.size());
    out_.append(key);
  }
}

void Writer::String(std::string_view s) {
  BeforeValue();
  if (format_ == Format::kJson) {
    AppendJsonString(&out_, s);
  } else {
    AppendCborHead(&out_, 3, s.size());
    out_.append(s);
  }
}

void Writer::Blob(std::string_view bytes) {
  BeforeValue();
  if (format_ == Format::kJson) {
    out_.push_back('"');
    Base64Encode(bytes, &out_);
    out_.push_back('"');
  } else {
    AppendCborHead(&out_, 2, bytes.size());
    out_.append(bytes);
  }
}

void Writer::Int(int64_t i) {
  BeforeValue();
  if (format_ == Format::kJson) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf), i);
    out_.append(buf, r.ptr);
  } else {
    AppendCborInt(&out_, i);
  }
}

void Writer::Bool(bool b) {
  BeforeValue();
  if (format_ == Format::kJson) {
    out_.append(b ? "true" : "false");
  } else {
    out_.push_back(static_cast<char>(b ? 0xf5 : 0xf4));
  }
}

void Writer::Null() {
  BeforeValue();
  if (format_ == Format::kJson) {
    out_.append("null");
  } else {
    out_.push_back(static_cast<char>(0xf6));
  }
}

void Writer::Time(absl::Time t) {
  BeforeValue();
  const int64_t ms = absl::ToUnixMillis(t);  // rounds toward the past
  if (format_ == Format::kCbor) {
    out_.push_back(static_cast<char>(0xc1));
    AppendCborInt(&out_, ms);
    return;
  }
  // Plain decimal seconds, at most 3 fraction digits, no trailing zeros.
  uint64_t abs_ms = ms < 0 ? 0 - static_cast<uint64_t>(ms) : static_cast<uint64_t>(ms);
  if (ms < 0) out_.push_back('-');
  AppendDecimal(&out_, abs_ms / 1000);
  unsigned frac = static_cast<unsigned>(abs_ms % 1000);
  if (frac != 0) {
    char digits[4] = {'.', static_cast<char>('0' + frac / 100),
                      static_cast<char>('0' + frac / 10 % 10), static_cast<char>('0' + frac % 10)};
    size_t n = 4;
    while (digits[n - 1] == '0') --n;
    out_.append(digits, n);
  }
}

void Writer::Double(double d) {
  BeforeValue();
  if (format_ == Format::kCbor) {
    uint64_t bits;
    static_assert(sizeof(bits) == sizeof(d));
    std::memcpy(&bits, &d, sizeof(bits));
    out_.push_back(static_cast<char>(0xfb));
    char buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(bits >> (56 - 8 * i));
    out_.append(buf, 8);
    return;
  }
  if (!std::isfinite(d)) {
    out_.append("null");
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);
  std::string_view text(buf, static_cast<size_t>(r.ptr - buf));
  out_.append(text);
  if (text.find_first_of(".e") == std::string_view::npos) out_.append(".0");
}

void Writer::Write(const Value& value) {
  if (value.tagged_time() && format_ == Format::kCbor &&
      (value.kind() == Value::Kind::kInt || value.kind() == Value::Kind::kDouble)) {
    BeforeValue();
    out_.push_back(static_cast<char>(0xc1));
    if (value.kind() == Value::Kind::kInt) {
      AppendCborInt(&out_, value.int_value());
    } else {
      // The tag and its content form one value: no separator between them.
      Writer inner(Format::kCbor);
      inner.Double(value.double_value());
      out_.append(inner.data());
    }
    return;
  }
  switch (value.kind()) {
    case Value::Kind::kNull:
      Null();
      break;
    case Value::Kind::kBool:
      Bool(value.bool_value());
      break;
    case Value::Kind::kInt:
      Int(value.int_value());
      break;
    case Value::Kind::kDouble:
      Double(value.double_value());
      break;
    case Value::Kind::kString:
      String(value.str());
      break;
    case Value::Kind::kBytes:
      Blob(value.str());
      break;
    case Value::Kind::kArray:
      BeginArray();
      for (const Value& item : value.items()) Write(item);
      EndArray();
      break;
    case Value::Kind::kObject:
      BeginObject();
      for (const Value::Member& m : value.members()) {
        Key(m.first);
        Write(m.second);
      }
      EndObject();
      break;
  }
}

std::string Writer::Take() {
  std::string out = std::move(out_);
  out_.clear();
  has_element_.clear();
  after_key_ = false;
  return out;
}

}  // namespace kinlet::wire
