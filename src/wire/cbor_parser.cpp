// ParseCbor (see kinlet/wire/document.hpp): a bounds-checked reader of AWS's
// CBOR dialect (RFC 8949). Every read checks the bytes left first; a length is
// compared with the bytes left before anything is allocated for it, so a huge
// declared length costs nothing. Recursion is bounded by kMaxDepth.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kinlet/wire/document.hpp"
#include "kinlet/wire/errors.hpp"

namespace kinlet::wire {
namespace {

constexpr int kMaxDepth = 64;
constexpr uint8_t kBreak = 0xff;

absl::Status CborError(std::string_view what) {
  return SerializationError(
      absl::StrCat("Malformed CBOR request body: ", kinlet::detail::ToAbsl(what)));
}

// RFC 8949 Appendix D: IEEE 754 half precision to double.
double HalfToDouble(uint16_t half) {
  const int exp = (half >> 10) & 0x1f;
  const int mant = half & 0x3ff;
  double val;
  if (exp == 0) {
    val = std::ldexp(mant, -24);
  } else if (exp != 31) {
    val = std::ldexp(mant + 1024, exp - 25);
  } else {
    val = mant == 0 ? INFINITY : NAN;
  }
  return (half & 0x8000) ? -val : val;
}

class Reader {
 public:
  explicit Reader(std::string_view data)
      : p_(reinterpret_cast<const uint8_t*>(data.data())), end_(p_ + data.size()) {}

  bool at_end() const { return p_ == end_; }
  size_t left() const { return static_cast<size_t>(end_ - p_); }

  absl::Status Item(int depth, Value* out);

 private:
  struct Head {
    uint8_t major;
    uint8_t info;     // the low 5 bits of the initial byte
    uint64_t arg;     // the argument (not for info 31)
    bool indefinite;  // info 31
  };

  absl::Status ReadHead(Head* head);
  absl::Status ReadString(const Head& head, std::string* out);
  // Peeks for a break byte (0xff) and consumes it if there.
  bool TakeBreak() {
    if (p_ < end_ && *p_ == kBreak) {
      ++p_;
      return true;
    }
    return false;
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

absl::Status Reader::ReadHead(Head* head) {
  if (p_ == end_) return CborError("unexpected end of input");
  const uint8_t initial = *p_++;
  head->major = initial >> 5;
  head->info = initial & 0x1f;
  head->indefinite = false;
  head->arg = 0;
  if (head->info < 24) {
    head->arg = head->info;
    return absl::OkStatus();
  }
  if (head->info == 31) {
    head->indefinite = true;
    return absl::OkStatus();
  }
  if (head->info > 27) return CborError("reserved additional information");
  const size_t n = size_t{1} << (head->info - 24);  // 1, 2, 4 or 8 bytes
  if (left() < n) return CborError("unexpected end of input");
  uint64_t arg = 0;
  for (size_t i = 0; i < n; ++i) arg = (arg << 8) | p_[i];
  p_ += n;
  head->arg = arg;
  return absl::OkStatus();
}

// A byte or text string (major 2 or 3), definite or indefinite (a sequence of
// definite chunks of the same major type, then a break).
absl::Status Reader::ReadString(const Head& head, std::string* out) {
  if (!head.indefinite) {
    if (head.arg > left()) return CborError("string longer than the input");
    out->assign(reinterpret_cast<const char*>(p_), static_cast<size_t>(head.arg));
    p_ += head.arg;
    return absl::OkStatus();
  }
  out->clear();
  while (!TakeBreak()) {
    Head chunk;
    absl::Status status = ReadHead(&chunk);
    if (!status.ok()) return status;
    if (chunk.major != head.major || chunk.indefinite) {
      return CborError("bad chunk in an indefinite-length string");
    }
    if (chunk.arg > left()) return CborError("string longer than the input");
    out->append(reinterpret_cast<const char*>(p_), static_cast<size_t>(chunk.arg));
    p_ += chunk.arg;
  }
  return absl::OkStatus();
}

absl::Status Reader::Item(int depth, Value* out) {
  Head head;
  absl::Status status = ReadHead(&head);
  if (!status.ok()) return status;
  switch (head.major) {
    case 0:  // unsigned integer
      if (head.indefinite) return CborError("indefinite-length integer");
      *out = head.arg <= static_cast<uint64_t>(INT64_MAX)
                 ? Value::Int(static_cast<int64_t>(head.arg))
                 : Value::Double(static_cast<double>(head.arg));
      return absl::OkStatus();
    case 1:  // negative integer: -1 - arg
      if (head.indefinite) return CborError("indefinite-length integer");
      *out = head.arg <= static_cast<uint64_t>(INT64_MAX)
                 ? Value::Int(-1 - static_cast<int64_t>(head.arg))
                 : Value::Double(-1.0 - static_cast<double>(head.arg));
      return absl::OkStatus();
    case 2:
    case 3: {
      std::string s;
      status = ReadString(head, &s);
      if (!status.ok()) return status;
      *out = head.major == 2 ? Value::Bytes(std::move(s)) : Value::String(std::move(s));
      return absl::OkStatus();
    }
    case 4: {  // array
      if (depth > kMaxDepth) return CborError("nesting deeper than 64");
      std::vector<Value> items;
      if (head.indefinite) {
        while (!TakeBreak()) {
          items.emplace_back();
          status = Item(depth + 1, &items.back());
          if (!status.ok()) return status;
        }
      } else {
        // Every item takes at least one byte.
        if (head.arg > left()) return CborError("array longer than the input");
        // Grow with what is actually read, not with the declared count.
        items.reserve(static_cast<size_t>(std::min<uint64_t>(head.arg, 1024)));
        for (uint64_t i = 0; i < head.arg; ++i) {
          items.emplace_back();
          status = Item(depth + 1, &items.back());
          if (!status.ok()) return status;
        }
      }
      *out = Value::Array(std::move(items));
      return absl::OkStatus();
    }
    case 5: {  // map
      if (depth > kMaxDepth) return CborError("nesting deeper than 64");
      std::vector<Value::Member> members;
      auto member = [&]() -> absl::Status {
        Head key;
        absl::Status s = ReadHead(&key);
        if (!s.ok()) return s;
        if (key.major != 3) return CborError("map key is not a text string");
        members.emplace_back();
        s = ReadString(key, &members.back().first);
        if (!s.ok()) return s;
        return Item(depth + 1, &members.back().second);
      };
      if (head.indefinite) {
        while (!TakeBreak()) {
          status = member();
          if (!status.ok()) return status;
        }
      } else {
        // Every pair takes at least two bytes.
        if (head.arg > left() / 2) return CborError("map longer than the input");
        members.reserve(static_cast<size_t>(std::min<uint64_t>(head.arg, 1024)));
        for (uint64_t i = 0; i < head.arg; ++i) {
          status = member();
          if (!status.ok()) return status;
        }
      }
      *out = Value::Object(std::move(members));
      return absl::OkStatus();
    }
    case 6: {  // tag
      if (head.indefinite) return CborError("indefinite-length tag");
      if (depth > kMaxDepth) return CborError("nesting deeper than 64");
      status = Item(depth + 1, out);
      if (!status.ok()) return status;
      if (head.arg == 1) {  // epoch time: AWS sends milliseconds
        if (out->kind() != Value::Kind::kInt && out->kind() != Value::Kind::kDouble) {
          return CborError("tag 1 on a value that is not a number");
        }
        out->set_tagged_time(true);
      }
      return absl::OkStatus();
    }
    default:  // 7: simple values and floats
      switch (head.info) {
        case 20:
          *out = Value::Bool(false);
          return absl::OkStatus();
        case 21:
          *out = Value::Bool(true);
          return absl::OkStatus();
        case 22:  // null
        case 23:  // undefined
          *out = Value::Null();
          return absl::OkStatus();
        case 25:
          *out = Value::Double(HalfToDouble(static_cast<uint16_t>(head.arg)));
          return absl::OkStatus();
        case 26: {
          const auto bits = static_cast<uint32_t>(head.arg);
          float f;
          std::memcpy(&f, &bits, sizeof(f));
          *out = Value::Double(f);
          return absl::OkStatus();
        }
        case 27: {
          const uint64_t bits = head.arg;
          double d;
          std::memcpy(&d, &bits, sizeof(d));
          *out = Value::Double(d);
          return absl::OkStatus();
        }
        case 31:
          return CborError("unexpected break");
        default:
          return CborError("unsupported simple value");
      }
  }
}

}  // namespace

absl::StatusOr<Value> ParseCbor(std::string_view body) {
  if (body.empty()) return Value::Object({});
  Reader reader(body);
  Value value;
  absl::Status status = reader.Item(1, &value);
  if (!status.ok()) return status;
  if (!reader.at_end()) return CborError("trailing bytes after the document");
  if (value.kind() != Value::Kind::kObject) return CborError("the document is not a map");
  return value;
}

}  // namespace kinlet::wire
