#include <algorithm>
#include <cstdio>
#include <string>

#include "recorder/export.h"
#include "recorder/html_plots.h"
#include "recorder/html_svg.h"

namespace umbra::recorder {
namespace {

using html::Escape;
using html::kBottom;
using html::kHeight;
using html::kLeft;
using html::kRight;
using html::kTop;
using html::kWidth;
using html::Num;

std::string Short(double v) {
  char buf[32];
  if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// Maps trace time and values to plot coordinates.
struct Axes {
  int64_t t0, t1;
  double ymax;
  double X(int64_t t) const {
    double span = static_cast<double>(std::max<int64_t>(t1 - t0, 1));
    return kLeft + (kWidth - kLeft - kRight) * static_cast<double>(t - t0) / span;
  }
  double Y(double v) const { return kTop + (kHeight - kTop - kBottom) * (1.0 - v / ymax); }
};

void AxisFrame(std::string& out, const Axes& a, const std::string& y_label) {
  double y0 = kHeight - kBottom;
  out += "<line class=\"axis\" x1=\"" + Num(kLeft) + "\" y1=\"" + Num(y0) + "\" x2=\"" + Num(kWidth - kRight) +
         "\" y2=\"" + Num(y0) + "\"/>";
  out += "<line class=\"axis\" x1=\"" + Num(kLeft) + "\" y1=\"" + Num(kTop) + "\" x2=\"" + Num(kLeft) + "\" y2=\"" +
         Num(y0) + "\"/>";
  out += "<text x=\"4\" y=\"" + Num(kTop + 4) + "\">" + Short(a.ymax) + "</text>";
  out += "<text x=\"4\" y=\"" + Num(y0) + "\">0</text>";
  out += "<text x=\"4\" y=\"" + Num(kHeight - 6) + "\">" + Escape(y_label) + "</text>";
  out += "<text x=\"" + Num(kWidth - kRight - 120) + "\" y=\"" + Num(kHeight - 6) + "\">" +
         FormatDuration(a.t1 - a.t0) + " total</text>";
}

std::string ThroughputPlot(const Trace& trace, const Report& report, DeviceId d, int64_t t0, int64_t t1) {
  int64_t bin = std::max<int64_t>(1'000'000, (t1 - t0) / 200);
  auto bins = Throughput(trace, d, t0, t1, bin);
  double ymax = 1;
  for (const auto& b : bins) ymax = std::max(ymax, b.per_second);
  Axes a{t0, t1, ymax * 1.1};
  const std::string name = trace.devices[d].name;
  std::string out = "<h3>" + Escape(name) + " (" + Escape(trace.devices[d].device_class) +
                    ")</h3>\n<svg class=\"throughput\" data-device=\"" + Escape(name) +
                    "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) + "\" height=\"" +
                    std::to_string(kHeight) + "\">";
  for (const FaultRecord& f : report.faults) {
    if (f.device != d || f.trace_index != 0) continue;
    int64_t end = f.recovered_ns.value_or(t1);
    out += "<rect class=\"recovery\" x=\"" + Num(a.X(f.start_ns)) + "\" y=\"" + Num(kTop) + "\" width=\"" +
           Num(std::max(1.0, a.X(end) - a.X(f.start_ns))) + "\" height=\"" + Num(kHeight - kTop - kBottom) +
           "\"><title>recovery after " + Escape(f.fault_type) + ": " +
           (f.recovery_ns ? FormatDuration(*f.recovery_ns) : "unfinished") + "</title></rect>";
    out += "<line class=\"crash\" x1=\"" + Num(a.X(f.start_ns)) + "\" y1=\"" + Num(kTop) + "\" x2=\"" +
           Num(a.X(f.start_ns)) + "\" y2=\"" + Num(kHeight - kBottom) + "\"><title>" + Escape(f.fault_type) +
           "</title></line>";
    if (f.gap_end_ns)
      out += "<line class=\"resumed\" x1=\"" + Num(a.X(*f.gap_end_ns)) + "\" y1=\"" + Num(kTop) + "\" x2=\"" +
             Num(a.X(*f.gap_end_ns)) + "\" y2=\"" + Num(kHeight - kBottom) +
             "\"><title>first completion after the crash; gap " + FormatDuration(*f.gap_ns) + "</title></line>";
  }
  out += "<polyline class=\"series\" data-series=\"" + Escape(name) + "\" points=\"";
  // Each bin's rate is drawn at the bin's centre.
  for (const auto& b : bins) out += Num(a.X(std::min(b.begin_ns + bin / 2, t1))) + "," + Num(a.Y(b.per_second)) + " ";
  out += "\"/>";
  AxisFrame(out, a, "completions/s");
  out += "</svg>\n";
  return out;
}

std::string GapHistogram(const Report& report) {
  std::vector<int64_t> gaps;
  for (const FaultRecord& f : report.faults)
    if (f.gap_ns) gaps.push_back(*f.gap_ns);
  Distribution d = Summarize(gaps);
  std::string out = "<h2>Gap distribution</h2>\n";
  if (d.count == 0) return out + "<p>No fault with a measured gap.</p>\n";
  uint64_t ymax = 1;
  for (const auto& b : d.histogram) ymax = std::max(ymax, b.count);
  out += "<svg class=\"gap-histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) +
         "\" height=\"" + std::to_string(kHeight) + "\">";
  double slot = double(kWidth - kLeft - kRight) / static_cast<double>(d.histogram.size());
  Axes a{0, 1, static_cast<double>(ymax) * 1.1};
  for (size_t i = 0; i < d.histogram.size(); ++i) {
    const auto& b = d.histogram[i];
    double x = kLeft + slot * static_cast<double>(i);
    double y = a.Y(static_cast<double>(b.count));
    out += "<rect class=\"bar\" data-le-ns=\"" + std::to_string(b.upper_ns) + "\" data-count=\"" +
           std::to_string(b.count) + "\" x=\"" + Num(x + 2) + "\" y=\"" + Num(y) + "\" width=\"" +
           Num(std::max(1.0, slot - 4)) + "\" height=\"" + Num(kHeight - kBottom - y) + "\"><title>&#8804; " +
           FormatDuration(b.upper_ns) + ": " + std::to_string(b.count) + "</title></rect>";
    out += "<text x=\"" + Num(x + 2) + "\" y=\"" + Num(kHeight - kBottom + 14) + "\">&#8804;" +
           FormatDuration(b.upper_ns) + "</text>";
  }
  double y0 = kHeight - kBottom;
  out += "<line class=\"axis\" x1=\"" + Num(kLeft) + "\" y1=\"" + Num(y0) + "\" x2=\"" + Num(kWidth - kRight) +
         "\" y2=\"" + Num(y0) + "\"/>";
  out += "<text x=\"4\" y=\"" + Num(kTop + 4) + "\">" + std::to_string(ymax) + "</text>";
  out += "<text x=\"4\" y=\"" + Num(kHeight - 6) + "\">faults</text>";
  out += "</svg>\n<p>gap median " + FormatDuration(d.median) + ", p90 " + FormatDuration(d.p90) + ", p99 " +
         FormatDuration(d.p99) + ", max " + FormatDuration(d.max) + " over " + std::to_string(d.count) +
         " faults.</p>\n";
  return out;
}

std::string Cell(const std::optional<int64_t>& v) { return v ? FormatDuration(*v) : "-"; }

std::string GroupTable(const Report& report) {
  std::string out = "<h2>By class and fault type</h2>\n<table class=\"groups\"><tr><th>class</th><th>fault</th>"
                    "<th>n</th><th>recovered</th><th>failed</th><th>gap median</th><th>gap p99</th>"
                    "<th>gap max</th><th>detection median</th><th>recovery median</th></tr>\n";
  for (const FaultGroup& g : report.groups) {
    out += "<tr><td>" + Escape(g.device_class) + "</td><td>" + Escape(g.fault_type) + "</td><td>" +
           std::to_string(g.faults) + "</td><td>" + std::to_string(g.recovered) + "</td><td>" +
           std::to_string(g.failed) + "</td>";
    auto dist = [](const Distribution& d, int64_t v) { return d.count ? FormatDuration(v) : std::string("-"); };
    out += "<td>" + dist(g.gap, g.gap.median) + "</td><td>" + dist(g.gap, g.gap.p99) + "</td><td>" +
           dist(g.gap, g.gap.max) + "</td><td>" + dist(g.detection, g.detection.median) + "</td><td>" +
           dist(g.recovery, g.recovery.median) + "</td></tr>\n";
  }
  return out + "</table>\n";
}

// The same columns as `umbra demo`'s table (RenderFaultSummary); the phases
// are in the bars above.
std::string FaultTable(const Report& report) {
  std::string out = "<h2>Per fault</h2>\n<table class=\"faults\"><tr>";
  for (const char* h : {"device", "fault", "site", "detected as", "detection", "recovery", "gap", "queued", "dropped",
                        "replayed", "end"})
    out += std::string("<th>") + h + "</th>";
  out += "</tr>\n";
  for (const FaultRecord& f : report.faults) {
    out += "<tr><td>" + Escape(f.device_name) + "</td><td>" + Escape(f.fault_type) + "</td><td>" +
           Escape(f.site.empty() ? "-" : f.site) + "</td><td>" + Escape(DetectedAs(f)) + "</td><td>" +
           Cell(f.detection_latency_ns) + "</td><td>" + Cell(f.recovery_ns) + "</td><td>" + Cell(f.gap_ns) + "</td>";
    for (Disposition d : {Disposition::kQueued, Disposition::kDropped, Disposition::kReplayed})
      out += "<td>" + std::to_string(f.disposed[static_cast<int>(d)]) + "</td>";
    out += std::string("<td>") + FaultEndName(f.end) + "</td></tr>\n";
  }
  return out + "</table>\n";
}

std::string RequestTable(const Report& report) {
  if (report.requests.empty()) return "";
  std::string out =
      "<h2>Requests</h2>\n<p>Completed requests per class and operation. <em>interrupted</em>: in the driver "
      "when it died, or when the device stopped; the shadow resubmits, drops or re-posts them (a posted "
      "receive buffer is interrupted at every crash), the application does not see them fail. The "
      "latency of a receive or read is how long it waited for data.</p>\n<table class=\"requests\"><tr>"
      "<th>class</th><th>op</th><th>ok</th><th>failed</th><th>interrupted</th><th>latency median</th>"
      "<th>p99</th><th>max</th></tr>\n";
  for (const RequestGroup& g : report.requests) {
    out += "<tr><td>" + Escape(g.device_class) + "</td><td>" + RequestOpName(g.op) + "</td><td>" +
           std::to_string(g.ok) + "</td><td>" + std::to_string(g.failed) + "</td><td>" + std::to_string(g.interrupted) +
           "</td>";
    for (int64_t v : {g.latency.median, g.latency.p99, g.latency.max})
      out += "<td>" + (g.latency.count ? FormatDuration(v) : std::string("-")) + "</td>";
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

constexpr char kStyle[] = R"(<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; }
svg { border: 1px solid #ddd; background: #fff; }
svg text { font-size: 11px; fill: #444; }
.series { fill: none; stroke: #1f5fbf; stroke-width: 1.5; }
.crash { stroke: #d62728; stroke-width: 2; }
.resumed { stroke: #2ca02c; stroke-width: 2; stroke-dasharray: 4 2; }
.recovery { fill: #d62728; fill-opacity: 0.12; }
.bar { fill: #1f5fbf; }
.axis { stroke: #888; }
.grid { stroke: #eee; }
.cdf { fill: none; stroke-width: 2; }
.wait { fill: #e4e4e4; }
.key { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 1em; vertical-align: middle; }
.wait-key { background: #e4e4e4; }
.legend { font-size: 0.9em; }
.read { max-width: 60em; }
.warning { color: #b00; }
</style>
)";

constexpr char kHowToRead[] = R"(<p class="read">A <em>fault</em> is a driver crash or hang
(injected, or seen by the host). <em>Detection</em>: from the fault to the host noticing it.
<em>Recovery</em>: from the detection until the shadow serves again. <em>Gap</em>: what the
application saw: from its last completed request before the fault to its first one after the
device was reset. docs/recorder.md defines every figure.</p>
)";

}  // namespace

Result<void> WriteHtmlReport(const Trace& trace, const Report& report, std::ostream& out) {
  auto [t0, t1] = TimeSpan(trace);
  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Umbra recovery report</title>\n";
  html += kStyle;
  html += "</head><body>\n<h1>Umbra recovery report</h1>\n<p>";
  html += std::to_string(report.events) + " events, " + std::to_string(report.faults.size()) + " faults, " +
          std::to_string(report.lost_events) + " events lost, sampling 1/" + std::to_string(report.sampling_rate) +
          ", host " + Escape(trace.header.host_name) + ".</p>\n";
  for (const auto& w : report.warnings) html += "<p class=\"warning\">" + Escape(w) + "</p>\n";
  html += kHowToRead;
  html += "<h2>Throughput per device</h2>\n<p>Completed requests per second over the whole run. Red line: "
          "fault; shaded: recovery until the resume phase ended; green dashed: the first completion after "
          "the device's reset (the end of the gap).</p>\n";
  for (DeviceId d = 0; d < trace.devices.size(); ++d) html += ThroughputPlot(trace, report, d, t0, t1);
  html += html::GapCdfPlots(report);
  html += html::PhaseBars(report);
  html += GapHistogram(report);
  html += GroupTable(report);
  html += FaultTable(report);
  html += RequestTable(report);
  html += "</body></html>\n";
  out << html;
  out.flush();
  if (!out) return Fail(Errc::kIo, "writing the HTML report failed");
  return {};
}

}  // namespace umbra::recorder
