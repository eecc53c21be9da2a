#include "src/store/sqlite_bulk_insert.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "src/store/store_test_support.h"

namespace sluice::sqlite {
namespace {

class BulkInsertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = SqliteDb::Open(dir_.File("t.db"), {});
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    ASSERT_TRUE(db_->Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)").ok());
  }

  // Inserts rows k = first .. first + count - 1 with v = "v<k>".
  Status InsertRange(BulkInsert& insert, std::int64_t first, std::size_t count,
                     std::size_t* failed_row) {
    std::vector<std::string> values;
    for (std::size_t i = 0; i < count; ++i) {
      values.push_back("v" + std::to_string(first + i));
    }
    return insert.Insert(
        *db_, count,
        [&](Statement& statement, int parameter, std::size_t row) {
          statement.BindInt(parameter, first + static_cast<std::int64_t>(row));
          statement.BindText(parameter + 1, values[row]);
        },
        failed_row);
  }

  std::vector<std::string> Rows() {
    std::vector<std::string> rows;
    auto select = db_->Prepare("SELECT k, v FROM t ORDER BY k");
    EXPECT_TRUE(select.ok());
    while (select->Step().value()) {
      rows.push_back(std::to_string(select->ColumnInt(0)) + "=" +
                     std::string(select->ColumnText(1)));
    }
    return rows;
  }

  ::sluice::testing::TempDir dir_;
  std::unique_ptr<SqliteDb> db_;
};

TEST_F(BulkInsertTest, InsertsAnyCountOfRowsInOrder) {
  BulkInsert insert("INSERT INTO t (k, v)", 2);
  std::size_t failed_row = 999;
  std::int64_t next = 1;
  // 0, 1, a power of two, 64 + a remainder of several powers of two.
  for (std::size_t count : {0, 1, 32, 64, 64 + 37, 200}) {
    ASSERT_TRUE(InsertRange(insert, next, count, &failed_row).ok()) << count;
    next += static_cast<std::int64_t>(count);
  }
  EXPECT_EQ(failed_row, 999u);
  std::vector<std::string> rows = Rows();
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(next - 1));
  for (std::int64_t k = 1; k < next; ++k) {
    ASSERT_EQ(rows[k - 1], std::to_string(k) + "=v" + std::to_string(k));
  }
}

TEST_F(BulkInsertTest, NamesTheRowThatWasRefused) {
  BulkInsert insert("INSERT INTO t (k, v)", 2);
  std::size_t failed_row = 999;
  ASSERT_TRUE(InsertRange(insert, 150, 1, &failed_row).ok());
  ASSERT_TRUE(db_->BeginWrite().ok());
  // Rows 100..249: the 51st (k = 150) exists; it sits inside a 64-row statement.
  Status status = InsertRange(insert, 100, 150, &failed_row);
  db_->Rollback();
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_THAT(status.message(), ::testing::HasSubstr("UNIQUE constraint failed"));
  EXPECT_EQ(failed_row, 50u);
  EXPECT_THAT(Rows(), ::testing::ElementsAre("150=v150"));
}

}  // namespace
}  // namespace sluice::sqlite
