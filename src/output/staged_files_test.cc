#include "src/output/staged_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

using testing::ReadWholeFile;

std::size_t Count(const fs::path& dir) {
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    (void)entry;
    ++count;
  }
  return count;
}

TEST(StagedFilesTest, LeftoverNames) {
  EXPECT_TRUE(IsLeftoverName(".00000001.jsonl.tmp-123-4"));
  EXPECT_TRUE(IsLeftoverName(".00000001.old-123-4"));
  EXPECT_FALSE(IsLeftoverName("00000001.jsonl"));
  EXPECT_FALSE(IsLeftoverName("00000001.tmp-1"));  // not hidden: not ours
  EXPECT_FALSE(IsLeftoverName(".hidden"));
}

TEST(StagedFilesTest, NothingIsVisibleBeforePublish) {
  TempDir dir;
  {
    StagedFiles staged;
    ASSERT_TRUE(staged.AddFile(dir.path(), "a.json", "{}").ok());
    EXPECT_FALSE(fs::exists(dir.File("a.json")));
    EXPECT_EQ(Count(dir.path()), 1u);  // the temporary file
    ASSERT_TRUE(staged.Publish().ok());
  }
  EXPECT_EQ(ReadWholeFile(dir.File("a.json")), "{}");
  EXPECT_EQ(Count(dir.path()), 1u);
}

TEST(StagedFilesTest, AbandonedStagingLeavesNothing) {
  TempDir dir;
  {
    StagedFiles staged;
    ASSERT_TRUE(staged.AddFile(dir.path(), "a.json", "{}").ok());
    auto sub = staged.AddDirectory(dir.path(), "batch");
    ASSERT_TRUE(sub.ok());
    ASSERT_TRUE(WritePlainFile(*sub / "x.jpg", "x").ok());
    auto external = staged.AddExternalFile(dir.path(), "b.tar");
    ASSERT_TRUE(external.ok());
    ASSERT_TRUE(WritePlainFile(*external, "tar").ok());
  }  // no Publish: a failed batch
  EXPECT_EQ(Count(dir.path()), 0u);
}

TEST(StagedFilesTest, ADirectoryReplacesTheOldOneWhole) {
  TempDir dir;
  fs::create_directories(dir.File("batch"));
  ASSERT_TRUE(WritePlainFile(dir.File("batch/old.jpg"), "old").ok());
  StagedFiles staged;
  auto sub = staged.AddDirectory(dir.path(), "batch");
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(WritePlainFile(*sub / "new.jpg", "new").ok());
  ASSERT_TRUE(staged.Publish().ok());
  EXPECT_FALSE(fs::exists(dir.File("batch/old.jpg")));
  EXPECT_EQ(ReadWholeFile(dir.File("batch/new.jpg")), "new");
  EXPECT_EQ(Count(dir.path()), 1u);  // the old directory is gone too
}

TEST(StagedFilesTest, RemoveLeftoversKeepsFinalNames) {
  TempDir dir;
  // Pid 999999999 cannot run: over Linux's pid_max.
  dir.Write(".a.json.tmp-999999999-1", "half");
  fs::create_directories(dir.File(".batch.old-999999999-2"));
  dir.Write("a.json", "{}");
  auto removed = RemoveLeftovers(dir.path());
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 2u);
  EXPECT_EQ(Count(dir.path()), 1u);
  auto none = RemoveLeftovers(dir.File("missing"));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
}

}  // namespace
}  // namespace sluice
