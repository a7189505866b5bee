// The SQLite lease table (kinlet/remote/sqlite_checkpoint_store.hpp).
#include "kinlet/remote/sqlite_checkpoint_store.hpp"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"

namespace kinlet::remote {
namespace {

struct StatementDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

bool ValidTableName(std::string_view name) {
  if (name.empty() || name.size() > 64 || absl::ascii_isdigit(static_cast<unsigned char>(name[0])))
    return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

absl::Status Validate(const Lease& lease) {
  if (lease.lease_key.empty()) return InvalidArgument("A lease key must not be empty");
  for (const std::string& parent : lease.parent_shard_ids) {
    if (parent.empty() || parent.find(',') != std::string::npos) {
      return InvalidArgument(
          absl::StrCat("Parent shard id '", parent, "' is empty or contains a comma"));
    }
  }
  return absl::OkStatus();
}

void BindText(sqlite3_stmt* s, int index, std::string_view text) {
  sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}
void BindU64(sqlite3_stmt* s, int index, uint64_t value) {
  sqlite3_bind_int64(s, index, static_cast<sqlite3_int64>(value));  // bit pattern kept
}
std::string ColumnText(sqlite3_stmt* s, int index) {
  const unsigned char* text = sqlite3_column_text(s, index);
  return text == nullptr ? std::string()
                         : std::string(reinterpret_cast<const char*>(text),
                                       static_cast<size_t>(sqlite3_column_bytes(s, index)));
}

// Resets a statement (and clears its bindings) when it goes out of scope.
class Use {
 public:
  explicit Use(sqlite3_stmt* s) : s_(s) {}
  ~Use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

}  // namespace

struct SqliteCheckpointStore::Statements {
  Statement begin, commit, rollback, list, counter, insert, update, remove;
};

SqliteCheckpointStore::SqliteCheckpointStore(std::string path, SqliteCheckpointStoreOptions options)
    : path_(std::move(path)), options_(std::move(options)) {}

SqliteCheckpointStore::~SqliteCheckpointStore() {
  kinlet::detail::MutexLock lock(&mu_);
  statements_.reset();  // finalized before the connection closes
  if (db_ != nullptr) sqlite3_close(db_);
}

absl::StatusOr<std::unique_ptr<SqliteCheckpointStore>> SqliteCheckpointStore::Open(
    const std::string& path, SqliteCheckpointStoreOptions options) {
  if (!ValidTableName(options.table)) {
    return InvalidArgument(absl::StrCat("SqliteCheckpointStore: bad table name '", options.table,
                                        "' (letters, digits and '_', at most 64)"));
  }
  std::unique_ptr<SqliteCheckpointStore> store(new SqliteCheckpointStore(path, std::move(options)));
  if (absl::Status s = store->Init(); !s.ok()) return s;
  return store;
}

absl::Status SqliteCheckpointStore::Error(std::string_view what) const {
  const int code = db_ == nullptr ? SQLITE_CANTOPEN : sqlite3_extended_errcode(db_);
  const std::string message = absl::StrCat(
      "Checkpoint database ", path_, ": ", kinlet::detail::ToAbsl(what), ": ",
      db_ == nullptr ? "cannot open" : sqlite3_errmsg(db_), " (SQLite code ", code, ")");
  if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) {
    return absl::UnavailableError(message);
  }
  return InternalFailure(message);
}

absl::Status SqliteCheckpointStore::Init() {
  kinlet::detail::MutexLock lock(&mu_);
  const int rc = sqlite3_open_v2(
      path_.c_str(), &db_,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  if (rc != SQLITE_OK) return Error("open");
  sqlite3_busy_timeout(db_, static_cast<int>(options_.busy_timeout.count()));
  // journal_mode answers the mode now in force.
  {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &raw, nullptr) != SQLITE_OK)
      return Error("PRAGMA journal_mode");
    Statement mode(raw);
    if (sqlite3_step(mode.get()) != SQLITE_ROW) return Error("PRAGMA journal_mode");
    if (!absl::EqualsIgnoreCase(ColumnText(mode.get(), 0), "wal")) {
      return InternalFailure(absl::StrCat("Checkpoint database ", path_,
                                          ": cannot use WAL mode (journal mode is ",
                                          ColumnText(mode.get(), 0), ")"));
    }
  }
  const std::string& t = options_.table;
  const std::string setup = absl::StrCat(
      "PRAGMA synchronous=FULL;"
      "CREATE TABLE IF NOT EXISTS ",
      t,
      " (lease_key TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL,"
      " lease_counter INTEGER NOT NULL, checkpoint TEXT NOT NULL,"
      " last_renewal_ms INTEGER NOT NULL, owner_switches_since_checkpoint INTEGER NOT NULL,"
      " parent_shard_ids TEXT NOT NULL) WITHOUT ROWID;");
  char* message = nullptr;
  if (sqlite3_exec(db_, setup.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    sqlite3_free(message);
    return Error("create the lease table");
  }
  statements_ = std::make_unique<Statements>();
  constexpr const char* kColumns =
      "lease_key, owner, lease_counter, checkpoint, last_renewal_ms,"
      " owner_switches_since_checkpoint, parent_shard_ids";
  auto prepare = [&](Statement* out, const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    sqlite3_stmt* raw = nullptr;
    const int code =
        sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    out->reset(raw);
    return code == SQLITE_OK;
  };
  Statements& s = *statements_;
  if (!prepare(&s.begin, "BEGIN IMMEDIATE") || !prepare(&s.commit, "COMMIT") ||
      !prepare(&s.rollback, "ROLLBACK") ||
      !prepare(&s.list, absl::StrCat("SELECT ", kColumns, " FROM ", t, " ORDER BY lease_key")) ||
      !prepare(&s.counter, absl::StrCat("SELECT lease_counter FROM ", t, " WHERE lease_key=?1")) ||
      !prepare(&s.insert, absl::StrCat("INSERT OR IGNORE INTO ", t, " (", kColumns,
                                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")) ||
      !prepare(&s.update, absl::StrCat("UPDATE ", t,
                                       " SET owner=?2, lease_counter=?3, checkpoint=?4,"
                                       " last_renewal_ms=?5, owner_switches_since_checkpoint=?6,"
                                       " parent_shard_ids=?7 WHERE lease_key=?1")) ||
      !prepare(&s.remove, absl::StrCat("DELETE FROM ", t, " WHERE lease_key=?1"))) {
    return Error("prepare a statement");
  }
  return absl::OkStatus();
}

template <typename Body>
absl::Status SqliteCheckpointStore::InTransaction(Body body) {
  {
    Use begin(statements_->begin.get());
    if (sqlite3_step(begin.get()) != SQLITE_DONE) return Error("begin a transaction");
  }
  absl::Status status = body();
  if (status.ok()) {
    Use commit(statements_->commit.get());
    if (sqlite3_step(commit.get()) == SQLITE_DONE) return absl::OkStatus();
    status = Error("commit");
  }
  Use rollback(statements_->rollback.get());
  if (sqlite3_get_autocommit(db_) == 0) sqlite3_step(rollback.get());
  return status;
}

absl::Status SqliteCheckpointStore::CheckCounter(std::string_view key, uint64_t expected_counter) {
  Use q(statements_->counter.get());
  BindText(q.get(), 1, key);
  const int rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE)
    return ResourceNotFound(absl::StrCat("No lease for ", kinlet::detail::ToAbsl(key)));
  if (rc != SQLITE_ROW) return Error("read a lease counter");
  const auto stored = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 0));
  if (stored != expected_counter) {
    return ConditionalCheckFailed(absl::StrCat("The conditional request failed: lease ",
                                               kinlet::detail::ToAbsl(key), " is at counter ",
                                               stored, ", not ", expected_counter));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Lease>> SqliteCheckpointStore::ListLeases() {
  kinlet::detail::MutexLock lock(&mu_);
  Use q(statements_->list.get());
  std::vector<Lease> leases;
  for (;;) {
    const int rc = sqlite3_step(q.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return Error("list the leases");
    Lease lease;
    lease.lease_key = ColumnText(q.get(), 0);
    lease.owner = ColumnText(q.get(), 1);
    lease.lease_counter = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 2));
    lease.checkpoint = ColumnText(q.get(), 3);
    lease.last_renewal_ms = sqlite3_column_int64(q.get(), 4);
    lease.owner_switches_since_checkpoint = static_cast<uint64_t>(sqlite3_column_int64(q.get(), 5));
    for (absl::string_view p : absl::StrSplit(ColumnText(q.get(), 6), ',', absl::SkipEmpty())) {
      lease.parent_shard_ids.emplace_back(p);
    }
    leases.push_back(std::move(lease));
  }
  return leases;
}

namespace {
void BindLease(sqlite3_stmt* s, const Lease& lease) {
  BindText(s, 1, lease.lease_key);
  BindText(s, 2, lease.owner);
  BindU64(s, 3, lease.lease_counter);
  BindText(s, 4, lease.checkpoint);
  sqlite3_bind_int64(s, 5, lease.last_renewal_ms);
  BindU64(s, 6, lease.owner_switches_since_checkpoint);
  BindText(s, 7, absl::StrJoin(lease.parent_shard_ids, ","));
}
}  // namespace

absl::Status SqliteCheckpointStore::CreateLeaseIfNotExists(const Lease& lease) {
  if (absl::Status s = Validate(lease); !s.ok()) return s;
  kinlet::detail::MutexLock lock(&mu_);
  Use insert(statements_->insert.get());
  BindLease(insert.get(), lease);
  if (sqlite3_step(insert.get()) != SQLITE_DONE) return Error("create a lease");
  return absl::OkStatus();
}

absl::Status SqliteCheckpointStore::UpdateLease(const Lease& lease, uint64_t expected_counter) {
  if (absl::Status s = Validate(lease); !s.ok()) return s;
  kinlet::detail::MutexLock lock(&mu_);
  return InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (absl::Status s = CheckCounter(lease.lease_key, expected_counter); !s.ok()) return s;
    Use update(statements_->update.get());
    BindLease(update.get(), lease);
    if (sqlite3_step(update.get()) != SQLITE_DONE) return Error("update a lease");
    return absl::OkStatus();
  });
}

absl::Status SqliteCheckpointStore::DeleteLease(std::string_view lease_key,
                                                uint64_t expected_counter) {
  kinlet::detail::MutexLock lock(&mu_);
  return InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (absl::Status s = CheckCounter(lease_key, expected_counter); !s.ok()) return s;
    Use remove(statements_->remove.get());
    BindText(remove.get(), 1, lease_key);
    if (sqlite3_step(remove.get()) != SQLITE_DONE) return Error("delete a lease");
    return absl::OkStatus();
  });
}

}  // namespace kinlet::remote
