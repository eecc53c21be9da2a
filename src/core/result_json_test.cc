#include "src/core/result_json.h"

#include <gtest/gtest.h>

#include <memory>

namespace sluice {
namespace {

TEST(ResultJsonTest, FieldsKeepTheRecordsOrderAndTheirTypes) {
  Record record(1, "u");
  record.Set("zebra", std::int64_t{3});
  record.Set("apple", 0.5);
  record.Set("flag", true);
  record.Set("text", std::string("[1,2]"));  // text stays text, even if it looks like JSON
  record.Set("boxes", JsonText{"[[1,2,3,4],[5,6,7,8]]"});
  record.Set("meta", JsonText{R"({"b":1,"a":2})"});
  record.Set("body", Bytes{1, 2, 3});  // in-flight data: not a result
  record.Set("unset", Value());
  EXPECT_EQ(ResultFieldsJson(record),
            R"({"zebra":3,"apple":0.5,"flag":true,"text":"[1,2]",)"
            R"("boxes":[[1,2,3,4],[5,6,7,8]],"meta":{"b":1,"a":2}})");
}

TEST(ResultJsonTest, JsonThatDoesNotParseIsKeptAsText) {
  EXPECT_EQ(ResultValueJson(JsonText{"[1,2"}), OrderedJson("[1,2"));
  EXPECT_EQ(ResultValueJson(JsonText{"[]"}), OrderedJson::array());
  EXPECT_TRUE(ResultValueJson(Value()).is_null());
  EXPECT_TRUE(ResultValueJson(Bytes{1}).is_null());
}

TEST(ResultJsonTest, FieldsNamedLikeAFixedKeyArePrefixedNextToThem) {
  Record record(1, "u");
  record.Set("status", std::string("mine"));
  record.Set("faces", std::int64_t{2});
  OrderedJson object = {{"id", 1}, {"status", "ok"}};
  AddResultFields(record, object, /*prefix_fixed_keys=*/true);
  EXPECT_EQ(DumpJson(object), R"({"id":1,"status":"ok","field.status":"mine","faces":2})");
  EXPECT_EQ(ResultFieldKey("input"), "field.input");
  EXPECT_EQ(ResultFieldKey("inputs"), "inputs");
  EXPECT_EQ(ResultFieldsJson(Record(2, "v")), "");
}

TEST(ResultJsonTest, InvalidUtf8IsReplacedNotThrown) {
  Record record(1, "u");
  record.Set("text", std::string("caf\xe9"));
  EXPECT_NE(ResultFieldsJson(record).find("caf\xef\xbf\xbd"), std::string::npos);
}

}  // namespace
}  // namespace sluice
