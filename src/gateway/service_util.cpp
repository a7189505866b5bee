// src/gateway/service_util.cpp: reading request members, AWS's validation
// texts, request ids.
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "service_impl.hpp"

namespace kinlet::gateway {
namespace {
const Value* Member(const Value& in, std::string_view key) {
  const Value* v = in.Find(key);
  if (v == nullptr || v->kind() == Value::Kind::kNull) return nullptr;
  return v;
}
}  // namespace

absl::StatusOr<std::optional<std::string_view>> OptString(const Value& in, std::string_view key) {
  const Value* v = Member(in, key);
  if (v == nullptr) return std::optional<std::string_view>();
  absl::StatusOr<std::string_view> s = wire::StringOf(*v, key);
  if (!s.ok()) return s.status();
  return std::optional<std::string_view>(*s);
}

absl::StatusOr<std::optional<int64_t>> OptInt(const Value& in, std::string_view key) {
  const Value* v = Member(in, key);
  if (v == nullptr) return std::optional<int64_t>();
  absl::StatusOr<int64_t> i = wire::IntOf(*v, key);
  if (!i.ok()) return i.status();
  return std::optional<int64_t>(*i);
}

absl::StatusOr<std::optional<bool>> OptBool(const Value& in, std::string_view key) {
  const Value* v = Member(in, key);
  if (v == nullptr) return std::optional<bool>();
  if (v->kind() != Value::Kind::kBool) {
    return wire::SerializationError(
        absl::StrCat("class ", v->kind() == Value::Kind::kString ? "java.lang.String" : "a number",
                     " can not be converted to an Boolean"));
  }
  return std::optional<bool>(v->bool_value());
}

absl::StatusOr<std::optional<absl::Time>> OptTime(const Value& in, wire::Format format,
                                                  std::string_view key) {
  const Value* v = Member(in, key);
  if (v == nullptr) return std::optional<absl::Time>();
  absl::StatusOr<absl::Time> t = wire::TimeOf(*v, format, key);
  if (!t.ok()) return t.status();
  return std::optional<absl::Time>(*t);
}

absl::Status NullMember(std::string_view member) {
  return ValidationError(absl::StrCat("1 validation error detected: Value null at '",
                                      detail::ToAbsl(member),
                                      "' failed to satisfy constraint: Member must not be null"));
}

absl::Status RangeError(std::string_view member, int64_t value, int64_t lo, int64_t hi) {
  return ValidationError(absl::StrCat("1 validation error detected: Value '", value, "' at '",
                                      detail::ToAbsl(member),
                                      "' failed to satisfy constraint: Member must have value ",
                                      value < lo ? absl::StrCat("greater than or equal to ", lo)
                                                 : absl::StrCat("less than or equal to ", hi)));
}

absl::Status PatternError(std::string_view member, std::string_view value,
                          std::string_view constraint) {
  return ValidationError(absl::StrCat(
      "1 validation error detected: Value '", detail::ToAbsl(value), "' at '",
      detail::ToAbsl(member), "' failed to satisfy constraint: ", detail::ToAbsl(constraint)));
}

std::string MakeUuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~uint64_t{0xF000}) | 0x4000;                      // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return std::string(buf, 36);
}

}  // namespace kinlet::gateway
