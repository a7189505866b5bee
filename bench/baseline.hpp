// bench/baseline.hpp: what a user writes without kinlet: a std::mutex around a
// std::deque of records, readers holding their own index. Bounded like a
// kinlet shard (oldest records dropped past `capacity`) so that memory stays
// comparable.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace bench {

struct BaselineRecord {
  uint64_t sequence = 0;
  int64_t arrival_ms = 0;
  std::string partition_key;
  std::string data;
};

class MutexDequeLog {
 public:
  explicit MutexDequeLog(size_t capacity = size_t{1} << 30) : capacity_(capacity) {}

  uint64_t Append(std::string_view key, std::string_view data) {
    const int64_t now = absl::ToUnixMillis(absl::Now());
    std::lock_guard<std::mutex> lock(mu_);
    if (records_.size() == capacity_) {
      records_.pop_front();
      ++first_;
    }
    records_.push_back(
        BaselineRecord{first_ + records_.size(), now, std::string(key), std::string(data)});
    return first_ + records_.size() - 1;
  }

  // Copies up to `limit` records from `from` into `out` (reusing its buffers);
  // returns the position after the last one copied.
  uint64_t Read(uint64_t from, size_t limit, std::vector<BaselineRecord>* out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (from < first_) from = first_;
    const uint64_t end = first_ + records_.size();
    size_t n = static_cast<size_t>(std::min<uint64_t>(end - from, limit));
    out->resize(n);
    for (size_t i = 0; i < n; ++i) {
      const BaselineRecord& r = records_[static_cast<size_t>(from - first_) + i];
      (*out)[i].sequence = r.sequence;
      (*out)[i].arrival_ms = r.arrival_ms;
      (*out)[i].partition_key.assign(r.partition_key);
      (*out)[i].data.assign(r.data);
    }
    return from + n;
  }

  // One past the newest record.
  uint64_t End() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_ + records_.size();
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    first_ += records_.size();
    records_.clear();
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::deque<BaselineRecord> records_;
  uint64_t first_ = 0;
};

}  // namespace bench
