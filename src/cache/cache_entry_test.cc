#include "src/cache/cache_entry.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

TEST(CacheEntryTest, RoundTripsAndRefusesDamage) {
  CachedResponse response;
  response.http_status = 200;
  response.content_type = "image/webp";
  response.final_url = "https://cdn.example/x.webp";
  response.body = {0, 1, 2, 255};
  const std::string entry = EncodeCacheEntry("http://a/x", response);

  Result<CachedResponse> back = DecodeCacheEntry("http://a/x", entry);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->http_status, 200);
  EXPECT_EQ(back->content_type, "image/webp");
  EXPECT_EQ(back->final_url, "https://cdn.example/x.webp");
  EXPECT_EQ(back->body, response.body);

  EXPECT_EQ(DecodeCacheEntry("http://a/y", entry).status().code(), StatusCode::kNotFound);
  for (std::size_t size = 0; size < entry.size(); ++size) {
    EXPECT_EQ(DecodeCacheEntry("http://a/x", entry.substr(0, size)).status().code(),
              StatusCode::kCorruption)
        << size;
  }
  for (std::size_t i = 0; i < entry.size(); ++i) {
    std::string damaged = entry;
    damaged[i] ^= 0x20;
    EXPECT_FALSE(DecodeCacheEntry("http://a/x", damaged).ok()) << i;
  }
  EXPECT_FALSE(DecodeCacheEntry("http://a/x", entry + "x").ok());
}

TEST(CacheEntryTest, KeysAreHexAndDifferPerUrl) {
  const std::string key = CacheKey("http://a/x");
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(CacheKey("http://a/x"), key);
  EXPECT_NE(CacheKey("http://a/y"), key);
}

}  // namespace
}  // namespace sluice
