// BulkInsert: inserts many rows into one table with few statement executions.
//
// Executing a one-row INSERT costs about 2 us in SQLite, most of it per-statement
// work (opening cursors, checking the schema) rather than per-row work; one
// "INSERT ... VALUES (...), (...), ..." of 64 rows costs about a third of that per
// row. Rows go in chunks of 64, then the rest by powers of two (37 = 32 + 4 + 1), so
// that seven cached statements serve any row count.
//
// Thread-safety: as the SqliteDb it is used with (none of its own).
#ifndef SLUICE_STORE_SQLITE_BULK_INSERT_H_
#define SLUICE_STORE_SQLITE_BULK_INSERT_H_

#include <array>
#include <cstddef>
#include <string>

#include "sluice/status.h"
#include "src/store/sqlite_db.h"

namespace sluice::sqlite {

class BulkInsert {
 public:
  // `head` is "INSERT INTO table (a, b, c)"; `columns` the number of columns in it.
  BulkInsert(std::string head, int columns) : head_(std::move(head)), columns_(columns) {}

  // Inserts `count` rows. `bind_row(statement, first_parameter, row)` binds the
  // `columns` values of row `row` (0-based) at parameters first_parameter, +1, ...
  // If a row is refused (e.g. a duplicate key), `*failed_row` is set to its index
  // and the rows before it may have been written: REQUIRES a transaction, which the
  // caller rolls back on error.
  template <typename BindRow>
  Status Insert(SqliteDb& db, std::size_t count, BindRow&& bind_row,
                std::size_t* failed_row) {
    std::size_t done = 0;
    while (done < count) {
      std::size_t rows = kMaxRows;
      while (rows > count - done) rows /= 2;
      SLUICE_ASSIGN_OR_RETURN(Statement * statement, StatementFor(db, rows));
      ScopedReset reset(*statement);
      for (std::size_t i = 0; i < rows; ++i) {
        bind_row(*statement, static_cast<int>(i) * columns_ + 1, done + i);
      }
      Status status = statement->Run();
      if (!status.ok()) {
        // SQLite undid the whole statement; redo it a row at a time to name the row.
        if (rows > 1) return InsertOneByOne(db, done, rows, bind_row, failed_row);
        *failed_row = done;
        return status;
      }
      done += rows;
    }
    return Status::Ok();
  }

 private:
  static constexpr std::size_t kMaxRows = 64;

  template <typename BindRow>
  Status InsertOneByOne(SqliteDb& db, std::size_t first, std::size_t rows,
                        BindRow& bind_row, std::size_t* failed_row) {
    SLUICE_ASSIGN_OR_RETURN(Statement * statement, StatementFor(db, 1));
    ScopedReset reset(*statement);
    for (std::size_t row = first; row < first + rows; ++row) {
      bind_row(*statement, 1, row);
      Status status = statement->Run();
      if (!status.ok()) {
        *failed_row = row;
        return status;
      }
    }
    return Internal("a multi-row insert failed but each of its rows succeeded");
  }

  // The statement inserting `rows` rows; REQUIRES rows is a power of two <= kMaxRows.
  Result<Statement*> StatementFor(SqliteDb& db, std::size_t rows);

  std::string head_;
  int columns_;
  // statements_[k] inserts 2^k rows; prepared on first use.
  std::array<Statement, 7> statements_;
  static_assert(std::size_t{1} << 6 == kMaxRows);
};

}  // namespace sluice::sqlite

#endif  // SLUICE_STORE_SQLITE_BULK_INSERT_H_
