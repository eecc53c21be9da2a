#include "src/run/pipeline_test_runner.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>

#include "src/core/reduce.h"
#include "src/core/runtime.h"

namespace sluice {
namespace {

// Replaces a stage in a test: sets the mock's fields on each record, or fails it.
class MockStage final : public CpuStage {
 public:
  MockStage(const TestMock& mock, std::shared_ptr<const Bytes> body)
      : mock_(mock), body_(std::move(body)) {}
  void ProcessOne(Record& record) override {
    if (mock_.fail != FailureReason::kNone) {
      record.Fail(mock_.fail, mock_.fail_error.empty()
                                  ? fmt::format("mock {}", mock_.stage)
                                  : mock_.fail_error);
      return;
    }
    for (const auto& [name, value] : mock_.set) record.Set(name, value);
    if (body_ != nullptr) record.Set("body", *body_);
  }

 private:
  const TestMock mock_;
  const std::shared_ptr<const Bytes> body_;
};

// What node `index` of `config` reads: its inputs, or the node before it.
std::vector<NodeInput> InputsOf(const PipelineConfig& config, std::size_t index) {
  const StageSpec& spec = config.stages[index];
  if (!spec.inputs.empty()) return spec.inputs;
  if (index == 0) return {};
  return {NodeInput{index - 1, 0}};
}

std::optional<std::size_t> StageIndex(const PipelineConfig& config,
                                      std::string_view name) {
  for (std::size_t i = 0; i < config.stages.size(); ++i) {
    if (config.stages[i].name == name) return i;
  }
  return std::nullopt;
}

// The stages [first, last] the test runs, checked to cut a single stream.
Result<std::pair<std::size_t, std::size_t>> TargetRange(const PipelineTestFile& file,
                                                        const PipelineTestCase& test,
                                                        const PipelineConfig& config) {
  std::size_t first = 0;
  std::size_t last = config.stages.size() - 1;
  for (const auto& [name, index, key] :
       {std::tuple{test.from, &first, "from"}, std::tuple{test.to, &last, "to"}}) {
    if (!name) continue;
    std::optional<std::size_t> found = StageIndex(config, *name);
    if (!found) {
      return InvalidArgument(fmt::format("{}: {}.target.{}: no stage named '{}' in {}",
                                         file.source, test.path, key, *name,
                                         file.pipeline_path));
    }
    *index = *found;
  }
  const std::string where = fmt::format("{}: {}.target", file.source, test.path);
  if (first > last) {
    return InvalidArgument(fmt::format("{}: '{}' comes after '{}' in the pipeline", where,
                                       config.stages[first].name,
                                       config.stages[last].name));
  }
  if (!config.stages[last].branches.empty()) {
    return InvalidArgument(fmt::format(
        "{}.to: '{}' has branches: a target must end on one stream (end it on the "
        "merge or join after them)",
        where, config.stages[last].name));
  }
  for (std::size_t i = first; i <= last; ++i) {
    for (const NodeInput& input : InputsOf(config, i)) {
      const bool inside = input.node >= first && input.node < i;
      const bool feeds_from = i == first && input.node < first;
      if (!inside && !feeds_from) {
        return InvalidArgument(fmt::format(
            "{}: '{}' reads '{}', outside the range: a target must be a run of stages "
            "that reads one stream",
            where, config.stages[i].name, config.stages[input.node].name));
      }
    }
  }
  for (std::size_t i = last + 1; i < config.stages.size(); ++i) {
    for (const NodeInput& input : InputsOf(config, i)) {
      if (input.node < first || input.node > last) continue;
      if (i == last + 1 && input.node == last) continue;
      return InvalidArgument(fmt::format(
          "{}: '{}', after the range, reads '{}' inside it: the range does not end on "
          "one stream",
          where, config.stages[i].name, config.stages[input.node].name));
    }
  }
  return std::pair{first, last};
}

std::string StatusOf(const Record& record) {
  if (record.reason() == FailureReason::kFiltered) return "filtered";
  return record.failed() ? "failed" : "ok";
}

// A field's JSON for comparing, or nullopt when the record has none by that name.
// `url` and input columns count as fields unless a field shadows them.
std::optional<OrderedJson> FieldJson(const Record& record, const std::string& name) {
  if (const Value* value = record.Find(name)) {
    if (const auto* bytes = std::get_if<Bytes>(value)) {
      return OrderedJson(fmt::format("<{} bytes>", bytes->size()));
    }
    if (const auto* payload = std::get_if<std::shared_ptr<const Payload>>(value)) {
      return OrderedJson(fmt::format("<{}>", *payload ? (*payload)->Describe() : "null"));
    }
    return ResultValueJson(*value);
  }
  if (name == "url") return OrderedJson(record.url());
  if (const std::string* column = record.FindColumn(name)) return OrderedJson(*column);
  return std::nullopt;
}

// The record as the diff shows it: every field, in-flight ones described.
OrderedJson RecordJson(const Record& record) {
  OrderedJson json;
  json["id"] = record.id();
  json["url"] = record.url();
  json["status"] = StatusOf(record);
  if (record.reason() != FailureReason::kNone) {
    json["reason"] = FailureReasonName(record.reason());
    json["error"] = record.error();
  }
  OrderedJson fields = OrderedJson::object();
  for (const auto& [name, value] : record.fields())
    fields[name] = *FieldJson(record, name);
  json["fields"] = std::move(fields);
  if (!record.columns().empty()) {
    OrderedJson columns = OrderedJson::object();
    for (const auto& [name, text] : record.columns()) columns[name] = text;
    json["columns"] = std::move(columns);
  }
  return json;
}

bool JsonEquals(const OrderedJson& a, const OrderedJson& b) {
  return JsonContains(a, b) && JsonContains(b, a);
}

// What differs between `record` and `expect`, one line each.
std::vector<std::string> Mismatches(const Record& record,
                                    const RecordExpectation& expect) {
  std::vector<std::string> lines;
  if (expect.status && *expect.status != StatusOf(record)) {
    lines.push_back(
        fmt::format("status: expected {}, got {}", *expect.status, StatusOf(record)));
  }
  if (expect.reason && *expect.reason != record.reason()) {
    lines.push_back(fmt::format(
        "reason: expected {}, got {}", FailureReasonName(*expect.reason),
        record.reason() == FailureReason::kNone ? "none"
                                                : FailureReasonName(record.reason())));
  }
  for (const auto& [name, expected] : expect.fields) {
    std::optional<OrderedJson> actual = FieldJson(record, name);
    if (!actual) {
      lines.push_back(
          fmt::format("fields.{}: expected {}, not set", name, DumpJson(expected)));
    } else if (!JsonEquals(expected, *actual)) {
      lines.push_back(fmt::format("fields.{}: expected {}, got {}", name,
                                  DumpJson(expected), DumpJson(*actual)));
    }
  }
  for (const std::string& name : expect.fields_absent) {
    if (record.Find(name) != nullptr) {
      lines.push_back(fmt::format("fields_absent: '{}' is set to {}", name,
                                  DumpJson(*FieldJson(record, name))));
    }
  }
  for (const auto& [name, pattern] : expect.fields_match) {
    std::optional<OrderedJson> actual = FieldJson(record, name);
    if (!actual) {
      lines.push_back(fmt::format("fields_match.{}: not set", name));
      continue;
    }
    const std::string text =
        actual->is_string() ? actual->get<std::string>() : DumpJson(*actual);
    RE2 regex(pattern, RE2::Quiet);
    if (!regex.ok()) {
      lines.push_back(fmt::format("fields_match.{}: bad regular expression '{}': {}",
                                  name, pattern, regex.error()));
    } else if (!RE2::PartialMatch(text, regex)) {
      lines.push_back(fmt::format("fields_match.{}: {} does not match /{}/", name,
                                  DumpJson(*actual), pattern));
    }
  }
  if (expect.error_contains &&
      record.error().find(*expect.error_contains) == std::string::npos) {
    lines.push_back(fmt::format("error_contains: '{}' not in {}", *expect.error_contains,
                                DumpJson(OrderedJson(record.error()))));
  }
  return lines;
}

// The bytes of `file` ("" = none); `where` names it in the error.
Result<std::shared_ptr<const Bytes>> ReadBody(const std::string& file,
                                              const std::string& where) {
  if (file.empty()) return std::shared_ptr<const Bytes>();
  std::ifstream in(file, std::ios::binary);
  if (!in) return IoError(fmt::format("{}.body_file: cannot read {}", where, file));
  return std::make_shared<const Bytes>(std::istreambuf_iterator<char>(in),
                                       std::istreambuf_iterator<char>());
}

Result<std::vector<Record>> MakeInput(const PipelineTestFile& file,
                                      const PipelineTestCase& test) {
  std::vector<Record> records;
  records.reserve(test.input.size());
  for (std::size_t i = 0; i < test.input.size(); ++i) {
    const TestInputRecord& input = test.input[i];
    Record record(input.id.value_or(i + 1), input.url);
    for (const auto& [name, text] : input.columns) record.AddColumn(name, text);
    for (const auto& [name, value] : input.fields) record.Set(name, value);
    SLUICE_ASSIGN_OR_RETURN(
        std::shared_ptr<const Bytes> body,
        ReadBody(input.body_file,
                 fmt::format("{}: {}.input[{}]", file.source, test.path, i)));
    if (body != nullptr) record.Set("body", *body);
    records.push_back(std::move(record));
  }
  return records;
}

// Runs `nodes` over `records` as one batch; the records that come out, by id.
Result<std::vector<Record>> RunBatch(const PipelineConfig& config,
                                     std::vector<NamedStage> nodes,
                                     std::vector<Record> records) {
  std::mutex mu;
  std::vector<Record> out;  // guarded by mu
  bool done = false;        // guarded by mu
  RuntimeOptions options;
  options.cpu_threads = 2;
  options.chunk_size = config.chunk_size;
  options.max_batches_in_flight = 1;
  Runtime runtime(options, std::move(nodes), [&](BatchId, std::vector<Record> batch) {
    std::lock_guard<std::mutex> lock(mu);
    out = std::move(batch);
    done = true;
  });
  SLUICE_RETURN_IF_ERROR(runtime.Start());
  SLUICE_RETURN_IF_ERROR(runtime.Submit(1, std::move(records)));
  runtime.Finish();
  SLUICE_RETURN_IF_ERROR(runtime.error());
  std::lock_guard<std::mutex> lock(mu);
  if (!done) return Internal("the batch was not reported done");
  std::sort(out.begin(), out.end(),
            [](const Record& a, const Record& b) { return a.id() < b.id(); });
  return out;
}

}  // namespace

const std::vector<std::string>& NetworkStageTypes() {
  static const std::vector<std::string> types = {"fetch"};
  return types;
}

Result<PipelineTestResult> RunPipelineTest(const PipelineTestFile& file,
                                           const PipelineTestCase& test,
                                           const PipelineConfig& config,
                                           const StageRegistry& registry) {
  if (config.stages.empty()) {
    return InvalidArgument(
        fmt::format("{}: {}: the pipeline has no stages to run", file.source, test.path));
  }
  SLUICE_ASSIGN_OR_RETURN(const auto range, TargetRange(file, test, config));
  const auto [first, last] = range;

  // Mocked stages become stages of a type of their own, in a copy of the registry,
  // so that BuildStages wires and plans them like any other.
  PipelineConfig tested = config;
  StageRegistry stages = registry;
  for (const TestMock& mock : test.mocks) {
    std::optional<std::size_t> index = StageIndex(config, mock.stage);
    if (!index) {
      return InvalidArgument(fmt::format("{}: {}: no stage named '{}' in {}", file.source,
                                         mock.path, mock.stage, file.pipeline_path));
    }
    if (config.stages[*index].is_operator) {
      return InvalidArgument(fmt::format("{}: {}: '{}' is an operator ({}), not a stage",
                                         file.source, mock.path, mock.stage,
                                         config.stages[*index].type));
    }
    SLUICE_ASSIGN_OR_RETURN(std::shared_ptr<const Bytes> body,
                            ReadBody(mock.body_file, file.source + ": " + mock.path));
    const std::string type = "test mock " + mock.stage;
    SLUICE_RETURN_IF_ERROR(stages.Register(
        type, "a test's mock",
        [mock, body](StageOptions&) -> Result<std::unique_ptr<Stage>> {
          return std::unique_ptr<Stage>(std::make_unique<MockStage>(mock, body));
        }));
    tested.stages[*index].type = type;
    tested.stages[*index].options_yaml = "{}";
  }
  for (std::size_t i = first; i <= last; ++i) {
    const StageSpec& spec = tested.stages[i];
    const auto& network = NetworkStageTypes();
    if (std::find(network.begin(), network.end(), spec.type) != network.end()) {
      return InvalidArgument(fmt::format(
          "{}: {}: stage '{}' ({}) touches the network: mock it ({}.mocks.{}: {{set: "
          "{{...}}}}) or leave it out of the target",
          file.source, test.path, spec.name, spec.type, test.path, spec.name));
    }
  }
  GroupSpec range_group;
  range_group.name = "test";
  range_group.first_stage = first;
  range_group.stage_count = last - first + 1;
  Result<std::vector<NamedStage>> nodes = BuildStages(tested, stages, &range_group);
  if (!nodes.ok()) {
    return InvalidArgument(
        fmt::format("{}: {}: {}", file.source, test.path, nodes.ToStatus().message()));
  }
  SLUICE_ASSIGN_OR_RETURN(std::vector<Record> input, MakeInput(file, test));
  Result<std::vector<Record>> out =
      RunBatch(config, std::move(nodes).value(), std::move(input));
  if (!out.ok()) {
    return InvalidArgument(fmt::format("{}: {}: the run failed: {}", file.source,
                                       test.path, out.ToStatus().message()));
  }

  PipelineTestResult result;
  result.name = test.name;
  if (test.count && *test.count != out->size()) {
    result.diff.push_back(
        fmt::format("count: expected {}, got {}", *test.count, out->size()));
  }
  if (test.check_records) {
    const std::size_t n = std::max(test.records.size(), out->size());
    for (std::size_t i = 0; i < n; ++i) {
      const std::string where = fmt::format("records[{}]", i);
      if (i >= out->size()) {
        result.diff.push_back(fmt::format("{}: expected {}, no such record came out",
                                          where, DumpJson(test.records[i].written)));
        continue;
      }
      const Record& record = (*out)[i];
      if (i >= test.records.size()) {
        result.diff.push_back(
            fmt::format("{}: not expected, got {}", where, DumpJson(RecordJson(record))));
        continue;
      }
      std::vector<std::string> lines = Mismatches(record, test.records[i]);
      if (lines.empty()) continue;
      result.diff.push_back(fmt::format("{} (id {}):", where, record.id()));
      for (const std::string& line : lines) result.diff.push_back("  - " + line);
      result.diff.push_back("  expected: " + DumpJson(test.records[i].written));
      result.diff.push_back("  actual:   " + DumpJson(RecordJson(record)));
    }
  }
  for (const ReduceExpectation& expect : test.reduces) {
    auto it = std::find_if(
        config.reducers.begin(), config.reducers.end(),
        [&](const ReduceNodeSpec& r) { return r.spec->name == expect.name; });
    if (it == config.reducers.end()) {
      return InvalidArgument(
          fmt::format("{}: {}: the pipeline has no reduce node named '{}'", file.source,
                      expect.path, expect.name));
    }
    ReduceTable table(it->spec);
    for (const Record& record : *out) table.Add(record);
    const OrderedJson actual = table.ResultJson();
    if (!JsonContains(expect.contains, actual)) {
      result.diff.push_back(fmt::format(
          "reduce.{}: the result does not contain what is expected", expect.name));
      result.diff.push_back("  expected (contained): " + DumpJson(expect.contains));
      result.diff.push_back("  actual:               " + DumpJson(actual));
    }
  }
  result.passed = result.diff.empty();
  return result;
}

Result<std::vector<PipelineTestResult>> RunPipelineTestFile(
    const PipelineTestFile& file, const StageRegistry& registry) {
  Result<PipelineConfig> config = LoadPipelineFile(file.pipeline_path, {}, registry);
  if (!config.ok()) {
    return InvalidArgument(
        fmt::format("{}: pipeline: {}", file.source, config.ToStatus().message()));
  }
  std::vector<PipelineTestResult> results;
  for (const PipelineTestCase& test : file.tests) {
    SLUICE_ASSIGN_OR_RETURN(PipelineTestResult result,
                            RunPipelineTest(file, test, *config, registry));
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace sluice
