// `sluice test`: every example pipeline's test file passes, a failed expectation
// exits 1 with a diff, and a bad test file exits 2 naming its YAML path.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace sluice::testing {
namespace {

std::string ExamplesDir() { return SourceDir() + "/pipelines/examples"; }

// The working directory for as long as it lives.
class WorkingDirectory {
 public:
  explicit WorkingDirectory(const std::string& dir)
      : before_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~WorkingDirectory() {
    std::error_code ignored;
    std::filesystem::current_path(before_, ignored);
  }
  WorkingDirectory(const WorkingDirectory&) = delete;
  WorkingDirectory& operator=(const WorkingDirectory&) = delete;

 private:
  const std::filesystem::path before_;
};

TEST(TestCommandTest, EveryExamplePipelineHasATestFileThatPasses) {
  // From the repository root, as the examples say: the exec examples' scripts are
  // named relative to it.
  WorkingDirectory root(SourceDir());
  std::vector<std::string> args = {"test"};
  for (const auto& entry : std::filesystem::directory_iterator(ExamplesDir())) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".yaml" || name.ends_with("_test.yaml")) continue;
    const std::string test_file =
        ExamplesDir() + "/" + entry.path().stem().string() + "_test.yaml";
    EXPECT_TRUE(std::filesystem::exists(test_file)) << name << " has no " << test_file;
    args.push_back(test_file);
  }
  ASSERT_GT(args.size(), 1u);
  args.push_back(SourceDir() + "/pipelines/faces_test.yaml");  // the flagship's, too
  CommandResult result = RunSluice(args);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find(" tests, 0 failed\n"), std::string::npos) << result.out;
  EXPECT_EQ(result.out.find("FAIL"), std::string::npos) << result.out;
}

TEST(TestCommandTest, AFailedExpectationExitsOneWithADiff) {
  TempDir dir;
  const std::string file = dir.Write("noop_test.yaml", R"(pipeline: )" + ExamplesDir() +
                                                           R"(/noop.yaml
tests:
  - name: passes
    input: [{url: "http://a.example/1", fields: {n: 1}}]
    expect: {records: [{status: ok, fields: {n: 1}}]}
  - name: expects what noop does not do
    input: [{url: "http://a.example/1", fields: {n: 1}}]
    expect:
      count: 1
      records: [{status: filtered, fields: {n: 2}}]
)");
  CommandResult result = RunSluice({"test", file});
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_NE(result.out.find("ok   " + file + ": passes\n"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("FAIL " + file + ": expects what noop does not do\n"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("status: expected filtered, got ok"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("fields.n: expected 2, got 1"), std::string::npos)
      << result.out;
  EXPECT_NE(
      result.out.find(R"(actual:   {"id":1,"url":"http://a.example/1","status":"ok")"),
      std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("2 tests, 1 failed\n"), std::string::npos) << result.out;
}

TEST(TestCommandTest, ABadTestFileExitsTwoNamingTheYamlPath) {
  TempDir dir;
  const std::string file = dir.Write("bad_test.yaml", R"(pipeline: )" + ExamplesDir() +
                                                          R"(/filter.yaml
tests:
  - name: unmocked
    input: [{url: "http://a.example/1"}]
    expect: {records: [{status: okay}]}
)");
  CommandResult result = RunSluice({"test", file});
  EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
  EXPECT_NE(
      result.err.find(file + ": tests[0].expect.records[0].status: expected one of ok, "
                             "failed, filtered"),
      std::string::npos)
      << result.err;

  const std::string unmocked =
      dir.Write("unmocked_test.yaml", R"(pipeline: )" + ExamplesDir() +
                                          R"(/filter.yaml
tests:
  - name: unmocked
    input: [{url: "http://a.example/1"}]
    expect: {count: 1}
)");
  result = RunSluice({"test", unmocked});
  EXPECT_EQ(result.exit_code, 2) << result.out << result.err;
  EXPECT_NE(result.err.find("stage 'fetch' (fetch) touches the network: mock it"),
            std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace sluice::testing
