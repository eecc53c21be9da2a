// `--metrics-addr HOST:PORT` of `sluice run` and `sluice worker`: an HTTP server
// (cpp-httplib, on threads of its own) with
//   /            the live dashboard (dashboard_page.h)
//   /metrics     the Prometheus text format (WorkerMetrics below; names in
//                docs/operations.md)
//   /api/status  JSON: each group's live counters and its store summary
//   /api/history /api/status of each second of the last five minutes
//   /healthz     200 while the process is up
//   /ready       200 while every worker can reach the store, 503 while one waits for
//                an unreachable store (kUnavailable)
// Everything is read when asked for (Worker::Progress(), StageProgress(), the
// store's summary): serving costs the pipeline nothing between scrapes.
#ifndef SLUICE_CLI_METRICS_SERVER_H_
#define SLUICE_CLI_METRICS_SERVER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"
#include "sluice/store.h"
#include "src/core/metrics.h"
#include "src/core/worker.h"

namespace sluice::cli {

// The address `--metrics-addr` gives: "HOST:PORT", or ":PORT" / "PORT" for
// 127.0.0.1 (loopback unless told otherwise); PORT 0 picks a free one.
struct MetricsAddress {
  std::string host = "127.0.0.1";
  int port = 0;
};
Result<MetricsAddress> ParseMetricsAddress(std::string_view text);

// One stage group this process runs, as the server reads it.
struct MetricsGroup {
  std::string name;
  const Worker* worker = nullptr;
};

// What one scrape reads of one group's worker.
struct MetricsSnapshot {
  std::string group;
  WorkerProgress progress;
  std::vector<StageCounters> stages;
};

// The /metrics text of `snapshots`: each family once, its samples for every group.
std::string RenderMetrics(const std::vector<MetricsSnapshot>& snapshots);

class MetricsServer {
 public:
  // Binds `address` and serves on threads of its own until destroyed. `store` and
  // the workers must outlive the server. Errors name the address.
  static Result<std::unique_ptr<MetricsServer>> Start(const MetricsAddress& address,
                                                       std::vector<MetricsGroup> groups,
                                                       Store* store,
                                                       std::string pipeline);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "http://HOST:PORT", with the port bound.
  std::string Url() const;

  class Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::cli

#endif  // SLUICE_CLI_METRICS_SERVER_H_
