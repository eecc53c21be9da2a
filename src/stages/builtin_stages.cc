#include "src/stages/builtin_stages.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace sluice {
namespace {

// SplitMix64's finaliser: a cheap, well-mixed 64-bit hash.
std::uint64_t Mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string ValidReasonNames() {
  std::string names;
  for (FailureReason reason : AllFailureReasons()) {
    if (!names.empty()) names += ", ";
    names += FailureReasonName(reason);
  }
  return names;
}

Result<std::unique_ptr<Stage>> MakeNoop(StageOptions& options) {
  (void)options;  // no options: the caller's Finish() reports any key given
  return std::unique_ptr<Stage>(std::make_unique<NoopStage>());
}

Result<std::unique_ptr<Stage>> MakeSleep(StageOptions& options) {
  SleepOptions sleep;
  sleep.delay = std::chrono::milliseconds(options.GetInt("ms", 10, 0, 3'600'000));
  sleep.max_in_flight =
      static_cast<std::size_t>(options.GetInt("max_in_flight", 10'000, 1, 1'000'000));
  sleep.deadline =
      std::chrono::milliseconds(options.GetInt("deadline_ms", 0, 0, 86'400'000));
  return std::unique_ptr<Stage>(std::make_unique<SleepStage>(sleep));
}

Result<std::unique_ptr<Stage>> MakeFail(StageOptions& options) {
  FailOptions fail;
  fail.fraction = options.GetDouble("fraction", 0.1, 0.0, 1.0);
  const std::string reason_name = options.GetString("reason", "injected");
  // Seeds are bit patterns: any int64 is fine, negative ones included.
  fail.seed = static_cast<std::uint64_t>(
      options.GetInt("seed", 0, std::numeric_limits<std::int64_t>::min(),
                     std::numeric_limits<std::int64_t>::max()));
  const std::optional<FailureReason> reason = ParseFailureReason(reason_name);
  if (!reason.has_value()) {
    const std::string message = fmt::format("unknown failure reason '{}' (valid: {})",
                                            reason_name, ValidReasonNames());
    // Recorded with the other option errors, and returned, in the "path.key: ..."
    // form the YAML options use.
    options.AddError("reason", message);
    return InvalidArgument(fmt::format("{}.reason: {}", options.path(), message));
  }
  fail.reason = *reason;
  return std::unique_ptr<Stage>(std::make_unique<FailStage>(fail));
}

Result<std::unique_ptr<Stage>> MakeFilter(StageOptions& options) {
  const std::string text = options.GetString("keep", "");
  if (text.empty()) {
    const std::string message =
        "a filter needs `keep`, the expression records must satisfy to go on "
        "(docs/operators.md)";
    options.AddError("keep", message);
    return InvalidArgument(fmt::format("{}.keep: {}", options.path(), message));
  }
  Result<Expr> keep = Expr::Parse(text);
  if (!keep.ok()) {
    const std::string message = keep.ToStatus().message();
    options.AddError("keep", message);
    return InvalidArgument(fmt::format("{}.keep: {}", options.path(), message));
  }
  return std::unique_ptr<Stage>(
      std::make_unique<FilterStage>(std::move(keep).value(), options.path()));
}

}  // namespace

Status RegisterBuiltinStages(StageRegistry& registry) {
  SLUICE_RETURN_IF_ERROR(
      registry.Register("noop", "passes records on unchanged", MakeNoop));
  SLUICE_RETURN_IF_ERROR(registry.Register(
      "sleep", "delays each record by `ms` on a timer, without a thread", MakeSleep));
  SLUICE_RETURN_IF_ERROR(registry.Register(
      "fail", "fails a deterministic `fraction` of the records", MakeFail));
  return registry.Register(
      "filter",
      "keeps the records its `keep` expression holds for; the others end as filtered",
      MakeFilter);
}

// --- SleepStage ---------------------------------------------------------------------

SleepStage::~SleepStage() {
  // The loop may outlive the stage; its timer must not call into a dead stage.
  if (timer_ != 0 && ctx_ != nullptr) ctx_->loop().CancelTimer(timer_);
}

void SleepStage::Start(Record record, AsyncContext& ctx) {
  ctx_ = &ctx;
  sleepers_.push_back(Sleeper{ctx.loop().Now() + options_.delay, std::move(record)});
  if (timer_ == 0) ArmTimer();
}

std::chrono::milliseconds SleepStage::record_deadline() const {
  if (options_.deadline.count() > 0) return options_.deadline;
  return options_.delay + std::chrono::seconds(1);
}

void SleepStage::Abandon(ItemId id, AsyncContext& ctx) {
  // Rare (a deadline shorter than the delay): a linear search is fine. The timer
  // stays armed for the old head; Wake() re-arms for the new one.
  auto it = std::find_if(sleepers_.begin(), sleepers_.end(),
                         [id](const Sleeper& s) { return s.record.id() == id; });
  if (it == sleepers_.end()) return;
  Record record = std::move(it->record);
  sleepers_.erase(it);
  record.Fail(FailureReason::kTimeout,
              fmt::format("sleep: the record's deadline of {} ms passed",
                          record_deadline().count()));
  ctx.Complete(std::move(record));
}

void SleepStage::ArmTimer() {
  EventLoop& loop = ctx_->loop();
  timer_ = loop.AddTimer(sleepers_.front().deadline - loop.Now(), [this] { Wake(); });
}

void SleepStage::Wake() {
  timer_ = 0;
  const EventLoop::Clock::time_point now = ctx_->loop().Now();
  while (!sleepers_.empty() && sleepers_.front().deadline <= now) {
    Record record = std::move(sleepers_.front().record);
    sleepers_.pop_front();
    ctx_->Complete(std::move(record));
  }
  if (!sleepers_.empty()) ArmTimer();
}

// --- FailStage ----------------------------------------------------------------------

bool FailStage::ShouldFail(ItemId id, const FailOptions& options) {
  const std::uint64_t hash = Mix64(id ^ Mix64(options.seed));
  // The top 53 bits as a double in [0, 1): uniform, and exact.
  const double unit = static_cast<double>(hash >> 11) * 0x1.0p-53;
  return unit < options.fraction;
}

void FailStage::ProcessOne(Record& record) {
  if (ShouldFail(record.id(), options_)) {
    record.Fail(options_.reason, "injected by fail stage");
  }
}

// --- FilterStage --------------------------------------------------------------------

FilterStage::FilterStage(Expr keep, std::string_view where)
    : keep_(std::move(keep)), dropped_(fmt::format("filtered by {}: keep {}", where,
                                                   keep_.text())) {}

void FilterStage::ProcessOne(Record& record) {
  if (!keep_.Test(record)) record.Fail(FailureReason::kFiltered, dropped_);
}

}  // namespace sluice
