#include "src/output/file_batch_output.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "src/output/staged_files.h"
#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

using testing::ReadWholeFile;

Bytes BytesOf(std::string_view text) { return Bytes(text.begin(), text.end()); }

// Items first..last of a batch; every third one failed, the others with "image"
// bytes, an extension and a download time; even ids have a caption.
std::vector<Record> MakeRecords(ItemId first, ItemId last) {
  std::vector<Record> records;
  for (ItemId id = first; id <= last; ++id) {
    Record record(id, "http://example.com/" + std::to_string(id));
    if (id % 2 == 0) record.AddColumn("caption", "a cat number " + std::to_string(id));
    record.AddColumn("license", "cc-by");
    if (id % 3 == 0) {
      record.Fail(FailureReason::kTimeout, "took too long");
    } else {
      record.Set("encoded", BytesOf("image bytes of " + std::to_string(id)));
      record.Set("ext", std::string("png"));
      record.Set("width", std::int64_t{64});
      record.Set("download_ms", std::int64_t(10 * id));
    }
    records.push_back(std::move(record));
  }
  return records;
}

OutputConfig Config(OutputLayout layout) {
  OutputConfig config;
  config.layout = layout;
  return config;
}

// The pipeline's batch size in these tests.
constexpr std::uint32_t kBatchSize = 10;

// Batch `id`, items first..first + count - 1, which ran for 2.5 s.
FinishedBatch Batch(BatchId id, ItemId first, std::uint32_t count = kBatchSize) {
  const auto started =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'250));
  return FinishedBatch{id, first, count, started,
                       started + std::chrono::milliseconds(2500)};
}

std::set<std::string> Names(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// name -> contents of every member of a tar file, and their order.
struct Tar {
  std::vector<std::string> order;
  std::map<std::string, std::string> members;
};

Tar ReadTar(const fs::path& path) {
  Tar tar;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 10240), ARCHIVE_OK)
      << archive_error_string(a);
  archive_entry* entry = nullptr;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(entry);
    std::string data(static_cast<std::size_t>(archive_entry_size(entry)), '\0');
    if (!data.empty()) {
      EXPECT_EQ(archive_read_data(a, data.data(), data.size()),
                static_cast<la_ssize_t>(data.size()));
    }
    tar.order.push_back(name);
    tar.members[name] = data;
  }
  archive_read_free(a);
  return tar;
}

// A redo of MakeRecords(first, last) in which the last two items failed.
std::vector<Record> RedoWithTheLastTwoFailed(ItemId first, ItemId last) {
  std::vector<Record> redo = MakeRecords(first, last);
  redo[redo.size() - 2].Fail(FailureReason::kConnect);
  redo.back().Fail(FailureReason::kConnect);
  return redo;
}

// A retry of `ids` alone, ok this time, as JPEGs.
std::vector<Record> Retried(std::initializer_list<ItemId> ids) {
  std::vector<Record> retried;
  for (ItemId id : ids) {
    Record record(id, "http://example.com/" + std::to_string(id));
    record.Set("encoded", BytesOf("retried " + std::to_string(id)));
    record.Set("ext", std::string("jpg"));
    retried.push_back(std::move(record));
  }
  return retried;
}

// name -> contents of a batch's images: the files of directory `path` (layout
// files) or the members of tar `path` (webdataset).
std::map<std::string, std::string> ImagesOf(OutputLayout layout, const fs::path& path) {
  if (layout == OutputLayout::kWebDataset) return ReadTar(path).members;
  std::map<std::string, std::string> images;
  for (const std::string& name : Names(path)) images[name] = ReadWholeFile(path / name);
  return images;
}

TEST(FileBatchOutputTest, NamesArePaddedIds) {
  EXPECT_EQ(FileBatchOutput::BatchName(7), "00000007");
  EXPECT_EQ(FileBatchOutput::BatchName(123456789), "123456789");
  EXPECT_EQ(FileBatchOutput::ItemKey(42), "0000000042");
}

TEST(FileBatchOutputTest, FilesLayoutHoldsImageMetadataAndCaptionPerOkItem) {
  TempDir dir;
  FileBatchOutput output(Config(OutputLayout::kFiles), kBatchSize, dir.path());
  ASSERT_TRUE(output.Prepare().ok());
  const std::vector<Record> records = MakeRecords(11, 16);
  ASSERT_TRUE(output.WriteBatch(Batch(2, 11), records).ok());

  const fs::path batch = fs::path(dir.path()) / "images" / "00000002";
  // Ok items: 11, 13, 14, 16 (12 and 15 failed); captions on even ids.
  EXPECT_EQ(Names(batch),
            (std::set<std::string>{"0000000011.png", "0000000011.json", "0000000013.png",
                                   "0000000013.json", "0000000014.png", "0000000014.json",
                                   "0000000014.txt", "0000000016.png", "0000000016.json",
                                   "0000000016.txt"}));
  EXPECT_EQ(ReadWholeFile(batch / "0000000013.png"), "image bytes of 13");
  EXPECT_EQ(ReadWholeFile(batch / "0000000014.txt"), "a cat number 14");
  nlohmann::json metadata =
      nlohmann::json::parse(ReadWholeFile(batch / "0000000013.json"));
  EXPECT_EQ(metadata["id"], 13);
  EXPECT_EQ(metadata["status"], "ok");
  EXPECT_EQ(metadata["width"], 64);
  EXPECT_EQ(metadata["input"]["license"], "cc-by");
  EXPECT_FALSE(metadata.contains("encoded"));  // bytes are not metadata
  // Nothing temporary stays behind.
  EXPECT_EQ(Names(fs::path(dir.path()) / "images"), std::set<std::string>{"00000002"});
}

TEST(FileBatchOutputTest, WebDatasetShardHoldsMembersSortedById) {
  TempDir dir;
  FileBatchOutput output(Config(OutputLayout::kWebDataset), kBatchSize, dir.path());
  ASSERT_TRUE(output.WriteBatch(Batch(1, 1), MakeRecords(1, 5)).ok());

  Tar tar = ReadTar(fs::path(dir.path()) / "shards" / "00000001.tar");
  EXPECT_EQ(tar.order,
            (std::vector<std::string>{
                "0000000001.png", "0000000001.json", "0000000002.png", "0000000002.json",
                "0000000002.txt", "0000000004.png", "0000000004.json", "0000000004.txt",
                "0000000005.png", "0000000005.json"}));
  EXPECT_EQ(tar.members["0000000004.png"], "image bytes of 4");
  EXPECT_EQ(tar.members["0000000002.txt"], "a cat number 2");
  EXPECT_EQ(nlohmann::json::parse(tar.members["0000000005.json"])["url"],
            "http://example.com/5");
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "images"));
}

TEST(FileBatchOutputTest, MetadataHasOneLinePerItemInIdOrder) {
  TempDir dir;
  FileBatchOutput output(Config(OutputLayout::kNone), kBatchSize, dir.path());
  ASSERT_TRUE(output.WriteBatch(Batch(3, 7, 3), MakeRecords(7, 9)).ok());

  std::istringstream lines(
      ReadWholeFile(fs::path(dir.path()) / "metadata" / "00000003.jsonl"));
  std::vector<nlohmann::json> parsed;
  for (std::string line; std::getline(lines, line);) {
    parsed.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[0]["id"], 7);
  EXPECT_EQ(parsed[0]["status"], "ok");
  EXPECT_EQ(parsed[0]["reason"], "");
  EXPECT_EQ(parsed[0]["ext"], "png");
  EXPECT_EQ(parsed[0]["download_ms"], 70);
  EXPECT_EQ(parsed[0]["input"]["license"], "cc-by");
  EXPECT_EQ(parsed[1]["id"], 8);
  EXPECT_EQ(parsed[1]["input"]["caption"], "a cat number 8");
  EXPECT_EQ(parsed[2]["id"], 9);
  EXPECT_EQ(parsed[2]["status"], "failed");
  EXPECT_EQ(parsed[2]["reason"], "timeout");
  EXPECT_EQ(parsed[2]["error"], "took too long");
  // Layout none writes no images, but metadata and stats.
  EXPECT_EQ(Names(dir.path()), (std::set<std::string>{"metadata", "stats"}));
}

TEST(FileBatchOutputTest, StatsCountOutcomesBytesAndTimings) {
  TempDir dir;
  FileBatchOutput output(Config(OutputLayout::kWebDataset), kBatchSize, dir.path());
  ASSERT_TRUE(output.WriteBatch(Batch(4, 1, 6), MakeRecords(1, 6)).ok());

  nlohmann::json stats = nlohmann::json::parse(
      ReadWholeFile(fs::path(dir.path()) / "stats" / "00000004.json"));
  EXPECT_EQ(stats["batch"], 4);
  EXPECT_EQ(stats["first_id"], 1);
  EXPECT_EQ(stats["last_id"], 6);
  EXPECT_EQ(stats["items"], 6);
  EXPECT_EQ(stats["ok"], 4);
  EXPECT_EQ(stats["failed"], 2);
  EXPECT_EQ(stats["failures"], nlohmann::json({{"timeout", 2}}));
  const std::uintmax_t on_disk =
      fs::file_size(fs::path(dir.path()) / "shards" / "00000004.tar") +
      fs::file_size(fs::path(dir.path()) / "metadata" / "00000004.jsonl");
  EXPECT_EQ(stats["bytes_written"], on_disk);
  const nlohmann::json& download = stats["timings"]["download_ms"];
  EXPECT_EQ(download["count"], 4);  // ids 1, 2, 4, 5
  EXPECT_EQ(download["min"], 10.0);
  EXPECT_EQ(download["max"], 50.0);
  EXPECT_EQ(download["mean"], 30.0);
}

TEST(FileBatchOutputTest, ARedoWithFewerItemsLeavesNoStaleFile) {
  for (OutputLayout layout : {OutputLayout::kFiles, OutputLayout::kWebDataset}) {
    SCOPED_TRACE(std::string(OutputLayoutName(layout)));
    TempDir dir;
    FileBatchOutput output(Config(layout), kBatchSize, dir.path());
    ASSERT_TRUE(output.WriteBatch(Batch(1, 1), MakeRecords(1, 5)).ok());
    // The redo: items 4 and 5 failed this time.
    ASSERT_TRUE(output.WriteBatch(Batch(1, 1), RedoWithTheLastTwoFailed(1, 5)).ok());

    const fs::path root = dir.path();
    if (layout == OutputLayout::kFiles) {
      EXPECT_EQ(Names(root / "images"), std::set<std::string>{"00000001"});
      EXPECT_EQ(
          Names(root / "images" / "00000001"),
          (std::set<std::string>{"0000000001.png", "0000000001.json", "0000000002.png",
                                 "0000000002.json", "0000000002.txt"}));
    } else {
      EXPECT_EQ(Names(root / "shards"), std::set<std::string>{"00000001.tar"});
      EXPECT_EQ(ReadTar(root / "shards" / "00000001.tar").members.size(), 5u);
    }
    EXPECT_EQ(Names(root / "metadata"), std::set<std::string>{"00000001.jsonl"});
    EXPECT_NE(ReadWholeFile(root / "metadata" / "00000001.jsonl").find("connect"),
              std::string::npos);
    EXPECT_EQ(
        nlohmann::json::parse(ReadWholeFile(root / "stats" / "00000001.json"))["ok"], 2);
  }
}

// After `sluice retry`, a batch is redone with only its retried items: the outputs
// of the others carry over.
TEST(FileBatchOutputTest, APartialRedoKeepsTheItemsNotRedone) {
  for (OutputLayout layout : {OutputLayout::kFiles, OutputLayout::kWebDataset}) {
    SCOPED_TRACE(std::string(OutputLayoutName(layout)));
    TempDir dir;
    FileBatchOutput output(Config(layout), kBatchSize, dir.path());
    ASSERT_TRUE(
        output.WriteBatch(Batch(1, 1), MakeRecords(1, 6)).ok());  // 3 and 6 failed
    // The retry: items 3 and 6 only, ok this time.
    ASSERT_TRUE(output.WriteBatch(Batch(1, 1), Retried({3, 6})).ok());

    const fs::path root = dir.path();
    std::map<std::string, std::string> images = ImagesOf(
        layout, layout == OutputLayout::kFiles ? root / "images" / "00000001"
                                               : root / "shards" / "00000001.tar");
    EXPECT_EQ(images["0000000001.png"], "image bytes of 1");  // carried over
    EXPECT_EQ(images["0000000005.png"], "image bytes of 5");
    EXPECT_EQ(images["0000000003.jpg"], "retried 3");  // redone
    EXPECT_EQ(images["0000000006.jpg"], "retried 6");
    EXPECT_EQ(images.count("0000000004.txt"), 1u);
    EXPECT_EQ(images.size(), 6u * 2 + 2);  // image + json each, captions of 2 and 4

    std::istringstream lines(ReadWholeFile(root / "metadata" / "00000001.jsonl"));
    std::vector<std::uint64_t> ids;
    for (std::string line; std::getline(lines, line);) {
      nlohmann::json parsed = nlohmann::json::parse(line);
      ids.push_back(parsed["id"]);
      EXPECT_EQ(parsed["status"], "ok") << line;
    }
    EXPECT_EQ(ids, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
    nlohmann::json stats =
        nlohmann::json::parse(ReadWholeFile(root / "stats" / "00000001.json"));
    EXPECT_EQ(stats["items"], 6);
    EXPECT_EQ(stats["ok"], 6);
    EXPECT_EQ(stats["timings"]["download_ms"]["count"], 4);
  }
}

TEST(FileBatchOutputTest, AnOkItemWithoutImageBytesIsAnError) {
  TempDir dir;
  FileBatchOutput output(Config(OutputLayout::kFiles), kBatchSize, dir.path());
  std::vector<Record> records = MakeRecords(1, 2);
  records[1].Erase("encoded");
  Status status = output.WriteBatch(Batch(1, 1), records);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("item 2"), std::string::npos) << status.ToString();
  EXPECT_NE(status.message().find("\"encoded\""), std::string::npos);
  // Nothing of the batch was published, and nothing temporary stays.
  EXPECT_TRUE(Names(fs::path(dir.path()) / "images").empty());
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "metadata"));
}

TEST(FileBatchOutputTest, TheExtensionComesFromExtFormatOrContentType) {
  TempDir dir;
  OutputConfig config = Config(OutputLayout::kFiles);
  config.image_field = "body";
  FileBatchOutput output(config, kBatchSize, dir.path());
  std::vector<Record> records;
  for (ItemId id = 1; id <= 5; ++id) {
    Record record(id, "http://example.com/" + std::to_string(id));
    record.Set("body", BytesOf("bytes"));
    records.push_back(std::move(record));
  }
  records[0].Set("ext", std::string("webp"));
  records[1].Set("format", std::string("jpeg"));
  records[2].Set("content_type", std::string("image/png"));
  records[3].Set("content_type", std::string("application/x-weird+stuff"));
  ASSERT_TRUE(output.WriteBatch(Batch(1, 1), records).ok());
  std::set<std::string> images;
  for (const std::string& name : Names(fs::path(dir.path()) / "images" / "00000001")) {
    if (!name.ends_with(".json")) images.insert(name);
  }
  EXPECT_EQ(images,
            (std::set<std::string>{"0000000001.webp", "0000000002.jpg", "0000000003.png",
                                   "0000000004.bin", "0000000005.bin"}));

  records[0].Set("ext", std::string("../x"));
  Status status = output.WriteBatch(Batch(1, 1), records);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("'../x'"), std::string::npos) << status.ToString();
}

TEST(FileBatchOutputTest, AnUnwritableRootIsAnErrorNamingThePath) {
  TempDir dir;
  // A file where the output root should be: even root cannot create under it.
  const std::string blocked = dir.Write("blocked", "not a directory");
  FileBatchOutput output(Config(OutputLayout::kWebDataset), kBatchSize, blocked);
  Status status = output.WriteBatch(Batch(1, 1), MakeRecords(1, 3));
  EXPECT_EQ(status.code(), StatusCode::kIoError);
  EXPECT_NE(status.message().find(blocked), std::string::npos) << status.ToString();
}

TEST(FileBatchOutputTest, PrepareRemovesLeftoversOfACrashedWriter) {
  TempDir dir;
  const fs::path root = dir.path();
  // Pid 999999999 cannot run (over Linux's pid_max); this test's own pid does.
  fs::create_directories(root / "images" / ".00000001.tmp-999999999-1");
  dir.Write("images/.00000001.tmp-999999999-1/0000000001.jpg", "half");
  fs::create_directories(root / "metadata");
  dir.Write("metadata/.00000001.jsonl.tmp-999999999-2", "half a line");
  dir.Write("metadata/00000002.jsonl", "{}\n");
  const std::string live = ".00000003.jsonl.tmp-" + std::to_string(getpid()) + "-1";
  dir.Write("metadata/" + live, "being written");
  // A writer on another host that shares the filesystem: kept, and said so.
  const std::string other_host =
      ".00000004.jsonl.tmp-" + WriterTag("elsewhere.example:999999999:5", 1);
  dir.Write("metadata/" + other_host, "maybe being written");
  FileBatchOutput output(Config(OutputLayout::kFiles), kBatchSize, root);
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(output.Prepare().ok());
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(Names(root / "images").empty());
  EXPECT_EQ(Names(root / "metadata"),
            (std::set<std::string>{"00000002.jsonl", live, other_host}));
  EXPECT_EQ(output.leftovers().removed, 2u);
  EXPECT_EQ(output.leftovers().kept_live, 1u);
  EXPECT_EQ(output.leftovers().kept_other_hosts, 1u);
  EXPECT_NE(err.find("kept 1 temporary name(s) of writers on other hosts in " +
                     (root / "metadata").string()),
            std::string::npos)
      << err;
}

// --- output.fields img2dataset ---------------------------------------------------------

OutputConfig Img2DatasetConfig(OutputLayout layout) {
  OutputConfig config = Config(layout);
  config.fields = OutputFields::kImg2Dataset;
  return config;
}

// Batch 2 of kBatchSize items (11..20) is shard 1: keys 00001IIII become "0000100"
// plus the index (one sample digit for 10 items a shard).
TEST(FileBatchOutputTest, Img2DatasetShardHoldsMembersByKeyInTheRoot) {
  TempDir dir;
  FileBatchOutput output(Img2DatasetConfig(OutputLayout::kWebDataset), kBatchSize,
                         dir.path());
  ASSERT_TRUE(output.Prepare().ok());
  ASSERT_TRUE(output.WriteBatch(Batch(2, 11), MakeRecords(11, 16)).ok());

  const fs::path root = dir.path();
  EXPECT_EQ(Names(root),
            (std::set<std::string>{"00001.tar", "00001.jsonl", "00001_stats.json"}));
  Tar tar = ReadTar(root / "00001.tar");
  // Ok items: 11, 13, 14, 16 (indexes 0, 2, 3, 5); captions on even ids.
  EXPECT_EQ(tar.order,
            (std::vector<std::string>{
                "000010.png", "000010.json", "000012.png", "000012.json", "000013.png",
                "000013.json", "000013.txt", "000015.png", "000015.json", "000015.txt"}));
  EXPECT_EQ(tar.members["000012.png"], "image bytes of 13");
  EXPECT_EQ(tar.members["000013.txt"], "a cat number 14");
  const nlohmann::json member = nlohmann::json::parse(tar.members["000012.json"]);
  EXPECT_EQ(member["key"], "000012");
  EXPECT_EQ(member["status"], "success");
  EXPECT_EQ(member["url"], "http://example.com/13");
  EXPECT_EQ(member["license"], "cc-by");

  // One line per item, ok and failed, in key order.
  std::istringstream lines(ReadWholeFile(root / "00001.jsonl"));
  std::vector<std::string> keys;
  std::vector<std::string> statuses;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json parsed = nlohmann::json::parse(line);
    keys.push_back(parsed["key"]);
    statuses.push_back(parsed["status"]);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"000010", "000011", "000012", "000013",
                                            "000014", "000015"}));
  EXPECT_EQ(statuses[1], "failed_to_download");  // 12: a timeout
  EXPECT_EQ(statuses[4], "failed_to_download");  // 15

  const nlohmann::json stats =
      nlohmann::json::parse(ReadWholeFile(root / "00001_stats.json"));
  EXPECT_EQ(stats["count"], 6);
  EXPECT_EQ(stats["successes"], 4);
  EXPECT_EQ(stats["failed_to_download"], 2);
  EXPECT_EQ(stats["failed_to_resize"], 0);
  EXPECT_EQ(stats["duration"], 2.5);
  EXPECT_EQ(stats["start_time"], 1700000000.25);
  EXPECT_EQ(stats["end_time"], 1700000002.75);
  EXPECT_EQ(stats["status_dict"], nlohmann::json({{"success", 4}, {"took too long", 2}}));
}

TEST(FileBatchOutputTest, Img2DatasetFilesLayoutIsADirectoryPerShard) {
  TempDir dir;
  OutputConfig config = Img2DatasetConfig(OutputLayout::kFiles);
  config.shard_digits = 3;
  FileBatchOutput output(config, kBatchSize, dir.path());
  ASSERT_TRUE(output.WriteBatch(Batch(1, 1), MakeRecords(1, 5)).ok());

  const fs::path root = dir.path();
  EXPECT_EQ(Names(root), (std::set<std::string>{"000", "000.jsonl", "000_stats.json"}));
  EXPECT_EQ(Names(root / "000"),
            (std::set<std::string>{"0000.png", "0000.json", "0001.png", "0001.json",
                                   "0001.txt", "0003.png", "0003.json", "0003.txt",
                                   "0004.png", "0004.json"}));
  EXPECT_EQ(ReadWholeFile(root / "000" / "0003.png"), "image bytes of 4");
  EXPECT_EQ(nlohmann::json::parse(ReadWholeFile(root / "000" / "0004.json"))["key"],
            "0004");
}

TEST(FileBatchOutputTest, AnImg2DatasetRedoWithFewerItemsLeavesNoStaleFile) {
  for (OutputLayout layout : {OutputLayout::kFiles, OutputLayout::kWebDataset}) {
    SCOPED_TRACE(std::string(OutputLayoutName(layout)));
    TempDir dir;
    FileBatchOutput output(Img2DatasetConfig(layout), kBatchSize, dir.path());
    ASSERT_TRUE(output.WriteBatch(Batch(1, 1), MakeRecords(1, 5)).ok());
    ASSERT_TRUE(output.WriteBatch(Batch(1, 1), RedoWithTheLastTwoFailed(1, 5)).ok());

    const fs::path root = dir.path();
    if (layout == OutputLayout::kFiles) {
      EXPECT_EQ(Names(root / "00000"),
                (std::set<std::string>{"000000.png", "000000.json", "000001.png",
                                       "000001.json", "000001.txt"}));
    } else {
      EXPECT_EQ(ReadTar(root / "00000.tar").members.size(), 5u);
    }
    EXPECT_EQ(Names(root).size(), 3u);  // nothing temporary left
    const nlohmann::json stats =
        nlohmann::json::parse(ReadWholeFile(root / "00000_stats.json"));
    EXPECT_EQ(stats["successes"], 2);
    EXPECT_EQ(stats["failed_to_download"], 3);
    EXPECT_EQ(stats["status_dict"]["connect"], 2);  // no text: the reason's name
  }
}

TEST(FileBatchOutputTest, AnImg2DatasetPartialRedoKeepsTheItemsNotRedone) {
  for (bool metadata : {true, false}) {
    for (OutputLayout layout : {OutputLayout::kFiles, OutputLayout::kWebDataset}) {
      SCOPED_TRACE(std::string(OutputLayoutName(layout)) +
                   (metadata ? " with metadata" : " without metadata"));
      TempDir dir;
      OutputConfig config = Img2DatasetConfig(layout);
      config.metadata = metadata;
      FileBatchOutput output(config, kBatchSize, dir.path());
      // Batch 3 (items 21..30, shard 2): 21 and 24 failed.
      ASSERT_TRUE(output.WriteBatch(Batch(3, 21), MakeRecords(21, 26)).ok());
      ASSERT_TRUE(output.WriteBatch(Batch(3, 21), Retried({21, 24})).ok());

      const fs::path root = dir.path();
      std::map<std::string, std::string> images = ImagesOf(
          layout, layout == OutputLayout::kFiles ? root / "00002" : root / "00002.tar");
      EXPECT_EQ(images["000021.png"], "image bytes of 22");  // carried over
      EXPECT_EQ(images["000024.png"], "image bytes of 25");
      EXPECT_EQ(images["000020.jpg"], "retried 21");  // redone
      EXPECT_EQ(images["000023.jpg"], "retried 24");
      EXPECT_EQ(images.count("000025.txt"), 1u);  // 26's caption
      EXPECT_EQ(images.size(), 6u * 2 + 2);       // captions of 22 and 26

      const nlohmann::json stats =
          nlohmann::json::parse(ReadWholeFile(root / "00002_stats.json"));
      EXPECT_EQ(stats["count"], 6);
      EXPECT_EQ(stats["successes"], 6);
      EXPECT_EQ(stats["status_dict"], nlohmann::json({{"success", 6}}));
      if (!metadata) continue;
      std::istringstream lines(ReadWholeFile(root / "00002.jsonl"));
      std::vector<std::string> keys;
      for (std::string line; std::getline(lines, line);) {
        const nlohmann::json parsed = nlohmann::json::parse(line);
        keys.push_back(parsed["key"]);
        EXPECT_EQ(parsed["status"], "success") << line;
      }
      EXPECT_EQ(keys, (std::vector<std::string>{"000020", "000021", "000022", "000023",
                                                "000024", "000025"}));
    }
  }
}

TEST(FileBatchOutputTest, AnItemOutsideItsBatchIsAnError) {
  TempDir dir;
  FileBatchOutput output(Img2DatasetConfig(OutputLayout::kWebDataset), kBatchSize,
                         dir.path());
  Status status = output.WriteBatch(Batch(1, 1, 3), MakeRecords(1, 4));
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_NE(status.message().find("item 4"), std::string::npos) << status.ToString();
  EXPECT_TRUE(Names(dir.path()).empty());
}

TEST(FileBatchOutputTest, Img2DatasetPrepareRemovesLeftoversInTheRoot) {
  TempDir dir;
  const fs::path root = dir.path();
  fs::create_directories(root / ".00000.tmp-999999999-1");
  dir.Write(".00000.tmp-999999999-1/000000.jpg", "half");
  dir.Write(".00001.jsonl.tmp-999999999-2", "half a line");
  dir.Write("00002.jsonl", "{}\n");
  FileBatchOutput output(Img2DatasetConfig(OutputLayout::kFiles), kBatchSize, root);
  ASSERT_TRUE(output.Prepare().ok());
  EXPECT_EQ(Names(root), std::set<std::string>{"00002.jsonl"});
  EXPECT_EQ(output.leftovers().removed, 2u);
}

}  // namespace
}  // namespace sluice
