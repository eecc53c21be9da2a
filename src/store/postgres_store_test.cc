// Tests of the PostgreSQL store's own behaviour: what a database must hold, messages
// that name the server but never a password, connection loss and reconnection, text
// PostgreSQL cannot store, and the server's clock. What every backend does is tested
// in store_conformance_test.cc and store_leases_test.cc.
#include "src/store/postgres_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "src/store/pg_conn.h"
#include "src/store/store_test_support.h"

namespace sluice {
namespace {

using ::sluice::testing::MakeItems;
using ::sluice::testing::PostgresServer;
using ::sluice::testing::SharedPostgresServer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::chrono::milliseconds kLeaseTime{30'000};

class PostgresStoreTest : public ::sluice::testing::StoreTest {
 protected:
  PostgresStoreTest() { backend_ = ::sluice::testing::StoreBackend::kPostgres; }

  // Runs SQL on the database behind the store's back, as another program would.
  void RunSql(const std::string& sql) {
    auto conn = pg::PgConn::Connect(PostgresUrl());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    Status status = (*conn)->ExecScript(sql);
    ASSERT_TRUE(status.ok()) << status.ToString();
  }
};

TEST_F(PostgresStoreTest, RefusesAnotherSchemaVersionNamingTheServer) {
  OpenStore().reset();
  RunSql("UPDATE meta SET value = '7' WHERE key = 'schema_version'");
  auto store = OpenPostgresStore(PostgresUrl());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), HasSubstr("store postgres 127.0.0.1:"));
  EXPECT_THAT(store.status().message(),
              HasSubstr("schema version 7, this sluice reads version 1"));
}

TEST_F(PostgresStoreTest, RefusesADatabaseOfOtherTablesAndLeavesItAlone) {
  RunSql("CREATE TABLE photos (id integer PRIMARY KEY); INSERT INTO photos VALUES (1)");
  auto store = OpenPostgresStore(PostgresUrl());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), HasSubstr("not a sluice store"));
  auto conn = pg::PgConn::Connect(PostgresUrl());
  ASSERT_TRUE(conn.ok());
  auto tables =
      (*conn)->Exec("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()");
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(tables->Int(0, 0), 1);  // no meta table was made
}

TEST_F(PostgresStoreTest, EmptyDatabaseIsNotFoundWhenCreationIsOff) {
  PostgresStoreOptions options;
  options.create_if_missing = false;
  auto store = OpenPostgresStore(PostgresUrl(), options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound);
}

TEST_F(PostgresStoreTest, UnreachableServerIsUnavailableAndNeverShowsThePassword) {
  // A port nobody listens on (the shared server's, once that server is known).
  ASSERT_NE(SharedPostgresServer(), nullptr);
  const std::string url =
      "postgresql://sluice:s3cret-pw@127.0.0.1:1/nothing?connect_timeout=5";
  auto store = OpenPostgresStore(url);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(store.status().message(), HasSubstr("127.0.0.1:1/nothing"));
  EXPECT_THAT(store.status().message(), Not(HasSubstr("s3cret-pw")));
}

TEST_F(PostgresStoreTest, TextPostgresCannotHoldIsStoredReplacedNotRefused) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Ingest(*store, MakeItems(2), 2);
  auto leases = store->LeaseBatches("main", "w", 1, kLeaseTime);
  ASSERT_TRUE(leases.ok() && leases->size() == 1);
  // A server's error message with a NUL byte and invalid UTF-8.
  const std::string error("bad\0byte \xff\xfe end", 15);
  std::vector<ResultRow> results = {{1, FailureReason::kHttp5xx, error, ""},
                                    {2, FailureReason::kNone, "", R"({"tab":"a\tb"})"}};
  Status commit = store->CommitBatch(leases->front(), results);
  ASSERT_TRUE(commit.ok()) << commit.ToString();
  std::vector<ExportRow> rows;
  ASSERT_TRUE(store
                  ->ExportRows("main",
                               [&](const ExportRow& row) {
                                 rows.push_back(row);
                                 return Status::Ok();
                               })
                  .ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].error,
            "bad\xEF\xBF\xBD"
            "byte \xEF\xBF\xBD\xEF\xBF\xBD end");
  EXPECT_EQ(rows[1].fields_json, R"({"tab":"a\tb"})");
}

TEST_F(PostgresStoreTest, AServerRestartCostsOneFailedCallThenTheLeaseCarriesOn) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Ingest(*store, MakeItems(4), 2);
  auto leases = store->LeaseBatches("main", "w", 1, kLeaseTime);
  ASSERT_TRUE(leases.ok() && leases->size() == 1);
  const Lease lease = leases->front();

  PostgresServer* server = SharedPostgresServer();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->Stop().ok());
  ASSERT_TRUE(server->Restart().ok());

  // The first call finds the connection broken: unavailable, nothing changed.
  auto broken = store->RenewLeases(std::vector<Lease>{lease}, kLeaseTime);
  EXPECT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kUnavailable)
      << broken.status().ToString();
  // The next ones connect again: the lease survived, is renewed and commits.
  auto lost = store->RenewLeases(std::vector<Lease>{lease}, kLeaseTime);
  ASSERT_TRUE(lost.ok()) << lost.status().ToString();
  EXPECT_TRUE(lost->empty());
  auto records = store->ReadBatchItems(lease);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  std::vector<ResultRow> results;
  for (const Record& record : *records) results.push_back({record.id(), {}, "", ""});
  ASSERT_TRUE(store->CommitBatch(lease, results).ok());
  // A commit retried after an unknown outcome is accepted, never written twice.
  Status again = store->CommitBatch(lease, results);
  EXPECT_TRUE(again.ok()) << again.ToString();
  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->results_ok, 2u);
  EXPECT_EQ(summary->batches_done, 1u);
}

// The connection dies inside the commit, after the writes and the publish step and
// before COMMIT: the caller learns only "unavailable". Its retry with the same lease
// reconnects, publishes again and commits once.
TEST_F(PostgresStoreTest, ACommitCutOffByALostConnectionIsRetriedAndCommitsOnce) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Ingest(*store, MakeItems(3), 3);
  auto leases = store->LeaseBatches("main", "w", 1, kLeaseTime);
  ASSERT_TRUE(leases.ok() && leases->size() == 1);
  const Lease lease = leases->front();
  auto records = store->ReadBatchItems(lease);
  ASSERT_TRUE(records.ok());
  std::vector<ResultRow> results;
  for (const Record& record : *records) results.push_back({record.id(), {}, "", "{}"});

  int published = 0;
  auto publish = [&]() -> Status {
    if (++published > 1) return Status::Ok();
    // Another program ends the store's session, as a failover or a cut link would.
    auto killer = pg::PgConn::Connect(PostgresUrl());
    if (!killer.ok()) return killer.status();
    return (*killer)
        ->Exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            "datname = current_database() AND pid <> pg_backend_pid()")
        .ToStatus();
  };
  Status cut = store->CommitBatch(lease, results, publish);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.code(), StatusCode::kUnavailable) << cut.ToString();

  Status retried = store->CommitBatch(lease, results, publish);
  ASSERT_TRUE(retried.ok()) << retried.ToString();
  EXPECT_EQ(published, 2);
  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->results_ok, 3u);
  EXPECT_EQ(summary->batches_done, 1u);
}

TEST_F(PostgresStoreTest, WithoutATestClockLeasesExpireByTheServersClock) {
  PostgresStoreOptions options;  // clock: the server's
  auto first = OpenPostgresStore(PostgresUrl(), options);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Ingest(**first, MakeItems(2), 2);
  auto leases = (*first)->LeaseBatches("main", "a", 1, std::chrono::milliseconds(1));
  ASSERT_TRUE(leases.ok() && leases->size() == 1);
  // The expiry is in the server's milliseconds since the epoch.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_NEAR(static_cast<double>(leases->front().expires_at_ms),
              static_cast<double>(now_ms), 600'000.0);
  auto second = OpenPostgresStore(PostgresUrl(), options);
  ASSERT_TRUE(second.ok());
  // Another owner gets it once the server's clock passes the expiry (a generous
  // deadline: the lease lasts a millisecond).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<Lease> taken;
  while (taken.empty() && std::chrono::steady_clock::now() < deadline) {
    auto attempt = (*second)->LeaseBatches("main", "b", 1, kLeaseTime);
    ASSERT_TRUE(attempt.ok()) << attempt.status().ToString();
    taken = std::move(attempt).value();
    if (taken.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].token, 2u);
}

}  // namespace
}  // namespace sluice
