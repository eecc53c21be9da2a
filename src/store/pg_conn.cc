#include "src/store/pg_conn.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <charconv>
#include <cstring>
#include <utility>

namespace sluice::pg {
namespace {

// libpq's message on one line: its line breaks (and the indentation after them)
// become single spaces, and trailing ones go.
std::string Trimmed(const char* message) {
  std::string text;
  bool space = false;
  for (const char* c = message == nullptr ? "" : message; *c != '\0'; ++c) {
    if (*c == '\n' || *c == '\t' || (*c == ' ' && space)) {
      space = true;
      continue;
    }
    if (space && !text.empty()) text += ' ';
    space = *c == ' ';
    if (!space) text += *c;
  }
  return text;
}

StatusCode CodeOfSqlState(std::string_view state) {
  if (state.size() != 5) return StatusCode::kIoError;
  const std::string_view cls = state.substr(0, 2);
  if (cls == "08" || state == "57P01" || state == "57P02" || state == "57P03") {
    return StatusCode::kUnavailable;
  }
  if (state == "40001" || state == "40P01" || state == "55P03") return StatusCode::kBusy;
  if (cls == "23" || cls == "42") return StatusCode::kInternal;
  if (cls == "22") return StatusCode::kInvalidArgument;
  return StatusCode::kIoError;
}

bool IsConnectionState(std::string_view state) {
  return state.starts_with("08") || state == "57P01" || state == "57P02" ||
         state == "57P03";
}

std::string Where(PGconn* conn) {
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  const char* db = PQdb(conn);
  return fmt::format("{}:{}/{}", host ? host : "?", port ? port : "?", db ? db : "?");
}

// Length of the valid UTF-8 sequence at the start of `text`, 0 if invalid.
std::size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return lead == 0 ? 0 : 1;
  std::size_t length = 0;
  std::uint32_t min = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, min = 0x10000;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  std::uint32_t code = lead & (0x7F >> length);
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i) & 0x3F);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

}  // namespace

// --- PgResult ---------------------------------------------------------------------

PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

PgResult::~PgResult() {
  if (result_ != nullptr) PQclear(result_);
}

int PgResult::rows() const { return result_ == nullptr ? 0 : PQntuples(result_); }

std::int64_t PgResult::affected() const {
  if (result_ == nullptr) return 0;
  const char* text = PQcmdTuples(result_);
  std::int64_t value = 0;
  std::from_chars(text, text + std::strlen(text), value);
  return value;
}

bool PgResult::IsNull(int row, int column) const {
  return PQgetisnull(result_, row, column) != 0;
}

std::string_view PgResult::Text(int row, int column) const {
  if (IsNull(row, column)) return {};
  return std::string_view(PQgetvalue(result_, row, column),
                          static_cast<std::size_t>(PQgetlength(result_, row, column)));
}

std::int64_t PgResult::Int(int row, int column) const {
  const std::string_view text = Text(row, column);
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// --- PgConn -----------------------------------------------------------------------

Result<std::unique_ptr<PgConn>> PgConn::Connect(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return IoError("postgres: out of memory making a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    Status error = Unavailable(fmt::format("postgres: cannot connect to {}: {}",
                                           Where(conn), Trimmed(PQerrorMessage(conn))));
    PQfinish(conn);
    return error;
  }
  return std::unique_ptr<PgConn>(new PgConn(conn, conninfo));
}

PgConn::PgConn(pg_conn* conn, std::string conninfo)
    : conn_(conn), conninfo_(std::move(conninfo)), where_(Where(conn)) {
  // Our own messages say what failed; the server's notices ("relation already
  // exists, skipping") are not for the user.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

PgConn::~PgConn() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Status PgConn::ErrorOf(pg_result* result) {
  const char* state =
      result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  std::string message =
      Trimmed(result == nullptr ? nullptr : PQresultErrorMessage(result));
  if (message.empty()) message = Trimmed(PQerrorMessage(conn_));
  // No SQLSTATE: libpq's own failure (the socket closed, the server went away), after
  // which the connection's state is unknown.
  if (state == nullptr || IsConnectionState(state) || PQstatus(conn_) == CONNECTION_BAD) {
    lost_ = true;
  }
  if (state == nullptr) {
    if (lost_) return Unavailable(fmt::format("postgres: {}", message));
    return IoError(fmt::format("postgres: {}", message));
  }
  return Status(CodeOfSqlState(state), fmt::format("{} (SQLSTATE {})", message, state));
}

Result<PgResult> PgConn::Exec(std::string_view sql, const std::vector<Param>& params) {
  if (lost_) return Unavailable(fmt::format("postgres {}: connection lost", where_));
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& param : params) values.push_back(param ? param->c_str() : nullptr);
  const std::string text(sql);
  PGresult* raw = PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()),
                               nullptr, values.data(), nullptr, nullptr, 0);
  const ExecStatusType status = raw == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(raw);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Status error = ErrorOf(raw);
    if (raw != nullptr) PQclear(raw);
    return error;
  }
  return PgResult(raw);
}

Status PgConn::ExecScript(std::string_view sql) {
  if (lost_) return Unavailable(fmt::format("postgres {}: connection lost", where_));
  const std::string text(sql);
  PGresult* raw = PQexec(conn_, text.c_str());
  const ExecStatusType status = raw == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(raw);
  Status result = Status::Ok();
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) result = ErrorOf(raw);
  if (raw != nullptr) PQclear(raw);
  return result;
}

Result<std::int64_t> PgConn::CopyIn(std::string_view copy_sql, std::string_view data) {
  if (lost_) return Unavailable(fmt::format("postgres {}: connection lost", where_));
  const std::string text(copy_sql);
  PGresult* start = PQexec(conn_, text.c_str());
  if (start == nullptr || PQresultStatus(start) != PGRES_COPY_IN) {
    Status error = ErrorOf(start);
    if (start != nullptr) PQclear(start);
    return error;
  }
  PQclear(start);
  // Sent in pieces of at most 1 MiB: PQputCopyData takes an int length.
  constexpr std::size_t kPiece = 1 << 20;
  for (std::size_t at = 0; at < data.size(); at += kPiece) {
    const std::size_t size = std::min(kPiece, data.size() - at);
    if (PQputCopyData(conn_, data.data() + at, static_cast<int>(size)) != 1) {
      return ErrorOf(nullptr);
    }
  }
  if (PQputCopyEnd(conn_, nullptr) != 1) return ErrorOf(nullptr);
  PGresult* end = PQgetResult(conn_);
  Status error = Status::Ok();
  std::int64_t rows = 0;
  if (end == nullptr || PQresultStatus(end) != PGRES_COMMAND_OK) {
    error = ErrorOf(end);
  } else {
    rows = PgResult(end).affected();
    end = nullptr;  // freed by the PgResult
  }
  if (end != nullptr) PQclear(end);
  // Drain: a COPY leaves exactly one result, then nullptr.
  while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
  if (!error.ok()) return error;
  return rows;
}

Status PgConn::Reconnect() {
  PQfinish(conn_);
  conn_ = PQconnectdb(conninfo_.c_str());
  if (conn_ == nullptr) return IoError("postgres: out of memory making a connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    lost_ = true;
    return Unavailable(fmt::format("postgres: cannot connect to {}: {}", where_,
                                   Trimmed(PQerrorMessage(conn_))));
  }
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  lost_ = false;
  return Status::Ok();
}

bool PgConn::InTransaction() const { return PQtransactionStatus(conn_) != PQTRANS_IDLE; }

// --- CopyRow ------------------------------------------------------------------------

void CopyRow::Separate() {
  if (!first_) out_ += '\t';
  first_ = false;
}

CopyRow& CopyRow::Int(std::int64_t value) {
  Separate();
  char buffer[24];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  out_.append(buffer, end);
  return *this;
}

CopyRow& CopyRow::Text(std::string_view text) {
  Separate();
  const std::string storable = StorableText(text);
  for (const char c : storable) {
    switch (c) {
      case '\\':
        out_ += "\\\\";
        break;
      case '\t':
        out_ += "\\t";
        break;
      case '\n':
        out_ += "\\n";
        break;
      case '\r':
        out_ += "\\r";
        break;
      default:
        out_ += c;
    }
  }
  return *this;
}

CopyRow& CopyRow::TextOrNull(std::string_view text) {
  if (!text.empty()) return Text(text);
  Separate();
  out_ += "\\N";
  return *this;
}

// --- Text ---------------------------------------------------------------------------

std::string StorableText(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t length = Utf8SequenceLength(text.substr(at));
    if (length == 0) break;
    at += length;
  }
  if (at == text.size()) return std::string(text);
  std::string out(text.substr(0, at));
  while (at < text.size()) {
    const std::size_t length = Utf8SequenceLength(text.substr(at));
    if (length == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++at;
    } else {
      out.append(text.substr(at, length));
      at += length;
    }
  }
  return out;
}

// --- PgTransaction ------------------------------------------------------------------

PgTransaction::~PgTransaction() {
  if (!open_) return;
  // A failed rollback leaves the connection lost or the server to abort the
  // transaction when the session ends; nothing was committed either way.
  Status status = conn_.ExecScript("ROLLBACK");
  if (!status.ok() && !conn_.connection_lost()) conn_.MarkLost();
}

Status PgTransaction::Begin() {
  if (conn_.InTransaction()) {
    return Internal(
        fmt::format("postgres {}: BEGIN inside an open transaction", conn_.where()));
  }
  SLUICE_RETURN_IF_ERROR(conn_.ExecScript("BEGIN"));
  open_ = true;
  return Status::Ok();
}

Status PgTransaction::Commit() {
  if (!open_) return Internal("postgres: COMMIT without BEGIN");
  open_ = false;
  return conn_.ExecScript("COMMIT");
}

}  // namespace sluice::pg
