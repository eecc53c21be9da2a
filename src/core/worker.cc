#include "src/core/worker.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "src/core/payload_pack.h"
#include "src/core/record_codec.h"
#include "src/core/result_json.h"

namespace sluice {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const Status& StatusOf(const Status& status) { return status; }
template <typename T>
Status StatusOf(const Result<T>& result) {
  return result.ToStatus();
}

std::string JoinIds(const std::vector<BatchId>& ids) {
  std::string text;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i == 8 && ids.size() > 10) {
      text += fmt::format(" and {} more", ids.size() - i);
      break;
    }
    text += fmt::format("{}{}", i == 0 ? "" : ", ", ids[i]);
  }
  return text;
}

// The longest record deadline of the async stages, or 0 without any.
milliseconds LongestRecordDeadline(const std::vector<NamedStage>& stages) {
  milliseconds longest{0};
  for (const NamedStage& named : stages) {
    if (named.stage == nullptr || named.stage->kind() != Stage::Kind::kAsync) continue;
    longest =
        std::max(longest, static_cast<const AsyncStage&>(*named.stage).record_deadline());
  }
  return longest;
}

// Wall-clock milliseconds since the epoch, for reports.
std::int64_t WallClockMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Appends `records` to a payload: the encodings the pack stage left in them one by
// one (a batch never in memory whole), then the others (failed before the pack
// stage ran, or refused by it) encoded here. Returns the bytes appended.
Result<std::uint64_t> AppendRecords(BlobStore::Writer& writer,
                                    const std::vector<Record*>& records) {
  std::uint64_t bytes = 0;
  std::vector<Record> rest;
  for (Record* record : records) {
    if (std::optional<std::string> packed = TakePackedRecord(*record)) {
      SLUICE_RETURN_IF_ERROR(writer.Append(*packed));
      bytes += packed->size();
    } else {
      rest.push_back(*record);
    }
  }
  if (!rest.empty()) {
    SLUICE_ASSIGN_OR_RETURN(std::string encoded, EncodeRecords(rest));
    SLUICE_RETURN_IF_ERROR(writer.Append(encoded));
    bytes += encoded.size();
  }
  return bytes;
}

}  // namespace

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
  options_.runtime.max_records_in_flight = options_.max_records_in_flight;
  if (options_.stall_timeout.count() <= 0) {
    options_.stall_timeout = LongestRecordDeadline(stages_) + kStallMargin;
  }
  if (options_.has_next_group) {
    stages_.push_back(NamedStage{kPayloadPackStage, std::make_unique<PayloadPackStage>()});
  }
  options_.busy_backoff_max = std::max(options_.busy_backoff_max, milliseconds(1));
  options_.unavailable_backoff_max =
      std::max(options_.unavailable_backoff_max, milliseconds(1));
}

Worker::~Worker() = default;

void Worker::LogLine(std::string_view line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    fmt::print(stderr, "sluice: {}\n", line);
  }
}

void Worker::Warn(const std::string& cause, std::string_view line) {
  {
    std::lock_guard lock(warn_mutex_);
    if (warnings_[cause]++ != 0) return;
  }
  LogLine(line);
}

bool Worker::Ending() const {
  return stop_requested_.load() || stalled_.load() || !commit_error_.ok();
}

void Worker::RequestStop() {
  stop_requested_ = true;
  std::lock_guard lock(mutex_);
  // A source blocked on the runtime's budget stops waiting; what was submitted
  // goes on within the grace period.
  if (runtime_ != nullptr) runtime_->CloseInput();
  changed_.notify_all();
}

void Worker::Abort() {
  abort_requested_ = true;
  stop_requested_ = true;
  std::lock_guard lock(mutex_);
  if (runtime_ != nullptr) runtime_->CloseInput();
  changed_.notify_all();
}

WorkerProgress Worker::Progress() const {
  std::lock_guard lock(mutex_);
  WorkerProgress progress = progress_;
  progress.batches_in_flight = held_.size();
  progress.store_unreachable = unreachable_waits_.load() > 0;
  const auto now = std::chrono::system_clock::now();
  for (const auto& [batch, entry] : held_) {
    if (entry.started == std::chrono::system_clock::time_point{}) continue;  // not submitted
    progress.oldest_batch_ms = std::max<std::int64_t>(
        progress.oldest_batch_ms,
        std::chrono::duration_cast<milliseconds>(now - entry.started).count());
  }
  if (runtime_ != nullptr) {
    const RuntimeProgress runtime = runtime_->Progress();
    progress.records_in_flight = runtime.records_in_flight;
    progress.records_done = runtime.records_done;
    progress.pool_threads = runtime.pool_threads;
    progress.pool_threads_busy = runtime.pool_threads_busy;
  }
  return progress;
}

std::vector<StageCounters> Worker::StageProgress() const {
  std::lock_guard lock(mutex_);
  if (runtime_ == nullptr) return final_stages_;
  return runtime_->Counters();
}

std::string Worker::Describe() const {
  std::vector<BatchId> held;
  std::vector<StageCounters> stages;
  RuntimeProgress runtime;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [batch, entry] : held_) held.push_back(batch);
    if (runtime_ != nullptr) {
      stages = runtime_->Counters();
      runtime = runtime_->Progress();
    }
  }
  std::string text = fmt::format(
      "{} batches held ({}), {} records in flight, {} dropped records draining",
      held.size(), held.empty() ? "none" : JoinIds(held), runtime.records_in_flight,
      runtime.records_draining);
  for (const StageCounters& stage : stages) {
    text += fmt::format("\n  stage {}: {} records in, {} queued chunks", stage.name,
                        stage.records_in, stage.queued_chunks);
    if (stage.in_flight != 0 || !stage.waiting_for.empty()) {
      text += fmt::format(", {} in flight", stage.in_flight);
    }
    if (!stage.waiting_for.empty()) text += " (" + stage.waiting_for + ")";
    if (stage.records_abandoned != 0) {
      text += fmt::format(", {} failed at their deadline", stage.records_abandoned);
    }
  }
  return text;
}

template <typename Call>
auto Worker::RetryWhileTransient(std::string_view what, Call&& call) -> decltype(call()) {
  milliseconds busy_backoff{50};
  milliseconds unavailable_backoff{100};
  bool waiting_for_store = false;  // counted in store_waits_
  bool was_unreachable = false;    // counted in unreachable_waits_
  const auto started = Clock::now();
  for (;;) {
    auto result = call();
    const Status status = StatusOf(result);
    const bool busy = status.code() == StatusCode::kBusy;
    const bool unavailable = status.code() == StatusCode::kUnavailable;
    if ((!busy && !unavailable) || abort_requested_.load() || stalled_.load()) {
      {
        std::lock_guard lock(mutex_);
        progress_.store_seconds[std::string(what)].Observe(
            std::chrono::duration<double>(Clock::now() - started).count());
      }
      if (was_unreachable) unreachable_waits_--;
      if (waiting_for_store) {
        store_waits_--;
        if (was_unreachable && status.code() != StatusCode::kUnavailable) {
          Warn(fmt::format("back {}", what),
               fmt::format("{}: the store is reachable again", what));
        }
      }
      return result;
    }
    milliseconds wait{};
    {
      std::lock_guard lock(mutex_);
      if (busy) {
        progress_.busy_retries++;
        wait = busy_backoff;
        busy_backoff = std::min(busy_backoff * 2, options_.busy_backoff_max);
      } else {
        progress_.unavailable_retries++;
        wait = unavailable_backoff;
        unavailable_backoff =
            std::min(unavailable_backoff * 2, options_.unavailable_backoff_max);
      }
    }
    // The wait is the store's, not a stage's: the stall watchdog waits too.
    if (!waiting_for_store) {
      waiting_for_store = true;
      store_waits_++;
    }
    if (busy) {
      Warn(fmt::format("busy {}", what),
           fmt::format("{}: the store is busy ({}); retrying with backoff (up to {} ms "
                       "between tries)",
                       what, status.ToString(), options_.busy_backoff_max.count()));
    } else {
      if (!was_unreachable) unreachable_waits_++;
      was_unreachable = true;
      Warn(
          fmt::format("unavailable {}", what),
          fmt::format("{}: cannot reach the store ({}); trying again with backoff (up "
                      "to {} ms between tries) until it is back or the worker is "
                      "stopped",
                      what, status.ToString(), options_.unavailable_backoff_max.count()));
    }
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, wait,
                      [&] { return abort_requested_.load() || stalled_.load(); });
  }
}

void Worker::ReleaseOrRemember(const Lease& lease) {
  Status released =
      RetryWhileTransient("release", [&] { return store_.ReleaseBatch(lease); });
  if (released.ok()) return;
  Warn("release " + std::string(StatusCodeName(released.code())),
       fmt::format("could not release batch {}: {}; it comes back when its lease "
                   "expires",
                   lease.batch_id, released.ToString()));
  std::lock_guard lock(mutex_);
  unreleased_.push_back(lease);
}

Status Worker::CommitWithRetries(const Lease& lease, std::span<const ResultRow> rows,
                                 StagedBatch* staged) {
  std::function<Status()> publish;
  if (staged != nullptr) publish = [staged] { return staged->Publish(); };
  return RetryWhileTransient("commit",
                             [&] { return store_.CommitBatch(lease, rows, publish); });
}

void Worker::ForgetHeld(BatchId batch) {
  if (auto it = held_bytes_.find(batch); it != held_bytes_.end()) {
    progress_.held_bytes -= it->second;
    held_bytes_.erase(it);
  }
  spill_errors_.erase(batch);
  damaged_.erase(batch);
}

void Worker::Partial(BatchId batch, std::span<Record> records) {
  if (options_.has_next_group) {
    // Appended to the payload to come now; the records keep only what their result
    // rows need.
    DropUnheldPayloads();
    std::optional<std::uint64_t> token;
    {
      std::lock_guard lock(mutex_);
      if (auto it = held_.find(batch); it != held_.end()) token = it->second.lease.token;
    }
    if (token.has_value()) {
      if (Status appended = AppendPayload(batch, *token, records); !appended.ok()) {
        std::lock_guard lock(mutex_);
        spill_errors_.emplace(batch, std::move(appended));
      }
    }
    for (Record& record : records) record.EraseInFlightData();
    return;
  }
  if (output_ == nullptr) {
    // Results only: nothing will read the bytes a record carries.
    for (Record& record : records) record.EraseInFlightData();
    return;
  }
  const std::uint64_t held = output_->Hold(batch, records);
  if (held == 0) return;
  {
    std::lock_guard lock(mutex_);
    if (progress_.held_bytes + held <= options_.max_held_bytes) {
      progress_.held_bytes += held;
      held_bytes_[batch] += held;
      return;
    }
  }
  Status spilled = output_->Spill(batch, records);
  std::lock_guard lock(mutex_);
  progress_.spilled_records += records.size();
  if (!spilled.ok()) spill_errors_.emplace(batch, std::move(spilled));
}

void Worker::Commit(BatchId batch, std::vector<Record> records) {
  Lease lease;
  std::chrono::system_clock::time_point started;
  Status spill_error;
  Status damaged;
  EncodedPart encoded;
  {
    std::lock_guard lock(mutex_);
    if (auto it = spill_errors_.find(batch); it != spill_errors_.end()) {
      spill_error = it->second;
    }
    if (auto it = damaged_.find(batch); it != damaged_.end()) damaged = it->second;
    ForgetHeld(batch);
    auto it = held_.find(batch);
    if (it == held_.end()) {
      // A renewal found the lease lost while the batch was on its way here.
      if (lost_.erase(batch) == 0 && commit_error_.ok()) {
        commit_error_ =
            Internal(fmt::format("worker: batch {} finished but is not held", batch));
      }
      changed_.notify_all();
      return;
    }
    it->second.committing = true;
    lease = it->second.lease;
    started = it->second.started;
  }
  if (auto it = encoded_.find(batch); it != encoded_.end()) {
    encoded = std::move(it->second);
    encoded_.erase(it);
  }
  if (!damaged.ok()) {
    // Its payload was damaged: what went through is not the batch. Redone instead.
    if (output_ != nullptr) output_->Discard(batch);
    Status redone = RedoBatch(lease, damaged);
    std::lock_guard lock(mutex_);
    held_.erase(batch);
    if (redone.code() == StatusCode::kStaleLease) {
      progress_.batches_lost++;  // taken over meanwhile: its new owner redoes it
    } else if (!redone.ok() && commit_error_.ok()) {
      commit_error_ = redone.WithContext(fmt::format("batch {} (not committed)", batch));
    }
    changed_.notify_all();
    return;
  }
  if (!spill_error.ok()) {
    // Part of the batch went wrong on its way (its records could not be kept for
    // the outputs or the next group): not committed.
    // Give it back for a later run, and stop this one.
    if (output_ != nullptr) output_->Discard(batch);
    ReleaseOrRemember(lease);
    std::lock_guard lock(mutex_);
    held_.erase(batch);
    if (commit_error_.ok()) {
      commit_error_ = spill_error.WithContext(fmt::format("batch {} (not committed)", batch));
    }
    changed_.notify_all();
    return;
  }
  std::sort(records.begin(), records.end(),
            [](const Record& a, const Record& b) { return a.id() < b.id(); });
  std::unique_ptr<StagedBatch> staged;
  if (output_ != nullptr) {
    const FinishedBatch finished{lease.batch_id, lease.first_item, lease.item_count,
                                 started, std::chrono::system_clock::now()};
    Result<std::unique_ptr<StagedBatch>> written = output_->StageBatch(finished, records);
    if (!written.ok()) {
      // The batch stays uncommitted: give it back for a later run, and stop this one.
      output_->Discard(batch);
      ReleaseOrRemember(lease);
      std::lock_guard lock(mutex_);
      held_.erase(batch);
      if (commit_error_.ok()) {
        commit_error_ = written.status().WithContext(
            fmt::format("outputs of batch {} (not committed)", batch));
      }
      changed_.notify_all();
      return;
    }
    staged = std::move(written).value();
  }
  if (options_.has_next_group) {
    Status written = WritePayload(lease, records, std::move(encoded));
    if (!written.ok()) {
      ReleaseOrRemember(lease);
      std::lock_guard lock(mutex_);
      held_.erase(batch);
      if (commit_error_.ok()) {
        commit_error_ = written.WithContext(
            fmt::format("payload of batch {} for the next group (not committed)", batch));
      }
      changed_.notify_all();
      return;
    }
  }
  std::vector<ResultRow> rows;
  rows.reserve(records.size());
  std::uint64_t failed = 0;
  std::uint64_t filtered = 0;
  for (const Record& record : records) {
    ResultRow row;
    row.item_id = record.id();
    row.reason = record.reason();
    row.error = record.error();
    row.fields_json = ResultFieldsJson(record);
    failed += IsFailure(record.reason()) ? 1 : 0;
    filtered += record.reason() == FailureReason::kFiltered ? 1 : 0;
    rows.push_back(std::move(row));
  }
  Status status = CommitWithRetries(lease, rows, staged.get());
  staged.reset();  // removes what was staged and not published
  if (!status.ok() && status.code() != StatusCode::kStaleLease) {
    ReleaseOrRemember(lease);  // not committed: give it back
  }
  if (!status.ok() && options_.has_next_group) {
    // Never made valid: the next owner of the batch writes its own.
    const std::string name = PayloadName(options_.group, batch, lease.token);
    if (Status removed = options_.blobs->Remove(name); !removed.ok()) {
      Warn("remove payload", fmt::format("could not remove the payload {} of an attempt "
                                         "that did not commit: {}; it is collected later",
                                         name, removed.ToString()));
    }
  }
  if (status.ok() && !options_.previous_group.empty()) RemovePreviousPayloads(batch);

  std::lock_guard lock(mutex_);
  held_.erase(batch);
  if (status.ok()) {
    progress_.batches_committed++;
    progress_.items_committed += rows.size();
    progress_.items_failed += failed;
    progress_.items_filtered += filtered;
    for (const ResultRow& row : rows) {
      if (IsFailure(row.reason)) {
        progress_.failures[std::string(FailureReasonName(row.reason))]++;
      }
    }
  } else if (status.code() == StatusCode::kStaleLease) {
    // Routine after a stall: the batch's new owner redoes it.
    progress_.batches_lost++;
  } else if (commit_error_.ok()) {
    commit_error_ = status;
  }
  changed_.notify_all();
}

Status Worker::SubmitBatch(Runtime& runtime, const Lease& lease) {
  Result<std::vector<Record>> items =
      RetryWhileTransient("read batch", [&] { return store_.ReadBatchItems(lease); });
  if (!items.ok()) return items.status();
  if (options_.previous_group.empty() || items->empty()) {
    return runtime.Submit(lease.batch_id, std::move(items).value());
  }

  // The records the previous group left, from the payload its commit made valid.
  const std::string& previous = options_.previous_group;
  Result<std::optional<std::uint64_t>> token = RetryWhileTransient(
      "read batch", [&] { return store_.CommittedToken(previous, lease.batch_id); });
  if (!token.ok()) return token.status();
  if (!token->has_value()) {
    return Internal(fmt::format("batch {} is leased in group {} but not done in group {}",
                                lease.batch_id, lease.group, previous));
  }
  const std::string name = PayloadName(previous, lease.batch_id, **token);
  auto context = [&] {
    return fmt::format("the payload of batch {} from group {} ({} in {})", lease.batch_id,
                       previous, name, options_.blobs->Describe());
  };
  Result<std::unique_ptr<BlobStore::Reader>> reader = options_.blobs->OpenRead(name);
  if (!reader.ok()) {
    const Status lost = reader.status().WithContext(context());
    if (reader.status().code() != StatusCode::kNotFound) return lost;
    SLUICE_RETURN_IF_ERROR(RedoBatch(lease, lost));
    return StaleLease(fmt::format("batch {}: given back to be redone", lease.batch_id));
  }
  RecordStream stream(
      [&](char* into, std::size_t size) { return (*reader)->Read(into, size); },
      *options_.payload_decoders);

  // The items to process (a retry may have left some of the payload's done here).
  std::map<ItemId, const Record*> wanted;
  for (const Record& item : *items) wanted[item.id()] = &item;
  Status damaged;
  auto next = [&]() -> Record {
    while (damaged.ok()) {
      Result<std::optional<Record>> record = stream.Next();
      if (record.ok() && !record->has_value()) {
        record = Corruption(fmt::format("{} of the batch's items are missing", wanted.size()));
      }
      if (!record.ok()) {
        damaged = record.status().WithContext(context());
        std::lock_guard lock(mutex_);
        auto held = held_.find(lease.batch_id);
        if (held != held_.end() && held->second.lease.token == lease.token) {
          damaged_.emplace(lease.batch_id, damaged);
        }
        break;
      }
      auto found = wanted.find((*record)->id());
      if (found == wanted.end()) continue;  // done here already, or given twice
      wanted.erase(found);
      return std::move(**record);
    }
    // Never committed (Commit() redoes the batch): the rest only has to pass.
    auto first = wanted.begin();
    Record failed(first->first, first->second->url());
    failed.Fail(FailureReason::kInternal, damaged.message());
    wanted.erase(first);
    return failed;
  };
  return runtime.SubmitFrom(lease.batch_id, items->size(), next);
}

Status Worker::RedoBatch(const Lease& lease, const Status& why) {
  Status redone =
      RetryWhileTransient("redo batch", [&] { return store_.RedoFromFirstGroup(lease); });
  if (!redone.ok()) return redone;
  Warn("payload lost",
       fmt::format("{}; batch {} goes back to be redone from the first group",
                   why.ToString(), lease.batch_id));
  std::lock_guard lock(mutex_);
  progress_.batches_redone++;
  return Status::Ok();
}

Status Worker::AppendPayload(BatchId batch, std::uint64_t token,
                             std::span<Record> records) {
  EncodedPart& part = encoded_[batch];
  if (part.writer == nullptr) {
    SLUICE_ASSIGN_OR_RETURN(
        part.writer, options_.blobs->StartPut(PayloadName(options_.group, batch, token)));
  }
  std::vector<Record*> all;
  for (Record& record : records) all.push_back(&record);
  SLUICE_ASSIGN_OR_RETURN(std::uint64_t bytes, AppendRecords(*part.writer, all));
  part.bytes += bytes;
  for (const Record& record : records) part.ids.insert(record.id());
  return Status::Ok();
}

void Worker::DropUnheldPayloads() {
  std::vector<BatchId> unheld;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [batch, part] : encoded_) {
      if (!held_.contains(batch)) unheld.push_back(batch);
    }
  }
  for (BatchId batch : unheld) encoded_.erase(batch);  // the writer removes its file
}

Status Worker::WritePayload(const Lease& lease, std::span<Record> records,
                            EncodedPart encoded) {
  std::vector<Record*> rest;
  for (Record& record : records) {
    if (!encoded.ids.contains(record.id())) rest.push_back(&record);
  }
  if (encoded.writer == nullptr) {
    SLUICE_ASSIGN_OR_RETURN(
        encoded.writer, options_.blobs->StartPut(
                            PayloadName(options_.group, lease.batch_id, lease.token)));
  }
  SLUICE_ASSIGN_OR_RETURN(std::uint64_t last, AppendRecords(*encoded.writer, rest));
  SLUICE_RETURN_IF_ERROR(encoded.writer->Commit());
  std::lock_guard lock(mutex_);
  progress_.payload_bytes += encoded.bytes + last;
  return Status::Ok();
}

void Worker::RemovePreviousPayloads(BatchId batch) {
  Result<std::vector<std::string>> names =
      options_.blobs->List(PayloadPrefix(options_.previous_group, batch));
  Status removed = names.ToStatus();
  if (names.ok()) {
    for (const std::string& name : *names) {
      if (Status one = options_.blobs->Remove(name); !one.ok() && removed.ok())
        removed = one;
    }
  }
  if (!removed.ok()) {
    Warn("remove payload",
         fmt::format("could not remove the payloads of batch {} from "
                     "group {}: {}; they are collected later",
                     batch, options_.previous_group, removed.ToString()));
  }
}

void Worker::CollectOrphanPayloads() {
  const std::string& previous = options_.previous_group;
  Result<std::vector<std::string>> names = options_.blobs->List(previous + "/");
  std::uint64_t collected = 0;
  Status failed = names.ToStatus();
  if (names.ok()) {
    for (const std::string& name : *names) {
      std::optional<PayloadKey> key = ParsePayloadName(name);
      if (!key.has_value() || key->group != previous) continue;
      // Done here: nobody reads it any more. Done there under another token: the
      // payload of an attempt that never committed.
      Result<std::optional<std::uint64_t>> here =
          store_.CommittedToken(options_.group, key->batch);
      Result<std::optional<std::uint64_t>> there =
          store_.CommittedToken(previous, key->batch);
      if (!here.ok() || !there.ok()) {
        failed = here.ok() ? there.status() : here.status();
        break;
      }
      if (!here->has_value() && (!there->has_value() || **there == key->token)) continue;
      if (Status removed = options_.blobs->Remove(name); !removed.ok()) {
        failed = removed;
        break;
      }
      ++collected;
    }
  }
  if (!failed.ok()) {
    Warn(
        "collect payloads",
        fmt::format("could not collect old payloads of group {}: {}; trying again at the "
                    "next start",
                    previous, failed.ToString()));
  }
  // Payloads a writer of the previous group never finished (it died mid-batch).
  // Writers at work append at least every record deadline; an hour is far longer.
  Result<std::uint64_t> abandoned =
      options_.blobs->RemoveAbandoned(previous + "/", std::chrono::hours(1));
  if (abandoned.ok()) {
    collected += *abandoned;
  } else {
    Warn("collect payloads",
         fmt::format("could not collect unfinished payloads of group {}: {}", previous,
                     abandoned.status().ToString()));
  }
  if (collected > 0) {
    LogLine(fmt::format("collected {} payloads of group {} nobody reads any more",
                        collected, previous));
  }
}

void Worker::RenewHeld(std::unique_lock<std::mutex>& lock) {
  std::vector<Lease> leases;
  for (const auto& [batch, entry] : held_) {
    if (!entry.committing) leases.push_back(entry.lease);
  }
  if (leases.empty()) return;
  lock.unlock();
  const auto started = Clock::now();
  Result<std::vector<BatchId>> lost = store_.RenewLeases(leases, options_.lease);
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  lock.lock();
  progress_.store_seconds["renew"].Observe(seconds);
  lock.unlock();
  if (!lost.ok()) {
    lock.lock();
    progress_.renew_errors++;
    lock.unlock();
    std::vector<BatchId> ids;
    for (const Lease& lease : leases) ids.push_back(lease.batch_id);
    Warn("renew " + std::string(StatusCodeName(lost.status().code())),
         fmt::format("could not renew the leases of batches {}: {}; trying again "
                     "(a lease that expires meanwhile may be taken over, and its "
                     "batch is then dropped here)",
                     JoinIds(ids), lost.status().ToString()));
    lock.lock();
    return;
  }
  lock.lock();
  last_renewal_ms_ = WallClockMs();
  std::vector<BatchId> dropped;
  for (BatchId batch : *lost) {
    auto it = held_.find(batch);
    if (it == held_.end() || it->second.committing) continue;  // committed meanwhile
    const auto sent = std::find_if(leases.begin(), leases.end(),
                                   [&](const Lease& l) { return l.batch_id == batch; });
    if (sent == leases.end() || sent->token != it->second.lease.token) continue;
    held_.erase(it);
    ForgetHeld(batch);
    if (output_ != nullptr) output_->Discard(batch);
    progress_.batches_lost++;
    dropped.push_back(batch);
    // If the runtime already reported it, its Commit() finds it in lost_ and skips.
    if (runtime_ == nullptr || !runtime_->DropBatch(batch)) lost_.insert(batch);
  }
  if (dropped.empty()) return;
  changed_.notify_all();
  lock.unlock();
  LogLine(fmt::format(
      "lost the leases of batches {} (expired and taken over, or released): their "
      "records are dropped here, and their new owner does them",
      JoinIds(dropped)));
  lock.lock();
}

void Worker::Report(bool stopped) {
  WorkerReport report;
  report.owner = options_.owner;
  report.group = options_.group;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) report.host = host;
  report.started_ms = started_ms_;
  report.stopped = stopped;
  {
    std::lock_guard lock(mutex_);
    report.last_renewal_ms = last_renewal_ms_;
    report.batches_held = held_.size();
    report.items_committed = progress_.items_committed;
    report.items_failed = progress_.items_failed;
    // The stages' own counters, and each stage's records and time in it (for `sluice
    // plan`): live, or as the run ended.
    const std::vector<StageCounters> stages =
        runtime_ != nullptr ? runtime_->Counters() : final_stages_;
    if (!stages.empty()) {
      std::map<std::string, std::uint64_t> counters;
      for (std::size_t i = 0; i < stages.size(); ++i) {
        const StageCounters& stage = stages[i];
        for (const auto& [name, value] : stage.own) counters[name] += value;
        counters[fmt::format("stage_index{{stage={}}}", stage.name)] = i;
        counters[fmt::format("stage_records_total{{stage={}}}", stage.name)] =
            stage.seconds.count;
        counters[fmt::format("stage_us_total{{stage={}}}", stage.name)] =
            static_cast<std::uint64_t>(stage.seconds.sum * 1e6);
        if (stage.async) counters[fmt::format("stage_async{{stage={}}}", stage.name)] = 1;
        // The histogram's buckets, not cumulative, for the report's percentiles.
        for (std::size_t b = 0; b < stage.seconds.counts.size(); ++b) {
          if (stage.seconds.counts[b] == 0) continue;
          counters[fmt::format("stage_seconds_bucket{{stage={},le={}}}", stage.name,
                               b < SecondsHistogram::kBounds.size()
                                   ? fmt::format("{}", SecondsHistogram::kBounds[b])
                                   : std::string("+Inf"))] = stage.seconds.counts[b];
        }
      }
      stage_counters_json_ = nlohmann::json(counters).dump();
      // The time series keeps only what the report plots over time: records through
      // each stage, failures by reason, bytes and responses fetched.
      stage_sample_.clear();
      for (const auto& [name, value] : counters) {
        if (name.starts_with("stage_records_total") ||
            name.find("bytes") != std::string::npos ||
            name.starts_with("fetch_responses_total")) {
          stage_sample_[name] = value;
        }
      }
    }
    report.counters_json = stage_counters_json_;
    std::map<std::string, std::uint64_t> sample = stage_sample_;
    for (const auto& [reason, count] : progress_.failures) {
      sample[fmt::format("failures{{reason={}}}", reason)] = count;
    }
    report.sample_json = nlohmann::json(sample).dump();
  }
  if (Status written = store_.ReportWorker(report); !written.ok()) {
    Warn("report", fmt::format("could not report this worker to the store ({}); `sluice "
                               "status` shows it again once a report gets through",
                               written.ToString()));
  }
}

void Worker::Stall(milliseconds quiet) {
  if (stalled_.exchange(true)) return;
  LogLine(fmt::format(
      "stalled: no record moved for {} s while work remains; giving up the leases "
      "so that another run can take them. Waiting for: {}",
      quiet.count() / 1000, Describe()));
  std::lock_guard lock(mutex_);
  if (runtime_ != nullptr) runtime_->CloseInput();
  changed_.notify_all();
}

void Worker::SuperviseLoop() {
  const milliseconds renew_every = std::max(options_.lease / 3, milliseconds(10));
  const milliseconds tick = std::min(renew_every, milliseconds(250));
  Clock::time_point next_renew = Clock::now() + renew_every;
  Clock::time_point next_report = Clock::now();
  std::uint64_t last_movements = 0;
  Clock::time_point last_movement = Clock::now();
  std::uint64_t renew_errors_seen = 0;

  std::unique_lock lock(mutex_);
  while (!supervisor_stop_) {
    changed_.wait_for(lock, tick, [&] { return supervisor_stop_; });
    if (supervisor_stop_) break;
    const Clock::time_point now = Clock::now();

    // The stall watchdog: something must move while work remains.
    if (runtime_ != nullptr && !stalled_) {
      const RuntimeProgress runtime = runtime_->Progress();
      const bool work_remains = !held_.empty() || runtime.records_in_flight != 0;
      // Records through a stage, and batches committed or given up, are movement.
      const std::uint64_t movements =
          runtime.movements + progress_.batches_committed + progress_.batches_lost;
      if (movements != last_movements || !work_remains || store_waits_ > 0) {
        last_movements = movements;
        last_movement = now;
      } else if (now - last_movement >= options_.stall_timeout) {
        lock.unlock();
        Stall(std::chrono::duration_cast<milliseconds>(now - last_movement));
        lock.lock();
      }
    }

    if (options_.report_every.count() > 0 && now >= next_report) {
      next_report = now + options_.report_every;
      lock.unlock();
      Report(false);
      lock.lock();
      if (supervisor_stop_) break;
    }

    if (now < next_renew) continue;
    RenewHeld(lock);
    // After a failed renewal, try again soon (but not in a tight loop).
    const bool failed = progress_.renew_errors != renew_errors_seen;
    renew_errors_seen = progress_.renew_errors;
    next_renew =
        Clock::now() + (failed ? std::min(renew_every, milliseconds(1000)) : renew_every);
  }
}

void Worker::ReleaseHeldLeases() {
  std::vector<Lease> leases;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [batch, entry] : held_) leases.push_back(entry.lease);
    held_.clear();
    leases.insert(leases.end(), unreleased_.begin(), unreleased_.end());
    unreleased_.clear();
  }
  for (const Lease& lease : leases) {
    Status released =
        RetryWhileTransient("release", [&] { return store_.ReleaseBatch(lease); });
    if (!released.ok()) {
      Warn("release at end",
           fmt::format("could not release batch {}: {}; it comes back when its "
                       "lease expires",
                       lease.batch_id, released.ToString()));
    }
  }
}

void Worker::TakeBackOrphanedLeases() {
  const std::string me = options_.owner;
  Result<std::uint64_t> released = RetryWhileTransient("take back", [&] {
    return store_.ReleaseLeasesOfDeadOwners(
        options_.group, [&](std::string_view owner) { return owner == me; });
  });
  if (!released.ok()) {
    Warn("take back", fmt::format("could not take back leases of this worker: {}",
                                  released.status().ToString()));
  } else if (*released > 0) {
    LogLine(
        fmt::format("took back {} batches leased to this worker but no longer "
                    "held by it",
                    *released));
  }
  std::lock_guard lock(mutex_);
  unreleased_.clear();
}

Result<bool> Worker::GroupFinished() {
  SLUICE_ASSIGN_OR_RETURN(StoreSummary summary, RetryWhileTransient("status", [&] {
                            return store_.Summarize(options_.group);
                          }));
  return summary.batches_pending == 0 && summary.batches_leased == 0;
}

Result<WorkerEnd> Worker::Run() {
  {
    std::lock_guard lock(mutex_);
    if (ran_) return Internal("worker: Run() called twice");
    ran_ = true;
  }
  if ((options_.has_next_group || !options_.previous_group.empty()) &&
      options_.blobs == nullptr) {
    return Internal("worker: a stage group next to another needs a blob store");
  }
  if (!options_.previous_group.empty() && options_.payload_decoders == nullptr) {
    return Internal("worker: a group after another needs the payload decoders");
  }
  if (!options_.previous_group.empty()) CollectOrphanPayloads();
  started_ms_ = WallClockMs();
  Runtime runtime(
      options_.runtime, std::move(stages_),
      [this](BatchId batch, std::vector<Record> records) {
        Commit(batch, std::move(records));
      },
      [this](const Status& error) {
        std::lock_guard lock(mutex_);
        if (commit_error_.ok()) commit_error_ = error;
        changed_.notify_all();
      },
      [this](BatchId batch, std::span<Record> records) { Partial(batch, records); });
  SLUICE_RETURN_IF_ERROR(runtime.Start());
  {
    std::lock_guard lock(mutex_);
    runtime_ = &runtime;
    if (stop_requested_) runtime.CloseInput();
  }
  std::thread supervisor([this] { SuperviseLoop(); });
  // Payloads left by dead writers of the previous group are collected while the run
  // goes on too, not only at start: workers of a cluster may run for weeks.
  std::thread sweeper;
  if (!options_.previous_group.empty() && options_.collect_every.count() > 0) {
    sweeper = std::thread([this] {
      std::unique_lock lock(mutex_);
      while (!changed_.wait_for(lock, options_.collect_every,
                                [&] { return supervisor_stop_; })) {
        lock.unlock();
        CollectOrphanPayloads();
        lock.lock();
      }
    });
  }

  Status error;
  bool finished = false;
  bool took_back = false;
  for (;;) {
    std::size_t room = 0;
    {
      std::unique_lock lock(mutex_);
      // The budget is full: wait for a commit to free a slot (with a record
      // budget, records leaving the pipeline free room too: looked at often).
      auto records_used = [&] {
        const RuntimeProgress in_runtime = runtime.Progress();
        return in_runtime.records_in_flight + in_runtime.records_draining;
      };
      auto has_room = [&] {
        if (held_.size() >= options_.max_batches_in_flight) return false;
        return options_.max_records_in_flight == 0 ||
               records_used() < options_.max_records_in_flight;
      };
      while (!Ending() && !has_room()) {
        changed_.wait_for(lock, milliseconds(20));
      }
      if (Ending()) break;
      room = options_.max_batches_in_flight - held_.size();
      if (options_.max_records_in_flight != 0) {
        // As many batches (of the size seen last) as the record budget has room for.
        const std::uint64_t used = records_used();
        const std::uint64_t free = used >= options_.max_records_in_flight
                                       ? 0
                                       : options_.max_records_in_flight - used;
        const std::uint64_t per_batch = std::max<std::uint32_t>(last_batch_items_, 1);
        room = std::min<std::size_t>(room, std::max<std::uint64_t>(1, free / per_batch));
      }
    }
    Result<std::vector<Lease>> leases = RetryWhileTransient("lease", [&] {
      return store_.LeaseBatches(options_.group, options_.owner, room, options_.lease,
                                 options_.partition);
    });
    if (!leases.ok()) {
      error = leases.status();
      break;
    }
    // Held, and so renewed, from now on: a lease waiting for its turn to be
    // submitted must not expire unnoticed.
    {
      std::lock_guard lock(mutex_);
      for (const Lease& lease : *leases) {
        if (held_.contains(lease.batch_id) && error.ok()) {
          error = Internal(fmt::format(
              "worker: the store handed out batch {} (token {}), which this worker "
              "holds already (token {})",
              lease.batch_id, lease.token, held_[lease.batch_id].lease.token));
        }
      }
      if (error.ok()) {
        for (const Lease& lease : *leases) {
          held_[lease.batch_id] = Held{lease, false, {}};
          last_batch_items_ = std::max(last_batch_items_, lease.item_count);
        }
      }
    }
    if (!error.ok()) break;
    for (std::size_t i = 0; i < leases->size(); ++i) {
      const Lease& lease = (*leases)[i];
      Status submitted;
      bool stale = false;
      {
        std::lock_guard lock(mutex_);
        if (Ending()) submitted = Cancelled("worker: stopping");
        // A renewal may have found it lost already.
        if (!held_.contains(lease.batch_id) ||
            held_[lease.batch_id].lease.token != lease.token) {
          stale = true;
        } else {
          held_[lease.batch_id].started = std::chrono::system_clock::now();
        }
      }
      if (stale) continue;
      if (submitted.ok()) {
        submitted = SubmitBatch(runtime, lease);
      }
      if (submitted.ok()) continue;
      // Not in the runtime: not held any more.
      {
        std::lock_guard lock(mutex_);
        held_.erase(lease.batch_id);
        ForgetHeld(lease.batch_id);
        changed_.notify_all();
      }
      if (submitted.code() == StatusCode::kStaleLease) continue;  // taken over
      ReleaseOrRemember(lease);
      if (submitted.code() != StatusCode::kCancelled && error.ok()) error = submitted;
      // The leases not submitted yet go back too.
      for (std::size_t rest = i + 1; rest < leases->size(); ++rest) {
        {
          std::lock_guard lock(mutex_);
          held_.erase((*leases)[rest].batch_id);
        }
        ReleaseOrRemember((*leases)[rest]);
      }
      break;
    }
    {
      std::lock_guard lock(mutex_);
      if (!error.ok() || Ending()) break;
    }
    if (!leases->empty()) continue;

    // Nothing to lease now. If nothing is in flight either, the group may be done;
    // otherwise batches held elsewhere may still expire and come back to us.
    bool idle = false;
    {
      std::lock_guard lock(mutex_);
      idle = held_.empty() && runtime.Progress().records_in_flight == 0;
    }
    if (idle) {
      Result<bool> done = GroupFinished();
      if (!done.ok()) {
        error = done.status();
        break;
      }
      if (*done) {
        if (options_.exit_when_done) {
          finished = true;
          break;
        }
        // Otherwise wait below for batches ingested later.
      } else if (!took_back) {
        // Work remains that nobody holds: if part of it is leased to this worker (a
        // release that failed), take it back once, rather than wait forever.
        took_back = true;
        TakeBackOrphanedLeases();
        continue;
      }
    }
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, options_.idle_poll,
                      [&] { return Ending() || (!idle && held_.empty()); });
  }

  WorkerEnd end = finished ? WorkerEnd::kFinished : WorkerEnd::kStopped;
  if (finished) {
    runtime.Finish();  // nothing is in flight: returns at once
  } else {
    if (error.ok() && !abort_requested_ && !stalled_) {
      // A stop: give the batches in flight the grace period to finish and commit.
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, options_.grace, [&] {
        return held_.empty() || abort_requested_.load() || stalled_.load() ||
               !commit_error_.ok();
      });
    }
    bool drained = false;
    {
      std::lock_guard lock(mutex_);
      drained = held_.empty();
    }
    if (drained && !stalled_) {
      runtime.Finish();
    } else {
      runtime.Abort();
    }
    if (stalled_) end = WorkerEnd::kStalled;
  }
  {
    std::lock_guard lock(mutex_);
    supervisor_stop_ = true;
    final_stages_ = runtime.Counters();  // what the stages did stays readable
    runtime_ = nullptr;
    changed_.notify_all();
    if (error.ok()) error = commit_error_;
  }
  supervisor.join();
  if (sweeper.joinable()) sweeper.join();
  encoded_.clear();  // payloads never committed: removed
  ReleaseHeldLeases();
  if (options_.report_every.count() > 0) Report(true);
  {
    std::lock_guard lock(warn_mutex_);
    for (const auto& [cause, count] : warnings_) {
      if (count > 1) LogLine(fmt::format("({}: {} times in all)", cause, count));
    }
  }
  if (!error.ok()) return error.WithContext(fmt::format("worker {}", options_.owner));
  return end;
}

}  // namespace sluice
