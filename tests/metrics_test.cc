// `--metrics-addr`: a running worker serves /metrics (checked with Prometheus'
// promtool), /api/status, /healthz, /ready and the dashboard (in headless Chromium),
// on loopback.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace sluice::testing {
namespace {

constexpr const char* kPipeline = R"(name: metered
batch_size: 50
stages:
  - {name: wait, type: sleep, ms: 1}
  - {name: flake, type: fail, fraction: 0.2, reason: http_5xx}
)";

// A worker of the pipeline above over `items` ingested URLs, serving on a free
// loopback port. Without --exit-when-done it stays up once done: nothing here races
// its end.
struct MeteredWorker {
  std::unique_ptr<SluiceProcess> process;
  int port = 0;
};

MeteredWorker StartMeteredWorker(const TempDir& dir, int items) {
  MeteredWorker started;
  const std::string pipeline = dir.Write("metered.yaml", kPipeline);
  std::string urls;
  for (int i = 0; i < items; ++i) urls += "http://example.com/" + std::to_string(i) + "\n";
  const std::string input = dir.Write("urls.txt", urls);
  const std::string workdir = dir.File("work");
  CommandResult ingested =
      RunSluice({"ingest", pipeline, "--input", input, "--workdir", workdir});
  EXPECT_EQ(ingested.exit_code, 0) << ingested.err;
  started.process = std::make_unique<SluiceProcess>(
      std::vector<std::string>{"worker", pipeline, "--workdir", workdir, "--metrics-addr",
                               "127.0.0.1:0", "--status-interval", "0"},
      dir.path());
  std::smatch found;
  std::string err;
  const std::regex listening("metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics");
  const bool up = WaitFor(
      [&] {
        err = ReadFile(started.process->err_path());
        return std::regex_search(err, found, listening);
      },
      std::chrono::seconds(60));
  EXPECT_TRUE(up) << err;
  if (up) started.port = std::stoi(found[1].str());
  return started;
}

TEST(MetricsTest, AWorkerServesMetricsStatusHealthAndReadiness) {
  TempDir dir;
  MeteredWorker metered = StartMeteredWorker(dir, 500);
  ASSERT_GT(metered.port, 0);
  SluiceProcess& worker = *metered.process;
  httplib::Client client("127.0.0.1", metered.port);
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

// The dashboard at / in a real browser (Debian's chromium, headless): it draws its
// charts from at least two samples, with no script error, failed fetch or
// console.error; a screenshot is left in test-artifacts/ (or $SLUICE_TEST_ARTIFACTS).
TEST(MetricsTest, TheDashboardDrawsItsChartsInAHeadlessBrowser) {
  TempDir dir;
  MeteredWorker metered = StartMeteredWorker(dir, 2000);
  ASSERT_GT(metered.port, 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(metered.port) + "/?every=300";
  HeadlessBrowser browser(dir);
  std::string page;
  ASSERT_TRUE(browser.DumpDom(url, &page));
  std::smatch samples;
  ASSERT_TRUE(std::regex_search(page, samples, std::regex(R"re(data-samples="([0-9]+)")re")))
      << page.substr(0, 2000);
  EXPECT_GE(std::stoi(samples[1].str()), 2) << page.substr(0, 2000);
  EXPECT_NE(page.find(R"re(data-errors="0")re"), std::string::npos) << page.substr(0, 2000);
  for (const char* chart : {"throughput", "backlog", "failures", "bytes", "inflight",
                            "progress"}) {
    std::smatch points;
    const std::regex drawn(std::string(R"re(<canvas id=")re") + chart +
                           R"re("[^>]* data-points="([0-9]+)")re");
    ASSERT_TRUE(std::regex_search(page, points, drawn)) << chart;
    EXPECT_GE(std::stoi(points[1].str()), 1) << chart;
  }
  EXPECT_NE(page.find("sluice: metered"), std::string::npos);

  EXPECT_TRUE(browser.Screenshot(url, "dashboard.png"));
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
