#include "src/output/img2dataset_flavour.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace sluice {
namespace {

using std::chrono::milliseconds;

// Batch `id` of `count` items from `first`.
FinishedBatch Batch(BatchId id, ItemId first, std::uint32_t count) {
  return FinishedBatch{id, first, count, {}, {}};
}

TEST(Img2DatasetFlavourTest, SampleDigitsAreTheCeilingOfLog10OfTheBatchSize) {
  const std::map<std::uint32_t, int> expected = {
      {1, 0},     {2, 1},      {9, 1},      {10, 1},     {11, 2},
      {999, 3},   {1000, 3},   {1001, 4},   {9999, 4},   {10000, 4},
      {10001, 5}, {100000, 5}, {100001, 6}, {1000000, 6}};
  for (const auto& [batch_size, digits] : expected) {
    EXPECT_EQ(SampleDigits(batch_size), digits) << batch_size;
  }
}

TEST(Img2DatasetFlavourTest, KeysAreShardTimesPowerOfTenPlusIndex) {
  // Shard 3 (batch 4), index 17, batch_size 10000, 5 shard digits.
  const Img2DatasetFlavour flavour(5, 10000);
  const FinishedBatch batch = Batch(4, 30001, 10000);
  EXPECT_EQ(flavour.ShardName(batch), "00003");
  EXPECT_EQ(flavour.ItemKey(batch, 30018), "000030017");
  EXPECT_EQ(flavour.ItemKey(batch, 30001), "000030000");
  EXPECT_EQ(flavour.ItemKey(batch, 40000), "000039999");
  // The first shard starts at 0.
  EXPECT_EQ(flavour.ItemKey(Batch(1, 1, 10000), 1), "000000000");

  // 1000 per shard: 3 sample digits; 1001: 4.
  EXPECT_EQ(Img2DatasetFlavour(5, 1000).ItemKey(Batch(3, 2001, 1000), 2999), "00002998");
  EXPECT_EQ(Img2DatasetFlavour(5, 1001).ItemKey(Batch(3, 2003, 1001), 2003), "000020000");
  EXPECT_EQ(Img2DatasetFlavour(5, 1001).ItemKey(Batch(3, 2003, 1001), 3003), "000021000");
  // shard_digits sets the shard's width; a shard over it makes a longer name.
  const Img2DatasetFlavour narrow(2, 10);
  EXPECT_EQ(narrow.ShardName(Batch(3, 21, 10)), "02");
  EXPECT_EQ(narrow.ItemKey(Batch(3, 21, 10), 25), "024");
  EXPECT_EQ(narrow.ShardName(Batch(101, 1001, 10)), "100");
  EXPECT_EQ(narrow.ItemKey(Batch(101, 1001, 10), 1001), "1000");
  EXPECT_EQ(Img2DatasetFlavour(12, 10).ShardName(Batch(8, 71, 10)), "000000000007");
}

TEST(Img2DatasetFlavourTest, AKeyGivesBackItsItemOnlyInItsOwnBatch) {
  const Img2DatasetFlavour flavour(5, 10000);
  const FinishedBatch batch = Batch(4, 30001, 500);  // a short batch
  EXPECT_EQ(flavour.ItemOfKey(batch, "000030017"), std::optional<ItemId>(30018));
  EXPECT_EQ(flavour.ItemOfKey(batch, "000030499"), std::optional<ItemId>(30500));
  EXPECT_EQ(flavour.ItemOfKey(batch, "000030500"), std::nullopt);  // past its items
  EXPECT_EQ(flavour.ItemOfKey(batch, "000020017"), std::nullopt);  // shard 2's
  EXPECT_EQ(flavour.ItemOfKey(batch, ""), std::nullopt);
  EXPECT_EQ(flavour.ItemOfKey(batch, "00003001x"), std::nullopt);
  EXPECT_EQ(flavour.ItemOfKey(batch, "-00030017"), std::nullopt);
  for (ItemId item = 30001; item <= 30500; item += 37) {
    EXPECT_EQ(flavour.ItemOfKey(batch, flavour.ItemKey(batch, item)),
              std::optional<ItemId>(item));
  }
}

TEST(Img2DatasetFlavourTest, OutputsAreNamedByShardInTheRoot) {
  const Img2DatasetFlavour flavour(5, 100);
  const FinishedBatch batch = Batch(12, 1101, 100);
  auto name = [&](OutputFile file) {
    const OutputName named = flavour.Name(file, batch);
    return named.dir + "|" + named.name;
  };
  EXPECT_EQ(name(OutputFile::kImages), "|00011");
  EXPECT_EQ(name(OutputFile::kShard), "|00011.tar");
  EXPECT_EQ(name(OutputFile::kMetadata), "|00011.jsonl");
  EXPECT_EQ(name(OutputFile::kStats), "|00011_stats.json");
  EXPECT_EQ(flavour.Dirs(), std::vector<std::string>{""});
}

TEST(Img2DatasetFlavourTest, ABatchWithMoreItemsThanKeysIsRefused) {
  const Img2DatasetFlavour flavour(5, 100);
  EXPECT_TRUE(flavour.CheckBatch(Batch(1, 1, 100)).ok());
  const Status status = flavour.CheckBatch(Batch(2, 101, 101));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("batch 2"), std::string::npos) << status.ToString();
  EXPECT_FALSE(flavour.CheckBatch(Batch(0, 1, 10)).ok());
}

// Every reason, with the record as the stage that failed it leaves it.
TEST(Img2DatasetFlavourTest, EveryReasonMapsToADownloadOrAResizeFailure) {
  constexpr auto kDownload = Img2DatasetStatus::kFailedToDownload;
  constexpr auto kResize = Img2DatasetStatus::kFailedToResize;
  // reason -> {status before the download finished, status after it}
  const std::map<FailureReason, std::pair<Img2DatasetStatus, Img2DatasetStatus>>
      expected = {
          {FailureReason::kInvalidUrl, {kDownload, kDownload}},
          {FailureReason::kForbidden, {kDownload, kDownload}},
          {FailureReason::kDns, {kDownload, kDownload}},
          {FailureReason::kConnect, {kDownload, kDownload}},
          {FailureReason::kTimeout, {kDownload, kDownload}},
          {FailureReason::kHttp4xx, {kDownload, kDownload}},
          {FailureReason::kHttp5xx, {kDownload, kDownload}},
          {FailureReason::kTooManyRedirects, {kDownload, kDownload}},
          {FailureReason::kTooLarge, {kDownload, kResize}},
          {FailureReason::kOptOut, {kDownload, kDownload}},
          {FailureReason::kNotImage, {kDownload, kResize}},
          {FailureReason::kDecode, {kResize, kResize}},
          {FailureReason::kTooSmall, {kResize, kResize}},
          {FailureReason::kAspectRatio, {kResize, kResize}},
          {FailureReason::kHashMismatch, {kDownload, kDownload}},
          {FailureReason::kInjected, {kDownload, kResize}},
          {FailureReason::kStage, {kDownload, kResize}},
          {FailureReason::kInternal, {kDownload, kResize}},
          {FailureReason::kFiltered, {kDownload, kResize}},
      };
  ASSERT_EQ(expected.size(), AllFailureReasons().size()) << "a reason is missing here";
  for (FailureReason reason : AllFailureReasons()) {
    SCOPED_TRACE(std::string(FailureReasonName(reason)));
    ASSERT_TRUE(expected.contains(reason));
    Record fetching(1, "http://example.com/a.jpg");
    fetching.Fail(reason, "why");
    EXPECT_EQ(Img2DatasetStatusOf(fetching), expected.at(reason).first);
    // Past the download: fetch's fields are set; past decode, its "format" too.
    Record downloaded(2, "http://example.com/b.jpg");
    downloaded.Set("http_status", std::int64_t{200});
    downloaded.Fail(reason, "why");
    EXPECT_EQ(Img2DatasetStatusOf(downloaded), expected.at(reason).second);
    Record decoded(3, "http://example.com/c.jpg");
    decoded.Set("format", std::string("jpeg"));
    decoded.Fail(reason, "why");
    EXPECT_EQ(Img2DatasetStatusOf(decoded), expected.at(reason).second);
  }
  EXPECT_EQ(Img2DatasetStatusOf(Record(4, "http://example.com/d.jpg")),
            Img2DatasetStatus::kSuccess);
  EXPECT_EQ(Img2DatasetStatusName(kDownload), "failed_to_download");
  EXPECT_EQ(Img2DatasetStatusName(kResize), "failed_to_resize");
  EXPECT_EQ(Img2DatasetStatusName(Img2DatasetStatus::kSuccess), "success");
}

TEST(Img2DatasetFlavourTest, AnOkItemsJsonHasImg2DatasetsColumnsInOrder) {
  const Img2DatasetFlavour flavour(5, 10000);
  Record record(30018, "http://example.com/a.jpg");
  record.AddColumn("caption", "a cat");
  record.AddColumn("license", "cc-by");
  record.AddColumn("status", "shadowed");  // a fixed column's name: left out
  record.Set("http_status", std::int64_t{200});
  record.Set("sha256", std::string("9f86d081"));
  record.Set("width", std::int64_t{640});
  record.Set("height", std::int64_t{480});
  record.Set("format", std::string("jpeg"));
  record.Set("resized_width", std::int64_t{256});
  record.Set("resized_height", std::int64_t{192});
  record.Set("encoded", Bytes{1, 2, 3});
  record.Set("download_ms", std::int64_t{12});
  EXPECT_EQ(flavour.ItemJson(Batch(4, 30001, 10000), record),
            R"({"url":"http://example.com/a.jpg","caption":"a cat","license":"cc-by",)"
            R"("key":"000030017","status":"success","error_message":null,)"
            R"("width":256,"height":192,"original_width":640,"original_height":480,)"
            R"("exif":null,"sha256":"9f86d081"})");
  // Without a resize, the saved size is the decoded one.
  Record unresized(30001, "http://example.com/b.png");
  unresized.Set("width", std::int64_t{30});
  unresized.Set("height", std::int64_t{50});
  EXPECT_EQ(flavour.ItemJson(Batch(4, 30001, 10000), unresized),
            R"({"url":"http://example.com/b.png","key":"000030000","status":"success",)"
            R"("error_message":null,"width":30,"height":50,"original_width":30,)"
            R"("original_height":50,"exif":null,"sha256":null})");
}

TEST(Img2DatasetFlavourTest, AFailedItemsJsonHasItsErrorAndNoSize) {
  const Img2DatasetFlavour flavour(5, 10000);
  Record record(30019, "http://example.com/gone.jpg");
  record.AddColumn("caption", "a dog");
  record.Fail(FailureReason::kHttp4xx, "HTTP 404 from example.com");
  EXPECT_EQ(flavour.ItemJson(Batch(4, 30001, 10000), record),
            R"({"url":"http://example.com/gone.jpg","caption":"a dog",)"
            R"("key":"000030018","status":"failed_to_download",)"
            R"("error_message":"HTTP 404 from example.com","width":null,)"
            R"("height":null,"original_width":null,"original_height":null,)"
            R"("exif":null,"sha256":null})");
  // Refused after decode: the source size is known; a reason without text.
  Record small(30020, "http://example.com/tiny.jpg");
  small.Set("http_status", std::int64_t{200});
  small.Set("width", std::int64_t{8});
  small.Set("height", std::int64_t{6});
  small.Set("format", std::string("jpeg"));
  small.Fail(FailureReason::kTooSmall);
  EXPECT_EQ(flavour.ItemJson(Batch(4, 30001, 10000), small),
            R"({"url":"http://example.com/tiny.jpg","key":"000030019",)"
            R"("status":"failed_to_resize","error_message":"too_small","width":null,)"
            R"("height":null,"original_width":8,"original_height":6,"exif":null,)"
            R"("sha256":null})");
  EXPECT_EQ(flavour.ItemOfJson(Batch(4, 30001, 10000),
                               flavour.ItemJson(Batch(4, 30001, 10000), small)),
            std::optional<ItemId>(30020));
  EXPECT_EQ(flavour.ItemOfJson(Batch(4, 30001, 10000), R"({"id": 3})"), std::nullopt);
}

TEST(Img2DatasetFlavourTest, TheExifColumnHoldsDecodesTextAsAString) {
  // decode's "exif" is the JSON text img2dataset writes; the column holds it as a
  // string, not as an object, as img2dataset's does.
  const Img2DatasetFlavour flavour(5, 10000);
  Record record(30001, "http://example.com/a.jpg");
  record.Set("width", std::int64_t{4});
  record.Set("height", std::int64_t{3});
  record.Set("exif",
             std::string(R"({"Image Make": "Canon", "Image Model": "caf\u00e9"})"));
  EXPECT_EQ(flavour.ItemJson(Batch(4, 30001, 10000), record),
            R"({"url":"http://example.com/a.jpg","key":"000030000","status":"success",)"
            R"("error_message":null,"width":4,"height":3,"original_width":4,)"
            R"("original_height":3,)"
            R"("exif":"{\"Image Make\": \"Canon\", \"Image Model\": \"caf\\u00e9\"}",)"
            R"("sha256":null})");
  // An item that failed after decode read its EXIF keeps it, as in img2dataset,
  // which reads EXIF before resizing; "{}" (no EXIF) is a string too.
  Record failed(30002, "http://example.com/b.jpg");
  failed.Set("http_status", std::int64_t{200});
  failed.Set("exif", std::string("{}"));
  failed.Fail(FailureReason::kDecode, "decode: failed");
  EXPECT_EQ(flavour.ItemJson(Batch(4, 30001, 10000), failed),
            R"({"url":"http://example.com/b.jpg","key":"000030001",)"
            R"("status":"failed_to_resize","error_message":"decode: failed",)"
            R"("width":null,"height":null,"original_width":null,"original_height":null,)"
            R"("exif":"{}","sha256":null})");
}

TEST(Img2DatasetFlavourTest, StatsCountStatusesTimesAndMessages) {
  const Img2DatasetFlavour flavour(5, 100);
  const auto started =
      std::chrono::system_clock::time_point(milliseconds(1'700'000'000'250));
  const FinishedBatch batch{1, 1, 100, started, started + milliseconds(61'500)};
  // Items 1-6: 2 and 3 time out, 4 is too small once decoded.
  std::vector<Record> records;
  for (ItemId id = 1; id <= 6; ++id) {
    Record record(id, "http://example.com/" + std::to_string(id));
    if (id == 2 || id == 3) record.Fail(FailureReason::kTimeout, "took too long");
    if (id == 4) {
      record.Set("format", std::string("png"));
      record.Fail(FailureReason::kTooSmall, "resize: 4x4 is under min_size 8");
    }
    records.push_back(std::move(record));
  }
  Img2DatasetStats stats;
  for (const Record& record : records) stats.Add(record);
  stats.AddBytesWritten(12345);  // not one of img2dataset's stats
  EXPECT_EQ(stats.ToJson(batch), R"({
    "count": 6,
    "successes": 3,
    "failed_to_download": 2,
    "failed_to_resize": 1,
    "duration": 61.5,
    "start_time": 1700000000.25,
    "end_time": 1700000061.75,
    "status_dict": {
        "success": 3,
        "took too long": 2,
        "resize: 4x4 is under min_size 8": 1
    }
}
)");

  // Counted again from the metadata lines, as after a partial redo: the same.
  Img2DatasetStats recounted;
  for (const Record& record : records) {
    EXPECT_TRUE(recounted.AddMetadata(flavour.ItemJson(batch, record)));
  }
  EXPECT_EQ(recounted.ToJson(batch), stats.ToJson(batch));
  EXPECT_FALSE(recounted.AddMetadata(R"({"status": "lost"})"));
  EXPECT_FALSE(recounted.AddMetadata("not json"));
}

TEST(Img2DatasetFlavourTest, StatusDictKeepsTheMostFrequentMessagesAndSumsTheRest) {
  Img2DatasetStats stats;
  // 250 distinct messages; message i is seen once, except 0-9, seen 5 times.
  for (int i = 0; i < 250; ++i) {
    for (int n = 0; n < (i < 10 ? 5 : 1); ++n) {
      Record record(1, "http://example.com/");
      record.Fail(FailureReason::kConnect, fmt::format("error {:03}", i));
      stats.Add(record);
    }
  }
  const nlohmann::json parsed = nlohmann::json::parse(stats.ToJson(FinishedBatch{}));
  const nlohmann::json& dict = parsed["status_dict"];
  EXPECT_EQ(dict.size(), kStatusDictEntries + 1);
  EXPECT_EQ(dict["error 000"], 5);
  EXPECT_EQ(dict["error 009"], 5);
  EXPECT_EQ(dict["error 099"], 1);  // ties kept in message order
  EXPECT_FALSE(dict.contains("error 100"));
  EXPECT_EQ(dict["other"], 150);
  EXPECT_EQ(parsed["count"], 290);
  EXPECT_EQ(parsed["failed_to_download"], 290);
}

}  // namespace
}  // namespace sluice
