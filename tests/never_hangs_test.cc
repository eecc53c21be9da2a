// DESIGN.md guarantee 7, "never hangs", end to end with the real binary:
//  - records that take 2-3x the lease period, several batches in flight, CPU stages
//    busy at the same time: every item ends once, no batch is ever leased twice
//    (token 1 everywhere), and the run ends;
//  - the full fault mix of the real web's tail (the project's fault server: every
//    kind, three of each, between batches of images) through the shipped faces and
//    img2dataset pipelines with their default settings: every item ends with its
//    status and reason, and the run ends within its bound;
//  - `sluice status` shows a running run's records in flight.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/stages/image_test_util.h"
#include "tests/fixtures/fault_server.h"
#include "tests/test_util.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

// What `sqlite3 DB QUERY` prints (the store is a plain SQLite file).
std::string Sqlite(const std::string& db, const std::string& query) {
  const std::string command = "sqlite3 '" + db + "' '" + query + "'";
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  std::string out;
  char buffer[256];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

class NeverHangsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.File("images"));
    const Bytes jpeg = Encode(Gradient(160, 120), ".jpg");
    dir_.Write("images/img.jpg", std::string(jpeg.begin(), jpeg.end()));
    FaultServerOptions options;
    options.root = dir_.File("images");
    auto server = FaultServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  TempDir dir_;
  std::unique_ptr<FaultServer> server_;
};

TEST_F(NeverHangsTest, RecordsLongerThanTheLeaseEndOnceAndNoBatchIsLeasedTwice) {
  // fetch 2.5 s + sleep 2 s per record against leases of 2 s (renewed every 0.7 s);
  // decode and resize keep the CPU pool busy meanwhile.
  const std::string pipeline = dir_.Write("slow.yaml", R"(name: slow
batch_size: 20
lease_seconds: 2
in_flight_batches: 4
allow_private_networks: true
stages:
  - {name: fetch, type: fetch, max_host_connections: 200, max_in_flight: 200}
  - {name: wait, type: sleep, ms: 2000}
  - {name: decode, type: decode}
  - {name: resize, type: resize, size: 64, mode: keep_ratio}
)");
  std::string urls;
  for (int i = 0; i < 120; ++i) {
    urls += server_->Url("/img.jpg?delay=2500&n=" + std::to_string(i)) + "\n";
  }
  const std::string input = dir_.Write("urls.txt", urls);
  const std::string workdir = dir_.File("work");
  const Clock::time_point start = Clock::now();
  CommandResult run = RunSluice(
      {"run", pipeline, "--input", input, "--workdir", workdir, "--status-interval", "0"},
      seconds(300));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_LT(Clock::now() - start, seconds(240)) << "6 batches, 4 at a time, ~5 s each";

  std::vector<nlohmann::json> rows = ExportRows(workdir);
  ASSERT_EQ(rows.size(), 120u);
  for (const nlohmann::json& row : rows) {
    EXPECT_EQ(row["status"], "ok") << row.dump();
  }
  const std::string db = workdir + "/sluice.db";
  EXPECT_EQ(Sqlite(db, "SELECT COUNT(*) FROM results"), "120") << "one result per item";
  EXPECT_EQ(Sqlite(db, "SELECT COUNT(*) FROM batches WHERE state = \"done\""), "6");
  EXPECT_EQ(Sqlite(db, "SELECT MIN(token) || \" \" || MAX(token) FROM batches"), "1 1")
      << "a batch was leased twice";
}

// The real web's tail, three of each kind, between two batches of images, with the
// shipped pipelines' own settings (only loopback allowed).
struct FaultCase {
  std::string path;          // on the fault server
  std::string faces_reason;  // faces.yaml: "" for ok
  std::string img2dataset_reason;
};

std::vector<FaultCase> FaultMix() {
  return {
      {"/img.jpg", "", ""},
      {"/img.jpg?delay=1000", "", ""},
      // img2dataset.yaml has img2dataset's retries: 0, so its 429 is final.
      {"/img.jpg?status=429&retry_after=1&status_times=1", "", "http_4xx"},
      {"/img.jpg?redirect=1", "", ""},
      {"/img.jpg?reset", "connect", "connect"},
      {"/img.jpg?status=500", "http_5xx", "http_5xx"},
      {"/img.jpg?status=404", "http_4xx", "http_4xx"},
      {"/img.jpg?delay=120000", "timeout", "timeout"},  // accepts, never answers
      {"/img.jpg?drip=1", "timeout", "timeout"},
      {"/img.jpg?cut=100", "decode", "decode"},
      {"/img.jpg?empty", "not_image", "not_image"},
      {"/gen/html", "not_image", "not_image"},
      {"/gen/random?size=4096", "not_image", "not_image"},  // no image format at all
      {"/gen/huge_png", "too_large", "too_large"},
      {"/img.jpg?endless", "too_large", "too_large"},
      {"/img.jpg?redirect_loop", "too_many_redirects", "too_many_redirects"},
      {"/img.jpg?robots=noai", "opt_out", "opt_out"},
      {"/img.jpg?overstate_length", "connect", "connect"},
  };
}

class FaultMixTest : public NeverHangsTest,
                     public ::testing::WithParamInterface<std::string> {};

TEST_P(FaultMixTest, EveryItemEndsWithItsReasonAndTheRunEnds) {
  const std::string pipeline = GetParam();
  const bool faces = pipeline == "faces.yaml";
  constexpr int kImagesBefore = 1000;  // one whole batch of images first
  constexpr int kImagesAfter = 1000;
  std::vector<std::string> expected;  // by item, in input order
  std::string urls;
  auto add = [&](const std::string& path, const std::string& reason) {
    urls += server_->Url(path) + "\n";
    expected.push_back(reason);
  };
  for (int i = 0; i < kImagesBefore; ++i) add("/img.jpg?n=" + std::to_string(i), "");
  int n = 0;
  for (int copy = 0; copy < 3; ++copy) {
    for (const FaultCase& fault : FaultMix()) {
      // A parameter of its own makes each URL distinct (kind 3 counts per URL).
      const std::string path = fault.path +
                               (fault.path.find('?') == std::string::npos ? "?" : "&") +
                               "f=" + std::to_string(n++);
      add(path, faces ? fault.faces_reason : fault.img2dataset_reason);
    }
  }
  for (int i = 0; i < kImagesAfter; ++i) add("/img.jpg?m=" + std::to_string(i), "");
  const std::string input = dir_.Write("urls.txt", urls);
  const std::string workdir = dir_.File("work");

  const Clock::time_point start = Clock::now();
  CommandResult run = RunSluice(
      {"run", SourceDir() + "/pipelines/" + pipeline, "--input", input, "--workdir",
       workdir, "--set", "allow_private_networks=true", "--status-interval", "0"},
      seconds(600));
  const auto took = Clock::now() - start;
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // The slowest fault ends at its item deadline (faces.yaml: item_timeout_ms 120 s,
  // reached through three 30 s attempts); the images take seconds. A generous
  // margin on top: this bound guards against a hang, not against a slow machine.
  EXPECT_LT(took, seconds(300)) << run.err;

  std::vector<nlohmann::json> rows = ExportRows(workdir);
  ASSERT_EQ(rows.size(), expected.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::string want = expected[i].empty() ? "ok" : "failed";
    EXPECT_EQ(rows[i]["status"], want) << rows[i].dump();
    if (!expected[i].empty()) {
      EXPECT_EQ(rows[i]["reason"], expected[i]) << rows[i].dump();
    }
  }
  const std::string db = workdir + "/sluice.db";
  EXPECT_EQ(Sqlite(db, "SELECT MAX(token) FROM batches"), "1")
      << "a batch was leased twice";
}

INSTANTIATE_TEST_SUITE_P(ShippedPipelines, FaultMixTest,
                         ::testing::Values("faces.yaml", "img2dataset.yaml"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param == "faces.yaml"
                                      ? std::string("faces")
                                      : std::string("img2dataset");
                         });

TEST_F(NeverHangsTest, StatusShowsTheRecordsInFlightOfARunningRun) {
  const std::string pipeline = dir_.Write("wait.yaml", R"(name: wait
batch_size: 50
grace_seconds: 0
stages:
  - {name: wait, type: sleep, ms: 600000}
)");
  std::string urls;
  for (int i = 0; i < 200; ++i) urls += "http://example.com/" + std::to_string(i) + "\n";
  const std::string input = dir_.Write("urls.txt", urls);
  const std::string workdir = dir_.File("work");
  SluiceProcess process(
      {"run", pipeline, "--input", input, "--workdir", workdir, "--status-interval", "0"},
      dir_.path());
  nlohmann::json worker;
  ASSERT_TRUE(WaitFor(
      [&] {
        CommandResult status = RunSluice({"status", "--workdir", workdir, "--json"});
        if (status.exit_code != 0) return false;
        const nlohmann::json parsed = nlohmann::json::parse(status.out, nullptr, false);
        if (!parsed.is_object() || parsed["workers"].empty()) return false;
        worker = parsed["workers"][0];
        return worker["records_in_flight"].get<int>() == 200;
      },
      std::chrono::seconds(60)))
      << worker.dump();
  EXPECT_EQ(worker["batches_held"], 4);
  CommandResult text = RunSluice({"status", "--workdir", workdir});
  EXPECT_NE(text.out.find("4 batches held, 200 records in flight"), std::string::npos)
      << text.out;

  process.Signal(SIGTERM);
  CommandResult stopped;
  ASSERT_TRUE(process.Wait(std::chrono::seconds(60), &stopped)) << "SIGTERM ignored";
  EXPECT_EQ(stopped.exit_code, 130) << stopped.err;
  CommandResult after = RunSluice({"status", "--workdir", workdir, "--json"});
  const nlohmann::json parsed = nlohmann::json::parse(after.out, nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << after.out;
  EXPECT_TRUE(parsed["workers"].empty()) << "the live file is removed at the end";
  EXPECT_EQ(parsed["batches"]["leased"], 0) << "released on the stop";
}

}  // namespace
}  // namespace sluice::testing
