// kinlet/detail/durable_stream.hpp: creating a durable stream, reopening one
// (the lineage check and the restore), and saving its state. Stream's
// durable-only code, kept out of stream.hpp; a friend of Stream.
//
// Thread safety: Create and Open are static and touch nothing shared;
// AttachLocked, RestoreLocked and SaveLocked run under the stream's control
// lock (RestoreLocked from the constructor).
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kinlet/detail/stream_store.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/payload.hpp"
#include "kinlet/stream_options.hpp"

namespace kinlet::detail {

template <typename StreamT>
struct DurableStreamOps {
  using Payload = typename StreamT::payload_type;
  using Clock = typename StreamT::Clock;
  using OpenedShard = StreamStore::OpenedShard;
  static constexpr PayloadStorage kStorage = PayloadTraits<Payload>::kStorage;
  static constexpr size_t kPayloadSize = kStorage == PayloadStorage::kTrivial ? sizeof(Payload) : 0;

  static absl::Status CheckPayload() {
    if constexpr (kStorage == PayloadStorage::kObject) {
      return InvalidArgument(
          "A durable stream needs a byte payload (std::string, std::vector<char>, ...) or a "
          "trivially copyable one: object payloads cannot be written to disk.");
    }
    return absl::OkStatus();
  }

  // Largest key + payload a shard log must hold (a key is at most 256
  // characters, 1,024 bytes of UTF-8).
  static size_t MaxRecordBytes(const StreamOptions& options) {
    return options.max_record_size_bytes + 1024;
  }

  static absl::StatusOr<std::unique_ptr<StreamT>> Create(StreamOptions options, Clock* clock) {
    if (absl::Status s = CheckPayload(); !s.ok()) return s;
    if (options.storage.directory.empty()) {
      return InvalidArgument("storage.directory is required for a durable stream");
    }
    absl::StatusOr<std::unique_ptr<StreamStore>> store = StreamStore::Create(options.storage);
    if (!store.ok()) return store.status();
    std::unique_ptr<StreamT> stream(new StreamT(std::move(options), clock, *std::move(store)));
    MutexLock lock(&stream->shards_.control_mu_);
    if (absl::Status s = SaveLocked(*stream); !s.ok()) return s;
    return stream;
  }

  static absl::StatusOr<std::unique_ptr<StreamT>> Open(std::string_view directory,
                                                       StreamOptions options, Clock* clock) {
    if (absl::Status s = CheckPayload(); !s.ok()) return s;
    options.storage.kind = StorageKind::kDurable;
    options.storage.directory = std::string(directory);
    StoredStream stored;
    std::vector<OpenedShard> shards;
    absl::StatusOr<std::unique_ptr<StreamStore>> store =
        StreamStore::Open(options.storage, MaxRecordBytes(options), &stored, &shards);
    if (!store.ok()) return store.status();
    if (stored.encryption == EncryptionType::kKms) (*store)->set_key_id(stored.key_id);
    if (!options.name.empty() && options.name != stored.name) {
      return InvalidArgument(absl::StrCat("Directory ", ToAbsl(directory), " holds stream ",
                                          stored.name, ", not ", options.name, "."));
    }
    if (stored.payload_kind != static_cast<int>(kStorage) || stored.payload_size != kPayloadSize) {
      return InvalidArgument(
          absl::StrCat("Stream ", stored.name, " was written with another payload type."));
    }
    options.name = stored.name;
    options.region = stored.region;
    options.account_id = stored.account_id;
    options.retention_period = absl::Milliseconds(stored.retention_ms);
    options.stream_mode = stored.mode;
    options.shard_count = 1;  // the stored shards are restored instead
    if (absl::Status s = ValidateStreamOptions(options); !s.ok()) return s;
    if (absl::Status s = PlanLineage(&shards, **store); !s.ok()) return s;
    return std::unique_ptr<StreamT>(
        new StreamT(std::move(options), clock, *std::move(store), &stored, &shards));
  }

  // Decides which shards are closed (their children cover their range) and
  // drops children of an unfinished split; checks that the open shards cover
  // the hash key space once. DataLossException if they do not.
  static absl::Status PlanLineage(std::vector<OpenedShard>* shards, StreamStore& store) {
    std::map<std::string, size_t> by_id;
    for (size_t i = 0; i < shards->size(); ++i) by_id[ShardIdFor((*shards)[i].shard.index)] = i;
    std::vector<bool> drop(shards->size(), false);
    for (size_t p = 0; p < shards->size(); ++p) {
      OpenedShard& parent = (*shards)[p];
      const std::string id = ShardIdFor(parent.shard.index);
      std::vector<size_t> kids;
      for (size_t c = 0; c < shards->size(); ++c) {
        const StoredShard& k = (*shards)[c].shard;
        if (k.parent == id || k.adjacent == id) kids.push_back(c);
      }
      if (kids.empty()) continue;
      std::sort(kids.begin(), kids.end(), [&](size_t a, size_t b) {
        return (*shards)[a].shard.range.starting_hash_key <
               (*shards)[b].shard.range.starting_hash_key;
      });
      // Covered: the children's ranges, in order, leave no gap in the parent's.
      const HashKeyRange& r = parent.shard.range;
      HashKey next = r.starting_hash_key;
      bool covered = false;
      for (size_t c : kids) {
        const HashKeyRange& kr = (*shards)[c].shard.range;
        if (kr.starting_hash_key > next) break;
        if (kr.ending_hash_key >= r.ending_hash_key) {
          covered = true;
          break;
        }
        next = kr.ending_hash_key + 1;
      }
      if (!covered) {
        for (size_t c : kids) {
          const bool has_records =
              (*shards)[c].log.log != nullptr && (*shards)[c].log.log->End() != 0;
          if (has_records) {
            return DataLoss(absl::StrCat("Shard ", ShardIdFor((*shards)[c].shard.index),
                                         " has records but its parent ", id,
                                         " is not fully resharded: the lineage is inconsistent."));
          }
          drop[c] = true;
          store.AddNote(absl::StrCat("discarded ", ShardIdFor((*shards)[c].shard.index),
                                     ": its reshard of ", id, " did not finish (no records)"));
        }
        continue;
      }
      parent.closed = true;
      std::sort(kids.begin(), kids.end());  // children are reported by index
      for (size_t c : kids) {
        const StoredShard& k = (*shards)[c].shard;
        ChildShard child{ShardIdFor(k.index), {}, k.range};
        if (k.parent) child.parent_shards.push_back(*k.parent);
        if (k.adjacent) child.parent_shards.push_back(*k.adjacent);
        parent.children.push_back(std::move(child));
        parent.closed_ms = std::max(parent.closed_ms, k.created_ms);
      }
    }
    std::vector<OpenedShard> kept;
    for (size_t i = 0; i < shards->size(); ++i) {
      if (drop[i]) {
        store.RemoveShard((*shards)[i].shard.index);
      } else {
        kept.push_back(std::move((*shards)[i]));
      }
    }
    *shards = std::move(kept);
    // The open shards must partition the hash key space.
    std::vector<const StoredShard*> open;
    for (const OpenedShard& s : *shards) {
      if (!s.closed) open.push_back(&s.shard);
    }
    std::sort(open.begin(), open.end(), [](const StoredShard* a, const StoredShard* b) {
      return a->range.starting_hash_key < b->range.starting_hash_key;
    });
    HashKey next = 0;
    bool done = false;
    for (const StoredShard* s : open) {
      if (done || s->range.starting_hash_key != next) {
        return DataLoss("The stored open shards do not cover the hash key space exactly once.");
      }
      if (s->range.ending_hash_key == kMaxHashKey) {
        done = true;
      } else {
        next = s->range.ending_hash_key + 1;
      }
    }
    if (!done) return DataLoss("The stored open shards do not cover the hash key space.");
    return absl::OkStatus();
  }

  // New shards get segment files (and shard.meta) as they are created.
  static void AttachLocked(StreamT& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.shards_.control_mu_) {
    StreamStore* store = s.store_.get();
    const size_t max_bytes = MaxRecordBytes(s.options_);
    s.shards_.SetLogFactoryLocked([store, max_bytes](uint32_t index, const HashKeyRange& range,
                                                     const std::optional<std::string>& parent,
                                                     const std::optional<std::string>& adjacent,
                                                     int64_t created_ms) {
      return store->CreateShardLog(StoredShard{index, range, parent, adjacent, created_ms},
                                   max_bytes);
    });
  }

  // The constructor's restore: the stream's state and its shards as planned.
  static void RestoreLocked(StreamT& s, const StoredStream& stored,
                            std::vector<OpenedShard>& shards)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.shards_.control_mu_) {
    s.created_ms_ = stored.created_ms;
    s.created_at_ = absl::FromUnixMillis(stored.created_ms);
    s.context_.retention_ms.store(stored.retention_ms, std::memory_order_relaxed);
    s.context_.expired_floor_ms.store(stored.expired_floor_ms, std::memory_order_relaxed);
    auto table = std::make_unique<typename StreamT::RoutingTable>();
    std::vector<std::pair<HashKey, typename StreamT::ShardType*>> open;
    for (OpenedShard& o : shards) {
      const StoredShard& st = o.shard;
      s.scaler_.Track(s.shards_.count_locked(), st.created_ms);
      typename StreamT::ShardType* shard = s.shards_.RestoreLocked(
          st.index, st.range, st.parent, st.adjacent, st.created_ms, std::move(o.log));
      if (o.closed) {
        s.shards_.RestoreClosedLocked(shard, std::move(o.children), o.closed_ms);
      } else {
        open.emplace_back(st.range.starting_hash_key, shard);
      }
    }
    std::sort(open.begin(), open.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [start, shard] : open) {
      table->starts.push_back(start);
      table->shards.push_back(shard);
    }
    s.shards_.PublishRoutingLocked(std::move(table));
    for (const StoredConsumer& c : stored.consumers) {
      (void)s.consumers_.Register(c.name, absl::FromUnixMillis(c.created_ms));
    }
    s.SetModeLocked(stored.mode, s.context_.NowMs());
    {
      MutexLock e(&s.encryption_mu_);
      s.encryption_type_ = stored.encryption;
      s.key_id_ = stored.key_id;
      s.tags_ = stored.tags;
    }
    s.ReclaimLocked(s.context_.NowMs());
  }

  // Start/StopStreamEncryption on a durable stream (key_id empty: stop):
  // checks the key, then every shard's log starts a new segment with it, and
  // shards created later use it too.
  static absl::Status SetEncryptionLocked(StreamT& s, const std::string& key_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.shards_.control_mu_) {
    const StorageOptions& o = s.store_->options();
    if (!key_id.empty()) {
      if (o.key_provider == nullptr || o.cipher_factory == nullptr) {
        return InvalidArgument(
            "Encrypting a durable stream needs storage.key_provider and storage.cipher_factory "
            "(kinlet::crypto::LocalKeyProvider and Aes256GcmCipherFactory).");
      }
      if (absl::Status st = o.key_provider->CheckKey(key_id); !st.ok()) return st;
    }
    s.store_->set_key_id(key_id);
    for (const auto& shard : s.AllShards()) {
      if (shard->disk_ == nullptr || !shard->is_open()) continue;
      typename StreamT::ShardType::WriterGuard writer(&shard->write_mu_);
      if (absl::Status st = shard->disk_->SetEncryption(o.key_provider, o.cipher_factory, key_id);
          !st.ok()) {
        return st;
      }
    }
    return absl::OkStatus();
  }

  static absl::Status SaveLocked(StreamT& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.shards_.control_mu_) {
    StoredStream stored;
    stored.tag = s.context_.tag;
    stored.name = s.options_.name;
    stored.region = s.options_.region;
    stored.account_id = s.options_.account_id;
    stored.created_ms = s.created_ms_;
    stored.retention_ms = s.context_.retention_ms.load(std::memory_order_relaxed);
    stored.expired_floor_ms = s.context_.expired_floor_ms.load(std::memory_order_relaxed);
    stored.mode = s.stream_mode();
    for (const StreamConsumerDescription& c : s.consumers_.List()) {
      stored.consumers.push_back(
          StoredConsumer{c.consumer_name, absl::ToUnixMillis(c.consumer_creation_timestamp)});
    }
    {
      MutexLock e(&s.encryption_mu_);
      stored.encryption = s.encryption_type_;
      stored.key_id = s.key_id_;
      stored.tags = s.tags_;
    }
    stored.payload_kind = static_cast<int>(kStorage);
    stored.payload_size = kPayloadSize;
    return s.store_->SaveStream(stored);
  }
};

}  // namespace kinlet::detail
