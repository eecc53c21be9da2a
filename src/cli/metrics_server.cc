#include "src/cli/metrics_server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <mutex>
#include <thread>

#include "src/cli/dashboard_page.h"

namespace sluice::cli {
namespace {

using Snapshot = MetricsSnapshot;

std::vector<Snapshot> Read(const std::vector<MetricsGroup>& groups) {
  std::vector<Snapshot> snapshots;
  for (const MetricsGroup& group : groups) {
    snapshots.push_back({group.name, group.worker->Progress(), group.worker->StageProgress()});
  }
  return snapshots;
}

// A family whose samples are one number per group.
void GroupFamily(MetricsText& out, const std::vector<Snapshot>& snapshots,
                 std::string_view name, std::string_view type, std::string_view help,
                 const std::function<double(const WorkerProgress&)>& value) {
  out.Family(name, type, help);
  for (const Snapshot& snapshot : snapshots) {
    out.Sample(name, {{"group", snapshot.group}}, value(snapshot.progress));
  }
}

// A family whose samples are one number per group and stage.
void StageFamily(MetricsText& out, const std::vector<Snapshot>& snapshots,
                 std::string_view name, std::string_view type, std::string_view help,
                 const std::function<double(const StageCounters&)>& value) {
  out.Family(name, type, help);
  for (const Snapshot& snapshot : snapshots) {
    for (const StageCounters& stage : snapshot.stages) {
      out.Sample(name, {{"group", snapshot.group}, {"stage", stage.name}}, value(stage));
    }
  }
}

}  // namespace

std::string RenderMetrics(const std::vector<MetricsSnapshot>& snapshots) {
  MetricsText out;
  using P = const WorkerProgress&;
  using S = const StageCounters&;
  StageFamily(out, snapshots, "sluice_stage_records_total", "counter",
              "Records that entered the stage.",
              [](S s) { return static_cast<double>(s.records_in); });
  StageFamily(out, snapshots, "sluice_stage_records_failed_total", "counter",
              "Records the stage failed.",
              [](S s) { return static_cast<double>(s.records_failed); });
  StageFamily(out, snapshots, "sluice_stage_records_abandoned_total", "counter",
              "Records of an async stage failed at their deadline.",
              [](S s) { return static_cast<double>(s.records_abandoned); });
  StageFamily(out, snapshots, "sluice_stage_queued_chunks", "gauge",
              "Chunks waiting in the stage's input channel.",
              [](S s) { return static_cast<double>(s.queued_chunks); });
  StageFamily(out, snapshots, "sluice_stage_in_flight", "gauge",
              "Records an async stage works on now.",
              [](S s) { return static_cast<double>(s.in_flight); });
  out.Family("sluice_stage_seconds", "histogram",
             "Time per record in the stage (CPU stages: a chunk's time shared by its "
             "records; async stages: from start to completion).");
  for (const Snapshot& snapshot : snapshots) {
    for (const StageCounters& stage : snapshot.stages) {
      out.Histogram("sluice_stage_seconds",
                    {{"group", snapshot.group}, {"stage", stage.name}}, stage.seconds);
    }
  }
  // The stages' own counters (the fetch stage's attempts, a cache's hits, ...), one
  // family per name. A name may carry one label ("fetch_responses_total{class=2xx}"),
  // and one in microseconds ("..._us_total") is written in seconds.
  struct Own {
    std::string family;
    std::string label;
    std::string label_value;
    double scale = 1;
  };
  auto parse = [](const std::string& name) {
    Own own;
    std::string base = name;
    if (const std::size_t brace = name.find('{');
        brace != std::string::npos && name.back() == '}') {
      base = name.substr(0, brace);
      const std::string label = name.substr(brace + 1, name.size() - brace - 2);
      if (const std::size_t equals = label.find('='); equals != std::string::npos) {
        own.label = label.substr(0, equals);
        own.label_value = label.substr(equals + 1);
      }
    }
    if (base.ends_with("_us_total")) {
      base = base.substr(0, base.size() - 9) + "_seconds_total";
      own.scale = 1e-6;
    }
    own.family = MetricsText::SanitizeName("sluice_" + base);
    return own;
  };
  std::vector<std::string> families;
  for (const Snapshot& snapshot : snapshots) {
    for (const StageCounters& stage : snapshot.stages) {
      for (const auto& [name, value] : stage.own) {
        const std::string family = parse(name).family;
        if (std::find(families.begin(), families.end(), family) == families.end()) {
          families.push_back(family);
        }
      }
    }
  }
  for (const std::string& family : families) {
    out.Family(family, family.ends_with("_total") ? "counter" : "gauge",
               "A stage's own count (docs/operations.md).");
    for (const Snapshot& snapshot : snapshots) {
      for (const StageCounters& stage : snapshot.stages) {
        for (const auto& [name, value] : stage.own) {
          const Own own = parse(name);
          if (own.family != family) continue;
          MetricLabels labels = {{"group", snapshot.group}, {"stage", stage.name}};
          if (!own.label.empty()) labels.emplace_back(own.label, own.label_value);
          out.Sample(family, labels, static_cast<double>(value) * own.scale);
        }
      }
    }
  }

  GroupFamily(out, snapshots, "sluice_batches_committed_total", "counter",
              "Batches this process committed.",
              [](P p) { return static_cast<double>(p.batches_committed); });
  GroupFamily(out, snapshots, "sluice_batches_lost_total", "counter",
              "Batches given up because their lease was lost (taken over after a stall).",
              [](P p) { return static_cast<double>(p.batches_lost); });
  GroupFamily(out, snapshots, "sluice_batches_redone_total", "counter",
              "Batches given back to be redone from the first group (payload lost or "
              "damaged).",
              [](P p) { return static_cast<double>(p.batches_redone); });
  GroupFamily(out, snapshots, "sluice_batches_in_flight", "gauge",
              "Batches leased and not committed yet.",
              [](P p) { return static_cast<double>(p.batches_in_flight); });
  GroupFamily(out, snapshots, "sluice_oldest_batch_age_seconds", "gauge",
              "How long the oldest batch in flight has been in the pipeline.",
              [](P p) { return static_cast<double>(p.oldest_batch_ms) / 1000.0; });
  GroupFamily(out, snapshots, "sluice_records_in_flight", "gauge",
              "Records of the batches in flight not through the pipeline yet.",
              [](P p) { return static_cast<double>(p.records_in_flight); });
  GroupFamily(out, snapshots, "sluice_pool_threads", "gauge",
              "Threads of the CPU pool the CPU stages share.",
              [](P p) { return static_cast<double>(p.pool_threads); });
  GroupFamily(out, snapshots, "sluice_pool_threads_busy", "gauge",
              "CPU pool threads not waiting for work when scraped.",
              [](P p) { return static_cast<double>(p.pool_threads_busy); });
  GroupFamily(out, snapshots, "sluice_items_committed_total", "counter",
              "Items whose results this process committed (ok and failed).",
              [](P p) { return static_cast<double>(p.items_committed); });
  GroupFamily(out, snapshots, "sluice_items_filtered_total", "counter",
              "Items committed as dropped by a filter (not failures).",
              [](P p) { return static_cast<double>(p.items_filtered); });
  out.Family("sluice_items_failed_total", "counter",
             "Items committed as failed, by reason.");
  for (const Snapshot& snapshot : snapshots) {
    for (const auto& [reason, count] : snapshot.progress.failures) {
      out.Sample("sluice_items_failed_total", {{"group", snapshot.group}, {"reason", reason}},
                 static_cast<double>(count));
    }
  }
  GroupFamily(out, snapshots, "sluice_held_bytes", "gauge",
              "Bytes finished records of waiting batches keep in memory for the outputs.",
              [](P p) { return static_cast<double>(p.held_bytes); });
  GroupFamily(out, snapshots, "sluice_spilled_records_total", "counter",
              "Finished records whose bytes went to disk to wait for their batch.",
              [](P p) { return static_cast<double>(p.spilled_records); });
  GroupFamily(out, snapshots, "sluice_payload_bytes_total", "counter",
              "Bytes written to the blob store for the next stage group.",
              [](P p) { return static_cast<double>(p.payload_bytes); });
  out.Family("sluice_store_retries_total", "counter",
             "Store calls tried again, by cause (busy, unavailable).");
  for (const Snapshot& snapshot : snapshots) {
    out.Sample("sluice_store_retries_total", {{"group", snapshot.group}, {"cause", "busy"}},
               static_cast<double>(snapshot.progress.busy_retries));
    out.Sample("sluice_store_retries_total",
               {{"group", snapshot.group}, {"cause", "unavailable"}},
               static_cast<double>(snapshot.progress.unavailable_retries));
  }
  GroupFamily(out, snapshots, "sluice_store_renew_errors_total", "counter",
              "Lease renewals that failed.",
              [](P p) { return static_cast<double>(p.renew_errors); });
  GroupFamily(out, snapshots, "sluice_store_unreachable", "gauge",
              "1 while a store call waits for an unreachable store.",
              [](P p) { return p.store_unreachable ? 1.0 : 0.0; });
  out.Family("sluice_store_seconds", "histogram",
             "How long store calls took, retries included, by call.");
  for (const Snapshot& snapshot : snapshots) {
    for (const auto& [call, histogram] : snapshot.progress.store_seconds) {
      out.Histogram("sluice_store_seconds", {{"group", snapshot.group}, {"call", call}},
                    histogram);
    }
  }
  return out.text();
}

namespace {

nlohmann::ordered_json StatusJson(const std::vector<Snapshot>& snapshots, Store* store,
                                  const std::string& pipeline) {
  nlohmann::ordered_json groups = nlohmann::ordered_json::array();
  for (const Snapshot& snapshot : snapshots) {
    const WorkerProgress& p = snapshot.progress;
    nlohmann::ordered_json group = {
        {"name", snapshot.group},
        {"live",
         {{"batches_committed", p.batches_committed},
          {"batches_in_flight", p.batches_in_flight},
          {"oldest_batch_seconds", static_cast<double>(p.oldest_batch_ms) / 1000.0},
          {"records_in_flight", p.records_in_flight},
          {"pool_threads", p.pool_threads},
          {"pool_threads_busy", p.pool_threads_busy},
          {"items_committed", p.items_committed},
          {"items_failed", p.items_failed},
          {"items_filtered", p.items_filtered},
          {"failures", p.failures},
          {"batches_lost", p.batches_lost},
          {"batches_redone", p.batches_redone},
          {"store_unreachable", p.store_unreachable}}}};
    nlohmann::ordered_json stages = nlohmann::ordered_json::array();
    for (const StageCounters& stage : snapshot.stages) {
      std::uint64_t bytes = 0;  // what the stage downloaded, if it counts that
      for (const auto& [name, value] : stage.own) {
        if (name == "fetch_bytes_total") bytes = value;
      }
      stages.push_back(
          {{"name", stage.name},
           {"bytes", bytes},
           {"records", stage.records_in},
           {"failed", stage.records_failed},
           {"in_flight", stage.in_flight},
           {"queued_chunks", stage.queued_chunks},
           {"seconds_per_record",
            stage.seconds.count == 0
                ? 0.0
                : stage.seconds.sum / static_cast<double>(stage.seconds.count)}});
    }
    group["stages"] = std::move(stages);
    Result<StoreSummary> summary = store->Summarize(snapshot.group);
    if (summary.ok()) {
      group["store"] = {{"items", summary->items},
                        {"batches_pending", summary->batches_pending},
                        {"batches_leased", summary->batches_leased},
                        {"batches_done", summary->batches_done},
                        {"results_ok", summary->results_ok},
                        {"results_failed", summary->results_failed},
                        {"results_filtered", summary->results_filtered},
                        {"failures", summary->failures}};
    } else {
      group["store"] = {{"error", summary.status().ToString()}};
    }
    groups.push_back(std::move(group));
  }
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  return {{"pipeline", pipeline}, {"time", now}, {"groups", std::move(groups)}};
}

}  // namespace

Result<MetricsAddress> ParseMetricsAddress(std::string_view text) {
  MetricsAddress address;
  std::string_view port = text;
  if (const std::size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    if (colon > 0) address.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (address.host.size() > 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);  // [::1]
  }
  int number = -1;
  auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() ||
      number < 0 || number > 65535) {
    return InvalidArgument(fmt::format(
        "--metrics-addr {}: expected HOST:PORT (or :PORT for 127.0.0.1), PORT 0 to 65535",
        text));
  }
  address.port = number;
  return address;
}

class MetricsServer::Impl {
 public:
  Impl(std::vector<MetricsGroup> groups, Store* store, std::string pipeline)
      : groups_(std::move(groups)), store_(store), pipeline_(std::move(pipeline)) {
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content(RenderMetrics(Read(groups_)), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/api/status", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content(
          StatusJson(Read(groups_), store_, pipeline_)
              .dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace),
          "application/json");
    });
    // What /api/status said each second of the last kHistory seconds: a dashboard
    // opened late starts with them.
    server_.Get("/api/history", [this](const httplib::Request&, httplib::Response& response) {
      nlohmann::ordered_json samples = nlohmann::ordered_json::array();
      {
        std::lock_guard lock(history_mutex_);
        for (const nlohmann::ordered_json& sample : history_) samples.push_back(sample);
      }
      response.set_content(
          nlohmann::ordered_json{{"samples", std::move(samples)}}.dump(
              -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace),
          "application/json");
    });
    sampler_ = std::thread([this] {
      std::unique_lock lock(history_mutex_);
      while (!stop_sampling_.wait_for(lock, std::chrono::seconds(1),
                                      [&] { return stopping_; })) {
        lock.unlock();
        nlohmann::ordered_json sample = StatusJson(Read(groups_), store_, pipeline_);
        lock.lock();
        history_.push_back(std::move(sample));
        if (history_.size() > kHistory) history_.pop_front();
      }
    });
    server_.Get("/", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(kDashboardPage, "text/html; charset=utf-8");
    });
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok\n", "text/plain");
    });
    server_.Get("/ready", [this](const httplib::Request&, httplib::Response& response) {
      for (const MetricsGroup& group : groups_) {
        if (group.worker->Progress().store_unreachable) {
          response.status = 503;
          response.set_content(
              fmt::format("group {}: waiting for an unreachable store\n", group.name),
              "text/plain");
          return;
        }
      }
      response.set_content("ready\n", "text/plain");
    });
  }

  ~Impl() {
    {
      std::lock_guard lock(history_mutex_);
      stopping_ = true;
    }
    stop_sampling_.notify_all();
    sampler_.join();
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Listen(const MetricsAddress& address) {
    host_ = address.host;
    port_ = address.port == 0 ? server_.bind_to_any_port(address.host)
                              : (server_.bind_to_port(address.host, address.port)
                                     ? address.port
                                     : -1);
    if (port_ < 0) {
      return Unavailable(fmt::format("--metrics-addr {}:{}: cannot listen there",
                                     address.host, address.port));
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return Status::Ok();
  }

  std::string Url() const {
    const bool v6 = host_.find(':') != std::string::npos;
    return fmt::format("http://{}{}{}:{}", v6 ? "[" : "", host_, v6 ? "]" : "", port_);
  }

 private:
  const std::vector<MetricsGroup> groups_;
  Store* const store_;
  const std::string pipeline_;
  httplib::Server server_;
  static constexpr std::size_t kHistory = 300;
  std::mutex history_mutex_;
  std::condition_variable stop_sampling_;
  bool stopping_ = false;                        // guarded by history_mutex_
  std::deque<nlohmann::ordered_json> history_;  // guarded by history_mutex_
  std::thread sampler_;
  std::string host_;
  int port_ = -1;
  std::thread thread_;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const MetricsAddress& address,
                                                             std::vector<MetricsGroup> groups,
                                                             Store* store,
                                                             std::string pipeline) {
  auto impl = std::make_unique<Impl>(std::move(groups), store, std::move(pipeline));
  SLUICE_RETURN_IF_ERROR(impl->Listen(address));
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;
std::string MetricsServer::Url() const { return impl_->Url(); }

}  // namespace sluice::cli
