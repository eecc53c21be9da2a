// FakeStore: an in-memory Store for the input module's tests.
//
// Only the ingest methods are real: BeginInput, AppendItems and FinishInput keep
// inputs, items (id = position, as the real store assigns them densely in order),
// rejects and a log of every AppendItems call. They also check what the real store
// relies on: a known input id, lines_done never going back, no call with more items
// than batch_size. Every other method returns kInternal.
//
// Faults: fail_append_at = k makes the k-th AppendItems call (1-based, counted from
// construction) fail without effect, as a crash in that transaction would.
//
// Thread-safe: one mutex guards everything.
#ifndef SLUICE_INPUT_FAKE_STORE_TEST_UTIL_H_
#define SLUICE_INPUT_FAKE_STORE_TEST_UTIL_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/store.h"

namespace sluice::testing {

class FakeStore final : public Store {
 public:
  struct Input {
    InputFingerprint fingerprint;
    InputState state;
    int finish_calls = 0;
  };
  struct AppendCall {
    std::int64_t input_id = 0;
    std::size_t items = 0;
    std::size_t rejects = 0;
    std::uint64_t lines_done = 0;
    std::uint32_t batch_size = 0;
    std::vector<std::string> groups;
  };

  // Registers an input as an interrupted earlier run would have left it.
  void SeedInput(const InputFingerprint& fingerprint, std::uint64_t lines_done,
                 bool complete = false) {
    std::lock_guard<std::mutex> lock(mutex_);
    Input input;
    input.fingerprint = fingerprint;
    input.state.input_id = static_cast<std::int64_t>(inputs_.size()) + 1;
    input.state.lines_done = lines_done;
    input.state.complete = complete;
    input.state.first_path = fingerprint.path;
    inputs_.push_back(input);
  }

  Result<InputState> BeginInput(const InputFingerprint& fingerprint) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++begin_calls_;
    for (const Input& input : inputs_) {
      if (input.fingerprint.size == fingerprint.size &&
          input.fingerprint.digest == fingerprint.digest) {
        return input.state;
      }
    }
    Input input;
    input.fingerprint = fingerprint;
    input.state.input_id = static_cast<std::int64_t>(inputs_.size()) + 1;
    input.state.first_path = fingerprint.path;
    inputs_.push_back(input);
    return input.state;
  }

  Status AppendItems(std::int64_t input_id, std::span<const ItemRow> items,
                     std::span<const RejectedLine> rejects, std::uint64_t lines_done,
                     std::uint32_t batch_size,
                     std::span<const std::string> groups) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++append_attempts_;
    if (append_attempts_ == fail_append_at) return IoError("store: injected failure");
    Input* input = Find(input_id);
    if (input == nullptr) return Internal("fake store: unknown input id");
    if (input->state.complete) return Internal("fake store: append to a complete input");
    if (lines_done < input->state.lines_done) {
      return Internal("fake store: lines_done went back");
    }
    if (items.size() > batch_size) {
      return Internal("fake store: more items than batch_size");
    }
    if (groups.empty()) return Internal("fake store: no groups");
    AppendCall call;
    call.input_id = input_id;
    call.items = items.size();
    call.rejects = rejects.size();
    call.lines_done = lines_done;
    call.batch_size = batch_size;
    call.groups.assign(groups.begin(), groups.end());
    calls_.push_back(std::move(call));
    items_.insert(items_.end(), items.begin(), items.end());
    rejects_.insert(rejects_.end(), rejects.begin(), rejects.end());
    input->state.lines_done = lines_done;
    return Status::Ok();
  }

  Status FinishInput(std::int64_t input_id, std::uint64_t lines_done) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Input* input = Find(input_id);
    if (input == nullptr) return Internal("fake store: unknown input id");
    if (lines_done < input->state.lines_done) {
      return Internal("fake store: lines_done went back");
    }
    input->state.lines_done = lines_done;
    input->state.complete = true;
    ++input->finish_calls;
    return Status::Ok();
  }

  // --- Everything else is outside the input module's reach. ---------------------
  Result<std::vector<Lease>> LeaseBatches(std::string_view, std::string_view, std::size_t,
                                          std::chrono::milliseconds,
                                          LeasePartition) override {
    return NotUsed();
  }
  using Store::LeaseBatches;
  Result<std::vector<BatchId>> RenewLeases(std::span<const Lease>,
                                           std::chrono::milliseconds) override {
    return NotUsed();
  }
  Result<std::vector<Record>> ReadBatchItems(const Lease&) override { return NotUsed(); }
  using Store::CommitBatch;
  Status CommitBatch(const Lease&, std::span<const ResultRow>,
                     const std::function<Status()>&) override {
    return NotUsed();
  }
  Status ReleaseBatch(const Lease&) override { return NotUsed(); }
  Result<std::optional<std::uint64_t>> CommittedToken(std::string_view, BatchId) override {
    return NotUsed();
  }
  Status ReportWorker(const WorkerReport&) override { return NotUsed(); }
  Result<std::vector<WorkerReport>> ListWorkers() override { return NotUsed(); }
  Result<std::vector<WorkerSample>> ListSamples(std::string_view) override {
    return NotUsed();
  }
  Result<std::uint64_t> ReleaseLeasesOfDeadOwners(
      std::string_view, const std::function<bool(std::string_view)>&) override {
    return NotUsed();
  }
  Result<StoreSummary> Summarize(std::string_view) override { return NotUsed(); }
  Status ExportRows(std::string_view,
                    const std::function<Status(const ExportRow&)>&) override {
    return NotUsed();
  }
  Status ListRejects(
      const std::function<Status(std::string_view, const RejectedLine&)>&) override {
    return NotUsed();
  }
  Result<std::uint64_t> RetryFailed(std::string_view,
                                    std::optional<FailureReason>) override {
    return NotUsed();
  }
  Status RedoFromFirstGroup(const Lease&) override { return NotUsed(); }
  Result<std::optional<std::string>> GetMeta(std::string_view) override {
    return NotUsed();
  }
  Status SetMeta(std::string_view, std::string_view) override { return NotUsed(); }

  // --- What the tests look at. ----------------------------------------------------
  std::vector<std::string> urls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const ItemRow& item : items_) out.push_back(item.url);
    return out;
  }
  std::vector<ItemRow> items() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return items_;
  }
  std::vector<RejectedLine> rejects() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return rejects_;
  }
  std::vector<AppendCall> calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }
  std::vector<Input> inputs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return inputs_;
  }
  int begin_calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return begin_calls_;
  }

  // The 1-based AppendItems call that fails; 0: none.
  int fail_append_at = 0;

 private:
  static Status NotUsed() { return Internal("fake store: not implemented"); }

  Input* Find(std::int64_t input_id) {
    for (Input& input : inputs_) {
      if (input.state.input_id == input_id) return &input;
    }
    return nullptr;
  }

  mutable std::mutex mutex_;
  std::vector<Input> inputs_;          // guarded by mutex_
  std::vector<ItemRow> items_;         // guarded by mutex_
  std::vector<RejectedLine> rejects_;  // guarded by mutex_
  std::vector<AppendCall> calls_;      // guarded by mutex_
  int append_attempts_ = 0;            // guarded by mutex_
  int begin_calls_ = 0;                // guarded by mutex_
};

}  // namespace sluice::testing

#endif  // SLUICE_INPUT_FAKE_STORE_TEST_UTIL_H_
