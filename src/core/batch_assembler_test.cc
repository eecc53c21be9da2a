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
  ASSERT_TRUE(assembler.Expect(3, 0, &done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].batch, 3u);
  EXPECT_TRUE(done[0].records.empty());
  EXPECT_EQ(assembler.open_batches(), 0u);
}

TEST(BatchAssemblerTest, InterleavedOutOfOrderRecordsCompleteEachBatchOnce) {
  BatchAssembler assembler;
  BatchAssembler::Completed done;
  ASSERT_TRUE(assembler.Expect(1, 3, &done).ok());
  ASSERT_TRUE(assembler.Expect(2, 2, &done).ok());
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
  EXPECT_EQ(done[0].batch, 2u);
  EXPECT_EQ(Ids(done[0].records), (std::vector<ItemId>{20, 21}));
  EXPECT_EQ(done[1].batch, 1u);
  EXPECT_EQ(Ids(done[1].records), (std::vector<ItemId>{10, 11, 12}));
  EXPECT_EQ(assembler.open_batches(), 0u);
}

TEST(BatchAssemblerTest, AWholeBatchInOneChunkKeepsItsVector) {
  BatchAssembler assembler;
  BatchAssembler::Completed done;
  ASSERT_TRUE(assembler.Expect(9, 2, &done).ok());
  Chunk chunk;
  chunk.Append(9, Record(1, "u"));
  chunk.Append(9, Record(2, "u"));
  const Record* data = chunk.records.data();
  assembler.Add(std::move(chunk), &done);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].records.data(), data);
}

// The precondition holds in release builds too: a second Expect() of a batch in
// assembly is an error, and the first assembly is unchanged (it once silently added
// the counts, so that the batch could never complete and the run hung).
TEST(BatchAssemblerTest, ABatchExpectedTwiceIsRefusedAndKeepsItsCount) {
  BatchAssembler assembler;
  BatchAssembler::Completed done;
  ASSERT_TRUE(assembler.Expect(4, 2, &done).ok());
  Status again = assembler.Expect(4, 2, &done);
  EXPECT_EQ(again.code(), StatusCode::kInternal);
  EXPECT_NE(again.message().find("batch 4"), std::string::npos) << again.ToString();
  Chunk chunk;
  chunk.Append(4, Record(1, "u"));
  chunk.Append(4, Record(2, "u"));
  assembler.Add(std::move(chunk), &done);
  ASSERT_EQ(done.size(), 1u) << "complete after its 2 records, not 4";
  EXPECT_EQ(done[0].records.size(), 2u);
}

TEST(BatchAssemblerTest, RecordsNobodyExpectsAreCountedNotAssembled) {
  BatchAssembler assembler;
  BatchAssembler::Completed done;
  ASSERT_TRUE(assembler.Expect(1, 1, &done).ok());
  Chunk chunk;
  chunk.Append(1, Record(1, "u"));
  chunk.Append(1, Record(1, "u"));  // one more than expected
  chunk.Append(2, Record(5, "u"));  // a batch never expected
  assembler.Add(std::move(chunk), &done);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].records.size(), 1u);
  EXPECT_EQ(assembler.unexpected_records(), 2u);
  EXPECT_EQ(assembler.open_batches(), 0u);
}

// A dropped batch (its lease was lost) frees its records as they come and is
// reported, as dropped, only once the last of them arrived.
TEST(BatchAssemblerTest, ADroppedBatchIsReportedDroppedWhenItsLastRecordArrives) {
  BatchAssembler assembler;
  BatchAssembler::Completed done;
  ASSERT_TRUE(assembler.Expect(1, 3, &done).ok());
  ASSERT_TRUE(assembler.Expect(2, 1, &done).ok());
  Chunk first;
  first.Append(1, Record(10, "u"));
  assembler.Add(std::move(first), &done);
  EXPECT_TRUE(assembler.Drop(1, &done));
  EXPECT_FALSE(assembler.Drop(1, &done)) << "dropped already";
  EXPECT_FALSE(assembler.Drop(7, &done)) << "never expected";
  EXPECT_TRUE(done.empty()) << "two of its records are still on their way";

  Chunk second;
  second.Append(1, Record(11, "u"));
  second.Append(2, Record(20, "u"));
  second.Append(1, Record(12, "u"));
  assembler.Add(std::move(second), &done);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].batch, 2u);
  EXPECT_FALSE(done[0].dropped);
  EXPECT_EQ(done[0].records.size(), 1u);
  EXPECT_EQ(done[1].batch, 1u);
  EXPECT_TRUE(done[1].dropped);
  EXPECT_TRUE(done[1].records.empty());
  EXPECT_EQ(assembler.open_batches(), 0u);
  EXPECT_EQ(assembler.unexpected_records(), 0u);
}

}  // namespace
}  // namespace sluice
