#include "src/core/record_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace sluice {
namespace {

using ::testing::HasSubstr;

// A payload that travels: its text, behind the codec "note".
class Note final : public Payload {
 public:
  explicit Note(std::string text) : text_(std::move(text)) {}
  std::string Describe() const override { return "note " + text_; }
  std::string_view codec() const override { return "note"; }
  void Encode(std::string& out) const override { out += text_; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// One that cannot leave the process.
class Handle final : public Payload {
 public:
  std::string Describe() const override { return "a handle"; }
};

StageRegistry Decoders() {
  StageRegistry registry;
  registry.RegisterPayloadDecoder(
      "note", [](std::string_view bytes) -> Result<std::shared_ptr<const Payload>> {
        if (bytes == "bad") return Corruption("not a note");
        return std::shared_ptr<const Payload>(std::make_shared<Note>(std::string(bytes)));
      });
  return registry;
}

std::vector<Record> Sample() {
  std::vector<Record> records;
  Record ok(7, "http://example.com/a.jpg");
  ok.AddColumn("caption", "a cat\ton a mat");
  ok.Set("flag", true);
  ok.Set("count", std::int64_t{-42});
  ok.Set("big", std::numeric_limits<std::int64_t>::max());
  ok.Set("ratio", 0.1 + 0.2);
  ok.Set("text", std::string("caf\xc3\xa9\0nul", 9));
  ok.Set("body", Bytes{0, 1, 2, 255});
  ok.Set("note", std::shared_ptr<const Payload>(std::make_shared<Note>("hello")));
  ok.Set("unset", Value());
  records.push_back(std::move(ok));
  Record failed(8, "http://example.com/b.jpg");
  failed.Set("http_status", std::int64_t{404});
  failed.Fail(FailureReason::kHttp4xx, "HTTP 404 from example.com");
  records.push_back(std::move(failed));
  return records;
}

TEST(RecordCodecTest, EveryValueTypeFailureAndColumnRoundTrips) {
  const std::vector<Record> records = Sample();
  auto encoded = EncodeRecords(records);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  auto decoded = DecodeRecords(*encoded, Decoders());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), 2u);
  const Record& ok = (*decoded)[0];
  EXPECT_EQ(ok.id(), 7u);
  EXPECT_EQ(ok.url(), "http://example.com/a.jpg");
  EXPECT_EQ(ok.columns(), records[0].columns());
  ASSERT_EQ(ok.fields().size(), records[0].fields().size());
  for (std::size_t i = 0; i < ok.fields().size(); ++i) {
    EXPECT_EQ(ok.fields()[i].first, records[0].fields()[i].first);
    if (i != 6) {  // the payload: compared below, by its text
      EXPECT_EQ(ok.fields()[i].second, records[0].fields()[i].second) << i;
    }
  }
  const auto* note = std::get_if<std::shared_ptr<const Payload>>(ok.Find("note"));
  ASSERT_NE(note, nullptr);
  EXPECT_EQ(dynamic_cast<const Note&>(**note).text(), "hello");
  const Record& failed = (*decoded)[1];
  EXPECT_EQ(failed.reason(), FailureReason::kHttp4xx);
  EXPECT_EQ(failed.error(), "HTTP 404 from example.com");
  EXPECT_EQ(std::get<std::int64_t>(*failed.Find("http_status")), 404);
}

TEST(RecordCodecTest, ConcatenatedEncodingsDecodeInTurn) {
  std::vector<Record> all = Sample();
  auto first = EncodeRecords(std::span<const Record>(all).subspan(1));
  auto second = EncodeRecords(std::span<const Record>(all).first(1));
  auto empty = EncodeRecords({});
  ASSERT_TRUE(first.ok() && second.ok() && empty.ok());
  auto decoded = DecodeRecords(*first + *empty + *second, Decoders());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_EQ((*decoded)[0].id(), 8u);
  EXPECT_EQ((*decoded)[1].id(), 7u);
}

TEST(RecordCodecTest, APayloadThatCannotTravelIsRefusedNamingItemAndField) {
  Record record(3, "u");
  record.Set("handle", std::shared_ptr<const Payload>(std::make_shared<Handle>()));
  auto encoded = EncodeRecords(std::vector<Record>{record});
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(encoded.status().message(),
              HasSubstr("item 3: field handle holds a handle"));
}

TEST(RecordCodecTest, DamageIsCorruptionNeverACrash) {
  auto encoded = EncodeRecords(Sample());
  ASSERT_TRUE(encoded.ok());
  const StageRegistry decoders = Decoders();
  EXPECT_EQ(DecodeRecords("", decoders).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeRecords("not zstd at all", decoders).status().code(),
            StatusCode::kCorruption);
  // Every truncation is found. A flipped byte anywhere is found too (the frame's
  // content checksum), except in the few frame header bits zstd does not need, where
  // the records come back whole.
  for (std::size_t size = 1; size < encoded->size(); ++size) {
    EXPECT_FALSE(DecodeRecords(encoded->substr(0, size), decoders).ok()) << size;
  }
  std::size_t found = 0;
  for (std::size_t at = 0; at < encoded->size(); ++at) {
    std::string damaged = *encoded;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x5a);
    auto decoded = DecodeRecords(damaged, decoders);
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption) << at;
      ++found;
    } else {
      ASSERT_EQ(decoded->size(), 2u) << at;
      EXPECT_EQ((*decoded)[1].error(), "HTTP 404 from example.com") << at;
    }
  }
  EXPECT_GE(found, encoded->size() - 4);
  // A codec this registry does not know.
  auto unknown = DecodeRecords(*encoded, StageRegistry());
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown type 'note'"));
}

}  // namespace
}  // namespace sluice
