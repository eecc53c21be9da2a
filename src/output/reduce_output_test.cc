// ReduceOutput on a real directory: each batch's part staged and published with the
// batch, the result folded from the parts in batch order, redos that replace.
#include "src/output/reduce_output.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "src/core/yaml_options.h"
#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::shared_ptr<const ReduceSpec> PerHost() {
  std::vector<std::string> errors;
  YamlOptions options(YAML::Load(R"yaml(
group_by: host
aggregates:
  ok: {count: "status == 'ok'"}
  faces: {sum: faces}
)yaml"),
                      "stages[2] (per_host)", &errors);
  Result<std::shared_ptr<const ReduceSpec>> spec = ParseReduce("per_host", options, &errors);
  EXPECT_TRUE(spec.ok() && options.Finish().ok());
  return *spec;
}

// Batch `batch` of 4 items; item i has i faces, and fails (timeout) when `fail` says.
std::vector<Record> Batch(BatchId batch, bool fail_odd) {
  std::vector<Record> records;
  for (ItemId i = 0; i < 4; ++i) {
    const ItemId id = batch * 4 + i;
    Record record(id, i % 2 == 0 ? "http://a.example/x" : "http://b.example/y");
    if (fail_odd && i % 2 == 1) {
      record.Fail(FailureReason::kTimeout, "slow");
    } else {
      record.Set("faces", static_cast<std::int64_t>(i));
    }
    records.push_back(std::move(record));
  }
  return records;
}

FinishedBatch Extent(BatchId batch) {
  FinishedBatch finished;
  finished.id = batch;
  finished.first_item = batch * 4;
  finished.item_count = 4;
  return finished;
}

Status Commit(ReduceOutput& output, BatchId batch, const std::vector<Record>& records) {
  Result<std::unique_ptr<StagedBatch>> staged = output.StageBatch(Extent(batch), records);
  if (!staged.ok()) return staged.status();
  return (*staged)->Publish();
}

nlohmann::json ReadJson(const fs::path& path) {
  return nlohmann::json::parse(testing::ReadWholeFile(path));
}

// Counts what it is handed, to show that ReduceOutput passes everything on.
class CountingOutput final : public BatchOutput {
 public:
  class Staged final : public StagedBatch {
   public:
    explicit Staged(int* published) : published_(published) {}
    Status Publish() override {
      ++*published_;
      return Status::Ok();
    }

   private:
    int* published_;
  };
  Result<std::unique_ptr<StagedBatch>> StageBatch(const FinishedBatch&,
                                                  std::span<const Record>) override {
    ++staged;
    return std::unique_ptr<StagedBatch>(std::make_unique<Staged>(&published));
  }
  std::uint64_t Hold(BatchId, std::span<Record>) override { return ++held; }
  Status Spill(BatchId, std::span<Record>) override {
    ++spilled;
    return Status::Ok();
  }
  void Discard(BatchId) override { ++discarded; }

  int staged = 0;
  int published = 0;
  int held = 0;
  int spilled = 0;
  int discarded = 0;
};

TEST(ReduceOutputTest, TheResultIsTheFoldOfEveryCommittedPart) {
  TempDir dir;
  ReduceOutput output({PerHost()}, dir.path(), nullptr);
  ASSERT_TRUE(output.Prepare().ok());
  // Committed out of order; one more staged and never published (a lost lease).
  ASSERT_TRUE(Commit(output, 2, Batch(2, false)).ok());
  ASSERT_TRUE(Commit(output, 0, Batch(0, true)).ok());
  {
    Result<std::unique_ptr<StagedBatch>> lost = output.StageBatch(Extent(1), Batch(1, false));
    ASSERT_TRUE(lost.ok());
  }
  EXPECT_FALSE(fs::exists(dir.File("reduce/per_host/00000001.json")));
  ASSERT_TRUE(fs::exists(dir.File("reduce/per_host/00000002.json")));
  ASSERT_TRUE(output.WriteResults().ok());
  const nlohmann::json result = ReadJson(dir.File("reduce/per_host.json"));
  EXPECT_EQ(result["complete"], true);
  EXPECT_EQ(result["batches"], 2);
  EXPECT_EQ(result["items"], 8);
  ASSERT_EQ(result["groups"].size(), 2u);
  EXPECT_EQ(result["groups"][0]["key"], "a.example");
  EXPECT_EQ(result["groups"][0]["ok"], 4);
  EXPECT_EQ(result["groups"][0]["faces"], 4);  // 0 + 2, twice
  EXPECT_EQ(result["groups"][1]["ok"], 2) << "batch 0's odd items failed";
  EXPECT_EQ(result["groups"][1]["faces"], 4);  // 1 + 3 of batch 2
}

TEST(ReduceOutputTest, RedoingABatchReplacesItsPart) {
  TempDir dir;
  ReduceOutput output({PerHost()}, dir.path(), nullptr);
  ASSERT_TRUE(output.Prepare().ok());
  ASSERT_TRUE(Commit(output, 0, Batch(0, true)).ok());
  ASSERT_TRUE(Commit(output, 0, Batch(0, true)).ok()) << "redone whole";
  // Redone in part: the failed items (1 and 3) succeed this time.
  std::vector<Record> redone;
  for (Record& record : Batch(0, false)) {
    if (record.id() % 2 == 1) redone.push_back(std::move(record));
  }
  ASSERT_TRUE(Commit(output, 0, redone).ok());
  ASSERT_TRUE(output.WriteResults().ok());
  const nlohmann::json result = ReadJson(dir.File("reduce/per_host.json"));
  EXPECT_EQ(result["items"], 4);
  EXPECT_EQ(result["groups"][0]["ok"], 2);
  EXPECT_EQ(result["groups"][1]["ok"], 2);
  EXPECT_EQ(result["groups"][1]["faces"], 4);
}

TEST(ReduceOutputTest, ARedoInPartWithoutItsEarlierPartIsAnErrorNamingTheFile) {
  TempDir dir;
  ReduceOutput output({PerHost()}, dir.path(), nullptr);
  ASSERT_TRUE(output.Prepare().ok());
  std::vector<Record> records = Batch(3, false);
  records.resize(2);
  Result<std::unique_ptr<StagedBatch>> staged = output.StageBatch(Extent(3), records);
  ASSERT_FALSE(staged.ok());
  EXPECT_NE(staged.status().message().find("batch 3 is redone in part"), std::string::npos)
      << staged.status().message();
  EXPECT_NE(staged.status().message().find("reduce/per_host/00000003.json"),
            std::string::npos)
      << staged.status().message();
  // A damaged part is refused the same way, by WriteResults() too.
  std::ofstream(dir.File("reduce/per_host/00000003.json")) << "{\"settled\":";
  EXPECT_FALSE(output.StageBatch(Extent(3), records).ok());
  Status written = output.WriteResults();
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.code(), StatusCode::kCorruption);
  EXPECT_NE(written.message().find("00000003.json: not JSON"), std::string::npos)
      << written.message();
}

TEST(ReduceOutputTest, ViewsShowWhatThisProcessCommittedOnce) {
  TempDir dir;
  ReduceOutput output({PerHost()}, dir.path(), nullptr);
  ASSERT_TRUE(output.Prepare().ok());
  ASSERT_TRUE(Commit(output, 0, Batch(0, false)).ok());
  Result<std::unique_ptr<StagedBatch>> staged = output.StageBatch(Extent(1), Batch(1, false));
  ASSERT_TRUE(staged.ok());
  ASSERT_TRUE((*staged)->Publish().ok());
  ASSERT_TRUE((*staged)->Publish().ok()) << "a commit retried";
  ASSERT_TRUE(output.WriteViews().ok());
  const nlohmann::json view = ReadJson(dir.File("reduce/per_host.json"));
  EXPECT_EQ(view["complete"], false);
  EXPECT_EQ(view["batches"], 2);
  EXPECT_EQ(view["items"], 8);
}

// With emit_seconds, staging a batch once that long has passed since the last view
// writes a new one, of the batches committed before it.
TEST(ReduceOutputTest, AViewIsWrittenWhenItIsDue) {
  TempDir dir;
  std::vector<std::string> errors;
  YamlOptions options(YAML::Load("aggregates: {n: {count: 'true'}}\nemit_seconds: 0.001\n"),
                      "stages[1] (totals)", &errors);
  Result<std::shared_ptr<const ReduceSpec>> spec = ParseReduce("totals", options, &errors);
  ASSERT_TRUE(spec.ok() && options.Finish().ok());
  ReduceOutput output({*spec}, dir.path(), nullptr);
  ASSERT_TRUE(output.Prepare().ok());
  ASSERT_TRUE(Commit(output, 0, Batch(0, false)).ok());
  // Past the millisecond whatever the machine's speed.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(Commit(output, 1, Batch(1, false)).ok());
  const nlohmann::json view = ReadJson(dir.File("reduce/totals.json"));
  EXPECT_EQ(view["complete"], false);
  EXPECT_EQ(view["batches"], 1) << "written while staging batch 1, before its commit";
  EXPECT_EQ(view["items"], 4);
}

TEST(ReduceOutputTest, PassesEverythingToTheOutputItWraps) {
  TempDir dir;
  CountingOutput inner;
  ReduceOutput output({PerHost()}, dir.path(), &inner);
  ASSERT_TRUE(output.Prepare().ok());
  ASSERT_TRUE(Commit(output, 0, Batch(0, false)).ok());
  std::vector<Record> records = Batch(1, false);
  EXPECT_EQ(output.Hold(1, records), 1u);
  EXPECT_TRUE(output.Spill(1, records).ok());
  output.Discard(1);
  EXPECT_EQ(inner.staged, 1);
  EXPECT_EQ(inner.published, 1);
  EXPECT_EQ(inner.held, 1);
  EXPECT_EQ(inner.spilled, 1);
  EXPECT_EQ(inner.discarded, 1);
}

TEST(ReduceOutputTest, WithoutAnOutputToWrapHeldRecordsDropTheirBytes) {
  TempDir dir;
  ReduceOutput output({PerHost()}, dir.path(), nullptr);
  std::vector<Record> records = Batch(0, false);
  records[0].Set("body", Bytes{1, 2, 3});
  EXPECT_EQ(output.Hold(0, records), 0u);
  EXPECT_EQ(records[0].Find("body"), nullptr);
  EXPECT_NE(records[0].Find("faces"), nullptr);
}

}  // namespace
}  // namespace sluice
