// Tests of leasing every backend must pass (SQLite and PostgreSQL): lease, read,
// commit, renew, release, expiry, fencing tokens (the zombie worker), concurrent
// leasing, stage groups and retry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "src/store/store_test_support.h"

namespace sluice {
namespace {

using ::sluice::testing::MakeItems;
using ::sluice::testing::StoreBackend;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr std::chrono::milliseconds kLeaseTime{30'000};

class StoreLeasesTest : public ::sluice::testing::StoreConformanceTest {
 protected:
  void SetUp() override {
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }

  // Leases exactly one batch of `group` for `owner`, or fails the test.
  Lease LeaseOne(Store& store, std::string_view owner, std::string_view group = "main",
                 std::chrono::milliseconds duration = kLeaseTime) {
    auto leases = store.LeaseBatches(group, owner, 1, duration);
    if (!leases.ok() || leases->size() != 1) {
      ADD_FAILURE() << "no lease: " << leases.ToStatus().ToString();
      return Lease{};
    }
    return leases->front();
  }

  std::vector<Record> Read(Store& store, const Lease& lease) {
    auto records = store.ReadBatchItems(lease);
    EXPECT_TRUE(records.ok()) << records.ToStatus().ToString();
    return records.ok() ? std::move(records).value() : std::vector<Record>{};
  }

  // item id -> fields_json of every result of `group`.
  std::map<ItemId, std::string> ResultFields(Store& store,
                                             std::string_view group = "main") {
    std::map<ItemId, std::string> fields;
    Status status = store.ExportRows(group, [&](const ExportRow& row) {
      if (row.has_result) fields[row.id] = row.fields_json;
      return Status::Ok();
    });
    EXPECT_TRUE(status.ok()) << status.ToString();
    return fields;
  }

  // Checks that the summary's result counts (kept as counters) match the rows.
  void ExpectCountsMatchRows(std::string_view group = "main") {
    std::uint64_t ok = 0;
    std::uint64_t filtered = 0;
    std::map<std::string, std::uint64_t> failures;
    Status status = store_->ExportRows(group, [&](const ExportRow& row) {
      if (row.has_result && row.reason == FailureReason::kNone) ++ok;
      if (row.has_result && row.reason == FailureReason::kFiltered) ++filtered;
      if (row.has_result && IsFailure(row.reason)) {
        ++failures[std::string(FailureReasonName(row.reason))];
      }
      return Status::Ok();
    });
    ASSERT_TRUE(status.ok()) << status.ToString();
    StoreSummary summary = Summary(group);
    EXPECT_EQ(summary.results_ok, ok);
    EXPECT_EQ(summary.results_filtered, filtered);
    EXPECT_EQ(summary.failures, failures);
  }

  StoreSummary Summary(std::string_view group = "main") {
    auto summary = store_->Summarize(group);
    EXPECT_TRUE(summary.ok()) << summary.ToStatus().ToString();
    return summary.ok() ? summary.value() : StoreSummary{};
  }

  std::unique_ptr<Store> store_;
};

TEST_P(StoreLeasesTest, LeaseReadCommitHappyPath) {
  Ingest(*store_, MakeItems(10), 5);
  Lease lease = LeaseOne(*store_, "worker-1");
  EXPECT_EQ(lease.batch_id, 1u);
  EXPECT_EQ(lease.group, "main");
  EXPECT_EQ(lease.owner, "worker-1");
  EXPECT_EQ(lease.token, 1u);
  EXPECT_EQ(lease.first_item, 1u);
  EXPECT_EQ(lease.item_count, 5u);
  EXPECT_EQ(lease.expires_at_ms, clock_.NowMs() + kLeaseTime.count());

  std::vector<Record> records = Read(*store_, lease);
  ASSERT_EQ(records.size(), 5u);
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].id(), i + 1);
    EXPECT_EQ(records[i].url(), MakeItems(1, i)[0].url);
  }
  Status commit =
      store_->CommitBatch(lease, ResultsFor(records, FailureReason::kNone, "{}"));
  ASSERT_TRUE(commit.ok()) << commit.ToString();

  StoreSummary summary = Summary();
  EXPECT_EQ(summary.batches_done, 1u);
  EXPECT_EQ(summary.batches_pending, 1u);
  EXPECT_EQ(summary.results_ok, 5u);
  EXPECT_EQ(ResultFields(*store_).size(), 5u);
  // The lease ended with its commit.
  EXPECT_EQ(store_->ReadBatchItems(lease).ToStatus().code(), StatusCode::kStaleLease);
  EXPECT_EQ(LeaseOne(*store_, "worker-1").batch_id, 2u);
  EXPECT_THAT(store_->LeaseBatches("main", "worker-1", 5, kLeaseTime).value(), IsEmpty());
}

// A commit whose outcome the caller could not learn (the connection dropped during
// COMMIT) is retried with the same lease: accepted, and nothing is written twice.
TEST_P(StoreLeasesTest, ACommitRetriedWithItsOwnLeaseIsAcceptedAndWritesNothing) {
  Ingest(*store_, MakeItems(6), 3);
  Lease lease = LeaseOne(*store_, "w");
  std::vector<ResultRow> results =
      ResultsFor(Read(*store_, lease), FailureReason::kNone, "A");
  ASSERT_TRUE(store_->CommitBatch(lease, results).ok());
  int published = 0;
  results[0].fields_json = "changed";
  Status again = store_->CommitBatch(lease, results, [&] {
    ++published;
    return Status::Ok();
  });
  ASSERT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(published, 0) << "nothing is published again";
  EXPECT_THAT(ResultFields(*store_),
              ElementsAre(Pair(1, "A"), Pair(2, "A"), Pair(3, "A")));
  EXPECT_EQ(Summary().batches_done, 1u);
  EXPECT_EQ(Summary().results_ok, 3u);
  // Only the lease that committed: an older token of the batch is still refused.
  Lease older = lease;
  older.token = lease.token - 1;
  EXPECT_EQ(store_->CommitBatch(older, results).code(), StatusCode::kStaleLease);
  ExpectCountsMatchRows();
}

// What the next stage group reads to find the payload a commit made valid.
TEST_P(StoreLeasesTest, CommittedTokenIsTheTokenOfTheCommitOnly) {
  Ingest(*store_, MakeItems(4), 4);
  Lease first = LeaseOne(*store_, "a", "main", std::chrono::milliseconds(1000));
  EXPECT_EQ(store_->CommittedToken("main", first.batch_id).value(), std::nullopt);
  clock_.Advance(1001);
  Lease second = LeaseOne(*store_, "b");
  ASSERT_TRUE(store_->CommitBatch(second, ResultsFor(Read(*store_, second))).ok());
  EXPECT_EQ(store_->CommittedToken("main", first.batch_id).value(),
            std::optional<std::uint64_t>(second.token));
  EXPECT_EQ(store_->CommittedToken("main", 99).value(), std::nullopt);
  EXPECT_EQ(store_->CommittedToken("no-such-group", first.batch_id).value(), std::nullopt);
}

TEST_P(StoreLeasesTest, StaleTokenCannotCommitOrRenew) {
  Ingest(*store_, MakeItems(5), 5);
  Lease old_lease = LeaseOne(*store_, "a", "main", std::chrono::milliseconds(1000));
  clock_.Advance(1001);
  Lease new_lease = LeaseOne(*store_, "b");
  ASSERT_EQ(new_lease.batch_id, old_lease.batch_id);
  EXPECT_EQ(new_lease.token, 2u);

  auto lost = store_->RenewLeases(std::vector<Lease>{old_lease, new_lease}, kLeaseTime);
  ASSERT_TRUE(lost.ok()) << lost.ToStatus().ToString();
  EXPECT_THAT(lost.value(), ElementsAre(old_lease.batch_id));

  Status commit = store_->CommitBatch(old_lease, {});
  EXPECT_EQ(commit.code(), StatusCode::kStaleLease);
  EXPECT_EQ(commit.message(),
            "store: commit batch 1 of group main: lease token 1 is stale "
            "(current 2)");
  EXPECT_EQ(store_->ReadBatchItems(old_lease).ToStatus().code(), StatusCode::kStaleLease);
}

// A worker whose lease expired (a "zombie": paused, partitioned) comes back after
// another worker took the batch over. Its late commit must not touch the new owner's
// results, whether the new owner has committed yet or not.
TEST_P(StoreLeasesTest, ZombieCannotCommitOverTheNewOwnersResults) {
  Ingest(*store_, MakeItems(8), 4);
  std::unique_ptr<Store> worker_b = OpenStore();  // another process on the same file
  ASSERT_NE(worker_b, nullptr);

  Lease a = LeaseOne(*store_, "worker-a", "main", std::chrono::milliseconds(1000));
  std::vector<Record> a_records = Read(*store_, a);
  clock_.Advance(1001);
  Lease b = LeaseOne(*worker_b, "worker-b");
  ASSERT_EQ(b.batch_id, a.batch_id);
  EXPECT_GT(b.token, a.token);
  std::vector<Record> b_records = Read(*worker_b, b);
  ASSERT_TRUE(
      worker_b->CommitBatch(b, ResultsFor(b_records, FailureReason::kNone, "B")).ok());

  Status late = store_->CommitBatch(a, ResultsFor(a_records, FailureReason::kNone, "A"));
  EXPECT_EQ(late.code(), StatusCode::kStaleLease);
  EXPECT_THAT(late.message(), HasSubstr("lease token 1 is stale (current 2)"));
  EXPECT_THAT(ResultFields(*store_),
              ElementsAre(Pair(1, "B"), Pair(2, "B"), Pair(3, "B"), Pair(4, "B")));
  EXPECT_EQ(Summary().batches_done, 1u);
}

TEST_P(StoreLeasesTest, ZombieIsRefusedBeforeTheNewOwnerCommits) {
  Ingest(*store_, MakeItems(4), 4);
  std::unique_ptr<Store> worker_b = OpenStore();
  ASSERT_NE(worker_b, nullptr);
  Lease a = LeaseOne(*store_, "worker-a", "main", std::chrono::milliseconds(1000));
  std::vector<Record> a_records = Read(*store_, a);
  clock_.Advance(5000);
  Lease b = LeaseOne(*worker_b, "worker-b");

  Status late = store_->CommitBatch(a, ResultsFor(a_records, FailureReason::kNone, "A"));
  EXPECT_EQ(late.code(), StatusCode::kStaleLease);
  EXPECT_THAT(ResultFields(*store_), IsEmpty());
  EXPECT_EQ(Summary().batches_leased, 1u);

  // The new owner still sees every item and can commit them.
  std::vector<Record> b_records = Read(*worker_b, b);
  EXPECT_EQ(b_records.size(), 4u);
  ASSERT_TRUE(
      worker_b->CommitBatch(b, ResultsFor(b_records, FailureReason::kNone, "B")).ok());
  EXPECT_EQ(ResultFields(*store_).size(), 4u);
}

TEST_P(StoreLeasesTest, ExpiredLeaseNobodyTookCanStillRenewAndCommit) {
  Ingest(*store_, MakeItems(4), 4);
  Lease lease = LeaseOne(*store_, "slow", "main", std::chrono::milliseconds(1000));
  clock_.Advance(2000);
  auto lost = store_->RenewLeases(std::vector<Lease>{lease}, kLeaseTime);
  ASSERT_TRUE(lost.ok());
  EXPECT_THAT(lost.value(), IsEmpty());
  EXPECT_EQ(Summary().batches_leased, 1u);  // renewed: no longer expired
  Status commit = store_->CommitBatch(lease, ResultsFor(Read(*store_, lease)));
  EXPECT_TRUE(commit.ok()) << commit.ToString();
}

TEST_P(StoreLeasesTest, RenewKeepsOthersFromTakingTheBatch) {
  Ingest(*store_, MakeItems(4), 4);
  std::unique_ptr<Store> other = OpenStore();
  ASSERT_NE(other, nullptr);
  Lease lease = LeaseOne(*store_, "w", "main", std::chrono::milliseconds(1000));
  clock_.Advance(900);
  ASSERT_THAT(
      store_->RenewLeases(std::vector<Lease>{lease}, std::chrono::milliseconds(1000))
          .value(),
      IsEmpty());
  clock_.Advance(900);  // past the first expiry, not the renewed one
  EXPECT_THAT(other->LeaseBatches("main", "other", 1, kLeaseTime).value(), IsEmpty());
  clock_.Advance(101);
  EXPECT_EQ(LeaseOne(*other, "other").token, 2u);
}

TEST_P(StoreLeasesTest, ExpiredLeasesReturnToPendingLowestIdFirst) {
  Ingest(*store_, MakeItems(30), 10);
  auto first_two = store_->LeaseBatches("main", "w", 2, std::chrono::milliseconds(1000));
  ASSERT_TRUE(first_two.ok() && first_two->size() == 2);
  StoreSummary summary = Summary();
  EXPECT_EQ(summary.batches_leased, 2u);
  EXPECT_EQ(summary.batches_pending, 1u);

  clock_.Advance(1000);  // at the expiry instant the lease still holds
  EXPECT_EQ(Summary().batches_leased, 2u);
  clock_.Advance(1);
  summary = Summary();
  EXPECT_EQ(summary.batches_leased, 0u);
  EXPECT_EQ(summary.batches_pending, 3u);

  auto again = store_->LeaseBatches("main", "w2", 3, kLeaseTime);
  ASSERT_TRUE(again.ok());
  std::vector<std::pair<BatchId, std::uint64_t>> ids_and_tokens;
  for (const Lease& lease : *again) {
    ids_and_tokens.emplace_back(lease.batch_id, lease.token);
  }
  EXPECT_THAT(ids_and_tokens, ElementsAre(Pair(1, 2), Pair(2, 2), Pair(3, 1)));
}

// The holder of an expired lease may still be working on its batch (its renewal
// came late): leasing the batch to it again would make it run the batch twice.
TEST_P(StoreLeasesTest, AnExpiredLeaseGoesToAnotherOwnerNeverBackToItsHolder) {
  Ingest(*store_, MakeItems(20), 10);
  Lease held = LeaseOne(*store_, "w", "main", std::chrono::milliseconds(1000));
  clock_.Advance(1001);
  auto mine = store_->LeaseBatches("main", "w", 5, kLeaseTime);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u) << "only the pending batch, not its own expired one";
  EXPECT_EQ((*mine)[0].batch_id, 2u);
  EXPECT_EQ(Summary().batches_pending, 1u) << "the expired one counts as pending";

  Lease other = LeaseOne(*store_, "other");
  EXPECT_EQ(other.batch_id, held.batch_id);
  EXPECT_EQ(other.token, held.token + 1);

  // Released, it is pending again, and its former holder may take it.
  ASSERT_TRUE(store_->ReleaseBatch(other).ok());
  Lease back = LeaseOne(*store_, "w");
  EXPECT_EQ(back.batch_id, held.batch_id);
  EXPECT_EQ(back.token, held.token + 2);
}

// The publish step (the outputs' renames) runs inside the commit, after the token
// check: a stale lease never runs it, and its error leaves the batch uncommitted.
TEST_P(StoreLeasesTest, CommitRunsThePublishStepOnlyForACurrentLease) {
  Ingest(*store_, MakeItems(4), 4);
  Lease lease = LeaseOne(*store_, "w");
  const auto results = ResultsFor(Read(*store_, lease));
  int published = 0;
  Status failed = store_->CommitBatch(lease, results, [&] {
    ++published;
    return IoError("disk full");
  });
  EXPECT_EQ(failed.code(), StatusCode::kIoError);
  EXPECT_THAT(failed.message(), HasSubstr("publish outputs: disk full"));
  EXPECT_EQ(Summary().batches_done, 0u) << "rolled back";
  EXPECT_THAT(ResultFields(*store_), IsEmpty());

  Lease stale = lease;
  stale.token = lease.token + 7;
  Status refused = store_->CommitBatch(stale, results, [&] {
    ++published;
    return Status::Ok();
  });
  EXPECT_EQ(refused.code(), StatusCode::kStaleLease);
  EXPECT_EQ(published, 1) << "a stale lease never publishes";

  Status committed = store_->CommitBatch(lease, results, [&] {
    ++published;
    return Status::Ok();
  });
  EXPECT_TRUE(committed.ok()) << committed.ToString();
  EXPECT_EQ(published, 2);
  EXPECT_EQ(Summary().batches_done, 1u);
}

TEST_P(StoreLeasesTest, ConcurrentLeasingNeverHandsOutABatchTwice) {
  constexpr int kBatches = 200;
  Ingest(*store_, MakeItems(kBatches * 2), 2);
  std::unique_ptr<Store> second = OpenStore();
  ASSERT_NE(second, nullptr);

  std::mutex mutex;
  std::map<BatchId, int> times_leased;
  std::vector<std::string> errors;
  auto work = [&](Store* store, int thread) {
    const std::string owner = "w" + std::to_string(thread);
    while (true) {
      auto leases = store->LeaseBatches("main", owner, 1 + thread % 3, kLeaseTime);
      if (!leases.ok() || leases->empty()) {
        if (!leases.ok()) {
          std::lock_guard lock(mutex);
          errors.push_back(leases.status().ToString());
        }
        return;
      }
      for (const Lease& lease : *leases) {
        {
          std::lock_guard lock(mutex);
          ++times_leased[lease.batch_id];
        }
        auto records = store->ReadBatchItems(lease);
        Status status = records.ok() ? store->CommitBatch(lease, ResultsFor(*records))
                                     : records.status();
        if (!status.ok()) {
          std::lock_guard lock(mutex);
          errors.push_back(status.ToString());
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back(work, t % 2 ? second.get() : store_.get(), t);
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_THAT(errors, IsEmpty());
  ASSERT_EQ(times_leased.size(), static_cast<std::size_t>(kBatches));
  for (const auto& [batch, times] : times_leased) {
    EXPECT_EQ(times, 1) << "batch " << batch;
  }
  StoreSummary summary = Summary();
  EXPECT_EQ(summary.batches_done, static_cast<std::uint64_t>(kBatches));
  EXPECT_EQ(summary.results_ok, static_cast<std::uint64_t>(kBatches * 2));
}

TEST_P(StoreLeasesTest, CommittingAGroupsBatchMakesItPendingForTheNextGroup) {
  Ingest(*store_, MakeItems(20), 10, {"fetch", "faces"});
  EXPECT_THAT(store_->LeaseBatches("faces", "g", 5, kLeaseTime).value(), IsEmpty());
  EXPECT_EQ(Summary("faces").batches_pending, 2u);  // waiting counts as pending

  Lease fetch = LeaseOne(*store_, "f", "fetch");
  ASSERT_TRUE(store_->CommitBatch(fetch, ResultsFor(Read(*store_, fetch))).ok());

  auto faces = store_->LeaseBatches("faces", "g", 5, kLeaseTime);
  ASSERT_TRUE(faces.ok());
  ASSERT_EQ(faces->size(), 1u);  // batch 2 still waits for fetch
  EXPECT_EQ(faces->front().batch_id, fetch.batch_id);
  // Each group has its own results for the same items.
  std::vector<Record> records = Read(*store_, faces->front());
  EXPECT_EQ(records.size(), 10u);
  ASSERT_TRUE(store_->CommitBatch(faces->front(), ResultsFor(records)).ok());
  EXPECT_EQ(Summary("faces").batches_done, 1u);
  EXPECT_EQ(Summary("faces").results_ok, 10u);
  EXPECT_EQ(Summary("fetch").results_ok, 10u);
  EXPECT_THAT(store_->LeaseBatches("no-such-group", "g", 5, kLeaseTime).value(),
              IsEmpty());
}

TEST_P(StoreLeasesTest, RetryFailedPutsBackOnlyTheGivenReason) {
  Ingest(*store_, MakeItems(6), 6);
  Lease lease = LeaseOne(*store_, "w");
  std::vector<ResultRow> results = ResultsFor(Read(*store_, lease));
  results[1].reason = FailureReason::kDns;
  results[3].reason = FailureReason::kDns;
  results[4].reason = FailureReason::kTimeout;
  results[5].reason = FailureReason::kTimeout;
  ASSERT_TRUE(store_->CommitBatch(lease, results).ok());

  auto put_back = store_->RetryFailed("main", FailureReason::kDns);
  ASSERT_TRUE(put_back.ok()) << put_back.ToStatus().ToString();
  EXPECT_EQ(put_back.value(), 2u);
  StoreSummary summary = Summary();
  EXPECT_THAT(summary.failures, ElementsAre(Pair("timeout", 2)));
  EXPECT_EQ(summary.results_ok, 2u);
  EXPECT_EQ(summary.batches_pending, 1u);
  EXPECT_EQ(summary.batches_done, 0u);
  ExpectCountsMatchRows();

  Lease retry = LeaseOne(*store_, "w");
  EXPECT_EQ(retry.batch_id, lease.batch_id);
  std::vector<Record> again = Read(*store_, retry);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].id(), 2u);
  EXPECT_EQ(again[1].id(), 4u);
  ASSERT_TRUE(store_->CommitBatch(retry, ResultsFor(again)).ok());
  EXPECT_EQ(Summary().results_ok, 4u);

  ExpectCountsMatchRows();
  EXPECT_EQ(store_->RetryFailed("main", std::nullopt).value(), 2u);
  ExpectCountsMatchRows();
  std::vector<Record> rest = Read(*store_, LeaseOne(*store_, "w"));
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].id(), 5u);
  EXPECT_EQ(store_->RetryFailed("main", FailureReason::kNone).ToStatus().code(),
            StatusCode::kInvalidArgument);
}

// Items a filter dropped are results, not failures: counted apart, never retried
// unless asked for by name.
TEST_P(StoreLeasesTest, FilteredItemsAreCountedApartAndNotRetried) {
  Ingest(*store_, MakeItems(4), 4);
  Lease lease = LeaseOne(*store_, "w");
  std::vector<ResultRow> results = ResultsFor(Read(*store_, lease));
  results[1].reason = FailureReason::kFiltered;
  results[2].reason = FailureReason::kFiltered;
  results[3].reason = FailureReason::kDns;
  ASSERT_TRUE(store_->CommitBatch(lease, results).ok());
  StoreSummary summary = Summary();
  EXPECT_EQ(summary.results_ok, 1u);
  EXPECT_EQ(summary.results_failed, 1u);
  EXPECT_EQ(summary.results_filtered, 2u);
  EXPECT_EQ(summary.results(), 4u);
  EXPECT_THAT(summary.failures, ElementsAre(Pair("dns", 1)));

  EXPECT_EQ(store_->RetryFailed("main", std::nullopt).value(), 1u);  // the dns one
  ExpectCountsMatchRows();
  EXPECT_EQ(Summary().results_filtered, 2u);
  EXPECT_EQ(store_->RetryFailed("main", FailureReason::kFiltered).value(), 2u);
  ExpectCountsMatchRows();
  EXPECT_EQ(Summary().results(), 1u);
}

// A worker holding a batch read its items before the retry deleted more results in
// it: its commit must be refused, so that the batch is redone with every item.
TEST_P(StoreLeasesTest, RetryFailedRevokesALeaseOnTheBatch) {
  Ingest(*store_, MakeItems(2), 2);
  Lease lease = LeaseOne(*store_, "w");
  std::vector<ResultRow> results = ResultsFor(Read(*store_, lease));
  results[0].reason = FailureReason::kDecode;
  results[1].reason = FailureReason::kDns;
  ASSERT_TRUE(store_->CommitBatch(lease, results).ok());
  ASSERT_EQ(store_->RetryFailed("main", FailureReason::kDns).value(), 1u);

  Lease holder = LeaseOne(*store_, "holder");
  std::vector<Record> held = Read(*store_, holder);
  ASSERT_EQ(held.size(), 1u);
  ASSERT_EQ(store_->RetryFailed("main", FailureReason::kDecode).value(), 1u);
  EXPECT_EQ(Summary().batches_pending, 1u);
  EXPECT_EQ(store_->CommitBatch(holder, ResultsFor(held)).code(),
            StatusCode::kStaleLease);

  Lease redo = LeaseOne(*store_, "w");
  EXPECT_EQ(redo.token, holder.token + 1);
  EXPECT_EQ(Read(*store_, redo).size(), 2u);
}

// Stage groups: an item that failed in `faces` (or already in `fetch`, the failure
// travelling on) is redone from the first group: the next group reads the payload of
// fetch's commit, which is gone once faces committed.
TEST_P(StoreLeasesTest, RetryFailedOfAGroupRedoesItsItemsFromTheFirstGroup) {
  Ingest(*store_, MakeItems(8), 4, {"fetch", "faces"});
  // Batch 1 (items 1-4): item 2 fails in fetch (and so in faces), item 3 in faces.
  Lease fetch = LeaseOne(*store_, "f", "fetch");
  std::vector<ResultRow> fetched = ResultsFor(Read(*store_, fetch));
  fetched[1].reason = FailureReason::kDns;
  ASSERT_TRUE(store_->CommitBatch(fetch, fetched).ok());
  Lease faces = LeaseOne(*store_, "g", "faces");
  std::vector<ResultRow> detected = ResultsFor(Read(*store_, faces));
  detected[1].reason = FailureReason::kDns;
  detected[2].reason = FailureReason::kStage;
  ASSERT_TRUE(store_->CommitBatch(faces, detected).ok());
  // Batch 2 (items 5-8): item 5 fails in fetch; faces has not taken the batch yet.
  Lease fetch2 = LeaseOne(*store_, "f", "fetch");
  std::vector<ResultRow> fetched2 = ResultsFor(Read(*store_, fetch2));
  fetched2[0].reason = FailureReason::kDns;
  ASSERT_TRUE(store_->CommitBatch(fetch2, fetched2).ok());

  // By default, `sluice retry` asks for the last group's failures.
  auto put_back = store_->RetryFailed("faces", std::nullopt);
  ASSERT_TRUE(put_back.ok()) << put_back.ToStatus().ToString();
  EXPECT_EQ(put_back.value(), 2u);
  EXPECT_THAT(ResultFields(*store_, "fetch"),
              ElementsAre(Pair(1, ""), Pair(4, ""), Pair(5, ""), Pair(6, ""), Pair(7, ""),
                          Pair(8, "")));
  EXPECT_THAT(ResultFields(*store_, "faces"), ElementsAre(Pair(1, ""), Pair(4, "")));
  ExpectCountsMatchRows("fetch");
  ExpectCountsMatchRows("faces");
  EXPECT_EQ(Summary("fetch").batches_pending, 1u);
  EXPECT_EQ(Summary("faces").batches_done, 0u);

  // Batch 1 waits in faces until fetch redid its two items.
  std::vector<Lease> early = store_->LeaseBatches("faces", "g", 5, kLeaseTime).value();
  ASSERT_EQ(early.size(), 1u);
  EXPECT_EQ(early.front().batch_id, fetch2.batch_id);  // batch 2, pending all along
  ASSERT_TRUE(store_->ReleaseBatch(early.front()).ok());
  Lease refetch = LeaseOne(*store_, "f", "fetch");
  EXPECT_EQ(refetch.batch_id, fetch.batch_id);
  std::vector<Record> again = Read(*store_, refetch);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].id(), 2u);
  EXPECT_EQ(again[1].id(), 3u);
  ASSERT_TRUE(store_->CommitBatch(refetch, ResultsFor(again)).ok());
  std::vector<Lease> redo = store_->LeaseBatches("faces", "g", 5, kLeaseTime).value();
  ASSERT_EQ(redo.size(), 2u);
  const Lease& batch1 = redo[0].batch_id == fetch.batch_id ? redo[0] : redo[1];
  std::vector<Record> redone = Read(*store_, batch1);
  ASSERT_EQ(redone.size(), 2u);
  ASSERT_TRUE(store_->CommitBatch(batch1, ResultsFor(redone)).ok());
  EXPECT_THAT(ResultFields(*store_, "faces"),
              ElementsAre(Pair(1, ""), Pair(2, ""), Pair(3, ""), Pair(4, "")));
  ExpectCountsMatchRows("faces");
}

// A batch on its way between groups is left alone: faces is about to read fetch's
// payload, which a redo in fetch would replace with one of the redone items only.
TEST_P(StoreLeasesTest, RetryFailedLeavesABatchBetweenGroupsAlone) {
  Ingest(*store_, MakeItems(4), 4, {"fetch", "faces"});
  Lease fetch = LeaseOne(*store_, "f", "fetch");
  std::vector<ResultRow> fetched = ResultsFor(Read(*store_, fetch));
  fetched[0].reason = FailureReason::kDns;
  ASSERT_TRUE(store_->CommitBatch(fetch, fetched).ok());
  EXPECT_EQ(store_->RetryFailed("fetch", std::nullopt).value(), 0u);  // pending in faces
  Lease faces = LeaseOne(*store_, "g", "faces");
  EXPECT_EQ(store_->RetryFailed("fetch", std::nullopt).value(), 0u);  // leased there
  std::vector<Record> records = Read(*store_, faces);
  ASSERT_EQ(records.size(), 4u);
  std::vector<ResultRow> detected = ResultsFor(records);
  detected[0].reason = FailureReason::kDns;
  ASSERT_TRUE(store_->CommitBatch(faces, detected).ok());
  // Through: now it goes back, from fetch's failures as well as from faces'.
  EXPECT_EQ(store_->RetryFailed("fetch", FailureReason::kDns).value(), 1u);
  EXPECT_EQ(Summary("fetch").batches_pending, 1u);
  ExpectCountsMatchRows("fetch");
  ExpectCountsMatchRows("faces");
}

// Group faces cannot read fetch's payload of a batch (lost, damaged): the batch's
// items without a faces result are redone from fetch, and the faces lease is revoked.
TEST_P(StoreLeasesTest, RedoFromFirstGroupPutsTheBatchBackToTheFirstGroup) {
  Ingest(*store_, MakeItems(4), 4, {"fetch", "faces"});
  Lease fetch = LeaseOne(*store_, "f", "fetch");
  std::vector<ResultRow> fetched = ResultsFor(Read(*store_, fetch));
  fetched[2].reason = FailureReason::kDns;
  ASSERT_TRUE(store_->CommitBatch(fetch, fetched).ok());
  Lease faces = LeaseOne(*store_, "g", "faces");
  EXPECT_EQ(store_->RedoFromFirstGroup(fetch).code(), StatusCode::kStaleLease);
  Lease stale = faces;
  stale.token += 1;
  EXPECT_EQ(store_->RedoFromFirstGroup(stale).code(), StatusCode::kStaleLease);
  EXPECT_EQ(Summary("fetch").results_ok, 3u);  // nothing changed

  ASSERT_TRUE(store_->RedoFromFirstGroup(faces).ok());
  const std::vector<ResultRow> late = {{1, FailureReason::kNone, "", ""}};
  EXPECT_EQ(store_->CommitBatch(faces, late).code(), StatusCode::kStaleLease);
  EXPECT_THAT(ResultFields(*store_, "fetch"), IsEmpty());
  ExpectCountsMatchRows("fetch");
  EXPECT_EQ(Summary("fetch").batches_pending, 1u);
  EXPECT_THAT(store_->LeaseBatches("faces", "g", 5, kLeaseTime).value(), IsEmpty());
  Lease refetch = LeaseOne(*store_, "f", "fetch");
  EXPECT_EQ(Read(*store_, refetch).size(), 4u);
  ASSERT_TRUE(store_->CommitBatch(refetch, ResultsFor(Read(*store_, refetch))).ok());
  Lease again = LeaseOne(*store_, "g", "faces");
  EXPECT_EQ(again.token, faces.token + 1);
  ASSERT_TRUE(store_->CommitBatch(again, ResultsFor(Read(*store_, again))).ok());
  EXPECT_EQ(Summary("faces").results_ok, 4u);
  ExpectCountsMatchRows("faces");
}

TEST_P(StoreLeasesTest, ResultOutsideTheBatchIsRefusedAndNothingIsWritten) {
  Ingest(*store_, MakeItems(10), 5);
  Lease lease = LeaseOne(*store_, "w");
  std::vector<ResultRow> results = ResultsFor(Read(*store_, lease));
  results.push_back({6, FailureReason::kNone, "", ""});
  Status commit = store_->CommitBatch(lease, results);
  EXPECT_EQ(commit.code(), StatusCode::kInternal);
  EXPECT_EQ(
      commit.message(),
      "store: commit batch 1 of group main: item 6 is outside the batch (items 1 to 5)");
  EXPECT_THAT(ResultFields(*store_), IsEmpty());
  EXPECT_EQ(Summary().batches_leased, 1u);
  results.pop_back();
  EXPECT_TRUE(store_->CommitBatch(lease, results).ok());
}

TEST_P(StoreLeasesTest, SecondResultForAnItemRollsTheCommitBack) {
  Ingest(*store_, MakeItems(5), 5);
  Lease lease = LeaseOne(*store_, "w");
  std::vector<ResultRow> results = ResultsFor(Read(*store_, lease));
  results.push_back(results[2]);
  Status commit = store_->CommitBatch(lease, results);
  EXPECT_EQ(commit.code(), StatusCode::kInternal);
  EXPECT_EQ(commit.message(),
            "store: commit batch 1 of group main: item 3 already has a result");
  EXPECT_THAT(ResultFields(*store_), IsEmpty());
  EXPECT_EQ(Summary().batches_leased, 1u);
  EXPECT_EQ(Summary().batches_done, 0u);
}

TEST_P(StoreLeasesTest, ResultForAnItemDoneInAnEarlierCommitRollsBack) {
  Ingest(*store_, MakeItems(3), 3);
  Lease lease = LeaseOne(*store_, "w");
  std::vector<ResultRow> results = ResultsFor(Read(*store_, lease));
  results[2].reason = FailureReason::kTimeout;
  ASSERT_TRUE(store_->CommitBatch(lease, results).ok());
  ASSERT_EQ(store_->RetryFailed("main", FailureReason::kTimeout).value(), 1u);

  Lease retry = LeaseOne(*store_, "w");
  // Item 1 has its ok result from the first commit.
  std::vector<ResultRow> again = {{3, FailureReason::kNone, "", "new"},
                                  {1, FailureReason::kNone, "", "new"}};
  Status commit = store_->CommitBatch(retry, again);
  EXPECT_EQ(commit.code(), StatusCode::kInternal);
  EXPECT_THAT(commit.message(), HasSubstr("item 1 already has a result"));
  EXPECT_THAT(ResultFields(*store_), ElementsAre(Pair(1, ""), Pair(2, "")));
  EXPECT_EQ(Summary().batches_leased, 1u);
  ExpectCountsMatchRows();
}

TEST_P(StoreLeasesTest, ReleasedBatchIsPendingAndItsOldLeaseIsStale) {
  Ingest(*store_, MakeItems(4), 4);
  Lease lease = LeaseOne(*store_, "w");
  ASSERT_TRUE(store_->ReleaseBatch(lease).ok());
  EXPECT_EQ(Summary().batches_pending, 1u);
  Status commit = store_->CommitBatch(lease, {});
  EXPECT_EQ(commit.code(), StatusCode::kStaleLease);
  EXPECT_THAT(commit.message(),
              HasSubstr("lease token 1 is stale (the batch is released)"));

  Lease next = LeaseOne(*store_, "w2");
  EXPECT_EQ(next.token, 2u);
  // Releasing with the old token does not release the new holder's lease.
  ASSERT_TRUE(store_->ReleaseBatch(lease).ok());
  EXPECT_EQ(Summary().batches_leased, 1u);
}

TEST_P(StoreLeasesTest, LeasesOfDeadOwnersAreReleased) {
  Ingest(*store_, MakeItems(40), 10);
  ASSERT_EQ(store_->LeaseBatches("main", "host:1", 2, kLeaseTime)->size(), 2u);
  ASSERT_EQ(store_->LeaseBatches("main", "host:2", 1, kLeaseTime)->size(), 1u);
  std::vector<std::string> asked;
  auto released = store_->ReleaseLeasesOfDeadOwners("main", [&](std::string_view owner) {
    asked.emplace_back(owner);
    // Runs without the store's lock: using the store here must not deadlock.
    (void)store_->GetMeta("x");
    return owner == "host:1";
  });
  ASSERT_TRUE(released.ok()) << released.ToStatus().ToString();
  EXPECT_EQ(released.value(), 2u);
  EXPECT_THAT(asked, ::testing::UnorderedElementsAre("host:1", "host:2"));
  StoreSummary summary = Summary();
  EXPECT_EQ(summary.batches_leased, 1u);
  EXPECT_EQ(summary.batches_pending, 3u);
  EXPECT_EQ(LeaseOne(*store_, "host:3").batch_id, 1u);
}

TEST_P(StoreLeasesTest, PartitionsLeaseOnlyTheirBatchesAndTogetherCoverAll) {
  Ingest(*store_, MakeItems(20), 2);  // batches 1..10
  std::map<BatchId, int> leased;
  for (std::uint32_t k = 0; k < 3; ++k) {
    auto leases = store_->LeaseBatches("main", "w" + std::to_string(k), 10, kLeaseTime,
                                       LeasePartition{k, 3});
    ASSERT_TRUE(leases.ok()) << leases.status().ToString();
    for (const Lease& lease : *leases) {
      EXPECT_EQ(lease.batch_id % 3, k) << lease.batch_id;
      ++leased[lease.batch_id];
    }
  }
  EXPECT_EQ(leased.size(), 10u);
  for (const auto& [batch, times] : leased) EXPECT_EQ(times, 1) << batch;

  // An expired lease comes back within its partition only.
  clock_.Advance(kLeaseTime.count() + 1);
  auto other = store_->LeaseBatches("main", "x", 10, kLeaseTime, LeasePartition{1, 3});
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->size(), 4u);  // batches 1, 4, 7 and 10
  for (const Lease& lease : *other) EXPECT_EQ(lease.batch_id % 3, 1u);

  for (const LeasePartition bad : {LeasePartition{0, 0}, LeasePartition{3, 3}}) {
    auto refused = store_->LeaseBatches("main", "w", 1, kLeaseTime, bad);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(refused.status().message(), HasSubstr("needs 0 <= K < N"));
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreLeasesTest,
                         ::testing::Values(StoreBackend::kSqlite,
                                           StoreBackend::kPostgres),
                         ::sluice::testing::StoreBackendName);

}  // namespace
}  // namespace sluice
