#include "src/store/sqlite_bulk_insert.h"

#include <bit>

namespace sluice::sqlite {

Result<Statement*> BulkInsert::StatementFor(SqliteDb& db, std::size_t rows) {
  Statement& statement = statements_[std::countr_zero(rows)];
  if (statement.prepared()) return &statement;
  std::string row = "(?";
  for (int column = 1; column < columns_; ++column) row += ", ?";
  row += ")";
  std::string sql = head_ + " VALUES " + row;
  for (std::size_t i = 1; i < rows; ++i) sql += ", " + row;
  SLUICE_ASSIGN_OR_RETURN(statement, db.Prepare(sql));
  return &statement;
}

}  // namespace sluice::sqlite
