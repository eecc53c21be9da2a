// Pipeline tests in YAML (src/run/pipeline_test_file.h, pipeline_test_runner.h):
// bad files are refused with YAML paths, tests run on the real runtime with mocks
// and targets, and a failed expectation comes back with a diff.
#include "src/run/pipeline_test_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "src/run/pipeline_test_runner.h"
#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Sets its `field` option to true on each record.
class TagStage final : public CpuStage {
 public:
  explicit TagStage(std::string field) : field_(std::move(field)) {}
  void ProcessOne(Record& record) override { record.Set(field_, true); }

 private:
  const std::string field_;
};

// Stands for a download: a test must mock it (it is registered as "fetch").
class PretendFetchStage final : public CpuStage {
 public:
  void ProcessOne(Record& record) override { record.Set("downloaded", true); }
};

StageRegistry TestRegistry() {
  StageRegistry registry;
  EXPECT_TRUE(registry
                  .Register("tag", "sets a field",
                            [](StageOptions& options) -> Result<std::unique_ptr<Stage>> {
                              return std::unique_ptr<Stage>(std::make_unique<TagStage>(
                                  options.GetString("field", "tagged")));
                            })
                  .ok());
  EXPECT_TRUE(registry
                  .Register("fetch", "pretends to download",
                            [](StageOptions&) -> Result<std::unique_ptr<Stage>> {
                              return std::unique_ptr<Stage>(
                                  std::make_unique<PretendFetchStage>());
                            })
                  .ok());
  return registry;
}

constexpr char kPipeline[] = R"(name: graph
stages:
  - {name: fetch, type: fetch}
  - {name: mark, type: tag, field: marked}
  - {name: fork, type: copy, branches: [a, b]}
  - {name: left, type: tag, field: left, input: fork.a}
  - {name: right, type: tag, field: right, input: fork.b}
  - {name: together, type: join, inputs: [left, right], fields: {right: [right]}}
  - {name: last, type: tag, field: last}
  - {name: totals, type: reduce, group_by: host, aggregates: {ok: {count: "status == 'ok'"}}}
)";

class PipelineTestFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_.Write("graph.yaml", kPipeline); }

  // Loads `yaml` as a test file next to the pipeline and runs it.
  Result<std::vector<PipelineTestResult>> Run(const std::string& yaml) {
    Result<PipelineTestFile> file =
        LoadPipelineTestFile(dir_.Write("graph_test.yaml", yaml));
    if (!file.ok()) return file.ToStatus();
    return RunPipelineTestFile(*file, registry_);
  }

  testing::TempDir dir_;
  StageRegistry registry_ = TestRegistry();
};

TEST_F(PipelineTestFileTest, BadFilesAreRefusedWithEveryYamlPath) {
  Result<PipelineTestFile> file = ParsePipelineTestFile(R"(pipeline: graph.yaml
tests:
  - name: one
    input: [{url: "http://a.example/1"}]
    expect:
      records: [{status: okay}]
  - name: two
    input: [{url: "http://a.example/1", colour: red}]
    mocks: {fetch: {fail: no_such_reason}}
    expect: {count: -1}
  - name: three
)",
                                                        "graph_test.yaml", dir_.path());
  ASSERT_FALSE(file.ok());
  const std::string message = file.ToStatus().message();
  EXPECT_THAT(message, HasSubstr("graph_test.yaml: tests[0].expect.records[0].status: "
                                 "expected one of ok, failed, filtered"));
  EXPECT_THAT(message,
              HasSubstr("graph_test.yaml: tests[1].input[0].colour: unknown key"));
  EXPECT_THAT(message,
              HasSubstr("tests[1].mocks.fetch.fail: unknown reason 'no_such_reason'"));
  EXPECT_THAT(message,
              HasSubstr("tests[1].expect.count: expected a non-negative integer"));
  EXPECT_THAT(message, HasSubstr("tests[2]: a test needs `input`"));
}

TEST_F(PipelineTestFileTest, AMissingBodyFileIsNamed) {
  Result<PipelineTestFile> file = ParsePipelineTestFile(R"(pipeline: graph.yaml
tests:
  - name: one
    input: [{url: "http://a.example/1", body_file: nowhere.jpg}]
    expect: {count: 1}
)",
                                                        "graph_test.yaml", dir_.path());
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.ToStatus().message(),
              HasSubstr("tests[0].input[0].body_file: no such file"));
}

TEST_F(PipelineTestFileTest, TheWholeGraphRunsWithItsFetchMocked) {
  Result<std::vector<PipelineTestResult>> results = Run(R"(pipeline: graph.yaml
tests:
  - name: through both branches
    mocks: {fetch: {set: {http_status: 200, content_type: image/jpeg}}}
    input:
      - {url: "http://a.example/1", fields: {n: 7}}
      - {url: "http://b.example/2", columns: {caption: hello}}
    expect:
      count: 2
      records:
        - {status: ok, fields: {n: 7, http_status: 200, marked: true, left: true,
           right: true, last: true}, fields_absent: [downloaded]}
        - {status: ok, fields: {caption: hello}, fields_match: {url: "^http://b\\."}}
      reduce:
        totals: {json_contains: {items: 2, groups: [{key: a.example, ok: 1}]}}
)");
  ASSERT_TRUE(results.ok()) << results.ToStatus().ToString();
  ASSERT_EQ(results->size(), 1u);
  EXPECT_TRUE((*results)[0].passed) << ::testing::PrintToString((*results)[0].diff);
}

TEST_F(PipelineTestFileTest, AFailedExpectationComesWithADiff) {
  Result<std::vector<PipelineTestResult>> results = Run(R"(pipeline: graph.yaml
tests:
  - name: a mock fails the download
    mocks: {fetch: {fail: http_5xx, error: "HTTP 503"}}
    input: [{url: "http://a.example/1"}]
    expect:
      count: 2
      records:
        - {status: ok, reason: timeout, error_contains: "404", fields: {marked: true}}
      reduce:
        totals: {json_contains: {groups: [{key: a.example, ok: 1}]}}
)");
  ASSERT_TRUE(results.ok()) << results.ToStatus().ToString();
  ASSERT_EQ(results->size(), 1u);
  const PipelineTestResult& result = (*results)[0];
  EXPECT_FALSE(result.passed);
  std::string diff;
  for (const std::string& line : result.diff) diff += line + "\n";
  EXPECT_THAT(diff, HasSubstr("count: expected 2, got 1"));
  EXPECT_THAT(diff, HasSubstr("status: expected ok, got failed"));
  EXPECT_THAT(diff, HasSubstr("reason: expected timeout, got http_5xx"));
  EXPECT_THAT(diff, HasSubstr("error_contains: '404' not in"));
  EXPECT_THAT(diff, HasSubstr("fields.marked: expected true, not set"));
  EXPECT_THAT(diff, HasSubstr(R"(actual:   {"id":1,"url":"http://a.example/1")"));
  EXPECT_THAT(diff, HasSubstr("reduce.totals: the result does not contain"));
}

TEST_F(PipelineTestFileTest, ATargetRunsOnlyItsStages) {
  Result<std::vector<PipelineTestResult>> results = Run(R"(pipeline: graph.yaml
tests:
  - name: the graph without fetch and last
    target: {from: mark, to: together}
    input: [{url: "http://a.example/1"}]
    expect:
      records: [{status: ok, fields: {marked: true, right: true}, fields_absent: [last]}]
)");
  ASSERT_TRUE(results.ok()) << results.ToStatus().ToString();
  EXPECT_TRUE((*results)[0].passed) << ::testing::PrintToString((*results)[0].diff);
}

TEST_F(PipelineTestFileTest, AnUnmockedNetworkStageIsRefused) {
  Result<std::vector<PipelineTestResult>> results = Run(R"(pipeline: graph.yaml
tests:
  - name: forgot the mock
    input: [{url: "http://a.example/1"}]
    expect: {count: 1}
)");
  ASSERT_FALSE(results.ok());
  EXPECT_THAT(results.ToStatus().message(),
              HasSubstr("graph_test.yaml: tests[0]: stage 'fetch' (fetch) touches the "
                        "network: mock it"));
}

TEST_F(PipelineTestFileTest, TargetsThatDoNotCutOneStreamAreRefused) {
  for (const auto& [target, expected] : std::vector<std::pair<std::string, std::string>>{
           {"{from: right, to: together}", "'together' reads 'left', outside the range"},
           {"{from: mark, to: left}", "'right', after the range, reads 'fork' inside it"},
           {"{from: mark, to: fork}", "target.to: 'fork' has branches"},
           {"{from: last, to: mark}", "'last' comes after 'mark'"},
           {"{from: nothing, to: mark}",
            "tests[0].target.from: no stage named 'nothing'"},
       }) {
    Result<std::vector<PipelineTestResult>> results = Run(R"(pipeline: graph.yaml
tests:
  - name: cut
    target: )" + target + R"(
    input: [{url: "http://a.example/1"}]
    expect: {count: 1}
)");
    ASSERT_FALSE(results.ok()) << target;
    EXPECT_THAT(results.ToStatus().message(), HasSubstr(expected)) << target;
    EXPECT_THAT(results.ToStatus().message(), HasSubstr("graph_test.yaml: tests[0]"));
  }
}

TEST_F(PipelineTestFileTest, MocksAndReducesMustNameWhatThePipelineHas) {
  Result<std::vector<PipelineTestResult>> results = Run(R"(pipeline: graph.yaml
tests:
  - name: typo
    mocks: {fecth: {set: {a: 1}}}
    input: [{url: "http://a.example/1"}]
    expect: {count: 1}
)");
  ASSERT_FALSE(results.ok());
  EXPECT_THAT(results.ToStatus().message(),
              HasSubstr("tests[0].mocks.fecth: no stage named 'fecth'"));
  results = Run(R"(pipeline: graph.yaml
tests:
  - name: typo
    mocks: {fetch: {set: {a: 1}}}
    input: [{url: "http://a.example/1"}]
    expect: {reduce: {total: {json_contains: {}}}}
)");
  ASSERT_FALSE(results.ok());
  EXPECT_THAT(results.ToStatus().message(),
              HasSubstr("tests[0].expect.reduce.total: the pipeline has no reduce node"));
}

TEST(JsonContainsTest, ObjectsByKeyArraysByElementNumbersByValue) {
  const OrderedJson actual = OrderedJson::parse(
      R"({"items": 3, "groups": [{"key": "a", "n": 2.0, "x": [1, 2]}, {"key": "b"}]})");
  EXPECT_TRUE(JsonContains(OrderedJson::parse(R"({"items": 3})"), actual));
  EXPECT_TRUE(JsonContains(OrderedJson::parse(R"({"groups": [{"n": 2}]})"), actual));
  EXPECT_TRUE(
      JsonContains(OrderedJson::parse(R"({"groups": [{}, {"key": "b"}]})"), actual));
  EXPECT_FALSE(JsonContains(OrderedJson::parse(R"({"groups": [{"key": "b"}]})"), actual));
  EXPECT_FALSE(JsonContains(OrderedJson::parse(R"({"items": "3"})"), actual));
  EXPECT_FALSE(JsonContains(OrderedJson::parse(R"({"missing": null})"), actual));
  EXPECT_FALSE(
      JsonContains(OrderedJson::parse(R"([1, 2, 3])"), OrderedJson::parse("[1, 2]")));
}

}  // namespace
}  // namespace sluice
