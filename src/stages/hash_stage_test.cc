#include "src/stages/hash_stage.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "src/stages/map_stage_options_test_util.h"

namespace sluice {
namespace {

constexpr char kAbcSha256[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

Record WithBody(const std::string& text) {
  Record record(1, "http://example.com/a");
  record.Set("body", Bytes(text.begin(), text.end()));
  return record;
}

TEST(HashStageTest, WritesTheHexDigest) {
  HashStage stage(HashOptions{});
  Record record = WithBody("abc");
  stage.ProcessOne(record);
  ASSERT_FALSE(record.failed()) << record.error();
  EXPECT_EQ(std::get<std::string>(*record.Find("sha256")), kAbcSha256);
  EXPECT_NE(record.Find("body"), nullptr);  // the bytes stay for the next stages
}

TEST(HashStageTest, ChecksTheExpectedColumn) {
  HashStage stage(HashOptions{"expected"});
  Record good = WithBody("abc");
  std::string upper = kAbcSha256;
  for (char& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  good.AddColumn("expected", upper);
  stage.ProcessOne(good);
  EXPECT_FALSE(good.failed()) << good.error();

  Record bad = WithBody("abd");
  bad.AddColumn("expected", kAbcSha256);
  stage.ProcessOne(bad);
  EXPECT_EQ(bad.reason(), FailureReason::kHashMismatch);
  EXPECT_NE(bad.error().find("column expected"), std::string::npos) << bad.error();

  Record unchecked = WithBody("abd");  // no expected digest: nothing to compare
  stage.ProcessOne(unchecked);
  EXPECT_FALSE(unchecked.failed());
}

TEST(HashStageTest, NoBodyIsAStageError) {
  HashStage stage(HashOptions{});
  Record record(1, "http://example.com/a");
  stage.ProcessOne(record);
  EXPECT_EQ(record.reason(), FailureReason::kStage);
}

TEST(HashStageTest, Registration) {
  StageRegistry registry;
  ASSERT_TRUE(RegisterHashStage(registry).ok());
  const StageFactory* factory = registry.Find("sha256");
  ASSERT_NE(factory, nullptr);
  testing::MapStageOptions options(std::map<std::string, std::string>{{"colum", "x"}});
  auto stage = (*factory)(options);
  ASSERT_TRUE(stage.ok());
  EXPECT_FALSE(options.Finish().ok());  // the typo is reported
}

}  // namespace
}  // namespace sluice
