#include "src/core/batch_assembler.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace sluice {
namespace {

std::vector<ItemId> Ids(const std::vector<Record>& records) {
  std::vector<ItemId> ids;
  for (const Record& record : records) ids.push_back(record.id());
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(BatchAssemblerTest, EmptyBatchIsCompleteAtOnce) {
  BatchAssembler assembler;
  BatchAssembler::Completed done;
  assembler.Expect(3, 0, &done);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].first, 3u);
  EXPECT_TRUE(done[0].second.empty());
  EXPECT_EQ(assembler.open_batches(), 0u);
}

TEST(BatchAssemblerTest, InterleavedOutOfOrderRecordsCompleteEachBatchOnce) {
  BatchAssembler assembler;
  BatchAssembler::Completed done;
  assembler.Expect(1, 3, &done);
  assembler.Expect(2, 2, &done);
  EXPECT_TRUE(done.empty());

  Chunk first;  // what an async stage emits: batches mixed, out of order
  first.Append(2, Record(21, "u"));
  first.Append(1, Record(12, "u"));
  first.Append(1, Record(10, "u"));
  assembler.Add(std::move(first), &done);
  EXPECT_TRUE(done.empty());
  EXPECT_EQ(assembler.open_batches(), 2u);

  Chunk second;
  second.Append(2, Record(20, "u"));
  second.Append(1, Record(11, "u"));
  assembler.Add(std::move(second), &done);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].first, 2u);
  EXPECT_EQ(Ids(done[0].second), (std::vector<ItemId>{20, 21}));
  EXPECT_EQ(done[1].first, 1u);
  EXPECT_EQ(Ids(done[1].second), (std::vector<ItemId>{10, 11, 12}));
  EXPECT_EQ(assembler.open_batches(), 0u);
}

TEST(BatchAssemblerTest, AWholeBatchInOneChunkKeepsItsVector) {
  BatchAssembler assembler;
  BatchAssembler::Completed done;
  assembler.Expect(9, 2, &done);
  Chunk chunk;
  chunk.Append(9, Record(1, "u"));
  chunk.Append(9, Record(2, "u"));
  const Record* data = chunk.records.data();
  assembler.Add(std::move(chunk), &done);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].second.data(), data);
}

}  // namespace
}  // namespace sluice
