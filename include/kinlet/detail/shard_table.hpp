// kinlet/detail/shard_table.hpp: a stream's shards by index, for lock-free
// lookups (an iterator or sequence number names its shard by index).
//
// Shard indices grow for the life of a stream (every reshard takes new ones)
// while shards whose records have all expired are deleted, so the table is
// two-level: a fixed directory of chunks of kChunk entries, each chunk
// allocated when its first index is taken and freed once every shard in it is
// gone. Memory is bounded by the shards the stream holds, not by its history.
//
// Thread safety: Get is lock-free and must run inside a detail::ReadSection
// (a chunk is freed only after a grace period). Set, Clear and TakeRetired are
// called by the stream's control plane only (under its control lock).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace kinlet::detail {

template <typename T>
class ShardTable {
 public:
  static constexpr uint32_t kChunkBits = 10;
  static constexpr uint32_t kChunk = uint32_t{1} << kChunkBits;
  static constexpr uint32_t kDirectory = 16384;
  // Shard indices a stream can ever take (16.7 million).
  static constexpr uint64_t kMaxIndices = uint64_t{kChunk} * kDirectory;

  ShardTable() = default;
  ShardTable(const ShardTable&) = delete;
  ShardTable& operator=(const ShardTable&) = delete;
  ~ShardTable() {
    for (auto& c : directory_) delete c.load(std::memory_order_relaxed);
  }

  // The shard at `index`, or nullptr (never created, or deleted). Lock-free.
  T* Get(uint64_t index) const {
    if (index >= kMaxIndices) return nullptr;
    const Chunk* chunk = directory_[index >> kChunkBits].load(std::memory_order_acquire);
    if (chunk == nullptr) return nullptr;
    return chunk->slots[index & (kChunk - 1)].load(std::memory_order_acquire);
  }

  // Publishes `shard` at `index` (release). REQUIRES: index < kMaxIndices,
  // indices set in increasing order, each once.
  void Set(uint64_t index, T* shard) {
    auto& entry = directory_[index >> kChunkBits];
    Chunk* chunk = entry.load(std::memory_order_relaxed);
    if (chunk == nullptr) {
      chunk = new Chunk();
      entry.store(chunk, std::memory_order_release);
    }
    ++chunk->live;
    chunk->slots[index & (kChunk - 1)].store(shard, std::memory_order_release);
  }

  // Unpublishes the shard at `index`. A chunk that no shard can ever use
  // again (every index in it taken and deleted) is unpublished too and handed
  // to `retired` to be freed after a grace period.
  void Clear(uint64_t index, uint64_t next_index, std::vector<std::shared_ptr<void>>* retired) {
    auto& entry = directory_[index >> kChunkBits];
    Chunk* chunk = entry.load(std::memory_order_relaxed);
    if (chunk == nullptr) return;
    chunk->slots[index & (kChunk - 1)].store(nullptr, std::memory_order_release);
    --chunk->live;
    const uint64_t chunk_end = ((index >> kChunkBits) + 1) << kChunkBits;
    if (chunk->live == 0 && next_index >= chunk_end) {
      entry.store(nullptr, std::memory_order_release);
      retired->push_back(std::shared_ptr<Chunk>(chunk));
    }
  }

  // Chunks allocated now (for tests and memory accounting).
  size_t chunk_count() const {
    size_t n = 0;
    for (const auto& c : directory_) n += c.load(std::memory_order_relaxed) != nullptr ? 1 : 0;
    return n;
  }

 private:
  struct Chunk {
    std::array<std::atomic<T*>, kChunk> slots{};
    uint32_t live = 0;  // control plane only
  };
  std::array<std::atomic<Chunk*>, kDirectory> directory_{};
};

}  // namespace kinlet::detail
