#include "src/core/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "src/core/runtime_test_util.h"

namespace sluice {
namespace {

using namespace runtime_test;  // NOLINT(google-build-using-namespace): test helpers

// --- tests ---------------------------------------------------------------------------

TEST(RuntimeTest, FinishOnIdleRuntime) {
  Sink sink;
  std::vector<NamedStage> stages;
  stages.push_back(Named("noop", std::make_unique<TagStage>("a")));
  Runtime runtime(RuntimeOptions{}, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  runtime.Finish();
  EXPECT_TRUE(sink.reports().empty());
  EXPECT_EQ(runtime.batches_in_flight(), 0u);
  EXPECT_FALSE(runtime.Submit(1, MakeBatch(0, 3)).ok()) << "Submit after Finish";
}

TEST(RuntimeTest, FinishWithoutStartAndDestroyWithoutFinish) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("a", std::make_unique<TagStage>("a")));
  Runtime never_started(RuntimeOptions{}, std::move(stages), nullptr);
  never_started.Finish();
  EXPECT_FALSE(never_started.Submit(1, MakeBatch(0, 1)).ok());

  std::vector<NamedStage> more;
  more.push_back(Named("hold", std::make_unique<HoldingAsyncStage>(100, 1000)));
  Runtime running(RuntimeOptions{}, std::move(more), nullptr);
  ASSERT_TRUE(running.Start().ok());
  EXPECT_TRUE(running.Submit(1, MakeBatch(0, 10)).ok());
  // The destructor aborts; records held by the stage are freed with it (ASan).
}

TEST(RuntimeTest, StartRejectsBadOptionsAndSecondStart) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("a", std::make_unique<TagStage>("a")));
  RuntimeOptions options;
  options.chunk_size = 0;
  Runtime bad(options, std::move(stages), nullptr);
  EXPECT_EQ(bad.Start().code(), StatusCode::kInvalidArgument);

  std::vector<NamedStage> stuck;
  stuck.push_back(Named("stuck", std::make_unique<HoldingAsyncStage>(0, 1)));
  Runtime never_admits(RuntimeOptions{}, std::move(stuck), nullptr);
  EXPECT_EQ(never_admits.Start().code(), StatusCode::kInvalidArgument);

  std::vector<NamedStage> again;
  again.push_back(Named("a", std::make_unique<TagStage>("a")));
  Runtime runtime(RuntimeOptions{}, std::move(again), nullptr);
  ASSERT_TRUE(runtime.Start().ok());
  EXPECT_FALSE(runtime.Start().ok());
  runtime.Finish();
}

TEST(RuntimeTest, EmptyBatchIsReportedDone) {
  Sink sink;
  std::vector<NamedStage> stages;
  stages.push_back(Named("a", std::make_unique<TagStage>("a")));
  Runtime runtime(RuntimeOptions{}, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(7, {}).ok());
  ASSERT_TRUE(sink.WaitForBatches(1));
  runtime.Finish();
  EXPECT_EQ(sink.reports(), (std::map<BatchId, int>{{7, 1}}));
  EXPECT_TRUE(sink.batches()[7].empty());
}

// Which stages a pipeline has: 'c' a CPU stage, 'a' an async one.
struct ExactlyOnceCase {
  std::size_t chunk_size;
  std::string layout;
};

class ExactlyOnceTest : public ::testing::TestWithParam<ExactlyOnceCase> {};

// Every record of every batch reaches BatchDone exactly once, in the right batch,
// having passed every stage; each batch is reported once. Batch sizes are random
// (0 and 1 included), so records of different batches interleave in chunks.
TEST_P(ExactlyOnceTest, EveryRecordOnceEveryBatchOnce) {
  const ExactlyOnceCase& param = GetParam();
  std::vector<NamedStage> stages;
  for (std::size_t i = 0; i < param.layout.size(); ++i) {
    const std::string tag = "s" + std::to_string(i);
    if (param.layout[i] == 'c') {
      stages.push_back(Named(tag, std::make_unique<TagStage>(tag)));
    } else {
      stages.push_back(Named(tag, std::make_unique<DelayAsyncStage>(tag, 300, 500)));
    }
  }
  RuntimeOptions options;
  options.chunk_size = param.chunk_size;
  options.channel_capacity = 4;
  options.max_batches_in_flight = 4;
  options.cpu_threads = 2;
  Sink sink;
  Runtime runtime(options, std::move(stages), sink.Callback());
  sink.Watch(&runtime);
  ASSERT_TRUE(runtime.Start().ok());

  // Fewer records with chunks of one record: they cost a lock each, more so in TSAN.
  const std::size_t max_batch = param.chunk_size == 1 ? 150 : 1200;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<std::size_t> size_of(0, max_batch);
  std::map<BatchId, std::size_t> sizes;
  ItemId next_id = 0;
  for (BatchId batch = 0; batch < 40; ++batch) {
    std::size_t size = batch == 3 ? 0 : batch == 5 ? 1 : size_of(rng);
    sizes[batch] = size;
    ASSERT_TRUE(runtime.Submit(batch, MakeBatch(next_id, size)).ok());
    next_id += size;
  }
  runtime.Finish();

  const auto reports = sink.reports();
  const auto batches = sink.batches();
  ASSERT_EQ(reports.size(), sizes.size());
  EXPECT_LE(sink.max_in_flight_seen(), options.max_batches_in_flight);
  ItemId first = 0;
  for (const auto& [batch, size] : sizes) {
    EXPECT_EQ(reports.at(batch), 1) << "batch " << batch;
    std::vector<ItemId> ids;
    for (const Record& record : batches.at(batch)) {
      ids.push_back(record.id());
      for (std::size_t i = 0; i < param.layout.size(); ++i) {
        ASSERT_NE(record.Find("s" + std::to_string(i)), nullptr)
            << "item " << record.id() << " skipped stage " << i;
      }
    }
    std::sort(ids.begin(), ids.end());
    std::vector<ItemId> expected(size);
    for (std::size_t i = 0; i < size; ++i) expected[i] = first + i;
    EXPECT_EQ(ids, expected) << "batch " << batch;
    first += size;
  }
  for (const StageCounters& counters : runtime.Counters()) {
    EXPECT_EQ(counters.records_in, next_id) << counters.name;
    EXPECT_EQ(counters.in_flight, 0u) << counters.name;
    EXPECT_EQ(counters.queued_chunks, 0u) << counters.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, ExactlyOnceTest,
    ::testing::Values(ExactlyOnceCase{1, "ccc"}, ExactlyOnceCase{256, "ccc"},
                      ExactlyOnceCase{1, "cac"}, ExactlyOnceCase{256, "cac"},
                      ExactlyOnceCase{256, "acca"}, ExactlyOnceCase{7, "aa"}),
    [](const ::testing::TestParamInfo<ExactlyOnceCase>& test) {
      return test.param.layout + "_chunk" + std::to_string(test.param.chunk_size);
    });

TEST(RuntimeTest, FailedRecordsBypassLaterStages) {
  auto witness = std::make_unique<WitnessStage>();
  WitnessStage* witness_ptr = witness.get();
  auto async = std::make_unique<DelayAsyncStage>("async", 100, 200);
  DelayAsyncStage* async_ptr = async.get();
  std::vector<NamedStage> stages;
  stages.push_back(Named("fail", std::make_unique<ModFailStage>(3)));
  stages.push_back(Named("witness", std::move(witness)));
  stages.push_back(Named("async", std::move(async)));
  RuntimeOptions options;
  options.chunk_size = 64;
  Sink sink;
  Runtime runtime(options, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  for (BatchId batch = 0; batch < 10; ++batch) {
    ASSERT_TRUE(runtime.Submit(batch, MakeBatch(batch * 300, 300)).ok());
  }
  runtime.Finish();

  EXPECT_FALSE(witness_ptr->saw_failed());
  EXPECT_FALSE(async_ptr->saw_failed_.load());
  EXPECT_EQ(witness_ptr->seen(), 2000u);
  std::size_t failed = 0;
  for (const auto& [batch, records] : sink.batches()) {
    ASSERT_EQ(records.size(), 300u);
    for (const Record& record : records) {
      EXPECT_EQ(record.failed(), record.id() % 3 == 0) << record.id();
      if (record.failed()) {
        ++failed;
        EXPECT_EQ(record.reason(), FailureReason::kInjected);
        EXPECT_EQ(record.Find("async"), nullptr)
            << "failed record entered the async stage";
      }
    }
  }
  EXPECT_EQ(failed, 1000u);
  const auto counters = runtime.Counters();
  EXPECT_EQ(counters[0].records_failed, 1000u);
  EXPECT_EQ(counters[1].records_failed, 0u);
  EXPECT_EQ(counters[2].records_in, 3000u);  // failed records pass through it too
  EXPECT_EQ(counters[2].records_failed, 0u);
}

// A slow last stage: Submit() blocks once the batch budget is full, and returns
// only after a batch was reported, which needs the gate opened.
TEST(RuntimeTest, SubmitBlocksWhileTheBatchBudgetIsFull) {
  constexpr std::size_t kBudget = 2;
  auto hold = std::make_unique<HoldingAsyncStage>(1000, 1000000);  // never releases
  std::vector<NamedStage> stages;
  stages.push_back(Named("tag", std::make_unique<TagStage>("t")));
  stages.push_back(Named("hold", std::move(hold)));
  RuntimeOptions options;
  options.max_batches_in_flight = kBudget;
  options.chunk_size = 4;
  Sink sink;
  Runtime runtime(options, std::move(stages), sink.Callback());
  sink.Watch(&runtime);
  ASSERT_TRUE(runtime.Start().ok());

  std::atomic<int> returned{0};
  std::atomic<bool> third_result{true};
  std::thread source([&] {
    for (BatchId batch = 0; batch < 3; ++batch) {
      const bool ok = runtime.Submit(batch, MakeBatch(batch * 10, 10)).ok();
      EXPECT_LE(runtime.batches_in_flight(), kBudget);
      if (batch == 2) third_result = ok;
      ++returned;
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return returned.load() == 2; }));
  EXPECT_EQ(runtime.batches_in_flight(), kBudget);
  // The third Submit() is blocked: nothing can be reported while the stage holds
  // every record. Abort() releases it with false.
  ASSERT_TRUE(WaitUntil([&] { return runtime.Counters()[1].in_flight == 20; }));
  EXPECT_EQ(returned.load(), 2);
  runtime.Abort();
  source.join();
  EXPECT_EQ(returned.load(), 3);
  EXPECT_FALSE(third_result.load());
  EXPECT_TRUE(sink.reports().empty()) << "Abort must not report partial batches";
}

// A batch given record by record arrives whole, and its records are made only as
// the first channel has room: a stage that holds them keeps the rest unmade.
TEST(RuntimeTest, SubmitFromMakesRecordsOnlyAsTheFirstChannelHasRoom) {
  auto hold = std::make_unique<HoldingAsyncStage>(4, 1000000);  // holds 4, forever
  std::vector<NamedStage> stages;
  stages.push_back(Named("hold", std::move(hold)));
  RuntimeOptions options;
  options.chunk_size = 2;
  options.channel_capacity = 2;
  Sink sink;
  Runtime runtime(options, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  std::atomic<std::size_t> made{0};
  Status submitted;
  std::thread source([&] {
    submitted = runtime.SubmitFrom(1, 100, [&] {
      const ItemId id = made++;
      return Record(id, "http://example.com/" + std::to_string(id));
    });
  });
  ASSERT_TRUE(WaitUntil([&] { return runtime.Counters()[0].in_flight == 4; }));
  // Held by the stage (4), in the first channel (2 chunks of 2), and one chunk the
  // stage's runner may have taken out of it: never more.
  EXPECT_LE(made.load(), 10u);
  runtime.Abort();
  source.join();
  EXPECT_EQ(submitted.code(), StatusCode::kCancelled);
  EXPECT_LE(made.load(), 10u);
  EXPECT_TRUE(sink.reports().empty());
}

TEST(RuntimeTest, SubmitFromDeliversEveryRecordOnce) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("a", std::make_unique<TagStage>("a")));
  stages.push_back(Named("b", std::make_unique<DelayAsyncStage>("b", 8, 200)));
  RuntimeOptions options;
  options.chunk_size = 3;
  options.channel_capacity = 1;
  Sink sink;
  Runtime runtime(options, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ItemId next = 0;
  auto make = [&] {
    const ItemId id = next++;
    return Record(id, "u" + std::to_string(id));
  };
  ASSERT_TRUE(runtime.SubmitFrom(1, 100, make).ok());
  ASSERT_TRUE(runtime.SubmitFrom(2, 0, make).ok());
  ASSERT_TRUE(runtime.SubmitFrom(3, 1, make).ok());
  ASSERT_TRUE(sink.WaitForBatches(3));
  runtime.Finish();
  EXPECT_EQ(next, 101u);
  EXPECT_EQ(sink.reports(), (std::map<BatchId, int>{{1, 1}, {2, 1}, {3, 1}}));
  std::map<BatchId, std::vector<Record>> batches = sink.batches();
  std::set<ItemId> ids;
  for (const Record& record : batches[1]) {
    EXPECT_NE(record.Find("a"), nullptr);
    EXPECT_NE(record.Find("b"), nullptr);
    ids.insert(record.id());
  }
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_TRUE(batches[2].empty());
  ASSERT_EQ(batches[3].size(), 1u);
  EXPECT_EQ(batches[3][0].id(), 100u);
}

TEST(RuntimeTest, BatchesInFlightNeverExceedTheBudget) {
  constexpr std::size_t kBudget = 3;
  std::vector<NamedStage> stages;
  stages.push_back(Named("tag", std::make_unique<TagStage>("t")));
  stages.push_back(Named("async", std::make_unique<DelayAsyncStage>("a", 50, 2000)));
  RuntimeOptions options;
  options.max_batches_in_flight = kBudget;
  options.chunk_size = 16;
  options.channel_capacity = 2;
  Sink sink;
  Runtime runtime(options, std::move(stages), sink.Callback());
  sink.Watch(&runtime);
  ASSERT_TRUE(runtime.Start().ok());
  for (BatchId batch = 0; batch < 30; ++batch) {
    ASSERT_TRUE(runtime.Submit(batch, MakeBatch(batch * 100, 100)).ok());
    EXPECT_LE(runtime.batches_in_flight(), kBudget);
  }
  runtime.Finish();
  EXPECT_EQ(sink.reports().size(), 30u);
  EXPECT_LE(sink.max_in_flight_seen(), kBudget);
}

TEST(RuntimeTest, AsyncStageHoldsTenThousandInFlight) {
  // Releases records only when it holds 10,000 at once, so the batches complete
  // only if the runtime really fills the stage to max_in_flight.
  auto hold = std::make_unique<HoldingAsyncStage>(10000, 10000);
  HoldingAsyncStage* hold_ptr = hold.get();
  std::vector<NamedStage> stages;
  stages.push_back(Named("hold", std::move(hold)));
  RuntimeOptions options;
  options.max_batches_in_flight = 12;  // 12,000 records: enough to fill the stage
  Sink sink;
  Runtime runtime(options, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  std::thread source([&] {
    for (BatchId batch = 0; batch < 20; ++batch) {
      ASSERT_TRUE(runtime.Submit(batch, MakeBatch(batch * 1000, 1000)).ok());
    }
  });
  const bool all_done = sink.WaitForBatches(20);
  if (!all_done) runtime.Abort();  // do not hang the suite on a failure
  source.join();
  runtime.Finish();
  ASSERT_TRUE(all_done);
  EXPECT_EQ(hold_ptr->peak_.load(), 10000u);
  for (const auto& [batch, records] : sink.batches()) EXPECT_EQ(records.size(), 1000u);
}

TEST(RuntimeTest, AsyncStageMayCompleteInsideStart) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("immediate", std::make_unique<ImmediateAsyncStage>()));
  stages.push_back(Named("tag", std::make_unique<TagStage>("t")));
  Sink sink;
  Runtime runtime(RuntimeOptions{}, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  for (BatchId batch = 0; batch < 5; ++batch) {
    ASSERT_TRUE(runtime.Submit(batch, MakeBatch(batch * 500, 500)).ok());
  }
  runtime.Finish();
  ASSERT_EQ(sink.reports().size(), 5u);
  for (const auto& [batch, records] : sink.batches()) EXPECT_EQ(records.size(), 500u);
}

TEST(RuntimeTest, DuplicateItemIdFromAnotherBatchFailsInsteadOfMiscounting) {
  auto hold = std::make_unique<HoldingAsyncStage>(100, 2);  // releases pairs
  std::vector<NamedStage> stages;
  stages.push_back(Named("hold", std::move(hold)));
  Sink sink;
  RuntimeOptions options;
  options.chunk_size = 1;
  Runtime runtime(options, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(5, 1)).ok());  // id 5, held
  ASSERT_TRUE(
      runtime.Submit(2, MakeBatch(5, 1)).ok());  // id 5 again: must not be started
  ASSERT_TRUE(sink.WaitForBatches(1));
  auto batches = sink.batches();
  ASSERT_EQ(batches.count(2), 1u);
  ASSERT_EQ(batches[2].size(), 1u);
  EXPECT_EQ(batches[2][0].reason(), FailureReason::kInternal);
  ASSERT_TRUE(runtime.Submit(3, MakeBatch(6, 1)).ok());  // pairs with id 5: both released
  ASSERT_TRUE(sink.WaitForBatches(3));
  runtime.Finish();
  batches = sink.batches();
  EXPECT_FALSE(batches[1][0].failed());
  EXPECT_EQ(batches[1][0].id(), 5u);
}

TEST(RuntimeTest, AbortWithRecordsInFlight) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("tag", std::make_unique<TagStage>("t")));
  stages.push_back(Named("hold", std::make_unique<HoldingAsyncStage>(5000, 1000000)));
  Sink sink;
  Runtime runtime(RuntimeOptions{}, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  for (BatchId batch = 0; batch < 4; ++batch) {
    ASSERT_TRUE(runtime.Submit(batch, MakeBatch(batch * 1000, 1000)).ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return runtime.Counters()[1].in_flight > 0; }));
  runtime.Abort();
  EXPECT_TRUE(sink.reports().empty());
  EXPECT_FALSE(runtime.Submit(9, MakeBatch(0, 1)).ok());
  runtime.Finish();  // harmless after Abort
}

// Abort() while the callback blocks returns only after the callback returned, and
// reports nothing more, even a batch that completed meanwhile.
TEST(RuntimeTest, AbortWaitsForABlockedCallback) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;  // guarded by mu
  bool release = false;  // guarded by mu
  std::atomic<bool> callback_returned{false};
  std::atomic<int> reports{0};
  BatchDone done = [&](BatchId, std::vector<Record>) {
    ++reports;
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    callback_returned = true;
  };
  std::vector<NamedStage> stages;
  stages.push_back(Named("tag", std::make_unique<TagStage>("t")));
  RuntimeOptions options;
  options.max_batches_in_flight = 2;
  Runtime runtime(options, std::move(stages), done);
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 10)).ok());
  ASSERT_TRUE(runtime.Submit(2, MakeBatch(10, 10)).ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWaitLimit, [&] { return entered; }));
  }
  std::atomic<bool> returned_after_callback{false};
  std::thread aborter([&] {
    runtime.Abort();
    returned_after_callback = callback_returned.load();
  });
  // The budget is full, so this blocks until the abort has begun.
  EXPECT_FALSE(runtime.Submit(3, MakeBatch(20, 10)).ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
    cv.notify_all();
  }
  aborter.join();
  EXPECT_TRUE(returned_after_callback.load());
  EXPECT_EQ(reports.load(), 1);
}

// A callback that finds its commit refused may abort the run from inside.
TEST(RuntimeTest, AbortFromInsideTheCallbackStopsReporting) {
  std::atomic<int> reports{0};
  Runtime* runtime_ptr = nullptr;
  BatchDone done = [&](BatchId, std::vector<Record>) {
    if (++reports == 1) runtime_ptr->Abort();  // returns at once
  };
  std::vector<NamedStage> stages;
  stages.push_back(Named("tag", std::make_unique<TagStage>("t")));
  RuntimeOptions options;
  options.max_batches_in_flight = 4;
  Runtime runtime(options, std::move(stages), done);
  runtime_ptr = &runtime;
  ASSERT_TRUE(runtime.Start().ok());
  BatchId batch = 0;
  while (runtime.Submit(batch, MakeBatch(batch * 10, 10)).ok()) ++batch;  // until aborted
  runtime.Finish();  // returns: the run was aborted; joins the threads
  EXPECT_EQ(reports.load(), 1);
}

TEST(RuntimeTest, CountersPerStage) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("first", std::make_unique<TagStage>("a")));
  stages.push_back(Named("fail", std::make_unique<ModFailStage>(10)));
  stages.push_back(Named("last", std::make_unique<DelayAsyncStage>("b", 64, 0)));
  Sink sink;
  Runtime runtime(RuntimeOptions{}, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  for (BatchId batch = 0; batch < 5; ++batch) {
    ASSERT_TRUE(runtime.Submit(batch, MakeBatch(batch * 100, 100)).ok());
  }
  runtime.Finish();
  const auto counters = runtime.Counters();
  ASSERT_EQ(counters.size(), 3u);
  EXPECT_EQ(counters[0].name, "first");
  EXPECT_EQ(counters[2].name, "last");
  for (const auto& c : counters) EXPECT_EQ(c.records_in, 500u) << c.name;
  EXPECT_EQ(counters[0].records_failed, 0u);
  EXPECT_EQ(counters[1].records_failed, 50u);
  EXPECT_EQ(counters[2].records_failed, 0u);
}

// --- batches are in flight at most once; records have deadlines; drops -----------

TEST(RuntimeTest, ABatchSubmittedWhileInFlightIsRefused) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("hold", std::make_unique<HoldingAsyncStage>(100, 1000)));
  Runtime runtime(RuntimeOptions{}, std::move(stages), nullptr);
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 3)).ok());
  Status again = runtime.Submit(1, MakeBatch(0, 3));
  EXPECT_EQ(again.code(), StatusCode::kInternal) << again.ToString();
  EXPECT_NE(again.message().find("batch 1"), std::string::npos) << again.ToString();
  EXPECT_EQ(runtime.Progress().records_in_flight, 3u) << "the second copy not taken";
  runtime.Abort();
}

TEST(RuntimeTest, RecordsPastTheirDeadlineAreGivenBackFailedAsTimeouts) {
  auto hold = std::make_unique<HoldingAsyncStage>(100, 1000, milliseconds(30));
  HoldingAsyncStage* stage = hold.get();
  std::vector<NamedStage> stages;
  stages.push_back(Named("hold", std::move(hold)));
  Sink sink;
  Runtime runtime(RuntimeOptions{}, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(10, 4)).ok());
  ASSERT_TRUE(sink.WaitForBatches(1)) << "the stage never completes them by itself";
  runtime.Finish();
  auto batches = sink.batches();
  ASSERT_EQ(batches[1].size(), 4u);
  for (const Record& record : batches[1]) {
    EXPECT_EQ(record.reason(), FailureReason::kTimeout);
    EXPECT_EQ(record.error(), "held past its deadline") << "the stage's own record";
    EXPECT_FALSE(record.url().empty());
  }
  EXPECT_EQ(stage->abandoned_.load(), 4u);
}

// A stage that does not give a record back at its deadline: the runtime fails a
// record of its own in its place, and discards the stage's late completion.
TEST(RuntimeTest, ARecordAStageKeepsPastItsDeadlineIsReplacedAndTheLateOneDropped) {
  auto hold = std::make_unique<HoldingAsyncStage>(100, 2, milliseconds(30),
                                                  /*gives_back=*/false);
  std::vector<NamedStage> stages;
  stages.push_back(Named("hold", std::move(hold)));
  Sink sink;
  RuntimeOptions options;
  options.chunk_size = 1;
  Runtime runtime(options, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(1, 1)).ok());
  ASSERT_TRUE(sink.WaitForBatches(1));
  auto batches = sink.batches();
  ASSERT_EQ(batches[1].size(), 1u);
  EXPECT_EQ(batches[1][0].id(), 1u);
  EXPECT_EQ(batches[1][0].reason(), FailureReason::kTimeout);
  EXPECT_NE(batches[1][0].error().find("kept the record"), std::string::npos);
  EXPECT_EQ(runtime.Counters()[0].records_abandoned, 1u);

  // The stage still holds item 1; the next record makes it release both. Item 1's
  // late completion must not reach any batch.
  ASSERT_TRUE(runtime.Submit(2, MakeBatch(2, 1)).ok());
  ASSERT_TRUE(sink.WaitForBatches(2));
  runtime.Finish();
  batches = sink.batches();
  ASSERT_EQ(batches[2].size(), 1u);
  EXPECT_EQ(batches[2][0].id(), 2u);
  EXPECT_FALSE(batches[2][0].failed());
  EXPECT_EQ(sink.reports()[1], 1) << "reported once";
}

TEST(RuntimeTest, ADroppedBatchIsNeverReportedAndFinishDoesNotWaitForIt) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("tag", std::make_unique<TagStage>("t")));
  stages.push_back(Named("hold", std::make_unique<HoldingAsyncStage>(100, 1000)));
  Sink sink;
  Runtime runtime(RuntimeOptions{}, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 5)).ok());
  ASSERT_TRUE(runtime.Submit(2, {}).ok());
  ASSERT_TRUE(WaitUntil([&] { return runtime.Counters()[1].in_flight == 5; }));
  EXPECT_TRUE(runtime.DropBatch(1));
  EXPECT_FALSE(runtime.DropBatch(1)) << "dropped already";
  EXPECT_FALSE(runtime.DropBatch(9)) << "never submitted";
  ASSERT_TRUE(WaitUntil([&] { return runtime.Progress().records_draining == 5; }));
  EXPECT_EQ(runtime.Progress().records_in_flight, 0u);
  EXPECT_EQ(runtime.Progress().batches_dropped, 1u);
  runtime.Finish();  // the held records would take an hour: not waited for
  EXPECT_EQ(sink.reports().count(1), 0u);
  EXPECT_EQ(sink.reports().count(2), 1u);
}

// A batch dropped and then submitted again (re-leased) waits until the first
// submission's records are out of the stages: the same item ids are never in
// flight twice.
TEST(RuntimeTest, ADroppedBatchSubmittedAgainWaitsForItsOldRecords) {
  auto hold = std::make_unique<HoldingAsyncStage>(100, 1000, milliseconds(200));
  HoldingAsyncStage* stage = hold.get();
  std::vector<NamedStage> stages;
  stages.push_back(Named("hold", std::move(hold)));
  Sink sink;
  Runtime runtime(RuntimeOptions{}, std::move(stages), sink.Callback());
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 3)).ok());
  ASSERT_TRUE(WaitUntil([&] { return runtime.Counters()[0].in_flight == 3; }));
  ASSERT_TRUE(runtime.DropBatch(1));
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 3)).ok());  // returns once drained
  EXPECT_EQ(stage->abandoned_.load(), 3u) << "the first three reached their deadline";
  ASSERT_TRUE(sink.WaitForBatches(1));
  runtime.Finish();
  EXPECT_EQ(sink.reports()[1], 1);
  EXPECT_EQ(sink.batches()[1].size(), 3u);
  EXPECT_EQ(stage->abandoned_.load(), 6u);
}

// Fails every record's stage: it cannot work at all.
class BrokenAsyncStage final : public AsyncStage {
 public:
  std::size_t max_in_flight() const override { return 10; }
  void Start(Record record, AsyncContext& ctx) override {
    ctx.FailStage(Internal("cannot start its threads"));
    record.Fail(FailureReason::kInternal, "broken");
    ctx.Complete(std::move(record));
  }
  std::chrono::milliseconds record_deadline() const override {
    return std::chrono::hours(1);
  }
  void Abandon(ItemId, AsyncContext&) override {}
};

TEST(RuntimeTest, AStageThatCannotWorkFailsTheRuntimeNotTheItems) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("broken", std::make_unique<BrokenAsyncStage>()));
  Sink sink;
  std::mutex mu;
  std::vector<Status> failures;
  Runtime runtime(RuntimeOptions{}, std::move(stages), sink.Callback(),
                  [&](const Status& error) {
                    std::lock_guard<std::mutex> lock(mu);
                    failures.push_back(error);
                  });
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 3)).ok());
  ASSERT_TRUE(WaitUntil([&] { return !runtime.error().ok(); }));
  EXPECT_NE(runtime.error().message().find("stage broken: cannot start its threads"),
            std::string::npos)
      << runtime.error().ToString();
  Status refused = runtime.Submit(2, MakeBatch(3, 1));
  EXPECT_EQ(refused.code(), StatusCode::kInternal) << refused.ToString();
  runtime.Finish();  // aborted: returns
  EXPECT_TRUE(sink.reports().empty()) << "nothing of a broken run is reported";
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(failures.size(), 1u);
}

TEST(RuntimeTest, CloseInputReleasesASubmitWaitingForTheBudget) {
  std::vector<NamedStage> stages;
  stages.push_back(Named("hold", std::make_unique<HoldingAsyncStage>(100, 1000)));
  RuntimeOptions options;
  options.max_batches_in_flight = 1;
  Runtime runtime(options, std::move(stages), nullptr);
  ASSERT_TRUE(runtime.Start().ok());
  ASSERT_TRUE(runtime.Submit(1, MakeBatch(0, 2)).ok());
  std::optional<Status> second;
  std::thread source([&] { second = runtime.Submit(2, MakeBatch(2, 2)); });
  runtime.CloseInput();
  source.join();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->code(), StatusCode::kCancelled) << second->ToString();
  runtime.Abort();
}

}  // namespace
}  // namespace sluice
