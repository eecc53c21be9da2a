#include "src/store/sqlite_db.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <thread>
#include <utility>

namespace sluice::sqlite {

Status ErrorStatus(int rc, std::string_view detail) {
  std::string message(detail.empty() ? std::string_view(sqlite3_errstr(rc)) : detail);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Busy(std::move(message));
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return Corruption(std::move(message));
    case SQLITE_CONSTRAINT:
      return Internal(std::move(message));
    default:
      return IoError(std::move(message));
  }
}

namespace {

// The connection's message is more precise than the code's ("no such table: x").
Status ConnectionError(sqlite3* db, int rc) {
  return ErrorStatus(rc, sqlite3_errmsg(db));
}

}  // namespace

// --- Statement --------------------------------------------------------------------

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

// A failed bind (bad index, value too big, statement not reset) is kept and
// reported by the next Step() or Run(), so that callers need not check each one.
void Statement::KeepBindError(int rc) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}

void Statement::BindInt(int index, std::int64_t value) {
  KeepBindError(sqlite3_bind_int64(stmt_, index, value));
}

void Statement::BindText(int index, std::string_view text) {
  // A null pointer would bind NULL, not "".
  const char* data = text.data() != nullptr ? text.data() : "";
  KeepBindError(
      sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_STATIC, SQLITE_UTF8));
}

void Statement::BindTextOrNull(int index, std::string_view text) {
  if (text.empty()) {
    BindNull(index);
  } else {
    BindText(index, text);
  }
}

void Statement::BindNull(int index) { KeepBindError(sqlite3_bind_null(stmt_, index)); }

Status Statement::TakeBindError() {
  Status status = ErrorStatus(bind_error_, fmt::format("cannot bind a parameter: {}",
                                                       sqlite3_errstr(bind_error_)));
  bind_error_ = SQLITE_OK;
  return status;
}

Result<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) return TakeBindError();
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  // Reset at once (bindings kept): the statement is ready to be bound again, and
  // releases its read of the database.
  sqlite3_reset(stmt_);
  if (rc == SQLITE_DONE) return false;
  return ConnectionError(db_, rc);
}

Status Statement::Run() {
  if (bind_error_ != SQLITE_OK) return TakeBindError();
  int rc;
  do {
    rc = sqlite3_step(stmt_);
  } while (rc == SQLITE_ROW);
  // After an error, the connection's message must be read before the reset.
  Status status = rc == SQLITE_DONE ? Status::Ok() : ConnectionError(db_, rc);
  sqlite3_reset(stmt_);
  return status;
}

std::int64_t Statement::ColumnInt(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

std::string_view Statement::ColumnText(int index) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
  if (text == nullptr) return {};
  return std::string_view(text,
                          static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index)));
}

bool Statement::ColumnIsNull(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

std::int64_t Statement::Changes() const { return sqlite3_changes64(db_); }

void Statement::Reset() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = SQLITE_OK;
}

// --- SqliteDb ---------------------------------------------------------------------

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path,
                                                 const OpenOptions& options) {
  // NOMUTEX: the owner serialises access (see the header); SQLite's own mutex
  // would only add a second lock per call.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (options.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status status = (rc == SQLITE_CANTOPEN && !options.create_if_missing)
                        ? NotFound("no such store file")
                        : ConnectionError(db, rc);
    sqlite3_close_v2(db);  // a handle is returned even on failure
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, std::max(0, options.busy_timeout_ms));
  std::unique_ptr<SqliteDb> owned(new SqliteDb(db, path, options.busy_timeout_ms));
  SLUICE_RETURN_IF_ERROR(owned->PrepareTransactionStatements());
  return owned;
}

SqliteDb::SqliteDb(sqlite3* db, std::string path, int busy_timeout_ms)
    : db_(db), path_(std::move(path)), busy_timeout_(std::max(0, busy_timeout_ms)) {}

SqliteDb::~SqliteDb() {
  // Statements must be finalized before the connection closes.
  begin_write_ = Statement();
  begin_read_ = Statement();
  commit_ = Statement();
  rollback_ = Statement();
  sqlite3_close_v2(db_);
}

Status SqliteDb::PrepareTransactionStatements() {
  // Preparing BEGIN/COMMIT reads no schema, so this works on any file.
  SLUICE_ASSIGN_OR_RETURN(begin_write_, Prepare("BEGIN IMMEDIATE"));
  SLUICE_ASSIGN_OR_RETURN(begin_read_, Prepare("BEGIN"));
  SLUICE_ASSIGN_OR_RETURN(commit_, Prepare("COMMIT"));
  SLUICE_ASSIGN_OR_RETURN(rollback_, Prepare("ROLLBACK"));
  return Status::Ok();
}

Status SqliteDb::Exec(const std::string& sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::Ok();
  Status status = ErrorStatus(rc, error != nullptr ? error : sqlite3_errmsg(db_));
  sqlite3_free(error);
  return status;
}

Result<std::string> SqliteDb::QueryText(const std::string& sql) {
  SLUICE_ASSIGN_OR_RETURN(Statement statement, Prepare(sql));
  SLUICE_ASSIGN_OR_RETURN(bool has_row, statement.Step());
  if (!has_row) return std::string();
  return std::string(statement.ColumnText(0));
}

Result<Statement> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return ConnectionError(db_, rc);
  return Statement(db_, stmt);
}

Status SqliteDb::BeginWrite() {
  return RetryWhileBusy([this] {
    Status status = begin_write_.Run();
    begin_write_.Reset();
    return status;
  });
}

Status SqliteDb::RetryWhileBusy(const std::function<Status()>& attempt) {
  const auto deadline = std::chrono::steady_clock::now() + busy_timeout_;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    Status status = attempt();
    if (status.code() != StatusCode::kBusy ||
        std::chrono::steady_clock::now() + pause > deadline) {
      return status;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

Status SqliteDb::BeginRead() {
  Status status = begin_read_.Run();
  begin_read_.Reset();
  return status;
}

Status SqliteDb::Commit() {
  Status status = commit_.Run();
  commit_.Reset();
  return status;
}

void SqliteDb::Rollback() {
  // Fails harmlessly when SQLite already rolled back (e.g. after SQLITE_FULL).
  if (sqlite3_get_autocommit(db_) == 0) {
    rollback_.Run().IgnoreError();
    rollback_.Reset();
  }
}

}  // namespace sluice::sqlite
