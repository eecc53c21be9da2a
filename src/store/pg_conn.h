// A thin RAII layer over libpq, for the PostgreSQL store.
//
// PgConn owns one connection; PgResult owns one result; PgTransaction rolls back
// unless committed. Statements are sent with PQexecParams and text parameters (NULL
// where a parameter is std::nullopt); bulk rows go through COPY ... FROM STDIN in
// text format (CopyRows escapes them). Errors come back as Status values carrying
// PostgreSQL's message and SQLSTATE; callers add their context.
//
// Error mapping (ErrorStatus): connection failures (class 08, a closed socket, an
// administrator's shutdown 57P01..57P03, a refused connect) -> kUnavailable and
// connection_lost(); lock and
// serialization conflicts (40001, 40P01, 55P03) -> kBusy; integrity violations
// (class 23) -> kInternal (our schema's constraints only fail on a bug or a caller's
// broken promise); syntax and undefined objects (class 42) -> kInternal; data
// exceptions (class 22) -> kInvalidArgument; anything else -> kIoError.
//
// Thread-safety: none. The owner serialises every use of a PgConn (the store holds a
// mutex): libpq connections must not be used by two threads at once.
#ifndef SLUICE_STORE_PG_CONN_H_
#define SLUICE_STORE_PG_CONN_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

struct pg_conn;
struct pg_result;

namespace sluice::pg {

// A query result. Text stays valid while the PgResult lives.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* result) : result_(result) {}
  PgResult(PgResult&& other) noexcept : result_(other.result_) {
    other.result_ = nullptr;
  }
  PgResult& operator=(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult();

  int rows() const;
  // The number of rows an UPDATE/INSERT/DELETE touched.
  std::int64_t affected() const;
  bool IsNull(int row, int column) const;
  // "" for NULL.
  std::string_view Text(int row, int column) const;
  // 0 for NULL; Corruption-free by construction: callers select integer columns.
  std::int64_t Int(int row, int column) const;

 private:
  pg_result* result_ = nullptr;
};

// A statement parameter: text, or NULL.
using Param = std::optional<std::string>;
inline Param IntParam(std::int64_t value) { return std::to_string(value); }
// NULL for "": in our schema "" and NULL both mean "none".
inline Param TextOrNull(std::string_view text) {
  return text.empty() ? Param() : Param(std::string(text));
}

class PgConn {
 public:
  // Connects with `conninfo` (a libpq connection string or a postgres:// URL).
  // The message names the server libpq tried, never the password.
  static Result<std::unique_ptr<PgConn>> Connect(const std::string& conninfo);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Runs one statement; its result (rows or a command's count) or the error.
  Result<PgResult> Exec(std::string_view sql, const std::vector<Param>& params = {});
  // Runs statements without parameters (several may be separated by ';').
  Status ExecScript(std::string_view sql);

  // Runs `copy_sql` (COPY ... FROM STDIN, text format) and sends `data`, rows made
  // with CopyRow. Returns the number of rows copied.
  Result<std::int64_t> CopyIn(std::string_view copy_sql, std::string_view data);

  // True once the connection was found broken; Reconnect() makes a new one.
  bool connection_lost() const { return lost_; }
  // Marks the connection broken (its state is unknown, e.g. a ROLLBACK failed), so
  // that it is not used again before Reconnect().
  void MarkLost() { lost_ = true; }
  // True while a transaction is open (or failed and not yet rolled back).
  bool InTransaction() const;
  // Closes the connection and connects again with the same conninfo.
  Status Reconnect();

  // The server the connection is to, for messages: "host:port/dbname".
  const std::string& where() const { return where_; }

 private:
  PgConn(pg_conn* conn, std::string conninfo);
  Status ErrorOf(pg_result* result);

  pg_conn* conn_ = nullptr;
  std::string conninfo_;
  std::string where_;
  bool lost_ = false;
};

// Appends one row of COPY text format to `out`: fields separated by tabs, NULL as
// \N, backslash, tab, newline and carriage return escaped.
class CopyRow {
 public:
  explicit CopyRow(std::string& out) : out_(out) {}
  ~CopyRow() { out_ += '\n'; }
  CopyRow& Int(std::int64_t value);
  CopyRow& Text(std::string_view text);
  CopyRow& TextOrNull(std::string_view text);  // NULL for ""

 private:
  void Separate();
  std::string& out_;
  bool first_ = true;
};

// Text PostgreSQL can store: invalid UTF-8 sequences and NUL bytes (which a text
// column refuses) become U+FFFD. Returns `text` unchanged when it is valid.
std::string StorableText(std::string_view text);

// Rolls back unless Commit() succeeded. REQUIRES: no other transaction is open on
// the connection (PostgreSQL has no nested BEGIN: a second one is only a warning,
// and the inner Commit() would commit the outer work).
class PgTransaction {
 public:
  explicit PgTransaction(PgConn& conn) : conn_(conn) {}
  ~PgTransaction();
  PgTransaction(const PgTransaction&) = delete;
  PgTransaction& operator=(const PgTransaction&) = delete;

  Status Begin();
  Status Commit();

 private:
  PgConn& conn_;
  bool open_ = false;
};

}  // namespace sluice::pg

#endif  // SLUICE_STORE_PG_CONN_H_
