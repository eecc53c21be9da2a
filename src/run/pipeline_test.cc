// The library's Pipeline (include/sluice/pipeline.h) with a stage of the test's own:
// loading refuses what it must with the file and YAML path, a run processes and
// resumes, and its results can be read back.
#include "sluice/pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;

// Writes the length of the item's URL to `field`, and fails URLs over `max`.
class UrlLengthStage final : public CpuStage {
 public:
  UrlLengthStage(std::string field, std::int64_t max)
      : field_(std::move(field)), max_(max) {}
  StageFields Fields() const override { return DeclaredFields({}, {field_}); }
  void ProcessOne(Record& record) override {
    const auto length = static_cast<std::int64_t>(record.url().size());
    if (length > max_) {
      record.Fail(FailureReason::kStage, "url too long");
      return;
    }
    record.Set(field_, length);
  }

 private:
  const std::string field_;
  const std::int64_t max_;
};

Result<std::unique_ptr<Stage>> MakeUrlLength(StageOptions& options) {
  std::string field = options.GetString("field", "url_length");
  const std::int64_t max = options.GetInt("max", 1000, 1, 1'000'000);
  return std::unique_ptr<Stage>(std::make_unique<UrlLengthStage>(std::move(field), max));
}

StageRegistry TestRegistry() {
  StageRegistry registry;
  EXPECT_TRUE(registry.Register("url_length", "length of the URL", MakeUrlLength).ok());
  return registry;
}

constexpr char kPipeline[] = R"(name: lengths
batch_size: 2
output: {metadata: false, stats: false}
stages:
  - {name: length, type: url_length, field: n, max: 20}
)";

TEST(PipelineTest, RegisteringANameTwiceIsRefused) {
  StageRegistry registry = TestRegistry();
  Status again = registry.Register("url_length", "another", MakeUrlLength);
  EXPECT_EQ(again.code(), StatusCode::kInvalidArgument);
  ASSERT_NE(registry.Find("url_length"), nullptr);
  EXPECT_EQ(registry.List().size(), 1u);
}

TEST(PipelineTest, LoadNamesTheFileAndTheYamlPathOfAnError) {
  testing::TempDir dir;
  const StageRegistry registry = TestRegistry();
  const std::string path = dir.Write(
      "bad.yaml", "name: bad\nstages:\n  - {name: length, type: url_length, max: x}\n");
  Result<Pipeline> loaded = Pipeline::Load(path, registry);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(), HasSubstr(path));
  EXPECT_THAT(loaded.status().message(), HasSubstr("stages[0] (length).max"));

  Result<Pipeline> unknown =
      Pipeline::Parse("stages:\n  - {name: s, type: shout}\n", "inline.yaml", registry);
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("shout"));

  Result<Pipeline> bad_set =
      Pipeline::Parse(kPipeline, "p.yaml", registry, {"batch_size"});
  EXPECT_FALSE(bad_set.ok());
}

TEST(PipelineTest, RunProcessesTheInputsAndResumesAFinishedWorkdir) {
  testing::TempDir dir;
  const StageRegistry registry = TestRegistry();
  Result<Pipeline> pipeline = Pipeline::Parse(kPipeline, "p.yaml", registry);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  EXPECT_EQ(pipeline->name(), "lengths");
  EXPECT_EQ(pipeline->GroupNames(), std::vector<std::string>{"main"});
  dir.Write("urls.txt",
            "http://a.example/1\nhttp://b.example/22\nhttp://example.com/a/long/path\n");
  RunOptions options;
  options.inputs = {dir.File("urls.txt")};
  options.workdir = dir.File("work");
  std::vector<std::string> info;
  options.info = [&info](std::string_view line) { info.emplace_back(line); };

  Result<RunSummary> summary = pipeline->Run(options);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->items, 3u);
  EXPECT_EQ(summary->processed, 3u);
  EXPECT_EQ(summary->ok, 2u);
  EXPECT_EQ(summary->failed, 1u);
  EXPECT_EQ(summary->failures.at("stage"), 1u);
  EXPECT_THAT(info.at(0), HasSubstr("3 items"));

  std::vector<std::string> rows;
  Status read = pipeline->ForEachResult(options.workdir, [&rows](const ExportRow& row) {
    rows.push_back(row.url + " " + std::string(FailureReasonName(row.reason)) + " " +
                   row.fields_json);
    return Status::Ok();
  });
  ASSERT_TRUE(read.ok()) << read.ToString();
  EXPECT_THAT(rows,
              ::testing::ElementsAre("http://a.example/1  {\"n\":18}",
                                     "http://b.example/22  {\"n\":19}",
                                     HasSubstr("http://example.com/a/long/path stage")));

  // The same call again: the input is known, every item done.
  Result<RunSummary> again = pipeline->Run(options);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->processed, 0u);
  EXPECT_EQ(again->ok, 2u);
}

TEST(PipelineTest, RunRefusesAWorkdirOfAnotherPipeline) {
  testing::TempDir dir;
  const StageRegistry registry = TestRegistry();
  Result<Pipeline> first = Pipeline::Parse(kPipeline, "p.yaml", registry);
  Result<Pipeline> other =
      Pipeline::Parse(kPipeline, "p.yaml", registry, {"batch_size=7"});
  ASSERT_TRUE(first.ok() && other.ok());
  RunOptions options;
  options.workdir = dir.File("work");
  ASSERT_TRUE(first->Run(options).ok());
  Result<RunSummary> refused = other->Run(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("workdir " + options.workdir));

  RunOptions none;
  EXPECT_EQ(first->Run(none).ToStatus().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(first
                ->ForEachResult(dir.File("nowhere"),
                                [](const ExportRow&) { return Status::Ok(); })
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice
