// Pipeline unit tests written in YAML (`sluice test PIPELINE_test.yaml`): records
// in, the pipeline or a run of its stages, what must come out.
//
//   pipeline: filter.yaml                 # relative to the test file
//   tests:
//     - name: small images are filtered, not failed
//       target: {from: worth_decoding, to: big_enough}  # optional; default: all
//       mocks:                            # stages replaced, by name
//         fetch: {set: {content_type: image/jpeg, bytes: 20000}, body_file: x.jpg}
//       input:
//         - {url: "http://a.example/x.jpg", fields: {bytes: 50}, columns: {k: v},
//            body_file: x.jpg}
//       expect:
//         count: 1
//         records:                        # in input order (by id)
//           - {status: filtered, reason: filtered, error_contains: worth_decoding,
//              fields: {bytes: 50}, fields_absent: [width],
//              fields_match: {url: "^http://"}}
//         reduce: {per_host: {json_contains: {items: 1}}}
//
// This file reads such a file into a PipelineTestFile, checking every key and
// value (errors name the file and the YAML path, all of them at once). Running
// the tests is src/run/pipeline_test_runner.h's.
#ifndef SLUICE_RUN_PIPELINE_TEST_FILE_H_
#define SLUICE_RUN_PIPELINE_TEST_FILE_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/record.h"
#include "sluice/status.h"
#include "src/core/result_json.h"

namespace sluice {

// A stage replaced by a CPU stage that sets fields on each record (or fails it),
// for stages that would touch the network.
struct TestMock {
  std::string stage;                               // the replaced stage's name
  std::string path;                                // YAML path, "tests[0].mocks.fetch"
  std::vector<std::pair<std::string, Value>> set;  // "set": fields set on each record
  std::string body_file;  // "body_file": the file's bytes as the Bytes field "body";
                          // resolved against the test file's directory; "" = none
  FailureReason fail = FailureReason::kNone;  // "fail": fails each record so
  std::string fail_error;                     // "error": the failure's message
};

// One input record.
struct TestInputRecord {
  std::optional<ItemId> id;  // "id": default, its position from 1
  std::string url;           // "url"
  std::vector<std::pair<std::string, Value>> fields;         // "fields"
  std::vector<std::pair<std::string, std::string>> columns;  // "columns": input columns
  // "body_file": a file whose bytes the record carries as the Bytes field "body" (as
  // a fetch would leave it), resolved against the test file's directory.
  std::string body_file;
};

// What one output record must be; unset members are not checked.
struct RecordExpectation {
  std::string path;                     // YAML path, "tests[0].expect.records[1]"
  std::optional<std::string> status;    // "status": ok, failed or filtered
  std::optional<FailureReason> reason;  // "reason": a FailureReason name
  // "fields": each field's value equal, as JSON, to this one.
  std::vector<std::pair<std::string, OrderedJson>> fields;
  std::vector<std::string> fields_absent;  // "fields_absent": fields not set
  // "fields_match": each field's text (JSON for non-strings) matches the RE2 regex.
  std::vector<std::pair<std::string, std::string>> fields_match;
  std::optional<std::string> error_contains;  // "error_contains": in the error text
  OrderedJson written;                        // the expectation as written, for the diff
};

// "reduce: {NAME: {json_contains: {...}}}": the reduce node NAME, folded over the
// output records, has a ResultJson() containing `contains` (JsonContains).
struct ReduceExpectation {
  std::string name;
  std::string path;
  OrderedJson contains;
};

struct PipelineTestCase {
  std::string name;  // "name"
  std::string path;  // "tests[2]"
  // "target": the stages from `from` to `to` (inclusive); unset: the whole pipeline.
  std::optional<std::string> from;
  std::optional<std::string> to;
  std::vector<TestMock> mocks;
  std::vector<TestInputRecord> input;
  std::optional<std::size_t> count;  // "expect.count": records that come out
  bool check_records = false;        // "expect.records" was given
  std::vector<RecordExpectation> records;
  std::vector<ReduceExpectation> reduces;
};

struct PipelineTestFile {
  std::string source;         // the test file as named to the loader
  std::string pipeline_path;  // the pipeline file, resolved against the test file
  std::vector<PipelineTestCase> tests;
};

// Reads a test file from text. `source` names it in messages; relative paths in it
// (pipeline, body_file) are resolved against `base_dir`.
Result<PipelineTestFile> ParsePipelineTestFile(std::string_view yaml,
                                               const std::string& source,
                                               const std::string& base_dir);

// Reads and parses a test file.
Result<PipelineTestFile> LoadPipelineTestFile(const std::string& path);

// True when every member of `expected` is in `actual`: objects key by key
// (recursively), arrays element by element (`actual` may be longer), other values
// equal (numbers by value, 1 == 1.0).
bool JsonContains(const OrderedJson& expected, const OrderedJson& actual);

}  // namespace sluice

#endif  // SLUICE_RUN_PIPELINE_TEST_FILE_H_
