// What an operator's predicate costs per record (src/core/expr.h): typical filters
// on a record as the fetch and decode stages leave it, against the same test
// written by hand in C++ (the floor an interpreter is measured against). Each run
// also counts the heap allocations evaluation makes (allocs_per_record: 0 expected).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

namespace {
std::atomic<std::uint64_t> allocations{0};
}  // namespace

// Replaceable allocation functions over malloc/free (GCC warns of the pairing it
// cannot see is one).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

#include "src/core/expr.h"

namespace sluice {
namespace {

Record Fetched() {
  Record record(42, "https://images.example.org/photos/2024/cat_0042.jpg?w=1200");
  record.AddColumn("caption", "a grey cat asleep on a red mat");
  record.Set("http_status", std::int64_t{200});
  record.Set("content_type", std::string("image/jpeg"));
  record.Set("bytes", std::int64_t{183'204});
  record.Set("width", std::int64_t{1200});
  record.Set("height", std::int64_t{800});
  record.Set("download_ms", std::int64_t{87});
  return record;
}

void Run(benchmark::State& state, const char* text) {
  const Expr expr = Expr::Parse(text).value();
  const Record record = Fetched();
  const std::uint64_t before = allocations.load();
  for (auto _ : state) benchmark::DoNotOptimize(expr.Test(record));
  state.counters["allocs_per_record"] = static_cast<double>(allocations.load() - before) /
                                        static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
}

void BM_ExprSizeFilter(benchmark::State& state) {
  Run(state, "width >= 256 && height >= 256");
}
void BM_ExprSizeFilterByHand(benchmark::State& state) {
  const Record record = Fetched();
  for (auto _ : state) {
    const Value* w = record.Find("width");
    const Value* h = record.Find("height");
    const bool keep = w != nullptr && h != nullptr && std::get<std::int64_t>(*w) >= 256 &&
                      std::get<std::int64_t>(*h) >= 256;
    benchmark::DoNotOptimize(keep);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_ExprStringsAndHost(benchmark::State& state) {
  Run(state,
      "starts_with(content_type, 'image/') && ends_with(host, '.org') && "
      "contains(caption, 'cat')");
}
void BM_ExprRegex(benchmark::State& state) {
  Run(state, "matches(url, '(?i)\\\\.(jpe?g|png)(\\\\?|$)')");
}
void BM_ExprTenClauses(benchmark::State& state) {
  Run(state,
      "http_status == 200 && bytes > 1000 && bytes < 10000000 && width >= 64 && "
      "height >= 64 && download_ms < 5000 && has(caption) && !has(error) && "
      "content_type != 'image/gif' && len(caption) > 3");
}

}  // namespace
}  // namespace sluice

BENCHMARK(sluice::BM_ExprSizeFilter);
BENCHMARK(sluice::BM_ExprSizeFilterByHand);
BENCHMARK(sluice::BM_ExprStringsAndHost);
BENCHMARK(sluice::BM_ExprRegex);
BENCHMARK(sluice::BM_ExprTenClauses);
BENCHMARK_MAIN();
