#include "recorder/export.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "tests/recorder/json_value.h"
#include "tests/recorder/test_util.h"

namespace umbra::recorder {
namespace {

using namespace testing;

// Two devices; nic0 crashes twice, disk0 keeps running.
Trace Timeline() {
  TraceBuilder b;
  DeviceId nic = b.Device("nic0", "net");
  DeviceId disk = b.Device("disk0", "block");
  b.At(0, nic, DriverSpawned{100}).At(1 * kMs, nic, DriverReady{});
  for (int64_t t = 2 * kMs; t < 100 * kMs; t += 100 * kUs) {
    bool down = (t > 30 * kMs && t < 35 * kMs) || (t > 60 * kMs && t < 62 * kMs);
    if (!down) b.Ok(t, nic);
    b.Ok(t + 50 * kUs, disk, RequestOp::kRead);
  }
  FullRecovery(b, nic, 30 * kMs + 10 * kUs, "segfault");
  FullRecovery(b, nic, 60 * kMs + 10 * kUs, "hang");
  b.At(31 * kMs, disk, LinkChanged{LinkEvent::kSupplierDown, nic});
  b.At(31 * kMs, nic, RequestsDisposed{Disposition::kDropped, 3});
  b.At(99 * kMs, kNoDevice, RunMarker{RunMarkerKind::kEnd, "run-1", 5});
  return b.trace();
}

const Json& Field(const Json& v, const std::string& key) { return v[key]; }

bool Has(const Json& v, const std::string& key) { return v.Has(key); }

TEST(ExportChromeTest, EveryEventHasTheRequiredTraceEventFields) {
  std::ostringstream out;
  ASSERT_TRUE(ExportChrome(Timeline(), out));
  Json root = Json::Parse(out.str());
  const auto& events = root["traceEvents"].array;
  ASSERT_GT(events.size(), 0u);

  std::set<std::string> phases_seen, process_names;
  std::multiset<std::string> slices, instants;
  int counters = 0;
  for (const Json& e : events) {
    for (const char* key : {"name", "ph", "pid", "tid"}) ASSERT_TRUE(Has(e, key)) << key;
    const std::string ph = Field(e, "ph").string;
    EXPECT_EQ(Field(e, "name").kind, Json::Kind::kString);
    EXPECT_EQ(Field(e, "pid").kind, Json::Kind::kNumber);
    EXPECT_EQ(Field(e, "tid").kind, Json::Kind::kNumber);
    phases_seen.insert(ph);
    if (ph == "M") {
      if (Field(e, "name").string == "process_name") process_names.insert(Field(Field(e, "args"), "name").string);
      continue;
    }
    ASSERT_TRUE(Has(e, "ts"));
    EXPECT_GE(Field(e, "ts").number, 0);
    if (ph == "X") {
      ASSERT_TRUE(Has(e, "dur"));
      EXPECT_GE(Field(e, "dur").number, 0);
      slices.insert(Field(e, "name").string);
    } else if (ph == "i") {
      EXPECT_TRUE(Has(e, "s"));
      instants.insert(Field(e, "name").string);
    } else if (ph == "C") {
      ++counters;
      EXPECT_TRUE(Has(Field(e, "args"), "ops_per_s"));
    } else {
      ADD_FAILURE() << "unexpected ph " << ph;
    }
  }
  EXPECT_EQ(phases_seen, (std::set<std::string>{"M", "X", "i", "C"}));
  EXPECT_TRUE(process_names.contains("nic0 (net)"));
  EXPECT_TRUE(process_names.contains("disk0 (block)"));
  EXPECT_EQ(slices.count("restart"), 2u);
  EXPECT_EQ(slices.count("recovery: segfault"), 1u);
  EXPECT_EQ(slices.count("gap"), 2u);
  EXPECT_EQ(instants.count("fault: segfault"), 1u);
  EXPECT_EQ(instants.count("fault: hang"), 1u);
  EXPECT_EQ(instants.count("detected: signal"), 2u);
  EXPECT_EQ(instants.count("supplier-down"), 1u);
  EXPECT_GT(counters, 10);
}

TEST(ExportChromeTest, PhaseSliceHasTheRecordedDuration) {
  TraceBuilder b;
  DeviceId d = b.Device("nic0", "net");
  b.Phase(d, RecoveryPhase::kProbe, 1 * kMs, 3500 * kUs);
  std::ostringstream out;
  ASSERT_TRUE(ExportChrome(b.trace(), out));
  Json root = Json::Parse(out.str());
  bool found = false;
  for (const Json& e : root["traceEvents"].array) {
    if (Field(e, "ph").string != "X") continue;
    found = true;
    EXPECT_EQ(Field(e, "name").string, "probe");
    EXPECT_DOUBLE_EQ(Field(e, "dur").number, 2500.0);  // µs
    EXPECT_DOUBLE_EQ(Field(e, "ts").number, 0.0);
    EXPECT_EQ(Field(e, "pid").number, 1);
  }
  EXPECT_TRUE(found);
}

TEST(ExportChromeTest, NamesWithQuotesAndControlCharactersStayValidJson) {
  TraceBuilder b;
  DeviceId d = b.Device("we\"ird\\dev\n", "net");
  b.At(5 * kUs, d, FaultInjected{"site\t\x01", "seg\"fault", 1});
  std::ostringstream out;
  ASSERT_TRUE(ExportChrome(b.trace(), out));
  Json root = Json::Parse(out.str());
  std::set<std::string> names;
  for (const Json& e : root["traceEvents"].array) {
    names.insert(e["name"].string);
    if (e["name"].string == "process_name") names.insert(e["args"]["name"].string);
  }
  EXPECT_TRUE(names.contains("we\"ird\\dev\n (net)"));
  EXPECT_TRUE(names.contains("fault: seg\"fault"));
}

std::string Html() {
  Trace trace = Timeline();
  auto report = Analyze(trace);
  EXPECT_TRUE(report);
  std::ostringstream out;
  EXPECT_TRUE(WriteHtmlReport(trace, *report, out));
  return out.str();
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(HtmlReportTest, ContainsThroughputPlotsWithCrashesAndTheGapHistogram) {
  std::string html = Html();
  EXPECT_EQ(Count(html, "<svg class=\"throughput\""), 2u);
  EXPECT_EQ(Count(html, "<polyline class=\"series\" data-series=\"nic0\""), 1u);
  EXPECT_EQ(Count(html, "<polyline class=\"series\" data-series=\"disk0\""), 1u);
  EXPECT_EQ(Count(html, "<line class=\"crash\""), 2u);
  EXPECT_EQ(Count(html, "<rect class=\"recovery\""), 2u);
  EXPECT_EQ(Count(html, "<line class=\"resumed\""), 2u);
  EXPECT_EQ(Count(html, "<svg class=\"gap-histogram\""), 1u);
  EXPECT_GE(Count(html, "<rect class=\"bar\""), 1u);
  EXPECT_NE(html.find("<table class=\"groups\">"), std::string::npos);
  EXPECT_NE(html.find("<table class=\"faults\">"), std::string::npos);
  // Self-contained: no script, no external resource.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
}

TEST(HtmlReportTest, HasAGapCdfPerClassAndAPhaseBarPerFault) {
  std::string html = Html();
  EXPECT_EQ(Count(html, "<svg class=\"gap-cdf\" data-class=\"net\""), 1u);
  EXPECT_EQ(Count(html, "<polyline class=\"cdf\" data-class=\"net\" data-fault=\"segfault\""), 1u);
  EXPECT_EQ(Count(html, "<polyline class=\"cdf\" data-class=\"net\" data-fault=\"hang\""), 1u);
  EXPECT_EQ(Count(html, "<svg class=\"phases\""), 1u);
  // Two faults: detect and seven phases each (resume is not drawn).
  EXPECT_EQ(Count(html, "<rect class=\"phase\""), 16u);
  EXPECT_EQ(Count(html, "data-phase=\"restart\""), 2u);
  EXPECT_NE(html.find("<table class=\"requests\">"), std::string::npos);
}

TEST(HtmlReportTest, ThroughputSeriesDropsToZeroDuringTheGap) {
  Trace trace = Timeline();
  auto bins = Throughput(trace, 0, 30 * kMs, 37 * kMs - 1, 1 * kMs);
  ASSERT_EQ(bins.size(), 7u);
  EXPECT_GT(bins[0].per_second, 0);              // 30–31 ms: up to the crash
  EXPECT_EQ(bins[2].per_second, 0);              // 32–33 ms: down
  EXPECT_DOUBLE_EQ(bins[5].per_second, 10'000);  // 35–36 ms: 10 per ms once back
}

}  // namespace
}  // namespace umbra::recorder
