// Throughput of the streaming runtime itself: three no-op CPU stages, one source
// thread submitting batches of 1,000 records (id + short url), no store.
//
//   BM_NoopPipeline/<chunk_size>       records are pre-built once and recycled: the
//                                      BatchDone callback hands each batch's vector
//                                      back to the source, so only the runtime is
//                                      measured.
//   BM_NoopPipelineFreshRecords/256    the source builds every record anew (one
//                                      string per record), as a real source would.
//
// Run: build-rt/runtime_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "bench/batch_pool.h"
#include "src/core/runtime.h"
#include "src/stages/builtin_stages.h"

namespace sluice {
namespace {

using bench::BatchPool;
using bench::BuildBatch;
using bench::kBatchSize;

constexpr std::size_t kBatchesPerRun = 2000;  // 2,000,000 items per iteration

std::vector<NamedStage> ThreeNoopStages() {
  std::vector<NamedStage> stages;
  for (const char* name : {"noop1", "noop2", "noop3"}) {
    stages.push_back(NamedStage{name, std::make_unique<NoopStage>()});
  }
  return stages;
}

void BM_NoopPipeline(benchmark::State& state) {
  RuntimeOptions options;
  options.chunk_size = static_cast<std::size_t>(state.range(0));
  // More batches than the budget, so the source never waits for one to come back.
  BatchPool pool(options.max_batches_in_flight + 4);
  for (auto _ : state) {
    Runtime runtime(
        options, ThreeNoopStages(),
        [&pool](BatchId, std::vector<Record> records) { pool.Give(std::move(records)); });
    if (!runtime.Start().ok()) {
      state.SkipWithError("runtime did not start");
      return;
    }
    for (BatchId batch = 0; batch < kBatchesPerRun; ++batch) {
      if (!runtime.Submit(batch, pool.Take()).ok()) {
        state.SkipWithError("runtime refused a batch");
        break;
      }
    }
    runtime.Finish();
  }
  state.SetItemsProcessed(
      static_cast<std::int64_t>(state.iterations() * kBatchesPerRun * kBatchSize));
}
BENCHMARK(BM_NoopPipeline)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_NoopPipelineFreshRecords(benchmark::State& state) {
  RuntimeOptions options;
  options.chunk_size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    Runtime runtime(options, ThreeNoopStages(), [](BatchId, std::vector<Record>) {});
    if (!runtime.Start().ok()) {
      state.SkipWithError("runtime did not start");
      return;
    }
    for (BatchId batch = 0; batch < kBatchesPerRun; ++batch) {
      if (!runtime.Submit(batch, BuildBatch(batch * kBatchSize)).ok()) {
        state.SkipWithError("runtime refused a batch");
        break;
      }
    }
    runtime.Finish();
  }
  state.SetItemsProcessed(
      static_cast<std::int64_t>(state.iterations() * kBatchesPerRun * kBatchSize));
}
BENCHMARK(BM_NoopPipelineFreshRecords)
    ->Arg(256)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
