// What the graph operators cost per record. The same four CPU stages run as a chain
// and in a diamond with two of them on branches: after a copy and before a join,
// after a route (id mod 2) and before a merge, after a shard by host (an expression
// hashed per record) and before a merge. The stages do no work (/0: the operators'
// cost alone) or 1,000 rounds of xorshift per record (/1000, about 1.7 us here: still
// a hundred times less than decoding an image). One source thread submits batches of
// 1,000 records that are recycled (bench/batch_pool.h), so only the runtime and its
// operators are measured.
//
//   BM_Chain/R        s1 -> s2 -> s3 -> s4
//   BM_CopyJoin/R     s1 -> copy -> {s2, s3} -> join -> s4
//   BM_SplitMerge/R   s1 -> route(id % 2) -> {s2, s3} -> merge -> s4
//   BM_ShardMerge/R   s1 -> shard(host, 2) -> {s2, s3} -> merge -> s4
//
// Run: build/rel/graph_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bench/batch_pool.h"
#include "src/core/expr.h"
#include "src/core/runtime.h"

namespace sluice {
namespace {

using bench::BatchPool;
using bench::kBatchSize;

constexpr std::size_t kBatchesPerRun = 1000;  // 1,000,000 items per iteration

// `rounds` rounds of xorshift per record (0: nothing at all; 1000 take about a
// microsecond here).
class WorkStage final : public CpuStage {
 public:
  explicit WorkStage(int rounds) : rounds_(rounds) {}
  void Process(std::span<Record> records) override {
    if (rounds_ == 0) return;
    for (Record& record : records) {
      std::uint64_t x = record.id() | 1;
      for (int r = 0; r < rounds_; ++r) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
      }
      benchmark::DoNotOptimize(x);
    }
  }

 private:
  const int rounds_;
};

int g_rounds = 0;  // the benchmark's argument, for the graph builders

std::unique_ptr<Stage> Work() { return std::make_unique<WorkStage>(g_rounds); }

std::vector<NamedStage> Chain() {
  std::vector<NamedStage> nodes;
  for (const char* name : {"s1", "s2", "s3", "s4"}) nodes.emplace_back(name, Work());
  return nodes;
}

// s1 -> `fork` -> {s2, s3} -> `closer` -> s4.
std::vector<NamedStage> Diamond(std::shared_ptr<const Operator> fork,
                                std::shared_ptr<const Operator> closer) {
  std::vector<NamedStage> nodes;
  nodes.emplace_back("s1", Work());
  nodes.emplace_back("fork", std::move(fork), std::vector<NodeInput>{{0, 0}});
  nodes.emplace_back("s2", Work(), std::vector<NodeInput>{{1, 0}});
  nodes.emplace_back("s3", Work(), std::vector<NodeInput>{{1, 1}});
  nodes.emplace_back("closer", std::move(closer), std::vector<NodeInput>{{2, 0}, {3, 0}});
  nodes.emplace_back("s4", Work());
  return nodes;
}

std::vector<NamedStage> CopyJoin() {
  auto copy = std::make_shared<Operator>();
  copy->kind = Operator::Kind::kCopy;
  copy->ports = 2;
  auto join = std::make_shared<Operator>();
  join->kind = Operator::Kind::kJoin;
  join->join_fields = {{}, {"b"}};
  return Diamond(std::move(copy), std::move(join));
}

std::shared_ptr<const Operator> Merge() {
  auto merge = std::make_shared<Operator>();
  merge->kind = Operator::Kind::kMerge;
  return merge;
}

std::vector<NamedStage> SplitMerge() {
  auto route = std::make_shared<Operator>();
  route->kind = Operator::Kind::kRoute;
  route->ports = 2;
  route->route = [](Record& record) { return static_cast<std::size_t>(record.id() % 2); };
  return Diamond(std::move(route), Merge());
}

std::vector<NamedStage> ShardMerge() {
  auto key = std::make_shared<const Expr>(Expr::Parse("host").value());
  auto route = std::make_shared<Operator>();
  route->kind = Operator::Kind::kRoute;
  route->ports = 2;
  route->route = [key](Record& record) {
    return static_cast<std::size_t>(key->KeyHash(record) % 2);
  };
  return Diamond(std::move(route), Merge());
}

void RunGraph(benchmark::State& state, std::vector<NamedStage> (*make)()) {
  RuntimeOptions options;
  g_rounds = static_cast<int>(state.range(0));
  BatchPool pool(options.max_batches_in_flight + 4);
  for (auto _ : state) {
    Runtime runtime(
        options, make(),
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

void BM_Chain(benchmark::State& state) { RunGraph(state, Chain); }
void BM_CopyJoin(benchmark::State& state) { RunGraph(state, CopyJoin); }
void BM_SplitMerge(benchmark::State& state) { RunGraph(state, SplitMerge); }
void BM_ShardMerge(benchmark::State& state) { RunGraph(state, ShardMerge); }

BENCHMARK(BM_Chain)->Arg(0)->Arg(1000)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CopyJoin)->Arg(0)->Arg(1000)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SplitMerge)->Arg(0)->Arg(1000)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ShardMerge)->Arg(0)->Arg(1000)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sluice

BENCHMARK_MAIN();
