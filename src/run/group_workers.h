// The workers of one process's run of a pipeline: one per stage group it runs, each
// with its stages built from the registry, and the pipeline's outputs on the last
// group's. `sluice run` / `sluice worker` and the library's Pipeline::Run both run a
// pipeline through it; what they add around it (signals, status lines, a metrics
// server; ingest) is theirs.
//
// Run() runs every group side by side, all but the last on a thread of its own and
// the last on the caller's, so that a batch committed by one group is soon taken by
// the next. A group that ends in error stops the others.
#ifndef SLUICE_RUN_GROUP_WORKERS_H_
#define SLUICE_RUN_GROUP_WORKERS_H_

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/stage.h"
#include "sluice/status.h"
#include "sluice/store.h"
#include "src/core/blob_store.h"
#include "src/core/pipeline_config.h"
#include "src/core/worker.h"
#include "src/output/file_batch_output.h"
#include "src/output/reduce_output.h"
#include "src/run/run_setup.h"

namespace sluice {

struct GroupWorkersOptions {
  // The groups to run, in pipeline order, pointing into the config's groups; empty:
  // every group.
  std::vector<const GroupSpec*> groups;
  // Outputs go to the pipeline's output.dir, or <workdir>/output when it has none.
  std::string workdir;
  // Where batches pass between groups. REQUIRED (not null, outliving the workers)
  // when the pipeline has more than one group.
  BlobStore* blobs = nullptr;
  // Keep looking for new batches until RequestStop() (`sluice worker`); false: each
  // worker ends when its group has no batch left.
  bool until_stopped = false;
  LeasePartition partition;  // which batches to lease (every batch by default)
  RunLog log;                // the workers' warnings, and leases taken back
};

// Not thread-safe, except RequestStop() and the workers' own methods (Worker).
class GroupWorkers {
 public:
  // Takes back the leases dead processes of this host left in each group, builds each
  // group's stages from `registry` and its worker; the last group of the pipeline also
  // gets its outputs (created, and cleared of what a crashed run left). REQUIRES:
  // `config`, `registry` and `store` outlive the result. Errors: the stages' (with
  // their YAML paths; InvalidArgument when their options are refused), the output
  // directory's (IoError).
  static Result<std::unique_ptr<GroupWorkers>> Create(const PipelineConfig& config,
                                                      const StageRegistry& registry,
                                                      Store& store,
                                                      const GroupWorkersOptions& options);

  // Runs every worker (see the top of the file) and returns how each ended, in group
  // order. Once only.
  std::vector<Result<WorkerEnd>> Run();

  // Asks every worker to stop (Worker::RequestStop). Thread-safe.
  void RequestStop();

  // The groups run and their workers, in order; the last one's results are the
  // run's (what it commits is done).
  std::vector<std::pair<std::string, Worker*>> workers() const;
  const Worker& last_worker() const { return *runs_.back().worker; }
  // The outputs' writer, when the last group of the pipeline is run and writes any.
  const FileBatchOutput* output() const { return runs_.back().output.get(); }

  // Writes the reduce nodes' results (src/output/reduce_output.h), when the last
  // group of the pipeline is run and it has any: `complete`, from every batch's part
  // (call only when every item has its result), else the view of what this process
  // committed. Logs where each went. Errors name the file.
  Status WriteReduceResults(const PipelineConfig& config, bool complete,
                            const RunLog& log) const;

 private:
  struct GroupRun {
    const GroupSpec* group = nullptr;
    std::unique_ptr<FileBatchOutput> output;
    std::unique_ptr<ReduceOutput> reduce;  // around `output`, when the pipeline reduces
    std::unique_ptr<Worker> worker;
  };
  GroupWorkers() = default;

  std::vector<GroupRun> runs_;
};

}  // namespace sluice

#endif  // SLUICE_RUN_GROUP_WORKERS_H_
