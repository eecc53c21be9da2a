#include "src/core/record_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
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
  EXPECT_TRUE(registry
                  .RegisterPayloadDecoder(
                      "note",
                      [](std::string_view bytes) -> Result<std::shared_ptr<const Payload>> {
                        if (bytes == "bad") return Corruption("not a note");
                        return std::shared_ptr<const Payload>(
                            std::make_shared<Note>(std::string(bytes)));
                      })
                  .ok());
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
  ok.Set("boxes", JsonText{"[[1,2,3,4]]"});
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

TEST(RecordCodecTest, BigRecordsTravelInSeveralFramesAndComeBackInOrder) {
  // 40 records of 100 kB: about four frames of 1 MiB.
  std::vector<Record> records;
  for (ItemId id = 0; id < 40; ++id) {
    Record record(id, "http://example.com/" + std::to_string(id));
    std::string text(100'000, static_cast<char>('a' + id % 26));
    for (std::size_t i = 0; i < text.size(); i += 7) text[i] = static_cast<char>(i * id);
    record.Set("note", std::shared_ptr<const Payload>(std::make_shared<Note>(text)));
    records.push_back(std::move(record));
  }
  auto encoded = EncodeRecords(records);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  auto decoded = DecodeRecords(*encoded, Decoders());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ((*decoded)[i].id(), records[i].id());
    const auto& sent = std::get<std::shared_ptr<const Payload>>(*records[i].Find("note"));
    const auto& got = std::get<std::shared_ptr<const Payload>>(*(*decoded)[i].Find("note"));
    EXPECT_EQ(dynamic_cast<const Note&>(*got).text(), dynamic_cast<const Note&>(*sent).text());
  }
  // Damage in a later frame is found as well as in the first.
  std::string damaged = *encoded;
  damaged[damaged.size() - 100] = static_cast<char>(damaged[damaged.size() - 100] ^ 0x5a);
  EXPECT_EQ(DecodeRecords(damaged, Decoders()).status().code(), StatusCode::kCorruption);
}

TEST(RecordCodecTest, NoRecordsAreAnEncodingOfNoRecords) {
  auto encoded = EncodeRecords({});
  ASSERT_TRUE(encoded.ok());
  auto decoded = DecodeRecords(*encoded, Decoders());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->empty());
}

// What DecodeRecords gives, read through a RecordStream in pieces of `piece` bytes.
Result<std::vector<Record>> Stream(std::string_view bytes, std::size_t piece,
                                   const StageRegistry& registry) {
  std::size_t at = 0;
  RecordStream stream(
      [&](char* into, std::size_t size) -> Result<std::size_t> {
        const std::size_t n = std::min({size, piece, bytes.size() - at});
        std::memcpy(into, bytes.data() + at, n);
        at += n;
        return n;
      },
      registry);
  std::vector<Record> records;
  for (;;) {
    SLUICE_ASSIGN_OR_RETURN(std::optional<Record> record, stream.Next());
    if (!record.has_value()) return records;
    records.push_back(std::move(*record));
  }
}

TEST(RecordCodecTest, AStreamReadsWhatDecodeRecordsReadsInAnyPieces) {
  std::vector<Record> big;
  for (ItemId id = 0; id < 30; ++id) {
    Record record(id, "u");
    record.Set("note", std::shared_ptr<const Payload>(
                           std::make_shared<Note>(std::string(90'000 + id, 'x'))));
    big.push_back(std::move(record));
  }
  auto first = EncodeRecords(Sample());
  auto second = EncodeRecords(big);
  ASSERT_TRUE(first.ok() && second.ok());
  const std::string bytes = *first + *second;
  const StageRegistry decoders = Decoders();
  for (const std::size_t piece : {std::size_t{1} << 30, std::size_t{4096}, std::size_t{7}}) {
    auto records = Stream(bytes, piece, decoders);
    ASSERT_TRUE(records.ok()) << piece << ": " << records.status().ToString();
    ASSERT_EQ(records->size(), 32u) << piece;
    EXPECT_EQ((*records)[0].id(), 7u);
    EXPECT_EQ((*records)[1].error(), "HTTP 404 from example.com");
    EXPECT_EQ((*records)[31].id(), 29u);
  }
}

TEST(RecordCodecTest, AStreamFindsDamageTruncationAndReadErrors) {
  auto encoded = EncodeRecords(Sample());
  ASSERT_TRUE(encoded.ok());
  const StageRegistry decoders = Decoders();
  EXPECT_EQ(Stream("", 100, decoders).status().code(), StatusCode::kCorruption);
  for (std::size_t size = 1; size < encoded->size(); size += 3) {
    EXPECT_EQ(Stream(encoded->substr(0, size), 5, decoders).status().code(),
              StatusCode::kCorruption)
        << size;
  }
  std::string damaged = *encoded;
  damaged[damaged.size() / 2] = static_cast<char>(damaged[damaged.size() / 2] ^ 0x5a);
  EXPECT_EQ(Stream(damaged, 64, decoders).status().code(), StatusCode::kCorruption);
  RecordStream failing(
      [](char*, std::size_t) -> Result<std::size_t> { return IoError("disk on fire"); },
      decoders);
  auto next = failing.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_THAT(next.status().message(), HasSubstr("disk on fire"));
}

TEST(RecordCodecTest, AFrameClaimingMoreThanItHoldsIsRefusedWithoutTheAllocation) {
  // A zstd frame header saying "2^45 bytes" (the fuzzer's find): refused at once.
  std::string bytes = *EncodeRecords(Sample());
  const std::string claimed =
      std::string("\x28\xb5\x2f\xfd\xe3", 5) + std::string("\x00\x00\x00\x00\x00\x20\x00\x00", 8);
  auto decoded = DecodeRecords(claimed + bytes, Decoders());
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace sluice
