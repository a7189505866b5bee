// kinlet/record.hpp: the record a reader gets back, and the reusable page that
// GetRecords fills.
// Thread safety: plain values; not synchronised.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "kinlet/hash_key.hpp"
#include "kinlet/payload.hpp"
#include "kinlet/sequence_number.hpp"
#include "kinlet/shard_iterator.hpp"

namespace kinlet {

// One record, as Kinesis's Record shape: sequence number, arrival time
// (millisecond precision, never decreasing within a shard), partition key and
// the payload.
template <typename Payload>
struct Record {
  SequenceNumber sequence_number;
  absl::Time approximate_arrival_timestamp;
  std::string partition_key;
  Payload data{};
};

// A record lent out in place (zero-copy reads: Subscription::NextView, view
// callbacks, GetRecords into a GetRecordsView): `partition_key` and `data`
// point into the shard's storage (or into a copy the reader holds), valid for
// as long as what lent them says.
template <typename Payload>
struct RecordView {
  SequenceNumber sequence_number;
  absl::Time approximate_arrival_timestamp;
  std::string_view partition_key;
  typename PayloadTraits<Payload>::View data;  // string_view / span / ObjectRef<T>
};

// A shard created by resharding this one, reported at the end of a closed shard.
struct ChildShard {
  std::string shard_id;
  std::vector<std::string> parent_shards;
  HashKeyRange hash_key_range;
};

namespace detail {
template <typename Payload>
class RecordBuffer;
}  // namespace detail

// A page of GetRecords. Reuse one page across calls: its records keep their
// string and vector capacity, so a steady reader allocates nothing.
template <typename Payload>
class GetRecordsResult {
 public:
  std::vector<Record<Payload>> records;
  // Empty once a closed shard has been read to its end.
  std::optional<ShardIterator> next_shard_iterator;
  // Milliseconds between the arrival of the oldest record not yet read and now;
  // 0 when the page reaches the tip of the shard.
  int64_t millis_behind_latest = 0;
  // Set at the end of a closed shard.
  std::vector<ChildShard> child_shards;

 private:
  friend class detail::RecordBuffer<Payload>;
  std::vector<Record<Payload>> spare_;  // records kept for their buffers
};

namespace detail {

// Refills a page's records in place, keeping every element's buffers: Push()
// hands out the page's existing records first, then recycled ones; Finish()
// parks the records beyond those pushed in a spare list for the next refill.
template <typename Payload>
class RecordBuffer {
 public:
  explicit RecordBuffer(GetRecordsResult<Payload>* page) : page_(page) {}
  Record<Payload>& Push() {
    auto& records = page_->records;
    if (used_ < records.size()) return records[used_++];
    auto& spare = page_->spare_;
    if (!spare.empty()) {
      records.push_back(std::move(spare.back()));
      spare.pop_back();
    } else {
      records.emplace_back();
    }
    ++used_;
    return records.back();
  }
  // Forgets everything pushed so far.
  void Rewind() { used_ = 0; }
  // Leaves exactly the pushed records in the page.
  void Finish() {
    auto& records = page_->records;
    while (records.size() > used_) {
      page_->spare_.push_back(std::move(records.back()));
      records.pop_back();
    }
  }

 private:
  GetRecordsResult<Payload>* page_;
  size_t used_ = 0;
};

}  // namespace detail
}  // namespace kinlet
