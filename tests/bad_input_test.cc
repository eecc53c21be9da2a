// Bad input is data, not a crash (DESIGN.md guarantee 5): each kind of bad input
// gives a clear message naming the file (and line), and never loses what was
// already committed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "src/input/input_files_test_util.h"
#include "tests/test_util.h"

namespace sluice::testing {
namespace {

constexpr const char* kPipeline = R"(
name: bad-input
batch_size: 10
stages:
  - {name: pass, type: noop}
)";

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pipeline_ = dir_.File("p.yaml");
    WriteFile(pipeline_, kPipeline);
    workdir_ = dir_.File("work");
    // A good input, run to completion first: nothing below may lose its results.
    good_ = dir_.File("good.txt");
    std::string text;
    for (int i = 0; i < 25; ++i)
      text += "http://example.com/good/" + std::to_string(i) + "\n";
    WriteFile(good_, text);
    CommandResult first = Run({good_});
    ASSERT_EQ(first.exit_code, 0) << first.err;
    ASSERT_EQ(Done(), 25);
  }

  CommandResult Run(const std::vector<std::string>& inputs) {
    std::vector<std::string> args = {"run",    pipeline_,           "--workdir",
                                     workdir_, "--status-interval", "0"};
    for (const std::string& input : inputs) {
      args.push_back("--input");
      args.push_back(input);
    }
    return RunSluice(args);
  }

  nlohmann::json Status() {
    CommandResult result = RunSluice({"status", "--workdir", workdir_, "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(result.out, nullptr, false);
  }

  int Done() {
    nlohmann::json status = Status();
    return status["results"]["ok"].get<int>() + status["results"]["failed"].get<int>();
  }

  TempDir dir_;
  std::string pipeline_;
  std::string workdir_;
  std::string good_;
};

TEST_F(BadInputTest, EmptyFileSaysSoAndSucceeds) {
  std::string empty = dir_.File("empty.txt");
  WriteFile(empty, "");
  CommandResult result = Run({empty});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("empty.txt: no items"), std::string::npos) << result.err;
  EXPECT_EQ(Done(), 25);
}

TEST_F(BadInputTest, BinaryGarbageIsRejectedLineByLine) {
  std::string garbage = dir_.File("garbage.bin");
  std::mt19937 random(42);
  std::string bytes(200000, '\0');
  for (char& c : bytes) c = static_cast<char>(random() & 0xff);
  WriteFile(garbage, bytes);
  CommandResult result = Run({garbage});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("garbage.bin:"), std::string::npos) << result.err;
  nlohmann::json status = Status();
  EXPECT_GT(status["rejected_lines"].get<int>(), 0);
  // Whatever garbage lines happened to be valid text became items, and were processed.
  EXPECT_EQ(Done(), status["items"].get<int>());
  EXPECT_GE(Done(), 25);
}

TEST_F(BadInputTest, OneMegabyteLineIsRejectedWithItsLineNumber) {
  std::string input = dir_.File("long.txt");
  WriteFile(input, "http://example.com/a\n" + std::string(1 << 20, 'x') +
                       "\nhttp://example.com/b\n");
  CommandResult result = Run({input});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("long.txt:2: line longer than"), std::string::npos)
      << result.err;
  EXPECT_EQ(Done(), 27);
  EXPECT_EQ(Status()["rejected_lines"], 1);
}

TEST_F(BadInputTest, InvalidUtf8IsRejectedWithItsLineNumber) {
  std::string input = dir_.File("latin1.txt");
  WriteFile(input, "http://example.com/ok\nhttp://example.com/caf\xe9\n");
  CommandResult result = Run({input});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("latin1.txt:2: invalid UTF-8"), std::string::npos)
      << result.err;
  EXPECT_EQ(Done(), 26);
}

TEST_F(BadInputTest, CsvWithoutUrlColumnNamesTheColumns) {
  std::string input = dir_.File("photos.csv");
  WriteFile(input, "link,caption\nhttp://example.com/x,a cat\n");
  CommandResult result = Run({input});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("photos.csv"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("link, caption"), std::string::npos) << result.err;
  EXPECT_EQ(Done(), 25);
  EXPECT_EQ(Status()["items"], 25);
}

TEST_F(BadInputTest, CsvUrlColumnCanBeChosen) {
  std::string input = dir_.File("photos.csv");
  WriteFile(input, "link,caption\nhttp://example.com/x,\"a cat, sitting\"\n");
  std::vector<std::string> args = {"run",
                                   pipeline_,
                                   "--workdir",
                                   dir_.File("csv-work"),
                                   "--input",
                                   input,
                                   "--set",
                                   "input.url_column=link",
                                   "--status-interval",
                                   "0"};
  CommandResult result = RunSluice(args);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  CommandResult exported = RunSluice({"export", "--workdir", dir_.File("csv-work")});
  nlohmann::json row = nlohmann::json::parse(exported.out);
  EXPECT_EQ(row["url"], "http://example.com/x");
  EXPECT_EQ(row["input"]["caption"], "a cat, sitting");
}

TEST_F(BadInputTest, BrokenGzipKeepsWhatCameBefore) {
  std::string text;
  for (int i = 0; i < 5000; ++i)
    text += "http://example.com/gz/" + std::to_string(i) + "\n";
  std::string compressed = GzipCompress(text);
  std::string input = dir_.File("urls.txt.gz");
  WriteFile(input, compressed.substr(0, compressed.size() / 2));
  CommandResult result = Run({input});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("urls.txt.gz"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("gzip"), std::string::npos) << result.err;
  // The good input's results are intact, and nothing was processed twice.
  nlohmann::json status = Status();
  EXPECT_EQ(Done(), 25);
  EXPECT_GE(status["items"].get<int>(), 25);
  EXPECT_EQ(status["inputs"]["complete"], 1);
}

}  // namespace
}  // namespace sluice::testing
