// The shipped pipelines (pipelines/*.yaml) end to end: the real binary against the
// fault server on loopback, serving face photos Debian ships with dlib. One input
// holds every fault the server injects; every item must end with the right status
// and reason, and the outputs must hold exactly the items that succeeded.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "src/output/tar_shard.h"
#include "tests/fixtures/fault_server.h"
#include "tests/test_util.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr const char* kPhotos = "/usr/share/doc/libdlib19.1/examples/faces";

struct Case {
  std::string path;    // path and query on the fault server, or a whole URL
  std::string reason;  // "" for ok
};

// Options that make the slow faults end in a second or two.
std::vector<std::string> QuickFetch() {
  return {"--set",
          "allow_private_networks=true",
          "--set",
          "stages.fetch.timeout_ms=1500",
          "--set",
          "stages.fetch.retries=1",
          "--set",
          "stages.fetch.retry_base_ms=20",
          "--set",
          "stages.fetch.low_speed_bytes=1000",
          "--set",
          "stages.fetch.low_speed_seconds=1",
          "--set",
          "stages.fetch.max_bytes=4000000",
          "--status-interval",
          "0"};
}

class PipelinesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(kPhotos) / "Tom_Cruise_avp_2014_4.jpg")) {
      GTEST_SKIP() << kPhotos << " is missing (Debian package libdlib19.1)";
    }
    fs::create_directories(dir_.File("images"));
    for (const char* name : {"Tom_Cruise_avp_2014_4.jpg", "bald_guys.jpg"}) {
      fs::copy_file(fs::path(kPhotos) / name, dir_.File("images") + "/" + name);
    }
    FaultServerOptions options;
    options.root = dir_.File("images");
    auto server = FaultServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  std::string Url(const std::string& path) const {
    return path.starts_with("/") ? server_->Url(path) : path;
  }

  // Writes a TSV input (url, caption) of `cases`; returns its path.
  std::string WriteInput(const std::vector<Case>& cases) const {
    std::string text = "url\tcaption\n";
    for (std::size_t i = 0; i < cases.size(); ++i) {
      text += Url(cases[i].path) + "\tphoto " + std::to_string(i) + "\n";
    }
    return dir_.Write("urls.tsv", text);
  }

  CommandResult Run(const std::string& pipeline, const std::string& input,
                    const std::string& workdir, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run",       SourceDir() + "/pipelines/" + pipeline,
                                     "--input",   input,
                                     "--workdir", workdir};
    for (const std::string& arg : QuickFetch()) args.push_back(arg);
    for (std::string& arg : extra) args.push_back(std::move(arg));
    return RunSluice(args, seconds(300));
  }

  // Runs an exec example on two photos and a 404, its stage `stage` running
  // examples/exec/`script` (the pipeline names the script relative to the
  // repository root; the test runs elsewhere); the exported rows.
  std::vector<nlohmann::json> RunExecExample(const std::string& pipeline,
                                             const std::string& stage,
                                             const std::string& script) {
    const std::vector<Case> cases = {
        {"/Tom_Cruise_avp_2014_4.jpg", ""},
        {"/bald_guys.jpg", ""},
        {"/bald_guys.jpg?status=404", "http_4xx"},
    };
    const std::string workdir = dir_.File("work");
    CommandResult run = Run(pipeline, WriteInput(cases), workdir,
                            {"--set", "stages." + stage + ".command=[/usr/bin/python3, " +
                                          SourceDir() + "/examples/exec/" + script + "]"});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return ExportRows(workdir);
  }

  TempDir dir_;
  std::unique_ptr<FaultServer> server_;
};

// An export row's face boxes: one per face, each inside the image it was found in
// (whose size the row gives).
void ExpectBoxesInTheImage(const nlohmann::json& row) {
  const nlohmann::json& boxes = row["face_boxes"];
  ASSERT_EQ(boxes.size(), row["faces"].get<std::size_t>());
  for (const nlohmann::json& box : boxes) {
    EXPECT_LE(box[0].get<int>() + box[2].get<int>(), row["width"].get<int>());
    EXPECT_LE(box[1].get<int>() + box[3].get<int>(), row["height"].get<int>());
  }
}

TEST_F(PipelinesTest, FacesPipelineEndsEveryFaultWithItsReason) {
  const std::vector<Case> cases = {
      {"/Tom_Cruise_avp_2014_4.jpg", ""},
      {"/bald_guys.jpg?redirect=2", ""},
      {"/Tom_Cruise_avp_2014_4.jpg?delay=200", ""},
      {"/Tom_Cruise_avp_2014_4.jpg?status=404", "http_4xx"},
      {"/Tom_Cruise_avp_2014_4.jpg?status=503", "http_5xx"},
      {"/Tom_Cruise_avp_2014_4.jpg?status=429&retry_after=1", "http_4xx"},
      {"/Tom_Cruise_avp_2014_4.jpg?redirect_loop", "too_many_redirects"},
      {"/Tom_Cruise_avp_2014_4.jpg?redirect=9", "too_many_redirects"},
      {"/Tom_Cruise_avp_2014_4.jpg?delay=10000", "timeout"},
      {"/Tom_Cruise_avp_2014_4.jpg?drip=100", "timeout"},
      {"/Tom_Cruise_avp_2014_4.jpg?reset", "connect"},
      {"/Tom_Cruise_avp_2014_4.jpg?truncate=500", "connect"},
      {"/Tom_Cruise_avp_2014_4.jpg?endless", "too_large"},
      {"/Tom_Cruise_avp_2014_4.jpg?content_type=text/html", "not_image"},
      {"/Tom_Cruise_avp_2014_4.jpg?empty", "not_image"},
      {"/gen/not_image", "not_image"},
      {"/gen/huge_png", "too_large"},
      {"/Tom_Cruise_avp_2014_4.jpg?robots=noai", "opt_out"},
      {"/x?redirect_to=file:///etc/passwd", "forbidden"},
      {"ftp://127.0.0.1/photo.jpg", "forbidden"},
      {"http://127.0.0.1:1/refused.jpg", "connect"},
  };
  const std::string workdir = dir_.File("work");
  // No bound on how long the run takes (Run's 300 s only guards against a hang):
  // that the slow faults did not hold it up is told by their reasons, since the
  // server would answer delay=10000 after 10 s and finish drip=100 in ten minutes,
  // and an item that waited for either would end ok, not as a timeout.
  CommandResult result = Run("faces.yaml", WriteInput(cases), workdir);
  ASSERT_EQ(result.exit_code, 0) << result.err;

  std::vector<nlohmann::json> rows = ExportRows(workdir);
  ASSERT_EQ(rows.size(), cases.size());
  std::size_t ok = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const nlohmann::json& row = rows[i];
    SCOPED_TRACE(cases[i].path + ": " + row.dump());
    if (cases[i].reason.empty()) {
      EXPECT_EQ(row["status"], "ok");
      ok++;
    } else {
      EXPECT_EQ(row["status"], "failed");
      EXPECT_EQ(row["reason"], cases[i].reason);
    }
  }
  // The photos hold faces, found and mapped to the original image's coordinates.
  EXPECT_GE(rows[0]["faces"].get<int>(), 1);
  EXPECT_EQ(rows[0]["http_status"], 200);

  // Outputs: one shard with the ok items (image, JSON, caption), metadata for all.
  const std::string output = workdir + "/output";
  EXPECT_TRUE(fs::exists(output + "/shards/00000001.tar")) << output;
  const std::string metadata = ReadFile(output + "/metadata/00000001.jsonl");
  EXPECT_EQ(static_cast<std::size_t>(std::count(metadata.begin(), metadata.end(), '\n')),
            cases.size());
  EXPECT_TRUE(fs::exists(output + "/stats/00000001.json"));
  EXPECT_EQ(ok, 3u);
}

TEST_F(PipelinesTest, FastFacesPipelineFindsFacesWithLandmarks) {
  const std::vector<Case> cases = {{"/Tom_Cruise_avp_2014_4.jpg", ""},
                                   {"/bald_guys.jpg", ""},
                                   {"/Tom_Cruise_avp_2014_4.jpg?status=404", "http_4xx"}};
  const std::string input = WriteInput(cases);
  CommandResult result = Run("faces-fast.yaml", input, dir_.File("fast"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::vector<nlohmann::json> rows = ExportRows(dir_.File("fast"));
  ASSERT_EQ(rows.size(), cases.size());
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(rows[i].dump());
    EXPECT_EQ(rows[i]["status"], "ok");
    ASSERT_GE(rows[i]["faces"].get<int>(), 1);
    // A list, not a string holding one.
    ASSERT_TRUE(rows[i]["face_boxes"].is_array()) << rows[i].dump();
    const nlohmann::json& boxes = rows[i]["face_boxes"];
    ASSERT_TRUE(rows[i]["face_landmarks"].is_array());
    ASSERT_TRUE(rows[i]["face_scores"].is_array());
    const nlohmann::json& landmarks = rows[i]["face_landmarks"];
    EXPECT_EQ(boxes.size(), rows[i]["faces"].get<std::size_t>());
    ASSERT_EQ(landmarks.size(), boxes.size());
    EXPECT_EQ(landmarks[0].size(), 12u);
  }
  EXPECT_EQ(rows[2]["reason"], "http_4xx");

  // The metadata lines and the export rows are the same objects: same fields, same
  // order, same types.
  CommandResult exported = RunSluice({"export", "--workdir", dir_.File("fast")});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::map<std::uint64_t, nlohmann::ordered_json> by_id;
  std::istringstream export_lines(exported.out);
  for (std::string line; std::getline(export_lines, line);) {
    nlohmann::ordered_json row = nlohmann::ordered_json::parse(line);
    by_id[row["id"].get<std::uint64_t>()] = row;
  }
  std::size_t compared = 0;
  for (const auto& entry : fs::directory_iterator(dir_.File("fast") + "/output/metadata")) {
    std::ifstream file(entry.path());
    for (std::string line; std::getline(file, line);) {
      const nlohmann::ordered_json metadata = nlohmann::ordered_json::parse(line);
      ASSERT_TRUE(by_id.contains(metadata["id"].get<std::uint64_t>())) << line;
      EXPECT_EQ(metadata.dump(), by_id[metadata["id"].get<std::uint64_t>()].dump());
      ++compared;
    }
  }
  EXPECT_EQ(compared, cases.size());

  // A model that is not there stops the run before any item is touched.
  CommandResult missing =
      Run("faces-fast.yaml", input, dir_.File("missing"),
          {"--set", "stages.faces.model=/nonexistent/blazeface.onnx"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("stages[3] (faces).model"), std::string::npos)
      << missing.err;
  EXPECT_NE(missing.err.find("scripts/install-deps.sh"), std::string::npos)
      << missing.err;
  EXPECT_FALSE(fs::exists(dir_.File("missing") + "/output")) << missing.err;
}

// faces-split.yaml is faces.yaml in two stage groups: run side by side in one
// process, its batches pass from `download` to `detect` through the blob directory,
// and every item ends exactly as with faces.yaml; no payload is left behind.
TEST_F(PipelinesTest, SplitFacesPipelineGivesWhatTheFacesPipelineGives) {
  const std::vector<Case> cases = {
      {"/Tom_Cruise_avp_2014_4.jpg", ""},
      {"/bald_guys.jpg?redirect=2", ""},
      {"/Tom_Cruise_avp_2014_4.jpg?status=404", "http_4xx"},
      {"/Tom_Cruise_avp_2014_4.jpg?delay=10000", "timeout"},
      {"/gen/not_image", "not_image"},
      {"/bald_guys.jpg", ""},
  };
  const std::string input = WriteInput(cases);
  // Small batches, so that several travel between the groups.
  const std::vector<std::string> batches = {"--set", "batch_size=2"};
  CommandResult whole = Run("faces.yaml", input, dir_.File("whole"), batches);
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  CommandResult split = Run("faces-split.yaml", input, dir_.File("split"), batches);
  ASSERT_EQ(split.exit_code, 0) << split.err;

  std::vector<nlohmann::json> expected = ExportRows(dir_.File("whole"));
  std::vector<nlohmann::json> got = ExportRows(dir_.File("split"));
  ASSERT_EQ(got.size(), cases.size());
  ASSERT_EQ(expected.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].path);
    // Timings differ from run to run; everything else is the same.
    for (nlohmann::json* row : {&expected[i], &got[i]}) {
      row->erase("download_ms");
      row->erase("error");
    }
    EXPECT_EQ(got[i], expected[i]);
    EXPECT_EQ(got[i]["status"], cases[i].reason.empty() ? "ok" : "failed");
  }
  EXPECT_GE(got[0]["faces"].get<int>(), 1);
  // The shards hold the same members; images byte for byte, each item's JSON equal
  // but for its timings (whose digits, and so the tar's size, vary run to run).
  for (const char* shard : {"00000001.tar", "00000003.tar"}) {
    SCOPED_TRACE(shard);
    auto members = [&](const std::string& run) {
      std::vector<std::pair<std::string, std::string>> found;
      Status read = ReadTar(dir_.File(run) + "/output/shards/" + shard,
                            [&](std::string name, std::string data) {
                              if (name.ends_with(".json")) {
                                nlohmann::json item = nlohmann::json::parse(data);
                                item.erase("download_ms");
                                item.erase("error");
                                data = item.dump();
                              }
                              found.emplace_back(std::move(name), std::move(data));
                            });
      EXPECT_TRUE(read.ok()) << read.ToString();
      return found;
    };
    const auto split_members = members("split");
    EXPECT_FALSE(split_members.empty());
    EXPECT_EQ(split_members, members("whole"));
  }
  // Every payload was removed once `detect` committed its batch.
  std::size_t left = 0;
  for (const auto& entry :
       fs::recursive_directory_iterator(dir_.File("split") + "/blobs")) {
    left += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(left, 0u);

  // A group that is not in the pipeline is a usage error naming the groups.
  CommandResult wrong = RunSluice({"worker", SourceDir() + "/pipelines/faces-split.yaml",
                                   "--workdir", dir_.File("split"), "--group", "nope"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("no such stage group (download, detect)"), std::string::npos)
      << wrong.err;
}

// `sluice retry` on a pipeline split in stage groups: a failure (here in download,
// travelled on to detect) is redone from the first group, and ends ok in both.
TEST_F(PipelinesTest, SplitPipelineRetriesFailuresFromTheFirstGroup) {
  // Fails its first 2 tries (QuickFetch: 1 retry), answers the third.
  const std::vector<Case> cases = {
      {"/Tom_Cruise_avp_2014_4.jpg", ""},
      {"/bald_guys.jpg?status=503&status_times=2&n=retry", "http_5xx"},
      {"/Tom_Cruise_avp_2014_4.jpg?status=404", "http_4xx"},
  };
  const std::string workdir = dir_.File("split");
  const std::string input = WriteInput(cases);
  const std::vector<std::string> batches = {"--set", "batch_size=2"};
  CommandResult first = Run("faces-split.yaml", input, workdir, batches);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  std::vector<nlohmann::json> rows = ExportRows(workdir);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1]["reason"], "http_5xx");

  CommandResult retry = RunSluice({"retry", "--workdir", workdir});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_NE(retry.err.find("2 failed items"), std::string::npos) << retry.err;
  CommandResult wrong = RunSluice({"retry", "--workdir", workdir, "--group", "nope"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("no such stage group"), std::string::npos) << wrong.err;

  CommandResult again = Run("faces-split.yaml", input, workdir, batches);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  rows = ExportRows(workdir);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["status"], "ok");
  EXPECT_EQ(rows[1]["status"], "ok") << rows[1].dump();
  EXPECT_GE(rows[1]["faces"].get<int>(), 1);
  EXPECT_EQ(rows[2]["reason"], "http_4xx");
  CommandResult shown = RunSluice({"status", "--workdir", workdir, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const nlohmann::json status = nlohmann::json::parse(shown.out);
  ASSERT_EQ(status["groups"].size(), 2u);
  for (const nlohmann::json& group : status["groups"]) {
    EXPECT_EQ(group["results"]["ok"], 2) << group.dump();
    EXPECT_EQ(group["results"]["failed"], 1) << group.dump();
  }
  std::size_t left = 0;
  for (const auto& entry : fs::recursive_directory_iterator(workdir + "/blobs")) {
    left += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(left, 0u);
}

TEST_F(PipelinesTest, DefaultRuleRefusesTheLoopbackFixture) {
  const std::string workdir = dir_.File("work");
  CommandResult result =
      RunSluice({"run", SourceDir() + "/pipelines/download.yaml", "--input",
                 WriteInput({{"/Tom_Cruise_avp_2014_4.jpg", ""}}), "--workdir", workdir,
                 "--status-interval", "0"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::vector<nlohmann::json> rows = ExportRows(workdir);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["reason"], "forbidden");
  EXPECT_EQ(server_->requests_seen(), 0u);
}

TEST_F(PipelinesTest, Img2datasetAndDownloadPipelinesWriteTheirOutputs) {
  const std::vector<Case> cases = {{"/Tom_Cruise_avp_2014_4.jpg", ""},
                                   {"/bald_guys.jpg", ""},
                                   {"/Tom_Cruise_avp_2014_4.jpg?status=404", "http_4xx"}};
  const std::string input = WriteInput(cases);

  CommandResult dataset = Run("img2dataset.yaml", input, dir_.File("ds"));
  ASSERT_EQ(dataset.exit_code, 0) << dataset.err;
  std::vector<nlohmann::json> rows = ExportRows(dir_.File("ds"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["status"], "ok");
  EXPECT_EQ(rows[2]["reason"], "http_4xx");
  // img2dataset's files and fields: shard 00000 (batch 1), keys of 5 + 4 digits
  // (10,000 per shard), 256 x 256 in border mode.
  const std::string shard = dir_.File("ds") + "/output/00000";
  EXPECT_TRUE(fs::exists(shard + "/000000000.jpg"));
  EXPECT_TRUE(fs::exists(shard + "/000000001.jpg"));
  EXPECT_FALSE(fs::exists(shard + "/000000002.jpg"));  // the 404
  std::ifstream item_file(shard + "/000000000.json");
  const nlohmann::json item = nlohmann::json::parse(item_file);
  EXPECT_EQ(item["key"], "000000000");
  EXPECT_EQ(item["status"], "success");
  EXPECT_EQ(item["width"], 256);
  EXPECT_EQ(item["height"], 256);
  const cv::Mat photo = cv::imread(std::string(kPhotos) + "/Tom_Cruise_avp_2014_4.jpg");
  EXPECT_EQ(item["original_width"], photo.cols);
  EXPECT_EQ(item["original_height"], photo.rows);
  EXPECT_EQ(item["sha256"].get<std::string>().size(), 64u);
  // extract_exif: the photo has no EXIF, which img2dataset writes as the text "{}".
  EXPECT_EQ(item["exif"], "{}");
  std::ifstream metadata(dir_.File("ds") + "/output/00000.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(metadata, line);) {
    lines.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2]["key"], "000000002");
  EXPECT_EQ(lines[2]["status"], "failed_to_download");
  EXPECT_TRUE(lines[2]["exif"].is_null());
  std::ifstream stats_file(dir_.File("ds") + "/output/00000_stats.json");
  const nlohmann::json stats = nlohmann::json::parse(stats_file);
  EXPECT_EQ(stats["count"], 3);
  EXPECT_EQ(stats["successes"], 2);
  EXPECT_EQ(stats["failed_to_download"], 1);

  CommandResult download = Run("download.yaml", input, dir_.File("dl"));
  ASSERT_EQ(download.exit_code, 0) << download.err;
  rows = ExportRows(dir_.File("dl"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["sha256"].get<std::string>().size(), 64u);
  // The bytes are saved as served.
  std::multiset<std::uintmax_t> sizes;
  for (const auto& entry :
       fs::recursive_directory_iterator(dir_.File("dl") + "/output/images")) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() && ext != ".json" && ext != ".txt") {
      sizes.insert(fs::file_size(entry.path()));
    }
  }
  const std::multiset<std::uintmax_t> served = {
      fs::file_size(fs::path(kPhotos) / "Tom_Cruise_avp_2014_4.jpg"),
      fs::file_size(fs::path(kPhotos) / "bald_guys.jpg")};
  EXPECT_EQ(sizes, served);
}

// `sluice report` on a store two runs wrote (a restart): one HTML file with no
// external asset, its charts drawn from the time series of both runs, the failing
// host and the failure reasons named; Chromium lays out every chart. `sluice status`
// tells the same rates and stage times.
TEST_F(PipelinesTest, ReportAndStatusShowTheRunAcrossRestarts) {
  std::vector<Case> first;
  std::vector<Case> second;
  for (int i = 0; i < 12; ++i) {
    const std::string n = "n=" + std::to_string(i);
    first.push_back({"/Tom_Cruise_avp_2014_4.jpg?" + n, ""});
    second.push_back({"/bald_guys.jpg?" + n, ""});
  }
  first.push_back({"/Tom_Cruise_avp_2014_4.jpg?status=404", "http_4xx"});
  second.push_back({"/bald_guys.jpg?status=503", "http_5xx"});
  const std::string workdir = dir_.File("work");
  const std::string first_input = WriteInput(first);
  CommandResult one = Run("faces-fast.yaml", first_input, workdir);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  fs::rename(first_input, dir_.File("first.tsv"));
  CommandResult two = Run("faces-fast.yaml", WriteInput(second), workdir);
  ASSERT_EQ(two.exit_code, 0) << two.err;

  const std::string out = dir_.File("report.html");
  CommandResult report = RunSluice({"report", "--workdir", workdir, "-o", out});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.out.find("from 2 worker runs, 26 results, 1 hosts"), std::string::npos)
      << report.out;
  const std::string html = ReadFile(out);
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  for (const char* external : {"src=", "href=", "@import", "url("}) {
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  }
  EXPECT_NE(html.find("24 ok, 2 failed"), std::string::npos);
  EXPECT_NE(html.find("2 worker runs"), std::string::npos);
  const std::vector<std::string> charts = {
      "throughput", "workers",  "stages",         "latency-p99",   "failures",
      "failure-reasons", "bytes", "download-sizes", "image-sizes"};
  for (const std::string& chart : charts) {
    std::smatch points;
    ASSERT_TRUE(std::regex_search(
        html, points, std::regex("<svg id=\"" + chart + "\"[^>]* data-points=\"([0-9]+)\"")))
        << chart;
    EXPECT_GE(std::stoi(points[1].str()), 1) << chart;
  }
  // Both failures by reason, over time and in total; the host that failed them.
  for (const char* reason : {"http_4xx", "http_5xx"}) {
    EXPECT_NE(html.find(std::string("class=\"legend\">") + reason), std::string::npos)
        << reason;
  }
  std::smatch host_row;
  ASSERT_TRUE(std::regex_search(html, host_row,
                                std::regex(R"re(<table id="failing-hosts">[\s\S]*?<td>127\.0\.0\.1:[0-9]+</td><td>26</td><td>2</td>)re")))
      << html.substr(html.find("failing-hosts"), 800);
  // Each stage's time per record, with its records.
  for (const char* stage : {"fetch", "decode", "resize", "faces"}) {
    EXPECT_NE(html.find(std::string("<tr><td>") + stage + "</td><td>main</td>"),
              std::string::npos)
        << stage;
  }

  // `sluice status` tells the same run: its rate over both runs, each stage's times.
  CommandResult status = RunSluice({"status", "--workdir", workdir});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("(2 worker runs)"), std::string::npos) << status.out;
  EXPECT_TRUE(std::regex_search(status.out, std::regex("stage +fetch +26 records, ")))
      << status.out;
  EXPECT_NE(status.out.find("fetched   "), std::string::npos) << status.out;
  CommandResult status_json = RunSluice({"status", "--workdir", workdir, "--json"});
  ASSERT_EQ(status_json.exit_code, 0) << status_json.err;
  const nlohmann::json picture = nlohmann::json::parse(status_json.out);
  EXPECT_EQ(picture["run"]["worker_runs"], 2);
  EXPECT_EQ(picture["run"]["eta_seconds"], 0.0);  // nothing left
  EXPECT_GT(picture["run"]["bytes_fetched"].get<double>(), 0);
  ASSERT_EQ(picture["stages"].size(), 5u);
  EXPECT_EQ(picture["stages"][0]["name"], "fetch");
  EXPECT_EQ(picture["stages"][0]["records"], 26);
  EXPECT_EQ(picture["stages"][1]["name"], "decode");
  EXPECT_EQ(picture["stages"][1]["records"], 24);
  EXPECT_GT(picture["stages"][1]["p99_seconds"].get<double>(), 0);

  HeadlessBrowser browser(dir_);
  std::string dom;
  ASSERT_TRUE(browser.DumpDom("file://" + out, &dom, 1000));
  EXPECT_NE(dom.find("data-charts-drawn=\"" + std::to_string(charts.size()) + "\""),
            std::string::npos)
      << dom.substr(0, 400);
  EXPECT_TRUE(browser.Screenshot("file://" + out, "report.png", "1000,2600", 1000));

  // A group the pipeline does not have, and a file that cannot be written, are
  // errors that say so.
  CommandResult wrong = RunSluice({"report", "--workdir", workdir, "-o", out, "--group", "x"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("--group x: no such stage group (main)"), std::string::npos)
      << wrong.err;
  CommandResult unwritable =
      RunSluice({"report", "--workdir", workdir, "-o", dir_.File("no/such/dir/r.html")});
  EXPECT_EQ(unwritable.exit_code, 1);
  EXPECT_NE(unwritable.err.find("no/such/dir/r.html"), std::string::npos) << unwritable.err;
}

// pipelines/examples/filter.yaml: what is not worth decoding (not an image type, too
// few bytes) and what is too small after decode ends "filtered" with the predicate
// that dropped it, apart from failures in export, metadata, status and retry.
TEST_F(PipelinesTest, FilterExampleDropsItemsAsFilteredNotFailed) {
  cv::Mat noise(150, 200, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(255));
  ASSERT_TRUE(cv::imwrite(dir_.File("images") + "/small.jpg", noise));
  ASSERT_GT(fs::file_size(dir_.File("images") + "/small.jpg"), 10000u);
  const std::vector<Case> cases = {
      {"/Tom_Cruise_avp_2014_4.jpg", ""},
      {"/small.jpg", "filtered"},
      {"/gen/html", "not_image"},  // fetch refuses text/html: a failure
      {"/gen/not_image", "filtered"},  // served as image/jpeg, but a few bytes
      {"/bald_guys.jpg?status=404", "http_4xx"},
  };
  const std::string workdir = dir_.File("work");
  std::vector<std::string> args = {"run",       SourceDir() + "/pipelines/examples/filter.yaml",
                                   "--input",   WriteInput(cases),
                                   "--workdir", workdir};
  for (const std::string& arg : QuickFetch()) args.push_back(arg);
  CommandResult run = RunSluice(args, seconds(300));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("1 ok, 2 failed (http_4xx 1, not_image 1), 2 filtered"),
            std::string::npos)
      << run.err;

  const std::vector<nlohmann::json> rows = ExportRows(workdir);
  ASSERT_EQ(rows.size(), cases.size());
  const char* statuses[] = {"ok", "filtered", "failed", "filtered", "failed"};
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].path);
    EXPECT_EQ(rows[i]["status"], std::string(statuses[i]));
    EXPECT_EQ(rows[i]["reason"], cases[i].reason);
  }
  EXPECT_EQ(rows[1]["error"], "filtered by stages[3] (big_enough): keep width >= 256 && height >= 256");
  EXPECT_EQ(rows[1]["width"], 200);
  EXPECT_NE(rows[3]["error"].get<std::string>().find("stages[1] (worth_decoding)"),
            std::string::npos);
  EXPECT_FALSE(rows[3].contains("format")) << "dropped before decode";
  // Only the kept image is saved; the metadata says "filtered" too.
  std::size_t saved = 0;
  std::size_t filtered_lines = 0;
  for (const auto& entry : fs::recursive_directory_iterator(workdir + "/output")) {
    if (entry.path().extension() == ".jpg") ++saved;
    if (entry.path().extension() == ".jsonl") {
      std::ifstream file(entry.path());
      for (std::string line; std::getline(file, line);) {
        filtered_lines += nlohmann::json::parse(line)["status"] == "filtered" ? 1 : 0;
      }
    }
  }
  EXPECT_EQ(saved, 1u);
  EXPECT_EQ(filtered_lines, 2u);

  CommandResult status = RunSluice({"status", "--workdir", workdir, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const nlohmann::json picture = nlohmann::json::parse(status.out);
  EXPECT_EQ(picture["results"]["filtered"], 2);
  EXPECT_EQ(picture["results"]["failed"], 2);
  EXPECT_EQ(picture["failures"].size(), 2u);
  // A retry of the failures leaves the filtered items alone.
  CommandResult retry = RunSluice({"retry", "--workdir", workdir});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_EQ(nlohmann::json::parse(RunSluice({"status", "--workdir", workdir, "--json"}).out)
                ["results"]["filtered"],
            2);
  CommandResult again = RunSluice({"retry", "--workdir", workdir, "--reason", "filtered"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(RunSluice({"status", "--workdir", workdir, "--json"}).out)
                ["results"]["filtered"],
            0);
}

// The copy-and-join example: one decode, a 64 px thumbnail saved, the faces found at
// 640 px put back into the same item.
TEST_F(PipelinesTest, FacesThumbnailsExampleSavesThumbnailsWithTheFacesFoundInFull) {
  const std::vector<Case> cases = {
      {"/Tom_Cruise_avp_2014_4.jpg", ""},
      {"/bald_guys.jpg", ""},
      {"/bald_guys.jpg?status=404", "http_4xx"},
  };
  const std::string workdir = dir_.File("work");
  CommandResult run = Run("examples/faces-thumbnails.yaml", WriteInput(cases), workdir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<nlohmann::json> rows = ExportRows(workdir);
  ASSERT_EQ(rows.size(), cases.size());
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(rows[i].dump());
    EXPECT_EQ(rows[i]["status"], "ok");
    ASSERT_GE(rows[i]["faces"].get<int>(), 1) << "the detection branch's fields";
    // In the original image's pixels, not the thumbnail's.
    ExpectBoxesInTheImage(rows[i]);
    EXPECT_GT(rows[i]["width"].get<int>(), 64);
    EXPECT_LE(std::max(rows[i]["resized_width"].get<int>(),
                       rows[i]["resized_height"].get<int>()),
              64)
        << "the thumbnail branch's record is the item's";
  }
  EXPECT_EQ(rows[2]["reason"], "http_4xx");
  // The shard holds the thumbnails, 64 px at most, with the faces in their JSON.
  std::size_t images = 0;
  for (const auto& entry : fs::directory_iterator(workdir + "/output/shards")) {
    Status read = ReadTar(entry.path().string(), [&](std::string name, std::string data) {
      if (name.ends_with(".jpg")) {
        const cv::Mat image = cv::imdecode(
            std::vector<unsigned char>(data.begin(), data.end()), cv::IMREAD_COLOR);
        ASSERT_FALSE(image.empty()) << name;
        EXPECT_LE(std::max(image.cols, image.rows), 64) << name;
        ++images;
      } else if (name.ends_with(".json")) {
        EXPECT_GE(nlohmann::json::parse(data)["faces"].get<int>(), 1) << name;
      }
    });
    EXPECT_TRUE(read.ok()) << read.ToString();
  }
  EXPECT_EQ(images, 2u);
  // The per-host statistics over every item, the failed one included.
  const nlohmann::json per_host = nlohmann::json::parse(
      testing::ReadWholeFile(workdir + "/output/reduce/per_host.json"));
  EXPECT_EQ(per_host["complete"], true) << per_host.dump();
  EXPECT_EQ(per_host["items"], 3);
  ASSERT_EQ(per_host["groups"].size(), 1u) << per_host.dump();
  const nlohmann::json& host = per_host["groups"][0];
  EXPECT_EQ(host["key"], "127.0.0.1");
  EXPECT_EQ(host["ok"], 2);
  EXPECT_NEAR(host["success_rate"].get<double>(), 2.0 / 3.0, 1e-9);
  EXPECT_EQ(host["faces"], rows[0]["faces"].get<int>() + rows[1]["faces"].get<int>());
  EXPECT_EQ(host["images_by_faces"]["counts"].size(), 6u);
  // The graph as `validate --graph` prints it.
  CommandResult graph = RunSluice(
      {"validate", SourceDir() + "/pipelines/examples/faces-thumbnails.yaml", "--graph"});
  ASSERT_EQ(graph.exit_code, 0) << graph.err;
  EXPECT_NE(graph.out.find("  together (join) <- thumb_jpeg, faces -> end"),
            std::string::npos)
      << graph.out;
  CommandResult dot = RunSluice(
      {"validate", SourceDir() + "/pipelines/examples/faces-thumbnails.yaml", "--dot"});
  ASSERT_EQ(dot.exit_code, 0) << dot.err;
  EXPECT_NE(dot.out.find("\"fork\" -> \"shrink\" [label=\"thumbnail\"];"),
            std::string::npos)
      << dot.out;
}

// The reduce example: per-host and per-type statistics of a download, over every
// item, and counted once however often a batch is redone (a retry redoes the
// failed items of a batch alone).
TEST_F(PipelinesTest, ReduceExampleCountsEveryItemOnceAcrossARetry) {
  const std::vector<Case> cases = {
      {"/Tom_Cruise_avp_2014_4.jpg", ""},
      // Fails its first 2 tries (QuickFetch: 1 retry), answers the third.
      {"/bald_guys.jpg?status=503&status_times=2&n=reduce", "http_5xx"},
      {"/bald_guys.jpg", ""},
      {"/bald_guys.jpg?status=404", "http_4xx"},
      {"/gen/html", "not_image"},
  };
  const std::string workdir = dir_.File("work");
  const std::string input = WriteInput(cases);
  const std::vector<std::string> batches = {"--set", "batch_size=2"};
  auto per_host = [&] {
    return nlohmann::json::parse(
        testing::ReadWholeFile(workdir + "/output/reduce/per_host.json"));
  };
  CommandResult first = Run("examples/reduce.yaml", input, workdir, batches);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.err.find("reduce per_host: " + workdir + "/output/reduce/per_host.json"),
            std::string::npos)
      << first.err;
  nlohmann::json hosts = per_host();
  EXPECT_EQ(hosts["complete"], true);
  EXPECT_EQ(hosts["batches"], 3);
  EXPECT_EQ(hosts["items"], 5);
  ASSERT_EQ(hosts["groups"].size(), 1u) << hosts.dump();
  EXPECT_EQ(hosts["groups"][0]["key"], "127.0.0.1");
  EXPECT_EQ(hosts["groups"][0]["downloaded"], 2);
  EXPECT_NEAR(hosts["groups"][0]["success_rate"].get<double>(), 0.4, 1e-9);
  EXPECT_EQ(hosts["groups"][0]["timeouts"], 0);
  const std::int64_t one_of_each =
      static_cast<std::int64_t>(fs::file_size(dir_.File("images") + "/bald_guys.jpg") +
                                fs::file_size(dir_.File("images") +
                                              "/Tom_Cruise_avp_2014_4.jpg"));
  EXPECT_EQ(hosts["groups"][0]["bytes"], one_of_each);
  const nlohmann::json types = nlohmann::json::parse(
      testing::ReadWholeFile(workdir + "/output/reduce/per_type.json"));
  bool jpeg = false;
  for (const nlohmann::json& group : types["groups"]) {
    if (group["key"] == "image/jpeg") {
      jpeg = true;
      EXPECT_EQ(group["downloaded"], 2) << types.dump();
    }
  }
  EXPECT_TRUE(jpeg) << types.dump();

  CommandResult retry = RunSluice({"retry", "--workdir", workdir});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  CommandResult again = Run("examples/reduce.yaml", input, workdir, batches);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  hosts = per_host();
  EXPECT_EQ(hosts["complete"], true);
  EXPECT_EQ(hosts["items"], 5) << "every item once: " << hosts.dump();
  EXPECT_EQ(hosts["groups"][0]["downloaded"], 3) << hosts.dump();
  EXPECT_EQ(hosts["groups"][0]["bytes"],
            one_of_each + static_cast<std::int64_t>(
                              fs::file_size(dir_.File("images") + "/bald_guys.jpg")));

  CommandResult graph = RunSluice(
      {"validate", SourceDir() + "/pipelines/examples/reduce.yaml", "--graph"});
  ASSERT_EQ(graph.exit_code, 0) << graph.err;
  EXPECT_NE(graph.out.find("  per_host (reduce) <- end"), std::string::npos) << graph.out;
}

// The exec example: a Python script (standard library only) describes each
// downloaded item; the bytes reach it as a temporary file.
TEST_F(PipelinesTest, ExecExampleRunsEachItemThroughThePythonScript) {
  const std::vector<nlohmann::json> rows =
      RunExecExample("examples/exec.yaml", "info", "url_info.py");
  ASSERT_EQ(rows.size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(rows[i].dump());
    EXPECT_EQ(rows[i]["status"], "ok");
    EXPECT_EQ(rows[i]["host"], "127.0.0.1");
    EXPECT_EQ(rows[i]["kind"], "jpeg");
    EXPECT_EQ(rows[i]["caption_words"], 2) << "the input column \"photo N\"";
  }
  EXPECT_EQ(rows[0]["body_bytes"].get<std::uintmax_t>(),
            fs::file_size(fs::path(kPhotos) / "Tom_Cruise_avp_2014_4.jpg"));
  EXPECT_EQ(rows[2]["reason"], "http_4xx");
}

// The face detector plugged in through exec: OpenCV's Haar cascade in Python.
TEST_F(PipelinesTest, ExecOpenCvFacesExampleFindsFacesInPython) {
  if (std::system("/usr/bin/python3 -c 'import cv2' 2>/dev/null") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import cv2 (Debian package python3-opencv)";
  }
  const std::vector<nlohmann::json> rows =
      RunExecExample("examples/exec-opencv-faces.yaml", "faces", "opencv_faces.py");
  ASSERT_EQ(rows.size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(rows[i].dump());
    EXPECT_EQ(rows[i]["status"], "ok");
    ASSERT_GE(rows[i]["faces"].get<int>(), 1);
    ExpectBoxesInTheImage(rows[i]);
  }
  EXPECT_EQ(rows[2]["reason"], "http_4xx");
}

// The split-and-merge example: PNGs stay PNG, the rest become JPEG.
TEST_F(PipelinesTest, SplitExampleEncodesPngsAsPngAndTheRestAsJpeg) {
  cv::Mat drawing(120, 160, CV_8UC3, cv::Scalar(255, 255, 255));
  drawing(cv::Rect(40, 20, 80, 80)).setTo(cv::Scalar(0, 0, 255));
  ASSERT_TRUE(cv::imwrite(dir_.File("images") + "/drawing.png", drawing));
  const std::vector<Case> cases = {
      {"/Tom_Cruise_avp_2014_4.jpg", ""},
      {"/drawing.png", ""},
      {"/drawing.png?status=404", "http_4xx"},
  };
  const std::string workdir = dir_.File("work");
  CommandResult run = Run("examples/split.yaml", WriteInput(cases), workdir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<nlohmann::json> rows = ExportRows(workdir);
  ASSERT_EQ(rows.size(), cases.size());
  EXPECT_EQ(rows[0]["ext"], "jpg");
  EXPECT_EQ(rows[1]["ext"], "png");
  EXPECT_EQ(rows[2]["reason"], "http_4xx");
  std::map<std::string, int> saved;
  for (const auto& entry : fs::recursive_directory_iterator(workdir + "/output/images")) {
    if (entry.is_regular_file()) ++saved[entry.path().extension().string()];
  }
  EXPECT_EQ(saved[".jpg"], 1);
  EXPECT_EQ(saved[".png"], 1);
}

// The shard example: each record goes through one of the two fetch stages; by host,
// all of a host's URLs through the same one.
TEST_F(PipelinesTest, ShardExampleSendsEachHostThroughOneFetchStage) {
  std::vector<Case> cases;
  for (int i = 0; i < 12; ++i) {
    cases.push_back({"/Tom_Cruise_avp_2014_4.jpg?n=" + std::to_string(i), ""});
  }
  auto stage_records = [&](const std::string& workdir) {
    CommandResult status = RunSluice({"status", "--workdir", workdir, "--json"});
    EXPECT_EQ(status.exit_code, 0) << status.err;
    std::map<std::string, int> records;
    const nlohmann::json picture = nlohmann::json::parse(status.out);
    for (const nlohmann::json& stage : picture["stages"]) {
      records[stage["name"].get<std::string>()] = stage["records"].get<int>();
    }
    return records;
  };
  auto run = [&](const std::string& workdir, const std::string& key) {
    std::vector<std::string> args = {
        "run",     SourceDir() + "/pipelines/examples/shard.yaml",
        "--input", WriteInput(cases),
        "--workdir", workdir,
        "--set",   "allow_private_networks=true",
        "--set",   "stages.by_host.key=" + key,
        "--status-interval", "0"};
    CommandResult result = RunSluice(args, seconds(300));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.err.find("12 ok"), std::string::npos) << result.err;
  };
  run(dir_.File("by_host"), "host");
  std::map<std::string, int> by_host = stage_records(dir_.File("by_host"));
  EXPECT_EQ(by_host["fetch_0"] + by_host["fetch_1"], 12);
  EXPECT_TRUE(by_host["fetch_0"] == 0 || by_host["fetch_1"] == 0)
      << "one host, one fetch stage: " << by_host["fetch_0"] << " and "
      << by_host["fetch_1"];
  EXPECT_EQ(by_host["decode"], 12);

  run(dir_.File("by_url"), "url");
  std::map<std::string, int> by_url = stage_records(dir_.File("by_url"));
  EXPECT_EQ(by_url["fetch_0"] + by_url["fetch_1"], 12);
  EXPECT_GT(by_url["fetch_0"], 0);
  EXPECT_GT(by_url["fetch_1"], 0);
}

}  // namespace
}  // namespace sluice::testing
