// `umbra report` and `umbra trace export` as a user runs them: output, files
// written, warnings and exit codes for missing, foreign and damaged traces.
#include <stdio.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>
#include <variant>

#include <gtest/gtest.h>

#include "recorder/trace_file.h"
#include "tests/recorder/json_value.h"

#include "tests/recorder/test_util.h"

namespace umbra::recorder {
namespace {

using namespace testing;

struct Ran {
  int rc = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

Ran Umbra(const std::string& args, const TempDir& dir) {
  Ran r;
  const std::string err_path = dir.File("stderr.txt");
  const std::string cmd = std::string(UMBRA_CLI) + " " + args + " 2>" + err_path;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = ReadFile(err_path);
  return r;
}

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// Two devices; nic0 crashes at 1 ms and recovers (gap 1 ms − 0.9 ms … first
// completion after the resume), disk0 keeps completing.
Trace SampleTrace() {
  TraceBuilder b;
  DeviceId nic = b.Device("nic0", "net");
  DeviceId disk = b.Device("disk0", "block");
  for (int64_t t = 100 * kUs; t <= 900 * kUs; t += 100 * kUs) b.Ok(t, nic).Ok(t, disk, RequestOp::kWrite);
  FullRecovery(b, nic, 1 * kMs);
  b.At(1 * kMs + 200 * kUs, nic, RequestsDisposed{Disposition::kDropped, 12});
  for (int64_t t = 1300 * kUs; t <= 2000 * kUs; t += 100 * kUs) b.Ok(t, nic).Ok(t, disk, RequestOp::kWrite);
  b.trace().header.host_name = "testhost";
  b.trace().complete = true;
  return b.trace();
}

class ReportCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("run.trace");
    ASSERT_TRUE(WriteTrace(SampleTrace(), path_).has_value());
    bytes_ = ReadFile(path_);
  }
  TempDir dir_;
  std::string path_;
  std::string bytes_;
};

TEST_F(ReportCliTest, ReportPrintsTheFaultAndItsGap) {
  Ran r = Umbra("report " + path_, dir_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "faults 1")) << r.out;
  EXPECT_TRUE(Has(r.out, "segfault")) << r.out;
  EXPECT_TRUE(Has(r.out, "nic0")) << r.out;
  EXPECT_TRUE(Has(r.out, "recovered")) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(ReportCliTest, JsonReportHasTheGapOfTheFault) {
  Ran r = Umbra("report --json " + path_, dir_);
  ASSERT_EQ(r.rc, 0) << r.err;
  Json v;
  ASSERT_NO_THROW(v = Json::Parse(r.out)) << r.out;
  const Json& faults = v["faults"];
  ASSERT_EQ(faults.array.size(), 1u);
  // Last ok completion before the fault at 0.9 ms, first after it at 1.3 ms.
  EXPECT_EQ(faults[0]["gap_ns"].number, 400 * kUs);
  EXPECT_EQ(faults[0]["device"].string, "nic0");
  EXPECT_EQ(faults[0]["requests"]["dropped"].number, 12);
}

TEST_F(ReportCliTest, SeveralTracesMergeIntoOneReport) {
  const std::string second = dir_.File("second.trace");
  ASSERT_TRUE(WriteTrace(SampleTrace(), second).has_value());
  Ran r = Umbra("report --json " + path_ + " " + second, dir_);
  ASSERT_EQ(r.rc, 0) << r.err;
  Json v;
  ASSERT_NO_THROW(v = Json::Parse(r.out)) << r.out;
  EXPECT_EQ(v["traces"].number, 2);
  EXPECT_EQ(v["faults"].array.size(), 2u);
  EXPECT_EQ(v["groups"].array.size(), 1u) << "same class and fault type: one group";
  EXPECT_EQ(v["groups"][0]["faults"].number, 2);
}

TEST_F(ReportCliTest, HtmlReportIsWrittenWithItsPlots) {
  const std::string html = dir_.File("report.html");
  Ran r = Umbra("report " + path_ + " --html " + html, dir_);
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string page = ReadFile(html);
  EXPECT_TRUE(Has(page, "class=\"throughput\"")) << "a throughput plot";
  EXPECT_TRUE(Has(page, "class=\"crash\"")) << "the crash is marked";
  EXPECT_TRUE(Has(page, "class=\"gap-histogram\""));
}

TEST_F(ReportCliTest, MissingTraceIsExit66) {
  Ran r = Umbra("report " + dir_.File("nosuch.trace"), dir_);
  EXPECT_EQ(r.rc, 66);
  EXPECT_TRUE(Has(r.err, "no trace file")) << r.err;
  EXPECT_TRUE(Has(r.err, "nosuch.trace")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(ReportCliTest, FileThatIsNotATraceIsExit65) {
  const std::string junk = dir_.File("junk.trace");
  WriteFile(junk, "this is not a trace\n");
  Ran r = Umbra("report " + junk, dir_);
  EXPECT_EQ(r.rc, 65);
  EXPECT_TRUE(Has(r.err, junk + " is not an umbra trace")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(ReportCliTest, TruncatedTraceReportsWhatItReadWarnsWithTheOffsetAndIsExit65) {
  // Cut in the middle of a record after the fault's recovery: the fault is
  // still in what can be read.
  const size_t cut = bytes_.size() - 40;
  WriteFile(path_, bytes_.substr(0, cut));
  Ran r = Umbra("report --json " + path_, dir_);
  EXPECT_EQ(r.rc, 65);
  EXPECT_TRUE(Has(r.err, "warning:")) << r.err;
  EXPECT_TRUE(Has(r.err, "at byte ")) << r.err;
  Json v;
  ASSERT_NO_THROW(v = Json::Parse(r.out)) << r.out;
  EXPECT_EQ(v["faults"].array.size(), 1u) << "the fault before the damage is reported";
  ASSERT_GE(v["warnings"].array.size(), 1u);
  EXPECT_TRUE(Has(v["warnings"][0].string, "truncated")) << v["warnings"][0].string;
}

TEST_F(ReportCliTest, TraceWhoseWriterDidNotCloseOnlyWarns) {
  // Drop the end record (the last frame): a recorder that was killed.
  size_t end_offset = bytes_.size();
  // The end record is a few bytes; find the longest prefix that reads as incomplete.
  for (size_t cut = bytes_.size() - 1; cut > 0; --cut) {
    auto p = ParseTrace(std::string_view(bytes_).substr(0, cut), "x");
    if (p && p->damage && p->damage->kind == DamageKind::kIncomplete) {
      end_offset = cut;
      break;
    }
  }
  ASSERT_LT(end_offset, bytes_.size());
  WriteFile(path_, bytes_.substr(0, end_offset));
  Ran r = Umbra("report " + path_, dir_);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(Has(r.err, "incomplete trace")) << r.err;
  EXPECT_TRUE(Has(r.out, "faults 1")) << r.out;
}

TEST_F(ReportCliTest, ChromeExportIsTraceEventJson) {
  const std::string out = dir_.File("trace.json");
  Ran r = Umbra("trace export " + path_ + " --format chrome -o " + out, dir_);
  ASSERT_EQ(r.rc, 0) << r.err;
  Json v;
  ASSERT_NO_THROW(v = Json::Parse(ReadFile(out)));
  const Json& events = v["traceEvents"];
  ASSERT_GT(events.array.size(), 10u);
  bool slice = false, instant = false, counter = false;
  for (size_t i = 0; i < events.array.size(); ++i) {
    const std::string ph = events[i]["ph"].string;
    slice |= ph == "X";
    instant |= ph == "i";
    counter |= ph == "C";
  }
  EXPECT_TRUE(slice && instant && counter);
}

TEST_F(ReportCliTest, ChromeExportOfAMissingTraceIsExit66AndWritesNothing) {
  const std::string out = dir_.File("trace.json");
  Ran r = Umbra("trace export " + dir_.File("nosuch.trace") + " --format chrome -o " + out, dir_);
  EXPECT_EQ(r.rc, 66);
  EXPECT_TRUE(Has(r.err, "no trace file")) << r.err;
  EXPECT_NE(access(out.c_str(), F_OK), 0);
}

TEST_F(ReportCliTest, ChromeExportOfACorruptTraceExportsWhatItReadAndIsExit65) {
  std::string bad = bytes_;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 12; ++i) bad[i] = '\xff';
  WriteFile(path_, bad);
  const std::string out = dir_.File("trace.json");
  Ran r = Umbra("trace export " + path_ + " --format chrome -o " + out, dir_);
  EXPECT_EQ(r.rc, 65);
  EXPECT_TRUE(Has(r.err, "warning: corrupt trace")) << r.err;
  EXPECT_TRUE(Has(r.err, "at byte ")) << r.err;
  Json v;
  ASSERT_NO_THROW(v = Json::Parse(ReadFile(out))) << "what was read is exported";
  EXPECT_GT(v["traceEvents"].array.size(), 0u);
}

TEST_F(ReportCliTest, ExportRefusesAnUnknownFormat) {
  Ran r = Umbra("trace export " + path_ + " --format svg -o " + dir_.File("x"), dir_);
  EXPECT_EQ(r.rc, 64) << r.err;
}

TEST_F(ReportCliTest, CampaignTraceFromWorkerProcessesIsOneReportableTrace) {
  const std::string trace = dir_.File("campaign.trace");
  Ran c = Umbra(
      "campaign --workload echo-stream --fault sigkill --runs 2 --seed 5 --units 30 --jobs 2 --trace " + trace, dir_);
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_TRUE(Has(c.err, "trace " + trace + ": ")) << c.err;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_FALSE(Has(e.path().filename().string(), ".part.")) << "parts are removed: " << e.path();
  }
  auto t = ReadTrace(trace);
  ASSERT_TRUE(t.has_value()) << t.error().ToString();
  EXPECT_TRUE(t->complete);
  int begins = 0, ends = 0;
  for (const Event& e : t->events) {
    if (const auto* m = std::get_if<RunMarker>(&e.body)) (m->kind == RunMarkerKind::kBegin ? begins : ends)++;
  }
  EXPECT_EQ(begins, 2);
  EXPECT_EQ(ends, 2);

  Ran r = Umbra("report --json " + trace, dir_);
  ASSERT_EQ(r.rc, 0) << r.err;
  Json v;
  ASSERT_NO_THROW(v = Json::Parse(r.out)) << r.out;
  EXPECT_EQ(v["verifications"].array.size(), 2u);
  ASSERT_GE(v["faults"].array.size(), 2u) << "each run killed its driver at least once";
  for (const Json& f : v["faults"].array) {
    EXPECT_EQ(f["fault"].string, "sigkill");
    EXPECT_EQ(f["end"].string, "recovered");
    EXPECT_TRUE(f["device"].string.starts_with("echo0@r")) << f["device"].string;
  }
}

}  // namespace
}  // namespace umbra::recorder
