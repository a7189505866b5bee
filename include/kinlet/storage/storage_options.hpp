// kinlet/storage/storage_options.hpp: where a stream keeps its records (in
// memory, or durable in a directory) and what a put's acknowledgement promises.
//
// A durable stream writes every record into its shard's segment files (see
// storage/shard_log.hpp) before the put returns, so a killed process (SIGKILL,
// crash, abort) loses nothing acknowledged under every SyncPolicy: the record
// is in the kernel's page cache. What survives a power loss or a kernel crash
// is the SyncPolicy's choice:
//   kEveryPut  fsync before acknowledging. Concurrent writers of a shard share
//              one fsync (group commit): a put waits for the next shared fsync
//              that covers it. Nothing acknowledged is lost.
//   kInterval  fsync every `sync_interval` from a background thread. On power
//              loss the records acknowledged in the last `sync_interval` (plus
//              the fsync's own duration) may be lost.
//   kNone      the kernel writes back when it chooses (on Linux usually within
//              30 s). On power loss an unbounded tail may be lost.
// Thread safety: plain values; not synchronised.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"

namespace kinlet {

class KeyProvider;
class CipherFactory;

enum class StorageKind {
  kMemory,   // the ring only (the default): a process exit loses the stream
  kDurable,  // segment files in `directory`, the ring as their cache
};

enum class SyncPolicy { kNone, kInterval, kEveryPut };

// The disk operations a fault hook can fail (see StorageOptions::disk_faults).
enum class DiskOp {
  kCreate,    // creating a file (segment, index, metadata)
  kAllocate,  // reserving a new segment's blocks (posix_fallocate)
  kWrite,     // writing an index or metadata file
  kSync,      // fsync / fdatasync / msync
  kRename,    // replacing metadata atomically
};

// Returns 0 to let `op` on `path` proceed, or an errno value (ENOSPC, EIO, ...)
// that the operation then fails with, exactly as if the system call had.
// Called from the writer of a shard (under its lock) and from the interval
// syncer; must be thread-safe.
using DiskFaultHook = std::function<int(DiskOp op, const std::string& path)>;

struct StorageOptions {
  StorageKind kind = StorageKind::kMemory;
  // kDurable: the stream's directory (created if missing; one stream per
  // directory; locked against a second opener, in this or another process).
  std::string directory;
  SyncPolicy sync = SyncPolicy::kNone;
  // kInterval: how often dirty shards are fsynced.
  absl::Duration sync_interval = absl::Milliseconds(100);
  // Size of each segment file, raised to at least one record of the
  // stream's maximum size plus 64 KiB, and rounded up to whole MiB. Retention
  // deletes whole segments, so records live up to one segment longer than the
  // retention period on disk (they are not readable past it).
  size_t segment_bytes = size_t{64} << 20;
  // Encryption at rest: supplies and unwraps data keys (a KMS), and the
  // cipher sealing records. Both are needed before StartStreamEncryption;
  // both must outlive every stream using them and be thread-safe.
  std::shared_ptr<KeyProvider> key_provider;
  std::shared_ptr<CipherFactory> cipher_factory;
  // Tests: fails chosen disk operations (empty: none).
  DiskFaultHook disk_faults;

  bool durable() const { return kind == StorageKind::kDurable; }
};

}  // namespace kinlet
