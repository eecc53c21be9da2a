#include "src/core/pipeline_config.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

class NoopStage final : public CpuStage {};

class WaitStage final : public AsyncStage {
 public:
  explicit WaitStage(std::size_t max_in_flight) : max_in_flight_(max_in_flight) {}
  std::size_t max_in_flight() const override { return max_in_flight_; }
  void Start(Record record, AsyncContext& ctx) override {
    ctx.Complete(std::move(record));
  }
  std::chrono::milliseconds record_deadline() const override {
    return std::chrono::seconds(5);
  }
  void Abandon(ItemId, AsyncContext&) override {}

 private:
  std::size_t max_in_flight_;
};

StageRegistry TestRegistry() {
  StageRegistry registry;
  EXPECT_TRUE(registry
                  .Register("noop", "does nothing",
                            [](StageOptions&) -> Result<std::unique_ptr<Stage>> {
                              return std::unique_ptr<Stage>(std::make_unique<NoopStage>());
                            })
                  .ok());
  EXPECT_TRUE(registry
                  .Register("wait", "waits",
                            [](StageOptions& options) -> Result<std::unique_ptr<Stage>> {
                              options.GetInt("ms", 10, 0, 1000);
                              auto max = options.GetInt("max_in_flight", 100, 1, 100000);
                              options.GetChoice("mode", "fifo", {"fifo", "lifo"});
                              return std::unique_ptr<Stage>(std::make_unique<WaitStage>(
                                  static_cast<std::size_t>(max)));
                            })
                  .ok());
  return registry;
}

constexpr const char* kPipeline = R"(
name: example
batch_size: 500
input: {format: csv, url_column: link}
stages:
  - {name: first, type: noop}
  - name: pause
    type: wait
    ms: 5
    max_in_flight: 2000
)";

TEST(PipelineConfigTest, ParsesTopLevelInputAndStages) {
  auto config = ParsePipeline(kPipeline, "p.yaml", {}, TestRegistry());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->name, "example");
  EXPECT_EQ(config->batch_size, 500u);
  EXPECT_EQ(config->input.format, "csv");
  EXPECT_EQ(config->input.url_column, "link");
  ASSERT_EQ(config->stages.size(), 2u);
  EXPECT_EQ(config->stages[1].name, "pause");
  EXPECT_EQ(config->stages[1].type, "wait");

  auto stages = BuildStages(*config, TestRegistry());
  ASSERT_TRUE(stages.ok()) << stages.status().ToString();
  ASSERT_EQ(stages->size(), 2u);
  EXPECT_EQ((*stages)[1].stage->kind(), Stage::Kind::kAsync);
  // 2000 in flight at 500 per batch is 4 batches, plus threads and slack.
  EXPECT_GE(InFlightBatches(*config, *stages), 4u + 3u);
}

TEST(PipelineConfigTest, ErrorsNameTheYamlPathAndAreAllReported) {
  constexpr const char* bad = R"(
name: bad
batch_size: zero
colour: blue
stages:
  - {name: pause, type: wait, ms: 99999, mode: random, extra: 1}
  - {name: other, type: nosuch}
)";
  auto config = ParsePipeline(bad, "bad.yaml", {}, TestRegistry());
  ASSERT_FALSE(config.ok());
  const std::string& message = config.status().message();
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(message.find("bad.yaml"), std::string::npos) << message;
  EXPECT_NE(message.find("batch_size: expected an integer, got 'zero'"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("colour: unknown option"), std::string::npos) << message;
  EXPECT_NE(message.find("stages[0] (pause).ms: 99999 is out of range"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("stages[0] (pause).mode: 'random' is not one of: fifo, lifo"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("stages[0] (pause).extra: unknown option"), std::string::npos)
      << message;
  EXPECT_NE(message.find("stages[1] (other).type: unknown stage type 'nosuch'"),
            std::string::npos)
      << message;
}

TEST(PipelineConfigTest, InvalidYamlGivesLineAndColumn) {
  auto config = ParsePipeline("name: x\nstages: [\n", "broken.yaml", {}, TestRegistry());
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("broken.yaml:"), std::string::npos);
  EXPECT_NE(config.status().message().find("invalid YAML"), std::string::npos);
}

TEST(PipelineConfigTest, MissingNameAndStagesAreReported) {
  auto config = ParsePipeline("batch_size: 10\n", "p.yaml", {}, TestRegistry());
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("name: required"), std::string::npos);
  EXPECT_NE(config.status().message().find("stages: required"), std::string::npos);
}

TEST(PipelineConfigTest, OverridesByStageNameIndexAndTopLevel) {
  std::vector<ConfigOverride> overrides;
  for (const char* text : {"stages.pause.ms=7", "stages.0.name=renamed", "batch_size=42",
                           "input.max_line_bytes=1024"}) {
    auto parsed = ParseOverride(text);
    ASSERT_TRUE(parsed.ok()) << text;
    overrides.push_back(*parsed);
  }
  auto config = ParsePipeline(kPipeline, "p.yaml", overrides, TestRegistry());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->batch_size, 42u);
  EXPECT_EQ(config->input.max_line_bytes, 1024u);
  EXPECT_EQ(config->stages[0].name, "renamed");
  EXPECT_NE(config->stages[1].options_yaml.find("ms: 7"), std::string::npos)
      << config->stages[1].options_yaml;
}

TEST(PipelineConfigTest, BadOverridesAreClearErrors) {
  EXPECT_FALSE(ParseOverride("novalue").ok());
  EXPECT_FALSE(ParseOverride("=5").ok());
  auto unknown_stage =
      ParsePipeline(kPipeline, "p.yaml", {{"stages.nosuch.ms", "1"}}, TestRegistry());
  ASSERT_FALSE(unknown_stage.ok());
  EXPECT_NE(unknown_stage.status().message().find("no element 'nosuch'"),
            std::string::npos)
      << unknown_stage.status().message();
  auto bad_value =
      ParsePipeline(kPipeline, "p.yaml", {{"stages.pause.ms", "-3"}}, TestRegistry());
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.status().message().find("stages[1] (pause).ms: -3 is out of range"),
            std::string::npos)
      << bad_value.status().message();
}

TEST(PipelineConfigTest, FingerprintFollowsResultsNotTuning) {
  auto base = ParsePipeline(kPipeline, "p.yaml", {}, TestRegistry());
  auto tuned = ParsePipeline(kPipeline, "p.yaml", {{"threads", "3"}}, TestRegistry());
  auto changed =
      ParsePipeline(kPipeline, "p.yaml", {{"stages.pause.ms", "6"}}, TestRegistry());
  ASSERT_TRUE(base.ok() && tuned.ok() && changed.ok());
  EXPECT_EQ(base->fingerprint, tuned->fingerprint);
  EXPECT_NE(base->fingerprint, changed->fingerprint);
}

TEST(PipelineConfigTest, OutputDefaultsToMetadataAndStatsOnly) {
  auto config = ParsePipeline(kPipeline, "p.yaml", {}, TestRegistry());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->output.layout, OutputLayout::kNone);
  EXPECT_EQ(config->output.dir, "");
  EXPECT_EQ(config->output.image_field, "encoded");
  EXPECT_TRUE(config->output.metadata);
  EXPECT_TRUE(config->output.stats);
  EXPECT_EQ(config->output.fields, OutputFields::kSluice);
  EXPECT_EQ(config->output.shard_digits, 5);
}

TEST(PipelineConfigTest, OutputFieldsAndShardDigitsAreReadAndChecked) {
  auto config = ParsePipeline(
      std::string(kPipeline) + "output: {fields: img2dataset, shard_digits: 7}\n",
      "p.yaml", {}, TestRegistry());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->output.fields, OutputFields::kImg2Dataset);
  EXPECT_EQ(config->output.shard_digits, 7);
  EXPECT_EQ(OutputFieldsName(config->output.fields), "img2dataset");

  auto bad = ParsePipeline(
      std::string(kPipeline) + "output: {fields: webdataset, shard_digits: 13}\n",
      "p.yaml", {}, TestRegistry());
  ASSERT_FALSE(bad.ok());
  const std::string& message = bad.status().message();
  EXPECT_NE(message.find("output.fields"), std::string::npos) << message;
  EXPECT_NE(message.find("img2dataset"), std::string::npos) << message;  // the choices
  EXPECT_NE(message.find("output.shard_digits"), std::string::npos) << message;
  for (const char* digits : {"0", "x", "2.5"}) {
    auto wrong = ParsePipeline(kPipeline, "p.yaml", {{"output.shard_digits", digits}},
                               TestRegistry());
    ASSERT_FALSE(wrong.ok()) << digits;
    EXPECT_NE(wrong.status().message().find("output.shard_digits"), std::string::npos)
        << wrong.status().message();
  }
}

TEST(PipelineConfigTest, OutputSectionIsReadAndChecked) {
  const std::string yaml = std::string(kPipeline) +
                           "output: {layout: webdataset, dir: /data/out, "
                           "image_field: jpeg_bytes, metadata: false, stats: false}\n";
  auto config = ParsePipeline(yaml, "p.yaml", {}, TestRegistry());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->output.layout, OutputLayout::kWebDataset);
  EXPECT_EQ(config->output.dir, "/data/out");
  EXPECT_EQ(config->output.image_field, "jpeg_bytes");
  EXPECT_FALSE(config->output.metadata);
  EXPECT_FALSE(config->output.stats);
  EXPECT_TRUE(config->output.enabled());
  auto silent = ParsePipeline(kPipeline, "p.yaml",
                              {{"output.metadata", "false"}, {"output.stats", "false"}},
                              TestRegistry());
  ASSERT_TRUE(silent.ok()) << silent.status().ToString();
  EXPECT_FALSE(silent->output.enabled());

  auto bad = ParsePipeline(
      std::string(kPipeline) + "output: {layout: zip, metadata: maybe, shards: 3}\n",
      "p.yaml", {}, TestRegistry());
  ASSERT_FALSE(bad.ok());
  const std::string& message = bad.status().message();
  EXPECT_NE(message.find("output.layout"), std::string::npos) << message;
  EXPECT_NE(message.find("output.metadata"), std::string::npos) << message;
  EXPECT_NE(message.find("output.shards"), std::string::npos) << message;
}

TEST(PipelineConfigTest, FingerprintFollowsTheOutputShapeNotItsPlace) {
  auto base = ParsePipeline(kPipeline, "p.yaml", {}, TestRegistry());
  auto moved =
      ParsePipeline(kPipeline, "p.yaml", {{"output.dir", "/elsewhere"}}, TestRegistry());
  auto reshaped =
      ParsePipeline(kPipeline, "p.yaml", {{"output.layout", "files"}}, TestRegistry());
  ASSERT_TRUE(base.ok() && moved.ok() && reshaped.ok());
  EXPECT_EQ(base->fingerprint, moved->fingerprint);
  EXPECT_NE(base->fingerprint, reshaped->fingerprint);
}

// A workdir is not resumed with other names for its outputs. Fields sluice, the
// default, leaves the digest as it was before the key existed.
TEST(PipelineConfigTest, FingerprintFollowsTheOutputFieldsAndShardDigits) {
  auto base = ParsePipeline(kPipeline, "p.yaml", {}, TestRegistry());
  auto sluice = ParsePipeline(kPipeline, "p.yaml",
                              {{"output.fields", "sluice"}, {"output.shard_digits", "8"}},
                              TestRegistry());
  auto i2d = ParsePipeline(kPipeline, "p.yaml", {{"output.fields", "img2dataset"}},
                           TestRegistry());
  auto i2d_wider = ParsePipeline(
      kPipeline, "p.yaml",
      {{"output.fields", "img2dataset"}, {"output.shard_digits", "6"}}, TestRegistry());
  ASSERT_TRUE(base.ok() && sluice.ok() && i2d.ok() && i2d_wider.ok());
  EXPECT_EQ(base->fingerprint, sluice->fingerprint);
  EXPECT_NE(base->fingerprint, i2d->fingerprint);
  EXPECT_NE(i2d->fingerprint, i2d_wider->fingerprint);
}

constexpr const char* kSplit = R"(
name: split
stages:
  - {name: a, type: noop}
  - {name: b, type: noop}
  - {name: c, type: noop}
groups:
  - {name: early, stages: [a, b]}
  - {name: late, stages: [c]}
blobs: {dir: /shared/blobs}
)";

TEST(PipelineConfigTest, GroupsNameConsecutiveStagesInOrder) {
  auto config = ParsePipeline(kSplit, "p.yaml", {}, TestRegistry());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->groups.size(), 2u);
  EXPECT_EQ(config->GroupNames(), (std::vector<std::string>{"early", "late"}));
  EXPECT_EQ(config->groups[0].first_stage, 0u);
  EXPECT_EQ(config->groups[0].stage_count, 2u);
  EXPECT_EQ(config->groups[1].first_stage, 2u);
  EXPECT_EQ(config->groups[1].stage_count, 1u);
  EXPECT_EQ(config->blobs_dir, "/shared/blobs");
  auto late = BuildStages(*config, TestRegistry(), config->FindGroup("late"));
  ASSERT_TRUE(late.ok());
  ASSERT_EQ(late->size(), 1u);
  EXPECT_EQ((*late)[0].name, "c");
  EXPECT_EQ(config->FindGroup("nope"), nullptr);

  // Without groups: one group of every stage, named by `group`.
  auto plain = ParsePipeline(kPipeline, "p.yaml", {}, TestRegistry());
  ASSERT_TRUE(plain.ok());
  ASSERT_EQ(plain->groups.size(), 1u);
  EXPECT_EQ(plain->groups[0].name, "main");
  EXPECT_EQ(plain->groups[0].stage_count, 2u);
  // How the stages are split decides where results are kept: it is in the fingerprint.
  auto one = ParsePipeline(
      kSplit, "p.yaml", {{"groups", "[{name: all, stages: [a, b, c]}]"}}, TestRegistry());
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_NE(one->fingerprint, config->fingerprint);
}

TEST(PipelineConfigTest, BadGroupsAreRefusedNamingThePath) {
  auto refused = [](const std::string& groups) {
    auto config = ParsePipeline(kSplit, "p.yaml", {{"groups", groups}}, TestRegistry());
    return config.ok() ? std::string("accepted") : config.status().message();
  };
  EXPECT_NE(refused("[{name: x, stages: [a, c]}, {name: y, stages: [b]}]")
                .find("groups[0] (x).stages: 'c' is out of place"),
            std::string::npos);
  EXPECT_NE(refused("[{name: x, stages: [a, b]}]")
                .find("groups: stage 'c' and those after it are in no group"),
            std::string::npos);
  EXPECT_NE(refused("[{name: x, stages: [a, zz]}]").find("no stage is named 'zz'"),
            std::string::npos);
  EXPECT_NE(refused("[{name: x, stages: [a]}, {name: x, stages: [b, c]}]")
                .find("groups[1] (x).name: 'x' is used by an earlier group"),
            std::string::npos);
  EXPECT_NE(refused("[{name: 'a/b', stages: [a, b, c]}]").find("groups[0] (a/b).name"),
            std::string::npos);
  EXPECT_NE(refused("[{name: x, stages: []}, {name: y, stages: [a, b, c]}]")
                .find("groups[0] (x).stages: required"),
            std::string::npos);
  auto both = ParsePipeline(kSplit, "p.yaml", {{"group", "other"}}, TestRegistry());
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("give either group (one group) or groups"),
            std::string::npos)
      << both.status().message();
}

}  // namespace
}  // namespace sluice
