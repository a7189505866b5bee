// ParseJson (see kinlet/wire/document.hpp): simdjson's DOM parser validates the
// whole document (grammar, UTF-8, trailing content) in one pass, then the tape
// is copied into a Value tree.
//
// simdjson reads up to SIMDJSON_PADDING bytes past the end of its input, so the
// body is copied into a padded per-thread buffer first (a memcpy: about 3 us for
// a 66 KB PutRecords). The parser is per thread too, so its buffers are reused;
// bodies above kReuseLimit get a parser of their own so that a thread does not
// keep a large allocation.
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "kinlet/wire/document.hpp"
#include "kinlet/wire/errors.hpp"

namespace kinlet::wire {
namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kReuseLimit = 1 << 20;

absl::Status JsonError(std::string_view what) {
  return SerializationError(
      absl::StrCat("Malformed JSON request body: ", kinlet::detail::ToAbsl(what)));
}

// Converts `element` at nesting `depth` (the top object is depth 1).
absl::Status Convert(simdjson::dom::element element, int depth, Value* out) {
  using simdjson::dom::element_type;
  switch (element.type()) {
    case element_type::OBJECT: {
      if (depth > kMaxDepth) return JsonError("nesting deeper than 64");
      simdjson::dom::object object = element.get_object().value_unsafe();
      std::vector<Value::Member> members;
      members.reserve(object.size());
      for (simdjson::dom::key_value_pair field : object) {
        members.emplace_back(std::string(field.key), Value());
        absl::Status status = Convert(field.value, depth + 1, &members.back().second);
        if (!status.ok()) return status;
      }
      *out = Value::Object(std::move(members));
      return absl::OkStatus();
    }
    case element_type::ARRAY: {
      if (depth > kMaxDepth) return JsonError("nesting deeper than 64");
      simdjson::dom::array array = element.get_array().value_unsafe();
      std::vector<Value> items;
      items.reserve(array.size());
      for (simdjson::dom::element item : array) {
        items.emplace_back();
        absl::Status status = Convert(item, depth + 1, &items.back());
        if (!status.ok()) return status;
      }
      *out = Value::Array(std::move(items));
      return absl::OkStatus();
    }
    case element_type::INT64:
      *out = Value::Int(element.get_int64().value_unsafe());
      return absl::OkStatus();
    case element_type::UINT64:  // above int64's range
      *out = Value::Double(static_cast<double>(element.get_uint64().value_unsafe()));
      return absl::OkStatus();
    case element_type::DOUBLE:
      *out = Value::Double(element.get_double().value_unsafe());
      return absl::OkStatus();
    case element_type::STRING:
      *out = Value::String(std::string(element.get_string().value_unsafe()));
      return absl::OkStatus();
    case element_type::BOOL:
      *out = Value::Bool(element.get_bool().value_unsafe());
      return absl::OkStatus();
    case element_type::NULL_VALUE:
      *out = Value::Null();
      return absl::OkStatus();
  }
  return JsonError("unknown element");
}

struct ThreadState {
  simdjson::dom::parser parser;
  std::unique_ptr<char[]> padded;
  size_t padded_capacity = 0;
};

absl::StatusOr<Value> ParseWith(simdjson::dom::parser& parser, const char* data, size_t size) {
  simdjson::dom::element root;
  simdjson::error_code error = parser.parse(data, size, /*realloc_if_needed=*/false).get(root);
  if (error != simdjson::SUCCESS) return JsonError(simdjson::error_message(error));
  if (root.type() != simdjson::dom::element_type::OBJECT) {
    return JsonError("the document is not an object");
  }
  Value value;
  absl::Status status = Convert(root, 1, &value);
  if (!status.ok()) return status;
  return value;
}

}  // namespace

absl::StatusOr<Value> ParseJson(std::string_view body) {
  if (body.empty()) return Value::Object({});
  if (body.size() > kReuseLimit) {
    simdjson::padded_string padded(body.data(), body.size());
    simdjson::dom::parser parser;
    return ParseWith(parser, padded.data(), padded.size());
  }
  thread_local ThreadState state;
  const size_t need = body.size() + simdjson::SIMDJSON_PADDING;
  if (state.padded_capacity < need) {
    state.padded_capacity = std::max(need, size_t{4096});
    state.padded.reset(new char[state.padded_capacity]);
  }
  std::memcpy(state.padded.get(), body.data(), body.size());
  std::memset(state.padded.get() + body.size(), 0, simdjson::SIMDJSON_PADDING);
  return ParseWith(state.parser, state.padded.get(), body.size());
}

}  // namespace kinlet::wire
