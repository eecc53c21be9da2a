// Pipelines as graphs in YAML: parsing, the errors that name YAML paths, building
// and running the nodes, and the printed graph.
#include "src/core/pipeline_graph.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "src/core/pipeline_config.h"
#include "src/core/runtime.h"
#include "src/core/runtime_test_util.h"

namespace sluice {
namespace {

// Sets the field its `field` option names (default: its own name) to true.
class SetStage final : public CpuStage {
 public:
  explicit SetStage(std::string field, std::vector<std::string> reads = {})
      : field_(std::move(field)), reads_(std::move(reads)) {}
  void ProcessOne(Record& record) override { record.Set(field_, true); }
  StageFields Fields() const override { return DeclaredFields(reads_, {field_}); }

 private:
  const std::string field_;
  const std::vector<std::string> reads_;
};

// Declares nothing about its fields.
class OpaqueStage final : public CpuStage {};

StageRegistry GraphRegistry() {
  StageRegistry registry;
  EXPECT_TRUE(registry
                  .Register("set", "sets a field",
                            [](StageOptions& options) -> Result<std::unique_ptr<Stage>> {
                              std::string field = options.GetString("field", "x");
                              return std::unique_ptr<Stage>(std::make_unique<SetStage>(
                                  std::move(field), options.GetStringList("reads", {})));
                            })
                  .ok());
  EXPECT_TRUE(registry
                  .Register("opaque", "says nothing of its fields",
                            [](StageOptions&) -> Result<std::unique_ptr<Stage>> {
                              return std::unique_ptr<Stage>(std::make_unique<OpaqueStage>());
                            })
                  .ok());
  return registry;
}

Result<PipelineConfig> Parse(const std::string& stages, const std::string& extra = "") {
  return ParsePipeline("name: g\n" + extra + "stages:\n" + stages, "g.yaml", {},
                       GraphRegistry());
}

constexpr const char* kCopyJoin = R"yaml(
  - {name: pre, type: set, field: pre}
  - {name: fork, type: copy, branches: [left, right]}
  - {name: l, type: set, field: l, input: fork.left}
  - {name: r, type: set, field: r, input: fork.right}
  - {name: r2, type: set, field: r2}
  - {name: both, type: join, inputs: [l, r2], fields: {r2: [r, r2]}}
  - {name: post, type: set, field: post}
)yaml";

// Runs `config`'s nodes over one batch of `count` records; returns them.
std::vector<Record> RunOnce(const PipelineConfig& config, std::size_t count,
                            const std::vector<std::string>& urls = {}) {
  Result<std::vector<NamedStage>> nodes = BuildStages(config, GraphRegistry());
  EXPECT_TRUE(nodes.ok()) << nodes.status().ToString();
  if (!nodes.ok()) return {};
  runtime_test::Sink sink;
  Runtime runtime(RuntimeOptions{}, std::move(nodes).value(), sink.Callback());
  EXPECT_TRUE(runtime.Start().ok());
  std::vector<Record> records = runtime_test::MakeBatch(0, count);
  for (std::size_t i = 0; i < urls.size() && i < records.size(); ++i) {
    records[i] = Record(i, urls[i]);
  }
  EXPECT_TRUE(runtime.Submit(1, std::move(records)).ok());
  runtime.Finish();
  EXPECT_TRUE(runtime.error().ok()) << runtime.error().message();
  return sink.batches()[1];
}

TEST(PipelineGraphTest, ACopyJoinedBackRunsAndKeepsTheFieldsTheJoinTakes) {
  Result<PipelineConfig> config = Parse(kCopyJoin);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const std::vector<Record> records = RunOnce(*config, 300);
  ASSERT_EQ(records.size(), 300u);
  for (const Record& record : records) {
    for (const char* field : {"pre", "l", "r", "r2", "post"}) {
      EXPECT_NE(record.Find(field), nullptr) << record.id() << " lacks " << field;
    }
  }
}

TEST(PipelineGraphTest, ASplitSendsEachRecordToItsFirstMatchingBranch) {
  Result<PipelineConfig> config = Parse(R"yaml(
  - name: route
    type: split
    branches:
      - {name: a, when: "ends_with(url, '0')"}
      - {name: b, when: "ends_with(url, '1')"}
  - {name: sa, type: set, field: sa, input: route.a}
  - {name: sb, type: set, field: sb, input: route.b}
  - {type: merge, inputs: [sa, sb]}
)yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const std::vector<Record> records = RunOnce(*config, 30);
  ASSERT_EQ(records.size(), 30u);
  for (const Record& record : records) {
    const char last = record.url().back();
    EXPECT_EQ(record.Find("sa") != nullptr, last == '0') << record.url();
    EXPECT_EQ(record.Find("sb") != nullptr, last == '1') << record.url();
    if (last != '0' && last != '1') {
      EXPECT_EQ(record.reason(), FailureReason::kFiltered) << record.url();
      EXPECT_NE(record.error().find("no branch's condition held"), std::string::npos);
    }
  }
}

TEST(PipelineGraphTest, AShardSendsEveryRecordOfAHostToTheSameBranch) {
  Result<PipelineConfig> config = Parse(R"yaml(
  - {name: by_host, type: shard, key: host, shards: 3}
  - {name: s0, type: set, field: s0, input: by_host.0}
  - {name: s1, type: set, field: s1, input: by_host.1}
  - {name: s2, type: set, field: s2, input: by_host.2}
  - {type: merge, inputs: [s0, s1, s2]}
)yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  std::vector<std::string> urls;
  for (int i = 0; i < 200; ++i) {
    urls.push_back("http://host" + std::to_string(i % 20) + ".example/" +
                   std::to_string(i));
  }
  const std::vector<Record> records = RunOnce(*config, urls.size(), urls);
  ASSERT_EQ(records.size(), urls.size());
  std::map<std::string, std::set<int>> shards_of_host;
  std::set<int> used;
  for (const Record& record : records) {
    const std::string host = record.url().substr(7, record.url().find('/', 7) - 7);
    int shard = -1;
    for (int s = 0; s < 3; ++s) {
      if (record.Find("s" + std::to_string(s)) != nullptr) shard = s;
    }
    ASSERT_NE(shard, -1) << record.url();
    shards_of_host[host].insert(shard);
    used.insert(shard);
  }
  for (const auto& [host, shards] : shards_of_host) {
    EXPECT_EQ(shards.size(), 1u) << host << " went to several shards";
  }
  EXPECT_EQ(used.size(), 3u) << "20 hosts over 3 shards use them all";
}

// A copy inside a branch of a split: the join closes the copy, then the merge the
// split, inside out.
TEST(PipelineGraphTest, ForksNestAndCloseInsideOut) {
  Result<PipelineConfig> config = Parse(R"yaml(
  - name: route
    type: split
    branches:
      - {name: even, when: "ends_with(url, '0') || ends_with(url, '2') || ends_with(url, '4') || ends_with(url, '6') || ends_with(url, '8')"}
      - {name: odd}
  - {name: fork, type: copy, branches: [p, q], input: route.even}
  - {name: sp, type: set, field: sp, input: fork.p}
  - {name: sq, type: set, field: sq, input: fork.q}
  - {name: both, type: join, inputs: [sp, sq], fields: {sq: [sq]}}
  - {name: so, type: set, field: so, input: route.odd}
  - {type: merge, inputs: [both, so]}
)yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const std::vector<Record> records = RunOnce(*config, 50);
  ASSERT_EQ(records.size(), 50u);
  for (const Record& record : records) {
    const bool even = (record.url().back() - '0') % 2 == 0;
    EXPECT_EQ(record.Find("sp") != nullptr, even) << record.url();
    EXPECT_EQ(record.Find("sq") != nullptr, even) << record.url();
    EXPECT_EQ(record.Find("so") != nullptr, !even) << record.url();
  }
}

struct BadGraph {
  const char* what;
  std::string stages;
  std::string expected;  // a part of the message
};

TEST(PipelineGraphTest, BadGraphsAreRefusedNamingTheYamlPath) {
  const std::vector<BadGraph> cases = {
      {"unknown input", "  - {name: a, type: set}\n  - {name: b, type: set, input: zz}\n",
       "stages[1] (b).input: no node is named 'zz'"},
      {"unknown branch",
       "  - {name: f, type: copy, branches: [x, y]}\n"
       "  - {name: a, type: set, input: f.z}\n",
       "stages[1] (a).input: 'f' has no branch 'z' (branches: x, y)"},
      {"branch not named",
       "  - {name: f, type: copy, branches: [x, y]}\n"
       "  - {name: a, type: set, input: f}\n",
       "'f' has branches (x, y): read one of them, as 'f.x'"},
      {"implicit input after a copy",
       "  - {name: f, type: copy, branches: [x, y]}\n  - {name: a, type: set}\n",
       "stages[1] (a): the node before it, 'f', has branches (x, y)"},
      {"cycle",
       "  - {name: a, type: set}\n  - {name: b, type: set, input: c}\n"
       "  - {name: c, type: set, input: b}\n",
       "stages[1] (b).input: 'c' makes a cycle: b -> c -> b"},
      {"out of order",
       "  - {name: a, type: set}\n  - {name: b, type: set, input: c}\n"
       "  - {name: c, type: set, input: a}\n",
       "'c' is listed after it"},
      {"join after a split",
       "  - name: s\n    type: split\n    branches: [{name: x, when: 'true'}, {name: y}]\n"
       "  - {name: a, type: set, input: s.x}\n  - {name: b, type: set, input: s.y}\n"
       "  - {name: j, type: join, inputs: [a, b], fields: {b: [b]}}\n",
       "stages[3] (j): 's' is a split or shard"},
      {"dangling branch",
       "  - {name: f, type: copy, branches: [x, y]}\n"
       "  - {name: a, type: set, input: f.x}\n",
       "nothing reads branch 'f.y'"},
      {"join without fields",
       "  - {name: f, type: copy, branches: [x, y]}\n"
       "  - {name: a, type: set, input: f.x}\n  - {name: b, type: set, input: f.y}\n"
       "  - {name: j, type: join, inputs: [a, b]}\n",
       "stages[3] (j).fields: required"},
      {"split branch without a condition",
       "  - name: s\n    type: split\n    branches: [{name: x}, {name: y}]\n",
       "stages[0] (s).branches[0].when: required"},
      {"split with a bad condition",
       "  - name: s\n    type: split\n    branches: [{name: x, when: 'width >'}, {name: y}]\n",
       "stages[0] (s).branches[0].when"},
      {"shard without a count", "  - {name: s, type: shard}\n",
       "stages[0] (s).shards: required"},
      {"merge without inputs", "  - {name: a, type: set}\n  - {name: m, type: merge}\n",
       "stages[1] (m).inputs: required"},
      {"two readers",
       "  - {name: a, type: set}\n  - {name: b, type: set, input: a}\n"
       "  - {name: c, type: set, input: a}\n",
       "'a' is read by both 'b' and 'c'"},
      {"unknown type", "  - {name: a, type: nope}\n", "operators: copy, split"},
      {"a join of two copies' branches",
       "  - {name: f, type: copy, branches: [x, y]}\n"
       "  - {name: g, type: copy, branches: [u, v], input: f.x}\n"
       "  - {name: a, type: set, input: g.u}\n"
       "  - {name: j, type: join, inputs: [a, f.y], fields: {f.y: [b]}}\n",
       "are not branches of the same fork"},
      {"a join missing a branch",
       "  - {name: f, type: copy, branches: [x, y, z]}\n"
       "  - {name: a, type: set, input: f.x}\n  - {name: b, type: set, input: f.y}\n"
       "  - {name: j, type: join, inputs: [a, b], fields: {b: [b]}}\n",
       "takes 2 of the 3 branches of 'f' (missing: f.z)"},
  };
  for (const BadGraph& c : cases) {
    Result<PipelineConfig> config = Parse(c.stages);
    ASSERT_FALSE(config.ok()) << c.what;
    EXPECT_NE(config.status().message().find(c.expected), std::string::npos)
        << c.what << ":\n" << config.status().message();
  }
}

// A field a stage needs must be written by a node before it on every path there.
TEST(PipelineGraphTest, AFieldReadMustBeWrittenBefore) {
  struct Case {
    const char* what;
    std::string stages;
    std::string expected;  // "" when it loads
  };
  const std::vector<Case> cases = {
      {"written before", "  - {name: a, type: set, field: f}\n"
                         "  - {name: b, type: set, field: g, reads: [f]}\n", ""},
      {"written after",
       "  - {name: b, type: set, field: g, reads: [f]}\n  - {name: a, type: set, field: f}\n",
       "stages[0] (b): reads 'f', which no node before it writes ('a' writes it: put it "
       "before)"},
      {"written on one branch of a split only",
       "  - name: s\n    type: split\n    branches: [{name: x, when: 'true'}, {name: y}]\n"
       "  - {name: a, type: set, field: f, input: s.x}\n"
       "  - {name: b, type: set, field: g, input: s.y}\n"
       "  - {name: m, type: merge, inputs: [a, b]}\n"
       "  - {name: c, type: set, field: h, reads: [f]}\n",
       "stages[4] (c): reads 'f'"},
      {"taken by the join",
       "  - {name: fork, type: copy, branches: [x, y]}\n"
       "  - {name: a, type: set, field: f, input: fork.x}\n"
       "  - {name: b, type: set, field: g, input: fork.y}\n"
       "  - {name: j, type: join, inputs: [a, b], fields: {b: [g]}}\n"
       "  - {name: c, type: set, field: h, reads: [f, g]}\n",
       ""},
      {"a join taking what its branch lacks",
       "  - {name: fork, type: copy, branches: [x, y]}\n"
       "  - {name: a, type: set, field: f, input: fork.x}\n"
       "  - {name: b, type: set, field: g, input: fork.y}\n"
       "  - {name: j, type: join, inputs: [a, b], fields: {b: [f]}}\n",
       "stages[3] (j).fields.b: takes 'f', which no node on that branch writes"},
      {"after a stage that declares nothing",
       "  - {name: o, type: opaque}\n  - {name: b, type: set, field: g, reads: [f]}\n", ""},
  };
  for (const Case& c : cases) {
    Result<PipelineConfig> config = Parse(c.stages);
    if (c.expected.empty()) {
      EXPECT_TRUE(config.ok()) << c.what << ": " << config.status().ToString();
    } else {
      ASSERT_FALSE(config.ok()) << c.what;
      EXPECT_NE(config.status().message().find(c.expected), std::string::npos)
          << c.what << ":\n" << config.status().message();
    }
  }
  // An expression may read an input column: a name nothing writes is a warning.
  Result<PipelineConfig> split = Parse(
      "  - {name: a, type: set, field: f}\n"
      "  - name: s\n    type: split\n"
      "    branches: [{name: x, when: 'f && caption'}, {name: y}]\n"
      "  - {name: m, type: merge, inputs: [s.x, s.y]}\n");
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  ASSERT_EQ(split->warnings.size(), 1u);
  EXPECT_NE(split->warnings[0].find("stages[1] (s): 'caption' is written by no node "
                                    "before it: it must be an input column"),
            std::string::npos)
      << split->warnings[0];
  // The output's image field must be written.
  Result<PipelineConfig> output = Parse("  - {name: a, type: set, field: f}\n",
                                        "output: {layout: files}\n");
  ASSERT_FALSE(output.ok());
  EXPECT_NE(output.status().message().find("output.image_field: 'encoded'"),
            std::string::npos)
      << output.status().message();
}

TEST(PipelineGraphTest, StageGroupsStartOnlyWhereThePipelineIsOneStream) {
  const std::string stages =
      "  - {name: f, type: copy, branches: [x, y]}\n"
      "  - {name: a, type: set, input: f.x}\n  - {name: b, type: set, field: b, input: f.y}\n"
      "  - {name: j, type: join, inputs: [a, b], fields: {b: [b]}}\n"
      "  - {name: after, type: set}\n";
  Result<PipelineConfig> inside = Parse(
      stages, "groups:\n  - {name: one, stages: [f, a]}\n  - {name: two, stages: [b, j, after]}\n");
  ASSERT_FALSE(inside.ok());
  EXPECT_NE(inside.status().message().find("groups[1] (two): starts at 'b'"),
            std::string::npos)
      << inside.status().message();

  Result<PipelineConfig> outside = Parse(
      stages, "groups:\n  - {name: one, stages: [f, a, b, j]}\n  - {name: two, stages: [after]}\n");
  ASSERT_TRUE(outside.ok()) << outside.status().ToString();
  Result<std::vector<NamedStage>> first =
      BuildStages(*outside, GraphRegistry(), &outside->groups[0]);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->size(), 4u);
  Runtime runtime(RuntimeOptions{}, std::move(first).value(), nullptr);
  EXPECT_TRUE(runtime.Start().ok()) << "the group's own nodes form a sound graph";
  runtime.Finish();
}

TEST(PipelineGraphTest, TheGraphPrintsAsTextAndAsDot) {
  Result<PipelineConfig> config = Parse(kCopyJoin);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const std::string text = GraphText(*config);
  EXPECT_NE(text.find("  pre (set) <- the input\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  fork (copy) <- pre -> branches left, right\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  r (set) <- fork.right\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  both (join) <- l, r2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  post (set) <- both -> end\n"), std::string::npos) << text;
  const std::string dot = GraphDot(*config);
  EXPECT_EQ(dot.rfind("digraph \"g\" {", 0), 0u) << dot;
  EXPECT_NE(dot.find("\"fork\" -> \"r\" [label=\"right\"];"), std::string::npos) << dot;
  EXPECT_NE(dot.find("\"r2\" -> \"both\";"), std::string::npos) << dot;
  EXPECT_NE(dot.find("\"post\" -> \"(end)\";"), std::string::npos) << dot;
}

TEST(PipelineGraphTest, TheFingerprintFollowsTheWiring) {
  Result<PipelineConfig> one = Parse(kCopyJoin);
  std::string rewired = kCopyJoin;
  rewired.replace(rewired.find("inputs: [l, r2], fields: {r2: [r, r2]}"),
                  std::string("inputs: [l, r2], fields: {r2: [r, r2]}").size(),
                  "inputs: [r2, l], fields: {l: [l]}");
  Result<PipelineConfig> two = Parse(rewired);
  ASSERT_TRUE(one.ok() && two.ok()) << two.status().ToString();
  EXPECT_NE(one->fingerprint, two->fingerprint);
}

// Reduce nodes come last and are kept apart from the stages; a reduce anywhere else,
// or one that names an input, is refused with its YAML path.
TEST(PipelineGraphTest, ReduceNodesComeAfterEveryOtherNode) {
  constexpr const char* kReduce = R"yaml(
  - {name: a, type: set, field: x}
  - name: per_host
    type: reduce
    group_by: host
    aggregates: {xs: {count: x}, ys: {sum: y}}
)yaml";
  Result<PipelineConfig> config = Parse(kReduce);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->stages.size(), 1u);
  ASSERT_EQ(config->reducers.size(), 1u);
  EXPECT_EQ(config->reducers[0].spec->name, "per_host");
  EXPECT_EQ(config->reducers[0].path, "stages[1] (per_host)");
  ASSERT_EQ(config->warnings.size(), 1u);
  EXPECT_NE(config->warnings[0].find("stages[1] (per_host): 'y' is written by no node"),
            std::string::npos)
      << config->warnings[0];
  EXPECT_NE(GraphText(*config).find("  per_host (reduce) <- end\n"), std::string::npos)
      << GraphText(*config);
  EXPECT_NE(GraphDot(*config).find("\"(end)\" -> \"per_host\""), std::string::npos);
  Result<PipelineConfig> other_options =
      Parse(std::string(kReduce) + "    max_groups: 5\n");
  ASSERT_TRUE(other_options.ok()) << other_options.status().ToString();
  EXPECT_NE(other_options->fingerprint, config->fingerprint);

  struct Case {
    const char* stages;
    const char* message;
  };
  const Case cases[] = {
      {R"yaml(
  - {name: r, type: reduce, aggregates: {n: {count: 'true'}}}
  - {name: a, type: set}
)yaml",
       "stages[1] (a): comes after the reduce node stages[0] (r)"},
      {R"yaml(
  - {name: a, type: set}
  - {name: r, type: reduce, input: a, aggregates: {n: {count: 'true'}}}
)yaml",
       "stages[1] (r).input: a reduce reads the records the pipeline ends with"},
      {R"yaml(
  - {name: r, type: reduce, aggregates: {n: {count: 'true'}}}
)yaml",
       "stages: a reduce needs stages before it"},
      {R"yaml(
  - {name: a, type: set}
  - {name: "r/x", type: reduce, aggregates: {n: {count: 'true'}}}
)yaml",
       "stages[1] (r/x).name: a reduce's name names its output file"},
      {R"yaml(
  - {name: a, type: set}
  - {name: r, type: reduce, aggregates: {n: {count: 'x =='}}}
)yaml",
       "stages[1] (r).aggregates.n.count: column"},
  };
  for (const Case& c : cases) {
    Result<PipelineConfig> bad = Parse(c.stages);
    ASSERT_FALSE(bad.ok()) << c.stages;
    EXPECT_NE(bad.status().message().find(c.message), std::string::npos)
        << bad.status().message();
  }
}

}  // namespace
}  // namespace sluice
