#include "src/core/metrics.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(MetricsTextTest, FamiliesOnceSamplesWithEscapedLabels) {
  MetricsText out;
  out.Family("sluice_x_total", "counter", "Things.\nCounted.");
  out.Sample("sluice_x_total", {{"stage", "a\"b\\c\nd"}}, 3);
  out.Family("sluice_x_total", "counter", "again: ignored");
  out.Sample("sluice_x_total", {}, 0.5);
  EXPECT_EQ(out.text(),
            "# HELP sluice_x_total Things. Counted.\n"
            "# TYPE sluice_x_total counter\n"
            "sluice_x_total{stage=\"a\\\"b\\\\c\\nd\"} 3\n"
            "sluice_x_total 0.5\n");
}

TEST(MetricsTextTest, HistogramBucketsAreCumulative) {
  SecondsHistogram histogram;
  histogram.Observe(0.0001);      // first bucket
  histogram.Observe(0.003, 2);    // le 0.005
  histogram.Observe(1000);        // over the last bound
  MetricsText out;
  out.Family("sluice_t_seconds", "histogram", "Time.");
  out.Histogram("sluice_t_seconds", {{"stage", "s"}}, histogram);
  const std::string& text = out.text();
  EXPECT_NE(text.find("sluice_t_seconds_bucket{stage=\"s\",le=\"0.0005\"} 1\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("sluice_t_seconds_bucket{stage=\"s\",le=\"0.0025\"} 1\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("sluice_t_seconds_bucket{stage=\"s\",le=\"0.005\"} 3\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("sluice_t_seconds_bucket{stage=\"s\",le=\"60\"} 3\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("sluice_t_seconds_bucket{stage=\"s\",le=\"+Inf\"} 4\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("sluice_t_seconds_count{stage=\"s\"} 4\n"), std::string::npos);
  EXPECT_DOUBLE_EQ(histogram.sum, 0.0001 + 0.006 + 1000);
}

TEST(MetricsTextTest, NamesAreMadeValid) {
  EXPECT_EQ(MetricsText::SanitizeName("sluice_cache hits-total"), "sluice_cache_hits_total");
  EXPECT_EQ(MetricsText::SanitizeName("9lives"), "_lives");
  EXPECT_EQ(MetricsText::SanitizeName(""), "_");
}

}  // namespace
}  // namespace sluice
