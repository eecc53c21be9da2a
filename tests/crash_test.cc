// Crash anywhere, lose nothing (DESIGN.md guarantee 3): a run is killed with
// SIGKILL at random moments and restarted each time; at the end every item has
// exactly one result and the export equals that of an uninterrupted run.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "tests/test_util.h"

namespace sluice::testing {
namespace {

constexpr int kItems = 100000;

// sleep: 1,000 in flight for 80 ms is at most 12,500 items/s, so the run lasts a few
// seconds and every kill lands on a working process. fail: a deterministic tenth of
// the items fail, so the export has both outcomes.
constexpr const char* kPipeline = R"(
name: crash-test
batch_size: 1000
lease_seconds: 30
stages:
  - {name: wait, type: sleep, ms: 80, max_in_flight: 1000}
  - {name: flake, type: fail, fraction: 0.1, reason: timeout, seed: 7}
)";

std::string MakeInput(const TempDir& dir) {
  std::string text;
  text.reserve(kItems * 40);
  for (int i = 0; i < kItems; ++i) {
    text += "http://host" + std::to_string(i % 97) + ".example/img/" + std::to_string(i) +
            ".jpg\n";
  }
  std::string path = dir.File("urls.txt");
  WriteFile(path, text);
  return path;
}

std::vector<std::string> RunArgs(const std::string& pipeline, const std::string& input,
                                 const std::string& workdir) {
  return {"run",       pipeline, "--input",           input,
          "--workdir", workdir,  "--status-interval", "0"};
}

std::string Export(const std::string& workdir) {
  CommandResult result = RunSluice({"export", "--workdir", workdir});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return result.out;
}

nlohmann::json Status(const std::string& workdir) {
  CommandResult result = RunSluice({"status", "--workdir", workdir, "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return nlohmann::json::parse(result.out, nullptr, false);
}

TEST(CrashTest, KilledFiveTimesEndsWithExactlyOneResultPerItem) {
  TempDir dir;
  const std::string pipeline = dir.File("pipeline.yaml");
  WriteFile(pipeline, kPipeline);
  const std::string input = MakeInput(dir);

  // The reference: one uninterrupted run.
  const std::string reference_dir = dir.File("reference");
  CommandResult reference = RunSluice(RunArgs(pipeline, input, reference_dir));
  ASSERT_EQ(reference.exit_code, 0) << reference.err;
  const std::string expected = Export(reference_dir);

  // The same run, killed with SIGKILL at five random moments.
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_ms(20, 900);
  const std::string crash_dir = dir.File("crashed");
  int kills = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    SluiceProcess process(RunArgs(pipeline, input, crash_dir), dir.path());
    CommandResult result;
    bool exited = process.Wait(std::chrono::milliseconds(delay_ms(random)), &result);
    if (exited) {
      ADD_FAILURE() << "run finished before kill " << attempt << ": " << result.err;
      break;
    }
    process.Signal(SIGKILL);
    // A killed process is gone at once; the deadline only guards against a hang.
    ASSERT_TRUE(process.Wait(std::chrono::seconds(60), &result));
    EXPECT_EQ(result.signal, SIGKILL);
    ++kills;
    // Whatever instant it died at, the store opens and is consistent. (A kill that
    // lands before the process made its workdir leaves nothing to look at.)
    if (std::filesystem::exists(crash_dir + "/sluice.db")) {
      nlohmann::json status = Status(crash_dir);
      ASSERT_TRUE(status.contains("results")) << status.dump();
      EXPECT_LE(
          status["results"]["ok"].get<int>() + status["results"]["failed"].get<int>(),
          kItems);
      EXPECT_LE(status["items"].get<int>(), kItems);
    }
  }
  EXPECT_EQ(kills, 5);

  CommandResult last = RunSluice(RunArgs(pipeline, input, crash_dir));
  ASSERT_EQ(last.exit_code, 0) << last.err;

  nlohmann::json status = Status(crash_dir);
  EXPECT_EQ(status["items"], kItems);
  EXPECT_EQ(status["results"]["ok"].get<int>() + status["results"]["failed"].get<int>(),
            kItems);
  EXPECT_EQ(status["batches"]["pending"], 0);
  EXPECT_EQ(status["batches"]["leased"], 0);

  const std::string actual = Export(crash_dir);
  std::istringstream lines(actual);
  std::string line;
  std::set<std::uint64_t> ids;
  int failed = 0;
  while (std::getline(lines, line)) {
    nlohmann::json row = nlohmann::json::parse(line);
    EXPECT_TRUE(ids.insert(row["id"].get<std::uint64_t>()).second)
        << "duplicate " << line;
    EXPECT_NE(row["status"], "pending") << line;
    failed += row["status"] == "failed" ? 1 : 0;
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kItems));
  EXPECT_GT(failed, kItems / 20);
  EXPECT_LT(failed, kItems / 5);
  EXPECT_TRUE(actual == expected) << "export differs from the uninterrupted run's";

  // Resuming a finished workdir does nothing and succeeds.
  CommandResult again = RunSluice(RunArgs(pipeline, input, crash_dir));
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Export(crash_dir), expected);
}

}  // namespace
}  // namespace sluice::testing
