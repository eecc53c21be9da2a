// Helpers for the store's unit tests: a temporary directory, a clock the test moves,
// shortcuts to ingest items, and the backends the conformance tests run against
// (SQLite in a file of the temp dir; PostgreSQL in a fresh database of a throwaway
// server, tests/support/postgres_server.h, one per test process). Test-only;
// header-only so that it stays out of the sluice_store library.
#ifndef SLUICE_STORE_STORE_TEST_SUPPORT_H_
#define SLUICE_STORE_STORE_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sluice/store.h"
#include "src/store/postgres_store.h"
#include "src/store/sqlite_store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {

// A StoreClock that stands still until the test advances it. Thread-safe.
class FakeClock final : public StoreClock {
 public:
  explicit FakeClock(std::int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  std::int64_t NowMs() const override { return now_ms_.load(); }
  void Advance(std::int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<std::int64_t> now_ms_;
};

inline std::vector<ItemRow> MakeItems(std::size_t count, std::size_t first_index = 0) {
  std::vector<ItemRow> items(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t n = first_index + i;
    items[i].url =
        "http://host-" + std::to_string(n) + ".example/img/" + std::to_string(n) + ".jpg";
  }
  return items;
}

enum class StoreBackend { kSqlite, kPostgres };

// "Sqlite" or "Postgres", for the names of parameterised tests.
inline std::string StoreBackendName(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param == StoreBackend::kSqlite ? "Sqlite" : "Postgres";
}

// The PostgreSQL server of this test process, started at its first use; nullptr
// (and a test failure naming the cause) if it cannot start.
inline PostgresServer* SharedPostgresServer() {
  static Result<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
  if (!server.ok()) {
    ADD_FAILURE() << "cannot start a PostgreSQL server: " << server.status().ToString();
    return nullptr;
  }
  return server->get();
}

// The shared part of the fixtures: a temp dir, a fake clock, and the store of the
// backend under test (an SQLite file in the dir, or a database of its own).
class StoreTestBase {
 protected:
  std::string StorePath() const { return dir_.File("sluice.db"); }

  // The address of the PostgreSQL database of this test, made on first use.
  std::string PostgresUrl() {
    if (postgres_url_.empty()) {
      PostgresServer* server = SharedPostgresServer();
      if (server == nullptr) return "";
      auto url = server->CreateDatabase();
      if (!url.ok()) {
        ADD_FAILURE() << url.status().ToString();
        return "";
      }
      postgres_url_ = *url;
    }
    return postgres_url_;
  }

  // Opens another Store on the same file or database (a second "process" for the
  // tests).
  std::unique_ptr<Store> OpenStore() {
    Result<std::unique_ptr<Store>> store = InvalidArgument("no backend");
    if (backend_ == StoreBackend::kSqlite) {
      SqliteStoreOptions options;
      options.clock = &clock_;
      store = OpenSqliteStore(StorePath(), options);
    } else {
      const std::string url = PostgresUrl();
      if (url.empty()) return nullptr;
      PostgresStoreOptions options;
      options.clock = &clock_;
      store = OpenPostgresStore(url, options);
    }
    if (!store.ok()) {
      ADD_FAILURE() << store.status().ToString();
      return nullptr;
    }
    return std::move(store).value();
  }

  // Registers a new input file and appends `items` to it in one call.
  std::int64_t Ingest(Store& store, const std::vector<ItemRow>& items,
                      std::uint32_t batch_size,
                      const std::vector<std::string>& groups = {"main"}) {
    InputFingerprint input{"input-" + std::to_string(next_input_) + ".txt", items.size(),
                           "digest-" + std::to_string(next_input_)};
    ++next_input_;
    auto state = store.BeginInput(input);
    if (!state.ok()) {
      ADD_FAILURE() << state.status().ToString();
      return 0;
    }
    Status status =
        store.AppendItems(state->input_id, items, {}, items.size(), batch_size, groups);
    EXPECT_TRUE(status.ok()) << status.ToString();
    return state->input_id;
  }

  // Results for every item of `records`, ok unless a reason is given.
  static std::vector<ResultRow> ResultsFor(const std::vector<Record>& records,
                                           FailureReason reason = FailureReason::kNone,
                                           const std::string& fields_json = "") {
    std::vector<ResultRow> results;
    for (const Record& record : records) {
      results.push_back(
          {record.id(), reason, reason == FailureReason::kNone ? "" : "e", fields_json});
    }
    return results;
  }

  StoreBackend backend_ = StoreBackend::kSqlite;
  TempDir dir_;
  FakeClock clock_;
  int next_input_ = 1;
  std::string postgres_url_;
};

// Tests of one backend's own behaviour (the SQLite file's, say).
class StoreTest : public ::testing::Test, public StoreTestBase {};

// Tests every backend must pass: instantiate with
// INSTANTIATE_TEST_SUITE_P(Backends, Fixture, ::testing::Values(StoreBackend::kSqlite,
// StoreBackend::kPostgres), StoreBackendName).
class StoreConformanceTest : public ::testing::TestWithParam<StoreBackend>,
                             public StoreTestBase {
 protected:
  StoreConformanceTest() { backend_ = GetParam(); }
};

}  // namespace sluice::testing

#endif  // SLUICE_STORE_STORE_TEST_SUPPORT_H_
