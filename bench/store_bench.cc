// Benchmarks of the store's two hot paths, on SQLite (backend 0) and on PostgreSQL
// (backend 1: a throwaway server on loopback, fsync on, started by the benchmark;
// tests/support/postgres_server.h):
//  - ingest: AppendItems of 1,000 plain URLs per call (one transaction each);
//  - a worker's cycle: LeaseBatches (1 batch) -> ReadBatchItems -> CommitBatch of
//    1,000 ok results; the argument is the size of each result's fields_json
//    (0: none; 200: about what the faces pipeline writes).
// The SQLite file lives in a fresh directory under /tmp (set TMPDIR to move it), so
// the numbers include SQLite's real I/O (WAL, synchronous=NORMAL); PostgreSQL's data
// directory too (fsync and synchronous commit on, the server's defaults).
//
//   build-store/store_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sluice/store.h"
#include "src/store/postgres_store.h"
#include "src/store/sqlite_store.h"
#include "tests/support/postgres_server.h"

namespace sluice {
namespace {

constexpr std::uint32_t kBatchSize = 1000;

class BenchDir {
 public:
  BenchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sluice-bench-XXXXXX");
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  BenchDir(const BenchDir&) = delete;
  BenchDir& operator=(const BenchDir&) = delete;
  ~BenchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  bool ok() const { return !path_.empty(); }
  std::string StorePath() const { return (path_ / "sluice.db").string(); }

 private:
  std::filesystem::path path_;
};

std::vector<ItemRow> MakeUrls(std::size_t count, std::size_t first) {
  std::vector<ItemRow> items(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::string n = std::to_string(first + i);
    items[i].url = "http://host-" + n + ".example/img/" + n + ".jpg";
  }
  return items;
}

// Opens a store with one registered input; nullptr (and the benchmark skipped) on error.
std::unique_ptr<Store> OpenBenchStore(benchmark::State& state, const BenchDir& dir,
                                      std::int64_t* input_id) {
  if (!dir.ok()) {
    state.SkipWithError("mkdtemp failed");
    return nullptr;
  }
  Result<std::unique_ptr<Store>> store = InvalidArgument("no backend");
  if (state.range(0) == 0) {
    store = OpenSqliteStore(dir.StorePath());
  } else {
    static auto server = [] {
      testing::PostgresServerOptions options;
      options.durable = true;
      return testing::PostgresServer::Start(options);
    }();
    if (!server.ok()) {
      state.SkipWithError(server.status().ToString().c_str());
      return nullptr;
    }
    auto url = (*server)->CreateDatabase();
    if (!url.ok()) {
      state.SkipWithError(url.status().ToString().c_str());
      return nullptr;
    }
    store = OpenPostgresStore(*url);
  }
  if (!store.ok()) {
    state.SkipWithError(store.status().ToString().c_str());
    return nullptr;
  }
  auto input = (*store)->BeginInput({"urls.txt", 1, "bench"});
  if (!input.ok()) {
    state.SkipWithError(input.status().ToString().c_str());
    return nullptr;
  }
  *input_id = input->input_id;
  return std::move(store).value();
}

void BM_AppendItems(benchmark::State& state) {
  BenchDir dir;
  std::int64_t input_id = 0;
  std::unique_ptr<Store> store = OpenBenchStore(state, dir, &input_id);
  if (store == nullptr) return;
  const std::vector<std::string> groups = {"main"};
  // Built once: the benchmark measures the store, not string formatting.
  const std::vector<ItemRow> items = MakeUrls(kBatchSize, 0);
  std::uint64_t lines = 0;
  for (auto _ : state) {
    lines += items.size();
    Status status = store->AppendItems(input_id, items, {}, lines, kBatchSize, groups);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kBatchSize);
}
BENCHMARK(BM_AppendItems)
    ->ArgName("postgres")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_LeaseReadCommit(benchmark::State& state) {
  BenchDir dir;
  std::int64_t input_id = 0;
  std::unique_ptr<Store> store = OpenBenchStore(state, dir, &input_id);
  if (store == nullptr) return;
  const std::vector<std::string> groups = {"main"};
  const std::vector<ItemRow> items = MakeUrls(kBatchSize * 50, 0);
  std::uint64_t lines = 0;
  auto refill = [&]() -> Status {
    lines += items.size();
    return store->AppendItems(input_id, items, {}, lines, kBatchSize, groups);
  };
  Status status = refill();
  const auto fields_bytes = static_cast<std::size_t>(state.range(1));
  std::string fields_json;
  if (fields_bytes > 0) {
    fields_json = R"({"pad":")" +
                  std::string(fields_bytes > 10 ? fields_bytes - 10 : 0, 'x') + R"("})";
  }
  std::vector<ResultRow> results;
  results.reserve(kBatchSize);
  std::int64_t committed = 0;
  for (auto _ : state) {
    if (!status.ok()) break;
    auto leases = store->LeaseBatches("main", "bench-worker", 1, std::chrono::minutes(5));
    if (leases.ok() && leases->empty()) {
      state.PauseTiming();
      status = refill();
      state.ResumeTiming();
      if (!status.ok()) break;
      leases = store->LeaseBatches("main", "bench-worker", 1, std::chrono::minutes(5));
    }
    if (!leases.ok() || leases->empty()) {
      status = leases.ok() ? Internal("no batch to lease") : leases.status();
      break;
    }
    const Lease& lease = leases->front();
    auto records = store->ReadBatchItems(lease);
    if (!records.ok()) {
      status = records.status();
      break;
    }
    results.clear();
    for (const Record& record : *records) {
      results.push_back({record.id(), FailureReason::kNone, {}, fields_json});
    }
    status = store->CommitBatch(lease, results);
    committed += static_cast<std::int64_t>(results.size());
  }
  if (!status.ok()) state.SkipWithError(status.ToString().c_str());
  state.SetItemsProcessed(committed);
}
BENCHMARK(BM_LeaseReadCommit)
    ->ArgNames({"postgres", "fields"})
    ->Args({0, 0})
    ->Args({0, 200})
    ->Args({1, 0})
    ->Args({1, 200})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
