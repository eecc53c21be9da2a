// Tests of the SQLite store's own behaviour: its file, schema version checks and
// locking. What every backend does is tested in store_conformance_test.cc and
// store_leases_test.cc.
#include "src/store/sqlite_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <thread>

#include "src/store/store_test_support.h"

namespace sluice {
namespace {

using ::sluice::testing::MakeItems;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

class SqliteStoreTest : public ::sluice::testing::StoreTest {
 protected:
  // Runs SQL on the store file behind the store's back, as another program would.
  void RunSql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error != nullptr ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  static std::string ReadFile(const std::string& path) {
    std::string text(std::filesystem::file_size(path), '\0');
    std::ifstream(path, std::ios::binary).read(text.data(), std::ssize(text));
    return text;
  }
};

// --- Opening -------------------------------------------------------------------------

TEST_F(SqliteStoreTest, RefusesAnotherSchemaVersionNamingFileAndVersions) {
  OpenStore().reset();
  RunSql(StorePath(), "UPDATE meta SET value = '7' WHERE key = 'schema_version'");
  auto store = OpenSqliteStore(StorePath());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.status().message(),
            "store " + StorePath() + ": schema version 7, this sluice reads version 1");
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabaseAndLeavesItAlone) {
  const std::string path = dir_.File("urls.txt");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "http://example.com/" + std::to_string(i) + "\n";
  std::ofstream(path) << text;
  auto store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(store.status().message(), "store " + path + ": file is not a database");
  EXPECT_EQ(ReadFile(path), text);
}

TEST_F(SqliteStoreTest, RefusesAnSqliteDatabaseThatIsNotAStore) {
  RunSql(StorePath(), "CREATE TABLE photos (id INTEGER PRIMARY KEY)");
  auto store = OpenSqliteStore(StorePath());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), HasSubstr("store " + StorePath()));
  EXPECT_THAT(store.status().message(), HasSubstr("not a sluice store"));
}

TEST_F(SqliteStoreTest, MissingFileIsNotFoundWhenCreationIsOff) {
  SqliteStoreOptions options;
  options.create_if_missing = false;
  auto store = OpenSqliteStore(StorePath(), options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(store.status().message(), HasSubstr(StorePath()));
  EXPECT_FALSE(std::filesystem::exists(StorePath()));
}

TEST_F(SqliteStoreTest, LockedDatabaseGivesBusyWithContext) {
  SqliteStoreOptions options;
  options.clock = &clock_;
  options.busy_timeout_ms = 0;
  auto store = OpenSqliteStore(StorePath(), options);
  ASSERT_TRUE(store.ok());
  Ingest(**store, MakeItems(10), 10);

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(StorePath().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto leases = (*store)->LeaseBatches("main", "w", 1, std::chrono::seconds(30));
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);

  ASSERT_FALSE(leases.ok());
  EXPECT_EQ(leases.status().code(), StatusCode::kBusy);
  EXPECT_EQ(leases.status().message(),
            "store: lease batches of group main: database is locked");
}

// --- Ingest --------------------------------------------------------------------------

}  // namespace
}  // namespace sluice
