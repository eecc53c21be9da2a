// Helpers for the store's unit tests: a temporary directory, a clock the test moves,
// and shortcuts to ingest items. Test-only; header-only so that it stays out of the
// sluice_store library.
#ifndef SLUICE_STORE_STORE_TEST_SUPPORT_H_
#define SLUICE_STORE_STORE_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sluice/store.h"
#include "src/store/sqlite_store.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {

// A StoreClock that stands still until the test advances it. Thread-safe.
class FakeClock final : public StoreClock {
 public:
  explicit FakeClock(std::int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  std::int64_t NowMs() const override { return now_ms_.load(); }
  void Advance(std::int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<std::int64_t> now_ms_;
};

inline std::vector<ItemRow> MakeItems(std::size_t count, std::size_t first_index = 0) {
  std::vector<ItemRow> items(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t n = first_index + i;
    items[i].url =
        "http://host-" + std::to_string(n) + ".example/img/" + std::to_string(n) + ".jpg";
  }
  return items;
}

// A base fixture: a temp dir, a fake clock, and a store file in the dir.
class StoreTest : public ::testing::Test {
 protected:
  std::string StorePath() const { return dir_.File("sluice.db"); }

  // Opens another Store on the same file (a second "process" for the tests).
  std::unique_ptr<Store> OpenStore() {
    SqliteStoreOptions options;
    options.clock = &clock_;
    auto store = OpenSqliteStore(StorePath(), options);
    if (!store.ok()) {
      ADD_FAILURE() << store.status().ToString();
      return nullptr;
    }
    return std::move(store).value();
  }

  // Registers a new input file and appends `items` to it in one call.
  std::int64_t Ingest(Store& store, const std::vector<ItemRow>& items,
                      std::uint32_t batch_size,
                      const std::vector<std::string>& groups = {"main"}) {
    InputFingerprint input{"input-" + std::to_string(next_input_) + ".txt", items.size(),
                           "digest-" + std::to_string(next_input_)};
    ++next_input_;
    auto state = store.BeginInput(input);
    if (!state.ok()) {
      ADD_FAILURE() << state.status().ToString();
      return 0;
    }
    Status status =
        store.AppendItems(state->input_id, items, {}, items.size(), batch_size, groups);
    EXPECT_TRUE(status.ok()) << status.ToString();
    return state->input_id;
  }

  // Results for every item of `records`, ok unless a reason is given.
  static std::vector<ResultRow> ResultsFor(const std::vector<Record>& records,
                                           FailureReason reason = FailureReason::kNone,
                                           const std::string& fields_json = "") {
    std::vector<ResultRow> results;
    for (const Record& record : records) {
      results.push_back(
          {record.id(), reason, reason == FailureReason::kNone ? "" : "e", fields_json});
    }
    return results;
  }

  TempDir dir_;
  FakeClock clock_;
  int next_input_ = 1;
};

}  // namespace sluice::testing

#endif  // SLUICE_STORE_STORE_TEST_SUPPORT_H_
