// The Store's behaviour every backend must have (SQLite and PostgreSQL): opening,
// meta, ingest, reading back, summaries. Leasing and commit are in
// store_leases_test.cc; each backend's own checks (files, schema versions, locks)
// in sqlite_store_test.cc and postgres_store_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "src/store/store_test_support.h"

namespace sluice {
namespace {

using ::sluice::testing::MakeItems;
using ::sluice::testing::StoreBackend;
using ::sluice::testing::StoreConformanceTest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// --- Opening -------------------------------------------------------------------------

TEST_P(StoreConformanceTest, CreatesStoreAndReopensIt) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->SetMeta("pipeline", "abc").ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto pipeline = store->GetMeta("pipeline");
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  EXPECT_EQ(pipeline.value(), "abc");
  auto version = store->GetMeta("schema_version");
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version.value(), std::to_string(kStoreSchemaVersion));
}

// Several workers started at once on a new workdir all open (and one creates) the
// same store.
TEST_P(StoreConformanceTest, ConcurrentOpensOfANewStoreAllSucceed) {
  // The empty database is made first (the file needs nothing).
  if (GetParam() == StoreBackend::kPostgres) {
    ASSERT_FALSE(PostgresUrl().empty());
  }
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    threads.emplace_back([&, i] {
      auto store = OpenStore();
      errors[i] = store == nullptr
                      ? "cannot open"
                      : store->SetMeta("opened-" + std::to_string(i), "yes").ToString();
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(errors, ::testing::Each("ok"));
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    EXPECT_EQ(store->GetMeta("opened-" + std::to_string(i)).value(), "yes");
  }
}

TEST_P(StoreConformanceTest, MetaValuesAreReplacedAndSchemaVersionIsReserved) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto missing = store->GetMeta("nothing");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing.value().has_value());
  ASSERT_TRUE(store->SetMeta("k", "1").ok());
  ASSERT_TRUE(store->SetMeta("k", "2").ok());
  EXPECT_EQ(store->GetMeta("k").value(), "2");
  Status status = store->SetMeta("schema_version", "9");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->GetMeta("schema_version").value(), "1");
}

TEST_P(StoreConformanceTest, BeginInputFindsAnInputByContentNotName) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto first = store->BeginInput({"a.txt", 100, "d1"});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->complete);
  EXPECT_EQ(first->lines_done, 0u);
  EXPECT_EQ(first->first_path, "a.txt");
  ASSERT_TRUE(
      store->AppendItems(first->input_id, MakeItems(3), {}, 4, 10, {{"main"}}).ok());

  auto renamed = store->BeginInput({"renamed.txt", 100, "d1"});
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->input_id, first->input_id);
  EXPECT_EQ(renamed->first_path, "a.txt");
  EXPECT_EQ(renamed->lines_done, 4u);

  auto other = store->BeginInput({"b.txt", 100, "d2"});
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->input_id, first->input_id);

  ASSERT_TRUE(store->FinishInput(first->input_id, 5).ok());
  auto finished = store->BeginInput({"a.txt", 100, "d1"});
  ASSERT_TRUE(finished.ok());
  EXPECT_TRUE(finished->complete);
  EXPECT_EQ(finished->lines_done, 5u);

  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->inputs, 2u);
  EXPECT_EQ(summary->inputs_complete, 1u);
  EXPECT_EQ(summary->items, 3u);
  EXPECT_EQ(store->FinishInput(999, 1).code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, BatchesAreCutPerCallWithDenseIdsAcrossInputs) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Ingest(*store, MakeItems(2500), 1000);
  Ingest(*store, MakeItems(1200, 2500), 1000);

  auto leases = store->LeaseBatches("main", "w", 10, std::chrono::seconds(30));
  ASSERT_TRUE(leases.ok()) << leases.status().ToString();
  std::vector<std::tuple<BatchId, ItemId, std::uint32_t>> ranges;
  for (const Lease& lease : *leases) {
    ranges.emplace_back(lease.batch_id, lease.first_item, lease.item_count);
  }
  EXPECT_THAT(ranges, ElementsAre(std::tuple(1, 1, 1000), std::tuple(2, 1001, 1000),
                                  std::tuple(3, 2001, 500), std::tuple(4, 2501, 1000),
                                  std::tuple(5, 3501, 200)));

  // The partial last batch of the first input holds exactly that input's tail.
  auto records = store->ReadBatchItems((*leases)[2]);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 500u);
  EXPECT_EQ(records->front().id(), 2001u);
  EXPECT_EQ(records->front().url(), "http://host-2000.example/img/2000.jpg");
  EXPECT_EQ(records->back().id(), 2500u);
  auto next_input = store->ReadBatchItems((*leases)[3]);
  ASSERT_TRUE(next_input.ok());
  EXPECT_EQ(next_input->front().url(), "http://host-2500.example/img/2500.jpg");

  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->items, 3700u);
  EXPECT_EQ(summary->batches_leased, 5u);
}

TEST_P(StoreConformanceTest, RejectsAreKeptAndListedInInputThenLineOrder) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto first = store->BeginInput({"first.txt", 10, "a"});
  auto second = store->BeginInput({"second.txt", 10, "b"});
  ASSERT_TRUE(first.ok() && second.ok());
  std::vector<RejectedLine> second_rejects = {{4, "invalid UTF-8", "\\xff"}};
  std::vector<RejectedLine> first_rejects = {{2, "too long", "aaaa"},
                                             {9, "empty url", ""}};
  ASSERT_TRUE(
      store
          ->AppendItems(second->input_id, MakeItems(1), second_rejects, 5, 10, {{"main"}})
          .ok());
  ASSERT_TRUE(
      store->AppendItems(first->input_id, MakeItems(1), first_rejects, 9, 10, {{"main"}})
          .ok());

  std::vector<std::tuple<std::string, std::uint64_t, std::string>> listed;
  Status status =
      store->ListRejects([&](std::string_view path, const RejectedLine& line) {
        listed.emplace_back(std::string(path), line.line, line.reason);
        return Status::Ok();
      });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_THAT(listed, ElementsAre(std::tuple("first.txt", 2, "too long"),
                                  std::tuple("first.txt", 9, "empty url"),
                                  std::tuple("second.txt", 4, "invalid UTF-8")));
  EXPECT_EQ(store->Summarize("main")->rejected_lines, 3u);
  EXPECT_EQ(store->BeginInput({"first.txt", 10, "a"})->lines_done, 9u);
}

TEST_P(StoreConformanceTest, AppendToAnUnknownInputWritesNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Status status = store->AppendItems(42, MakeItems(5), {}, 5, 10, {{"main"}});
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "store: append items of input 42: no such input");
  EXPECT_EQ(store->Summarize("main")->items, 0u);
}

TEST_P(StoreConformanceTest, AppendWithOtherStageGroupsIsRefusedAndWritesNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Ingest(*store, MakeItems(5), 10, {"fetch", "faces"});
  auto input = store->BeginInput({"more.txt", 1, "x"});
  ASSERT_TRUE(input.ok());
  Status status =
      store->AppendItems(input->input_id, MakeItems(5), {}, 5, 10, {{"fetch"}});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("[fetch, faces], not [fetch]"));
  EXPECT_EQ(store->Summarize("fetch")->items, 5u);
  EXPECT_EQ(store->BeginInput({"more.txt", 1, "x"})->lines_done, 0u);
}

TEST_P(StoreConformanceTest, ReadBatchItemsGivesColumnsInTheirInputOrder) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<ItemRow> items = {{"http://a/1.jpg", R"({"zeta":"z1","alpha":"a1"})"},
                                {"http://a/2.jpg", ""}};
  Ingest(*store, items, 10);
  auto leases = store->LeaseBatches("main", "w", 1, std::chrono::seconds(30));
  ASSERT_TRUE(leases.ok() && leases->size() == 1);
  auto records = store->ReadBatchItems(leases->front());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_THAT((*records)[0].columns(),
              ElementsAre(Pair("zeta", "z1"), Pair("alpha", "a1")));
  EXPECT_TRUE((*records)[1].columns().empty());
}

TEST_P(StoreConformanceTest, ColumnsThatAreNotAnObjectOfStringsAreCorruption) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Ingest(*store, {{"http://a/1.jpg", R"({"width":640})"}}, 10);
  auto leases = store->LeaseBatches("main", "w", 1, std::chrono::seconds(30));
  ASSERT_TRUE(leases.ok() && leases->size() == 1);
  auto records = store->ReadBatchItems(leases->front());
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(
      records.status().message(),
      "store: read batch 1 of group main: item 1: column width is not a JSON string");
}

TEST_P(StoreConformanceTest, ColumnsThatAreNotJsonAreCorruptionNotACrash) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Ingest(*store, {{"http://a/1.jpg", R"({"caption": "unterminated)"}}, 10);
  auto leases = store->LeaseBatches("main", "w", 1, std::chrono::seconds(30));
  ASSERT_TRUE(leases.ok() && leases->size() == 1);
  auto records = store->ReadBatchItems(leases->front());
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(records.status().message(),
              HasSubstr("item 1: columns are not a JSON object"));
}

// --- Reading back --------------------------------------------------------------------

TEST_P(StoreConformanceTest, ExportStreamsEveryItemInIdOrderWithItsResult) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  // More rows than one export chunk, so that paging is exercised.
  Ingest(*store, MakeItems(2500), 1000);
  auto leases = store->LeaseBatches("main", "w", 2, std::chrono::seconds(30));
  ASSERT_TRUE(leases.ok() && leases->size() == 2);
  auto records = store->ReadBatchItems((*leases)[1]);
  ASSERT_TRUE(records.ok());
  auto results = ResultsFor(*records, FailureReason::kNone, R"({"width":3})");
  results[0].reason = FailureReason::kHttp4xx;
  results[0].error = "HTTP 404";
  results[0].fields_json.clear();
  ASSERT_TRUE(store->CommitBatch((*leases)[1], results).ok());

  std::vector<ExportRow> rows;
  Status status = store->ExportRows("main", [&](const ExportRow& row) {
    rows.push_back(row);
    // The callback runs without the store's lock: it may use the store.
    return store->GetMeta("anything").ToStatus();
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(rows.size(), 2500u);
  for (std::size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(rows[i].id, i + 1);
  EXPECT_FALSE(rows[999].has_result);
  EXPECT_EQ(rows[999].url, "http://host-999.example/img/999.jpg");
  EXPECT_TRUE(rows[1000].has_result);
  EXPECT_EQ(rows[1000].reason, FailureReason::kHttp4xx);
  EXPECT_EQ(rows[1000].error, "HTTP 404");
  EXPECT_EQ(rows[1000].fields_json, "");
  EXPECT_TRUE(rows[1999].has_result);
  EXPECT_EQ(rows[1999].reason, FailureReason::kNone);
  EXPECT_EQ(rows[1999].fields_json, R"({"width":3})");
  EXPECT_FALSE(rows[2000].has_result);

  // Another group's results are not this group's.
  std::size_t with_result = 0;
  ASSERT_TRUE(store
                  ->ExportRows("other",
                               [&](const ExportRow& row) {
                                 with_result += row.has_result ? 1 : 0;
                                 return Status::Ok();
                               })
                  .ok());
  EXPECT_EQ(with_result, 0u);
}

TEST_P(StoreConformanceTest, ExportStopsAtTheCallbacksError) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Ingest(*store, MakeItems(20), 10);
  int calls = 0;
  Status status = store->ExportRows("main", [&](const ExportRow&) {
    return ++calls == 5 ? Cancelled("enough") : Status::Ok();
  });
  EXPECT_EQ(status.code(), StatusCode::kCancelled);
  EXPECT_EQ(status.message(), "enough");
  EXPECT_EQ(calls, 5);
}

TEST_P(StoreConformanceTest, SummaryCountsResultsAndFailuresByReasonName) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Ingest(*store, MakeItems(10), 5);
  auto leases = store->LeaseBatches("main", "w", 1, std::chrono::seconds(30));
  ASSERT_TRUE(leases.ok() && leases->size() == 1);
  auto records = store->ReadBatchItems(leases->front());
  ASSERT_TRUE(records.ok());
  auto results = ResultsFor(*records);
  results[0].reason = FailureReason::kDns;
  results[1].reason = FailureReason::kDns;
  results[2].reason = FailureReason::kTooSmall;
  ASSERT_TRUE(store->CommitBatch(leases->front(), results).ok());

  auto summary = store->Summarize("main");
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->items, 10u);
  EXPECT_EQ(summary->batches_done, 1u);
  EXPECT_EQ(summary->batches_pending, 1u);
  EXPECT_EQ(summary->batches_leased, 0u);
  EXPECT_EQ(summary->results_ok, 2u);
  EXPECT_EQ(summary->results_failed, 3u);
  EXPECT_THAT(summary->failures, ElementsAre(Pair("dns", 2), Pair("too_small", 1)));
}

// --- Worker reports and the time series -------------------------------------------

// A report replaces the worker's previous one (kept for the rate); a sample is kept
// of its first report, then at most every kWorkerSampleEveryMs, and of its last.
TEST_P(StoreConformanceTest, ReportsReplaceEachOtherAndSamplesKeepTheirSeries) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  WorkerReport report;
  report.owner = "w1";
  report.group = "main";
  report.host = "box";
  report.started_ms = clock_.NowMs();
  report.counters_json = R"({"a":1})";
  report.sample_json = R"({"failures{reason=dns}":0})";
  const std::int64_t start = clock_.NowMs();
  auto send = [&](std::uint64_t committed, bool stopped = false) {
    report.items_committed = committed;
    report.items_failed = committed / 10;
    report.stopped = stopped;
    report.sample_json = R"({"failures{reason=dns}":)" + std::to_string(committed / 10) + "}";
    Status sent = store->ReportWorker(report);
    ASSERT_TRUE(sent.ok()) << sent.ToString();
  };
  send(0);                           // the first: a sample
  clock_.Advance(5'000);
  send(50);                          // 5 s after: none
  clock_.Advance(kWorkerSampleEveryMs);
  send(200);                         // the interval after the last sample: one
  clock_.Advance(1'000);
  send(210, /*stopped=*/true);       // the last: one
  report.owner = "w2";
  report.group = "other";
  send(7);

  auto workers = store->ListWorkers();
  ASSERT_TRUE(workers.ok()) << workers.status().ToString();
  ASSERT_EQ(workers->size(), 2u);
  const WorkerReport& w1 = (*workers)[0];  // by group: main, then other
  EXPECT_EQ(w1.group, "main");
  EXPECT_EQ(w1.items_committed, 210u);
  EXPECT_EQ(w1.previous_items, 200u);
  EXPECT_EQ(w1.updated_ms - w1.previous_ms, 1'000);
  EXPECT_TRUE(w1.stopped);
  EXPECT_EQ(w1.counters_json, R"({"a":1})");

  auto samples = store->ListSamples("main");
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  ASSERT_EQ(samples->size(), 3u);
  EXPECT_EQ((*samples)[0].at_ms, start);
  EXPECT_EQ((*samples)[0].items_committed, 0u);
  EXPECT_EQ((*samples)[1].at_ms, start + 5'000 + kWorkerSampleEveryMs);
  EXPECT_EQ((*samples)[1].items_committed, 200u);
  EXPECT_EQ((*samples)[1].items_failed, 20u);
  EXPECT_EQ((*samples)[1].counters_json, R"({"failures{reason=dns}":20})");
  EXPECT_EQ((*samples)[2].items_committed, 210u);
  EXPECT_EQ((*samples)[2].owner, "w1");
  auto all = store->ListSamples("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ(all->back().group, "other");

  // Samples older than kWorkerSampleKeepMs go when another is written.
  clock_.Advance(kWorkerSampleKeepMs + 1);
  send(8);
  auto kept = store->ListSamples("");
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ(kept->front().items_committed, 8u);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest,
                         ::testing::Values(StoreBackend::kSqlite,
                                           StoreBackend::kPostgres),
                         ::sluice::testing::StoreBackendName);

}  // namespace
}  // namespace sluice
