// kinlet/detail/stream_store.hpp: a durable stream's directory: what is kept
// besides the records, and how a stream is found again in it.
//
//   <directory>/LOCK                      held while a process has it open
//   <directory>/stream.meta               the stream: name, tag, retention,
//                                         mode, consumers, encryption
//   <directory>/shards/<shard id>/        one ShardLog per shard
//       shard.meta                        index, hash key range, parents,
//                                         creation time (written once, when
//                                         the shard is created)
//       *.seg, *.idx                      its segments (storage/shard_log.hpp)
//
// Both .meta files are small text files ("key value" lines, values C-escaped,
// ending in an XXH3 checksum line), replaced atomically (write, fsync,
// rename, fsync the directory). Lineage needs no log of reshards: a shard is
// closed exactly when shards naming it as parent cover its hash key range,
// and closed at their creation; its last record is the last one in its
// files. A crash inside a reshard can leave the first child of a split
// without its sibling: such children never took a record (routing reaches
// them only after both exist) and are discarded on open.
//
// Thread safety: StreamStore is used under the stream's control lock (and by
// the constructor); not synchronised itself.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kinlet/detail/strings.hpp"
#include "kinlet/detail/uint128.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/on_demand.hpp"
#include "kinlet/shard.hpp"
#include "kinlet/storage/detail/directory_lock.hpp"
#include "kinlet/storage/detail/file.hpp"
#include "kinlet/storage/encryption.hpp"
#include "kinlet/storage/shard_log.hpp"
#include "kinlet/storage/storage_options.hpp"
#include "xxhash.h"

namespace kinlet::detail {

// A shard as its shard.meta records it.
struct StoredShard {
  uint32_t index = 0;
  HashKeyRange range;
  std::optional<std::string> parent;
  std::optional<std::string> adjacent;
  int64_t created_ms = 0;
};

struct StoredConsumer {
  std::string name;
  int64_t created_ms = 0;
};

// The stream as stream.meta records it.
struct StoredStream {
  uint32_t tag = 0;  // sequence numbers embed it: kept, so they stay valid
  std::string name;
  std::string region;
  std::string account_id;
  int64_t created_ms = 0;
  int64_t retention_ms = 0;
  int64_t expired_floor_ms = 0;
  StreamMode mode = StreamMode::kProvisioned;
  std::vector<StoredConsumer> consumers;
  EncryptionType encryption = EncryptionType::kNone;
  std::string key_id;
  std::map<std::string, std::string> tags;
  // The payload type it was written with (kind, and size for trivial ones).
  int payload_kind = 0;
  size_t payload_size = 0;
};

// "key value" lines, values C-escaped, then "checksum <hex>".
class MetaWriter {
 public:
  void Add(std::string_view key, std::string_view value) {
    absl::StrAppend(&text_, ToAbsl(key), " ", absl::CEscape(ToAbsl(value)), "\n");
  }
  void Add(std::string_view key, int64_t value) { Add(key, absl::StrCat(value)); }
  std::string Finish() && {
    absl::StrAppend(&text_, "checksum ", absl::Hex(XXH3_64bits(text_.data(), text_.size())), "\n");
    return std::move(text_);
  }

 private:
  std::string text_;
};

// Reads what MetaWriter wrote: DataLossException for a checksum mismatch or a
// malformed line (a torn or edited file), naming `path`.
class MetaReader {
 public:
  static absl::StatusOr<MetaReader> Parse(std::string_view text, const std::string& path) {
    MetaReader r;
    r.path_ = path;
    const size_t at = text.rfind("checksum ");
    if (at == std::string_view::npos || (at != 0 && text[at - 1] != '\n')) {
      return r.Corrupt("no checksum line");
    }
    uint64_t want = 0;
    std::string_view hex = text.substr(at + 9);
    while (!hex.empty() && hex.back() == '\n') hex.remove_suffix(1);
    if (!absl::SimpleHexAtoi(ToAbsl(hex), &want) || XXH3_64bits(text.data(), at) != want) {
      return r.Corrupt("checksum mismatch");
    }
    for (absl::string_view line : absl::StrSplit(ToAbsl(text.substr(0, at)), '\n')) {
      if (line.empty()) continue;
      const size_t space = line.find(' ');
      if (space == absl::string_view::npos) return r.Corrupt("malformed line");
      std::string value;
      if (!absl::CUnescape(line.substr(space + 1), &value)) return r.Corrupt("malformed value");
      r.lines_.emplace_back(std::string(line.substr(0, space)), std::move(value));
    }
    return r;
  }
  const std::vector<std::pair<std::string, std::string>>& lines() const { return lines_; }
  std::optional<std::string> Get(std::string_view key) const {
    for (const auto& [k, v] : lines_) {
      if (k == key) return v;
    }
    return std::nullopt;
  }
  absl::StatusOr<std::string> Need(std::string_view key) const {
    std::optional<std::string> v = Get(key);
    if (!v) return Corrupt(absl::StrCat("no ", ToAbsl(key)));
    return *v;
  }
  absl::StatusOr<int64_t> NeedInt(std::string_view key) const {
    absl::StatusOr<std::string> v = Need(key);
    if (!v.ok()) return v.status();
    int64_t out = 0;
    if (!absl::SimpleAtoi(*v, &out)) return Corrupt(absl::StrCat("bad ", ToAbsl(key)));
    return out;
  }
  absl::Status Corrupt(std::string_view why) const {
    return DataLoss(absl::StrCat("kinlet metadata file ", path_, " is corrupt: ", ToAbsl(why)));
  }

 private:
  std::string path_;
  std::vector<std::pair<std::string, std::string>> lines_;
};

inline std::string EncodeStoredShard(const StoredShard& s) {
  MetaWriter w;
  w.Add("kinlet-shard", 1);
  w.Add("index", s.index);
  w.Add("starting_hash_key", Uint128ToDecimal(s.range.starting_hash_key));
  w.Add("ending_hash_key", Uint128ToDecimal(s.range.ending_hash_key));
  if (s.parent) w.Add("parent", *s.parent);
  if (s.adjacent) w.Add("adjacent", *s.adjacent);
  w.Add("created_ms", s.created_ms);
  return std::move(w).Finish();
}

inline absl::StatusOr<StoredShard> DecodeStoredShard(std::string_view text,
                                                     const std::string& path) {
  absl::StatusOr<MetaReader> r = MetaReader::Parse(text, path);
  if (!r.ok()) return r.status();
  StoredShard s;
  absl::StatusOr<int64_t> index = r->NeedInt("index");
  absl::StatusOr<int64_t> created = r->NeedInt("created_ms");
  absl::StatusOr<std::string> start = r->Need("starting_hash_key");
  absl::StatusOr<std::string> end = r->Need("ending_hash_key");
  for (const absl::Status& st : {index.status(), created.status(), start.status(), end.status()}) {
    if (!st.ok()) return st;
  }
  if (*index < 0 || *index > UINT32_MAX ||
      DecimalToUint128(*start, &s.range.starting_hash_key) != DecimalParse::kOk ||
      DecimalToUint128(*end, &s.range.ending_hash_key) != DecimalParse::kOk ||
      s.range.starting_hash_key > s.range.ending_hash_key) {
    return r->Corrupt("bad index or hash key range");
  }
  s.index = static_cast<uint32_t>(*index);
  s.created_ms = *created;
  s.parent = r->Get("parent");
  s.adjacent = r->Get("adjacent");
  return s;
}

inline std::string EncodeStoredStream(const StoredStream& s) {
  MetaWriter w;
  w.Add("kinlet-stream", 1);
  w.Add("tag", s.tag);
  w.Add("name", s.name);
  w.Add("region", s.region);
  w.Add("account_id", s.account_id);
  w.Add("created_ms", s.created_ms);
  w.Add("retention_ms", s.retention_ms);
  w.Add("expired_floor_ms", s.expired_floor_ms);
  w.Add("mode", s.mode == StreamMode::kOnDemand ? "ON_DEMAND" : "PROVISIONED");
  for (const StoredConsumer& c : s.consumers) {
    w.Add("consumer", absl::StrCat(c.created_ms, " ", c.name));
  }
  for (const auto& [key, value] : s.tags) {
    w.Add("tag_key", key);
    w.Add("tag_value", value);
  }
  w.Add("encryption", EncryptionTypeName(s.encryption));
  w.Add("key_id", s.key_id);
  w.Add("payload_kind", s.payload_kind);
  w.Add("payload_size", static_cast<int64_t>(s.payload_size));
  return std::move(w).Finish();
}

inline absl::StatusOr<StoredStream> DecodeStoredStream(std::string_view text,
                                                       const std::string& path) {
  absl::StatusOr<MetaReader> r = MetaReader::Parse(text, path);
  if (!r.ok()) return r.status();
  StoredStream s;
  absl::StatusOr<int64_t> tag = r->NeedInt("tag");
  absl::StatusOr<int64_t> created = r->NeedInt("created_ms");
  absl::StatusOr<int64_t> retention = r->NeedInt("retention_ms");
  absl::StatusOr<int64_t> floor = r->NeedInt("expired_floor_ms");
  absl::StatusOr<int64_t> kind = r->NeedInt("payload_kind");
  absl::StatusOr<int64_t> size = r->NeedInt("payload_size");
  absl::StatusOr<std::string> name = r->Need("name");
  absl::StatusOr<std::string> mode = r->Need("mode");
  for (const absl::Status& st : {tag.status(), created.status(), retention.status(), floor.status(),
                                 kind.status(), size.status(), name.status(), mode.status()}) {
    if (!st.ok()) return st;
  }
  if (*tag <= 0 || *tag > UINT32_MAX || *retention <= 0 || *size < 0) {
    return r->Corrupt("bad tag, retention or payload size");
  }
  s.tag = static_cast<uint32_t>(*tag);
  s.name = *name;
  s.region = r->Get("region").value_or("us-east-1");
  s.account_id = r->Get("account_id").value_or("000000000000");
  s.created_ms = *created;
  s.retention_ms = *retention;
  s.expired_floor_ms = *floor;
  s.mode = *mode == "ON_DEMAND" ? StreamMode::kOnDemand : StreamMode::kProvisioned;
  s.encryption = r->Get("encryption") == std::optional<std::string>("KMS") ? EncryptionType::kKms
                                                                           : EncryptionType::kNone;
  s.key_id = r->Get("key_id").value_or("");
  s.payload_kind = static_cast<int>(*kind);
  s.payload_size = static_cast<size_t>(*size);
  std::optional<std::string> tag_key;
  for (const auto& [k, v] : r->lines()) {
    if (k == "tag_key") tag_key = v;
    if (k == "tag_value") {
      if (!tag_key) return r->Corrupt("a tag value without its key");
      s.tags[*tag_key] = v;
      tag_key.reset();
    }
    if (k != "consumer") continue;
    const size_t space = v.find(' ');
    StoredConsumer c;
    if (space == std::string::npos || !absl::SimpleAtoi(v.substr(0, space), &c.created_ms)) {
      return r->Corrupt("bad consumer");
    }
    c.name = v.substr(space + 1);
    s.consumers.push_back(std::move(c));
  }
  return s;
}

// A durable stream's directory (see the top of this file).
class StreamStore {
 public:
  // A shard found on open, with its log.
  struct OpenedShard {
    StoredShard shard;
    AttachedLog log;
    // Filled by the lineage check on open (DurableStreamOps): closed by a
    // reshard at closed_ms, reporting `children`.
    bool closed = false;
    int64_t closed_ms = 0;
    std::vector<ChildShard> children;
  };

  // Takes options.directory (created if missing) for a new stream, whose
  // stream.meta the caller then saves (SaveStream). ResourceInUseException if
  // the directory is open elsewhere or already holds a stream;
  // StorageFailureException if it cannot be written.
  static absl::StatusOr<std::unique_ptr<StreamStore>> Create(const StorageOptions& options) {
    absl::StatusOr<storage::detail::DirectoryLock> lock =
        storage::detail::DirectoryLock::Acquire(options.directory);
    if (!lock.ok()) return lock.status();
    std::unique_ptr<StreamStore> store(new StreamStore(options, *std::move(lock)));
    std::error_code ec;
    if (std::filesystem::exists(store->StreamMetaPath(), ec)) {
      return ResourceInUse(absl::StrCat("Directory ", options.directory,
                                        " already holds a stream: open it with Stream::Open."));
    }
    std::filesystem::create_directories(store->ShardsPath(), ec);
    if (ec) {
      return StorageFailure(
          absl::StrCat("Cannot create ", store->ShardsPath(), ": ", ec.message()));
    }
    return store;
  }

  // Opens the stream in options.directory: its StoredStream and every shard
  // with its recovered log (in index order). ResourceNotFoundException if the
  // directory holds no stream; ResourceInUseException if it is open
  // elsewhere; DataLossException for unreadable metadata.
  static absl::StatusOr<std::unique_ptr<StreamStore>> Open(const StorageOptions& options,
                                                           size_t max_record_bytes,
                                                           StoredStream* stream,
                                                           std::vector<OpenedShard>* shards) {
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(options.directory) / "stream.meta", ec)) {
      return ResourceNotFound(
          absl::StrCat("Directory ", options.directory, " holds no kinlet stream."));
    }
    absl::StatusOr<storage::detail::DirectoryLock> lock =
        storage::detail::DirectoryLock::Acquire(options.directory);
    if (!lock.ok()) return lock.status();
    std::unique_ptr<StreamStore> store(new StreamStore(options, *std::move(lock)));
    absl::StatusOr<std::string> text = storage::detail::ReadFile(store->StreamMetaPath());
    if (!text.ok()) return text.status();
    absl::StatusOr<StoredStream> decoded = DecodeStoredStream(*text, store->StreamMetaPath());
    if (!decoded.ok()) return decoded.status();
    *stream = *std::move(decoded);
    std::map<uint32_t, StoredShard> found;
    for (const auto& entry : std::filesystem::directory_iterator(store->ShardsPath(), ec)) {
      const std::string meta = (entry.path() / "shard.meta").string();
      absl::StatusOr<std::string> shard_text = storage::detail::ReadFile(meta);
      absl::StatusOr<StoredShard> shard = shard_text.ok()
                                              ? DecodeStoredShard(*shard_text, meta)
                                              : absl::StatusOr<StoredShard>(shard_text.status());
      if (!shard.ok()) {
        // A shard whose creation did not finish: nothing was ever routed to it.
        store->notes_.push_back(
            absl::StrCat("ignored ", entry.path().string(), ": ", shard.status().message()));
        continue;
      }
      found.emplace(shard->index, *std::move(shard));
    }
    if (ec) {
      return StorageFailure(absl::StrCat("Cannot list ", store->ShardsPath(), ": ", ec.message()));
    }
    for (auto& [index, shard] : found) {
      OpenedShard opened;
      opened.shard = shard;
      opened.log = store->OpenLog(shard, max_record_bytes, /*create=*/false);
      shards->push_back(std::move(opened));
    }
    return store;
  }

  // Creates shard `shard`'s directory, shard.meta and empty log. On failure
  // the returned log is null with the error: the shard then refuses writes.
  AttachedLog CreateShardLog(const StoredShard& shard, size_t max_record_bytes) {
    return OpenLog(shard, max_record_bytes, /*create=*/true);
  }

  absl::Status SaveStream(const StoredStream& stream) {
    return storage::detail::WriteFileAtomically(StreamMetaPath(), EncodeStoredStream(stream),
                                                options_.disk_faults);
  }

  // Deletes a shard's files (the shard was deleted: closed, all past retention).
  void RemoveShard(uint32_t index) {
    absl::Status s = storage::ShardLog::Remove(ShardPath(index));
    if (!s.ok()) notes_.push_back(std::string(s.message()));
  }

  const StorageOptions& options() const { return options_; }
  // The key new shards encrypt with (empty: none); see SetEncryptionLocked.
  void set_key_id(std::string key_id) { key_id_ = std::move(key_id); }
  const std::string& key_id() const { return key_id_; }
  // What opening found and did (ignored files, torn tails cut, lost ranges).
  const std::vector<std::string>& notes() const { return notes_; }
  void AddNote(std::string note) { notes_.push_back(std::move(note)); }

  std::string ShardPath(uint32_t index) const {
    return (std::filesystem::path(ShardsPath()) / ShardIdFor(index)).string();
  }

 private:
  StreamStore(const StorageOptions& options, storage::detail::DirectoryLock lock)
      : options_(options), lock_(std::move(lock)) {}

  std::string StreamMetaPath() const {
    return (std::filesystem::path(options_.directory) / "stream.meta").string();
  }
  std::string ShardsPath() const {
    return (std::filesystem::path(options_.directory) / "shards").string();
  }

  AttachedLog OpenLog(const StoredShard& shard, size_t max_record_bytes, bool create) {
    AttachedLog out;
    out.durable = true;
    out.sync = options_.sync;
    const std::string dir = ShardPath(shard.index);
    if (create) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) {
        out.status = StorageFailure(absl::StrCat("Cannot create ", dir, ": ", ec.message()));
        return out;
      }
      // shard.meta first: a directory without it is an unfinished creation.
      absl::Status s =
          storage::detail::WriteFileAtomically((std::filesystem::path(dir) / "shard.meta").string(),
                                               EncodeStoredShard(shard), options_.disk_faults);
      if (!s.ok()) {
        out.status = s;
        return out;
      }
    }
    storage::ShardLogOptions log_options;
    log_options.directory = dir;
    // At least 1 MiB, and room for one record of the maximum size with its
    // framing, the segment header and a cipher's overhead (rounded to MiB).
    const size_t floor_bytes = max_record_bytes + (size_t{64} << 10);
    log_options.segment_bytes =
        (std::max({options_.segment_bytes, floor_bytes, size_t{1} << 20}) + (size_t{1} << 20) - 1) &
        ~((size_t{1} << 20) - 1);
    log_options.sync = options_.sync;
    log_options.sync_interval = options_.sync_interval;
    log_options.max_record_bytes = max_record_bytes;
    log_options.faults = options_.disk_faults;
    // Encrypted segments are read (and a reopened log's last segment is
    // continued) with keys the provider unwraps.
    log_options.key_provider = options_.key_provider;
    log_options.cipher_factory = options_.cipher_factory;
    storage::RecoveryReport report;
    absl::StatusOr<std::unique_ptr<storage::ShardLog>> log =
        storage::ShardLog::Open(std::move(log_options), 0, &report);
    if (!log.ok()) {
      out.status = log.status();
      notes_.push_back(absl::StrCat(ShardIdFor(shard.index), ": ", log.status().message()));
      return out;
    }
    for (std::string& note : report.notes) {
      notes_.push_back(absl::StrCat(ShardIdFor(shard.index), ": ", note));
    }
    out.log = *std::move(log);
    if (create && !key_id_.empty()) {
      absl::Status s =
          out.log->SetEncryption(options_.key_provider, options_.cipher_factory, key_id_);
      if (!s.ok()) {
        out.log.reset();
        out.status = s;
      }
    }
    return out;
  }

  const StorageOptions options_;
  storage::detail::DirectoryLock lock_;
  std::vector<std::string> notes_;
  std::string key_id_;
};

}  // namespace kinlet::detail
