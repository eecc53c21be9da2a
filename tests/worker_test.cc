// The Worker against the real SQLite store and the real runtime: every batch is
// committed once, a worker whose lease was taken over cannot commit (and carries on),
// and a stop releases what could not finish within the grace period.
#include "src/core/worker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "src/core/record_codec.h"
#include "src/output/file_batch_output.h"
#include "src/stages/builtin_stages.h"
#include "src/store/sqlite_store.h"
#include "tests/test_util.h"

namespace sluice::testing {
namespace {

using std::chrono::milliseconds;

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

// Holds every record until the test opens the gate up to an item id; polls the gate
// on a 1 ms timer of the stage's loop. Counts what it was asked to abandon.
class GateStage final : public AsyncStage {
 public:
  std::size_t max_in_flight() const override { return 10000; }
  void Start(Record record, AsyncContext& ctx) override {
    ctx_ = &ctx;
    held_.push_back(std::move(record));
    Arm();
  }
  std::chrono::milliseconds record_deadline() const override {
    return std::chrono::hours(1);
  }
  void Abandon(ItemId id, AsyncContext& ctx) override {
    auto it = std::find_if(held_.begin(), held_.end(),
                           [id](const Record& r) { return r.id() == id; });
    if (it == held_.end()) return;
    Record record = std::move(*it);
    held_.erase(it);
    record.Fail(FailureReason::kTimeout, "gate closed past the deadline");
    ctx.Complete(std::move(record));
  }
  ~GateStage() override {
    if (timer_ != 0 && ctx_ != nullptr) ctx_->loop().CancelTimer(timer_);
  }
  // Lets records with ids up to `id` through.
  void OpenUpTo(ItemId id) { open_up_to_ = id; }
  // Keeps the record `id` back even when the gate is open for it (a straggler),
  // until HoldBack(0).
  void HoldBack(ItemId id) { held_back_ = id; }
  std::size_t held() const { return held_count_.load(); }

 private:
  void Arm() {
    held_count_ = held_.size();
    if (timer_ != 0 || held_.empty()) return;
    timer_ = ctx_->loop().AddTimer(milliseconds(1), [this] {
      timer_ = 0;
      std::vector<Record> keep;
      for (Record& record : held_) {
        if (record.id() <= open_up_to_.load() && record.id() != held_back_.load()) {
          ctx_->Complete(std::move(record));
        } else {
          keep.push_back(std::move(record));
        }
      }
      held_.swap(keep);
      Arm();
    });
  }

  AsyncContext* ctx_ = nullptr;
  std::vector<Record> held_;  // loop thread
  EventLoop::TimerId timer_ = 0;
  std::atomic<ItemId> open_up_to_{0};
  std::atomic<ItemId> held_back_{0};
  std::atomic<std::size_t> held_count_{0};
};

// A Store that passes every call to a real one, and can fail or delay some: renewals
// fail while `fail_renewals` is set; the next `busy_commits` commits and
// `busy_leases` lease calls fail with kBusy; while `unreachable` is set, the worker's
// calls fail with kUnavailable (counted in `unreachable_calls`); the next
// `lost_commit_acks` commits are made and then reported kUnavailable (the connection
// dropped during COMMIT). Counts the leases of each batch.
class InjectingStore final : public Store {
 public:
  explicit InjectingStore(Store& inner) : inner_(inner) {}

  std::atomic<bool> fail_renewals{false};
  std::atomic<int> busy_commits{0};
  std::atomic<int> busy_leases{0};
  std::atomic<int> renew_calls{0};
  std::atomic<bool> unreachable{false};
  std::atomic<int> unreachable_calls{0};
  std::atomic<int> lost_commit_acks{0};

  std::map<BatchId, int> leases_taken() {
    std::lock_guard lock(mu_);
    return leases_taken_;
  }

  Result<InputState> BeginInput(const InputFingerprint& input) override {
    return inner_.BeginInput(input);
  }
  Status AppendItems(std::int64_t input_id, std::span<const ItemRow> items,
                     std::span<const RejectedLine> rejects, std::uint64_t lines_done,
                     std::uint32_t batch_size,
                     std::span<const std::string> groups) override {
    return inner_.AppendItems(input_id, items, rejects, lines_done, batch_size, groups);
  }
  Status FinishInput(std::int64_t input_id, std::uint64_t lines_done) override {
    return inner_.FinishInput(input_id, lines_done);
  }
  Result<std::vector<Lease>> LeaseBatches(std::string_view group, std::string_view owner,
                                          std::size_t max_batches,
                                          std::chrono::milliseconds duration,
                                          LeasePartition partition) override {
    if (busy_leases.fetch_sub(1) > 0) return Busy("injected: database is locked");
    if (Unreachable()) return Unavailable("injected: connection refused");
    auto leases = inner_.LeaseBatches(group, owner, max_batches, duration, partition);
    if (leases.ok()) {
      std::lock_guard lock(mu_);
      for (const Lease& lease : *leases) ++leases_taken_[lease.batch_id];
    }
    return leases;
  }
  Result<std::vector<BatchId>> RenewLeases(std::span<const Lease> leases,
                                           std::chrono::milliseconds duration) override {
    ++renew_calls;
    if (fail_renewals) return IoError("injected: renewal failed");
    if (Unreachable()) return Unavailable("injected: connection refused");
    return inner_.RenewLeases(leases, duration);
  }
  Result<std::vector<Record>> ReadBatchItems(const Lease& lease) override {
    if (Unreachable()) return Unavailable("injected: connection refused");
    return inner_.ReadBatchItems(lease);
  }
  using Store::CommitBatch;
  Status CommitBatch(const Lease& lease, std::span<const ResultRow> results,
                     const std::function<Status()>& publish) override {
    if (busy_commits.fetch_sub(1) > 0) return Busy("injected: database is locked");
    if (Unreachable()) return Unavailable("injected: connection refused");
    Status committed = inner_.CommitBatch(lease, results, publish);
    if (committed.ok() && lost_commit_acks.fetch_sub(1) > 0) {
      return Unavailable("injected: server closed the connection during COMMIT");
    }
    return committed;
  }
  Status ReleaseBatch(const Lease& lease) override {
    if (Unreachable()) return Unavailable("injected: connection refused");
    return inner_.ReleaseBatch(lease);
  }
  Result<std::optional<std::uint64_t>> CommittedToken(std::string_view group,
                                                      BatchId batch) override {
    if (Unreachable()) return Unavailable("injected: connection refused");
    return inner_.CommittedToken(group, batch);
  }
  Status ReportWorker(const WorkerReport& report) override {
    if (Unreachable()) return Unavailable("injected: connection refused");
    return inner_.ReportWorker(report);
  }
  Result<std::vector<WorkerReport>> ListWorkers() override {
    return inner_.ListWorkers();
  }
  Result<std::vector<WorkerSample>> ListSamples(std::string_view group) override {
    return inner_.ListSamples(group);
  }
  Result<std::uint64_t> ReleaseLeasesOfDeadOwners(
      std::string_view group,
      const std::function<bool(std::string_view owner)>& is_dead) override {
    return inner_.ReleaseLeasesOfDeadOwners(group, is_dead);
  }
  Result<StoreSummary> Summarize(std::string_view group) override {
    if (Unreachable()) return Unavailable("injected: connection refused");
    return inner_.Summarize(group);
  }
  Status ExportRows(std::string_view group,
                    const std::function<Status(const ExportRow& row)>& row) override {
    return inner_.ExportRows(group, row);
  }
  Status ListRejects(const std::function<Status(std::string_view path,
                                                const RejectedLine&)>& reject) override {
    return inner_.ListRejects(reject);
  }
  Result<std::uint64_t> RetryFailed(std::string_view group,
                                    std::optional<FailureReason> reason) override {
    return inner_.RetryFailed(group, reason);
  }
  Status RedoFromFirstGroup(const Lease& lease) override {
    return inner_.RedoFromFirstGroup(lease);
  }
  Result<std::optional<std::string>> GetMeta(std::string_view key) override {
    return inner_.GetMeta(key);
  }
  Status SetMeta(std::string_view key, std::string_view value) override {
    return inner_.SetMeta(key, value);
  }

 private:
  bool Unreachable() {
    if (!unreachable) return false;
    ++unreachable_calls;
    return true;
  }

  Store& inner_;
  std::mutex mu_;
  std::map<BatchId, int> leases_taken_;  // guarded by mu_
};

// Collects the worker's log lines.
class LogLines {
 public:
  WorkerLog Sink() {
    return [this](std::string_view line) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(line);
    };
  }
  // How many lines contain `text`.
  int Count(std::string_view text) {
    std::lock_guard lock(mu_);
    int count = 0;
    for (const std::string& line : lines_) count += line.find(text) != line.npos;
    return count;
  }
  std::string All() {
    std::lock_guard lock(mu_);
    std::string all;
    for (const std::string& line : lines_) all += line + "\n";
    return all;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// Runs `worker` on a thread; Join() waits for it with a deadline that only guards
// against a hang.
class RunningWorker {
 public:
  explicit RunningWorker(Worker& worker) : worker_(worker) {
    thread_ = std::thread([this] {
      Result<WorkerEnd> end = worker_.Run();
      std::lock_guard lock(mu_);
      end_.emplace(std::move(end));
    });
  }
  ~RunningWorker() {
    if (thread_.joinable()) {
      worker_.Abort();
      thread_.join();
    }
  }
  // The worker's end, or nullopt if it still runs after `timeout`.
  std::optional<Result<WorkerEnd>> Join(std::chrono::seconds timeout) {
    if (!WaitFor(
            [&] {
              std::lock_guard lock(mu_);
              return end_.has_value();
            },
            timeout)) {
      return std::nullopt;
    }
    thread_.join();
    return end_;
  }

 private:
  Worker& worker_;
  std::thread thread_;
  std::mutex mu_;
  std::optional<Result<WorkerEnd>> end_;  // guarded by mu_
};

std::vector<NamedStage> GateStages(GateStage** gate) {
  auto owned = std::make_unique<GateStage>();
  *gate = owned.get();
  std::vector<NamedStage> stages;
  stages.push_back({"gate", std::move(owned)});
  return stages;
}

// The hang this guards against: a batch whose lease expired while its holder still
// worked on it (renewals failing, or late) was handed back to that same holder,
// which submitted it a second time; the runtime then counted the batch's records
// twice, the batch could never complete, and the run hung in Finish(). Now the
// store keeps an expired lease from its own holder, so every batch is leased once.
TEST(WorkerTest, AnExpiredLeaseIsNotHandedBackToTheWorkerHoldingIt) {
  TempDir dir;
  ManualStoreClock clock;
  auto sqlite = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(sqlite, nullptr);
  Ingest(*sqlite, 30, 10);
  InjectingStore store(*sqlite);

  LogLines log;
  WorkerOptions options;
  options.owner = "worker-a";
  // On the test's clock, which moves only when told; renewals run every 100 ms.
  options.lease = milliseconds(300);
  options.max_batches_in_flight = 2;
  options.log = log.Sink();
  GateStage* gate = nullptr;
  Worker worker(store, options, GateStages(&gate));
  RunningWorker running(worker);
  ASSERT_TRUE(WaitFor([&] { return gate->held() == 20; }, std::chrono::seconds(30)));

  store.fail_renewals = true;  // a busy store, a paused VM: the leases run out
  ASSERT_TRUE(WaitFor([&] { return worker.Progress().renew_errors >= 1; },
                      std::chrono::seconds(30)));
  clock.Advance(301);
  gate->OpenUpTo(10);  // batch 1 commits (its lease expired, but nobody took it)
  ASSERT_TRUE(WaitFor([&] { return worker.Progress().batches_committed == 1; },
                      std::chrono::seconds(30)));
  // Its slot is leased again: batch 3, not the expired batch 2 it still works on.
  ASSERT_TRUE(WaitFor([&] { return gate->held() == 20; }, std::chrono::seconds(30)));
  store.fail_renewals = false;
  gate->OpenUpTo(30);

  std::optional<Result<WorkerEnd>> end = running.Join(std::chrono::seconds(60));
  ASSERT_TRUE(end.has_value()) << "the worker hung";
  ASSERT_TRUE(end->ok()) << end->status().ToString();
  EXPECT_EQ(**end, WorkerEnd::kFinished);
  EXPECT_EQ(store.leases_taken(), (std::map<BatchId, int>{{1, 1}, {2, 1}, {3, 1}}));
  EXPECT_EQ(worker.Progress().batches_committed, 3u);
  EXPECT_EQ(worker.Progress().items_committed, 30u);
  EXPECT_GE(worker.Progress().renew_errors, 1u);
  EXPECT_EQ(log.Count("could not renew"), 1) << "once per cause:\n" << log.All();
}

// Renewals fail while another worker takes the expired batches over and does them.
// Once renewals work again, the first worker learns its leases are lost, drops
// their records (the gate never lets them through: it must not wait for them) and
// ends; every item has one result, from the new owner.
TEST(WorkerTest, LostLeasesAreDroppedNotWaitedForAndNothingIsDuplicated) {
  TempDir dir;
  ManualStoreClock clock;
  auto sqlite_a = OpenStore(dir.File("s.db"), clock);
  auto store_b = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(sqlite_a, nullptr);
  ASSERT_NE(store_b, nullptr);
  Ingest(*sqlite_a, 30, 10);
  InjectingStore store_a(*sqlite_a);

  LogLines log;
  WorkerOptions options;
  options.owner = "worker-a";
  options.lease = milliseconds(300);  // on the test's clock; renewed every 100 ms
  options.max_batches_in_flight = 2;
  options.log = log.Sink();
  GateStage* gate = nullptr;
  Worker worker_a(store_a, options, GateStages(&gate));
  RunningWorker running_a(worker_a);
  ASSERT_TRUE(WaitFor([&] { return gate->held() == 20; }, std::chrono::seconds(30)));

  store_a.fail_renewals = true;
  ASSERT_TRUE(WaitFor([&] { return worker_a.Progress().renew_errors >= 1; },
                      std::chrono::seconds(30)));
  clock.Advance(301);
  WorkerOptions options_b;
  options_b.owner = "worker-b";
  Worker worker_b(*store_b, options_b, SleepThenFail(milliseconds(1), 0));
  auto end_b = worker_b.Run();  // takes batches 1 and 2 over, and does batch 3
  ASSERT_TRUE(end_b.ok()) << end_b.status().ToString();
  EXPECT_EQ(*end_b, WorkerEnd::kFinished);
  EXPECT_EQ(worker_b.Progress().batches_committed, 3u);

  store_a.fail_renewals = false;
  std::optional<Result<WorkerEnd>> end_a = running_a.Join(std::chrono::seconds(60));
  ASSERT_TRUE(end_a.has_value()) << "worker A waited for records of lost leases";
  ASSERT_TRUE(end_a->ok()) << end_a->status().ToString();
  EXPECT_EQ(**end_a, WorkerEnd::kFinished);
  EXPECT_EQ(worker_a.Progress().batches_lost, 2u);
  EXPECT_EQ(worker_a.Progress().batches_committed, 0u);
  EXPECT_EQ(log.Count("lost the leases of batches 1, 2"), 1) << log.All();

  std::map<ItemId, int> results;
  ASSERT_TRUE(store_b
                  ->ExportRows("main",
                               [&](const ExportRow& row) {
                                 results[row.id] += row.has_result;
                                 return Status::Ok();
                               })
                  .ok());
  ASSERT_EQ(results.size(), 30u);
  for (const auto& [id, count] : results) EXPECT_EQ(count, 1) << "item " << id;
}

TEST(WorkerTest, AStallReleasesTheLeasesAndEndsTheRun) {
  TempDir dir;
  ManualStoreClock clock;
  auto store = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(store, nullptr);
  Ingest(*store, 20, 10);

  LogLines log;
  WorkerOptions options;
  options.stall_timeout = milliseconds(300);
  options.log = log.Sink();
  GateStage* gate = nullptr;
  Worker worker(*store, options, GateStages(&gate));  // the gate never opens
  RunningWorker running(worker);
  std::optional<Result<WorkerEnd>> end = running.Join(std::chrono::seconds(60));
  ASSERT_TRUE(end.has_value()) << "no stall detected";
  ASSERT_TRUE(end->ok()) << end->status().ToString();
  EXPECT_EQ(**end, WorkerEnd::kStalled);
  EXPECT_EQ(log.Count("stalled: no record moved"), 1) << log.All();
  EXPECT_EQ(log.Count("2 batches held (1, 2), 20 records in flight"), 1) << log.All();
  EXPECT_EQ(log.Count("stage gate: 20 records in"), 1) << log.All();
  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->batches_pending, 2u) << "released for the next run";
  EXPECT_EQ(summary->results_ok + summary->results_failed, 0u);
}

TEST(WorkerTest, ABusyStoreIsRetriedNotFatal) {
  TempDir dir;
  ManualStoreClock clock;
  auto sqlite = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(sqlite, nullptr);
  Ingest(*sqlite, 50, 10);
  InjectingStore store(*sqlite);
  store.busy_leases = 2;
  store.busy_commits = 3;

  LogLines log;
  WorkerOptions options;
  options.busy_backoff_max = milliseconds(20);
  options.log = log.Sink();
  Worker worker(store, options, SleepThenFail(milliseconds(1), 0));
  auto end = worker.Run();
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, WorkerEnd::kFinished);
  EXPECT_EQ(worker.Progress().items_committed, 50u);
  EXPECT_EQ(worker.Progress().busy_retries, 5u);
  EXPECT_EQ(log.Count("commit: the store is busy"), 1) << log.All();
  EXPECT_EQ(log.Count("lease: the store is busy"), 1) << log.All();
}

// PostgreSQL restarted or the link cut, for longer than the stall timeout: every
// call of the worker fails with kUnavailable. It keeps trying (the watchdog waits,
// the outage is the store's) and, once the store is back, finishes every batch once.
TEST(WorkerTest, AnUnreachableStoreIsWaitedForNotAStall) {
  TempDir dir;
  ManualStoreClock clock;
  auto sqlite = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(sqlite, nullptr);
  Ingest(*sqlite, 40, 10);
  InjectingStore store(*sqlite);

  GateStage* gate = nullptr;
  LogLines log;
  WorkerOptions options;
  options.unavailable_backoff_max = milliseconds(5);
  options.stall_timeout = milliseconds(250);
  options.lease = milliseconds(600'000);
  options.log = log.Sink();
  Worker worker(store, options, GateStages(&gate));
  RunningWorker running(worker);
  ASSERT_TRUE(WaitFor([&] { return gate->held() > 0; }, std::chrono::seconds(60)));
  store.unreachable = true;
  gate->OpenUpTo(40);
  // Many tries, soon 5 ms apart (two threads retry: the source's lease and the
  // collector's commit): the outage lasts several times the stall timeout.
  ASSERT_TRUE(WaitFor([&] { return store.unreachable_calls.load() >= 800; },
                      std::chrono::seconds(120)));
  store.unreachable = false;

  auto end = running.Join(std::chrono::seconds(120));
  ASSERT_TRUE(end.has_value()) << "hung";
  ASSERT_TRUE(end->ok()) << end->status().ToString();
  EXPECT_EQ(**end, WorkerEnd::kFinished);
  EXPECT_EQ(worker.Progress().items_committed, 40u);
  EXPECT_GT(worker.Progress().unavailable_retries, 0u);
  EXPECT_EQ(log.Count("stalled"), 0) << log.All();
  EXPECT_EQ(log.Count("cannot reach the store"), log.Count("is reachable again"))
      << log.All();
  for (const auto& [batch, leases] : store.leases_taken()) EXPECT_EQ(leases, 1) << batch;
}

// The connection dropped while COMMIT was on its way: the commit was made, but the
// worker only hears "unavailable". Its retry is accepted, and nothing is counted or
// written twice.
TEST(WorkerTest, ACommitWhoseAcknowledgementWasLostCountsOnce) {
  TempDir dir;
  ManualStoreClock clock;
  auto sqlite = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(sqlite, nullptr);
  Ingest(*sqlite, 30, 10);
  InjectingStore store(*sqlite);
  store.lost_commit_acks = 2;

  WorkerOptions options;
  options.unavailable_backoff_max = milliseconds(5);
  options.log = [](std::string_view) {};
  Worker worker(store, options, SleepThenFail(milliseconds(1), 0));
  auto end = worker.Run();
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, WorkerEnd::kFinished);
  EXPECT_EQ(worker.Progress().batches_committed, 3u);
  EXPECT_EQ(worker.Progress().items_committed, 30u);
  EXPECT_EQ(worker.Progress().batches_lost, 0u);
  EXPECT_EQ(worker.Progress().unavailable_retries, 2u);
  auto summary = sqlite->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->batches_done, 3u);
  EXPECT_EQ(summary->results_ok, 30u);
}

// Marks each record: an int field `name` = 1, and with `bytes`, a Bytes field too (an
// in-flight value, which travels between groups but is never a result).
class MarkStage final : public CpuStage {
 public:
  MarkStage(std::string name, bool bytes) : name_(std::move(name)), bytes_(bytes) {}
  void ProcessOne(Record& record) override {
    record.Set(name_, std::int64_t{1});
    if (bytes_) record.Set("pixels", Bytes(1000, static_cast<std::uint8_t>(record.id())));
    // Group b checks what group a left.
    if (name_ == "b_done") {
      const Value* pixels = record.Find("pixels");
      const Bytes* bytes = pixels ? std::get_if<Bytes>(pixels) : nullptr;
      if (bytes == nullptr || bytes->size() != 1000 ||
          (*bytes)[0] != static_cast<std::uint8_t>(record.id())) {
        record.Fail(FailureReason::kInternal, "group a's pixels did not arrive");
      }
    }
  }

 private:
  std::string name_;
  bool bytes_;
};

std::vector<NamedStage> Marks(std::string name, bool bytes) {
  std::vector<NamedStage> stages;
  stages.push_back({name, std::make_unique<MarkStage>(name, bytes)});
  return stages;
}

// Every one of `items` items has group b's result, ok, with both groups' marks.
void ExpectEveryItemPassedBothGroups(Store& store, std::size_t items) {
  std::vector<ExportRow> exported;
  ASSERT_TRUE(store
                  .ExportRows("b",
                              [&](const ExportRow& row) {
                                exported.push_back(row);
                                return Status::Ok();
                              })
                  .ok());
  ASSERT_EQ(exported.size(), items);
  for (const ExportRow& row : exported) {
    EXPECT_EQ(row.reason, FailureReason::kNone) << row.id << ": " << row.error;
    EXPECT_EQ(row.fields_json, R"({"a_done":1,"b_done":1})") << row.id;
  }
}

// Two stage groups, a then b, through a blob directory. A zombie of group a (its
// lease expired and was taken over) writes its payload late: under its own token's
// name, so it never replaces the payload the commit made valid; group b reads the
// valid one, collects the zombie's at start, and removes the rest once committed.
TEST(WorkerTest, StageGroupsPassBatchesThroughFencedPayloads) {
  TempDir dir;
  ManualStoreClock clock;
  auto store = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(store, nullptr);
  std::vector<ItemRow> rows;
  for (int i = 1; i <= 20; ++i) rows.push_back({"http://x/" + std::to_string(i), ""});
  IngestRows(*store, rows, 10, {"a", "b"});
  auto blobs = OpenDirectoryBlobStore(dir.File("blobs"));
  ASSERT_TRUE(blobs.ok());

  auto zombie = store->LeaseBatches("a", "zombie", 1, milliseconds(1000));
  ASSERT_TRUE(zombie.ok() && zombie->size() == 1);
  clock.Advance(1001);

  WorkerOptions a;
  a.group = "a";
  a.has_next_group = true;
  a.blobs = blobs->get();
  a.log = [](std::string_view) {};
  Worker first(*store, a, Marks("a_done", true));
  auto a_end = first.Run();
  ASSERT_TRUE(a_end.ok()) << a_end.status().ToString();
  EXPECT_EQ(*a_end, WorkerEnd::kFinished);
  EXPECT_GT(first.Progress().payload_bytes, 0u);
  // Batch 1 was taken over (token 2); the zombie writes late, under token 1.
  EXPECT_EQ(store->CommittedToken("a", 1).value(), std::optional<std::uint64_t>(2));
  ASSERT_TRUE((*blobs)->Put(PayloadName("a", 1, 1), "zombie's records").ok());
  EXPECT_EQ((*blobs)->List("a/").value().size(), 3u);

  StageRegistry decoders;
  WorkerOptions b;
  b.group = "b";
  b.previous_group = "a";
  b.blobs = blobs->get();
  b.payload_decoders = &decoders;
  LogLines log;
  b.log = log.Sink();
  Worker second(*store, b, Marks("b_done", false));
  auto b_end = second.Run();
  ASSERT_TRUE(b_end.ok()) << b_end.status().ToString();
  EXPECT_EQ(*b_end, WorkerEnd::kFinished);
  EXPECT_EQ(log.Count("collected 1 payloads of group a"), 1) << log.All();
  EXPECT_TRUE((*blobs)->List("a/").value().empty());

  ExpectEveryItemPassedBothGroups(*store, 20);
}

// Runs `worker` on a thread of its own until Stop() (or the end of the scope, also
// when an assertion returns early): stops it and joins the thread.
class BackgroundRun {
 public:
  explicit BackgroundRun(Worker& worker)
      : worker_(worker), thread_([this] { end_ = worker_.Run(); }) {}
  ~BackgroundRun() {
    worker_.RequestStop();
    if (thread_.joinable()) thread_.join();
  }
  BackgroundRun(const BackgroundRun&) = delete;
  BackgroundRun& operator=(const BackgroundRun&) = delete;
  [[nodiscard]] Result<WorkerEnd> Stop() {
    worker_.RequestStop();
    if (thread_.joinable()) thread_.join();
    return end_;
  }

 private:
  Worker& worker_;
  Result<WorkerEnd> end_ = WorkerEnd::kStopped;
  std::thread thread_;  // last: it starts once the members above are made
};

// Group b reads a payload as its stages take the records. A payload damaged (a
// flipped byte in a later record, records missing: found half-way) or lost (not
// there) is never committed: the batch goes back to group a to be redone, and then
// passes whole.
TEST(WorkerTest, ALostOrDamagedPayloadIsRedoneFromTheFirstGroupNeverCommitted) {
  enum class Harm { kFlippedByte, kRecordsMissing, kRemoved };
  for (const Harm harm : {Harm::kFlippedByte, Harm::kRecordsMissing, Harm::kRemoved}) {
    SCOPED_TRACE(static_cast<int>(harm));
    TempDir dir;
    ManualStoreClock clock;
    auto store = OpenStore(dir.File("s.db"), clock);
    ASSERT_NE(store, nullptr);
    std::vector<ItemRow> rows;
    for (int i = 1; i <= 20; ++i) rows.push_back({"http://x/" + std::to_string(i), ""});
    IngestRows(*store, rows, 10, {"a", "b"});
    auto blobs = OpenDirectoryBlobStore(dir.File("blobs"));
    ASSERT_TRUE(blobs.ok());
    WorkerOptions a;
    a.group = "a";
    a.has_next_group = true;
    a.blobs = blobs->get();
    a.log = [](std::string_view) {};
    {
      Worker first(*store, a, Marks("a_done", true));
      ASSERT_TRUE(first.Run().ok());
    }

    const std::string name = PayloadName("a", 1, store->CommittedToken("a", 1)->value());
    std::string bytes = (*blobs)->Get(name).value();
    if (harm == Harm::kRemoved) {
      ASSERT_TRUE((*blobs)->Remove(name).ok());
    } else {
      if (harm == Harm::kRecordsMissing) {
        // Whole records (one frame each), but only the first few.
        auto records = DecodeRecords(bytes, StageRegistry()).value();
        records.resize(4);
        bytes = EncodeRecords(records).value();
      } else {
        bytes[bytes.size() * 3 / 4] = static_cast<char>(bytes[bytes.size() * 3 / 4] ^ 0x5a);
      }
      ASSERT_TRUE((*blobs)->Put(name, bytes).ok());
    }

    // Group b finds it and gives the batch back (b runs until stopped: batch 1
    // waits for group a); group a, run again, redoes batch 1 alone.
    StageRegistry decoders;
    WorkerOptions b;
    b.group = "b";
    b.previous_group = "a";
    b.blobs = blobs->get();
    b.payload_decoders = &decoders;
    b.exit_when_done = false;
    b.idle_poll = milliseconds(10);
    LogLines log;
    b.log = log.Sink();
    Worker second(*store, b, Marks("b_done", false));
    BackgroundRun detect(second);
    ASSERT_TRUE(WaitFor([&] { return second.Progress().batches_redone == 1; },
                        std::chrono::seconds(30)))
        << log.All();
    EXPECT_EQ(store->CommittedToken("b", 1).value(), std::nullopt);
    Worker again(*store, a, Marks("a_done", true));
    ASSERT_TRUE(again.Run().ok());
    EXPECT_EQ(again.Progress().batches_committed, 1u);
    ASSERT_TRUE(WaitFor([&] { return second.Progress().batches_committed == 2; },
                        std::chrono::seconds(30)))
        << log.All();
    Result<WorkerEnd> b_end = detect.Stop();
    ASSERT_TRUE(b_end.ok()) << b_end.status().ToString();
    EXPECT_EQ(log.Count("goes back to be redone from the first group"), 1) << log.All();
    EXPECT_EQ(log.Count("the payload of batch 1 from group a"), 1) << log.All();

    ExpectEveryItemPassedBothGroups(*store, 20);
  }
}

// Workers of a cluster run for weeks: what dead attempts of the previous group left
// is collected while the run goes on, not only at its start.
TEST(WorkerTest, PayloadsOfDeadAttemptsAreCollectedWhileTheRunGoesOn) {
  TempDir dir;
  ManualStoreClock clock;
  auto store = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(store, nullptr);
  IngestRows(*store, {{"http://x/1", ""}, {"http://x/2", ""}}, 2, {"a", "b"});
  auto blobs = OpenDirectoryBlobStore(dir.File("blobs"));
  ASSERT_TRUE(blobs.ok());
  WorkerOptions a;
  a.group = "a";
  a.has_next_group = true;
  a.blobs = blobs->get();
  a.log = [](std::string_view) {};
  Worker first(*store, a, Marks("a_done", true));
  ASSERT_TRUE(first.Run().ok());

  StageRegistry decoders;
  WorkerOptions b;
  b.group = "b";
  b.previous_group = "a";
  b.blobs = blobs->get();
  b.payload_decoders = &decoders;
  b.exit_when_done = false;
  b.collect_every = milliseconds(20);
  b.log = [](std::string_view) {};
  Worker second(*store, b, Marks("b_done", false));
  BackgroundRun detect(second);
  ASSERT_TRUE(WaitFor([&] { return second.Progress().batches_committed == 1; },
                      std::chrono::seconds(30)));
  // A late writer of group a (its lease long taken over) leaves its payload now.
  ASSERT_TRUE((*blobs)->Put(PayloadName("a", 1, 99), "late").ok());
  EXPECT_TRUE(WaitFor([&] { return (*blobs)->List("a/").value().empty(); },
                      std::chrono::seconds(30)));
}

// A stop is honoured while the source is blocked handing records to a full
// pipeline: after the grace period the worker aborts, releases and returns.
TEST(WorkerTest, AStopEndsTheWorkerWhileItsSourceIsBlocked) {
  TempDir dir;
  ManualStoreClock clock;
  auto store = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(store, nullptr);
  Ingest(*store, 40, 20);

  WorkerOptions options;
  options.grace = milliseconds(100);
  options.runtime.chunk_size = 1;
  options.runtime.channel_capacity = 1;
  GateStage* gate = nullptr;
  Worker worker(*store, options, GateStages(&gate));
  RunningWorker running(worker);
  ASSERT_TRUE(WaitFor([&] { return gate->held() > 0; }, std::chrono::seconds(30)));
  worker.RequestStop();
  std::optional<Result<WorkerEnd>> end = running.Join(std::chrono::seconds(60));
  ASSERT_TRUE(end.has_value()) << "the stop was not honoured";
  ASSERT_TRUE(end->ok()) << end->status().ToString();
  EXPECT_EQ(**end, WorkerEnd::kStopped);
  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->batches_leased, 0u);
  EXPECT_EQ(summary->batches_pending, 2u);
}

// Gives each record a "body" of 2,000 bytes derived from its id.
class BodyStage final : public CpuStage {
 public:
  static Bytes BodyOf(ItemId id) {
    Bytes body(2000);
    for (std::size_t i = 0; i < body.size(); ++i) {
      body[i] = static_cast<std::uint8_t>((id * 31 + i) & 0xff);
    }
    return body;
  }
  void ProcessOne(Record& record) override {
    record.Set("body", BodyOf(record.id()));
    record.Set("content_type", std::string("image/jpeg"));
  }
};

// The web's tail: one record of the first batch never finishes (until the end).
// With a record budget, the other batches flow past it and commit meanwhile; the
// finished records of the waiting batch keep no bytes in memory (spilled to disk,
// max_held_bytes 0), and its outputs, once it completes, are whole and exact.
TEST(WorkerTest, AStragglerHoldsOnlyItsOwnSlotAndItsBatchWaitsOnDisk) {
  TempDir dir;
  ManualStoreClock clock;
  auto store = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(store, nullptr);
  Ingest(*store, 100, 10);
  OutputConfig config;
  config.layout = OutputLayout::kFiles;
  config.image_field = "body";
  FileBatchOutput output(config, /*batch_size=*/10, dir.File("out"));
  ASSERT_TRUE(output.Prepare().ok());

  WorkerOptions options;
  options.max_records_in_flight = 20;  // two batches' worth in the stages
  options.max_batches_in_flight = 20;  // open batches: the waiting one among them
  options.max_held_bytes = 0;          // every early record goes to disk
  options.runtime.chunk_size = 1;      // records reach the end one by one
  auto gate_owned = std::make_unique<GateStage>();
  GateStage* gate = gate_owned.get();
  gate->HoldBack(1);
  gate->OpenUpTo(1000);
  std::vector<NamedStage> stages;
  stages.push_back({"gate", std::move(gate_owned)});
  stages.push_back({"body", std::make_unique<BodyStage>()});
  Worker worker(*store, options, std::move(stages), &output);
  RunningWorker running(worker);
  ASSERT_TRUE(WaitFor([&] { return worker.Progress().batches_committed == 9; },
                      std::chrono::seconds(60)))
      << "the other batches did not pass the straggler";
  EXPECT_EQ(worker.Progress().batches_in_flight, 1u);
  EXPECT_GE(worker.Progress().spilled_records, 9u) << "batch 1's early records";
  EXPECT_EQ(worker.Progress().held_bytes, 0u);
  gate->HoldBack(0);
  std::optional<Result<WorkerEnd>> end = running.Join(std::chrono::seconds(60));
  ASSERT_TRUE(end.has_value());
  ASSERT_TRUE(end->ok()) << end->status().ToString();
  EXPECT_EQ(**end, WorkerEnd::kFinished);
  EXPECT_EQ(worker.Progress().items_committed, 100u);

  for (ItemId id = 1; id <= 100; ++id) {
    const std::string path = dir.File("out") + "/images/" +
                             FileBatchOutput::BatchName((id - 1) / 10 + 1) + "/" +
                             FileBatchOutput::ItemKey(id) + ".jpg";
    const Bytes want = BodyStage::BodyOf(id);
    EXPECT_EQ(ReadFile(path), std::string(want.begin(), want.end())) << path;
  }
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator(dir.File("out") + "/spill", error)) {
    ADD_FAILURE() << "spill file left: " << entry.path();
  }
}

TEST(WorkerTest, CommitsEveryBatchOnceWithASmallBudget) {
  TempDir dir;
  ManualStoreClock clock;
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
// A's late commit is refused, B's results stay, and A is not derailed by it. A's
// records wait in a gate the test opens only after B committed: no time window.
TEST(WorkerTest, AWorkerWhoseLeaseWasTakenOverCannotCommit) {
  TempDir dir;
  ManualStoreClock clock;
  auto store_a = OpenStore(dir.File("s.db"), clock);
  auto store_b = OpenStore(dir.File("s.db"), clock);
  ASSERT_NE(store_a, nullptr);
  ASSERT_NE(store_b, nullptr);
  Ingest(*store_a, 10, 10);

  WorkerOptions options;
  options.owner = "worker-a";
  options.lease = milliseconds(60000);  // renewed every 20 s: not during this test
  options.max_batches_in_flight = 1;
  GateStage* gate = nullptr;
  Worker worker_a(*store_a, options, GateStages(&gate));
  RunningWorker running_a(worker_a);
  // A's records are in its stage (so A read the batch before B takes it).
  ASSERT_TRUE(WaitFor([&] { return gate->held() == 10; }, std::chrono::seconds(30)));
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
  gate->OpenUpTo(10);

  std::optional<Result<WorkerEnd>> end_a = running_a.Join(std::chrono::seconds(60));
  ASSERT_TRUE(end_a.has_value()) << "worker A hung";
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
  ManualStoreClock clock;
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
