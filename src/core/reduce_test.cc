// reduce: the YAML it reads, what it computes, and that its result is the same
// however the records are split into batches and whatever a retry redoes.
#include "src/core/reduce.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "src/core/reduce_part.h"

namespace sluice {
namespace {

// Parses a reduce node's options; the error text when they are wrong.
Result<std::shared_ptr<const ReduceSpec>> ParseSpec(const std::string& yaml,
                                                    std::vector<std::string>* errors) {
  YamlOptions options(YAML::Load(yaml), "stages[3] (per_host)", errors);
  Result<std::shared_ptr<const ReduceSpec>> spec = ParseReduce("per_host", options, errors);
  Status finished = options.Finish();
  if (spec.ok() && !finished.ok()) return finished;
  return spec;
}

std::shared_ptr<const ReduceSpec> Spec(const std::string& yaml) {
  std::vector<std::string> errors;
  Result<std::shared_ptr<const ReduceSpec>> spec = ParseSpec(yaml, &errors);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? *spec : nullptr;
}

constexpr const char* kPerHost = R"yaml(
group_by: host
aggregates:
  ok: {count: "status == 'ok'"}
  success_rate: {mean: "status == 'ok'"}
  faces: {sum: faces}
  fewest: {min: faces}
  most: {max: faces}
  per_image: {mean: faces, where: "status == 'ok'"}
  histogram: {histogram: faces, buckets: [0, 1, 3]}
)yaml";

// Item `id` on `host`: ok with `faces` faces, or failed with a timeout (faces < 0).
Record Item(ItemId id, const std::string& host, int faces) {
  Record record(id, "http://" + host + "/" + std::to_string(id) + ".jpg");
  if (faces < 0) {
    record.Fail(FailureReason::kTimeout, "slow");
  } else {
    record.Set("faces", static_cast<std::int64_t>(faces));
  }
  return record;
}

// Items 0..n-1 over three hosts with a mix of faces and failures.
std::vector<Record> Items(std::size_t n) {
  std::vector<Record> records;
  const char* hosts[] = {"a.example", "b.example", "c.example"};
  for (std::size_t i = 0; i < n; ++i) {
    const int faces = i % 7 == 3 ? -1 : static_cast<int>((i * 5) % 4);
    records.push_back(Item(i, hosts[(i * i) % 3], faces));
  }
  return records;
}

TEST(ReduceTest, ComputesEachAggregatePerKey) {
  ReduceTable table(Spec(kPerHost));
  table.Add(Item(0, "a.example", 2));
  table.Add(Item(1, "a.example", 0));
  table.Add(Item(2, "a.example", -1));
  table.Add(Item(3, "b.example", 5));
  const OrderedJson result = table.ResultJson();
  EXPECT_EQ(result["reduce"], "per_host");
  EXPECT_EQ(result["group_by"], "host");
  EXPECT_EQ(result["items"], 4);
  ASSERT_EQ(result["groups"].size(), 2u);
  const OrderedJson& a = result["groups"][0];
  EXPECT_EQ(a["key"], "a.example");
  EXPECT_EQ(a["items"], 3);
  EXPECT_EQ(a["ok"], 2);
  EXPECT_DOUBLE_EQ(a["success_rate"].get<double>(), 2.0 / 3.0);
  EXPECT_EQ(a["faces"], 2);
  EXPECT_EQ(a["fewest"], 0);
  EXPECT_EQ(a["most"], 2);
  EXPECT_EQ(a["per_image"], 1) << "the failed item has no faces field: left out";
  EXPECT_EQ(a["histogram"]["le"], OrderedJson::parse("[0, 1, 3]"));
  EXPECT_EQ(a["histogram"]["counts"], OrderedJson::parse("[1, 0, 1, 0]"));
  const OrderedJson& b = result["groups"][1];
  EXPECT_EQ(b["key"], "b.example");
  EXPECT_EQ(b["histogram"]["counts"], OrderedJson::parse("[0, 0, 0, 1]"));
  EXPECT_FALSE(result.contains("other"));
}

TEST(ReduceTest, AGroupWithoutValuesShowsNullsNotZeros) {
  ReduceTable table(Spec(kPerHost));
  table.Add(Item(0, "a.example", -1));
  const OrderedJson group = table.ResultJson()["groups"][0];
  EXPECT_EQ(group["ok"], 0);
  EXPECT_EQ(group["faces"], 0);
  EXPECT_TRUE(group["fewest"].is_null());
  EXPECT_TRUE(group["most"].is_null());
  EXPECT_TRUE(group["per_image"].is_null());
}

TEST(ReduceTest, WithoutGroupByEverythingIsOneGroupAndReasonsCanBeCounted) {
  ReduceTable table(Spec(R"yaml(
aggregates:
  timeouts: {count: "reason == 'timeout'"}
  filtered: {count: "status == 'filtered'"}
)yaml"));
  table.Add(Item(0, "a.example", -1));
  table.Add(Item(1, "b.example", 1));
  Record filtered(2, "http://c.example/x");
  filtered.Fail(FailureReason::kFiltered, "small");
  table.Add(filtered);
  const OrderedJson result = table.ResultJson();
  ASSERT_EQ(result["groups"].size(), 1u);
  EXPECT_TRUE(result["groups"][0]["key"].is_null());
  EXPECT_EQ(result["groups"][0]["timeouts"], 1);
  EXPECT_EQ(result["groups"][0]["filtered"], 1);
  EXPECT_FALSE(result.contains("group_by"));
}

// The fold of all records is the merge of the folds of any split into consecutive
// parts: a run's result does not depend on how its batches were cut or interleaved.
TEST(ReduceTest, MergingPartsGivesTheFoldOfTheWhole) {
  const auto spec = Spec(kPerHost);
  const std::vector<Record> records = Items(100);
  ReduceTable whole(spec);
  for (const Record& record : records) whole.Add(record);
  for (std::size_t part_size : {1u, 7u, 33u, 100u}) {
    ReduceTable merged(spec);
    for (std::size_t first = 0; first < records.size(); first += part_size) {
      ReduceTable part(spec);
      for (std::size_t i = first; i < std::min(records.size(), first + part_size); ++i) {
        part.Add(records[i]);
      }
      merged.Merge(part);
    }
    EXPECT_EQ(DumpJson(merged.ResultJson()), DumpJson(whole.ResultJson())) << part_size;
  }
}

TEST(ReduceTest, KeysBeyondMaxGroupsGoToOther) {
  const auto spec = Spec(std::string(kPerHost) + "max_groups: 2\n");
  ReduceTable table(spec);
  table.Add(Item(0, "a.example", 1));
  table.Add(Item(1, "b.example", 1));
  table.Add(Item(2, "c.example", 2));
  table.Add(Item(3, "d.example", 3));
  table.Add(Item(4, "a.example", 1));
  const OrderedJson result = table.ResultJson();
  EXPECT_EQ(result["groups_kept"], 2);
  ASSERT_EQ(result["groups"].size(), 2u);
  EXPECT_EQ(result["groups"][0]["items"], 2);
  ASSERT_TRUE(result.contains("other"));
  EXPECT_EQ(result["other"]["items"], 2);
  EXPECT_EQ(result["other"]["faces"], 5);
  EXPECT_EQ(result["items"], 5);
}

TEST(ReduceTest, OrderByAndLimitGiveTheTopGroups) {
  const auto spec = Spec(std::string(kPerHost) + "order_by: faces\nlimit: 2\n");
  ReduceTable table(spec);
  table.Add(Item(0, "a.example", 1));
  table.Add(Item(1, "b.example", 3));
  table.Add(Item(2, "c.example", 2));
  table.Add(Item(3, "d.example", 3));
  const OrderedJson groups = table.ResultJson()["groups"];
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0]["key"], "b.example") << "ties by key";
  EXPECT_EQ(groups[1]["key"], "d.example");
  EXPECT_EQ(table.ResultJson()["groups_kept"], 4);
}

TEST(ReduceTest, NumericKeysAreNumbersInTheResult) {
  const auto spec = Spec("group_by: faces\naggregates: {n: {count: 'true'}}\n");
  ReduceTable table(spec);
  table.Add(Item(0, "a.example", 10));
  table.Add(Item(1, "a.example", 9));
  table.Add(Item(2, "a.example", -1));
  const OrderedJson groups = table.ResultJson()["groups"];
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_TRUE(groups[0]["key"].is_null()) << "missing sorts first";
  EXPECT_EQ(groups[1]["key"], 9);
  EXPECT_EQ(groups[2]["key"], 10);
}

TEST(ReduceTest, StateRoundTripsAndDamageIsCorruption) {
  const auto spec = Spec(std::string(kPerHost) + "max_groups: 2\n");
  ReduceTable table(spec);
  for (const Record& record : Items(50)) table.Add(record);
  const std::string state = DumpJson(table.StateJson());
  Result<ReduceTable> back = ReduceTable::FromStateJson(spec, nlohmann::json::parse(state), "x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(DumpJson(back->ResultJson()), DumpJson(table.ResultJson()));
  for (const char* damaged : {R"({"groups": 3, "other": [0, []]})",
                              R"({"groups": [["a", 1]], "other": [0, []]})",
                              R"({"groups": [], "other": [1, [1]]})", "[]"}) {
    Result<ReduceTable> bad =
        ReduceTable::FromStateJson(spec, nlohmann::json::parse(damaged), "part.json");
    ASSERT_FALSE(bad.ok()) << damaged;
    EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
    EXPECT_NE(bad.status().message().find("part.json: not a reduce state"), std::string::npos)
        << bad.status().message();
  }
}

TEST(ReduceTest, OptionErrorsNameTheirPath) {
  struct Case {
    const char* yaml;
    const char* message;
  };
  const Case cases[] = {
      {"group_by: host\n", "stages[3] (per_host).aggregates: required"},
      {"aggregates: {n: {count: 'true', sum: faces}}\n",
       "stages[3] (per_host).aggregates.n: more than one aggregate"},
      {"aggregates: {n: {where: 'true'}}\n",
       "stages[3] (per_host).aggregates.n: required: what to aggregate"},
      {"aggregates: {n: {count: 'faces >'}}\n",
       "stages[3] (per_host).aggregates.n.count: column 8: expected a value"},
      {"aggregates: {n: {histogram: faces}}\n",
       "stages[3] (per_host).aggregates.n.buckets: required"},
      {"aggregates: {n: {histogram: faces, buckets: [1, 1]}}\n",
       "stages[3] (per_host).aggregates.n.buckets[1]: 1 is not above"},
      {"aggregates: {n: {histogram: faces, buckets: [1, x]}}\n",
       "stages[3] (per_host).aggregates.n.buckets[1]: expected a number, got 'x'"},
      {"aggregates: {n: {sum: faces, buckets: [1]}}\n",
       "stages[3] (per_host).aggregates.n.buckets: only a histogram"},
      {"aggregates: {items: {count: 'true'}}\n",
       "stages[3] (per_host).aggregates.items: 'items' is a name every group has"},
      {"aggregates: {n: {count: 'true'}}\norder_by: m\n",
       "stages[3] (per_host).order_by: 'm' is none of"},
      {"aggregates: {n: {histogram: faces, buckets: [1]}}\norder_by: n\n",
       "stages[3] (per_host).order_by: 'n' is a histogram"},
      {"aggregates: {n: {count: 'true', typo: 1}}\n", "typo"},
      {"aggregates: {n: 3}\n", "stages[3] (per_host).aggregates.n: expected a mapping"},
      {"group_by: 'host ==' \naggregates: {n: {count: 'true'}}\n",
       "stages[3] (per_host).group_by: column"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> errors;
    Result<std::shared_ptr<const ReduceSpec>> spec = ParseSpec(c.yaml, &errors);
    std::string all;
    for (const std::string& error : errors) all += error + "\n";
    EXPECT_FALSE(spec.ok() && errors.empty()) << c.yaml;
    EXPECT_NE(all.find(c.message), std::string::npos) << c.yaml << "\n" << all;
  }
}

TEST(ReduceTest, ReadsTheNamesItsExpressionsUse) {
  const auto spec = Spec(kPerHost);
  EXPECT_EQ(spec->reads, std::vector<std::string>{"faces"})
      << "host and status are every record's";
}

// --- a batch's part -----------------------------------------------------------

std::string ResultOf(const ReduceBatchPart& part) {
  return DumpJson(part.Table().ResultJson());
}

// A retry redoes the failed items of a batch alone: its new part keeps the rest,
// and equals the part of a batch whose items ended so the first time.
TEST(ReduceBatchPartTest, ARedoInPartReplacesOnlyTheRedoneItems) {
  const auto spec = Spec(kPerHost);
  std::vector<Record> first = Items(30);
  Result<ReduceBatchPart> earlier = ReduceBatchPart::Make(spec, 30, first, nullptr);
  ASSERT_TRUE(earlier.ok()) << earlier.status().ToString();
  // The failed ones are redone and now succeed.
  std::vector<Record> redone;
  std::vector<Record> final_records = first;
  for (Record& record : final_records) {
    if (!record.failed()) continue;
    record = Item(record.id(), "a.example", 1);
    redone.push_back(record);
  }
  ASSERT_FALSE(redone.empty());
  Result<ReduceBatchPart> again = ReduceBatchPart::Make(spec, 30, redone, &*earlier);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  Result<ReduceBatchPart> direct = ReduceBatchPart::Make(spec, 30, final_records, nullptr);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(again->items(), 30u);
  EXPECT_EQ(ResultOf(*again), ResultOf(*direct));
}

// A redo in part that published its part and crashed before its commit is redone
// again from that part: its items are replaced, not counted twice.
TEST(ReduceBatchPartTest, ARedoFromAnUncommittedRedoCountsOnce) {
  const auto spec = Spec(kPerHost);
  std::vector<Record> first = Items(30);
  Result<ReduceBatchPart> committed = ReduceBatchPart::Make(spec, 30, first, nullptr);
  ASSERT_TRUE(committed.ok());
  std::vector<Record> redone;
  for (const Record& record : first) {
    if (record.failed()) redone.push_back(Item(record.id(), "b.example", 2));
  }
  Result<ReduceBatchPart> crashed = ReduceBatchPart::Make(spec, 30, redone, &*committed);
  ASSERT_TRUE(crashed.ok());
  Result<ReduceBatchPart> again = ReduceBatchPart::Make(spec, 30, redone, &*crashed);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(ResultOf(*again), ResultOf(*crashed));
  EXPECT_EQ(again->items(), 30u);
}

TEST(ReduceBatchPartTest, AnItemRedoneThatHadNotFailedIsRefused) {
  const auto spec = Spec(kPerHost);
  std::vector<Record> first = Items(10);
  Result<ReduceBatchPart> earlier = ReduceBatchPart::Make(spec, 10, first, nullptr);
  ASSERT_TRUE(earlier.ok());
  ASSERT_FALSE(first[0].failed());
  std::vector<Record> redone = {first[0]};
  Result<ReduceBatchPart> again = ReduceBatchPart::Make(spec, 10, redone, &*earlier);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kCorruption);
  EXPECT_NE(again.status().message().find("would count twice"), std::string::npos)
      << again.status().message();
}

TEST(ReduceBatchPartTest, RoundTripsThroughJson) {
  const auto spec = Spec(kPerHost);
  Result<ReduceBatchPart> part = ReduceBatchPart::Make(spec, 40, Items(40), nullptr);
  ASSERT_TRUE(part.ok());
  const std::string text = DumpJson(part->ToJson());
  Result<ReduceBatchPart> back =
      ReduceBatchPart::FromJson(spec, nlohmann::json::parse(text), "p.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(DumpJson(back->ToJson()), text);
  EXPECT_EQ(back->items(), 40u);
  Result<ReduceBatchPart> bad = ReduceBatchPart::FromJson(
      spec, nlohmann::json::parse(R"({"settled": {}, "rows": [[1, "a"]]})"), "p.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace sluice
