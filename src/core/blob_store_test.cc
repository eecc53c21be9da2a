#include "src/core/blob_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "tests/support/temp_dir.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

TEST(BlobStoreTest, PutGetListRemove) {
  testing::TempDir dir;
  auto blobs = OpenDirectoryBlobStore(dir.File("blobs"));
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  BlobStore& store = **blobs;
  ASSERT_TRUE(store.Put(PayloadName("download", 2, 5), "two").ok());
  ASSERT_TRUE(store.Put(PayloadName("download", 2, 6), "two again").ok());
  ASSERT_TRUE(store.Put(PayloadName("download", 12, 1), "twelve").ok());
  ASSERT_TRUE(store.Put(PayloadName("other", 2, 5), "elsewhere").ok());
  EXPECT_EQ(store.Get(PayloadName("download", 2, 6)).value(), "two again");
  EXPECT_EQ(store.Get(PayloadName("download", 3, 1)).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(
      store.List(PayloadPrefix("download", 2)).value(),
      (std::vector<std::string>{"download/0000000002.t5", "download/0000000002.t6"}));
  EXPECT_EQ(store.List("download/").value().size(), 3u);
  EXPECT_TRUE(store.List("none/").value().empty());
  ASSERT_TRUE(store.Remove(PayloadName("download", 2, 5)).ok());
  ASSERT_TRUE(store.Remove(PayloadName("download", 2, 5)).ok()) << "absent is fine";
  EXPECT_EQ(store.List(PayloadPrefix("download", 2)).value().size(), 1u);
  // Nothing but the blobs themselves: no temporary file is left.
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir.File("blobs"))) {
    files += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 3u);
}

TEST(BlobStoreTest, AWriterShowsNothingUntilItCommitsAndLeavesNothingIfDropped) {
  testing::TempDir dir;
  auto blobs = OpenDirectoryBlobStore(dir.File("blobs"));
  ASSERT_TRUE(blobs.ok());
  {
    auto writer = (*blobs)->StartPut("g/0000000001.t1");
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ASSERT_TRUE((*writer)->Append("first ").ok());
    ASSERT_TRUE((*writer)->Append("second").ok());
    EXPECT_TRUE((*blobs)->List("g/").value().empty());
    ASSERT_TRUE((*writer)->Commit().ok());
    EXPECT_EQ((*writer)->Append("late").code(), StatusCode::kInternal);
  }
  EXPECT_EQ((*blobs)->Get("g/0000000001.t1").value(), "first second");
  {
    auto dropped = (*blobs)->StartPut("g/0000000002.t1");
    ASSERT_TRUE(dropped.ok());
    ASSERT_TRUE((*dropped)->Append("never committed").ok());
  }
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir.File("blobs"))) {
    files += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 1u) << "the dropped writer's file is gone";
}

// A process that died mid-blob leaves its temporary file; once old enough it is
// removed, a fresh one (a writer at work) is not.
TEST(BlobStoreTest, AbandonedTemporariesAreRemovedWhenOld) {
  testing::TempDir dir;
  auto blobs = OpenDirectoryBlobStore(dir.File("blobs"));
  ASSERT_TRUE(blobs.ok());
  auto working = (*blobs)->StartPut("g/0000000003.t2");
  ASSERT_TRUE(working.ok());
  ASSERT_TRUE((*working)->Append("in progress").ok());
  fs::create_directories(dir.File("blobs/g"));
  const std::string dead =
      dir.Write("blobs/g/.0000000004.t1.tmp-99999-0", "left by a dead process");
  fs::last_write_time(dead, fs::file_time_type::clock::now() - std::chrono::hours(2));
  EXPECT_EQ((*blobs)->RemoveAbandoned("g/", std::chrono::hours(1)).value(), 1u);
  EXPECT_FALSE(fs::exists(dead));
  ASSERT_TRUE((*working)->Commit().ok());
  EXPECT_EQ((*blobs)->Get("g/0000000003.t2").value(), "in progress");
  EXPECT_EQ((*blobs)->RemoveAbandoned("none/", std::chrono::hours(1)).value(), 0u);
}

TEST(BlobStoreTest, NamesThatCouldLeaveTheDirectoryAreRefused) {
  testing::TempDir dir;
  auto blobs = OpenDirectoryBlobStore(dir.File("blobs"));
  ASSERT_TRUE(blobs.ok());
  for (const char* name :
       {"", "/etc/passwd", "../x", "a/../../x", "a//b", ".hidden", "a/"}) {
    EXPECT_EQ((*blobs)->Put(name, "x").code(), StatusCode::kInvalidArgument) << name;
    EXPECT_EQ((*blobs)->Get(name).status().code(), StatusCode::kInvalidArgument) << name;
  }
  EXPECT_FALSE(fs::exists(dir.File("x")));
}

TEST(BlobStoreTest, PayloadNamesParseBack) {
  auto key = ParsePayloadName(PayloadName("detect-1", 1234567, 42));
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->group, "detect-1");
  EXPECT_EQ(key->batch, 1234567u);
  EXPECT_EQ(key->token, 42u);
  for (const char* other : {"download", "download/", "download/12", "download/12.t",
                            "download/x.t3", "download/12.t3x", "/12.t3"}) {
    EXPECT_FALSE(ParsePayloadName(other).has_value()) << other;
  }
}

TEST(BlobStoreTest, ConcurrentWritersOfOneDirectory) {
  testing::TempDir dir;
  auto blobs = OpenDirectoryBlobStore(dir.File("blobs"));
  ASSERT_TRUE(blobs.ok());
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(
            (*blobs)->Put(PayloadName("g", i, w + 1), std::string(100, 'a' + w)).ok());
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ((*blobs)->List("g/").value().size(), 200u);
  EXPECT_EQ((*blobs)->Get(PayloadName("g", 7, 3)).value(), std::string(100, 'c'));
}

}  // namespace
}  // namespace sluice
