// The generic stages every pipeline can use, for testing, benchmarking and
// rehearsing a pipeline without its real work:
//
//   noop   CPU stage that passes records on untouched. No options.
//
//   sleep  Async stage that holds each record for a fixed time on a timer, without
//          holding a thread (a stand-in for a download's latency).
//            ms:            delay per record, integer 0..3600000, default 10
//            max_in_flight: records held at once, integer 1..1000000, default 10000
//
//   fail   CPU stage that fails a deterministic fraction of the records (to rehearse
//          failure handling and retries).
//            fraction: share of records to fail, 0..1, default 0.1
//            reason:   the FailureReason name to fail with, default "injected"
//            seed:     integer mixed into the decision, default 0
//          Whether an item fails depends only on (item id, seed): two runs fail
//          the same items.
//
//   filter CPU stage that keeps the records an expression holds for
//          (src/core/expr.h, docs/operators.md); the others end "filtered".
//            keep: the expression, required, e.g. "width >= 256 && height >= 256"
//
// Thread-safety: NoopStage, FailStage and FilterStage are immutable after construction and may
// process chunks concurrently. A SleepStage is driven by the one event-loop thread
// its runtime gives it.
#ifndef SLUICE_STAGES_BUILTIN_STAGES_H_
#define SLUICE_STAGES_BUILTIN_STAGES_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>

#include "sluice/record.h"
#include "sluice/stage.h"
#include "src/core/expr.h"

namespace sluice {

// Registers "noop", "sleep" and "fail". A factory returns an error naming the YAML
// path and key for a value it cannot use (an unknown failure reason); values out of
// range are recorded in the StageOptions and reported by its Finish().
// Fails if one of the names is registered already.
Status RegisterBuiltinStages(StageRegistry& registry);

class NoopStage final : public CpuStage {
 public:
  void Process(std::span<Record> records) override { (void)records; }
  StageFields Fields() const override { return DeclaredFields({}, {}); }
};

struct SleepOptions {
  std::chrono::milliseconds delay{10};  // "ms"
  std::size_t max_in_flight = 10000;    // "max_in_flight"
  // "deadline_ms": the runtime's deadline per record (AsyncStage::record_deadline);
  // 0 means `delay` + 1 s. Shorter than `delay`, records fail as timeouts.
  std::chrono::milliseconds deadline{0};
};

// Every record waits the same delay, so records leave in the order they came:
// a FIFO of (deadline, record) with one timer, armed for the head, is enough.
class SleepStage final : public AsyncStage {
 public:
  explicit SleepStage(SleepOptions options) : options_(options) {}
  ~SleepStage() override;

  std::size_t max_in_flight() const override { return options_.max_in_flight; }
  void Start(Record record, AsyncContext& ctx) override;
  std::chrono::milliseconds record_deadline() const override;
  // Takes the record out of the queue and completes it failed (kTimeout).
  void Abandon(ItemId id, AsyncContext& ctx) override;
  StageFields Fields() const override { return DeclaredFields({}, {}); }

 private:
  struct Sleeper {
    EventLoop::Clock::time_point deadline;
    Record record;
  };

  // Completes every record whose deadline passed, then re-arms for the new head.
  void Wake();
  void ArmTimer();

  const SleepOptions options_;
  // All loop-thread state. The runtime gives a stage one context for its lifetime.
  AsyncContext* ctx_ = nullptr;
  std::deque<Sleeper> sleepers_;
  EventLoop::TimerId timer_ = 0;  // 0: no timer armed
};

struct FailOptions {
  double fraction = 0.1;                            // "fraction"
  FailureReason reason = FailureReason::kInjected;  // "reason"
  std::uint64_t seed = 0;                           // "seed"
};

class FailStage final : public CpuStage {
 public:
  explicit FailStage(FailOptions options) : options_(options) {}

  // True if the item `id` fails under `options`: a hash of (id, seed) mapped to
  // [0, 1) and compared to the fraction.
  static bool ShouldFail(ItemId id, const FailOptions& options);

  void ProcessOne(Record& record) override;
  StageFields Fields() const override { return DeclaredFields({}, {}); }

 private:
  const FailOptions options_;
};

// filter: keeps the records its `keep` expression holds for (src/core/expr.h);
// the others end with status "filtered" (FailureReason::kFiltered, not a failure)
// and the predicate in their error, and skip the stages after it.
class FilterStage final : public CpuStage {
 public:
  // `where`: the stage's YAML path, for the records' error text.
  FilterStage(Expr keep, std::string_view where);
  void ProcessOne(Record& record) override;
  StageFields Fields() const override {
    return DeclaredFields({}, {}, keep_.fields());
  }
  const Expr& keep() const { return keep_; }

 private:
  const Expr keep_;
  const std::string dropped_;  // the error text of a record dropped
};

}  // namespace sluice

#endif  // SLUICE_STAGES_BUILTIN_STAGES_H_
