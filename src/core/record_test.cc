#include "sluice/record.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(FailureReasonTest, NamesRoundTrip) {
  for (FailureReason reason : AllFailureReasons()) {
    auto parsed = ParseFailureReason(FailureReasonName(reason));
    ASSERT_TRUE(parsed.has_value()) << FailureReasonName(reason);
    EXPECT_EQ(*parsed, reason);
  }
  EXPECT_FALSE(ParseFailureReason("no_such_reason").has_value());
  EXPECT_FALSE(ParseFailureReason("").has_value());
}

TEST(RecordTest, SetReplacesAndKeepsOrder) {
  Record record(7, "http://example.com/a.jpg");
  record.Set("width", std::int64_t{640});
  record.Set("format", std::string("jpeg"));
  record.Set("width", std::int64_t{320});
  ASSERT_EQ(record.fields().size(), 2u);
  EXPECT_EQ(record.fields()[0].first, "width");
  EXPECT_EQ(std::get<std::int64_t>(*record.Find("width")), 320);
  record.Erase("width");
  EXPECT_EQ(record.Find("width"), nullptr);
}

TEST(RecordTest, FirstFailureWins) {
  Record record(1, "u");
  EXPECT_FALSE(record.failed());
  record.Fail(FailureReason::kTimeout, "took too long");
  record.Fail(FailureReason::kDecode, "later");
  EXPECT_TRUE(record.failed());
  EXPECT_EQ(record.reason(), FailureReason::kTimeout);
  EXPECT_EQ(record.error(), "took too long");
}

TEST(RecordTest, ColumnsAreFoundByName) {
  Record record(1, "u");
  record.AddColumn("caption", "a cat");
  ASSERT_NE(record.FindColumn("caption"), nullptr);
  EXPECT_EQ(*record.FindColumn("caption"), "a cat");
  EXPECT_EQ(record.FindColumn("missing"), nullptr);
}

}  // namespace
}  // namespace sluice
