#include "src/input/fingerprint.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <string>

#include "src/input/input_files_test_util.h"

namespace sluice {
namespace {

using ::sluice::testing::RandomBytes;
using ::sluice::testing::TempDir;
using ::sluice::testing::ZstdCompress;

TEST(XxHash64Test, MatchesTheReferenceForTheEmptyInput) {
  EXPECT_EQ(XxHash64(""), 0xEF46DB3751D8E999ULL);
}

// A zstd frame with a checksum ends with the low 32 bits of XXH64 (seed 0) of its
// content, little-endian: libzstd is the reference implementation at hand.
TEST(XxHash64Test, MatchesZstdFrameChecksumsAtEveryLengthClass) {
  for (const std::size_t size :
       {1, 3, 4, 7, 8, 15, 31, 32, 33, 63, 64, 100, 1000, 65537}) {
    const std::string data = RandomBytes(size, size);
    const std::string frame = ZstdCompress(data);
    std::uint32_t checksum = 0;
    for (int i = 0; i < 4; ++i) {
      checksum |= static_cast<std::uint32_t>(static_cast<unsigned char>(
                      frame[frame.size() - 4 + static_cast<std::size_t>(i)]))
                  << (8 * i);
    }
    EXPECT_EQ(static_cast<std::uint32_t>(XxHash64(data)), checksum) << "size " << size;
  }
}

InputFingerprint Fingerprint(const std::string& path) {
  auto file = FileSource::Open(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  auto fingerprint = FingerprintFile(**file, path);
  EXPECT_TRUE(fingerprint.ok()) << fingerprint.status().ToString();
  return *fingerprint;
}

TEST(FingerprintTest, SameContentUnderAnotherNameIsTheSameInput) {
  TempDir dir;
  const std::string content = RandomBytes(300000, 1);
  const InputFingerprint a = Fingerprint(dir.Write("a.txt", content));
  const InputFingerprint b = Fingerprint(dir.Write("b.txt", content));
  EXPECT_EQ(a.size, 300000u);
  EXPECT_EQ(a.digest.size(), 16u);
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(b.path, dir.path() + "/b.txt");
}

TEST(FingerprintTest, AnyChangedByteMakesANewInput) {
  TempDir dir;
  const std::string content = RandomBytes(300000, 2);
  const std::string original = Fingerprint(dir.Write("f", content)).digest;
  std::string head = content;
  head[10] ^= 1;
  EXPECT_NE(Fingerprint(dir.Write("f", head)).digest, original);
  std::string tail = content;
  tail[content.size() - 10] ^= 1;
  EXPECT_NE(Fingerprint(dir.Write("f", tail)).digest, original);
  EXPECT_NE(Fingerprint(dir.Write("f", content + "x")).digest, original);
  // Equal size, a difference deep inside (past several read blocks): a new input.
  const std::string large = RandomBytes(3 << 20, 3);
  const std::string large_original = Fingerprint(dir.Write("g", large)).digest;
  std::string middle = large;
  middle[(3 << 20) / 2 + 7] ^= 1;
  EXPECT_NE(Fingerprint(dir.Write("g", middle)).digest, large_original);
  EXPECT_NE(Fingerprint(dir.Write("f", "")).digest,
            Fingerprint(dir.Write("g", "a")).digest);
}

}  // namespace
}  // namespace sluice
