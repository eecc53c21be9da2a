// The cluster under fire, end to end: a throwaway PostgreSQL, a memcached and the
// fault-injecting HTTP server, all started by the test on loopback; four `sluice
// worker` processes over two stage groups (download | hash) on 20,000 URLs, with
// faults mixed in; a random worker SIGKILLed and restarted again and again, and
// PostgreSQL itself crashed and restarted in the middle. At the end every item has
// exactly one result, and the export equals what one `sluice run` process gives.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/fixtures/fault_server.h"
#include "tests/support/memcached_server.h"
#include "tests/support/postgres_server.h"
#include "tests/test_util.h"

namespace sluice::testing {
namespace {

using std::chrono::seconds;

constexpr int kUrls = 20000;
constexpr int kBatch = 200;  // 100 batches per group

class ClusterChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = PostgresServer::Start();
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    pg_ = std::move(pg).value();
    auto url = pg_->CreateDatabase();
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    url_ = *url;
    auto memcached = MemcachedServer::Start();
    ASSERT_TRUE(memcached.ok()) << memcached.status().ToString();
    memcached_ = std::move(memcached).value();
    std::filesystem::create_directories(dir_.File("images"));
    dir_.Write("images/p.jpg", std::string(2000, 'x'));  // never decoded: hashed
    FaultServerOptions options;
    options.root = dir_.File("images");
    auto server = FaultServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    web_ = std::move(server).value();
  }

  // Mostly good URLs, with faults whose outcome does not depend on timing, and
  // some URLs listed twice (the second is served by the cache or shares the first's
  // download).
  std::string WriteUrls() {
    std::string text;
    for (int i = 0; i < kUrls; ++i) {
      const int copy = i % 10 == 9 ? i - 1 : i;
      // Each answer takes 50 ms, with at most 100 transfers per worker at once: the
      // run lasts long enough for the chaos below.
      std::string path = "/p.jpg?delay=50&copy=" + std::to_string(copy);
      if (i % 50 == 7) path += "&status=404";
      if (i % 50 == 13) path += "&status=503";
      if (i % 50 == 21) path = "/gen/not_image?delay=50&copy=" + std::to_string(i);
      if (i % 97 == 0) path += "&redirect=2";
      text += web_->Url(path) + "\n";
    }
    return dir_.Write("urls.txt", text);
  }

  std::vector<std::string> Pipeline() const {
    return {SourceDir() + "/pipelines/download.yaml",
            "--set",
            "batch_size=" + std::to_string(kBatch),
            "--set",
            "allow_private_networks=true",
            "--set",
            "output.layout=none",
            "--set",
            "lease_seconds=2",
            "--set",
            "stages.fetch.retries=1",
            "--set",
            "stages.fetch.retry_base_ms=20",
            "--set",
            "stages.fetch.memcached=[" + memcached_->address() + "]",
            "--set",
            "groups=[{name: download, stages: [fetch]}, {name: hash, stages: [sha256]}]"};
  }

  std::vector<std::string> WorkerArgs(const std::string& group, int n) {
    std::vector<std::string> args = {"worker"};
    for (const std::string& arg : Pipeline()) args.push_back(arg);
    for (const std::string& arg : std::vector<std::string>{
             "--store", url_, "--workdir", dir_.File(group + std::to_string(n)),
             "--blobs", dir_.File("blobs"), "--group", group, "--exit-when-done",
             "--status-interval", "0"}) {
      args.push_back(arg);
    }
    return args;
  }

  int BatchesDone(const std::string& group) {
    CommandResult status =
        RunSluice({"status", "--store", url_, "--json", "--group", group});
    if (status.exit_code != 0) return -1;  // e.g. while PostgreSQL restarts
    return nlohmann::json::parse(status.out)["batches"]["done"].get<int>();
  }

  // (id, status, reason, sha256) of every exported row, one line each.
  static std::string Outcomes(const std::string& jsonl) {
    std::istringstream lines(jsonl);
    std::string out;
    for (std::string line; std::getline(lines, line);) {
      const nlohmann::json row = nlohmann::json::parse(line);
      out += row["id"].dump() + " " + row["status"].get<std::string>() + " " +
             row.value("reason", std::string()) + " " +
             row.value("sha256", std::string()) + " " +
             std::to_string(row.value("http_status", 0)) + "\n";
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<PostgresServer> pg_;
  std::unique_ptr<MemcachedServer> memcached_;
  std::unique_ptr<FaultServer> web_;
  std::string url_;
};

TEST_F(ClusterChaosTest, KilledWorkersAndARestartedStoreLoseNothingAndDoubleNothing) {
  const std::string input = WriteUrls();
  std::vector<std::string> ingest = {"ingest"};
  for (const std::string& arg : Pipeline()) ingest.push_back(arg);
  ingest.insert(ingest.end(), {"--input", input, "--store", url_});
  CommandResult ingested = RunSluice(ingest, seconds(300));
  ASSERT_EQ(ingested.exit_code, 0) << ingested.err;

  struct Slot {
    std::string group;
    int restarts = 0;
    std::unique_ptr<SluiceProcess> process;
  };
  std::vector<Slot> slots;
  for (const char* group : {"download", "download", "hash", "hash"}) {
    Slot slot{group, 0, nullptr};
    slot.process = std::make_unique<SluiceProcess>(
        WorkerArgs(slot.group, static_cast<int>(slots.size()) * 100), dir_.path());
    slots.push_back(std::move(slot));
  }

  // Kill a random worker each time the hash group got further, restart it at once;
  // once, when about half is done, crash PostgreSQL and start it again.
  std::mt19937 random(20261203);
  int kills = 0;
  bool restarted_store = false;
  int last_done = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  for (;;) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the cluster did not finish";
    const int done = BatchesDone("hash");
    if (done == kUrls / kBatch) break;
    if (!restarted_store && done >= kUrls / kBatch / 3) {
      ASSERT_TRUE(pg_->Stop().ok());
      ASSERT_TRUE(pg_->Restart().ok());
      restarted_store = true;
      continue;
    }
    if (done < 0 || done < last_done + 3 || kills >= 12) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    last_done = done;
    Slot& victim = slots[random() % slots.size()];
    victim.process->Signal(SIGKILL);
    CommandResult killed;
    ASSERT_TRUE(victim.process->Wait(seconds(30), &killed));
    ++kills;
    ++victim.restarts;
    const int n = static_cast<int>(&victim - slots.data()) * 100 + victim.restarts;
    victim.process =
        std::make_unique<SluiceProcess>(WorkerArgs(victim.group, n), dir_.path());
  }
  for (Slot& slot : slots) {
    CommandResult result;
    ASSERT_TRUE(slot.process->Wait(std::chrono::minutes(5), &result)) << "a worker hung";
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  EXPECT_GE(kills, 3);
  EXPECT_TRUE(restarted_store);

  CommandResult exported = RunSluice({"export", "--store", url_}, seconds(300));
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const std::string outcomes = Outcomes(exported.out);
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), '\n'), kUrls);
  EXPECT_EQ(outcomes.find(" pending "), std::string::npos);

  // One process, one SQLite store, the same pipeline and input.
  std::vector<std::string> run = {"run"};
  for (const std::string& arg : Pipeline()) run.push_back(arg);
  run.insert(run.end(), {"--input", input, "--workdir", dir_.File("single"),
                         "--status-interval", "0"});
  CommandResult single = RunSluice(run, seconds(600));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  CommandResult single_export = RunSluice({"export", "--workdir", dir_.File("single")});
  ASSERT_EQ(single_export.exit_code, 0) << single_export.err;
  EXPECT_EQ(outcomes, Outcomes(single_export.out));

  // Every payload between the groups was removed or collected. What is left are the
  // unfinished payload files of killed writers (hidden temporaries), which the next
  // group's workers remove once they are an hour old: made that old here, one more
  // hash worker, which finds its group done, collects them as it starts.
  auto files = [&](bool hidden) {
    std::vector<std::filesystem::path> found;
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(dir_.File("blobs"))) {
      const bool is_hidden = entry.path().filename().string().starts_with(".");
      if (entry.is_regular_file() && is_hidden == hidden) found.push_back(entry.path());
    }
    return found;
  };
  EXPECT_TRUE(files(false).empty());
  for (const std::filesystem::path& temporary : files(true)) {
    std::filesystem::last_write_time(
        temporary, std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
  }
  CommandResult collector = RunSluice(WorkerArgs("hash", 999), seconds(120));
  EXPECT_EQ(collector.exit_code, 0) << collector.err;
  EXPECT_TRUE(files(true).empty());
}

}  // namespace
}  // namespace sluice::testing
