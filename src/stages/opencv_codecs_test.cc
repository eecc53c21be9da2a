#include "src/stages/opencv_codecs.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <vector>

#include "src/stages/image_test_util.h"

namespace sluice {
namespace {

using ImdecodeFn = cv::Mat (*)(const cv::_InputArray&, int);
using ImencodeFn = bool (*)(const std::string&, const cv::_InputArray&,
                            std::vector<std::uint8_t>&, const std::vector<int>&);

TEST(OpenCvCodecsTest, LoadsTheFunctionsThisTestLinks) {
  // This test links libopencv_imgcodecs, so the names the loader looks up must
  // resolve to the very functions the compiler calls for cv::imdecode/imencode.
  Result<const OpenCvCodecs*> codecs = LoadOpenCvCodecs();
  ASSERT_TRUE(codecs.ok()) << codecs.status().ToString();
  EXPECT_EQ(reinterpret_cast<void*>((*codecs)->imdecode),
            reinterpret_cast<void*>(static_cast<ImdecodeFn>(&cv::imdecode)));
  EXPECT_EQ(reinterpret_cast<void*>((*codecs)->imencode),
            reinterpret_cast<void*>(static_cast<ImencodeFn>(&cv::imencode)));
  // Loaded once: the same table every time.
  EXPECT_EQ(*LoadOpenCvCodecs(), *codecs);
}

TEST(OpenCvCodecsTest, RoundTripsAPng) {
  Result<const OpenCvCodecs*> codecs = LoadOpenCvCodecs();
  ASSERT_TRUE(codecs.ok()) << codecs.status().ToString();
  const cv::Mat image = testing::Gradient(64, 48);
  std::vector<std::uint8_t> png;
  ASSERT_TRUE((*codecs)->imencode(".png", image, png, {}));
  const cv::Mat decoded = (*codecs)->imdecode(png, cv::IMREAD_COLOR);
  ASSERT_EQ(decoded.size(), image.size());
  EXPECT_EQ(testing::MaxDifference(decoded, image), 0.0);  // PNG is lossless
  EXPECT_TRUE(
      (*codecs)->imdecode(std::vector<std::uint8_t>{1, 2, 3}, cv::IMREAD_COLOR).empty());
}

TEST(OpenCvCodecsTest, AMissingOrWrongLibraryIsAnErrorNamingIt) {
  Result<OpenCvCodecs> missing = LoadOpenCvCodecsFrom("libsluice-no-such-library.so.1");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot load libsluice-no-such-library.so.1"),
            std::string::npos)
      << missing.status().ToString();
  // A real library without the functions (libm is loaded in every process).
  Result<OpenCvCodecs> wrong = LoadOpenCvCodecsFrom("libm.so.6");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("libm.so.6 has no cv::imdecode"),
            std::string::npos)
      << wrong.status().ToString();
}

}  // namespace
}  // namespace sluice
