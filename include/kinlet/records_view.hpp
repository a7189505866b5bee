// kinlet/records_view.hpp: GetRecords that lends the records in place.
//
//   kinlet::GetRecordsView<std::string> page;     // reuse it
//   absl::Status s = stream->GetRecords(iterator, 1000, &page);
//   for (const kinlet::RecordView<std::string>& r : page.records) Use(r.data);
//   iterator = *page.next_shard_iterator;
//   page.Release();  // optional: the next GetRecords into `page` releases too
//
// GetRecords into a GetRecordsView reads the same records, with the same
// errors, next iterator, millis_behind_latest and child shards, as GetRecords
// into a GetRecordsResult, but its records are views of the shard's own
// storage instead of copies: a polling reader pays no copy, and N readers of a
// shard read one copy. The views stay valid until the page is read into
// again, Release()d, moved from or destroyed.
//
// Safety: while the page holds views, their records are pinned (the pin
// mechanism of fan-out's NextView, ring_log.hpp): the writer does not reuse
// their memory, and never waits for the reader either. A put that could make
// room only by reusing pinned memory (the ring full up to the pinned records,
// which takes a reader a whole ring behind the writer) fails with
// ShardFullException, under FullPolicy::kReject and kOverwrite alike, and
// drops nothing; puts succeed again once the page is released. So release a
// page (or read into it again) promptly, and do not hold one while idle for
// long on a busy shard. Records the writer may reuse without looking (those
// within 1/16 of the ring of its oldest record), trivially copyable payloads,
// records of a durable stream read from disk, and reads when the shard's
// RingLog::kMaxPins pin slots are all taken (each page holds a slot on the
// last shard it read until it reads another shard or is destroyed) are
// copied into the page instead, and viewed there (copied_records() counts
// them): the answer is the same, only slower. A position trimmed or past
// retention is TrimmedDataAccessException, exactly as the copying read.
//
// Lifetime: a page holding views keeps their shard alive (an owning handle),
// even if the stream deletes it or is destroyed meanwhile.
//
// Thread safety: a page is used by one thread at a time. Any number of pages
// may read one shard at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "kinlet/record.hpp"
#include "kinlet/ring_log.hpp"
#include "kinlet/shard_iterator.hpp"
#include "kinlet/traits.hpp"

namespace kinlet {

template <RecordPayload Payload, StreamTraits Traits>
class Shard;
namespace detail {
struct RecordsViewAccess;
}  // namespace detail

template <typename Payload>
class GetRecordsView {
 public:
  // The records, in shard order: views valid until this page is read into
  // again, Release()d, moved from or destroyed.
  std::span<const RecordView<Payload>> records;
  // Empty once a closed shard has been read to its end.
  std::optional<ShardIterator> next_shard_iterator;
  // As GetRecordsResult::millis_behind_latest.
  int64_t millis_behind_latest = 0;
  // Set at the end of a closed shard.
  std::vector<ChildShard> child_shards;

  GetRecordsView() = default;
  GetRecordsView(const GetRecordsView&) = delete;
  GetRecordsView& operator=(const GetRecordsView&) = delete;
  // Moving takes the views and the pin over (`other` is left empty): the
  // views' addresses do not change.
  GetRecordsView(GetRecordsView&& other) noexcept { Take(other); }
  GetRecordsView& operator=(GetRecordsView&& other) noexcept {
    if (this != &other) {
      GiveBack();
      Take(other);
    }
    return *this;
  }
  ~GetRecordsView() { GiveBack(); }

  // Ends the loan: unpins the records (puts may reuse their memory at once)
  // and empties `records`; the views are invalid from here on. The iterator
  // fields stay. Idempotent.
  void Release() {
    if (pinned_) log_->Unpin(pin_);
    pinned_ = false;
    records = {};
    views_.clear();
  }

  // True while the page pins records of its shard (some of `records` are
  // lent in place).
  bool lent() const { return pinned_; }
  // Records this page delivered as views of a copy instead of in place,
  // since it was created (see the top of this file).
  uint64_t copied_records() const { return copied_; }

 private:
  template <RecordPayload P, StreamTraits T>
  friend class Shard;
  friend struct detail::RecordsViewAccess;

  // Release, then gives the pin slot (and the shard handle) back.
  void GiveBack() {
    Release();
    if (pin_ >= 0) log_->ReleasePin(pin_);
    pin_ = -1;
    log_ = nullptr;
    owner_.reset();
  }
  void Take(GetRecordsView& other) {
    records = std::exchange(other.records, {});
    next_shard_iterator = std::move(other.next_shard_iterator);
    millis_behind_latest = other.millis_behind_latest;
    child_shards = std::move(other.child_shards);
    owner_ = std::move(other.owner_);
    log_ = std::exchange(other.log_, nullptr);
    pin_ = std::exchange(other.pin_, -1);
    pinned_ = std::exchange(other.pinned_, false);
    views_ = std::move(other.views_);
    copies_ = std::move(other.copies_);
    copied_ = other.copied_;
  }

  // The shard whose pin slot this page holds (kept alive by owner_), the
  // slot (-1: none), and whether it pins records now.
  std::shared_ptr<const void> owner_;
  const RingLog<Payload>* log_ = nullptr;
  int pin_ = -1;
  bool pinned_ = false;
  std::vector<RecordView<Payload>> views_;  // what `records` spans
  GetRecordsResult<Payload> copies_;        // the records that had to be copied
  uint64_t copied_ = 0;
};

namespace detail {

// For readers that already hold copies (Consumer in fan-out mode): makes
// `page` view the records of `copies` (swapped into the page, so both keep
// their buffers), released first.
struct RecordsViewAccess {
  template <typename Payload>
  static void ViewCopies(GetRecordsResult<Payload>* copies, GetRecordsView<Payload>* page) {
    page->Release();
    std::swap(page->copies_.records, copies->records);
    for (const Record<Payload>& rec : page->copies_.records) {
      page->views_.push_back(
          RecordView<Payload>{rec.sequence_number, rec.approximate_arrival_timestamp,
                              rec.partition_key, typename PayloadTraits<Payload>::View(rec.data)});
    }
    page->copied_ += page->copies_.records.size();
    page->records = page->views_;
    page->next_shard_iterator = copies->next_shard_iterator;
    page->millis_behind_latest = copies->millis_behind_latest;
    page->child_shards = copies->child_shards;
  }
};

}  // namespace detail
}  // namespace kinlet
