// kinlet/remote/sqlite_checkpoint_store.hpp: a CheckpointStore in an SQLite
// database, shared by the workers of several processes on one host.
//
// The contract is CheckpointStore's (kinlet/checkpoint_store.hpp): the lease
// table of one application, writes conditional on the lease counter
// (ConditionalCheckFailedException when another worker wrote the lease since,
// ResourceNotFoundException when it is gone), CreateLeaseIfNotExists that
// changes nothing when the key exists, DeleteLease conditional as the KCL's.
// Processes coordinate through SQLite's file locks: each conditional write is
// one IMMEDIATE transaction (check the counter, then write), so two workers in
// any processes can never both succeed against the same counter.
//
// Layout: one table (options.table, default "kinlet_leases") with the columns
// lease_key (primary key), owner, lease_counter, checkpoint, last_renewal_ms,
// owner_switches_since_checkpoint, parent_shard_ids (comma-separated); several
// applications may share one file with a table each. The database runs in
// WAL mode (readers never block the writer) with synchronous=FULL and a busy
// timeout (writers queue behind one another for up to busy_timeout).
//
// Durability: a write that returned OK is committed and synced: neither a
// process crash nor a machine crash loses it. A crash during a write leaves it
// undone (SQLite's journal): the caller never saw OK for it. WAL mode needs a
// local file system (not NFS): all processes must be on one host.
//
// Errors of every call: UnavailableError "database is locked/busy" when the
// lock could not be had within busy_timeout (retryable; nothing changed);
// InternalFailureException for any other SQLite error (the message carries
// SQLite's). Writes also: InvalidArgumentException for an empty lease key or
// a parent shard id that is empty or contains a comma (nothing written).
//
// Thread safety: every call is thread-safe (one connection per store, used
// under a mutex); share one store between the workers of a process, or open
// one per worker — both work. A store object must not be used in a child
// after fork(): open a new one there.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kinlet/checkpoint_store.hpp"
#include "kinlet/detail/mutex.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace kinlet::remote {

struct SqliteCheckpointStoreOptions {
  // The table holding this application's leases: letters, digits and '_',
  // not starting with a digit, at most 64 characters.
  std::string table = "kinlet_leases";
  // How long a call waits for another connection's write lock.
  std::chrono::milliseconds busy_timeout{5000};
};

class SqliteCheckpointStore : public CheckpointStore {
 public:
  // Opens (creating if needed) the database at `path` and the table. Errors:
  // InvalidArgumentException for a bad table name; InternalFailureException
  // when the file cannot be opened or is not an SQLite database, or WAL mode
  // cannot be set; Unavailable when it stays locked beyond busy_timeout.
  static absl::StatusOr<std::unique_ptr<SqliteCheckpointStore>> Open(
      const std::string& path, SqliteCheckpointStoreOptions options = {});

  ~SqliteCheckpointStore() override;
  SqliteCheckpointStore(const SqliteCheckpointStore&) = delete;
  SqliteCheckpointStore& operator=(const SqliteCheckpointStore&) = delete;

  absl::StatusOr<std::vector<Lease>> ListLeases() override;
  absl::Status CreateLeaseIfNotExists(const Lease& lease) override;
  absl::Status UpdateLease(const Lease& lease, uint64_t expected_counter) override;
  absl::Status DeleteLease(std::string_view lease_key, uint64_t expected_counter) override;

  const std::string& path() const { return path_; }

 private:
  struct Statements;
  SqliteCheckpointStore(std::string path, SqliteCheckpointStoreOptions options);

  absl::Status Init();
  // Runs `body` in an IMMEDIATE transaction: commits when it returns OK,
  // rolls back otherwise.
  template <typename Body>
  absl::Status InTransaction(Body body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks the stored counter of `key`: ResourceNotFound / ConditionalCheckFailed.
  absl::Status CheckCounter(std::string_view key, uint64_t expected_counter)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(std::string_view what) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const SqliteCheckpointStoreOptions options_;
  // The connection and its prepared statements: used only under mu_ (sqlite's
  // own mutexes are off: SQLITE_OPEN_NOMUTEX).
  kinlet::detail::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::unique_ptr<Statements> statements_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kinlet::remote
