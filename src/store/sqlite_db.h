// A thin RAII layer over the SQLite C API, for the SQLite store.
//
// SqliteDb owns one connection; Statement owns one prepared statement; Transaction
// rolls back unless committed. Errors come back as Status values whose message is
// SQLite's ("database is locked"); callers add their context.
//
// Thread-safety: none of these classes is thread-safe. A connection is opened in
// SQLite's multi-thread mode (no internal mutex): the owner must serialise every
// use of a SqliteDb and of the statements prepared on it (SqliteStore holds a mutex).
#ifndef SLUICE_STORE_SQLITE_DB_H_
#define SLUICE_STORE_SQLITE_DB_H_

#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sluice::sqlite {

// Maps a SQLite result code to a Status: busy/locked -> kBusy, not-a-database and
// corrupt -> kCorruption, constraint -> kInternal (our schema's constraints only
// fail on a bug), anything else -> kIoError. The message is `detail` if given,
// else SQLite's text for `rc`.
Status ErrorStatus(int rc, std::string_view detail = {});

// A prepared statement, reused across calls. Text and blobs are bound without a
// copy: REQUIRES that bound data outlives the statement's next Reset().
class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  bool prepared() const { return stmt_ != nullptr; }

  // Parameters are 1-based, as in SQL ("?1").
  void BindInt(int index, std::int64_t value);
  void BindText(int index, std::string_view text);
  // Binds NULL for an empty text: "" and NULL mean "none" in our schema.
  void BindTextOrNull(int index, std::string_view text);
  void BindNull(int index);

  // Runs one step: true when a row is ready; false when done, and then the
  // statement is reset (bindings kept) so that it can be bound and run again.
  Result<bool> Step();
  // Runs a statement to completion, ignoring any rows, and resets it (bindings kept).
  Status Run();

  // Columns are 0-based. Text stays valid until the next Step() or Reset().
  std::int64_t ColumnInt(int index) const;
  std::string_view ColumnText(int index) const;  // "" for NULL
  bool ColumnIsNull(int index) const;

  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  std::int64_t Changes() const;

  // Ends the current execution and clears the bindings, so that the statement
  // holds no lock and no pointer to the caller's data. Safe to call at any time;
  // needed before binding again when a Step() that returned a row was the last.
  void Reset();

 private:
  void KeepBindError(int rc);
  Status TakeBindError();

  sqlite3* db_ = nullptr;         // not owned
  sqlite3_stmt* stmt_ = nullptr;  // owned
  int bind_error_ = 0;            // the first failed bind's code since the last step
};

// Resets a statement when the scope ends, whatever path leaves it.
class ScopedReset {
 public:
  explicit ScopedReset(Statement& statement) : statement_(statement) {}
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;
  ~ScopedReset() { statement_.Reset(); }

 private:
  Statement& statement_;
};

// One connection to a database file.
class SqliteDb {
 public:
  struct OpenOptions {
    bool create_if_missing = true;  // else a missing file is kNotFound
    int busy_timeout_ms = 10000;    // how long a statement waits for a lock
  };

  // Opens the connection. The file is not read yet: SQLite reads lazily, so a file
  // that is not a database is only noticed by the first statement.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path,
                                                const OpenOptions& options);

  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb();

  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

  // Runs one or more SQL statements that return no rows we need.
  Status Exec(const std::string& sql);
  // Runs a statement that returns one text value (e.g. "PRAGMA journal_mode=WAL").
  Result<std::string> QueryText(const std::string& sql);
  // Prepares a statement meant to be cached and reused.
  Result<Statement> Prepare(std::string_view sql);

  // BEGIN IMMEDIATE: takes the write lock now, so that a transaction that reads then
  // writes cannot fail half-way on a lock upgrade. SQLITE_BUSY is retried until the
  // busy timeout has passed (SQLite returns it without waiting in some WAL states).
  Status BeginWrite();
  // BEGIN (deferred): a consistent read snapshot; never waits for writers in WAL.
  Status BeginRead();
  Status Commit();
  // Best effort: used on error paths, where the first error is what matters.
  void Rollback();

  // Runs `attempt` again while it fails with kBusy, with a growing pause, until the
  // busy timeout has passed. For steps SQLite may refuse at once without calling the
  // busy handler (BEGIN IMMEDIATE in some WAL states, switching a new file to WAL
  // while another connection opens it). `attempt` must be safe to repeat.
  Status RetryWhileBusy(const std::function<Status()>& attempt);

 private:
  SqliteDb(sqlite3* db, std::string path, int busy_timeout_ms);
  Status PrepareTransactionStatements();

  sqlite3* db_;  // owned
  std::string path_;
  std::chrono::milliseconds busy_timeout_;
  Statement begin_write_;
  Statement begin_read_;
  Statement commit_;
  Statement rollback_;
};

// A transaction that rolls back when it goes out of scope uncommitted.
class Transaction {
 public:
  explicit Transaction(SqliteDb& db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) db_.Rollback();
  }

  Status BeginWrite() { return Started(db_.BeginWrite()); }
  Status BeginRead() { return Started(db_.BeginRead()); }
  Status Commit() {
    open_ = false;
    Status status = db_.Commit();
    if (!status.ok()) db_.Rollback();
    return status;
  }

 private:
  Status Started(Status status) {
    open_ = status.ok();
    return status;
  }

  SqliteDb& db_;
  bool open_ = false;
};

}  // namespace sluice::sqlite

#endif  // SLUICE_STORE_SQLITE_DB_H_
