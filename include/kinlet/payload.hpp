// kinlet/payload.hpp: how a record's payload type is stored, sized and passed.
//
// Stream<Payload> accepts any movable, default-constructible Payload. The
// customisation point PayloadTraits<Payload> decides three things:
//  - kStorage: kBytes (byte strings: copied into the shard's byte ring),
//    kTrivial (trivially copyable structs: their bytes are copied into the byte
//    ring) or kObject (anything else: the object lives in the ring slot);
//  - View: what PutRecord takes (std::string_view for std::string, a span for
//    byte vectors, an ObjectRef<T> for other types, bound to any const T&);
//  - Size(view): the bytes that the record-size limit, ring capacity and
//    metrics count (the byte length for bytes, sizeof(T) otherwise).
// To count another size for your type, specialise PayloadTraits and inherit
// the defaults:
//
//   template <> struct kinlet::PayloadTraits<Event> : kinlet::ObjectPayloadTraits<Event> {
//     static size_t Size(View e) { return sizeof(Event) + e->body.size(); }
//   };
//
// Byte and trivially copyable payloads never allocate on put; on get they are
// copied into the caller's reusable result (no allocation once its buffers have
// grown). Thread safety: stateless traits; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace kinlet {

enum class PayloadStorage { kBytes, kTrivial, kObject };

// A non-owning reference to a payload object passed to PutRecord/PutRecords.
// Binds to any const T&, temporaries included (they outlive the call).
template <typename T>
class ObjectRef {
 public:
  ObjectRef(const T& object) : object_(&object) {}  // NOLINT(google-explicit-constructor)
  const T& get() const { return *object_; }
  const T& operator*() const { return *object_; }
  const T* operator->() const { return object_; }

 private:
  const T* object_;
};

// Defaults for non-byte payloads: trivially copyable types are stored as bytes,
// others as objects. Size is sizeof(T).
template <typename T>
struct ObjectPayloadTraits {
  static constexpr PayloadStorage kStorage =
      std::is_trivially_copyable_v<T> ? PayloadStorage::kTrivial : PayloadStorage::kObject;
  using View = ObjectRef<T>;
  static size_t Size(View) { return sizeof(T); }
};

template <typename T>
struct PayloadTraits : ObjectPayloadTraits<T> {};

// Byte strings: std::string, and vectors of char, unsigned char or std::byte.
template <typename T, typename Char>
struct BytePayloadTraits {
  static constexpr PayloadStorage kStorage = PayloadStorage::kBytes;
  using View =
      std::conditional_t<std::is_same_v<Char, char>, std::string_view, std::span<const Char>>;
  static size_t Size(View v) { return v.size(); }
  static const char* Data(View v) { return reinterpret_cast<const char*>(v.data()); }
  // A view of `n` stored bytes (zero-copy reads lend these out).
  static View MakeView(const char* p, size_t n) {
    return View(reinterpret_cast<const Char*>(p), n);
  }
  // Makes `out` hold `n` bytes and returns where to write them. Reuses capacity.
  static char* Resize(T& out, size_t n) {
    out.resize(n);
    return reinterpret_cast<char*>(out.data());
  }
};

template <>
struct PayloadTraits<std::string> : BytePayloadTraits<std::string, char> {};
template <>
struct PayloadTraits<std::vector<char>> : BytePayloadTraits<std::vector<char>, char> {};
template <>
struct PayloadTraits<std::vector<unsigned char>>
    : BytePayloadTraits<std::vector<unsigned char>, unsigned char> {};
template <>
struct PayloadTraits<std::vector<std::byte>>
    : BytePayloadTraits<std::vector<std::byte>, std::byte> {};

template <typename P>
concept RecordPayload = std::movable<P> && std::default_initializable<P> &&
    (PayloadTraits<P>::kStorage != PayloadStorage::kObject || std::is_copy_assignable_v<P>);

namespace detail {

// A payload's bytes, for byte and trivial payloads (durable streams store
// them); empty for object payloads, which cannot be stored.
template <typename Payload>
std::string_view PayloadBytes(const typename PayloadTraits<Payload>::View& v) {
  using T = PayloadTraits<Payload>;
  if constexpr (T::kStorage == PayloadStorage::kBytes) {
    return std::string_view(T::Data(v), T::Size(v));
  } else if constexpr (T::kStorage == PayloadStorage::kTrivial) {
    return std::string_view(reinterpret_cast<const char*>(&v.get()), sizeof(Payload));
  } else {
    return {};
  }
}

// Sets `*out` from stored bytes (the inverse of PayloadBytes). A trivial
// payload takes exactly sizeof(Payload) bytes; returns false otherwise.
template <typename Payload>
bool FillPayload(std::string_view bytes, Payload* out) {
  using T = PayloadTraits<Payload>;
  if constexpr (T::kStorage == PayloadStorage::kBytes) {
    char* p = T::Resize(*out, bytes.size());
    if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
    return true;
  } else if constexpr (T::kStorage == PayloadStorage::kTrivial) {
    if (bytes.size() != sizeof(Payload)) return false;
    std::memcpy(static_cast<void*>(out), bytes.data(), sizeof(Payload));
    return true;
  } else {
    return false;
  }
}

}  // namespace detail

}  // namespace kinlet
