// `--metrics-addr`: a running worker serves /metrics (checked with Prometheus'
// promtool), /api/status, /healthz and /ready, on loopback.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "tests/test_util.h"

namespace sluice::testing {
namespace {

constexpr const char* kPipeline = R"(name: metered
batch_size: 50
stages:
  - {name: wait, type: sleep, ms: 1}
  - {name: flake, type: fail, fraction: 0.2, reason: http_5xx}
)";

TEST(MetricsTest, AWorkerServesMetricsStatusHealthAndReadiness) {
  TempDir dir;
  const std::string pipeline = dir.Write("metered.yaml", kPipeline);
  std::string urls;
  for (int i = 0; i < 500; ++i) urls += "http://example.com/" + std::to_string(i) + "\n";
  const std::string input = dir.Write("urls.txt", urls);
  const std::string workdir = dir.File("work");
  CommandResult ingested =
      RunSluice({"ingest", pipeline, "--input", input, "--workdir", workdir});
  ASSERT_EQ(ingested.exit_code, 0) << ingested.err;

  // Without --exit-when-done it stays up once done: nothing here races its end.
  SluiceProcess worker({"worker", pipeline, "--workdir", workdir, "--metrics-addr",
                        "127.0.0.1:0", "--status-interval", "0"},
                       dir.path());
  std::smatch found;
  std::string err;
  const std::regex listening("metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics");
  ASSERT_TRUE(WaitFor(
      [&] {
        err = ReadFile(worker.err_path());
        return std::regex_search(err, found, listening);
      },
      std::chrono::seconds(60)))
      << err;
  httplib::Client client("127.0.0.1", std::stoi(found[1].str()));
  client.set_read_timeout(30, 0);

  // Every item through: 500 results committed.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto status = client.Get("/api/status");
        if (!status || status->status != 200) return false;
        auto json = nlohmann::json::parse(status->body, nullptr, false);
        return !json.is_discarded() &&
               json["groups"][0]["live"]["items_committed"] == 500;
      },
      std::chrono::seconds(120)));
  auto status = client.Get("/api/status");
  ASSERT_TRUE(status);
  const nlohmann::json json = nlohmann::json::parse(status->body);
  EXPECT_EQ(json["pipeline"], "metered");
  EXPECT_EQ(json["groups"][0]["name"], "main");
  EXPECT_EQ(json["groups"][0]["store"]["results_ok"].get<int>() +
                json["groups"][0]["store"]["results_failed"].get<int>(),
            500);
  EXPECT_EQ(json["groups"][0]["stages"].size(), 2u);

  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  const std::string& text = metrics->body;
  EXPECT_NE(text.find("sluice_stage_records_total{group=\"main\",stage=\"wait\"} 500\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_items_committed_total{group=\"main\"} 500\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_items_failed_total{group=\"main\",reason=\"http_5xx\"}"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_stage_seconds_count{group=\"main\",stage=\"wait\"} 500\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_store_seconds_bucket{group=\"main\",call=\"commit\",le=\"+Inf\"}"),
            std::string::npos);
  const std::string saved = dir.Write("metrics.txt", text);
  if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
    const std::string report = dir.File("promtool.txt");
    const int checked =
        std::system(("promtool check metrics < " + saved + " > " + report + " 2>&1").c_str());
    EXPECT_EQ(checked, 0) << ReadFile(report);
  } else {
    ADD_FAILURE() << "promtool is missing (Debian package prometheus, which "
                     "scripts/install-deps.sh installs)";
  }

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = client.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  EXPECT_EQ(client.Get("/nope")->status, 404);

  worker.Signal(SIGTERM);
  CommandResult ended;
  ASSERT_TRUE(worker.Wait(std::chrono::seconds(60), &ended));
  EXPECT_EQ(ended.exit_code, 0) << ended.err;  // stopped with nothing left to do
}

TEST(MetricsTest, ABadAddressIsAUsageError) {
  TempDir dir;
  const std::string pipeline = dir.Write("metered.yaml", kPipeline);
  const std::string input = dir.Write("urls.txt", "http://example.com/1\n");
  CommandResult bad = RunSluice({"run", pipeline, "--input", input, "--workdir",
                                 dir.File("work"), "--metrics-addr", "localhost:http"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--metrics-addr localhost:http"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace sluice::testing
