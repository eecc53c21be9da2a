#include "src/stages/builtin_stages.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/core/runtime.h"
#include "src/stages/map_stage_options_test_util.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

using ::sluice::testing::MapStageOptions;

// Builds a stage through the registry, as a pipeline would. Returns the factory's
// error, else the options' Finish() error, else the stage.
Result<std::unique_ptr<Stage>> Build(const std::string& type,
                                     std::map<std::string, std::string> values) {
  StageRegistry registry;
  SLUICE_RETURN_IF_ERROR(RegisterBuiltinStages(registry));
  const StageFactory* factory = registry.Find(type);
  if (factory == nullptr) return NotFound("no stage " + type);
  MapStageOptions options(std::move(values));
  auto stage = (*factory)(options);
  if (!stage.ok()) return stage.status();
  SLUICE_RETURN_IF_ERROR(options.Finish());
  return stage;
}

std::vector<Record> MakeBatch(ItemId first, std::size_t count) {
  std::vector<Record> records;
  for (std::size_t i = 0; i < count; ++i) records.emplace_back(first + i, "u");
  return records;
}

// --- registry and options ---------------------------------------------------------

TEST(BuiltinStagesTest, RegistersNoopSleepFailAndFilter) {
  StageRegistry registry;
  ASSERT_TRUE(RegisterBuiltinStages(registry).ok());
  std::set<std::string> names;
  for (const auto& [name, description] : registry.List()) {
    names.insert(name);
    EXPECT_FALSE(description.empty()) << name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"fail", "filter", "noop", "sleep"}));
}

// One name, one meaning: registering a name again, or an operator's, is an error
// that leaves the registry as it was.
TEST(BuiltinStagesTest, ANameRegisteredTwiceOrAnOperatorsNameIsRefused) {
  StageRegistry registry;
  ASSERT_TRUE(RegisterBuiltinStages(registry).ok());
  const StageFactory* noop = registry.Find("noop");
  StageFactory other = [](StageOptions&) -> Result<std::unique_ptr<Stage>> {
    return InvalidArgument("not this one");
  };
  const Status again = registry.Register("noop", "another noop", other);
  EXPECT_EQ(again.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.message().find("'noop' is registered already"), std::string::npos)
      << again.message();
  EXPECT_EQ(registry.Find("noop"), noop) << "the first registration stays";
  EXPECT_FALSE(RegisterBuiltinStages(registry).ok());
  for (const char* op : {"copy", "split", "shard", "merge", "join", "reduce"}) {
    EXPECT_FALSE(registry.Register(op, "a stage", other).ok()) << op;
    EXPECT_EQ(registry.Find(op), nullptr) << op;
  }
  EXPECT_FALSE(registry.Register("mine", "no factory", nullptr).ok());
}

TEST(BuiltinStagesTest, NoopIsACpuStageWithoutOptions) {
  auto stage = Build("noop", {});
  ASSERT_TRUE(stage.ok()) << stage.status().ToString();
  EXPECT_EQ((*stage)->kind(), Stage::Kind::kCpu);
  EXPECT_FALSE(Build("noop", {{"ms", "3"}}).ok()) << "unknown options are errors";
}

TEST(BuiltinStagesTest, SleepDefaultsAndLimits) {
  auto stage = Build("sleep", {});
  ASSERT_TRUE(stage.ok()) << stage.status().ToString();
  ASSERT_EQ((*stage)->kind(), Stage::Kind::kAsync);
  EXPECT_EQ(static_cast<AsyncStage&>(**stage).max_in_flight(), 10000u);

  auto custom = Build("sleep", {{"ms", "0"}, {"max_in_flight", "1000000"}});
  ASSERT_TRUE(custom.ok()) << custom.status().ToString();
  EXPECT_EQ(static_cast<AsyncStage&>(**custom).max_in_flight(), 1000000u);
}

TEST(BuiltinStagesTest, SleepRejectsOutOfRangeOptions) {
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"ms", "-1"},
                                                        {"ms", "3600001"},
                                                        {"ms", "soon"},
                                                        {"max_in_flight", "0"},
                                                        {"max_in_flight", "1000001"}}) {
    auto stage = Build("sleep", {{key, value}});
    ASSERT_FALSE(stage.ok()) << key << "=" << value;
    EXPECT_EQ(stage.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(stage.status().message().find("stages[1]." + key), std::string::npos)
        << stage.status().message();
  }
}

TEST(BuiltinStagesTest, FilterKeepsWhatItsExpressionHoldsFor) {
  auto stage = Build("filter", {{"keep", "width >= 256 && !has(error)"}});
  ASSERT_TRUE(stage.ok()) << stage.status().ToString();
  ASSERT_EQ((*stage)->kind(), Stage::Kind::kCpu);
  std::vector<Record> records = MakeBatch(1, 3);
  records[0].Set("width", std::int64_t{640});
  records[1].Set("width", std::int64_t{100});
  records[2].Fail(FailureReason::kDns, "no such host");  // failed already: untouched
  static_cast<CpuStage&>(**stage).Process(records);
  EXPECT_FALSE(records[0].failed());
  EXPECT_EQ(records[1].reason(), FailureReason::kFiltered);
  EXPECT_FALSE(IsFailure(records[1].reason()));
  EXPECT_EQ(records[1].error(), "filtered by stages[1]: keep width >= 256 && !has(error)");
  EXPECT_EQ(records[2].reason(), FailureReason::kDns);
}

TEST(BuiltinStagesTest, FilterNeedsAValidExpression) {
  auto missing = Build("filter", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("stages[1].keep: a filter needs `keep`"),
            std::string::npos)
      << missing.status().message();
  auto bad = Build("filter", {{"keep", "width = 3"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("stages[1].keep: column 7: '=' is not an operator"),
            std::string::npos)
      << bad.status().message();
}

TEST(BuiltinStagesTest, FailRejectsBadOptions) {
  auto bad_reason = Build("fail", {{"reason", "gremlins"}});
  ASSERT_FALSE(bad_reason.ok());
  const std::string& message = bad_reason.status().message();
  EXPECT_NE(message.find("stages[1].reason"), std::string::npos) << message;
  EXPECT_NE(message.find("gremlins"), std::string::npos) << message;
  // Lists the valid names.
  for (FailureReason reason : AllFailureReasons()) {
    EXPECT_NE(message.find(std::string(FailureReasonName(reason))), std::string::npos)
        << message;
  }
  EXPECT_FALSE(Build("fail", {{"fraction", "1.5"}}).ok());
  EXPECT_FALSE(Build("fail", {{"fraction", "-0.1"}}).ok());
  EXPECT_FALSE(Build("fail", {{"seed", "x"}}).ok());
  EXPECT_TRUE(
      Build("fail", {{"fraction", "1"}, {"reason", "timeout"}, {"seed", "-3"}}).ok());
}

// --- fail -----------------------------------------------------------------------------

std::vector<ItemId> FailedIds(const std::map<std::string, std::string>& values,
                              std::size_t items) {
  auto stage = Build("fail", values);
  EXPECT_TRUE(stage.ok()) << stage.status().ToString();
  auto& cpu = static_cast<CpuStage&>(**stage);
  std::vector<Record> records = MakeBatch(0, items);
  cpu.Process(records);
  std::vector<ItemId> failed;
  for (const Record& record : records) {
    if (record.failed()) failed.push_back(record.id());
  }
  return failed;
}

TEST(FailStageTest, SameSeedFailsTheSameItems) {
  const auto first = FailedIds({{"fraction", "0.2"}, {"seed", "7"}}, 100'000);
  const auto second = FailedIds({{"fraction", "0.2"}, {"seed", "7"}}, 100'000);
  EXPECT_EQ(first, second);
  const auto other_seed = FailedIds({{"fraction", "0.2"}, {"seed", "8"}}, 100'000);
  EXPECT_NE(first, other_seed);
}

TEST(FailStageTest, FailsTheRequestedFraction) {
  // 100,000 draws: one standard deviation is under 0.13%; allow 0.6%.
  for (double fraction : {0.01, 0.1, 0.5, 0.9}) {
    const auto failed = FailedIds({{"fraction", std::to_string(fraction)}}, 100'000);
    EXPECT_NEAR(static_cast<double>(failed.size()) / 100'000, fraction, 0.006)
        << fraction;
  }
  EXPECT_TRUE(FailedIds({{"fraction", "0"}}, 10'000).empty());
  EXPECT_EQ(FailedIds({{"fraction", "1"}}, 10'000).size(), 10'000u);
}

TEST(FailStageTest, SetsTheReasonAndMessageAndKeepsEarlierFailures) {
  auto stage = Build("fail", {{"fraction", "1"}, {"reason", "http_5xx"}});
  ASSERT_TRUE(stage.ok()) << stage.status().ToString();
  std::vector<Record> records = MakeBatch(0, 2);
  records[1].Fail(FailureReason::kDns, "earlier");
  static_cast<CpuStage&>(**stage).Process(records);
  EXPECT_EQ(records[0].reason(), FailureReason::kHttp5xx);
  EXPECT_EQ(records[0].error(), "injected by fail stage");
  EXPECT_EQ(records[1].reason(), FailureReason::kDns);
  EXPECT_EQ(records[1].error(), "earlier");
}

TEST(FailStageTest, DefaultIsTenPercentInjected) {
  const auto failed = FailedIds({}, 100'000);
  EXPECT_NEAR(static_cast<double>(failed.size()) / 100'000, 0.1, 0.006);
  FailOptions defaults;
  EXPECT_EQ(defaults.reason, FailureReason::kInjected);
}

// --- sleep in a runtime ----------------------------------------------------------------

// Delivered batches with the time each was reported.
struct Arrivals {
  std::mutex mu;
  std::condition_variable cv;
  std::map<BatchId, Clock::time_point> at;         // guarded by mu
  std::map<BatchId, std::vector<Record>> records;  // guarded by mu

  BatchDone Callback() {
    return [this](BatchId batch, std::vector<Record> batch_records) {
      std::lock_guard<std::mutex> lock(mu);
      at[batch] = Clock::now();
      records[batch] = std::move(batch_records);
      cv.notify_all();
    };
  }
};

TEST(SleepStageTest, DelaysEveryRecordAtLeastMs) {
  auto sleep = Build("sleep", {{"ms", "40"}});
  ASSERT_TRUE(sleep.ok());
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"sleep", std::move(sleep).value()});
  RuntimeOptions options;
  options.chunk_size = 16;
  Arrivals arrivals;
  Runtime runtime(options, std::move(stages), arrivals.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  std::map<BatchId, Clock::time_point> submitted;
  for (BatchId batch = 0; batch < 4; ++batch) {
    submitted[batch] = Clock::now();
    ASSERT_TRUE(runtime.Submit(batch, MakeBatch(batch * 100, 100)).ok());
  }
  runtime.Finish();
  ASSERT_EQ(arrivals.at.size(), 4u);
  for (const auto& [batch, when] : submitted) {
    EXPECT_GE(arrivals.at[batch] - when, milliseconds(40)) << "batch " << batch;
    EXPECT_EQ(arrivals.records[batch].size(), 100u);
  }
}

TEST(SleepStageTest, FailedRecordsDoNotSleep) {
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"fail", std::make_unique<FailStage>(FailOptions{1.0})});
  SleepOptions long_sleep;
  long_sleep.delay = std::chrono::hours(1);
  stages.push_back(NamedStage{"sleep", std::make_unique<SleepStage>(long_sleep)});
  Arrivals arrivals;
  Runtime runtime(RuntimeOptions{}, std::move(stages), arrivals.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 50)).ok());
  runtime.Finish();  // would take an hour if failed records slept
  ASSERT_EQ(arrivals.records[1].size(), 50u);
  for (const Record& record : arrivals.records[1]) {
    EXPECT_EQ(record.reason(), FailureReason::kInjected);
  }
}

// deadline_ms shorter than ms: the runtime's deadline fails the records as timeouts,
// and the stage hands back its own records (with their urls).
TEST(SleepStageTest, RecordsPastTheirDeadlineFailAsTimeouts) {
  auto sleep = Build("sleep", {{"ms", "3600000"}, {"deadline_ms", "30"}});
  ASSERT_TRUE(sleep.ok()) << sleep.status().ToString();
  EXPECT_EQ(static_cast<AsyncStage&>(**sleep).record_deadline(), milliseconds(30));
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"sleep", std::move(sleep).value()});
  Arrivals arrivals;
  Runtime runtime(RuntimeOptions{}, std::move(stages), arrivals.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 20)).ok());
  runtime.Finish();  // would take an hour without the deadline
  ASSERT_EQ(arrivals.records[1].size(), 20u);
  for (const Record& record : arrivals.records[1]) {
    EXPECT_EQ(record.reason(), FailureReason::kTimeout);
    EXPECT_NE(record.error().find("deadline of 30 ms"), std::string::npos)
        << record.error();
    EXPECT_FALSE(record.url().empty());
  }
  EXPECT_EQ(SleepStage(SleepOptions{milliseconds(500), 10}).record_deadline(),
            milliseconds(1500))
      << "by default the delay plus a second";
}

TEST(SleepStageTest, ManyInFlightAllComplete) {
  SleepOptions sleep;
  sleep.delay = milliseconds(20);
  sleep.max_in_flight = 10'000;
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"sleep", std::make_unique<SleepStage>(sleep)});
  stages.push_back(NamedStage{"noop", std::make_unique<NoopStage>()});
  RuntimeOptions options;
  options.max_batches_in_flight = 16;
  Arrivals arrivals;
  Runtime runtime(options, std::move(stages), arrivals.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  for (BatchId batch = 0; batch < 30; ++batch) {
    ASSERT_TRUE(runtime.Submit(batch, MakeBatch(batch * 1000, 1000)).ok());
  }
  runtime.Finish();
  ASSERT_EQ(arrivals.records.size(), 30u);
  for (const auto& [batch, records] : arrivals.records) EXPECT_EQ(records.size(), 1000u);
}

TEST(SleepStageTest, AbortWhileRecordsSleep) {
  SleepOptions long_sleep;
  long_sleep.delay = std::chrono::hours(1);
  std::vector<NamedStage> stages;
  stages.push_back(NamedStage{"sleep", std::make_unique<SleepStage>(long_sleep)});
  Arrivals arrivals;
  Runtime runtime(RuntimeOptions{}, std::move(stages), arrivals.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 500)).ok());
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (runtime.Counters()[0].in_flight != 500 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(runtime.Counters()[0].in_flight, 500u);
  runtime.Abort();  // the sleeping records are freed with the stage (ASan checks)
  EXPECT_TRUE(arrivals.records.empty());
}

}  // namespace
}  // namespace sluice
