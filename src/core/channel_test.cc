#include "src/core/channel.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

std::vector<Record> MakeRecords(ItemId first, std::size_t count) {
  std::vector<Record> records;
  for (std::size_t i = 0; i < count; ++i) records.emplace_back(first + i, "u");
  return records;
}

TEST(ChunkTest, AppendExtendsTheLastRunAndCountsFailures) {
  Chunk chunk;
  chunk.Append(1, Record(10, "a"));
  chunk.Append(1, Record(11, "b"));
  Record failed(20, "c");
  failed.Fail(FailureReason::kDns);
  chunk.Append(2, std::move(failed));
  chunk.Append(1, Record(12, "d"));
  ASSERT_EQ(chunk.runs.size(), 3u);
  EXPECT_EQ(chunk.runs[0].batch, 1u);
  EXPECT_EQ(chunk.runs[0].count, 2u);
  EXPECT_EQ(chunk.runs[1].batch, 2u);
  EXPECT_EQ(chunk.runs[2].count, 1u);
  EXPECT_EQ(chunk.failed, 1u);
  EXPECT_EQ(chunk.size(), 4u);
}

TEST(SplitIntoChunksTest, SplitsInOrderWithOneRunEach) {
  std::vector<Record> records = MakeRecords(100, 10);
  records[7].Fail(FailureReason::kTimeout);
  const std::vector<Chunk> chunks = SplitIntoChunks(5, std::move(records), 4);
  ASSERT_EQ(chunks.size(), 3u);
  ItemId next = 100;
  std::size_t failed = 0;
  for (const Chunk& chunk : chunks) {
    ASSERT_EQ(chunk.runs.size(), 1u);
    EXPECT_EQ(chunk.runs[0].batch, 5u);
    EXPECT_EQ(chunk.runs[0].count, chunk.size());
    for (const Record& record : chunk.records) EXPECT_EQ(record.id(), next++);
    failed += chunk.failed;
  }
  EXPECT_EQ(chunks[2].size(), 2u);
  EXPECT_EQ(chunks[1].failed, 1u);
  EXPECT_EQ(failed, 1u);
}

TEST(SplitIntoChunksTest, ABatchThatFitsKeepsItsVector) {
  std::vector<Record> records = MakeRecords(0, 3);
  const Record* data = records.data();
  const std::vector<Chunk> chunks = SplitIntoChunks(1, std::move(records), 3);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].records.data(), data);
}

TEST(ChunkChannelTest, ReservedSlotsCountAgainstCapacity) {
  ChunkChannel channel(2);
  EXPECT_TRUE(channel.HasRoom());
  channel.Reserve();
  channel.Push(Chunk{});
  EXPECT_FALSE(channel.HasRoom());  // one queued + one reserved
  EXPECT_EQ(channel.size(), 1u);
  channel.PushReserved(Chunk{});
  EXPECT_FALSE(channel.HasRoom());
  EXPECT_EQ(channel.size(), 2u);
  (void)channel.Pop();
  EXPECT_TRUE(channel.HasRoom());
  channel.Reserve();
  channel.CancelReservation();
  EXPECT_TRUE(channel.HasRoom());
  channel.Clear();
  EXPECT_TRUE(channel.empty());
}

}  // namespace
}  // namespace sluice
