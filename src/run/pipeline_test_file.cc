#include "src/run/pipeline_test_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>

namespace sluice {
namespace {

// Collects the errors of one file, each "SOURCE: PATH: message".
class Errors {
 public:
  explicit Errors(std::string source) : source_(std::move(source)) {}
  void Add(const std::string& path, std::string_view message) {
    lines_.push_back(fmt::format("{}: {}: {}", source_, path, message));
  }
  bool empty() const { return lines_.empty(); }
  Status ToStatus() const {
    return InvalidArgument(fmt::format("{}", fmt::join(lines_, "\n")));
  }

 private:
  std::string source_;
  std::vector<std::string> lines_;
};

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

std::string Index(const std::string& path, std::size_t i) {
  return fmt::format("{}[{}]", path, i);
}

// Checks that `node` is a map whose keys are all in `allowed`.
bool CheckMap(const YAML::Node& node, const std::string& path,
              std::initializer_list<std::string_view> allowed, Errors& errors) {
  if (!node.IsMap()) {
    errors.Add(path, "expected a mapping");
    return false;
  }
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      errors.Add(Join(path, key), fmt::format("unknown key (expected one of {})",
                                              fmt::join(allowed, ", ")));
    }
  }
  return true;
}

std::optional<std::string> ScalarText(const YAML::Node& node, const std::string& path,
                                      Errors& errors) {
  if (!node.IsScalar()) {
    errors.Add(path, "expected a string");
    return std::nullopt;
  }
  return node.Scalar();
}

bool IsQuoted(const YAML::Node& node) { return node.Tag() == "!"; }

// A plain scalar as JSON: null, a boolean, an integer, a number, else text; quoted
// ones are always text.
OrderedJson ScalarJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (IsQuoted(node)) return text;
  if (text == "~" || text == "null" || text.empty()) return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  try {
    std::size_t used = 0;
    const long long integer = std::stoll(text, &used);
    if (used == text.size()) return static_cast<std::int64_t>(integer);
  } catch (const std::exception&) {
  }
  // Decimal numbers only: std::stod would also take "0x1p3", "inf" and "nan".
  if (text.find_first_not_of("0123456789+-.eE") != std::string::npos) return text;
  try {
    std::size_t used = 0;
    const double number = std::stod(text, &used);
    if (used == text.size()) return number;
  } catch (const std::exception&) {
  }
  return text;
}

OrderedJson YamlJson(const YAML::Node& node) {
  if (node.IsScalar()) return ScalarJson(node);
  if (node.IsSequence()) {
    OrderedJson array = OrderedJson::array();
    for (const auto& item : node) array.push_back(YamlJson(item));
    return array;
  }
  if (node.IsMap()) {
    OrderedJson object = OrderedJson::object();
    for (const auto& entry : node) {
      object[entry.first.as<std::string>()] = YamlJson(entry.second);
    }
    return object;
  }
  return nullptr;
}

// A field value from YAML: scalars as a boolean, an integer, a number or text; a
// list or a mapping as JSON (JsonText), as a stage giving a result would set it.
std::optional<Value> YamlValue(const YAML::Node& node, const std::string& path,
                               Errors& errors) {
  if (node.IsSequence() || node.IsMap()) return Value(JsonText{DumpJson(YamlJson(node))});
  if (!node.IsScalar()) {
    errors.Add(path, "expected a value");
    return std::nullopt;
  }
  const OrderedJson json = ScalarJson(node);
  if (json.is_boolean()) return Value(json.get<bool>());
  if (json.is_number_integer()) return Value(json.get<std::int64_t>());
  if (json.is_number_float()) return Value(json.get<double>());
  if (json.is_null()) {
    errors.Add(path, "expected a value, got null");
    return std::nullopt;
  }
  return Value(json.get<std::string>());
}

std::vector<std::pair<std::string, Value>> ParseFields(const YAML::Node& node,
                                                       const std::string& path,
                                                       Errors& errors) {
  std::vector<std::pair<std::string, Value>> fields;
  if (!node.IsMap()) {
    errors.Add(path, "expected a mapping of field names to values");
    return fields;
  }
  for (const auto& entry : node) {
    const std::string name = entry.first.as<std::string>();
    std::optional<Value> value = YamlValue(entry.second, Join(path, name), errors);
    if (value) fields.emplace_back(name, std::move(*value));
  }
  return fields;
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

std::optional<FailureReason> ParseReason(const YAML::Node& node, const std::string& path,
                                         Errors& errors) {
  std::optional<std::string> text = ScalarText(node, path, errors);
  if (!text) return std::nullopt;
  std::optional<FailureReason> reason = ParseFailureReason(*text);
  if (!reason) {
    std::vector<std::string_view> names;
    for (FailureReason r : AllFailureReasons()) names.push_back(FailureReasonName(r));
    errors.Add(path, fmt::format("unknown reason '{}' (expected one of {})", *text,
                                 fmt::join(names, ", ")));
  }
  return reason;
}

// A file named relative to the test file, which must exist.
std::string CheckedFile(const YAML::Node& node, const std::string& path,
                        const std::string& base_dir, Errors& errors) {
  std::optional<std::string> file = ScalarText(node, path, errors);
  if (!file) return "";
  std::string resolved = Resolve(base_dir, *file);
  if (!std::filesystem::is_regular_file(resolved)) {
    errors.Add(path, fmt::format("no such file: {}", resolved));
  }
  return resolved;
}

void ParseMocks(const YAML::Node& node, const std::string& path,
                const std::string& base_dir, PipelineTestCase& test, Errors& errors) {
  if (!node.IsMap()) {
    errors.Add(path, "expected a mapping of stage names to mocks");
    return;
  }
  for (const auto& entry : node) {
    TestMock mock;
    mock.stage = entry.first.as<std::string>();
    mock.path = Join(path, mock.stage);
    const YAML::Node& spec = entry.second;
    if (!CheckMap(spec, mock.path, {"set", "body_file", "fail", "error"}, errors))
      continue;
    if (spec["set"]) mock.set = ParseFields(spec["set"], Join(mock.path, "set"), errors);
    if (spec["body_file"]) {
      mock.body_file =
          CheckedFile(spec["body_file"], Join(mock.path, "body_file"), base_dir, errors);
    }
    if (spec["fail"]) {
      const std::string where = Join(mock.path, "fail");
      std::optional<FailureReason> reason = ParseReason(spec["fail"], where, errors);
      if (reason && !IsFailure(*reason)) {
        errors.Add(where, "expected a failure reason (not 'filtered')");
      } else if (reason) {
        mock.fail = *reason;
      }
    }
    if (spec["error"]) {
      const std::string where = Join(mock.path, "error");
      if (std::optional<std::string> text = ScalarText(spec["error"], where, errors)) {
        mock.fail_error = *text;
      }
      if (!spec["fail"]) errors.Add(where, "`error` needs `fail`");
    }
    test.mocks.push_back(std::move(mock));
  }
}

void ParseInput(const YAML::Node& node, const std::string& path,
                const std::string& base_dir, PipelineTestCase& test, Errors& errors) {
  if (!node.IsSequence()) {
    errors.Add(path, "expected a list of records");
    return;
  }
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string where = Index(path, i);
    const YAML::Node& spec = node[i];
    if (!CheckMap(spec, where, {"id", "url", "fields", "columns", "body_file"}, errors)) {
      continue;
    }
    TestInputRecord record;
    if (spec["id"]) {
      const OrderedJson id = spec["id"].IsScalar() ? ScalarJson(spec["id"]) : nullptr;
      if (!id.is_number_unsigned() &&
          !(id.is_number_integer() && id.get<std::int64_t>() >= 0)) {
        errors.Add(Join(where, "id"), "expected a non-negative integer");
      } else {
        record.id = id.get<ItemId>();
      }
    }
    if (!spec["url"]) {
      errors.Add(where, "a record needs `url`");
    } else if (std::optional<std::string> url =
                   ScalarText(spec["url"], Join(where, "url"), errors)) {
      record.url = *url;
    }
    if (spec["body_file"]) {
      record.body_file =
          CheckedFile(spec["body_file"], Join(where, "body_file"), base_dir, errors);
    }
    if (spec["fields"])
      record.fields = ParseFields(spec["fields"], Join(where, "fields"), errors);
    if (spec["columns"]) {
      const std::string columns_path = Join(where, "columns");
      if (!spec["columns"].IsMap()) {
        errors.Add(columns_path, "expected a mapping of column names to text");
      } else {
        for (const auto& column : spec["columns"]) {
          const std::string name = column.first.as<std::string>();
          if (std::optional<std::string> text =
                  ScalarText(column.second, Join(columns_path, name), errors)) {
            record.columns.emplace_back(name, *text);
          }
        }
      }
    }
    test.input.push_back(std::move(record));
  }
}

std::vector<std::string> StringList(const YAML::Node& node, const std::string& path,
                                    Errors& errors) {
  std::vector<std::string> list;
  if (!node.IsSequence()) {
    errors.Add(path, "expected a list of names");
    return list;
  }
  for (std::size_t i = 0; i < node.size(); ++i) {
    if (std::optional<std::string> text = ScalarText(node[i], Index(path, i), errors)) {
      list.push_back(*text);
    }
  }
  return list;
}

RecordExpectation ParseRecordExpectation(const YAML::Node& node, const std::string& path,
                                         Errors& errors) {
  RecordExpectation expect;
  expect.path = path;
  if (!CheckMap(node, path,
                {"status", "reason", "fields", "fields_absent", "fields_match",
                 "error_contains"},
                errors)) {
    return expect;
  }
  expect.written = YamlJson(node);
  if (node["status"]) {
    const std::string where = Join(path, "status");
    std::optional<std::string> status = ScalarText(node["status"], where, errors);
    if (status && *status != "ok" && *status != "failed" && *status != "filtered") {
      errors.Add(where, "expected one of ok, failed, filtered");
    } else if (status) {
      expect.status = *status;
    }
  }
  if (node["reason"])
    expect.reason = ParseReason(node["reason"], Join(path, "reason"), errors);
  if (node["fields"]) {
    const std::string where = Join(path, "fields");
    if (!node["fields"].IsMap()) {
      errors.Add(where, "expected a mapping of field names to values");
    } else {
      for (const auto& entry : node["fields"]) {
        expect.fields.emplace_back(entry.first.as<std::string>(), YamlJson(entry.second));
      }
    }
  }
  if (node["fields_absent"]) {
    expect.fields_absent =
        StringList(node["fields_absent"], Join(path, "fields_absent"), errors);
  }
  if (node["fields_match"]) {
    const std::string where = Join(path, "fields_match");
    if (!node["fields_match"].IsMap()) {
      errors.Add(where, "expected a mapping of field names to regular expressions");
    } else {
      for (const auto& entry : node["fields_match"]) {
        const std::string name = entry.first.as<std::string>();
        if (std::optional<std::string> regex =
                ScalarText(entry.second, Join(where, name), errors)) {
          expect.fields_match.emplace_back(name, *regex);
        }
      }
    }
  }
  if (node["error_contains"]) {
    expect.error_contains =
        ScalarText(node["error_contains"], Join(path, "error_contains"), errors);
  }
  return expect;
}

void ParseExpect(const YAML::Node& node, const std::string& path, PipelineTestCase& test,
                 Errors& errors) {
  if (!CheckMap(node, path, {"count", "records", "reduce"}, errors)) return;
  if (node["count"]) {
    const std::string where = Join(path, "count");
    const OrderedJson count =
        node["count"].IsScalar() ? ScalarJson(node["count"]) : nullptr;
    if (!count.is_number_integer() || count.get<std::int64_t>() < 0) {
      errors.Add(where, "expected a non-negative integer");
    } else {
      test.count = count.get<std::size_t>();
    }
  }
  if (node["records"]) {
    const std::string where = Join(path, "records");
    test.check_records = true;
    if (!node["records"].IsSequence()) {
      errors.Add(where, "expected a list of record expectations");
    } else {
      for (std::size_t i = 0; i < node["records"].size(); ++i) {
        test.records.push_back(
            ParseRecordExpectation(node["records"][i], Index(where, i), errors));
      }
    }
  }
  if (node["reduce"]) {
    const std::string where = Join(path, "reduce");
    if (!node["reduce"].IsMap()) {
      errors.Add(where, "expected a mapping of reduce names to expectations");
      return;
    }
    for (const auto& entry : node["reduce"]) {
      ReduceExpectation reduce;
      reduce.name = entry.first.as<std::string>();
      reduce.path = Join(where, reduce.name);
      if (!CheckMap(entry.second, reduce.path, {"json_contains"}, errors)) continue;
      if (!entry.second["json_contains"]) {
        errors.Add(reduce.path, "expected `json_contains`");
        continue;
      }
      reduce.contains = YamlJson(entry.second["json_contains"]);
      test.reduces.push_back(std::move(reduce));
    }
  }
}

PipelineTestCase ParseTest(const YAML::Node& node, const std::string& path,
                           const std::string& base_dir, Errors& errors) {
  PipelineTestCase test;
  test.path = path;
  if (!CheckMap(node, path, {"name", "target", "mocks", "input", "expect"}, errors)) {
    return test;
  }
  if (!node["name"]) {
    errors.Add(path, "a test needs `name`");
  } else if (std::optional<std::string> name =
                 ScalarText(node["name"], Join(path, "name"), errors)) {
    test.name = *name;
  }
  if (node["target"]) {
    const std::string where = Join(path, "target");
    if (CheckMap(node["target"], where, {"from", "to"}, errors)) {
      if (node["target"]["from"]) {
        test.from = ScalarText(node["target"]["from"], Join(where, "from"), errors);
      }
      if (node["target"]["to"]) {
        test.to = ScalarText(node["target"]["to"], Join(where, "to"), errors);
      }
    }
  }
  if (node["mocks"])
    ParseMocks(node["mocks"], Join(path, "mocks"), base_dir, test, errors);
  if (node["input"]) {
    ParseInput(node["input"], Join(path, "input"), base_dir, test, errors);
  } else {
    errors.Add(path, "a test needs `input`, its records");
  }
  if (node["expect"]) {
    ParseExpect(node["expect"], Join(path, "expect"), test, errors);
  } else {
    errors.Add(path, "a test needs `expect`");
  }
  return test;
}

}  // namespace

Result<PipelineTestFile> ParsePipelineTestFile(std::string_view yaml,
                                               const std::string& source,
                                               const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(fmt::format("{}: {}", source, e.what()));
  }
  Errors errors(source);
  PipelineTestFile file;
  file.source = source;
  try {
    if (!CheckMap(root, "(top level)", {"pipeline", "tests"}, errors)) {
      return errors.ToStatus();
    }
    if (!root["pipeline"]) {
      errors.Add("pipeline", "required: the pipeline file, relative to this one");
    } else if (std::optional<std::string> pipeline =
                   ScalarText(root["pipeline"], "pipeline", errors)) {
      file.pipeline_path = Resolve(base_dir, *pipeline);
    }
    if (!root["tests"] || !root["tests"].IsSequence() || root["tests"].size() == 0) {
      errors.Add("tests", "expected a list of one test or more");
    } else {
      for (std::size_t i = 0; i < root["tests"].size(); ++i) {
        file.tests.push_back(
            ParseTest(root["tests"][i], Index("tests", i), base_dir, errors));
      }
    }
  } catch (const YAML::Exception& e) {
    errors.Add("(top level)", e.what());
  }
  if (!errors.empty()) return errors.ToStatus();
  return file;
}

Result<PipelineTestFile> LoadPipelineTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(fmt::format("{}: cannot read the test file", path));
  std::ostringstream text;
  text << in.rdbuf();
  return ParsePipelineTestFile(text.str(), path,
                               std::filesystem::path(path).parent_path().string());
}

bool JsonContains(const OrderedJson& expected, const OrderedJson& actual) {
  if (expected.is_object()) {
    if (!actual.is_object()) return false;
    for (const auto& [key, value] : expected.items()) {
      auto it = actual.find(key);
      if (it == actual.end() || !JsonContains(value, *it)) return false;
    }
    return true;
  }
  if (expected.is_array()) {
    if (!actual.is_array() || actual.size() < expected.size()) return false;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      if (!JsonContains(expected[i], actual[i])) return false;
    }
    return true;
  }
  if (expected.is_number() && actual.is_number()) {
    return expected.get<double>() == actual.get<double>();
  }
  return expected == actual;
}

}  // namespace sluice
