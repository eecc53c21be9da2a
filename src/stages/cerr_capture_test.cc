#include "src/stages/cerr_capture.h"

#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace {

TEST(CerrCaptureTest, KeepsWhatThisThreadWritesAndPrintsNothing) {
  ::testing::internal::CaptureStderr();
  std::string kept;
  {
    const CerrCapture capture;
    std::cerr << "can't read data: " << 42 << std::endl;
    kept = capture.text();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(kept, "can't read data: 42\n");
}

TEST(CerrCaptureTest, OutsideACaptureStdCerrPrintsAsBefore) {
  { const CerrCapture capture; }  // the router is in place from here on
  ::testing::internal::CaptureStderr();
  std::cerr << "printed " << 1 << std::flush;
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "printed 1");
}

TEST(CerrCaptureTest, OtherThreadsAreNotCaptured) {
  ::testing::internal::CaptureStderr();
  std::string kept;
  {
    const CerrCapture capture;
    std::thread other([] { std::cerr << "from another thread" << std::flush; });
    other.join();
    std::cerr << "mine" << std::flush;
    kept = capture.text();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "from another thread");
  EXPECT_EQ(kept, "mine");
}

TEST(CerrCaptureTest, ThreadsCaptureTheirOwnAtTheSameTime) {
  std::vector<std::string> kept(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([i, &kept] {
      const CerrCapture capture;
      for (int n = 0; n < 200; ++n) std::cerr << i;
      kept[i] = capture.text();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(kept[i], std::string(200, '0' + i));
}

TEST(CerrCaptureTest, NestsAndKeepsAtMostItsLimit) {
  const CerrCapture outer(8);
  std::cerr << "0123456789";
  {
    const CerrCapture inner;
    std::cerr << "inner";
    EXPECT_EQ(inner.text(), "inner");
  }
  std::cerr << "more";
  EXPECT_EQ(outer.text(), "01234567");
}

}  // namespace
}  // namespace sluice
