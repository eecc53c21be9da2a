// The runtime running graphs: copy, split/shard (routes), merge and join.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "src/core/runtime.h"
#include "src/core/runtime_test_util.h"

namespace sluice {
namespace {

using namespace runtime_test;  // NOLINT(google-build-using-namespace): test helpers

std::shared_ptr<const Operator> CopyOp(std::size_t branches) {
  auto op = std::make_shared<Operator>();
  op->kind = Operator::Kind::kCopy;
  op->ports = branches;
  return op;
}

std::shared_ptr<const Operator> JoinOp(std::vector<std::vector<std::string>> fields) {
  auto op = std::make_shared<Operator>();
  op->kind = Operator::Kind::kJoin;
  op->join_fields = std::move(fields);
  return op;
}

std::shared_ptr<const Operator> MergeOp() {
  auto op = std::make_shared<Operator>();
  op->kind = Operator::Kind::kMerge;
  return op;
}

// Routes each record to branch id % branches.
std::shared_ptr<const Operator> ModRouteOp(std::size_t branches) {
  auto op = std::make_shared<Operator>();
  op->kind = Operator::Kind::kRoute;
  op->ports = branches;
  op->route = [branches](Record& record) {
    return static_cast<std::size_t>(record.id() % branches);
  };
  return op;
}

// Marks records whose id is a multiple of `modulus` as `reason`.
class ModMarkStage final : public CpuStage {
 public:
  ModMarkStage(ItemId modulus, FailureReason reason) : modulus_(modulus), reason_(reason) {}
  void ProcessOne(Record& record) override {
    if (record.id() % modulus_ == 0) record.Fail(reason_, "marked");
  }

 private:
  const ItemId modulus_;
  const FailureReason reason_;
};

struct Submitted {
  std::map<BatchId, std::size_t> sizes;
  ItemId records = 0;
};

// Submits 30 batches of random sizes (0 and 1 included).
Submitted SubmitRandomBatches(Runtime& runtime, std::size_t max_batch) {
  Submitted submitted;
  std::mt19937 rng(99);
  std::uniform_int_distribution<std::size_t> size_of(0, max_batch);
  for (BatchId batch = 0; batch < 30; ++batch) {
    const std::size_t size = batch == 2 ? 0 : batch == 4 ? 1 : size_of(rng);
    submitted.sizes[batch] = size;
    EXPECT_TRUE(runtime.Submit(batch, MakeBatch(submitted.records, size)).ok());
    submitted.records += size;
  }
  return submitted;
}

// Every batch reported once with exactly its items, once each.
void ExpectEveryItemOnce(Sink& sink, const Submitted& submitted) {
  const auto reports = sink.reports();
  const auto batches = sink.batches();
  ASSERT_EQ(reports.size(), submitted.sizes.size());
  ItemId first = 0;
  for (const auto& [batch, size] : submitted.sizes) {
    EXPECT_EQ(reports.at(batch), 1) << "batch " << batch;
    std::vector<ItemId> ids;
    for (const Record& record : batches.at(batch)) ids.push_back(record.id());
    std::sort(ids.begin(), ids.end());
    std::vector<ItemId> expected(size);
    for (std::size_t i = 0; i < size; ++i) expected[i] = first + i;
    EXPECT_EQ(ids, expected) << "batch " << batch;
    first += size;
  }
}

class CopyJoinTest : public ::testing::TestWithParam<std::size_t> {};

// input -> pre -> copy -> {a (CPU), b (async, out of order)} -> join -> post: each
// item comes out once, with the fields of both branches.
TEST_P(CopyJoinTest, EachItemComesOutOnceWithTheFieldsOfEveryBranch) {
  std::vector<NamedStage> nodes;
  nodes.emplace_back("pre", std::make_unique<TagStage>("pre"));
  nodes.emplace_back("fork", CopyOp(2), std::vector<NodeInput>{{0, 0}});
  nodes.emplace_back("a", std::make_unique<TagStage>("a"), std::vector<NodeInput>{{1, 0}});
  nodes.emplace_back("b", std::make_unique<DelayAsyncStage>("b", 300, 500),
                     std::vector<NodeInput>{{1, 1}});
  nodes.emplace_back("join", JoinOp({{}, {"b"}}), std::vector<NodeInput>{{2, 0}, {3, 0}});
  nodes.emplace_back("post", std::make_unique<TagStage>("post"));
  RuntimeOptions options;
  options.chunk_size = GetParam();
  options.channel_capacity = 4;
  options.max_batches_in_flight = 4;
  options.cpu_threads = 2;
  Sink sink;
  Runtime runtime(options, std::move(nodes), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  const Submitted submitted = SubmitRandomBatches(runtime, GetParam() == 1 ? 100 : 900);
  runtime.Finish();
  ASSERT_TRUE(runtime.error().ok()) << runtime.error().message();

  ExpectEveryItemOnce(sink, submitted);
  for (const auto& [batch, records] : sink.batches()) {
    for (const Record& record : records) {
      EXPECT_FALSE(record.failed()) << record.id() << ": " << record.error();
      for (const char* field : {"pre", "a", "b", "post"}) {
        EXPECT_NE(record.Find(field), nullptr) << "item " << record.id() << " " << field;
      }
    }
  }
  std::map<std::string, std::uint64_t> records_in;
  for (const StageCounters& counters : runtime.Counters()) {
    records_in[counters.name] = counters.records_in;
    EXPECT_EQ(counters.queued_chunks, 0u) << counters.name;
  }
  EXPECT_EQ(records_in["fork"], submitted.records);
  EXPECT_EQ(records_in["join"], 2 * submitted.records) << "a part from each branch";
  EXPECT_EQ(records_in["post"], submitted.records);
}

INSTANTIATE_TEST_SUITE_P(Chunks, CopyJoinTest, ::testing::Values(1, 7, 256),
                         [](const ::testing::TestParamInfo<std::size_t>& test) {
                           return "chunk" + std::to_string(test.param);
                         });

// input -> route (id % 3) -> r0, r1 (async), r2 -> merge: each record takes exactly
// its branch.
TEST(RuntimeGraphTest, ARouteSendsEachRecordDownOneBranchAndMergeBringsThemBack) {
  std::vector<NamedStage> nodes;
  nodes.emplace_back("route", ModRouteOp(3), std::vector<NodeInput>{});
  nodes.emplace_back("r0", std::make_unique<TagStage>("r0"), std::vector<NodeInput>{{0, 0}});
  nodes.emplace_back("r1", std::make_unique<DelayAsyncStage>("r1", 100, 300),
                     std::vector<NodeInput>{{0, 1}});
  nodes.emplace_back("r2", std::make_unique<TagStage>("r2"), std::vector<NodeInput>{{0, 2}});
  nodes.emplace_back("merge", MergeOp(), std::vector<NodeInput>{{1, 0}, {2, 0}, {3, 0}});
  RuntimeOptions options;
  options.chunk_size = 16;
  options.channel_capacity = 2;
  options.cpu_threads = 2;
  Sink sink;
  Runtime runtime(options, std::move(nodes), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  const Submitted submitted = SubmitRandomBatches(runtime, 500);
  runtime.Finish();
  ASSERT_TRUE(runtime.error().ok()) << runtime.error().message();
  ExpectEveryItemOnce(sink, submitted);
  for (const auto& [batch, records] : sink.batches()) {
    for (const Record& record : records) {
      for (ItemId branch = 0; branch < 3; ++branch) {
        const bool tagged = record.Find("r" + std::to_string(branch)) != nullptr;
        EXPECT_EQ(tagged, record.id() % 3 == branch) << "item " << record.id();
      }
    }
  }
}

// A route whose branches all go straight into the merge writes one channel through
// several ports: it needs a slot for each, even in channels of one chunk.
TEST(RuntimeGraphTest, ARouteWhoseBranchesGoStraightIntoTheMergeFlows) {
  std::vector<NamedStage> nodes;
  nodes.emplace_back("route", ModRouteOp(3), std::vector<NodeInput>{});
  nodes.emplace_back("merge", MergeOp(), std::vector<NodeInput>{{0, 0}, {0, 1}, {0, 2}});
  nodes.emplace_back("after", std::make_unique<TagStage>("after"));
  RuntimeOptions options;
  options.chunk_size = 8;
  options.channel_capacity = 1;
  options.cpu_threads = 2;
  Sink sink;
  Runtime runtime(options, std::move(nodes), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  const Submitted submitted = SubmitRandomBatches(runtime, 200);
  runtime.Finish();
  ASSERT_TRUE(runtime.error().ok()) << runtime.error().message();
  ExpectEveryItemOnce(sink, submitted);
  for (const auto& [batch, records] : sink.batches()) {
    for (const Record& record : records) EXPECT_NE(record.Find("after"), nullptr);
  }
}

// A part that failed fails the item; one that was filtered adds nothing; a first part
// that failed is the item's outcome.
TEST(RuntimeGraphTest, AJoinAccountsForPartsThatFailedOrWereFiltered) {
  std::vector<NamedStage> nodes;
  nodes.emplace_back("fork", CopyOp(2), std::vector<NodeInput>{});
  nodes.emplace_back("main_fail",
                     std::make_unique<ModMarkStage>(11, FailureReason::kHttp4xx),
                     std::vector<NodeInput>{{0, 0}});
  nodes.emplace_back("side_filter",
                     std::make_unique<ModMarkStage>(7, FailureReason::kFiltered),
                     std::vector<NodeInput>{{0, 1}});
  nodes.emplace_back("side_fail",
                     std::make_unique<ModMarkStage>(5, FailureReason::kInjected));
  nodes.emplace_back("side_tag", std::make_unique<TagStage>("side"));
  nodes.emplace_back("join", JoinOp({{}, {"side"}}), std::vector<NodeInput>{{1, 0}, {4, 0}});
  Sink sink;
  Runtime runtime(RuntimeOptions{}, std::move(nodes), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(1, 400)).ok());
  runtime.Finish();
  const auto batches = sink.batches();
  ASSERT_EQ(batches.at(1).size(), 400u);
  for (const Record& record : batches.at(1)) {
    const ItemId id = record.id();
    if (id % 11 == 0) {
      EXPECT_EQ(record.reason(), FailureReason::kHttp4xx) << id;
    } else if (id % 7 == 0) {
      EXPECT_FALSE(record.failed()) << id << ": a filtered side part drops nothing";
      EXPECT_EQ(record.Find("side"), nullptr) << id;
    } else if (id % 5 == 0) {
      EXPECT_EQ(record.reason(), FailureReason::kInjected) << id;
    } else {
      EXPECT_FALSE(record.failed()) << id;
      EXPECT_NE(record.Find("side"), nullptr) << id;
    }
  }
}

// A batch dropped while its copies are apart (one branch holds them) still drains:
// its records are joined and freed, and it is never reported.
TEST(RuntimeGraphTest, ADroppedBatchDrainsThroughCopyAndJoin) {
  std::vector<NamedStage> nodes;
  nodes.emplace_back("fork", CopyOp(2), std::vector<NodeInput>{});
  nodes.emplace_back("quick", std::make_unique<TagStage>("quick"),
                     std::vector<NodeInput>{{0, 0}});
  // Holds every record until its deadline, then gives it back as a timeout.
  nodes.emplace_back("hold",
                     std::make_unique<HoldingAsyncStage>(100, 1000, milliseconds(50)),
                     std::vector<NodeInput>{{0, 1}});
  nodes.emplace_back("join", JoinOp({{}, {"x"}}), std::vector<NodeInput>{{1, 0}, {2, 0}});
  Sink sink;
  Runtime runtime(RuntimeOptions{}, std::move(nodes), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 20)).ok());
  ASSERT_TRUE(runtime.DropBatch(1));
  ASSERT_TRUE(WaitUntil([&] { return runtime.batches_in_flight() == 0; }));
  ASSERT_TRUE(runtime.Submit(2, MakeBatch(0, 20)).ok()) << "the same ids, once drained";
  runtime.Finish();
  EXPECT_EQ(sink.reports(), (std::map<BatchId, int>{{2, 1}}));
  const auto batches = sink.batches();
  for (const Record& record : batches.at(2)) {
    EXPECT_EQ(record.reason(), FailureReason::kTimeout) << record.id();
  }
}

// Graphs that could hang or miscount are refused before anything runs.
TEST(RuntimeGraphTest, StartRefusesAGraphThatCouldHangOrMiscount) {
  struct Case {
    const char* what;
    std::vector<NamedStage> nodes;
    const char* message;
  };
  std::vector<Case> cases;
  {
    Case& c = cases.emplace_back();
    c.what = "a join after a route";
    c.nodes.emplace_back("route", ModRouteOp(2), std::vector<NodeInput>{});
    c.nodes.emplace_back("join", JoinOp({{}, {"x"}}),
                         std::vector<NodeInput>{{0, 0}, {0, 1}});
    c.message = "wait forever";
  }
  {
    Case& c = cases.emplace_back();
    c.what = "a branch that goes nowhere";
    c.nodes.emplace_back("fork", CopyOp(2), std::vector<NodeInput>{});
    c.nodes.emplace_back("a", std::make_unique<TagStage>("a"),
                         std::vector<NodeInput>{{0, 0}});
    c.message = "nothing reads branch 'fork.1'";
  }
  {
    Case& c = cases.emplace_back();
    c.what = "a merge after a copy";
    c.nodes.emplace_back("fork", CopyOp(2), std::vector<NodeInput>{});
    c.nodes.emplace_back("merge", MergeOp(), std::vector<NodeInput>{{0, 0}, {0, 1}});
    c.message = "once per branch";
  }
  {
    Case& c = cases.emplace_back();
    c.what = "a node reading one after it";
    c.nodes.emplace_back("a", std::make_unique<TagStage>("a"));
    c.nodes.emplace_back("b", std::make_unique<TagStage>("b"),
                         std::vector<NodeInput>{{2, 0}});
    c.nodes.emplace_back("c", std::make_unique<TagStage>("c"));
    c.message = "does not come before it";
  }
  for (Case& c : cases) {
    Runtime runtime(RuntimeOptions{}, std::move(c.nodes), nullptr);
    const Status started = runtime.Start();
    EXPECT_EQ(started.code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(started.message().find(c.message), std::string::npos)
        << c.what << ": " << started.message();
    EXPECT_FALSE(runtime.Submit(1, MakeBatch(0, 1)).ok()) << c.what;
  }
}

}  // namespace
}  // namespace sluice
