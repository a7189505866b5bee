// kinlet/detail/shard_batches.hpp: PutRecords's grouping of a batch's
// entries by shard, in O(n) whatever the stream's shard count.
//
// Given each entry's shard index (or kSkip), Group() builds one group per
// distinct shard, in the order of each shard's first entry, each holding its
// entries in request order (a stable counting sort). Shard indices are mapped
// to dense group numbers directly (an array by index, stamped per call so it
// is never cleared) while they are below 65,536, else through an
// open-addressing table sized by the batch; the work is O(n) whatever the
// number of shards; the stream then takes each shard's writer lock once per
// group.
//
// Reuse one ShardBatches (PutRecordsResult holds one): once its vectors have
// grown to the largest batch, Group() allocates nothing.
//
// Thread safety: none (one batch at a time; each PutRecordsResult is its
// caller's).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace kinlet::detail {

class ShardBatches {
 public:
  // An entry that takes no part in this round (already written).
  static constexpr uint32_t kSkip = UINT32_MAX;

  // Groups the entries whose `shard[i]` is not kSkip. Returns the number of
  // groups; group g is shard_of(g) with entries(g).
  size_t Group(std::span<const uint32_t> shard) {
    const size_t n = shard.size();
    if (const size_t groups = GroupIfOneShard(shard); groups != kMany) return groups;
    group_of_.resize(n);
    shards_.clear();
    counts_.clear();
    // Shard indices to dense group numbers: directly by index, stamped with
    // this call's generation so that nothing is cleared between calls, while
    // indices are small (the usual stream); through a hash table sized by the
    // batch otherwise. O(n) either way.
    uint32_t top = 0;
    for (const uint32_t s : shard) top = s != kSkip ? std::max(top, s) : top;
    if (top < kDirectLimit) {
      if (stamps_.size() <= top) stamps_.resize(top + 1, 0);
      if (++generation_ == 0) {  // wrapped: old stamps could match
        std::fill(stamps_.begin(), stamps_.end(), 0);
        generation_ = 1;
      }
      for (size_t i = 0; i < n; ++i) {
        const uint32_t s = shard[i];
        if (s == kSkip) {
          group_of_[i] = kSkip;
          continue;
        }
        uint64_t& cell = stamps_[s];
        if (static_cast<uint32_t>(cell >> 32) != generation_) {
          cell = (uint64_t{generation_} << 32) | shards_.size();
          shards_.push_back(s);
          counts_.push_back(0);
        }
        const uint32_t g = static_cast<uint32_t>(cell);
        group_of_[i] = g;
        ++counts_[g];
      }
    } else {
      const size_t table_size = std::bit_ceil(std::max<size_t>(16, 2 * n));
      const int shift = 64 - std::countr_zero(table_size);
      table_.assign(table_size, kEmpty);
      for (size_t i = 0; i < n; ++i) {
        const uint32_t s = shard[i];
        if (s == kSkip) {
          group_of_[i] = kSkip;
          continue;
        }
        // Fibonacci hashing; linear probing. The table is at most half full.
        size_t slot = static_cast<size_t>((uint64_t{s} * 0x9E3779B97F4A7C15ull) >> shift);
        for (;;) {
          uint64_t& cell = table_[slot];
          if (cell == kEmpty) {
            cell = (uint64_t{s} << 32) | shards_.size();
            shards_.push_back(s);
            counts_.push_back(0);
            break;
          }
          if (static_cast<uint32_t>(cell >> 32) == s) break;
          slot = (slot + 1) & (table_size - 1);
        }
        const uint32_t g = static_cast<uint32_t>(table_[slot]);
        group_of_[i] = g;
        ++counts_[g];
      }
    }
    // Prefix sums into starts_, then a stable placement of each entry.
    const size_t groups = shards_.size();
    starts_.resize(groups + 1);
    uint32_t at = 0;
    for (size_t g = 0; g < groups; ++g) {
      starts_[g] = at;
      at += counts_[g];
      counts_[g] = starts_[g];  // reused as the next free place of group g
    }
    starts_[groups] = at;
    order_.resize(at);
    for (size_t i = 0; i < n; ++i) {
      if (group_of_[i] != kSkip) order_[counts_[group_of_[i]]++] = static_cast<uint32_t>(i);
    }
    return groups;
  }

  uint32_t shard_of(size_t group) const { return shards_[group]; }
  // The entries (indices into the request) of `group`, in request order.
  std::span<const uint32_t> entries(size_t group) const {
    return std::span<const uint32_t>(order_).subspan(starts_[group],
                                                     starts_[group + 1] - starts_[group]);
  }

 private:
  static constexpr uint64_t kEmpty = UINT64_MAX;
  static constexpr size_t kMany = SIZE_MAX;
  // Shard indices below it are mapped directly (8 bytes per index, kept).
  static constexpr uint32_t kDirectLimit = 1 << 16;

  // The common cases (a one-shard stream, a batch of one key) without the
  // table: 0 or 1 group, or kMany if the entries name two shards or more
  // (found by the second shard seen, so a mixed batch pays almost nothing).
  size_t GroupIfOneShard(std::span<const uint32_t> shard) {
    uint32_t only = kSkip;
    for (const uint32_t s : shard) {
      if (s == kSkip || s == only) continue;
      if (only != kSkip) return kMany;
      only = s;
    }
    if (only == kSkip) return 0;
    shards_.assign(1, only);
    order_.clear();
    for (size_t i = 0; i < shard.size(); ++i) {
      if (shard[i] != kSkip) order_.push_back(static_cast<uint32_t>(i));
    }
    starts_.assign({0, static_cast<uint32_t>(order_.size())});
    return 1;
  }

  std::vector<uint64_t> stamps_;  // by shard index: (generation << 32 | group)
  uint32_t generation_ = 0;
  std::vector<uint64_t> table_;     // (shard << 32 | group), or kEmpty
  std::vector<uint32_t> group_of_;  // per entry: its group, or kSkip
  std::vector<uint32_t> shards_;    // per group: its shard index
  std::vector<uint32_t> counts_;    // per group: size, then next free place
  std::vector<uint32_t> starts_;    // per group: where its entries start in order_
  std::vector<uint32_t> order_;     // entry indices, grouped
};

}  // namespace kinlet::detail
