#include "src/output/staged_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "src/core/owner_id.h"
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

// OwnerId() split into host and pid, and the start time.
struct Owner {
  std::string host;
  std::string pid;
  std::string start;
};
Owner ThisProcess() {
  const std::string id = OwnerId();
  const std::size_t last = id.rfind(':');
  const std::size_t middle = id.rfind(':', last - 1);
  return {id.substr(0, middle), id.substr(middle + 1, last - middle - 1),
          id.substr(last + 1)};
}

// The names of the entries directly inside `dir`.
std::set<std::string> Names(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

TEST(StagedFilesTest, LeftoverNames) {
  EXPECT_TRUE(IsLeftoverName(".00000001.jsonl.tmp-123-4"));
  EXPECT_TRUE(IsLeftoverName(".00000001.jsonl.tmp-" + WriterTag(OwnerId(), 4)));
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

// A commit cut off after Publish() started is retried: the second Publish() goes on
// from where the first stopped, and a third does nothing.
TEST(StagedFilesTest, PublishResumesAfterAFailureAndIsThenANoOp) {
  TempDir dir;
  fs::create_directories(dir.File("b.json/in-the-way"));  // a file cannot replace it
  StagedFiles staged;
  ASSERT_TRUE(staged.AddFile(dir.path(), "a.json", "A").ok());
  ASSERT_TRUE(staged.AddFile(dir.path(), "b.json", "B").ok());
  Status first = staged.Publish();
  ASSERT_FALSE(first.ok());
  EXPECT_THAT(first.message(), ::testing::HasSubstr("b.json"));
  EXPECT_EQ(ReadWholeFile(dir.File("a.json")), "A");

  fs::remove_all(dir.File("b.json"));
  ASSERT_TRUE(WritePlainFile(dir.File("a.json"), "changed since").ok());
  Status second = staged.Publish();
  ASSERT_TRUE(second.ok()) << second.ToString();
  EXPECT_EQ(ReadWholeFile(dir.File("b.json")), "B");
  EXPECT_EQ(ReadWholeFile(dir.File("a.json")), "changed since") << "not renamed twice";
  ASSERT_TRUE(staged.Publish().ok());
  EXPECT_EQ(Count(dir.path()), 2u);
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

TEST(StagedFilesTest, WriterTagsAreShortFileNameSafeAndNameTheWriter) {
  const Owner self = ThisProcess();
  const std::string tag = WriterTag(OwnerId(), 7);
  // HHHHHHHHHHHH-PID-START-N
  EXPECT_EQ(tag.size(), 12 + 1 + self.pid.size() + 1 + self.start.size() + 2) << tag;
  EXPECT_NE(tag.find("-" + self.pid + "-" + self.start + "-7"), std::string::npos) << tag;
  // A host name with characters no file name should hold: hashed away.
  const std::string odd = WriterTag("we/ird ho.st:name:42:1234", 1);
  EXPECT_EQ(odd.find_first_not_of("0123456789abcdef-"), std::string::npos) << odd;
  EXPECT_EQ(odd.size(), 12u + std::string("-42-1234-1").size()) << odd;
  EXPECT_NE(odd.substr(0, 12), WriterTag("other:42:1234", 1).substr(0, 12));
  // The staged names carry the tag.
  TempDir dir;
  StagedFiles staged;
  ASSERT_TRUE(staged.AddFile(dir.path(), "a.json", "{}").ok());
  const std::string name = *Names(dir.path()).begin();
  EXPECT_EQ(name.rfind(".a.json.tmp-" + tag.substr(0, 12) + "-" + self.pid + "-" +
                           self.start + "-",
                       0),
            0u)
      << name;
}

TEST(StagedFilesTest, RemoveLeftoversKeepsFinalNames) {
  TempDir dir;
  // Pid 999999999 cannot run: over Linux's pid_max.
  dir.Write(".a.json.tmp-999999999-1", "half");
  fs::create_directories(dir.File(".batch.old-999999999-2"));
  dir.Write("a.json", "{}");
  auto removed = RemoveLeftovers(dir.path());
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->removed, 2u);
  EXPECT_EQ(Count(dir.path()), 1u);
  auto none = RemoveLeftovers(dir.File("missing"));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->removed, 0u);
}

// The writer of a leftover is judged by host, pid and start time: only a process of
// this host that no longer runs has its leftovers removed.
TEST(StagedFilesTest, RemoveLeftoversJudgesTheWriterByHostPidAndStartTime) {
  TempDir dir;
  const Owner self = ThisProcess();
  auto leftover = [&](const std::string& owner, std::uint64_t n) {
    return ".00000001.jsonl.tmp-" + WriterTag(owner, n);
  };
  // This process: live, kept.
  const std::string live = leftover(OwnerId(), 1);
  // This host, this very pid, another start time: an earlier process that had the
  // pid (in a container sluice is pid 1 at every start). Dead: removed, though a
  // process with the pid runs.
  const std::string reused_pid = leftover(self.host + ":" + self.pid + ":1", 2);
  // This host, a pid that cannot run: dead, removed; also a set-aside directory.
  const std::string dead = leftover(self.host + ":999999999:5", 3);
  const std::string dead_aside =
      ".00000001.old-" + WriterTag(self.host + ":999999999:5", 4);
  // Another host, even with a pid that cannot run here: not ours to judge, kept.
  const std::string other_host = leftover("elsewhere.example:999999999:5", 5);
  const std::string other_host_same_pid =
      leftover("elsewhere.example:" + self.pid + ":" + self.start, 6);
  // The earlier format, by pid alone: a live pid is kept, a dead one removed.
  const std::string legacy_live = ".00000002.jsonl.tmp-" + self.pid + "-1";
  const std::string legacy_dead = ".00000002.jsonl.tmp-999999999-1";
  for (const std::string& name : {live, reused_pid, dead, other_host, other_host_same_pid,
                                  legacy_live, legacy_dead}) {
    dir.Write(name, "half");
  }
  fs::create_directories(dir.File(dead_aside));
  dir.Write(dead_aside + "/0000000001.jpg", "x");
  dir.Write("00000001.jsonl", "{}\n");

  auto found = RemoveLeftovers(dir.path());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->removed, 4u);
  EXPECT_EQ(found->kept_live, 2u);
  EXPECT_EQ(found->kept_other_hosts, 2u);
  EXPECT_EQ(Names(dir.path()), (std::set<std::string>{"00000001.jsonl", live, other_host,
                                                      other_host_same_pid, legacy_live}));
}

}  // namespace
}  // namespace sluice
