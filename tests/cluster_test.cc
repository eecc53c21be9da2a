// Several `sluice worker` processes sharing one PostgreSQL store, end to end: the real
// binary, a throwaway PostgreSQL server started by the test on loopback
// (tests/support/postgres_server.h). Every item ends with exactly one result, the
// same as a single-process `sluice run` on SQLite gives, also when a worker is killed
// mid-run.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/postgres_server.h"
#include "tests/test_util.h"

namespace sluice::testing {
namespace {

using std::chrono::seconds;

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    auto url = server_->CreateDatabase();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = *url;
  }

  // An input of `count` URLs (never fetched: the example pipelines do not download).
  std::string WriteUrls(int count) {
    std::string text;
    for (int i = 0; i < count; ++i)
      text += "http://example.com/" + std::to_string(i) + "\n";
    return dir_.Write("urls.txt", text);
  }

  // The flaky example: each item held wait_ms_ (on a timer, all at once), then 10% of
  // the items failing as timeouts; small batches, so that many are leased.
  std::vector<std::string> Pipeline() const {
    std::vector<std::string> args = {SourceDir() + "/pipelines/examples/flaky.yaml",
                                     "--set", "batch_size=50", "--set",
                                     "stages.wait.ms=" + std::to_string(wait_ms_)};
    if (split_) {
      // Two stage groups: `slow` waits, `flaky` fails some.
      args.insert(args.end(), {"--set",
                               "groups=[{name: slow, stages: [wait]}, "
                               "{name: flaky, stages: [flake]}]"});
    }
    return args;
  }

  std::vector<std::string> WorkerArgs(const std::string& name,
                                      std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"worker"};
    for (const std::string& arg : Pipeline()) args.push_back(arg);
    for (const std::string& arg : std::vector<std::string>{
             "--store", url_, "--workdir", dir_.File(name), "--status-interval", "0"}) {
      args.push_back(arg);
    }
    if (split_) args.insert(args.end(), {"--blobs", dir_.File("blobs")});
    for (std::string& arg : extra) args.push_back(std::move(arg));
    return args;
  }

  // (id, status, reason) of every exported row, one line each.
  static std::string Outcomes(const std::string& jsonl) {
    std::istringstream lines(jsonl);
    std::string out;
    for (std::string line; std::getline(lines, line);) {
      const nlohmann::json row = nlohmann::json::parse(line);
      out += row["id"].dump() + " " + row["status"].get<std::string>() + " " +
             row.value("reason", std::string()) + "\n";
    }
    return out;
  }

  std::string ExportStore() {
    CommandResult exported = RunSluice({"export", "--store", url_});
    EXPECT_EQ(exported.exit_code, 0) << exported.err;
    return exported.out;
  }

  // What one process makes of the same input on SQLite.
  std::string SingleRunOutcomes(const std::string& input) {
    std::vector<std::string> args = {"run"};
    for (const std::string& arg : Pipeline()) args.push_back(arg);
    for (const std::string& arg :
         std::vector<std::string>{"--input", input, "--workdir", dir_.File("single"),
                                  "--status-interval", "0"}) {
      args.push_back(arg);
    }
    CommandResult run = RunSluice(args, seconds(300));
    EXPECT_EQ(run.exit_code, 0) << run.err;
    CommandResult exported = RunSluice({"export", "--workdir", dir_.File("single")});
    EXPECT_EQ(exported.exit_code, 0) << exported.err;
    return Outcomes(exported.out);
  }

  void Ingest(const std::string& input) {
    std::vector<std::string> args = {"ingest"};
    for (const std::string& arg : Pipeline()) args.push_back(arg);
    args.insert(args.end(), {"--input", input, "--store", url_});
    CommandResult ingest = RunSluice(args);
    ASSERT_EQ(ingest.exit_code, 0) << ingest.err;
  }

  int wait_ms_ = 1;
  bool split_ = false;  // the pipeline in two stage groups
  TempDir dir_;
  std::unique_ptr<PostgresServer> server_;
  std::string url_;
};

TEST_F(ClusterTest, WorkersSharingAStoreGiveWhatOneProcessGives) {
  const std::string input = WriteUrls(3000);
  Ingest(input);
  std::vector<std::unique_ptr<SluiceProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(std::make_unique<SluiceProcess>(
        WorkerArgs("w" + std::to_string(i), {"--exit-when-done"}), dir_.path()));
  }
  for (auto& worker : workers) {
    CommandResult result;
    ASSERT_TRUE(worker->Wait(std::chrono::minutes(5), &result)) << "a worker did not end";
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  const std::string outcomes = Outcomes(ExportStore());
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), '\n'), 3000);
  EXPECT_EQ(outcomes, SingleRunOutcomes(input));

  CommandResult status = RunSluice({"status", "--store", url_, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const nlohmann::json summary = nlohmann::json::parse(status.out);
  EXPECT_EQ(summary["items"], 3000);
  EXPECT_EQ(summary["batches"]["done"], 60);
  EXPECT_EQ(summary["results"]["ok"].get<int>() + summary["results"]["failed"].get<int>(),
            3000);
}

TEST_F(ClusterTest, PartitionedWorkersTakeOnlyTheirBatchesAndTogetherFinish) {
  const std::string input = WriteUrls(1000);  // 20 batches
  Ingest(input);
  std::vector<std::unique_ptr<SluiceProcess>> workers;
  for (int k = 0; k < 2; ++k) {
    workers.push_back(std::make_unique<SluiceProcess>(
        WorkerArgs("p" + std::to_string(k),
                   {"--exit-when-done", "--partition", std::to_string(k) + "/2"}),
        dir_.path()));
  }
  for (auto& worker : workers) {
    CommandResult result;
    ASSERT_TRUE(worker->Wait(std::chrono::minutes(5), &result)) << "a worker did not end";
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  // Each wrote the metadata of its own batches only: odd ids in p1, even in p0.
  for (int k = 0; k < 2; ++k) {
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(
             dir_.File("p" + std::to_string(k)) + "/output/metadata")) {
      const int batch = std::stoi(entry.path().stem().string());
      EXPECT_EQ(batch % 2, k) << entry.path();
      ++files;
    }
    EXPECT_EQ(files, 10) << k;
  }
  EXPECT_EQ(Outcomes(ExportStore()), SingleRunOutcomes(input));

  CommandResult bad = RunSluice(WorkerArgs("bad", {"--partition", "2/2"}));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--partition 2/2"), std::string::npos) << bad.err;
}

TEST_F(ClusterTest, AKilledWorkersBatchesAreRedoneByTheOthersOnce) {
  // Slow enough batches (half a second each) that the victim is caught holding some.
  wait_ms_ = 500;
  const std::string input = WriteUrls(2000);
  Ingest(input);
  // A short lease, so that the killed worker's batches come back soon.
  auto victim = std::make_unique<SluiceProcess>(
      WorkerArgs("victim", {"--set", "lease_seconds=2"}), dir_.path());
  // Kill it once it holds leases and has committed something.
  ASSERT_TRUE(WaitFor(
      [&] {
        CommandResult status = RunSluice({"status", "--store", url_, "--json"});
        if (status.exit_code != 0) return false;
        const nlohmann::json summary = nlohmann::json::parse(status.out);
        return summary["batches"]["done"].get<int>() >= 2 &&
               summary["batches"]["leased"].get<int>() >= 1;
      },
      std::chrono::minutes(2)));
  victim->Signal(SIGKILL);
  CommandResult killed;
  ASSERT_TRUE(victim->Wait(seconds(30), &killed));

  auto survivor = std::make_unique<SluiceProcess>(
      WorkerArgs("survivor", {"--exit-when-done", "--set", "lease_seconds=2"}),
      dir_.path());
  CommandResult result;
  ASSERT_TRUE(survivor->Wait(std::chrono::minutes(5), &result));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const std::string outcomes = Outcomes(ExportStore());
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), '\n'), 2000);
  EXPECT_EQ(outcomes.find(" pending"), std::string::npos);
  EXPECT_EQ(outcomes, SingleRunOutcomes(input));
}

// PostgreSQL goes away mid-run (a restart, a failover) and comes back: the workers
// keep trying with backoff, reconnect, and finish; nothing is lost or doubled.
TEST_F(ClusterTest, WorkersRideOutAPostgresRestart) {
  wait_ms_ = 100;
  const std::string input = WriteUrls(2000);  // 40 batches of 50
  Ingest(input);
  std::vector<std::unique_ptr<SluiceProcess>> workers;
  for (int i = 0; i < 2; ++i) {
    // The first serves /ready, which says when its store is out of reach.
    std::vector<std::string> extra = {"--exit-when-done"};
    if (i == 0) extra.insert(extra.end(), {"--metrics-addr", "127.0.0.1:0"});
    workers.push_back(std::make_unique<SluiceProcess>(
        WorkerArgs("w" + std::to_string(i), extra), dir_.path()));
  }
  std::smatch port;
  const std::regex listening("metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics");
  std::string log;
  ASSERT_TRUE(WaitFor(
      [&] {
        log = ReadFile(workers[0]->err_path());
        return std::regex_search(log, port, listening);
      },
      std::chrono::minutes(1)))
      << log;
  httplib::Client ready("127.0.0.1", std::stoi(port[1].str()));
  auto ready_status = [&] {
    auto response = ready.Get("/ready");
    return response ? response->status : -1;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        CommandResult status = RunSluice({"status", "--store", url_, "--json"});
        if (status.exit_code != 0) return false;
        const nlohmann::json summary = nlohmann::json::parse(status.out);
        return summary["batches"]["done"].get<int>() >= 4 &&
               summary["batches"]["leased"].get<int>() >= 1;
      },
      std::chrono::minutes(2)));
  EXPECT_EQ(ready_status(), 200);
  ASSERT_TRUE(server_->Stop().ok());
  EXPECT_TRUE(WaitFor([&] { return ready_status() == 503; }, std::chrono::minutes(1)));
  ASSERT_TRUE(server_->Restart().ok());
  EXPECT_TRUE(WaitFor([&] { return ready_status() == 200; }, std::chrono::minutes(1)));

  // Each worker saw the outage: in a lease, renewal or commit it retried ("cannot
  // reach the store"), or, if it happened to hold nothing then (a worker that started
  // late on a loaded machine), in its periodic report. At least one retried.
  int retried = 0;
  for (auto& worker : workers) {
    CommandResult result;
    ASSERT_TRUE(worker->Wait(std::chrono::minutes(5), &result)) << "a worker did not end";
    EXPECT_EQ(result.exit_code, 0) << result.err;
    const bool retried_here = result.err.find("cannot reach the store") != std::string::npos;
    retried += retried_here ? 1 : 0;
    EXPECT_TRUE(retried_here ||
                result.err.find("could not report this worker to the store") !=
                    std::string::npos)
        << result.err;
  }
  EXPECT_GE(retried, 1);
  const std::string outcomes = Outcomes(ExportStore());
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), '\n'), 2000);
  EXPECT_EQ(outcomes, SingleRunOutcomes(input));
}

// The pipeline split in two stage groups, each with workers of its own: two for
// `slow`, one for `flaky`, on the shared store and blob directory. The result is
// that of one process running the unsplit pipeline, and no payload is left.
TEST_F(ClusterTest, StageGroupsScaleOnTheirOwnAndGiveWhatOneProcessGives) {
  const std::string input = WriteUrls(2000);
  split_ = true;
  Ingest(input);
  std::vector<std::unique_ptr<SluiceProcess>> workers;
  for (const char* group : {"slow", "slow", "flaky"}) {
    workers.push_back(std::make_unique<SluiceProcess>(
        WorkerArgs("w" + std::to_string(workers.size()),
                   {"--group", group, "--exit-when-done"}),
        dir_.path()));
  }
  for (auto& worker : workers) {
    CommandResult result;
    ASSERT_TRUE(worker->Wait(std::chrono::minutes(5), &result)) << "a worker did not end";
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  const std::string outcomes = Outcomes(ExportStore());
  split_ = false;
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), '\n'), 2000);
  EXPECT_EQ(outcomes, SingleRunOutcomes(input));
  std::size_t left = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(dir_.File("blobs"))) {
    left += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(left, 0u);
  // Without a shared blob directory, a worker of a split pipeline on PostgreSQL
  // refuses to start.
  split_ = true;
  std::vector<std::string> args = WorkerArgs("w9", {"--exit-when-done"});
  args.erase(std::find(args.begin(), args.end(), "--blobs"), args.end());
  CommandResult refused = RunSluice(args);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("give --blobs DIR"), std::string::npos) << refused.err;
}

TEST_F(ClusterTest, AWorkerWaitsForWorkUntilStopped) {
  auto worker = std::make_unique<SluiceProcess>(WorkerArgs("idle"), dir_.path());
  // Nothing is ingested yet: the worker waits; items ingested now are processed.
  Ingest(WriteUrls(200));
  ASSERT_TRUE(WaitFor(
      [&] {
        CommandResult status = RunSluice({"status", "--store", url_, "--json"});
        if (status.exit_code != 0) return false;
        const nlohmann::json summary = nlohmann::json::parse(status.out);
        return summary["results"]["ok"].get<int>() +
                   summary["results"]["failed"].get<int>() ==
               200;
      },
      std::chrono::minutes(2)));
  // The worker reports itself to the store: `status` shows it from anywhere.
  nlohmann::json group;
  ASSERT_TRUE(WaitFor(
      [&] {
        CommandResult status = RunSluice({"status", "--store", url_, "--json"});
        if (status.exit_code != 0) return false;
        group = nlohmann::json::parse(status.out)["groups"][0];
        return group["workers"].size() == 1 &&
               group["workers"][0]["items_committed"].get<int>() == 200;
      },
      std::chrono::minutes(2)))
      << group.dump();
  EXPECT_EQ(group["name"], "main");
  EXPECT_EQ(group["workers"][0]["batches_held"], 0);
  CommandResult text = RunSluice({"status", "--store", url_});
  EXPECT_NE(text.out.find("  worker  "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("200 committed"), std::string::npos) << text.out;

  worker->Signal(SIGTERM);
  CommandResult result;
  ASSERT_TRUE(worker->Wait(seconds(60), &result));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  // Its last report says it ended.
  CommandResult after = RunSluice({"status", "--store", url_, "--json"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  const nlohmann::json ended = nlohmann::json::parse(after.out)["groups"][0];
  EXPECT_TRUE(ended["workers"].empty()) << ended.dump();
  EXPECT_EQ(ended["workers_ended"], 1);
}

TEST_F(ClusterTest, AStoreAddressThatIsNotPostgresIsAUsageError) {
  CommandResult status = RunSluice({"status", "--store", "mysql://db/x"});
  EXPECT_EQ(status.exit_code, 2);
  EXPECT_NE(status.err.find("--store: not a store address"), std::string::npos)
      << status.err;
  CommandResult none = RunSluice({"status"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("give --workdir DIR or --store"), std::string::npos)
      << none.err;
  // The password never shows in what sluice prints.
  CommandResult wrong =
      RunSluice({"status", "--store",
                 "postgresql://sluice:hunter2@127.0.0.1:1/none?connect_timeout=5"});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_EQ(wrong.err.find("hunter2"), std::string::npos) << wrong.err;
}

}  // namespace
}  // namespace sluice::testing
