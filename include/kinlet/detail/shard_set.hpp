// kinlet/detail/shard_set.hpp: a stream's shards: the table by index, the
// routing table of the open shards, the list of held shards, the control lock
// that serialises every change to them, the changes themselves (adding,
// splitting, merging, deleting expired shards) and the retirement of what a
// lock-free reader may still be using.
//
// Thread safety: reads (At, Route, routing, held, counts) are lock-free and
// run inside a detail::ReadSection; every change requires control_mu_ (the
// stream's control lock, which also guards the stream's own control-plane
// state). Published objects are immutable; a replaced or deleted one is
// retired and freed after a grace period (detail::EpochDomain).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "kinlet/detail/epoch.hpp"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/shard_table.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/shard.hpp"

namespace kinlet::detail {

template <RecordPayload Payload, StreamTraits Traits>
class ShardSet {
 public:
  using ShardType = Shard<Payload, Traits>;
  using Clock = typename Traits::Clock;
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

  struct RoutingTable {
    std::vector<HashKey> starts;     // sorted starting hash keys of open shards
    std::vector<ShardType*> shards;  // shards[i] owns [starts[i], starts[i+1])

    ShardType* Find(HashKey hash) const {
      if (shards.size() == 1) return shards[0];
      // The last start <= hash (starts[0] is 0: the open shards cover the
      // key space), by a binary search without branches on the data: hashes
      // are random, so a branching search mispredicts at every level.
      const HashKey* base = starts.data();
      for (size_t len = starts.size(); len > 1;) {
        const size_t half = len / 2;
        base += base[half] <= hash ? half : 0;
        len -= half;
      }
      return shards[static_cast<size_t>(base - starts.data())];
    }
  };

  // Every shard gets `context` and a ring of the given capacity.
  ShardSet(std::shared_ptr<StreamContext<Clock>> context, size_t capacity_records,
           size_t capacity_bytes)
      : context_(std::move(context)),
        capacity_records_(capacity_records),
        capacity_bytes_(capacity_bytes) {}

  ShardSet(const ShardSet&) = delete;
  ShardSet& operator=(const ShardSet&) = delete;

  // Control plane: creation, resharding, retention changes, deletion. Guards
  // the members below marked so, and the stream's control-plane state.
  mutable detail::Mutex control_mu_;

  // ---- Lock-free reads: REQUIRES inside a ReadSection (or control_mu_ held:
  // only the control plane frees shards and tables) ----------------------------

  // The shard at `index`, or nullptr if deleted (or never created).
  ShardType* At(uint64_t index) const { return table_.Get(index); }
  // Indices taken so far (ids are never reused). Acquire: pairs with the
  // release in AddLocked, so At(i) for i below it is set (or deleted).
  uint32_t count() const { return shard_count_.load(std::memory_order_acquire); }
  const RoutingTable* routing() const { return routing_.load(std::memory_order_acquire); }
  ShardType* Route(HashKey hash) const { return routing()->Find(hash); }
  // The open shard for a record. With one open shard every key maps to it, so
  // the key is not hashed (the hash is used for nothing else).
  static ShardType* RouteIn(const RoutingTable* table, std::string_view partition_key,
                            const std::optional<HashKey>& explicit_hash_key) {
    if (table->shards.size() == 1) return table->shards[0];
    return table->Find(explicit_hash_key.has_value() ? *explicit_hash_key
                                                     : Traits::Hasher::Hash(partition_key));
  }
  // The held shards (open, and closed ones not yet deleted), by index.
  const std::vector<ShardType*>& held() const { return *held_.load(std::memory_order_acquire); }

  // ---- Changes: REQUIRES control_mu_ ------------------------------------------

  size_t held_count_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    return live_.size();
  }
  uint32_t count_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    return shard_count_.load(std::memory_order_relaxed);
  }

  // Creates the next shard. `now_ms`: its creation time (the stream's for the
  // first shards, the reshard's for children: a child starts when its parent
  // closes). The caller routes to it (PublishRoutingLocked, ReplaceRoutesLocked).
  ShardType* AddLocked(HashKeyRange range, std::optional<std::string> parent,
                       std::optional<std::string> adjacent, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const uint32_t index = shard_count_.load(std::memory_order_relaxed);
    AttachedLog disk;
    if (log_factory_) disk = log_factory_(index, range, parent, adjacent, now_ms);
    return PlaceLocked(index, range, std::move(parent), std::move(adjacent), now_ms,
                       std::move(disk));
  }

  // Durable streams: makes the segment files (and shard.meta) of every shard
  // AddLocked creates from now on. Set once, before the first shard.
  using LogFactory = std::function<AttachedLog(
      uint32_t index, const HashKeyRange& range, const std::optional<std::string>& parent,
      const std::optional<std::string>& adjacent, int64_t created_ms)>;
  void SetLogFactoryLocked(LogFactory factory) ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    log_factory_ = std::move(factory);
  }

  // A reopened durable stream's shard, at its old index (ids are never
  // reused: the next new shard takes the index after the largest).
  ShardType* RestoreLocked(uint32_t index, HashKeyRange range, std::optional<std::string> parent,
                           std::optional<std::string> adjacent, int64_t created_ms,
                           AttachedLog disk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    return PlaceLocked(index, range, std::move(parent), std::move(adjacent), created_ms,
                       std::move(disk));
  }

  // Closes a reopened shard as its reshard did (at `closed_ms`, reporting
  // `children`), and arranges its deletion once it passes retention.
  void RestoreClosedLocked(ShardType* shard, std::vector<ChildShard> children, int64_t closed_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    typename ShardType::WriterGuard writer(&shard->write_mu_);
    shard->CloseLocked(std::move(children), closed_ms);
    next_reclaim_ms_.store(std::numeric_limits<int64_t>::min(), std::memory_order_relaxed);
  }

 private:
  ShardType* PlaceLocked(uint32_t index, HashKeyRange range, std::optional<std::string> parent,
                         std::optional<std::string> adjacent, int64_t now_ms, AttachedLog disk)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    std::shared_ptr<ShardType> shard(new ShardType(context_, index, range, std::move(parent),
                                                   std::move(adjacent), capacity_records_,
                                                   capacity_bytes_, now_ms, std::move(disk)));
    // Publish the shard before the count that makes it visible.
    table_.Set(index, shard.get());
    if (index >= shard_count_.load(std::memory_order_relaxed)) {
      shard_count_.store(index + 1, std::memory_order_release);
    }
    live_.emplace(index, std::move(shard));
    RepublishHeldLocked();
    return table_.Get(index);
  }

 public:
  void PublishRoutingLocked(std::unique_ptr<RoutingTable> table)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    // The old table is retired, not freed: a writer may still be routing with
    // it (inside a ReadSection) until the next grace period (FreeRetiredLocked).
    routing_.store(table.get(), std::memory_order_release);
    if (routing_owner_ != nullptr) {
      retired_.push_back(std::shared_ptr<RoutingTable>(routing_owner_.release()));
    }
    routing_owner_ = std::move(table);
  }

  // Publishes a routing table in which the consecutive open shards `old` are
  // replaced by `replacement` (all in hash key order).
  void ReplaceRoutesLocked(std::initializer_list<ShardType*> old,
                           std::initializer_list<ShardType*> replacement)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    auto table = std::make_unique<RoutingTable>();
    auto add = [&](ShardType* s) {
      table->starts.push_back(s->hash_key_range().starting_hash_key);
      table->shards.push_back(s);
    };
    bool placed = false;
    for (ShardType* s : routing_.load(std::memory_order_acquire)->shards) {
      if (std::find(old.begin(), old.end(), s) == old.end()) {
        add(s);
      } else if (!placed) {
        for (ShardType* r : replacement) add(r);
        placed = true;
      }
    }
    PublishRoutingLocked(std::move(table));
  }

  // Splits open `parent` into [S, k-1] and [k, E]. REQUIRES S < k <= E.
  // Routing first, then the parent closes: writers that still route with the
  // old table reach the parent and write there until it closes, then route
  // again.
  std::pair<ShardType*, ShardType*> SplitLocked(ShardType* parent, HashKey k, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const HashKeyRange range = parent->hash_key_range();
    ShardType* low =
        AddLocked({range.starting_hash_key, k - 1}, parent->shard_id(), std::nullopt, now_ms);
    ShardType* high =
        AddLocked({k, range.ending_hash_key}, parent->shard_id(), std::nullopt, now_ms);
    ReplaceRoutesLocked({parent}, {low, high});
    std::vector<ChildShard> children;
    for (ShardType* child : {low, high}) {
      children.push_back(
          ChildShard{child->shard_id(), {parent->shard_id()}, child->hash_key_range()});
    }
    {
      typename ShardType::WriterGuard writer(&parent->write_mu_);
      parent->CloseLocked(std::move(children), now_ms);
    }
    return {low, high};
  }

  // Merges the adjacent open shards `parent` and `adjacent` into one child.
  ShardType* MergeLocked(ShardType* parent, ShardType* adjacent, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const bool parent_low =
        parent->hash_key_range().starting_hash_key < adjacent->hash_key_range().starting_hash_key;
    ShardType* low = parent_low ? parent : adjacent;
    ShardType* high = parent_low ? adjacent : parent;
    ShardType* child =
        AddLocked({low->hash_key_range().starting_hash_key, high->hash_key_range().ending_hash_key},
                  parent->shard_id(), adjacent->shard_id(), now_ms);
    ReplaceRoutesLocked({low, high}, {child});
    const ChildShard reported{
        child->shard_id(), {parent->shard_id(), adjacent->shard_id()}, child->hash_key_range()};
    for (ShardType* p : {parent, adjacent}) {
      typename ShardType::WriterGuard writer(&p->write_mu_);
      p->CloseLocked({reported}, now_ms);
    }
    return child;
  }

  // Retires an unpublished object: freed after a grace period.
  void RetireLocked(std::shared_ptr<void> object) ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    retired_.push_back(std::move(object));
  }

  // Wakes every held shard's blocked readers (the stream is going away).
  void NotifyAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    for (auto& [index, shard] : live_) shard->log().NotifyWaiters();
  }

  // A shard's write counters (for the on-demand scaler).
  static uint64_t IncomingBytes(const ShardType* shard) {
    return shard->write_counters_.incoming_bytes.load(std::memory_order_relaxed);
  }
  static uint64_t IncomingRecords(const ShardType* shard) {
    return shard->write_counters_.incoming_records.load(std::memory_order_relaxed);
  }
  // Bytes ever written to the stream (held shards, and deleted ones).
  uint64_t TotalIncomingBytesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    uint64_t total = deleted_incoming_bytes_;
    for (const auto& [index, shard] : live_) total += IncomingBytes(shard.get());
    return total;
  }

  // ---- Deleting expired shards and freeing retired objects -------------------
  //
  // A closed shard whose every record is past retention is deleted, as AWS
  // deletes it: it leaves the shard table and the held list (new lookups no
  // longer find it: ResourceNotFoundException), the stream drops its
  // on-demand and fan-out bookkeeping, and the stream's reference to it is
  // retired. Retired objects (shards, routing tables, held lists, fault
  // configurations, shard table chunks) are freed after a grace period
  // (detail::EpochDomain): no call that reached them through a raw pointer is
  // still running. A shard is then freed with its ring unless a user still
  // holds a handle to it. The stream runs this at the end of every control
  // call and from the first put after the due time (ReclaimDue). Never under
  // a shard's writer lock, never in a section.

  // Deletes the closed shards past retention at `now_ms` and sets the next
  // due time; returns the deleted indices (in increasing order).
  std::vector<uint32_t> DeleteExpiredLocked(int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    const int64_t horizon = context_->ExpireBeforeMs(now_ms);
    int64_t next_due = kNever;
    std::vector<uint32_t> deleted;
    for (auto it = live_.begin(); it != live_.end();) {
      ShardType* shard = it->second.get();
      if (shard->is_open()) {
        ++it;
        continue;
      }
      if (shard->closed_ms_ >= horizon) {
        // Due when its newest possible record (closed_ms_) leaves retention.
        const int64_t due = shard->closed_ms_ + (now_ms - horizon) + 1;
        next_due = std::min(next_due, due);
        ++it;
        continue;
      }
      table_.Clear(it->first, shard_count_.load(std::memory_order_relaxed), &retired_);
      deleted_incoming_bytes_ += IncomingBytes(shard);
      shard->MarkDeleted();
      deleted.push_back(it->first);
      retired_.push_back(std::move(it->second));
      it = live_.erase(it);
    }
    next_reclaim_ms_.store(next_due, std::memory_order_relaxed);
    if (!deleted.empty()) RepublishHeldLocked();
    return deleted;
  }

  // Frees the retired objects if a grace period has passed.
  void FreeRetiredLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    if (!retired_.empty() && detail::EpochDomain::Global().Synchronize()) retired_.clear();
  }

  // The hot path's check (one relaxed load and a compare): whether a closed
  // shard may have passed retention.
  bool ReclaimDue(int64_t now_ms) const {
    return now_ms >= next_reclaim_ms_.load(std::memory_order_relaxed);
  }

 private:
  // Publishes the list of held shards (AllShards) after a shard is added or
  // deleted; the old list is retired like a routing table.
  void RepublishHeldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    auto list = std::make_unique<std::vector<ShardType*>>();
    list->reserve(live_.size());
    for (const auto& [index, shard] : live_) list->push_back(shard.get());
    held_.store(list.get(), std::memory_order_release);
    if (held_owner_ != nullptr) {
      retired_.push_back(std::shared_ptr<std::vector<ShardType*>>(held_owner_.release()));
    }
    held_owner_ = std::move(list);
  }

  const std::shared_ptr<StreamContext<Clock>> context_;
  const size_t capacity_records_;
  const size_t capacity_bytes_;

  // The shards by index: a slot is set (release) before shard_count_ grows
  // past it (release); readers load shard_count_ (acquire), then the slot,
  // inside a ReadSection. Written by the control plane only.
  ShardTable<ShardType> table_;
  std::atomic<uint32_t> shard_count_{0};  // indices taken so far (ids are never reused)
  // The routing table and the held-shard list in force: published by the
  // control plane (release), loaded by puts and reads (acquire) inside a
  // ReadSection; replaced ones are retired and freed after a grace period.
  std::atomic<const RoutingTable*> routing_{nullptr};
  std::atomic<const std::vector<ShardType*>*> held_{nullptr};
  // When the next closed shard passes retention (kNever: none closed). Loaded
  // relaxed by every put; written under control_mu_ (see DeleteExpiredLocked).
  std::atomic<int64_t> next_reclaim_ms_{kNever};

  // The shards held, by index: the stream's own references.
  std::map<uint32_t, std::shared_ptr<ShardType>> live_ ABSL_GUARDED_BY(control_mu_);
  std::unique_ptr<RoutingTable> routing_owner_ ABSL_GUARDED_BY(control_mu_);
  LogFactory log_factory_ ABSL_GUARDED_BY(control_mu_);
  std::unique_ptr<std::vector<ShardType*>> held_owner_ ABSL_GUARDED_BY(control_mu_);
  // Unpublished objects awaiting a grace period (see FreeRetiredLocked).
  std::vector<std::shared_ptr<void>> retired_ ABSL_GUARDED_BY(control_mu_);
  // IncomingBytes of the deleted shards (for TotalIncomingBytesLocked).
  uint64_t deleted_incoming_bytes_ ABSL_GUARDED_BY(control_mu_) = 0;
};

}  // namespace kinlet::detail
