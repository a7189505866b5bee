// kinlet/ring_log.hpp: a shard's log, a fixed-capacity ring addressed by
// position (the low 64 bits of a sequence number).
//
// RingLog<Payload>: bounded in records (a power of two of slots) and in bytes
// (a power-of-two byte ring holding partition keys and byte/trivial payloads).
// A record never straddles the byte ring's end: the writer skips to the start
// instead (Aeron's padding), so a record is one contiguous run of 8-byte words.
//
//   slot (24 B + object)            byte ring (words)
//   +--------------------------+    +-----------------------------------+
//   | arrival_ms   (int64)     |    | ... | key | data | pad | ...        |
//   | word         (uint64) ---+--->|       ^ word                      |
//   | key_len      (uint32)    |    +-----------------------------------+
//   | data_len     (uint32)    |
//   | readers, object (kObject)|
//   +--------------------------+
//
// Thread safety: one writer at a time (REQUIRES: the caller serialises Append
// and TrimExpired; the shard does it with its writer lock). Any number of
// readers, lock-free, concurrent with the writer; a reader never blocks the
// writer except that the writer waits for a reader that is copying the very
// object it is about to overwrite (kObject payloads: one object copy, no user
// code). The writer never waits for a pinned reader (zero-copy views, whose
// visitor is user code and may be slow, stuck or gone): if the only way to make
// room is memory a pin holds, the append is refused (kFull), whatever the
// policy, and nothing is dropped; it succeeds again once the pin is released.
// Under kOverwrite this is the one case in which a full ring refuses a record:
// the visitor's views point into that memory, no later copy can redirect them,
// ending the reader's subscription would not free the memory while its
// visitor runs, and a spill area would need its own reclamation and a branch
// per put. Only a reader about a whole ring behind the writer can cause it.
//
// Memory ordering:
//  - end_: written by the writer only, after the record's slot and bytes; the
//    release store publishes them and pairs with the acquire load in End() and
//    Read(): a reader that sees end_ > p sees record p whole.
//  - begin_: written by the writer only, before it reuses any slot or byte of
//    the records it trims; never beyond the published end_ (a batch that
//    trims records it has not published yet first publishes end_, and then
//    stores begin_ with release, so a reader that loads begin_ and then end_
//    always sees begin <= end); the store is followed by a release fence, and
//    readers load it after an acquire fence that follows their (relaxed,
//    atomic) copies. If a copy observed any byte the writer wrote after moving
//    begin_, the fences synchronise and the reader sees the new begin_, so it
//    discards the copy and reports the position trimmed (a seqlock in which
//    begin_ is the version). All slot fields and ring words are accessed
//    through relaxed atomics, so there is no data race, only stale values that
//    the check rejects.
//  - kObject slots add a reader count: readers increment it (seq_cst) then
//    re-check begin_ (seq_cst); the writer stores begin_ (seq_cst) then waits
//    for the count of the slot it reuses to be zero (seq_cst). Either the
//    reader sees the record trimmed, or the writer sees the reader (Dekker).
//  - Pins (zero-copy reads): a reader stores its pin position (seq_cst) then
//    loads horizon_ and begin_ (seq_cst); the writer stores horizon_ (seq_cst)
//    then loads the claimed pins (seq_cst). Either the reader sees the new
//    horizon (and copies instead), or the writer sees the pin: it then reuses
//    memory only below the lowest pin it saw (horizon_local_ = min(horizon_,
//    pins)) and refuses appends that need more; it looks again at the next
//    append. The reader's release store that unpins orders its last look at
//    the bytes before the writer's reuse (the writer's seq_cst load that sees
//    kUnpinned acquires it). The writer moves horizon_ 1/16 of the ring at a
//    time: the handshake is not on the per-put path.
//    Pin slots: ClaimPin sets a bit of pin_mask_ (seq_cst CAS); ReleasePin
//    stores kUnpinned to the slot's position (release) and then clears the bit
//    (release), so the next claimer of the slot (its CAS acquires the clear)
//    finds no position: a released slot never holds the writer back.
//  - ThreadSanitizer does not model fences: in its builds (KINLET_ATOMIC_COPY)
//    the fences go and every slot/word store is a release, every load an
//    acquire (detail::kSeqStore/kSeqLoad), which orders the same pairs.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kinlet/config.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/wait.hpp"
#include "kinlet/payload.hpp"
#include "kinlet/record.hpp"

namespace kinlet {

// What a full ring (every slot or byte taken by unexpired records) does with a
// new record.
enum class FullPolicy {
  kReject,     // refuse the write (ShardFullException); nothing acknowledged is lost
  kOverwrite,  // drop the oldest records (a flight recorder); counted as overwritten
};

namespace detail {

// Seqlock orderings. With memcpy copies (KINLET_ATOMIC_COPY=0), data accesses
// are relaxed and bracketed by fences: the writer's release fence after moving
// begin_, the reader's acquire fence before re-reading it. ThreadSanitizer does
// not model fences, so with atomic copies (its builds) every data store is a
// release and every data load an acquire instead, which orders the same pairs
// without fences and lets TSan check the protocol.
inline constexpr std::memory_order kSeqStore =
    KINLET_ATOMIC_COPY ? std::memory_order_release : std::memory_order_relaxed;
inline constexpr std::memory_order kSeqLoad =
    KINLET_ATOMIC_COPY ? std::memory_order_acquire : std::memory_order_relaxed;
inline void SeqWriterFence() {
#if !KINLET_ATOMIC_COPY
  std::atomic_thread_fence(std::memory_order_release);
#endif
}
inline void SeqReaderFence() {
#if !KINLET_ATOMIC_COPY
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
}

// Copies n bytes between a caller buffer and the ring's words, starting `at`
// bytes into `words` (a record's key and payload are packed back to back, so
// the payload need not start on a word). See KINLET_ATOMIC_COPY in config.hpp.
// Copies the first and the last kChunk bytes of n (kChunk <= n <= 2 kChunk:
// the two chunks overlap or meet, so all n bytes are copied).
template <size_t kChunk>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void CopyEnds(char* dst, const char* src, size_t n) {
  std::memcpy(dst, src, kChunk);
  std::memcpy(dst + n - kChunk, src + n - kChunk, kChunk);
}

// Copies n bytes between buffers that do not overlap. Small copies (the
// common record) are inlined as a few overlapping vector moves instead of a
// call to memcpy, whose call and size dispatch cost more than the copy.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void CopyBytes(char* dst, const char* src, size_t n) {
  if (n > 128) {
    std::memcpy(dst, src, n);
  } else if (n > 64) {
    CopyEnds<32>(dst, src, n);
    std::memcpy(dst + 32, src + 32, 32);  // n > 64: the middle
    if (n > 96) std::memcpy(dst + 64, src + 64, 32);
  } else if (n > 32) {
    CopyEnds<32>(dst, src, n);
  } else if (n > 16) {
    CopyEnds<16>(dst, src, n);
  } else if (n >= 8) {
    CopyEnds<8>(dst, src, n);
  } else if (n >= 4) {
    CopyEnds<4>(dst, src, n);
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void StoreBytes(uint64_t* words, size_t at, const char* src,
                                                    size_t n) {
  if constexpr (!KINLET_ATOMIC_COPY) {
    CopyBytes(reinterpret_cast<char*>(words) + at, src, n);
    return;
  }
  size_t w = at / 8;
  size_t offset = at % 8;
  while (n > 0) {
    const size_t take = std::min<size_t>(8 - offset, n);
    uint64_t word = 0;
    if (take != 8) {
      // A partial word: keep the bytes already written there (the writer's own).
      word = std::atomic_ref<uint64_t>(words[w]).load(std::memory_order_relaxed);
    }
    std::memcpy(reinterpret_cast<char*>(&word) + offset, src, take);
    std::atomic_ref<uint64_t>(words[w]).store(word, kSeqStore);
    src += take;
    n -= take;
    ++w;
    offset = 0;
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void LoadBytes(uint64_t* words, size_t at, char* dst,
                                                   size_t n) {
  if constexpr (!KINLET_ATOMIC_COPY) {
    CopyBytes(dst, reinterpret_cast<const char*>(words) + at, n);
    return;
  }
  size_t w = at / 8;
  size_t offset = at % 8;
  while (n > 0) {
    const size_t take = std::min<size_t>(8 - offset, n);
    const uint64_t word = std::atomic_ref<uint64_t>(words[w]).load(kSeqLoad);
    std::memcpy(dst, reinterpret_cast<const char*>(&word) + offset, take);
    dst += take;
    n -= take;
    ++w;
    offset = 0;
  }
}

constexpr size_t WordsFor(size_t bytes) { return (bytes + 7) / 8; }

// Zero-filled memory whose pages are committed on first touch (an anonymous
// mapping; returned to the system at once when freed). Where no mapping can
// be had it falls back to operator new (which fails as any allocation does)
// and zeroes the memory: *mapped says which FreeZeroedPages must undo.
inline void* AllocateZeroedPages(size_t bytes, bool* mapped) {
#if defined(__linux__)
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p != MAP_FAILED) {
    *mapped = true;
    return p;
  }
#endif
  *mapped = false;
  void* memory = ::operator new(bytes);
  std::memset(memory, 0, bytes);
  return memory;
}
inline void FreeZeroedPages(void* p, size_t bytes, bool mapped) {
#if defined(__linux__)
  if (mapped) {
    munmap(p, bytes);
    return;
  }
#endif
  (void)bytes;
  (void)mapped;
  ::operator delete(p);
}

template <typename Payload, bool kObject>
struct Slot {
  std::atomic<int64_t> arrival_ms{0};
  std::atomic<uint64_t> word{0};
  std::atomic<uint32_t> key_len{0};
  std::atomic<uint32_t> data_len{0};
};

template <typename Payload>
struct Slot<Payload, true> {
  std::atomic<int64_t> arrival_ms{0};
  std::atomic<uint64_t> word{0};
  std::atomic<uint32_t> key_len{0};
  std::atomic<uint32_t> data_len{0};
  std::atomic<uint32_t> readers{0};
  Payload object{};
};

}  // namespace detail

template <typename Payload>
class RingLog {
 public:
  using Traits = PayloadTraits<Payload>;
  using View = typename Traits::View;
  static constexpr PayloadStorage kStorage = Traits::kStorage;
  static constexpr bool kObjectSlots = kStorage == PayloadStorage::kObject;

  enum class AppendStatus { kOk, kFull };

  struct ReadOutcome {
    size_t count = 0;      // records appended to the page
    size_t bytes = 0;      // their key + payload bytes
    bool trimmed = false;  // `from` was trimmed before or during the read
    // Durable streams only: why records on disk could not be read
    // (DataLossException, KMS errors); the page is then empty.
    absl::Status error;
  };

  // Capacities are rounded up to powers of two.
  // REQUIRES: capacity_records >= 1; capacity_bytes >= 64.
  RingLog(size_t capacity_records, size_t capacity_bytes)
      : record_mask_(std::bit_ceil(capacity_records) - 1),
        word_capacity_(std::bit_ceil(std::max<size_t>(capacity_bytes, 64)) / 8),
        slots_(AllocateSlots(record_mask_ + 1)),
        words_(new uint64_t[word_capacity_]) {}  // default-init: pages are touched lazily

  RingLog(const RingLog&) = delete;
  RingLog& operator=(const RingLog&) = delete;

  size_t capacity_records() const { return record_mask_ + 1; }
  size_t capacity_bytes() const { return word_capacity_ * 8; }

  // Ring bytes a record with these lengths occupies (payload bytes count only
  // for byte and trivial storage).
  static size_t Footprint(size_t key_len, size_t data_len) {
    return 8 * detail::WordsFor(key_len + (kObjectSlots ? 0 : data_len));
  }
  // True if a record of this footprint can ever fit.
  bool Fits(size_t key_len, size_t data_len) const {
    return Footprint(key_len, data_len) <= capacity_bytes();
  }

  // --- Writer side (REQUIRES: serialised by the caller) ---------------------

  // Appends a record at position End(). To make room it drops the oldest
  // records, but only those that arrived before `expire_before_ms` unless
  // `overwrite`; if that is not enough returns kFull and writes nothing.
  // REQUIRES: Fits(key.size(), data size); arrival_ms never decreases.
  // With `publish` false the record is written but readers do not see it
  // until the next Publish() (or published Append): a batch pays for one
  // release store and one wake-up check instead of one per record.
  ABSL_ATTRIBUTE_ALWAYS_INLINE AppendStatus Append(std::string_view key, View data,
                                                   int64_t arrival_ms, int64_t expire_before_ms,
                                                   bool overwrite, uint64_t* position,
                                                   bool publish = true) {
    const size_t data_len = DataLength(data);
    const size_t need = detail::WordsFor(key.size() + (kObjectSlots ? 0 : data_len));
    KINLET_ASSERT(need <= word_capacity_, "record larger than the ring");
    uint64_t begin = begin_local_;
    uint64_t begin_word = begin_word_local_;  // valid while begin < end_local_
    uint64_t word = write_word_;
    uint64_t expired = 0;  // records dropped below, by cause
    uint64_t overwritten = 0;
    for (;;) {
      word = write_word_;
      if ((word & (word_capacity_ - 1)) + need > word_capacity_) {
        word = (word | (word_capacity_ - 1)) + 1;  // skip to the start of the ring
      }
      const bool slots_full = end_local_ - begin == capacity_records();
      const uint64_t oldest_word = begin < end_local_ ? begin_word : word;
      if (!slots_full && word + need - oldest_word <= word_capacity_) break;
      const int64_t oldest_arrival = SlotAt(begin).arrival_ms.load(std::memory_order_relaxed);
      if (oldest_arrival >= expire_before_ms) {
        if (!overwrite) {
          Drop(begin, begin_word, expired, 0);  // the expired ones are gone anyway
          return AppendStatus::kFull;
        }
        ++overwritten;
      } else {
        ++expired;
      }
      ++begin;
      begin_word = begin < end_local_ ? SlotAt(begin).word.load(std::memory_order_relaxed) : 0;
    }
    // The memory about to be reused belongs to records below begin. If a pin
    // holds some of it, refuse (never wait for a reader) and drop nothing.
    if (KINLET_UNLIKELY(begin > horizon_local_) && !AdvanceHorizon(begin)) {
      return AppendStatus::kFull;
    }
    Drop(begin, begin_word, expired, overwritten);

    SlotType& slot = SlotAt(end_local_);
    if constexpr (kObjectSlots) {
      // The slot's previous record (if any) is below begin_: wait out any
      // reader still copying its object.
      while (slot.readers.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
      slot.object = data.get();
    }
    slot.arrival_ms.store(arrival_ms, detail::kSeqStore);
    slot.word.store(word, detail::kSeqStore);
    slot.key_len.store(static_cast<uint32_t>(key.size()), detail::kSeqStore);
    slot.data_len.store(static_cast<uint32_t>(data_len), detail::kSeqStore);
    uint64_t* base = words_.get() + (word & (word_capacity_ - 1));
    detail::StoreBytes(base, 0, key.data(), key.size());
    if constexpr (kStorage == PayloadStorage::kBytes) {
      detail::StoreBytes(base, key.size(), Traits::Data(data), data_len);
    } else if constexpr (kStorage == PayloadStorage::kTrivial) {
      detail::StoreBytes(base, key.size(), reinterpret_cast<const char*>(&data.get()), data_len);
    }
    write_word_ = word + need;
    if (begin_local_ == end_local_) begin_word_local_ = word;  // the new record is the oldest
    *position = end_local_;
    ++end_local_;
    if (publish) Publish();
    return AppendStatus::kOk;
  }

  // Where the writer stands: Rewind(mark) takes back the appends made after
  // Mark(), which must not have been published (Append with publish = false,
  // no Publish since). A durable shard appends to the ring unpublished, then
  // to its segment file, and takes the ring's copy back if the disk refuses.
  struct WriterMark {
    uint64_t end = 0;
    uint64_t write_word = 0;
  };
  WriterMark Mark() const { return WriterMark{end_local_, write_word_}; }
  void Rewind(const WriterMark& mark) {
    KINLET_ASSERT(mark.end >= end_published_, "rewinding published records");
    end_local_ = mark.end;
    write_word_ = mark.write_word;
    // Records dropped to make room stay dropped (a durable shard still has
    // them on disk); begin_local_ <= mark.end, as Append never drops past the
    // records it found.
  }
  // The position the next Append takes.
  uint64_t NextPosition() const { return end_local_; }
  // Starts an empty, never-used ring at `position` (a durable shard reopened
  // with `position` records on disk). REQUIRES: nothing appended yet, no
  // reader yet.
  void StartAt(uint64_t position) {
    KINLET_ASSERT(end_local_ == 0, "StartAt on a used ring");
    begin_local_ = end_local_ = end_published_ = horizon_local_ = position;
    end_.store(position, std::memory_order_release);
    begin_.store(position, std::memory_order_release);
    horizon_.store(position, std::memory_order_release);
  }

  // Makes every record appended so far visible to readers and wakes waiters.
  void Publish() {
    end_.store(end_local_, std::memory_order_release);
    end_published_ = end_local_;
    waiters_.Notify();
  }

  // --- Pinned reads (zero-copy) -----------------------------------------------
  //
  // A reader holding a pin slot pins a position; while pinned, the writer does
  // not reuse the memory of records at or after it, so their bytes (and
  // objects) can be lent out as views instead of copied. A position within
  // 1/16 of the ring of the oldest record cannot be pinned (the writer may
  // reuse it without looking), nor one already trimmed: read it by copying.
  // Hold pins
  // briefly. The writer never waits for a pin: an append that needs pinned
  // memory is refused (kFull) until the pin goes (see the header comment).

  static constexpr int kMaxPins = 32;

  // A free pin slot, or -1 if all kMaxPins are claimed. Thread-safe.
  int ClaimPin() const {
    uint32_t mask = pin_mask_.load(std::memory_order_relaxed);
    for (;;) {
      if (mask == ~uint32_t{0}) return -1;
      const int pin = std::countr_one(mask);
      if (pin_mask_.compare_exchange_weak(mask, mask | (uint32_t{1} << pin),
                                          std::memory_order_seq_cst)) {
        return pin;
      }
    }
  }
  // Gives the slot back, unpinning it first if it is pinned: the next claimer
  // of the slot inherits no position. REQUIRES: `pin` claimed by the caller.
  // Thread-safe.
  void ReleasePin(int pin) const {
    pins_[pin].position.store(kUnpinned, std::memory_order_release);
    pin_mask_.fetch_and(~(uint32_t{1} << pin), std::memory_order_release);
  }
  // Pins positions >= `from`; false (nothing pinned) if `from` is below the
  // reuse horizon or trimmed (below Begin()). REQUIRES: `pin` claimed by the
  // caller and not pinned.
  bool Pin(int pin, uint64_t from) const {
    pins_[pin].position.store(from, std::memory_order_seq_cst);
    if (horizon_.load(std::memory_order_seq_cst) > from ||
        begin_.load(std::memory_order_seq_cst) > from) {
      Unpin(pin);
      return false;
    }
    return true;
  }
  // Positions below it cannot be pinned (the writer may reuse their memory).
  uint64_t ReuseHorizon() const { return horizon_.load(std::memory_order_acquire); }
  void Unpin(int pin) const { pins_[pin].position.store(kUnpinned, std::memory_order_release); }

  // A stored record lent out in place: valid while its position is pinned.
  struct RecordRef {
    uint64_t position;
    int64_t arrival_ms;
    std::string_view key;
    View data;
  };

  // Calls fn(const RecordRef&) for the records from `from` on, with the limits
  // of Read() (the first record taken whatever its size only if `take_first`:
  // false continues an event that already has records). REQUIRES: `from`
  // pinned by the caller (so it is stored, and stays so); not for trivially
  // copyable payloads (their bytes are unaligned in the ring: copy them with
  // Read()).
  template <typename Fn>
  ReadOutcome ForEachPinned(uint64_t from, size_t max_records, size_t max_bytes, Fn&& fn,
                            bool take_first = true) const {
    static_assert(kStorage != PayloadStorage::kTrivial, "copy trivial payloads with Read()");
    ReadOutcome out;
    const uint64_t end = End();
    const uint64_t want = from < end ? std::min<uint64_t>(end - from, max_records) : 0;
    for (uint64_t i = 0; i < want; ++i) {
      const uint64_t pos = from + i;
      const SlotType& slot = SlotAt(pos);
      const size_t key_len = slot.key_len.load(detail::kSeqLoad);
      const size_t data_len = slot.data_len.load(detail::kSeqLoad);
      if ((i > 0 || !take_first) && out.bytes + key_len + data_len > max_bytes) break;
      const char* base = reinterpret_cast<const char*>(
          words_.get() + (slot.word.load(detail::kSeqLoad) & (word_capacity_ - 1)));
      View data = [&] {
        if constexpr (kObjectSlots) {
          return View(slot.object);
        } else {
          return Traits::MakeView(base + key_len, data_len);
        }
      }();
      fn(RecordRef{pos, slot.arrival_ms.load(detail::kSeqLoad), std::string_view(base, key_len),
                   data});
      out.bytes += key_len + data_len;
      ++out.count;
    }
    return out;
  }

  // Drops records that arrived before `expire_before_ms`; returns how many.
  size_t TrimExpired(int64_t expire_before_ms) {
    uint64_t begin = begin_local_;
    while (begin < end_local_ &&
           SlotAt(begin).arrival_ms.load(std::memory_order_relaxed) < expire_before_ms) {
      ++begin;
    }
    const size_t dropped = begin - begin_local_;
    if (dropped != 0) {
      Drop(begin, begin < end_local_ ? SlotAt(begin).word.load(std::memory_order_relaxed) : 0,
           dropped, 0);
    }
    return dropped;
  }

  // --- Reader side (thread-safe, lock-free) ----------------------------------

  // One past the last published position.
  uint64_t End() const { return end_.load(std::memory_order_acquire); }

  // Blocks until `ready()` (re-checked after every append and NotifyWaiters)
  // is true or `timeout` passes; returns ready(). Appends pay nothing while
  // nobody waits (see detail/wait.hpp).
  template <typename Ready>
  bool WaitUntil(Ready&& ready, std::chrono::nanoseconds timeout) const {
    return waiters_.Wait(std::forward<Ready>(ready), timeout);
  }
  // Wakes waiters for a reason other than an append (a shard closing).
  void NotifyWaiters() const { waiters_.Notify(); }
  // The channel appends notify: push subscriptions watch it (fan_out.hpp).
  detail::WaitChannel& wait_channel() const { return waiters_; }
  // The oldest position still stored (the physical trim horizon).
  uint64_t Begin() const { return begin_.load(std::memory_order_acquire); }

  // The first stored position whose record arrived at or after `t_ms`, or
  // End() if none. Arrival times never decrease, so this is a binary search.
  uint64_t LowerBoundArrival(int64_t t_ms) const {
    for (;;) {
      uint64_t lo = Begin();
      uint64_t hi = End();
      const uint64_t begin = lo;
      while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (SlotAt(mid).arrival_ms.load(detail::kSeqLoad) < t_ms) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      detail::SeqReaderFence();
      if (begin_.load(std::memory_order_relaxed) == begin) return lo;
      // The writer trimmed during the search: values may be stale; retry.
    }
  }

  // Arrival time of the record at `position`, or nullopt if it is not stored.
  std::optional<int64_t> ArrivalAt(uint64_t position) const {
    if (position >= End()) return std::nullopt;
    int64_t t = SlotAt(position).arrival_ms.load(detail::kSeqLoad);
    detail::SeqReaderFence();
    if (begin_.load(std::memory_order_relaxed) > position) return std::nullopt;
    return t;
  }

  // Replaces the records of `page` with the records from `from` on: at most
  // `max_records`, and stopping before the record that would take the total
  // key + payload bytes over `max_bytes` (the first record is always taken).
  // `tag`/`shard_index` build the sequence numbers. If `from` is (or becomes,
  // during the copy) trimmed, returns trimmed = true and an empty page.
  // The page's records are overwritten in place, keeping their buffers.
  ReadOutcome Read(uint64_t from, size_t max_records, size_t max_bytes, uint32_t tag,
                   uint32_t shard_index, GetRecordsResult<Payload>* page) const {
    detail::RecordBuffer<Payload> buffer(page);
    ReadOutcome out = ReadInto(from, max_records, max_bytes, tag, shard_index, buffer);
    buffer.Finish();
    return out;
  }

 private:
  ReadOutcome ReadInto(uint64_t from, size_t max_records, size_t max_bytes, uint32_t tag,
                       uint32_t shard_index, detail::RecordBuffer<Payload>& buffer) const {
    ReadOutcome out;
    const uint64_t end = End();
    const uint64_t want = from < end ? std::min<uint64_t>(end - from, max_records) : 0;
    for (uint64_t i = 0; i < want; ++i) {
      const uint64_t pos = from + i;
      SlotType& slot = SlotAt(pos);
      const int64_t arrival = slot.arrival_ms.load(detail::kSeqLoad);
      const uint64_t word = slot.word.load(detail::kSeqLoad);
      const size_t key_len = slot.key_len.load(detail::kSeqLoad);
      const size_t data_len = slot.data_len.load(detail::kSeqLoad);
      const size_t words = detail::WordsFor(key_len + (kObjectSlots ? 0 : data_len));
      if ((word & (word_capacity_ - 1)) + words > word_capacity_ ||
          (kStorage == PayloadStorage::kTrivial && data_len != sizeof(Payload))) {
        out.trimmed = true;  // torn metadata: the slot is being reused
        break;
      }
      if (i > 0 && out.bytes + key_len + data_len > max_bytes) break;
      Record<Payload>& rec = buffer.Push();
      rec.sequence_number = SequenceNumber(tag, shard_index, pos);
      rec.approximate_arrival_timestamp = absl::FromUnixMillis(arrival);
      uint64_t* base = words_.get() + (word & (word_capacity_ - 1));
      rec.partition_key.resize(key_len);
      detail::LoadBytes(base, 0, rec.partition_key.data(), key_len);
      if constexpr (kStorage == PayloadStorage::kBytes) {
        detail::LoadBytes(base, key_len, Traits::Resize(rec.data, data_len), data_len);
      } else if constexpr (kStorage == PayloadStorage::kTrivial) {
        detail::LoadBytes(base, key_len, reinterpret_cast<char*>(&rec.data), data_len);
      } else {
        slot.readers.fetch_add(1, std::memory_order_seq_cst);
        if (begin_.load(std::memory_order_seq_cst) > pos) {
          slot.readers.fetch_sub(1, std::memory_order_release);
          out.trimmed = true;
          break;
        }
        rec.data = slot.object;
        slot.readers.fetch_sub(1, std::memory_order_release);
      }
      out.bytes += key_len + data_len;
      ++out.count;
    }
    detail::SeqReaderFence();
    if (out.trimmed || begin_.load(std::memory_order_relaxed) > from) {
      buffer.Rewind();
      return ReadOutcome{0, 0, true, {}};
    }
    return out;
  }

 public:
  // Records dropped because they expired (retention) / because the ring was
  // full under FullPolicy::kOverwrite. Relaxed counters, for metrics.
  uint64_t expired_records() const { return expired_.load(std::memory_order_relaxed); }
  uint64_t overwritten_records() const { return overwritten_.load(std::memory_order_relaxed); }
  // Bytes of ring memory taken by the stored records (approximate under
  // concurrent writes).
  size_t bytes_in_use() const {
    const uint64_t begin = Begin();
    const uint64_t end = End();
    if (begin >= end) return 0;
    const uint64_t first = SlotAt(begin).word.load(std::memory_order_relaxed);
    const uint64_t last = SlotAt(end - 1).word.load(std::memory_order_relaxed);
    const size_t last_words = Footprint(SlotAt(end - 1).key_len.load(std::memory_order_relaxed),
                                        SlotAt(end - 1).data_len.load(std::memory_order_relaxed)) /
                              8;
    return last >= first ? static_cast<size_t>(last + last_words - first) * 8 : 0;
  }

 private:
  using SlotType = detail::Slot<Payload, kObjectSlots>;

  static size_t DataLength(View data) {
    if constexpr (kStorage == PayloadStorage::kBytes) {
      return Traits::Size(data);
    } else {
      (void)data;
      return kStorage == PayloadStorage::kTrivial ? sizeof(Payload) : 0;
    }
  }

  SlotType& SlotAt(uint64_t position) const { return slots_.get()[position & record_mask_]; }

  // The slot array is committed as the ring fills, not at creation: for byte
  // and trivial payloads it comes from an anonymous mapping (zero pages,
  // committed on first write) and the slots are not constructed, because a
  // slot's value-initialised state is all-zero bytes (atomics of integers
  // whose object representation is their value: true of every ABI kinlet
  // builds for) and construction would touch every page. A shard of 65,536
  // slots then costs its 1.5 MiB only as records arrive. Object payloads
  // construct their slots (their objects need it).
  struct SlotDeleter {
    size_t count = 0;
    bool mapped = false;
    void operator()(SlotType* slots) const {
      if constexpr (kObjectSlots) {
        delete[] slots;
      } else {
        detail::FreeZeroedPages(slots, count * sizeof(SlotType), mapped);
      }
    }
  };
  using SlotArray = std::unique_ptr<SlotType[], SlotDeleter>;
  static SlotArray AllocateSlots(size_t count) {
    if constexpr (kObjectSlots) {
      return SlotArray(new SlotType[count], SlotDeleter{count});
    } else {
      static_assert(std::is_trivially_destructible_v<SlotType>);
      bool mapped = false;
      void* memory = detail::AllocateZeroedPages(count * sizeof(SlotType), &mapped);
      return SlotArray(std::launder(static_cast<SlotType*>(memory)), SlotDeleter{count, mapped});
    }
  }

  // Tries to let the writer reuse the memory of records below `begin` (and up
  // to 1/16 of the ring beyond, so that this runs once per that many records):
  // publishes the new horizon, then reuses only memory below the lowest pin it
  // sees under it. Never waits. Returns whether the memory below `begin` may
  // be reused now.
  ABSL_ATTRIBUTE_NOINLINE bool AdvanceHorizon(uint64_t begin) {
    const uint64_t horizon =
        std::max(horizon_local_,
                 std::min(end_local_, begin + std::max<uint64_t>(1, capacity_records() / 16)));
    horizon_.store(horizon, std::memory_order_seq_cst);
    uint64_t reusable = horizon;
    for (uint32_t mask = pin_mask_.load(std::memory_order_seq_cst); mask != 0; mask &= mask - 1) {
      reusable = std::min(reusable,
                          pins_[std::countr_zero(mask)].position.load(std::memory_order_seq_cst));
    }
    // Never below what was reusable before: a pin below it failed (it saw the
    // horizon then) and is about to unpin.
    horizon_local_ = std::max(horizon_local_, reusable);
    return begin <= horizon_local_;
  }

  // Drops the records below `begin` (`expired` + `overwritten` of them):
  // publishes the new trim horizon and counts them.
  void Drop(uint64_t begin, uint64_t begin_word, uint64_t expired, uint64_t overwritten) {
    if (expired != 0) {
      expired_.store(expired_.load(std::memory_order_relaxed) + expired, std::memory_order_relaxed);
    }
    if (overwritten != 0) {
      overwritten_.store(overwritten_.load(std::memory_order_relaxed) + overwritten,
                         std::memory_order_relaxed);
    }
    PublishBegin(begin, begin_word);
  }

  void PublishBegin(uint64_t begin, uint64_t begin_word) {
    if (begin == begin_local_) return;
    begin_local_ = begin;
    begin_word_local_ = begin_word;
    // seq_cst only where the Dekker handshake with object readers needs it.
    std::memory_order order = kObjectSlots ? std::memory_order_seq_cst : std::memory_order_relaxed;
    if (KINLET_UNLIKELY(begin > end_published_)) {
      // A batch trims records it has not published: publish them first (a
      // trim horizon past the published end would make TRIM_HORIZON point
      // past the end), and release them with begin_.
      end_.store(end_local_, std::memory_order_release);
      end_published_ = end_local_;
      if constexpr (!kObjectSlots) order = std::memory_order_release;
    }
    begin_.store(begin, order);
    detail::SeqWriterFence();
  }

  const size_t record_mask_;
  const size_t word_capacity_;
  const SlotArray slots_;
  const std::unique_ptr<uint64_t[]> words_;

  // Writer-only state (REQUIRES the caller's serialisation).
  uint64_t begin_local_ = 0;
  uint64_t begin_word_local_ = 0;  // ring word of the record at begin_local_, if any
  uint64_t end_local_ = 0;
  uint64_t write_word_ = 0;
  uint64_t horizon_local_ = 0;  // memory of records below it may be reused
  uint64_t end_published_ = 0;  // the last value stored to end_

  // Published by the writer, read by readers (see the header comment).
  alignas(KINLET_CACHE_LINE_SIZE) std::atomic<uint64_t> end_{0};
  alignas(KINLET_CACHE_LINE_SIZE) std::atomic<uint64_t> begin_{0};
  // Readers blocked in WaitUntil (written only when they start/stop waiting).
  alignas(KINLET_CACHE_LINE_SIZE) mutable detail::WaitChannel waiters_;
  // Pins: horizon_ written by the writer, pins by their readers (see the
  // header comment). Unclaimed and idle pins hold kUnpinned.
  static constexpr uint64_t kUnpinned = UINT64_MAX;
  struct alignas(KINLET_CACHE_LINE_SIZE) PinSlot {
    std::atomic<uint64_t> position{kUnpinned};
  };
  alignas(KINLET_CACHE_LINE_SIZE) std::atomic<uint64_t> horizon_{0};
  mutable std::atomic<uint32_t> pin_mask_{0};  // claimed pin slots
  mutable PinSlot pins_[kMaxPins];
  // Written by the writer only (relaxed), read by metrics.
  alignas(KINLET_CACHE_LINE_SIZE) std::atomic<uint64_t> expired_{0};
  std::atomic<uint64_t> overwritten_{0};
};

}  // namespace kinlet
