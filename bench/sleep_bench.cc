// Throughput of the sleep stage: every record sleeps 100 ms on a timer, 10,000 in
// flight, 200,000 items in batches of 1,000. The ceiling is 10,000 / 0.1 s =
// 100,000 items/s; what is lost below it is the runtime's admission and hand-on
// latency.
//
// Run: build-rt/sleep_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "src/core/runtime.h"
#include "src/stages/builtin_stages.h"

namespace sluice {
namespace {

constexpr std::size_t kItems = 200'000;
constexpr std::size_t kBatchSize = 1000;

void BM_Sleep100ms(benchmark::State& state) {
  SleepOptions sleep;
  sleep.delay = std::chrono::milliseconds(100);
  sleep.max_in_flight = 10'000;
  RuntimeOptions options;
  // The stage can hold 10 batches; a few more keep it full while finished batches
  // drain and new ones arrive.
  options.max_batches_in_flight = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    std::vector<NamedStage> stages;
    stages.push_back(NamedStage{"sleep", std::make_unique<SleepStage>(sleep)});
    Runtime runtime(options, std::move(stages), [](BatchId, std::vector<Record>) {});
    if (!runtime.Start().ok()) {
      state.SkipWithError("runtime did not start");
      return;
    }
    for (BatchId batch = 0; batch < kItems / kBatchSize; ++batch) {
      std::vector<Record> records;
      records.reserve(kBatchSize);
      for (std::size_t i = 0; i < kBatchSize; ++i) {
        const ItemId id = batch * kBatchSize + i;
        records.emplace_back(id, "http://img.example/" + std::to_string(id));
      }
      if (!runtime.Submit(batch, std::move(records)).ok()) {
        state.SkipWithError("runtime refused a batch");
        break;
      }
    }
    runtime.Finish();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kItems));
}
BENCHMARK(BM_Sleep100ms)
    ->ArgName("max_batches_in_flight")
    ->Arg(16)
    ->Arg(32)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
