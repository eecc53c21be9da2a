#include "src/stages/http_headers.h"

#include <gtest/gtest.h>

#include <chrono>

namespace sluice {
namespace {

using std::chrono::milliseconds;

const std::vector<std::string> kDefaultOptOuts = {"noai", "noimageai", "noindex",
                                                  "noimageindex"};

TEST(HttpHeadersTest, ParsesHeaderLines) {
  auto field = ParseHeaderLine("Content-Type:  image/jpeg \r\n");
  ASSERT_TRUE(field.has_value());
  EXPECT_EQ(field->name, "Content-Type");
  EXPECT_EQ(field->value, "image/jpeg");
  EXPECT_FALSE(ParseHeaderLine("HTTP/1.1 200 OK\r\n").has_value());
  EXPECT_FALSE(ParseHeaderLine("\r\n").has_value());
  EXPECT_FALSE(ParseHeaderLine(": nameless\r\n").has_value());
  auto location = ParseHeaderLine("Location: http://a.example/x:y\r\n");
  ASSERT_TRUE(location.has_value());
  EXPECT_EQ(location->value, "http://a.example/x:y");
}

TEST(HttpHeadersTest, RobotsTagDirectivesForEveryRobot) {
  EXPECT_TRUE(RobotsTagForbids("noai", "sluice", kDefaultOptOuts));
  EXPECT_TRUE(RobotsTagForbids("NoImageAI", "sluice", kDefaultOptOuts));
  EXPECT_TRUE(RobotsTagForbids("nofollow, noindex", "sluice", kDefaultOptOuts));
  EXPECT_TRUE(RobotsTagForbids("none", "sluice", kDefaultOptOuts));
  EXPECT_FALSE(RobotsTagForbids("nofollow", "sluice", kDefaultOptOuts));
  EXPECT_FALSE(RobotsTagForbids("all", "sluice", kDefaultOptOuts));
  EXPECT_FALSE(RobotsTagForbids("", "sluice", kDefaultOptOuts));
  EXPECT_FALSE(RobotsTagForbids("noai", "sluice", {}));  // check disabled
}

TEST(HttpHeadersTest, RobotsTagAimedAtOtherRobotsDoesNotApply) {
  EXPECT_FALSE(RobotsTagForbids("googlebot: noindex", "sluice", kDefaultOptOuts));
  EXPECT_FALSE(RobotsTagForbids("otherbot: noai, noindex", "sluice", kDefaultOptOuts));
  EXPECT_TRUE(RobotsTagForbids("Sluice: noai", "sluice", kDefaultOptOuts));
  EXPECT_TRUE(RobotsTagForbids("otherbot: nofollow, sluice: noimageai", "sluice",
                               kDefaultOptOuts));
  // A valued directive is not a robot name.
  EXPECT_TRUE(RobotsTagForbids("unavailable_after: 25 Jun 2010 15:00:00 PST, noai",
                               "sluice", kDefaultOptOuts));
}

TEST(HttpHeadersTest, RetryAfterSeconds) {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);
  EXPECT_EQ(ParseRetryAfter("120", now), milliseconds(120'000));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), milliseconds(0));
  // More than a year is capped at a year, also past uint64_t.
  EXPECT_EQ(ParseRetryAfter("99999999999", now), milliseconds(365LL * 86400 * 1000));
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now),
            milliseconds(365LL * 86400 * 1000));
}

// A fixed `now` (Wed, 21 Oct 2015 07:28:00 GMT): the parser reads no clock.
TEST(HttpHeadersTest, RetryAfterDatesInAllThreeForms) {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), milliseconds(30'000));
  EXPECT_EQ(ParseRetryAfter("Wednesday, 21-Oct-15 07:28:30 GMT", now),
            milliseconds(30'000));  // RFC 850
  EXPECT_EQ(ParseRetryAfter("Wed Oct 21 07:28:30 2015", now),
            milliseconds(30'000));  // asctime
  EXPECT_EQ(ParseRetryAfter("Wed Oct 21 08:28:00 2015", now), milliseconds(3'600'000));
  // Milliseconds of `now` count: 250 ms into the second, 29.75 s are left.
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now + milliseconds(250)),
            milliseconds(29'750));
  // Far in the future: capped at a year, like delta-seconds.
  EXPECT_EQ(ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now),
            milliseconds(365LL * 86400 * 1000));
}

TEST(HttpHeadersTest, RetryAfterDateInThePastMeansAtOnce) {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Wednesday, 21-Oct-15 07:00:00 GMT", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Wed Oct 21 07:00:00 2015", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Thu, 01 Jan 1970 00:00:00 GMT", now), milliseconds(0));
}

TEST(HttpHeadersTest, RetryAfterGarbageIsIgnored) {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);
  for (const char* garbage :
       {"", "   ", "soon", "-5", "1.5", "1e3", "Wed, 21 Foo 2015 07:28:30 GMT",
        "Wed, 32 Oct 2015 07:28:30 GMT", "Wed, 21 Oct 2015 25:28:30 GMT", "07:28:30"}) {
    EXPECT_FALSE(ParseRetryAfter(garbage, now).has_value()) << "'" << garbage << "'";
  }
}

// Found by tests/fuzz/http_headers_fuzzer.cc: a date outside the clock's range
// (years 1678 to 2262 in nanoseconds) overflowed its conversion to a time_point.
TEST(HttpHeadersTest, RetryAfterDatesFarFromNowAreCappedOrZero) {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);  // 2015
  const milliseconds year(365LL * 86400 * 1000);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 4030 07:28:00 GMT", now), year);
  EXPECT_EQ(ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now), year);
  EXPECT_EQ(ParseRetryAfter("Mon, 01 Jan 0001 00:00:00 GMT", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Wed, 19 Oct 2016 07:28:00 GMT", now),
            milliseconds(365LL * 86400 * 1000 - 86400 * 1000));
  // A negative year is no date (curl_getdate is lenient about signs elsewhere: a
  // "-1" day or "+7" hour is read as a number, which is harmless here).
  EXPECT_FALSE(ParseRetryAfter("Wed, 21 Oct -999 07:28:30 GMT", now).has_value());
}

TEST(HttpHeadersTest, MediaTypes) {
  EXPECT_EQ(MediaType("Image/JPEG; charset=binary"), "image/jpeg");
  EXPECT_EQ(MediaType(" text/html "), "text/html");
  const std::vector<std::string> allowed = {"image/", "application/octet-stream"};
  EXPECT_TRUE(MediaTypeAllowed("image/webp", allowed));
  EXPECT_TRUE(MediaTypeAllowed("application/octet-stream", allowed));
  EXPECT_FALSE(MediaTypeAllowed("text/html", allowed));
  EXPECT_FALSE(MediaTypeAllowed("image/", allowed));
  EXPECT_FALSE(MediaTypeAllowed("imagex/png", allowed));
  EXPECT_TRUE(MediaTypeAllowed("text/html", {}));
}

}  // namespace
}  // namespace sluice
