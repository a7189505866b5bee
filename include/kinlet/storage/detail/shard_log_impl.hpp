// kinlet/storage/detail/shard_log_impl.hpp: ShardLog's out-of-line members
// (open and recovery, rolling segments, encryption, group commit). Included by
// storage/shard_log.hpp; not a header of its own.
#pragma once

#include "kinlet/storage/shard_log.hpp"

namespace kinlet::storage {

inline absl::Status ShardLog::ValidateOptions(ShardLogOptions* o) {
  if (o->directory.empty()) return InvalidArgument("ShardLogOptions::directory is empty");
  if (o->max_record_bytes == 0 || o->max_record_bytes > (size_t{1} << 30)) {
    return InvalidArgument("ShardLogOptions::max_record_bytes must be in [1, 1 GiB]");
  }
  o->segment_bytes = detail::AlignUp(o->segment_bytes, detail::kHeaderBytes);
  const size_t need = detail::kHeaderBytes + detail::FrameBytes(o->max_record_bytes);
  if (o->segment_bytes < need) {
    return InvalidArgument(absl::StrCat("ShardLogOptions::segment_bytes ", o->segment_bytes,
                                        " cannot hold a record of max_record_bytes ",
                                        o->max_record_bytes, " (needs at least ", need, ")"));
  }
  if (o->sync == SyncPolicy::kInterval && o->sync_interval <= absl::ZeroDuration()) {
    return InvalidArgument("ShardLogOptions::sync_interval must be positive");
  }
  return absl::OkStatus();
}

inline absl::StatusOr<std::unique_ptr<ShardLog>> ShardLog::Open(ShardLogOptions options,
                                                                uint64_t first_position,
                                                                RecoveryReport* report) {
  KINLET_RETURN_IF_ERROR(ValidateOptions(&options));
  if (first_position >= detail::kMaxPosition) return InvalidArgument("first_position too large");
  if (int err = detail::InjectedErrno(options.faults, DiskOp::kCreate, options.directory)) {
    return detail::ErrnoFailure("create directory", options.directory, err);
  }
  KINLET_RETURN_IF_ERROR(detail::CreateDirectories(options.directory));
  std::unique_ptr<ShardLog> log(new ShardLog(std::move(options)));
  RecoveryReport local;
  KINLET_RETURN_IF_ERROR(log->Recover(first_position, report != nullptr ? report : &local));
  log->scratch_.reserve(log->options_.max_record_bytes);
  if (log->options_.sync == SyncPolicy::kInterval) {
    detail::IntervalSyncer::Instance().Register(log.get(), log->options_.sync_interval);
  }
  return log;
}

inline absl::Status ShardLog::Recover(uint64_t first_position, RecoveryReport* report) {
  const std::string& dir = options_.directory;
  // The segment files, by first position; leftovers of interrupted creations go.
  std::vector<std::pair<uint64_t, std::string>> files;
  {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      uint64_t first = 0;
      if (detail::ParseSegmentFileName(name, &first)) {
        files.emplace_back(first, name);
      } else if (absl::EndsWith(name, ".tmp")) {
        (void)detail::RemoveFile(dir + "/" + name);
      }
    }
    if (ec) return detail::ErrnoFailure("list directory", dir, ec.value());
  }
  std::sort(files.begin(), files.end());

  std::vector<std::shared_ptr<detail::Segment>> segs;
  uint64_t floor = first_position;  // where positions may restart after set-aside segments
  bool last_set_aside = false;
  for (size_t i = 0; i < files.size(); ++i) {
    const bool last = i + 1 == files.size();
    const std::string path = dir + "/" + files[i].second;
    std::string bad;
    auto opened = detail::Segment::OpenExisting(path, last, options_.key_provider,
                                                options_.cipher_factory, &bad);
    if (!opened.ok()) return opened.status();
    std::shared_ptr<detail::Segment> seg = std::move(*opened);
    if (seg != nullptr && seg->first_position() != files[i].first) {
      bad = "first position differs from its name";
      seg.reset();
    }
    if (seg == nullptr) {
      report->notes.push_back(absl::StrCat("segment ", files[i].second, ": invalid header (", bad,
                                           "), set aside as ", files[i].second, ".corrupt"));
      KINLET_RETURN_IF_ERROR(detail::RenameFile(path, path + ".corrupt", options_.faults));
      floor = std::max(floor, files[i].first);
      last_set_aside = last;
      continue;
    }
    // A sealed segment's index spares the scan; so does the last one's after a Seal(),
    // if nothing was written past it.
    bool adopted = false;
    auto idx = detail::ReadFile(seg->index_path());
    if (idx.ok()) {
      detail::IndexFile x;
      std::string why =
          detail::DecodeIndexFile(*idx, seg->first_position(), seg->capacity(), &x);
      if (why.empty()) {
        adopted = seg->AdoptIndex(x, /*check_tail=*/last);
        if (!adopted) why = "records past its end";
      }
      if (!adopted) {
        report->notes.push_back(absl::StrCat("segment ", files[i].second, ": index refused (",
                                             why, "), segment scanned"));
      }
    } else if (!last) {
      report->notes.push_back(
          absl::StrCat("segment ", files[i].second, ": no index file, segment scanned"));
    }
    if (adopted) {
      report->lost.insert(report->lost.end(), seg->lost().begin(), seg->lost().end());
    } else {
      detail::ScanResult r = seg->Scan(/*writable=*/last);
      if (last) {
        report->truncated_bytes += r.truncated_bytes;
        if (r.truncated_bytes > 0) {
          auto s = seg->Sync(options_.faults);
          if (!s.ok()) return s;
        }
      }
      report->lost.insert(report->lost.end(), r.lost.begin(), r.lost.end());
      for (auto& n : r.notes) report->notes.push_back(std::move(n));
      if (!last) (void)WriteIndex(*seg);  // the next open need not scan it again
    }
    // Positions missing between segments (a file deleted or set aside).
    const uint64_t prev_end = segs.empty() ? seg->first_position() : segs.back()->next_position();
    if (!segs.empty() && seg->first_position() > prev_end) {
      report->lost.emplace_back(prev_end, seg->first_position());
      report->notes.push_back(absl::StrCat("positions [", prev_end, ", ", seg->first_position(),
                                           ") missing before segment ", files[i].second));
    } else if (!segs.empty() && seg->first_position() < prev_end) {
      report->notes.push_back(absl::StrCat("segment ", files[i].second, " starts at ",
                                           seg->first_position(), " below the previous one's end ",
                                           prev_end, "; the overlap is read from this one"));
    }
    report->records += seg->records();
    segs.push_back(std::move(seg));
  }

  uint64_t end = first_position;
  if (!segs.empty()) {
    end = segs.back()->next_position();
    if (last_set_aside && floor > end) {
      report->lost.emplace_back(end, floor);
      report->notes.push_back(absl::StrCat("positions [", end, ", ", floor,
                                           ") lost with a set-aside segment; records after ",
                                           floor, " in it are lost too (count unknown)"));
      end = floor;
    }
  } else {
    end = std::max(first_position, floor);
  }
  std::sort(report->lost.begin(), report->lost.end());
  lost_ = report->lost;
  end_.store(end, std::memory_order_release);
  begin_.store(segs.empty() ? end : segs.front()->first_position(), std::memory_order_release);
  {
    kinlet::detail::MutexLock l(&list_mu_);
    segments_ = segs;
  }
  if (!segs.empty()) last_arrival_ms_ = segs.back()->last_arrival();
  if (!segs.empty() && !last_set_aside) {
    current_ = segs.back();
    synced_.store(current_->first_position(), std::memory_order_release);
    if (current_->encrypted()) {  // go on encrypting under the same master key
      key_id_ = current_->header().key_id;
      provider_ = options_.key_provider;
      factory_ = options_.cipher_factory;
    }
    return absl::OkStatus();
  }
  // No writable segment: start one at End().
  synced_.store(end, std::memory_order_release);
  return Roll(std::nullopt, nullptr);
}

inline absl::Status ShardLog::Roll(std::optional<DataKey> key,
                                   std::unique_ptr<RecordCipher> cipher) {
  const std::shared_ptr<detail::Segment> old = current_;
  detail::SegmentHeader header;
  header.first_position = end_.load(std::memory_order_relaxed);
  header.created_ms = absl::ToUnixMillis(absl::Now());
  header.segment_bytes = options_.segment_bytes;
  if (!key_id_.empty()) {
    if (!key.has_value()) {
      if (provider_ == nullptr || factory_ == nullptr) {
        return KmsError(ErrorCode::kKmsInvalidState,
                        absl::StrCat("the log in ", options_.directory, " encrypts under key ",
                                     key_id_, " but has no KeyProvider and CipherFactory"));
      }
      auto generated = provider_->GenerateDataKey(key_id_);
      if (!generated.ok()) return generated.status();
      auto made = factory_->Make(generated->plaintext);
      if (!made.ok()) return made.status();
      key = std::move(*generated);
      cipher = std::move(*made);
    }
    header.encrypted = true;
    header.key_id = key_id_;
    header.key_version = key->key_version;
    header.wrapped_key = key->wrapped;
    header.cipher_overhead = static_cast<uint32_t>(cipher->Overhead());
  } else {
    cipher.reset();
  }
  bool renamed = false;
  auto created =
      detail::Segment::Create(options_.directory, header, options_.segment_bytes, options_.faults,
                              provider_, factory_, std::move(cipher), &renamed);
  if (!created.ok()) {
    // Before the rename nothing changed (a later append may succeed); after it the
    // directory's fsync failed: sticky, as every failed fsync.
    if (renamed) Fail(created.status());
    pending_roll_ = true;
    return created.status();
  }
  std::shared_ptr<detail::Segment> seg = std::move(*created);
  if (old != nullptr && old->records() > 0) {
    if (absl::Status s = old->Sync(options_.faults); !s.ok()) {
      Fail(s);
      return s;
    }
    (void)WriteIndex(*old);  // best effort: without it the next open scans the segment
    old->CloseFile();
  }
  {
    kinlet::detail::MutexLock l(&list_mu_);
    if (old != nullptr && old->records() == 0 && !segments_.empty() && segments_.back() == old) {
      segments_.back() = seg;  // the empty segment's file was replaced by the rename
    } else {
      segments_.push_back(seg);
    }
  }
  current_ = std::move(seg);
  pending_roll_ = false;
  return absl::OkStatus();
}

inline absl::Status ShardLog::SetEncryption(std::shared_ptr<KeyProvider> provider,
                                            std::shared_ptr<CipherFactory> factory,
                                            std::string key_id) {
  if (failed_.load(std::memory_order_acquire)) return health();
  if (sealed_) return ResourceInUse("the shard log is sealed (shard closed)");
  if (key_id.empty()) {
    if (key_id_.empty()) return absl::OkStatus();  // already plaintext
    key_id_.clear();
    return Roll(std::nullopt, nullptr);
  }
  if (provider == nullptr || factory == nullptr) {
    return InvalidArgument("SetEncryption needs a KeyProvider and a CipherFactory");
  }
  if (key_id.size() > detail::kMaxKeyIdBytes) return InvalidArgument("key_id over 1024 bytes");
  KINLET_RETURN_IF_ERROR(provider->CheckKey(key_id));
  auto key = provider->GenerateDataKey(key_id);
  if (!key.ok()) return key.status();
  if (key->wrapped.size() > detail::kMaxWrappedKeyBytes) {
    return InvalidArgument("the KeyProvider's wrapped data key is over 2048 bytes");
  }
  auto cipher = factory->Make(key->plaintext);
  if (!cipher.ok()) return cipher.status();
  const size_t need = detail::kHeaderBytes +
                      detail::FrameBytes(options_.max_record_bytes + (*cipher)->Overhead());
  if (options_.segment_bytes < need) {
    return InvalidArgument(absl::StrCat("segment_bytes ", options_.segment_bytes,
                                        " cannot hold an encrypted record of max_record_bytes"));
  }
  provider_ = std::move(provider);
  factory_ = std::move(factory);
  key_id_ = std::move(key_id);
  return Roll(std::move(*key), std::move(*cipher));
}

inline absl::Status ShardLog::SyncThrough(uint64_t end) {
  for (;;) {
    if (synced_.load(std::memory_order_acquire) >= end) return health();
    std::unique_lock<std::mutex> l(sync_mu_);
    while (syncing_) sync_cv_.wait(l);  // a leader is syncing: share its fsync
    if (absl::Status h = health(); !h.ok()) return h;
    const uint64_t from = synced_.load(std::memory_order_relaxed);
    if (from >= end) return absl::OkStatus();
    const uint64_t target = End();
    if (from >= target) return absl::OkStatus();  // `end` is past End(): all there is is synced
    syncing_ = true;  // this caller leads
    l.unlock();
    absl::InlinedVector<std::shared_ptr<detail::Segment>, 4> dirty;
    {
      kinlet::detail::MutexLock ll(&list_mu_);
      for (size_t i = 0; i < segments_.size(); ++i) {
        const bool has_next = i + 1 < segments_.size();
        if (has_next && segments_[i + 1]->first_position() <= from) continue;
        if (segments_[i]->first_position() >= target) break;
        dirty.push_back(segments_[i]);
      }
    }
    absl::Status status;
    for (const auto& seg : dirty) {
      status = seg->Sync(options_.faults);
      if (!status.ok()) break;
    }
    l.lock();
    syncing_ = false;
    if (status.ok()) {
      if (target > synced_.load(std::memory_order_relaxed)) {
        synced_.store(target, std::memory_order_release);  // pairs with the fast path's acquire
      }
    } else {
      Fail(status);
    }
    sync_cv_.notify_all();
    if (!status.ok()) return status;
  }
}

}  // namespace kinlet::storage
