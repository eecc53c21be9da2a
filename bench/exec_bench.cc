// Round trip of the exec stage with the Python standard-library example
// (examples/exec/url_info.py): the cost per record of a JSON line each way to a
// long-lived subprocess, one record per exchange (batch 1) against 64 requests
// written before their replies are read (batch 64). The records carry a url and a
// caption, and no bytes, so what is measured is the protocol and the script's own
// loop, not a file or base64 copy.
//
// Run: build/ci/release/exec_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "src/stages/exec_stage.h"

namespace sluice {
namespace {

constexpr std::size_t kChunk = 256;  // records per Process() call, as a chunk

void BM_ExecRoundTrip(benchmark::State& state) {
  if (::access("/usr/bin/python3", X_OK) != 0) {
    state.SkipWithError("/usr/bin/python3 is missing");
    return;
  }
  ExecOptions options;
  options.command = {"/usr/bin/python3",
                     std::string(SLUICE_SOURCE_DIR) + "/examples/exec/url_info.py"};
  options.fields = {"url", "caption"};
  options.writes = {"host", "caption_words", "body_bytes", "kind"};
  options.batch = static_cast<std::size_t>(state.range(0));
  options.startup = std::chrono::milliseconds(0);
  Result<std::unique_ptr<ExecStage>> stage = ExecStage::Create(options);
  if (!stage.ok()) {
    state.SkipWithError(stage.ToStatus().ToString().c_str());
    return;
  }
  std::vector<Record> records;
  ItemId next = 0;
  std::size_t failed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    records.clear();
    for (std::size_t i = 0; i < kChunk; ++i, ++next) {
      records.emplace_back(next, "http://img" + std::to_string(next % 97) +
                                     ".example.com/photo/" + std::to_string(next) +
                                     ".jpg");
      records.back().AddColumn("caption", "a photo of a cat on a mat");
    }
    state.ResumeTiming();
    (*stage)->Process(records);
    for (const Record& record : records) failed += record.failed() ? 1 : 0;
  }
  if (failed > 0) state.SkipWithError("some records failed");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kChunk));
  // Seconds per record (printed with an SI prefix: 40u is 40 microseconds).
  state.counters["s_per_record"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kChunk),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ExecRoundTrip)
    ->ArgName("batch")
    ->Arg(1)
    ->Arg(64)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
