// Outputs written with each batch's commit (DESIGN.md guarantee 2):
//  - at the worker level, with the real SQLite store and the real image stages: the
//    images reach the outputs, and a batch whose outputs cannot be written is not
//    committed while the batches before it stay committed;
//  - at the binary level (`sluice run`): downloaded images (from the project's test
//    server on loopback) in both layouts, and as img2dataset's shards, keys and
//    columns (output.fields img2dataset); metadata and stats per batch, a clear
//    failure when the output directory is unusable, and after kill -9 at random
//    moments, every batch's metadata exactly once.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "src/core/result_json.h"
#include "src/core/worker.h"
#include "src/output/file_batch_output.h"
#include "src/output/staged_files.h"
#include "src/output/tar_shard.h"
#include "src/stages/builtin_stages.h"
#include "src/stages/decode_stage.h"
#include "src/stages/encode_stage.h"
#include "src/stages/image_test_util.h"
#include "src/stages/resize_stage.h"
#include "src/store/sqlite_store.h"
#include "tests/fixtures/fault_server.h"
#include "tests/test_util.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

// --- Worker level --------------------------------------------------------------------

// Stands in for fetch: gives each record a JPEG "body" (its width depends on the id).
class SyntheticBodyStage final : public CpuStage {
 public:
  void ProcessOne(Record& record) override {
    record.Set("body",
               Encode(Gradient(40 + static_cast<int>(record.id() % 5), 30), ".jpg"));
  }
};

std::unique_ptr<Store> OpenStore(const std::string& path) {
  auto store = OpenSqliteStore(path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

// `items` items with a caption column, in batches of `batch_size`.
void Ingest(Store& store, std::size_t items, std::uint32_t batch_size) {
  std::vector<ItemRow> rows;
  for (std::size_t i = 1; i <= items; ++i) {
    rows.push_back({"http://x/" + std::to_string(i),
                    R"({"caption":"picture )" + std::to_string(i) + R"("})"});
  }
  IngestRows(store, rows, batch_size);
}

// body -> decode -> resize to 16 -> fail a fifth -> encode png.
std::vector<NamedStage> ImagePipeline() {
  std::vector<NamedStage> stages;
  stages.push_back({"body", std::make_unique<SyntheticBodyStage>()});
  stages.push_back({"decode", std::make_unique<DecodeStage>(DecodeOptions{})});
  ResizeOptions resize;
  resize.size = 16;
  stages.push_back({"resize", std::make_unique<ResizeStage>(resize)});
  stages.push_back({"flake", std::make_unique<FailStage>(
                                 FailOptions{0.2, FailureReason::kTimeout, 5})});
  EncodeOptions encode;
  encode.format = EncodeFormat::kPng;
  stages.push_back({"encode", std::make_unique<EncodeStage>(encode)});
  return stages;
}

// name -> contents of every member of a shard, read with the output module's reader
// (its unit tests check the shards independently, with libarchive directly).
std::map<std::string, std::string> ReadShard(const fs::path& path) {
  std::map<std::string, std::string> members;
  Status read = ReadTar(path.string(), [&](std::string name, std::string data) {
    members[std::move(name)] = std::move(data);
  });
  EXPECT_TRUE(read.ok()) << read.ToString();
  return members;
}

TEST(WorkerOutputTest, EncodedImagesReachTheShardsOfCommittedBatches) {
  TempDir dir;
  auto store = OpenStore(dir.File("s.db"));
  ASSERT_NE(store, nullptr);
  Ingest(*store, 25, 10);
  OutputConfig config;
  config.layout = OutputLayout::kWebDataset;
  FileBatchOutput output(config, /*batch_size=*/10, dir.File("out"));
  ASSERT_TRUE(output.Prepare().ok());

  WorkerOptions options;
  options.max_batches_in_flight = 2;
  Worker worker(*store, options, ImagePipeline(), &output);
  auto end = worker.Run();
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, WorkerEnd::kFinished);

  std::size_t ok_items = 0;
  for (BatchId batch = 1; batch <= 3; ++batch) {
    const fs::path shard = fs::path(dir.File("out")) / "shards" /
                           (FileBatchOutput::BatchName(batch) + ".tar");
    ASSERT_TRUE(fs::exists(shard)) << shard;
    for (const auto& [name, data] : ReadShard(shard)) {
      if (!name.ends_with(".png")) continue;
      ++ok_items;
      const cv::Mat image =
          cv::imdecode(Bytes(data.begin(), data.end()), cv::IMREAD_COLOR);
      EXPECT_EQ(image.rows, 16) << name;  // resized: the smaller side is 16
    }
  }
  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->batches_done, 3u);
  EXPECT_EQ(ok_items, summary->results_ok);
  EXPECT_GT(summary->results_failed, 0u);
}

// Outputs are fenced by the lease token, like results: worker A's lease expired and
// B took the batch over. Whichever of them stages first, only the current owner's
// files are renamed into place (inside its commit, after the token check); A's
// commit is refused before its renames, and its staged files are removed.
TEST(WorkerOutputTest, AStaleWorkerCannotReplaceTheCurrentOwnersOutputs) {
  TempDir dir;
  ManualStoreClock clock;
  SqliteStoreOptions store_options;
  store_options.clock = &clock;
  auto opened = OpenSqliteStore(dir.File("s.db"), store_options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  Ingest(store, 4, 4);
  OutputConfig config;
  config.layout = OutputLayout::kNone;
  config.metadata = true;
  config.stats = false;
  FileBatchOutput output(config, /*batch_size=*/4, dir.File("out"));
  ASSERT_TRUE(output.Prepare().ok());

  auto lease_a = store.LeaseBatches("main", "a", 1, std::chrono::milliseconds(1000));
  ASSERT_TRUE(lease_a.ok() && lease_a->size() == 1);
  auto records_of = [&](const Lease& lease, const std::string& by) {
    auto items = store.ReadBatchItems(lease);
    EXPECT_TRUE(items.ok());
    std::vector<Record> records = items.ok() ? *items : std::vector<Record>{};
    for (Record& record : records) record.Set("by", by);
    return records;
  };
  std::vector<Record> records_a = records_of((*lease_a)[0], "a");
  const FinishedBatch batch{1, 1, 4, {}, {}};
  auto staged_a = output.StageBatch(batch, records_a);  // A stages before B starts
  ASSERT_TRUE(staged_a.ok()) << staged_a.status().ToString();

  clock.Advance(1001);
  auto lease_b = store.LeaseBatches("main", "b", 1, std::chrono::milliseconds(60000));
  ASSERT_TRUE(lease_b.ok() && lease_b->size() == 1);
  std::vector<Record> records_b = records_of((*lease_b)[0], "b");
  auto staged_b = output.StageBatch(batch, records_b);
  ASSERT_TRUE(staged_b.ok()) << staged_b.status().ToString();

  auto rows_of = [](const std::vector<Record>& records) {
    std::vector<ResultRow> rows;
    for (const Record& record : records) {
      rows.push_back({record.id(), {}, "", ResultFieldsJson(record)});
    }
    return rows;
  };
  bool a_published = false;
  Status commit_a = store.CommitBatch((*lease_a)[0], rows_of(records_a), [&] {
    a_published = true;
    return (*staged_a)->Publish();
  });
  EXPECT_EQ(commit_a.code(), StatusCode::kStaleLease) << commit_a.ToString();
  EXPECT_FALSE(a_published) << "the token is checked before the renames";
  staged_a->reset();  // what a worker does with a refused batch's staged files

  Status commit_b = store.CommitBatch((*lease_b)[0], rows_of(records_b),
                                      [&] { return (*staged_b)->Publish(); });
  ASSERT_TRUE(commit_b.ok()) << commit_b.ToString();

  const fs::path metadata_dir = fs::path(dir.File("out")) / "metadata";
  const std::string metadata =
      ReadFile((metadata_dir / (FileBatchOutput::BatchName(1) + ".jsonl")).string());
  EXPECT_NE(metadata.find(R"("by":"b")"), std::string::npos) << metadata;
  EXPECT_EQ(metadata.find(R"("by":"a")"), std::string::npos) << metadata;
  for (const auto& entry : fs::directory_iterator(metadata_dir)) {
    EXPECT_FALSE(IsLeftoverName(entry.path().filename().string()))
        << "A's staged file was left behind: " << entry.path();
  }
}

TEST(WorkerOutputTest, ABatchWhoseOutputsFailIsNotCommitted) {
  TempDir dir;
  auto store = OpenStore(dir.File("s.db"));
  ASSERT_NE(store, nullptr);
  Ingest(*store, 50, 10);
  OutputConfig config;
  config.layout = OutputLayout::kFiles;
  const fs::path root = dir.File("out");
  FileBatchOutput output(config, /*batch_size=*/10, root);
  ASSERT_TRUE(output.Prepare().ok());
  // A directory where batch 3's metadata file goes: its rename fails, even as root.
  const fs::path in_the_way = root / "metadata" / "00000003.jsonl";
  fs::create_directories(in_the_way / "x");

  WorkerOptions options;
  options.max_batches_in_flight = 1;  // batches in order: 1 and 2 commit, then 3 fails
  Worker worker(*store, options, ImagePipeline(), &output);
  auto end = worker.Run();
  ASSERT_FALSE(end.ok());
  EXPECT_NE(end.status().message().find("batch 3"), std::string::npos)
      << end.status().ToString();
  EXPECT_NE(end.status().message().find(in_the_way.string()), std::string::npos)
      << end.status().ToString();

  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->batches_done, 2u);    // committed before the failure: untouched
  EXPECT_EQ(summary->batches_leased, 0u);  // batch 3 was released, not committed
  EXPECT_EQ(summary->results_ok + summary->results_failed, 20u);
  EXPECT_TRUE(fs::exists(root / "metadata" / "00000002.jsonl"));
  EXPECT_TRUE(fs::exists(root / "images" / "00000002"));

  // Once the obstacle is gone, a new run does the rest.
  fs::remove_all(in_the_way);
  Worker again(*store, options, ImagePipeline(), &output);
  auto second = again.Run();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->batches_done, 5u);
  EXPECT_TRUE(fs::is_regular_file(in_the_way));
}

// --- Binary level --------------------------------------------------------------------

std::vector<std::string> RunArgs(const std::string& pipeline, const std::string& input,
                                 const std::string& workdir) {
  return {"run",       pipeline, "--input",           input,
          "--workdir", workdir,  "--status-interval", "0"};
}

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) {
    lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

std::set<std::string> Names(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// id -> export row, from `sluice export`.
std::map<std::uint64_t, nlohmann::json> ExportById(const std::string& workdir) {
  CommandResult result = RunSluice({"export", "--workdir", workdir});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::map<std::uint64_t, nlohmann::json> rows;
  for (nlohmann::json& row : JsonLines(result.out)) {
    const auto id = row["id"].get<std::uint64_t>();
    rows[id] = std::move(row);
  }
  return rows;
}

// Checks that metadata/ holds exactly one file per batch of `batch_size` over
// `items` items, each line matching the export, and stats/ agrees.
void ExpectMetadataOfEveryBatch(const std::string& workdir, int items, int batch_size) {
  const fs::path root = fs::path(workdir) / "output";
  const int batches = (items + batch_size - 1) / batch_size;
  std::set<std::string> expected_metadata;
  std::set<std::string> expected_stats;
  for (int batch = 1; batch <= batches; ++batch) {
    expected_metadata.insert(FileBatchOutput::BatchName(batch) + ".jsonl");
    expected_stats.insert(FileBatchOutput::BatchName(batch) + ".json");
  }
  EXPECT_EQ(Names(root / "metadata"), expected_metadata);
  EXPECT_EQ(Names(root / "stats"), expected_stats);

  const std::map<std::uint64_t, nlohmann::json> exported = ExportById(workdir);
  std::uint64_t next_id = 1;
  for (int batch = 1; batch <= batches; ++batch) {
    const std::string name = FileBatchOutput::BatchName(batch);
    const std::vector<nlohmann::json> lines =
        JsonLines(ReadFile((root / "metadata" / (name + ".jsonl")).string()));
    const int size = std::min(batch_size, items - (batch - 1) * batch_size);
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(size)) << name;
    std::uint64_t failed = 0;
    for (const nlohmann::json& line : lines) {
      EXPECT_EQ(line["id"], next_id) << name;  // in id order, none twice
      auto row = exported.find(next_id);
      ASSERT_NE(row, exported.end());
      EXPECT_EQ(line, row->second) << "metadata and export differ for " << next_id;
      failed += line["status"] == "failed" ? 1 : 0;
      ++next_id;
    }
    const nlohmann::json stats =
        nlohmann::json::parse(ReadFile((root / "stats" / (name + ".json")).string()));
    EXPECT_EQ(stats["items"], size) << name;
    EXPECT_EQ(stats["failed"], failed) << name;
  }
}

TEST(OutputTest, RunWritesMetadataAndStatsForEveryBatch) {
  TempDir dir;
  const std::string pipeline = dir.Write("pipeline.yaml", R"(
name: output-test
batch_size: 10
stages:
  - {name: nothing, type: noop}
  - {name: flake, type: fail, fraction: 0.3, reason: http_5xx, seed: 1}
)");
  std::string csv = "url,caption\n";
  for (int i = 1; i <= 35; ++i) {
    csv += "http://example.com/" + std::to_string(i) + ".jpg,picture " +
           std::to_string(i) + "\n";
  }
  const std::string input = dir.Write("urls.csv", csv);
  const std::string workdir = dir.File("work");
  CommandResult result = RunSluice(RunArgs(pipeline, input, workdir));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("outputs in"), std::string::npos) << result.err;

  ExpectMetadataOfEveryBatch(workdir, 35, 10);
  const fs::path root = fs::path(workdir) / "output";
  EXPECT_EQ(Names(root), (std::set<std::string>{"metadata", "stats"}));  // layout none
  const std::vector<nlohmann::json> first =
      JsonLines(ReadFile((root / "metadata" / "00000001.jsonl").string()));
  EXPECT_EQ(first[0]["input"]["caption"], "picture 1");
  EXPECT_EQ(first[0]["url"], "http://example.com/1.jpg");

  // A retry redoes only the failed items of each batch; the outputs still hold
  // every item of it (the ok ones carried over), once.
  CommandResult retry = RunSluice({"retry", "--workdir", workdir});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  CommandResult again = RunSluice(RunArgs(pipeline, input, workdir));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  ExpectMetadataOfEveryBatch(workdir, 35, 10);
}

TEST(OutputTest, RunFailsClearlyWhenTheOutputDirectoryIsUnusable) {
  TempDir dir;
  const std::string blocked = dir.Write("blocked", "a file, not a directory");
  const std::string pipeline = dir.Write("pipeline.yaml", R"(
name: output-test
batch_size: 10
stages:
  - {name: nothing, type: noop}
)");
  const std::string input = dir.Write("urls.txt", "http://a/1\nhttp://a/2\n");
  const std::string workdir = dir.File("work");
  std::vector<std::string> args = RunArgs(pipeline, input, workdir);
  args.insert(args.end(), {"--set", "output.dir=" + blocked + "/out"});
  CommandResult result = RunSluice(args);
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find(blocked), std::string::npos) << result.err;

  CommandResult status = RunSluice({"status", "--workdir", workdir, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  nlohmann::json summary = nlohmann::json::parse(status.out);
  EXPECT_EQ(summary["results"]["ok"], 0);
  EXPECT_EQ(summary["batches"]["done"], 0);
}

// The test server, serving `dir`/served/a.jpg (60x40, its bytes `jpeg`) and b.png
// (30x50); any other path is a 404.
Result<std::unique_ptr<FaultServer>> ServeTwoImages(const TempDir& dir,
                                                    const Bytes& jpeg) {
  const std::string served = dir.File("served");
  fs::create_directories(served);
  const Bytes png = Encode(Gradient(30, 50), ".png");
  WriteFile(served + "/a.jpg", std::string(jpeg.begin(), jpeg.end()));
  WriteFile(served + "/b.png", std::string(png.begin(), png.end()));
  return FaultServer::Start({served});
}

// The flagship path through the real binary, on loopback: fetch -> decode ->
// [resize] -> encode -> files or shards.
TEST(OutputTest, RunSavesDownloadedImagesInBothLayouts) {
  TempDir dir;
  const Bytes jpeg = Encode(Gradient(60, 40), ".jpg");
  auto server = ServeTwoImages(dir, jpeg);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string input =
      dir.Write("urls.txt", (*server)->Url("/a.jpg") + "\n" + (*server)->Url("/b.png") +
                                "\n" + (*server)->Url("/missing.jpg") + "\n");

  // files, no resize: the JPEG is saved as downloaded, the PNG re-encoded as JPEG.
  const std::string files_pipeline = dir.Write("files.yaml", R"(
name: images-files
allow_private_networks: true
output: {layout: files}
stages:
  - {name: fetch, type: fetch}
  - {name: decode, type: decode}
  - {name: encode, type: encode, format: jpg}
)");
  const std::string files_work = dir.File("files-work");
  CommandResult files = RunSluice(RunArgs(files_pipeline, input, files_work));
  ASSERT_EQ(files.exit_code, 0) << files.err;
  const fs::path batch = fs::path(files_work) / "output" / "images" / "00000001";
  EXPECT_EQ(Names(batch), (std::set<std::string>{"0000000001.jpg", "0000000001.json",
                                                 "0000000002.jpg", "0000000002.json"}));
  EXPECT_EQ(ReadFile((batch / "0000000001.jpg").string()),
            std::string(jpeg.begin(), jpeg.end()));
  const std::string reencoded = ReadFile((batch / "0000000002.jpg").string());
  const cv::Mat decoded =
      cv::imdecode(Bytes(reencoded.begin(), reencoded.end()), cv::IMREAD_COLOR);
  EXPECT_EQ(decoded.cols, 30);
  EXPECT_EQ(decoded.rows, 50);
  const std::vector<nlohmann::json> lines = JsonLines(
      ReadFile((fs::path(files_work) / "output/metadata/00000001.jsonl").string()));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["ext"], "jpg");
  EXPECT_EQ(lines[0]["encoded_bytes"], jpeg.size());
  EXPECT_EQ(lines[2]["reason"], "http_4xx");

  // webdataset, resized: every image re-encoded at the new size.
  const std::string shards_pipeline = dir.Write("shards.yaml", R"(
name: images-shards
allow_private_networks: true
output: {layout: webdataset}
stages:
  - {name: fetch, type: fetch}
  - {name: decode, type: decode}
  - {name: resize, type: resize, size: 20}
  - {name: encode, type: encode, format: png}
)");
  const std::string shards_work = dir.File("shards-work");
  CommandResult shards = RunSluice(RunArgs(shards_pipeline, input, shards_work));
  ASSERT_EQ(shards.exit_code, 0) << shards.err;
  std::map<std::string, std::string> members =
      ReadShard(fs::path(shards_work) / "output" / "shards" / "00000001.tar");
  ASSERT_EQ(members.size(), 4u);
  const std::string& first = members["0000000001.png"];
  const cv::Mat resized =
      cv::imdecode(Bytes(first.begin(), first.end()), cv::IMREAD_COLOR);
  EXPECT_EQ(resized.rows, 20);  // 60x40 -> smaller side 20
  EXPECT_EQ(resized.cols, 30);
  EXPECT_EQ(nlohmann::json::parse(members["0000000002.json"])["resized_width"], 20);
}

// output.fields img2dataset through the real binary: shards named and keyed as
// img2dataset names them, read back as its readers would (tar members by key,
// the metadata's columns, the stats' counts); a retry merges into the same names.
TEST(OutputTest, RunWritesImg2DatasetShardsKeysAndColumns) {
  TempDir dir;
  const Bytes jpeg = Encode(Gradient(60, 40), ".jpg");
  auto server = ServeTwoImages(dir, jpeg);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string input = dir.Write(
      "urls.csv", "url,caption,license\n" + (*server)->Url("/a.jpg") +
                      ",a photo,cc-by\n" + (*server)->Url("/b.png") + ",a drawing,cc0\n" +
                      (*server)->Url("/missing.jpg") + ",nothing,cc0\n");
  const std::string pipeline = dir.Write("i2d.yaml", R"(
name: images-img2dataset
batch_size: 2
allow_private_networks: true
output: {layout: webdataset, fields: img2dataset}
stages:
  - {name: fetch, type: fetch}
  - {name: sha256, type: sha256}
  - {name: decode, type: decode}
  - {name: resize, type: resize, size: 20}
  - {name: encode, type: encode, format: jpg}
)");
  const std::string workdir = dir.File("work");
  const fs::path root = fs::path(workdir) / "output";
  // Batch size 2: one sample digit, so shard 0 holds keys 000000 and 000001, shard
  // 1 key 000010.
  auto check = [&] {
    EXPECT_EQ(Names(root),
              (std::set<std::string>{"00000.tar", "00000.jsonl", "00000_stats.json",
                                     "00001.tar", "00001.jsonl", "00001_stats.json"}));
    std::map<std::string, std::string> members = ReadShard(root / "00000.tar");
    EXPECT_EQ(members.size(), 6u);
    EXPECT_EQ(members["000000.txt"], "a photo");
    EXPECT_EQ(members["000001.txt"], "a drawing");
    const std::string& photo = members["000000.jpg"];
    const cv::Mat resized =
        cv::imdecode(Bytes(photo.begin(), photo.end()), cv::IMREAD_COLOR);
    EXPECT_EQ(resized.cols, 30);  // 60x40 -> smaller side 20
    EXPECT_EQ(resized.rows, 20);
    const nlohmann::json json = nlohmann::json::parse(members["000000.json"]);
    const nlohmann::ordered_json in_order =
        nlohmann::ordered_json::parse(members["000000.json"]);
    std::vector<std::string> columns;
    for (const auto& [column, value] : in_order.items()) columns.push_back(column);
    EXPECT_EQ(columns,
              (std::vector<std::string>{
                  "url", "caption", "license", "key", "status", "error_message", "width",
                  "height", "original_width", "original_height", "exif", "sha256"}));
    EXPECT_EQ(json["url"], (*server)->Url("/a.jpg"));
    EXPECT_EQ(json["key"], "000000");
    EXPECT_EQ(json["status"], "success");
    EXPECT_TRUE(json["error_message"].is_null());
    EXPECT_EQ(json["width"], 30);
    EXPECT_EQ(json["height"], 20);
    EXPECT_EQ(json["original_width"], 60);
    EXPECT_EQ(json["original_height"], 40);
    EXPECT_TRUE(json["exif"].is_null());
    EXPECT_EQ(json["sha256"].get<std::string>().size(), 64u);
    EXPECT_TRUE(ReadShard(root / "00001.tar").empty());  // its one item failed

    const std::vector<nlohmann::json> first =
        JsonLines(ReadFile((root / "00000.jsonl").string()));
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[0], json);  // the same object as the member
    EXPECT_EQ(first[1]["key"], "000001");
    EXPECT_EQ(first[1]["original_width"], 30);
    const std::vector<nlohmann::json> second =
        JsonLines(ReadFile((root / "00001.jsonl").string()));
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0]["key"], "000010");
    EXPECT_EQ(second[0]["caption"], "nothing");
    EXPECT_EQ(second[0]["status"], "failed_to_download");
    EXPECT_NE(second[0]["error_message"].get<std::string>().find("404"),
              std::string::npos)
        << second[0];
    EXPECT_TRUE(second[0]["width"].is_null());

    const nlohmann::json stats =
        nlohmann::json::parse(ReadFile((root / "00001_stats.json").string()));
    EXPECT_EQ(stats["count"], 1);
    EXPECT_EQ(stats["successes"], 0);
    EXPECT_EQ(stats["failed_to_download"], 1);
    EXPECT_EQ(stats["failed_to_resize"], 0);
    EXPECT_GT(stats["start_time"].get<double>(), 1.6e9);
    EXPECT_GE(stats["end_time"].get<double>(), stats["start_time"].get<double>());
    EXPECT_NEAR(stats["duration"].get<double>(),
                stats["end_time"].get<double>() - stats["start_time"].get<double>(),
                1e-5);
    EXPECT_EQ(stats["status_dict"].size(), 1u);
    const nlohmann::json shard0 =
        nlohmann::json::parse(ReadFile((root / "00000_stats.json").string()));
    EXPECT_EQ(shard0["count"], 2);
    EXPECT_EQ(shard0["successes"], 2);
    EXPECT_EQ(shard0["status_dict"], nlohmann::json({{"success", 2}}));
  };
  CommandResult run = RunSluice(RunArgs(pipeline, input, workdir));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  check();
  // A retry redoes the failed item alone, into the same names.
  CommandResult retry = RunSluice({"retry", "--workdir", workdir});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  CommandResult again = RunSluice(RunArgs(pipeline, input, workdir));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  check();
}

// kill -9 at random moments, then a last run: every batch's metadata file exists
// once, with exactly its items, whatever instant the writers died at.
TEST(OutputTest, KilledRunsLeaveEveryBatchMetadataExactlyOnce) {
  constexpr int kItems = 30000;
  constexpr int kBatchSize = 500;
  TempDir dir;
  const std::string pipeline = dir.Write("pipeline.yaml", R"(
name: output-crash-test
batch_size: 500
lease_seconds: 30
output: {layout: none, metadata: true, stats: true}
stages:
  - {name: wait, type: sleep, ms: 100, max_in_flight: 500}
  - {name: flake, type: fail, fraction: 0.1, reason: timeout, seed: 7}
)");
  std::string text;
  for (int i = 0; i < kItems; ++i) text += "http://h/" + std::to_string(i) + "\n";
  const std::string input = dir.Write("urls.txt", text);
  const std::string workdir = dir.File("work");

  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_ms(300, 1500);
  for (int attempt = 0; attempt < 3; ++attempt) {
    SluiceProcess process(RunArgs(pipeline, input, workdir), dir.path());
    CommandResult result;
    if (process.Wait(std::chrono::milliseconds(delay_ms(random)), &result)) {
      ADD_FAILURE() << "run finished before kill " << attempt << ": " << result.err;
      break;
    }
    process.Signal(SIGKILL);
    // A killed process is gone at once; the deadline only guards against a hang.
    ASSERT_TRUE(process.Wait(std::chrono::seconds(60), &result));
  }
  // What a writer killed mid-batch would leave: the next run removes it.
  const fs::path leftover =
      fs::path(workdir) / "output" / "metadata" / ".00000001.jsonl.tmp-999999999-1";
  fs::create_directories(leftover.parent_path());
  WriteFile(leftover.string(), "{\"id\": 1");

  CommandResult last = RunSluice(RunArgs(pipeline, input, workdir));
  ASSERT_EQ(last.exit_code, 0) << last.err;
  EXPECT_FALSE(fs::exists(leftover));
  ExpectMetadataOfEveryBatch(workdir, kItems, kBatchSize);
}

}  // namespace
}  // namespace sluice::testing
