// `umbra demo` end to end: the README's first command, as CI runs it. The
// demo runs once (it takes a few seconds and real driver processes); every
// test looks at what that run left: its terminal output, its JSON summary,
// its trace, and what `umbra report` makes of the trace.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "recorder/analysis.h"
#include "tests/recorder/json_value.h"

namespace {

using umbra::recorder::testing::Json;

struct CommandRun {
  int status = -1;
  std::string out;
};

CommandRun RunCommand(const std::string& cmd) {
  CommandRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

// One demo run (ctest runs each TEST in a process of its own, so the checks
// of this run share one TEST): its files are kept until the test ends.
class DemoRun {
 public:
  DemoRun() {
    dir_ = std::filesystem::temp_directory_path() / ("umbra-demo-test-" + std::to_string(getpid()));
    // What an earlier run left behind: a disk image full of old blocks. The
    // demo starts from a blank disk anyway.
    std::filesystem::create_directories(dir_);
    {
      std::ofstream old(dir_ + "/disk0.img", std::ios::binary);
      const std::string block(4096, '\xab');
      for (int i = 0; i < 4096; ++i) old << block;
    }
    run_ = RunCommand(std::string(UMBRA_BINARY) + " demo --out " + dir_ + " 2>/dev/null");
  }
  ~DemoRun() { std::filesystem::remove_all(dir_); }
  std::string Trace() const { return dir_ + "/umbra-demo.trace"; }

  std::string dir_;
  CommandRun run_;
};

void EveryFaultRecoversAndEveryApplicationVerifies(const DemoRun& demo) {
  const std::string& dir_ = demo.dir_;
  EXPECT_EQ(demo.run_.status, 0) << demo.run_.out;
  // The JSON summary: every fault recovered, every application verified, the
  // links did what they are for, and the trace and report were written.
  const std::string json = ReadFile(dir_ + "/umbra-demo.json");
  EXPECT_TRUE(Has(json, "\"ok\":true")) << json;
  EXPECT_FALSE(Has(json, "\"verified\":false")) << json;
  for (const char* dev :
       {"\"device\":\"nic0\"", "\"device\":\"disk0\"", "\"device\":\"ttyS0\"", "\"device\":\"snd0\""}) {
    EXPECT_TRUE(Has(json, dev)) << dev;
  }
  for (const char* fault :
       {"\"fault\":\"segfault\"", "\"fault\":\"abort\"", "\"fault\":\"sigkill\"", "\"fault\":\"hang\""}) {
    EXPECT_TRUE(Has(json, fault)) << fault;
  }
  EXPECT_TRUE(Has(json, "\"consumer_held\":true"));
  EXPECT_TRUE(Has(json, "\"optional_consumer_degraded\":true"));
  EXPECT_TRUE(Has(json, "would close a cycle: disk0 -> ttyS0 -> nic0 -> disk0"));
  EXPECT_TRUE(std::filesystem::file_size(demo.Trace()) > 0);
  EXPECT_TRUE(std::filesystem::file_size(dir_ + "/umbra-demo.html") > 0);
}

// The bug: the report showed "-" for the gap and the detection of every
// fault the demo injected. Each one has both now; only the crash loop's last
// fault, which leaves the device failed, has no gap.
void EveryInjectedFaultHasItsDetectionAndGap(const DemoRun& demo) {
  const std::string& dir_ = demo.dir_;
  const Json summary = Json::Parse(ReadFile(dir_ + "/umbra-demo.json"));
  const auto& faults = summary["faults"].array;
  ASSERT_GE(faults.size(), 17u);
  size_t failed = 0;
  size_t injected = 0;
  for (const Json& f : faults) {
    const std::string what = f["device"].string + " " + f["fault"].string + " (" + f["site"].string + ")";
    // A fault the demo did not inject (a driver the loaded machine starved
    // of its heartbeat) has no known start, so no detection time.
    if (f["site"].string.rfind("demo", 0) != 0) continue;
    ++injected;
    EXPECT_EQ(f["detection_ns"].kind, Json::Kind::kNumber) << what;
    if (f["end"].string == "failed") {
      ++failed;
      EXPECT_EQ(f["site"].string, "demo: crash loop") << what;
      continue;
    }
    EXPECT_EQ(f["end"].string, "recovered") << what;
    EXPECT_EQ(f["gap_ns"].kind, Json::Kind::kNumber) << what;
  }
  EXPECT_EQ(failed, 1u);
  EXPECT_GE(injected, 17u);
  for (const char* cls : {"net", "block", "sound", "uart"}) {
    EXPECT_TRUE(Has(ReadFile(dir_ + "/umbra-demo.html"), std::string("<svg class=\"gap-cdf\" data-class=\"") + cls))
        << cls;
  }
}

std::string Cell(const Json& v) {
  return v.kind == Json::Kind::kNumber ? umbra::recorder::FormatDuration(static_cast<int64_t>(v.number)) : "-";
}

// The cells of every row of the HTML table `cls`, header excluded.
std::vector<std::vector<std::string>> HtmlRows(const std::string& html, const std::string& cls) {
  const size_t begin = html.find("<table class=\"" + cls + "\">");
  const std::string table = html.substr(begin, html.find("</table>", begin) - begin);
  std::vector<std::vector<std::string>> rows;
  std::regex row("<tr>(.*?)</tr>"), cell("<td>(.*?)</td>");
  for (auto r = std::sregex_iterator(table.begin(), table.end(), row); r != std::sregex_iterator(); ++r) {
    const std::string text = (*r)[1];
    std::vector<std::string> cells;
    for (auto c = std::sregex_iterator(text.begin(), text.end(), cell); c != std::sregex_iterator(); ++c)
      cells.push_back((*c)[1]);
    if (!cells.empty()) rows.push_back(std::move(cells));
  }
  return rows;
}

// The demo's terminal table, its JSON, `umbra report` (text and JSON) and
// the HTML report show the same figures for every fault and group.
void TableJsonReportAndHtmlAgreeOnEveryFigure(const DemoRun& run) {
  const std::string& dir_ = run.dir_;
  const CommandRun* run_ = &run.run_;
  const Json demo = Json::Parse(ReadFile(dir_ + "/umbra-demo.json"));
  CommandRun json = RunCommand(std::string(UMBRA_BINARY) + " report --json " + run.Trace());
  CommandRun text = RunCommand(std::string(UMBRA_BINARY) + " report " + run.Trace() + " --html " + dir_ + "/r.html");
  ASSERT_EQ(json.status, 0);
  ASSERT_EQ(text.status, 0);
  const Json report = Json::Parse(json.out);
  const auto& faults = report["faults"].array;
  ASSERT_EQ(faults.size(), demo["faults"].array.size());
  const auto html = HtmlRows(ReadFile(dir_ + "/r.html"), "faults");
  ASSERT_EQ(html.size(), faults.size());
  // The demo's table: one line per fault after its header.
  const size_t header = run_->out.rfind("\n", run_->out.find("detected as"));
  ASSERT_NE(header, std::string::npos) << run_->out;
  std::istringstream lines(run_->out.substr(header + 1));
  std::string line;
  std::getline(lines, line);  // the header
  for (size_t i = 0; i < faults.size(); ++i) {
    const Json& r = faults[i];
    const Json& d = demo["faults"][i];
    const std::string what = "fault " + std::to_string(i) + ": " + r["device"].string + " " + r["fault"].string;
    for (const char* key : {"device", "fault", "site", "detected_as", "end"})
      EXPECT_EQ(d[key].string, r[key].string) << what << " " << key;
    for (const char* key : {"detection_ns", "recovery_ns", "gap_ns", "start_ns"}) {
      EXPECT_EQ(Cell(d[key]), Cell(r[key])) << what << " " << key;
      if (r[key].kind == Json::Kind::kNumber) {
        EXPECT_EQ(d[key].number, r[key].number) << what << " " << key;
      }
    }
    for (const char* key : {"queued", "dropped", "replayed"})
      EXPECT_EQ(d["requests"][key].number, r["requests"][key].number) << what << " " << key;
    // The HTML row, cell by cell.
    const std::vector<std::string> want = {r["device"].string,
                                           r["fault"].string,
                                           r["site"].string.empty() ? "-" : r["site"].string,
                                           r["detected_as"].string,
                                           Cell(r["detection_ns"]),
                                           Cell(r["recovery_ns"]),
                                           Cell(r["gap_ns"]),
                                           std::to_string(static_cast<int64_t>(r["requests"]["queued"].number)),
                                           std::to_string(static_cast<int64_t>(r["requests"]["dropped"].number)),
                                           std::to_string(static_cast<int64_t>(r["requests"]["replayed"].number)),
                                           r["end"].string};
    EXPECT_EQ(html[i], want) << what;
    // The demo's terminal row holds the same cells, in order.
    ASSERT_TRUE(std::getline(lines, line)) << what;
    size_t at = 0;
    for (const std::string& cell : want) {
      at = line.find(cell, at);
      ASSERT_NE(at, std::string::npos) << what << ": '" << cell << "' not in\n" << line;
      at += cell.size();
    }
    // `umbra report`'s text: the detection, recovery and gap on the fault's row.
    EXPECT_TRUE(Has(text.out, Cell(r["gap_ns"]))) << what;
  }
  // The groups: the HTML group table and the JSON agree on the medians.
  const auto groups = HtmlRows(ReadFile(dir_ + "/r.html"), "groups");
  ASSERT_EQ(groups.size(), report["groups"].array.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    const Json& g = report["groups"][i];
    EXPECT_EQ(groups[i][0], g["class"].string);
    EXPECT_EQ(groups[i][1], g["fault"].string);
    const Json& gap = g["gap"];
    if (gap["count"].number > 0) {
      EXPECT_EQ(groups[i][5], umbra::recorder::FormatDuration(static_cast<int64_t>(gap["median_ns"].number)));
      EXPECT_EQ(groups[i][7], umbra::recorder::FormatDuration(static_cast<int64_t>(gap["max_ns"].number)));
    }
  }
}

TEST(Demo, OneRunRecoversEveryFaultShowsEveryGapAndItsOutputsAgree) {
  DemoRun demo;
  {
    SCOPED_TRACE("every fault recovers and every application verifies");
    EveryFaultRecoversAndEveryApplicationVerifies(demo);
  }
  {
    SCOPED_TRACE("every injected fault has its detection and gap");
    EveryInjectedFaultHasItsDetectionAndGap(demo);
  }
  {
    SCOPED_TRACE("the table, the JSON, umbra report and the HTML report agree");
    TableJsonReportAndHtmlAgreeOnEveryFigure(demo);
  }
}

TEST(Demo, MinimalDemoCrashesAnEchoDriverEveryWay) {
  CommandRun r = RunCommand(std::string(UMBRA_BINARY) + " demo --minimal 2>/dev/null");
  EXPECT_EQ(r.status, 0) << r.out;
  for (const char* s : {"SIGSEGV", "SIGABRT", "SIGKILL", "SIGBUS", "hang", "missed-heartbeat"}) {
    EXPECT_TRUE(Has(r.out, s)) << s << "\n" << r.out;
  }
}

// `umbra run --trace FILE` records the machine's run for `umbra report`.
TEST(Run, TraceOptionRecordsTheRunForUmbraReport) {
  const std::string trace =
      std::filesystem::temp_directory_path() / ("umbra-run-" + std::to_string(getpid()) + ".trace");
  // A run folder of its own: other tests may run the same example machine now.
  const std::string run_dir = trace + ".run";
  CommandRun run =
      RunCommand(std::string(UMBRA_BINARY) + " run " + UMBRA_EXAMPLES +
                 "/machines/echo-links.textproto --for 0.3 --run-dir " + run_dir + " --trace " + trace + " 2>&1");
  std::filesystem::remove_all(run_dir);
  EXPECT_EQ(run.status, 0) << run.out;
  CommandRun report = RunCommand(std::string(UMBRA_BINARY) + " report --json " + trace);
  EXPECT_EQ(report.status, 0) << report.out;
  const Json v = Json::Parse(report.out);
  EXPECT_EQ(v["traces"].number, 1);
  EXPECT_GT(v["events"].number, 0);
  std::filesystem::remove(trace);
}

TEST(Demo, BadUsageIsExitCode64) {
  CommandRun r = RunCommand(std::string(UMBRA_BINARY) + " demo --no-such-flag 2>&1");
  EXPECT_EQ(r.status, 64) << r.out;
}

}  // namespace
