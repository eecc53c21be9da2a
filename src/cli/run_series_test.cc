#include "src/cli/run_series.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "src/cli/svg_chart.h"

namespace sluice::cli {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;

WorkerSample Sample(const std::string& owner, std::int64_t at_ms, std::uint64_t committed,
                    std::string counters = "") {
  WorkerSample s;
  s.owner = owner;
  s.group = "main";
  s.at_ms = at_ms;
  s.items_committed = committed;
  s.counters_json = std::move(counters);
  return s;
}

TEST(RunSeriesTest, StepsAreOneTwoOrFiveTimesAPowerOfTenSeconds) {
  EXPECT_EQ(StepMs(0), 1000);
  EXPECT_EQ(StepMs(150'000), 1000);
  EXPECT_EQ(StepMs(150'001), 2000);
  EXPECT_EQ(StepMs(3'600'000), 50'000);           // an hour: 72 steps of 50 s
  EXPECT_EQ(StepMs(7LL * 86'400'000), 5'000'000);  // a week: 121 steps
}

// Samples 15 s apart at 1 s steps: a steady rate, not spikes every 15 steps.
TEST(RunSeriesTest, AmountsBetweenSamplesAreSpreadEvenly) {
  const std::vector<WorkerSample> samples = {Sample("a", 0, 0), Sample("a", 15'000, 1500),
                                             Sample("a", 30'000, 1500)};
  const RunSeries series = BuildRunSeries(samples, "main");
  ASSERT_EQ(series.axis.steps, 30u);
  const std::vector<double> rate = PerSecond(series.committed.at("main"), series.axis);
  for (std::size_t i = 0; i < 15; ++i) EXPECT_DOUBLE_EQ(rate[i], 100) << i;
  for (std::size_t i = 15; i < 30; ++i) EXPECT_DOUBLE_EQ(rate[i], 0) << i;
  const std::vector<double> workers = PerSecond(series.worker_seconds, series.axis);
  EXPECT_DOUBLE_EQ(workers[0], 1);
  EXPECT_DOUBLE_EQ(workers[29], 1);
}

// Two runs, one after the other (a restart): each counts from zero, and what a run's
// first sample holds already is counted, not lost.
TEST(RunSeriesTest, RestartsEachCountFromZeroAndNothingIsLost) {
  const std::vector<WorkerSample> samples = {
      Sample("a", 0, 10, R"({"failures{reason=dns}":1,"fetch_bytes_total":100})"),
      Sample("a", 10'000, 110, R"({"failures{reason=dns}":3,"fetch_bytes_total":600})"),
      Sample("b", 20'000, 0, R"({"stage_records_total{stage=fetch}":0})"),
      Sample("b", 30'000, 50, R"({"stage_records_total{stage=fetch}":50})")};
  const RunSeries series = BuildRunSeries(samples, "main");
  EXPECT_EQ(series.owners.size(), 2u);
  const std::vector<double>& committed = series.committed.at("main");
  EXPECT_DOUBLE_EQ(std::accumulate(committed.begin(), committed.end(), 0.0), 160);
  EXPECT_DOUBLE_EQ(committed[0], 10 + 10);  // the first sample's, and 1 s of the rest
  EXPECT_DOUBLE_EQ(committed[15], 0);       // between the runs
  const std::vector<double>& dns = series.failures.at("dns");
  EXPECT_DOUBLE_EQ(std::accumulate(dns.begin(), dns.end(), 0.0), 3);
  EXPECT_DOUBLE_EQ(std::accumulate(series.bytes.begin(), series.bytes.end(), 0.0), 600);
  const std::vector<double>& fetch = series.stages.at("fetch");
  EXPECT_DOUBLE_EQ(fetch[25], 5);
  EXPECT_DOUBLE_EQ(std::accumulate(fetch.begin(), fetch.end(), 0.0), 50);
}

TEST(RunSeriesTest, NoSamplesNoSteps) {
  const RunSeries series = BuildRunSeries({}, "main");
  EXPECT_EQ(series.axis.steps, 0u);
  EXPECT_TRUE(series.committed.empty());
}

TEST(RunSeriesTest, QuantilesAreInterpolatedWithinTheirBucket) {
  WorkerReport a;
  a.group = "main";
  a.counters_json =
      R"({"stage_seconds_bucket{stage=fetch,le=0.1}":50,"stage_seconds_bucket{stage=fetch,le=1}":40,)"
      R"("stage_seconds_bucket{stage=fetch,le=+Inf}":10,"stage_records_total{stage=fetch}":100,)"
      R"("stage_us_total{stage=fetch}":25000000,"stage_index{stage=fetch}":0,)"
      R"("stage_index{stage=decode}":1})";
  const std::map<std::string, StageTimes> stages = StageTimesOf({a, a});
  ASSERT_EQ(stages.size(), 2u);
  const StageTimes& fetch = stages.at("fetch");
  EXPECT_EQ(fetch.records, 200u);
  EXPECT_DOUBLE_EQ(fetch.seconds, 50);
  EXPECT_EQ(stages.at("decode").index, 1u);
  EXPECT_DOUBLE_EQ(fetch.Quantile(0.25), 0.05);  // half-way into the first bucket
  EXPECT_THAT(fetch.Quantile(0.7), DoubleNear(0.55, 1e-9));
  EXPECT_DOUBLE_EQ(fetch.Quantile(0.99), 1);  // in the bucket over 1 s: 1 s
  EXPECT_DOUBLE_EQ(stages.at("decode").Quantile(0.5), 0);
}

TEST(SvgChartTest, NamesAreEscapedAndCountsMarked) {
  const std::string chart = TimeChart("t", "Items <all>", "items/s", 1,
                                      {{"a&b", {1, 2, 3}}, {"c", {0, 0, 0}}});
  EXPECT_NE(chart.find("<svg id=\"t\" class=\"chart\" data-points=\"3\" data-series=\"2\""),
            std::string::npos);
  EXPECT_NE(chart.find("Items &lt;all&gt;"), std::string::npos);
  EXPECT_NE(chart.find(">a&amp;b</text>"), std::string::npos);
  EXPECT_EQ(chart.find("<all>"), std::string::npos);
  const std::string bars = BarChart("b", "Hosts", "items", {{"x\"y", 2}, {"z", 0}});
  EXPECT_NE(bars.find("data-points=\"2\""), std::string::npos);
  EXPECT_NE(bars.find("x&quot;y"), std::string::npos);
  EXPECT_EQ(ShortNumber(12345), "12.3k");
  EXPECT_EQ(ShortNumber(0.5), "0.5");
}

}  // namespace
}  // namespace sluice::cli
