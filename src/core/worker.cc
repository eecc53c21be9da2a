#include "src/core/worker.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

namespace sluice {

std::string ResultFieldsJson(const Record& record) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [name, value] : record.fields()) {
    if (const auto* b = std::get_if<bool>(&value)) {
      object[name] = *b;
    } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
      object[name] = *i;
    } else if (const auto* d = std::get_if<double>(&value)) {
      object[name] = *d;
    } else if (const auto* s = std::get_if<std::string>(&value)) {
      object[name] = *s;
    }
  }
  if (object.empty()) return "";
  // Replace rather than throw on invalid UTF-8 produced by a stage.
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Worker::Worker(Store& store, WorkerOptions options, std::vector<NamedStage> stages,
               BatchOutput* output)
    : store_(store),
      output_(output),
      options_(std::move(options)),
      stages_(std::move(stages)) {
  if (options_.owner.empty()) options_.owner = OwnerId();
  options_.max_batches_in_flight =
      std::max<std::size_t>(1, options_.max_batches_in_flight);
  options_.runtime.max_batches_in_flight = options_.max_batches_in_flight;
}

Worker::~Worker() = default;

void Worker::RequestStop() {
  stop_requested_ = true;
  std::lock_guard lock(mutex_);
  changed_.notify_all();
}

void Worker::Abort() {
  abort_requested_ = true;
  stop_requested_ = true;
  std::lock_guard lock(mutex_);
  changed_.notify_all();
}

WorkerProgress Worker::Progress() const {
  std::lock_guard lock(mutex_);
  WorkerProgress progress = progress_;
  progress.batches_in_flight = held_.size();
  return progress;
}

std::vector<StageCounters> Worker::StageProgress() const {
  std::lock_guard lock(mutex_);
  if (runtime_ == nullptr) return {};
  return runtime_->Counters();
}

void Worker::Commit(BatchId batch, std::vector<Record> records) {
  Lease lease;
  {
    std::lock_guard lock(mutex_);
    auto it = held_.find(batch);
    if (it == held_.end()) {
      if (commit_error_.ok()) {
        commit_error_ =
            Internal(fmt::format("worker: batch {} finished but is not held", batch));
      }
      changed_.notify_all();
      return;
    }
    lease = it->second;
  }
  std::sort(records.begin(), records.end(),
            [](const Record& a, const Record& b) { return a.id() < b.id(); });
  if (output_ != nullptr) {
    // Outputs first, then the commit: a crash in between only means the batch is
    // redone and its outputs overwritten (src/core/batch_output.h).
    Status written = output_->WriteBatch(batch, records);
    if (!written.ok()) {
      // The batch stays uncommitted: give it back for a later run, and stop this one.
      store_.ReleaseBatch(lease).IgnoreError();
      std::lock_guard lock(mutex_);
      held_.erase(batch);
      if (commit_error_.ok()) {
        commit_error_ = written.WithContext(
            fmt::format("outputs of batch {} (not committed)", batch));
      }
      changed_.notify_all();
      return;
    }
  }
  std::vector<ResultRow> rows;
  rows.reserve(records.size());
  std::uint64_t failed = 0;
  for (const Record& record : records) {
    ResultRow row;
    row.item_id = record.id();
    row.reason = record.reason();
    row.error = record.error();
    row.fields_json = ResultFieldsJson(record);
    failed += record.failed() ? 1 : 0;
    rows.push_back(std::move(row));
  }
  Status status = store_.CommitBatch(lease, rows);

  std::lock_guard lock(mutex_);
  held_.erase(batch);
  if (status.ok()) {
    progress_.batches_committed++;
    progress_.items_committed += rows.size();
    progress_.items_failed += failed;
  } else if (status.code() == StatusCode::kStaleLease) {
    // Routine after a stall: the batch's new owner redoes it.
    progress_.batches_lost++;
  } else if (commit_error_.ok()) {
    commit_error_ = status;
  }
  changed_.notify_all();
}

void Worker::RenewLoop() {
  const auto period = std::max<std::chrono::milliseconds>(options_.lease / 3,
                                                          std::chrono::milliseconds(10));
  std::unique_lock lock(mutex_);
  while (!renewer_stop_) {
    changed_.wait_for(lock, period, [&] { return renewer_stop_; });
    if (renewer_stop_) break;
    std::vector<Lease> leases;
    for (const auto& [batch, lease] : held_) leases.push_back(lease);
    if (leases.empty()) continue;
    lock.unlock();
    // A failed renewal is not fatal: the commit's token check decides.
    Result<std::vector<BatchId>> lost = store_.RenewLeases(leases, options_.lease);
    lock.lock();
    (void)lost;
  }
}

void Worker::ReleaseHeldLeases() {
  std::vector<Lease> leases;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [batch, lease] : held_) leases.push_back(lease);
    held_.clear();
  }
  for (const Lease& lease : leases) store_.ReleaseBatch(lease).IgnoreError();
}

Result<bool> Worker::GroupFinished() {
  SLUICE_ASSIGN_OR_RETURN(StoreSummary summary, store_.Summarize(options_.group));
  return summary.batches_pending == 0 && summary.batches_leased == 0;
}

Result<WorkerEnd> Worker::Run() {
  Runtime runtime(options_.runtime, std::move(stages_),
                  [this](BatchId batch, std::vector<Record> records) {
                    Commit(batch, std::move(records));
                  });
  SLUICE_RETURN_IF_ERROR(runtime.Start());
  {
    std::lock_guard lock(mutex_);
    runtime_ = &runtime;
  }
  std::thread renewer([this] { RenewLoop(); });

  Status error;
  bool finished = false;
  while (!stop_requested_) {
    {
      std::lock_guard lock(mutex_);
      if (!commit_error_.ok()) break;
    }
    std::size_t room = 0;
    {
      std::unique_lock lock(mutex_);
      // The budget is full: wait for a commit to free a slot.
      changed_.wait(lock, [&] {
        return stop_requested_.load() || !commit_error_.ok() ||
               held_.size() < options_.max_batches_in_flight;
      });
      if (stop_requested_ || !commit_error_.ok()) break;
      room = options_.max_batches_in_flight - held_.size();
    }
    Result<std::vector<Lease>> leases =
        store_.LeaseBatches(options_.group, options_.owner, room, options_.lease);
    if (!leases.ok()) {
      error = leases.status();
      break;
    }
    bool submitted_all = true;
    for (Lease& lease : *leases) {
      {
        std::lock_guard lock(mutex_);
        held_[lease.batch_id] = lease;
      }
      Result<std::vector<Record>> items = store_.ReadBatchItems(lease);
      if (!items.ok()) {
        std::lock_guard lock(mutex_);
        held_.erase(lease.batch_id);
        if (items.status().code() == StatusCode::kStaleLease) continue;
        error = items.status();
        break;
      }
      if (!runtime.Submit(lease.batch_id, std::move(items).value())) {
        submitted_all = false;
        break;
      }
    }
    if (!error.ok() || !submitted_all) break;
    if (!leases->empty()) continue;

    // Nothing to lease now. If nothing is in flight either, the group may be done;
    // otherwise batches held elsewhere may still expire and come back to us.
    bool idle = false;
    {
      std::lock_guard lock(mutex_);
      idle = held_.empty();
    }
    if (idle) {
      Result<bool> done = GroupFinished();
      if (!done.ok()) {
        error = done.status();
        break;
      }
      if (*done) {
        finished = true;
        break;
      }
    }
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, options_.idle_poll, [&] {
      return stop_requested_.load() || !commit_error_.ok() || (!idle && held_.empty());
    });
  }

  if (finished) {
    runtime.Finish();
  } else {
    if (error.ok() && !abort_requested_) {
      // A stop: give the batches in flight the grace period to finish and commit.
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, options_.grace, [&] {
        return held_.empty() || abort_requested_.load() || !commit_error_.ok();
      });
    }
    bool drained = false;
    {
      std::lock_guard lock(mutex_);
      drained = held_.empty();
    }
    if (drained) {
      runtime.Finish();
    } else {
      runtime.Abort();
    }
  }
  {
    std::lock_guard lock(mutex_);
    renewer_stop_ = true;
    runtime_ = nullptr;
    changed_.notify_all();
    if (error.ok()) error = commit_error_;
  }
  renewer.join();
  ReleaseHeldLeases();
  if (!error.ok()) return error.WithContext(fmt::format("worker {}", options_.owner));
  return finished ? WorkerEnd::kFinished : WorkerEnd::kStopped;
}

}  // namespace sluice
