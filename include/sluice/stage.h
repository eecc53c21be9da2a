// The Stage interface: one step of a pipeline.
//
// There are two kinds of stage:
//  - CpuStage: called on the shared CPU pool with a chunk of records, and transforms
//    them in place. Chunks of the same stage run concurrently on different threads.
//  - AsyncStage: driven by an event loop thread; it starts work on a record and
//    completes it later (after a timer, a download, ...) without holding a thread,
//    so that thousands of records can be in flight at once.
//
// A stage marks a record failed with Record::Fail(); failed records skip the rest of
// the pipeline and reach the sink with their reason. Stages are created by name from
// the pipeline YAML through a StageRegistry.
#ifndef SLUICE_STAGE_H_
#define SLUICE_STAGE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"

namespace sluice {

// The fields a stage reads and writes, so that loading can check that every field a
// stage needs is written by a node before it (docs/operators.md).
struct StageFields {
  // False: the stage does not say (the default); nothing after it is checked.
  bool declared = false;
  std::vector<std::string> reads;   // fields it needs: refused if no node before writes one
  std::vector<std::string> writes;  // fields it may set
  // Names its expressions read, which may also be input columns: a warning, not an
  // error, if no node before writes one.
  std::vector<std::string> reads_or_columns;
};

// StageFields a stage declares.
inline StageFields DeclaredFields(std::vector<std::string> reads,
                                  std::vector<std::string> writes,
                                  std::vector<std::string> reads_or_columns = {}) {
  StageFields fields;
  fields.declared = true;
  fields.reads = std::move(reads);
  fields.writes = std::move(writes);
  fields.reads_or_columns = std::move(reads_or_columns);
  return fields;
}

class Stage {
 public:
  enum class Kind { kCpu, kAsync };
  virtual ~Stage() = default;
  virtual Kind kind() const = 0;

  // Called once when the pipeline is assembled, after every stage was built and
  // before any record, with the stage that consumes this one's records (nullptr
  // for the last). A stage may fit its work to what that stage keeps: decode
  // decodes a JPEG at the reduced scale a resize right after it needs. Not called
  // concurrently with anything else; the default does nothing.
  virtual void PlanFor(const Stage* next) { (void)next; }

  // What the stage reads and writes (see StageFields). Default: not declared.
  virtual StageFields Fields() const { return {}; }

  // Named counters of the stage's own (e.g. "cache_hits_total"), totals since it
  // was built. The worker reads them every few seconds and records them with its
  // heartbeat, so that `sluice status` shows their sums over all workers.
  // Thread-safe: called from another thread while the stage runs. Default: none.
  virtual std::vector<std::pair<std::string, std::uint64_t>> Counters() const {
    return {};
  }
};

class CpuStage : public Stage {
 public:
  Kind kind() const final { return Kind::kCpu; }

  // Processes one chunk in place. The default calls ProcessOne() on each record
  // that has not failed. Thread-safe: called concurrently on different chunks.
  virtual void Process(std::span<Record> records);

  // Processes one record that has not failed.
  virtual void ProcessOne(Record& record) { (void)record; }
};

// Timers and file descriptor readiness for asynchronous stages. Every method but
// Post() must be called on the loop's own thread, and every callback runs on it.
class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using TimerId = std::uint64_t;

  virtual ~EventLoop() = default;

  // The loop's notion of now, refreshed once per loop iteration.
  virtual Clock::time_point Now() const = 0;

  // Runs `callback` once, `delay` from now. Returns an id for CancelTimer().
  virtual TimerId AddTimer(Clock::duration delay, std::function<void()> callback) = 0;
  // Cancels a timer that has not fired; returns false if it already fired or is unknown.
  virtual bool CancelTimer(TimerId id) = 0;

  // Calls `callback(events)` when `fd` is ready for `events` (EPOLLIN, EPOLLOUT bits).
  // A later call for the same fd replaces the interest and the callback.
  virtual Status WatchFd(int fd, std::uint32_t events,
                         std::function<void(std::uint32_t)> callback) = 0;
  // Stops watching `fd`. Safe to call from inside the fd's own callback.
  virtual void UnwatchFd(int fd) = 0;

  // Runs `fn` on the loop thread during a coming iteration, in the order posted:
  // how a stage's own helper threads hand work back to it. Thread-safe. Functions
  // still queued when the loop is destroyed are destroyed without running.
  virtual void Post(std::function<void()> fn) = 0;
};

// What an AsyncStage sees of the runtime.
class AsyncContext {
 public:
  virtual ~AsyncContext() = default;
  virtual EventLoop& loop() = 0;
  // Returns a record started with AsyncStage::Start() to the runtime, done (or failed).
  // Call on the loop thread, exactly once per started record (a record the runtime
  // abandoned, see AsyncStage::Abandon(), may still be completed: it is discarded).
  virtual void Complete(Record record) = 0;
  // Reports that the stage cannot work at all (e.g. its I/O threads cannot start):
  // the run fails with `error`, and nothing in flight is committed. Records that
  // fail on their own merits are Complete()d failed instead. Loop thread.
  virtual void FailStage(Status error) = 0;
};

class AsyncStage : public Stage {
 public:
  Kind kind() const final { return Kind::kAsync; }

  // The most records this stage may have started and not completed.
  virtual std::size_t max_in_flight() const = 0;

  // Starts work on `record`, which has not failed. Runs on the loop thread and must
  // not block; the stage calls ctx.Complete(record) later, exactly once.
  virtual void Start(Record record, AsyncContext& ctx) = 0;

  // The longest a record may stay in this stage. The runtime owns this deadline:
  // when it passes, it calls Abandon() for the record, whatever the stage is doing
  // with it. Stages with limits of their own (a fetch's item_timeout_ms) return a
  // little more than those, so that their own, more precise failure usually wins.
  virtual std::chrono::milliseconds record_deadline() const = 0;

  // The record `id`'s deadline passed. The stage stops working on it and should
  // complete it now, from inside this call, failed with FailureReason::kTimeout;
  // whatever it still does with it afterwards is ignored. A stage that cannot give
  // the record back at once completes nothing: the runtime then fails a record of
  // its own with that id (its url and fields are lost), and discards the stage's
  // late Complete(). Loop thread.
  virtual void Abandon(ItemId id, AsyncContext& ctx) = 0;

  // One line on what the records in flight wait for (e.g. "12 waiting for a host
  // slot, 3 in a transfer"), for the stall report; "" if there is nothing to add.
  // Thread-safe: called from outside the loop thread while it runs.
  virtual std::string InFlightSummary() const { return ""; }
};

// Where the lines a stage logs go (e.g. an exec subprocess's stderr), one line a
// call, without a newline. May be called from any thread.
using StageLog = std::function<void(std::string_view line)>;

// Pipeline-wide settings that stages may depend on (top-level YAML keys).
struct PipelineSettings {
  // "allow_private_networks": let network stages contact private, loopback,
  // link-local and unspecified addresses (DESIGN.md guarantee 6). Off by default;
  // tests and benchmarks on loopback turn it on.
  bool allow_private_networks = false;
};

// A stage's options from its YAML mapping. Getters return the default when the key
// is absent and record an error naming the YAML path when the value is invalid;
// Finish() returns the first error, or an error for keys no getter asked for.
// Not thread-safe; lives only while a stage is being created.
class StageOptions {
 public:
  virtual ~StageOptions() = default;

  // The YAML path of this stage, e.g. "stages[1] (resize)".
  virtual const std::string& path() const = 0;

  virtual std::int64_t GetInt(std::string_view key, std::int64_t default_value,
                              std::int64_t min, std::int64_t max) = 0;
  virtual double GetDouble(std::string_view key, double default_value, double min,
                           double max) = 0;
  virtual bool GetBool(std::string_view key, bool default_value) = 0;
  virtual std::string GetString(std::string_view key, std::string_view default_value) = 0;
  // A string that must be one of `choices`.
  virtual std::string GetChoice(std::string_view key, std::string_view default_value,
                                const std::vector<std::string>& choices) = 0;
  virtual std::vector<std::string> GetStringList(
      std::string_view key, const std::vector<std::string>& default_value) = 0;

  // Records an error about `key` found by the stage itself (e.g. two options clash).
  virtual void AddError(std::string_view key, std::string_view message) = 0;

  virtual Status Finish() = 0;

  // The settings of the pipeline the stage belongs to.
  const PipelineSettings& pipeline() const { return pipeline_; }
  void set_pipeline(const PipelineSettings& settings) { pipeline_ = settings; }

 private:
  PipelineSettings pipeline_;
};

// Builds a stage from its options. Returns an error naming the YAML path when the
// options are invalid; on success the caller still calls options.Finish().
using StageFactory = std::function<Result<std::unique_ptr<Stage>>(StageOptions& options)>;

// Reads back a Payload from the bytes its Encode() wrote; an error (Corruption) when
// they are not what it wrote.
using PayloadDecoder =
    std::function<Result<std::shared_ptr<const Payload>>(std::string_view bytes)>;

// Stage types by name, and the decoders of the payload types stages make. Not
// thread-safe: fill it before running pipelines.
class StageRegistry {
 public:
  // Registers `factory` under `type`. A name already registered, or an operator's
  // (copy, split, shard, merge, join, reduce), is refused (InvalidArgument) and the
  // registry left as it was: one name, one meaning.
  Status Register(std::string type, std::string description, StageFactory factory);

  // The factory for `type`, or nullptr.
  const StageFactory* Find(std::string_view type) const;

  // Registered names, sorted, with their one-line descriptions.
  std::vector<std::pair<std::string, std::string>> List() const;

  // Registers the decoder of the payloads whose codec() is `codec`; a codec already
  // registered is refused (InvalidArgument).
  Status RegisterPayloadDecoder(std::string codec, PayloadDecoder decoder);
  // The decoder for `codec`, or nullptr.
  const PayloadDecoder* FindPayloadDecoder(std::string_view codec) const;

 private:
  struct Entry {
    std::string description;
    StageFactory factory;
  };
  std::map<std::string, Entry, std::less<>> entries_;
  std::map<std::string, PayloadDecoder, std::less<>> payload_decoders_;
};

}  // namespace sluice

#endif  // SLUICE_STAGE_H_
