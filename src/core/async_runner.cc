#include "src/core/async_runner.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

namespace sluice {

Result<std::unique_ptr<AsyncStageRunner>> AsyncStageRunner::Create(AsyncStage& stage,
                                                                   Wiring wiring) {
  auto loop = EpollEventLoop::Create();
  if (!loop.ok()) return loop.status().WithContext("stage " + wiring.name);
  return std::unique_ptr<AsyncStageRunner>(
      new AsyncStageRunner(stage, std::move(wiring), std::move(loop).value()));
}

AsyncStageRunner::AsyncStageRunner(AsyncStage& stage, Wiring wiring,
                                   std::unique_ptr<EpollEventLoop> loop)
    : stage_(stage),
      wiring_(std::move(wiring)),
      loop_(std::move(loop)),
      deadline_(std::max(stage.record_deadline(), std::chrono::milliseconds(1))) {
  // Avoid rehashing in the hot path; large limits grow the table on demand.
  in_flight_batches_.reserve(std::min<std::size_t>(stage_.max_in_flight(), 1 << 16));
}

AsyncStageRunner::~AsyncStageRunner() {
  // Safety net for error paths; the runtime joins explicitly.
  if (thread_.joinable()) {
    Stop();
    thread_.join();
  }
}

void AsyncStageRunner::Start() {
  thread_ = std::thread([this] { ThreadMain(); });
}

void AsyncStageRunner::Stop() {
  stop_.store(true, std::memory_order_release);
  loop_->Wake();
}

void AsyncStageRunner::Join() {
  if (thread_.joinable()) thread_.join();
}

void AsyncStageRunner::InputPushed() {
  if (!waiting_for_input_) return;
  waiting_for_input_ = false;
  loop_->Wake();
}

void AsyncStageRunner::OutputPopped() {
  if (!waiting_for_room_) return;
  waiting_for_room_ = false;
  loop_->Wake();
}

void AsyncStageRunner::ThreadMain() {
  Pump();
  while (!stop_.load(std::memory_order_acquire)) {
    loop_->RunOnce();
    if (stop_.load(std::memory_order_acquire)) break;
    Pump();
  }
}

void AsyncStageRunner::Pump() {
  for (;;) {
    // Start() reads loop().Now() for its deadlines; it must not lag behind the time
    // the records were taken (also a chunk taken in the previous turn of this
    // loop), or a "sleep 100 ms" could complete in 99.9.
    loop_->RefreshNow();
    StartPending();
    // Nothing in flight means no completion will add to the open chunk soon.
    if (in_flight_ == 0 && !open_.empty()) FlushOpen();

    bool took = false;
    {
      std::lock_guard<std::mutex> lock(*wiring_.mu);
      while (!ready_.empty() && wiring_.output->HasRoom()) {
        wiring_.output->Push(std::move(ready_.front()));
        ready_.pop_front();
        wiring_.observer->ChunkPushed(wiring_.output_channel);
      }
      waiting_for_room_ = !ready_.empty();

      // Admit more only while the stage has room and the output is not backed up.
      const bool can_admit = pending_pos_ == pending_.size() &&
                             in_flight_ < stage_.max_in_flight() && ready_.empty();
      if (can_admit && !wiring_.input->empty()) {
        pending_ = wiring_.input->Pop();
        pending_pos_ = 0;
        pending_run_ = 0;
        pending_run_left_ = pending_.runs.empty() ? 0 : pending_.runs[0].count;
        records_in_.fetch_add(pending_.size(), std::memory_order_relaxed);
        wiring_.observer->ChunkPopped(wiring_.input_channel);
        took = true;
      }
      waiting_for_input_ = can_admit && !took;
    }
    if (!took) break;
  }
  in_flight_published_.store(in_flight_, std::memory_order_relaxed);
}

void AsyncStageRunner::StartPending() {
  const std::size_t max_in_flight = stage_.max_in_flight();
  while (pending_pos_ < pending_.size() && in_flight_ < max_in_flight) {
    while (pending_run_left_ == 0) {
      ++pending_run_;
      pending_run_left_ = pending_.runs[pending_run_].count;
    }
    --pending_run_left_;
    const BatchId batch = pending_.runs[pending_run_].batch;
    Record& record = pending_.records[pending_pos_++];
    if (record.failed()) {
      Emit(batch, std::move(record));  // failed records skip the stage
      continue;
    }
    if (abandoned_.contains(record.id())) {
      // The stage still holds this id from an attempt whose deadline passed:
      // starting it again could confuse the stage's own books.
      records_failed_.fetch_add(1, std::memory_order_relaxed);
      record.Fail(FailureReason::kInternal,
                  "stage " + wiring_.name + ": item id " + std::to_string(record.id()) +
                      " is still held by the stage from an abandoned attempt");
      Emit(batch, std::move(record));
      continue;
    }
    auto [it, inserted] = in_flight_batches_.try_emplace(record.id(), InFlight{batch, 0});
    if (!inserted && it->second.batch != batch) {
      records_failed_.fetch_add(1, std::memory_order_relaxed);
      record.Fail(FailureReason::kInternal, "stage " + wiring_.name + ": item id " +
                                                std::to_string(record.id()) +
                                                " is already in flight from batch " +
                                                std::to_string(it->second.batch));
      Emit(batch, std::move(record));
      continue;
    }
    ++it->second.count;
    ++in_flight_;
    if (it->second.count == 1) it->second.started = loop_->Now();
    if (it->second.deadline_timer == 0) {
      const ItemId id = record.id();
      it->second.deadline_timer =
          loop_->AddTimer(deadline_, [this, id] { DeadlinePassed(id); });
    }
    stage_.Start(std::move(record), *this);  // may call Complete() at once
  }
  if (pending_pos_ == pending_.size() && pending_.records.capacity() != 0) {
    pending_ = Chunk{};  // give the memory back while waiting for input
    pending_pos_ = 0;
  }
}

void AsyncStageRunner::Complete(Record record) {
  auto it = in_flight_batches_.find(record.id());
  if (it == in_flight_batches_.end()) {
    if (auto late = abandoned_.find(record.id()); late != abandoned_.end()) {
      // Failed at its deadline already; this late copy is discarded.
      if (--late->second == 0) abandoned_.erase(late);
      return;
    }
    // A stage completed a record it was not given (or twice): the batch counts
    // can no longer be trusted, and carrying on would lose or duplicate results.
    std::fprintf(stderr, "sluice: stage %s completed item %llu that is not in flight\n",
                 wiring_.name.c_str(), static_cast<unsigned long long>(record.id()));
    std::abort();
  }
  const BatchId batch = it->second.batch;
  const double seconds =
      std::chrono::duration<double>(loop_->Now() - it->second.started).count();
  const auto bucket = std::lower_bound(SecondsHistogram::kBounds.begin(),
                                       SecondsHistogram::kBounds.end(), seconds) -
                      SecondsHistogram::kBounds.begin();
  seconds_counts_[static_cast<std::size_t>(bucket)].fetch_add(1, std::memory_order_relaxed);
  seconds_sum_us_.fetch_add(static_cast<std::uint64_t>(std::max(0.0, seconds) * 1e6),
                            std::memory_order_relaxed);
  if (--it->second.count == 0) {
    if (it->second.deadline_timer != 0) loop_->CancelTimer(it->second.deadline_timer);
    in_flight_batches_.erase(it);
  }
  --in_flight_;
  records_out_.fetch_add(1, std::memory_order_relaxed);
  if (record.failed()) records_failed_.fetch_add(1, std::memory_order_relaxed);
  Emit(batch, std::move(record));
}

void AsyncStageRunner::DeadlinePassed(ItemId id) {
  auto it = in_flight_batches_.find(id);
  if (it == in_flight_batches_.end()) return;
  it->second.deadline_timer = 0;
  const BatchId batch = it->second.batch;
  const std::size_t copies = it->second.count;
  records_abandoned_.fetch_add(copies, std::memory_order_relaxed);
  // The stage should give the record back from inside this call (Complete() above).
  stage_.Abandon(id, *this);
  it = in_flight_batches_.find(id);
  if (it == in_flight_batches_.end()) return;
  // The stage kept it: fail a record of our own in its place, and discard the
  // stage's copies when (if ever) they come back.
  const std::size_t kept = it->second.count;
  in_flight_batches_.erase(it);
  abandoned_[id] += kept;
  for (std::size_t i = 0; i < kept; ++i) {
    Record stand_in(id, "");
    stand_in.Fail(FailureReason::kTimeout, "stage " + wiring_.name +
                                               ": the record's deadline of " +
                                               std::to_string(deadline_.count()) +
                                               " ms passed (the stage kept the record)");
    --in_flight_;
    records_out_.fetch_add(1, std::memory_order_relaxed);
    records_failed_.fetch_add(1, std::memory_order_relaxed);
    Emit(batch, std::move(stand_in));
  }
}

void AsyncStageRunner::FailStage(Status error) {
  if (stage_failed_) return;
  stage_failed_ = true;
  if (wiring_.failed) {
    wiring_.failed(error.WithContext("stage " + wiring_.name));
  }
}

void AsyncStageRunner::Emit(BatchId batch, Record record) {
  if (open_.empty()) {
    open_.records.reserve(wiring_.chunk_size);
    flush_timer_ = loop_->AddTimer(kFlushDelay, [this] {
      flush_timer_ = 0;
      if (!open_.empty()) FlushOpen();
    });
  }
  open_.Append(batch, std::move(record));
  if (open_.size() >= wiring_.chunk_size) FlushOpen();
}

void AsyncStageRunner::FlushOpen() {
  if (flush_timer_ != 0) {
    loop_->CancelTimer(flush_timer_);
    flush_timer_ = 0;
  }
  ready_.push_back(std::move(open_));
  open_ = Chunk{};
}

SecondsHistogram AsyncStageRunner::seconds() const {
  SecondsHistogram histogram;
  for (std::size_t i = 0; i < histogram.counts.size(); ++i) {
    histogram.counts[i] = seconds_counts_[i].load(std::memory_order_relaxed);
    histogram.count += histogram.counts[i];
  }
  histogram.sum =
      static_cast<double>(seconds_sum_us_.load(std::memory_order_relaxed)) / 1e6;
  return histogram;
}

}  // namespace sluice
