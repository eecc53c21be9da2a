// The Worker against the real SQLite store and the real runtime: every batch is
// committed once, a worker whose lease was taken over cannot commit (and carries on),
// and a stop releases what could not finish within the grace period.
#include "src/core/worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "src/stages/builtin_stages.h"
#include "src/store/sqlite_store.h"
#include "tests/test_util.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

// Lease expiry follows this clock; the test moves it.
class ManualClock final : public StoreClock {
 public:
  std::int64_t NowMs() const override { return now_ms_.load(); }
  void Advance(std::int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<std::int64_t> now_ms_{1'800'000'000'000};
};

std::unique_ptr<Store> OpenStore(const std::string& path, StoreClock& clock) {
  SqliteStoreOptions options;
  options.clock = &clock;
  auto store = OpenSqliteStore(path, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

void Ingest(Store& store, std::size_t items, std::uint32_t batch_size) {
  std::vector<ItemRow> rows;
  for (std::size_t i = 0; i < items; ++i)
    rows.push_back({"http://x/" + std::to_string(i), ""});
  IngestRows(store, rows, batch_size);
}

std::vector<NamedStage> SleepThenFail(milliseconds delay, double fraction) {
  std::vector<NamedStage> stages;
  stages.push_back({"wait", std::make_unique<SleepStage>(SleepOptions{delay, 1000})});
  stages.push_back({"flake", std::make_unique<FailStage>(
                                 FailOptions{fraction, FailureReason::kTimeout, 3})});
  return stages;
}

TEST(WorkerTest, CommitsEveryBatchOnceWithASmallBudget) {
  TempDir dir;
  ManualClock clock;
  auto store = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(store, nullptr);
  Ingest(*store, 2500, 100);

  WorkerOptions options;
  options.max_batches_in_flight = 2;  // 25 batches through a budget of 2
  Worker worker(*store, options, SleepThenFail(milliseconds(1), 0.25));
  auto end = worker.Run();
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, WorkerEnd::kFinished);

  WorkerProgress progress = worker.Progress();
  EXPECT_EQ(progress.batches_committed, 25u);
  EXPECT_EQ(progress.items_committed, 2500u);
  EXPECT_EQ(progress.batches_lost, 0u);
  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->batches_done, 25u);
  EXPECT_EQ(summary->results_ok + summary->results_failed, 2500u);
  EXPECT_EQ(summary->results_failed, progress.items_failed);
  EXPECT_EQ(summary->failures["timeout"], progress.items_failed);
}

// The zombie: worker A stalls past its lease, B takes the batch over and commits;
// A's late commit is refused, B's results stay, and A is not derailed by it.
TEST(WorkerTest, AWorkerWhoseLeaseWasTakenOverCannotCommit) {
  TempDir dir;
  ManualClock clock;
  auto store_a = OpenStore(dir.File("s.db"), clock);
  auto store_b = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(store_a, nullptr);
  ASSERT_NE(store_b, nullptr);
  Ingest(*store_a, 10, 10);

  WorkerOptions options;
  options.owner = "worker-a";
  options.lease = milliseconds(60000);
  options.max_batches_in_flight = 1;
  // A holds its records for 2 s (real time): long enough for B to act meanwhile.
  Worker worker_a(*store_a, options, SleepThenFail(milliseconds(2000), 0));
  std::optional<Result<WorkerEnd>> end_a;
  std::thread run_a([&] { end_a.emplace(worker_a.Run()); });

  // Wait until A's records are in its sleep stage, not merely until A holds the
  // lease: between the two A reads the batch's items, and a lease taken over before
  // that read is dropped quietly (nothing to commit, nothing lost).
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::vector<StageCounters> stages = worker_a.StageProgress();
        return !stages.empty() && stages[0].in_flight == 10;
      },
      std::chrono::seconds(10)));
  clock.Advance(60001);  // A's lease has expired; A does not know.
  auto leases = store_b->LeaseBatches("main", "worker-b", 1, milliseconds(60000));
  ASSERT_TRUE(leases.ok()) << leases.status().ToString();
  ASSERT_EQ(leases->size(), 1u);
  auto items = store_b->ReadBatchItems((*leases)[0]);
  ASSERT_TRUE(items.ok());
  std::vector<ResultRow> rows;
  for (const Record& record : *items)
    rows.push_back({record.id(), {}, "", R"({"by":"b"})"});
  ASSERT_TRUE(store_b->CommitBatch((*leases)[0], rows).ok());

  run_a.join();
  ASSERT_TRUE(end_a->ok()) << end_a->status().ToString();
  EXPECT_EQ(**end_a, WorkerEnd::kFinished);
  EXPECT_EQ(worker_a.Progress().batches_lost, 1u);
  EXPECT_EQ(worker_a.Progress().batches_committed, 0u);

  int rows_seen = 0;
  ASSERT_TRUE(store_a
                  ->ExportRows("main",
                               [&](const ExportRow& row) {
                                 ++rows_seen;
                                 EXPECT_EQ(row.fields_json, R"({"by":"b"})");
                                 return Status::Ok();
                               })
                  .ok());
  EXPECT_EQ(rows_seen, 10);
}

TEST(WorkerTest, StopReleasesBatchesThatMissTheGracePeriod) {
  TempDir dir;
  ManualClock clock;
  auto store = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(store, nullptr);
  Ingest(*store, 300, 100);

  WorkerOptions options;
  options.grace = milliseconds(100);
  Worker worker(*store, options, SleepThenFail(milliseconds(60000), 0));
  std::optional<Result<WorkerEnd>> end;
  std::thread run([&] { end.emplace(worker.Run()); });
  ASSERT_TRUE(WaitFor([&] { return worker.Progress().batches_in_flight == 3; },
                      std::chrono::seconds(10)));
  auto started = std::chrono::steady_clock::now();
  worker.RequestStop();
  run.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  ASSERT_TRUE(end->ok()) << end->status().ToString();
  EXPECT_EQ(**end, WorkerEnd::kStopped);

  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->batches_pending, 3u) << "released, not left to expire";
  EXPECT_EQ(summary->batches_leased, 0u);
  EXPECT_EQ(summary->results_ok, 0u);
}

TEST(WorkerTest, OwnerIdsOfDeadLocalProcessesAreRecognised) {
  EXPECT_FALSE(IsDeadLocalOwner(OwnerId())) << "this process is alive";
  std::string me = OwnerId();
  std::string host = me.substr(0, me.find(':'));
  EXPECT_TRUE(IsDeadLocalOwner(host + ":999999999:1")) << "no such pid";
  std::string pid_and_start = me.substr(me.find(':') + 1);
  std::string pid = pid_and_start.substr(0, pid_and_start.find(':'));
  EXPECT_TRUE(IsDeadLocalOwner(host + ":" + pid + ":0"))
      << "pid reused by another process";
  EXPECT_FALSE(IsDeadLocalOwner("another-host.example:1:1")) << "not ours to judge";
  EXPECT_FALSE(IsDeadLocalOwner("garbage"));
}

}  // namespace
}  // namespace sluice::testing
