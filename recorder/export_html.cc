#include <algorithm>
#include <cstdio>
#include <string>

#include "recorder/export.h"

namespace umbra::recorder {
namespace {

constexpr int kWidth = 820;
constexpr int kHeight = 220;
constexpr int kLeft = 70;
constexpr int kRight = 20;
constexpr int kTop = 20;
constexpr int kBottom = 40;

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

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
  out += "<line class=\"axis\" x1=\"" + Num(kLeft) + "\" y1=\"" + Num(y0) + "\" x2=\"" +
         Num(kWidth - kRight) + "\" y2=\"" + Num(y0) + "\"/>";
  out += "<line class=\"axis\" x1=\"" + Num(kLeft) + "\" y1=\"" + Num(kTop) + "\" x2=\"" +
         Num(kLeft) + "\" y2=\"" + Num(y0) + "\"/>";
  out += "<text x=\"4\" y=\"" + Num(kTop + 4) + "\">" + Short(a.ymax) + "</text>";
  out += "<text x=\"4\" y=\"" + Num(y0) + "\">0</text>";
  out += "<text x=\"4\" y=\"" + Num(kHeight - 6) + "\">" + Escape(y_label) + "</text>";
  out += "<text x=\"" + Num(kWidth - kRight - 120) + "\" y=\"" + Num(kHeight - 6) + "\">" +
         FormatDuration(a.t1 - a.t0) + " total</text>";
}

std::string ThroughputPlot(const Trace& trace, const Report& report, DeviceId d, int64_t t0,
                           int64_t t1) {
  int64_t bin = std::max<int64_t>(1'000'000, (t1 - t0) / 200);
  auto bins = Throughput(trace, d, t0, t1, bin);
  double ymax = 1;
  for (const auto& b : bins) ymax = std::max(ymax, b.per_second);
  Axes a{t0, t1, ymax * 1.1};
  const std::string name = trace.devices[d].name;
  std::string out = "<h3>" + Escape(name) + " (" + Escape(trace.devices[d].device_class) +
                    ")</h3>\n<svg class=\"throughput\" data-device=\"" + Escape(name) +
                    "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) +
                    "\" height=\"" + std::to_string(kHeight) + "\">";
  for (const FaultRecord& f : report.faults) {
    if (f.device != d || f.trace_index != 0) continue;
    int64_t end = f.recovered_ns.value_or(t1);
    out += "<rect class=\"recovery\" x=\"" + Num(a.X(f.start_ns)) + "\" y=\"" + Num(kTop) +
           "\" width=\"" + Num(std::max(1.0, a.X(end) - a.X(f.start_ns))) + "\" height=\"" +
           Num(kHeight - kTop - kBottom) + "\"><title>recovery after " + Escape(f.fault_type) +
           ": " + (f.recovery_ns ? FormatDuration(*f.recovery_ns) : "unfinished") +
           "</title></rect>";
    out += "<line class=\"crash\" x1=\"" + Num(a.X(f.start_ns)) + "\" y1=\"" + Num(kTop) +
           "\" x2=\"" + Num(a.X(f.start_ns)) + "\" y2=\"" + Num(kHeight - kBottom) +
           "\"><title>" + Escape(f.fault_type) + "</title></line>";
    if (f.gap_end_ns)
      out += "<line class=\"resumed\" x1=\"" + Num(a.X(*f.gap_end_ns)) + "\" y1=\"" + Num(kTop) +
             "\" x2=\"" + Num(a.X(*f.gap_end_ns)) + "\" y2=\"" + Num(kHeight - kBottom) +
             "\"><title>first completion after the crash; gap " + FormatDuration(*f.gap_ns) +
             "</title></line>";
  }
  out += "<polyline class=\"series\" data-series=\"" + Escape(name) + "\" points=\"";
  // Each bin's rate is drawn at the bin's centre.
  for (const auto& b : bins)
    out += Num(a.X(std::min(b.begin_ns + bin / 2, t1))) + "," + Num(a.Y(b.per_second)) + " ";
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
  out += "<svg class=\"gap-histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         std::to_string(kWidth) + "\" height=\"" + std::to_string(kHeight) + "\">";
  double slot = double(kWidth - kLeft - kRight) / static_cast<double>(d.histogram.size());
  Axes a{0, 1, static_cast<double>(ymax) * 1.1};
  for (size_t i = 0; i < d.histogram.size(); ++i) {
    const auto& b = d.histogram[i];
    double x = kLeft + slot * static_cast<double>(i);
    double y = a.Y(static_cast<double>(b.count));
    out += "<rect class=\"bar\" data-le-ns=\"" + std::to_string(b.upper_ns) + "\" data-count=\"" +
           std::to_string(b.count) + "\" x=\"" + Num(x + 2) + "\" y=\"" + Num(y) + "\" width=\"" +
           Num(std::max(1.0, slot - 4)) + "\" height=\"" + Num(kHeight - kBottom - y) +
           "\"><title>&#8804; " + FormatDuration(b.upper_ns) + ": " + std::to_string(b.count) +
           "</title></rect>";
    out += "<text x=\"" + Num(x + 2) + "\" y=\"" + Num(kHeight - kBottom + 14) + "\">&#8804;" +
           FormatDuration(b.upper_ns) + "</text>";
  }
  double y0 = kHeight - kBottom;
  out += "<line class=\"axis\" x1=\"" + Num(kLeft) + "\" y1=\"" + Num(y0) + "\" x2=\"" +
         Num(kWidth - kRight) + "\" y2=\"" + Num(y0) + "\"/>";
  out += "<text x=\"4\" y=\"" + Num(kTop + 4) + "\">" + std::to_string(ymax) + "</text>";
  out += "<text x=\"4\" y=\"" + Num(kHeight - 6) + "\">faults</text>";
  out += "</svg>\n<p>gap median " + FormatDuration(d.median) + ", p90 " + FormatDuration(d.p90) +
         ", p99 " + FormatDuration(d.p99) + ", max " + FormatDuration(d.max) + " over " +
         std::to_string(d.count) + " faults.</p>\n";
  return out;
}

std::string Cell(const std::optional<int64_t>& v) { return v ? FormatDuration(*v) : "-"; }

std::string GroupTable(const Report& report) {
  std::string out =
      "<h2>By class and fault type</h2>\n<table class=\"groups\"><tr><th>class</th><th>fault</th>"
      "<th>n</th><th>recovered</th><th>failed</th><th>gap median</th><th>gap p99</th>"
      "<th>gap max</th><th>detection median</th><th>recovery median</th></tr>\n";
  for (const FaultGroup& g : report.groups) {
    out += "<tr><td>" + Escape(g.device_class) + "</td><td>" + Escape(g.fault_type) + "</td><td>" +
           std::to_string(g.faults) + "</td><td>" + std::to_string(g.recovered) + "</td><td>" +
           std::to_string(g.failed) + "</td>";
    auto dist = [](const Distribution& d, int64_t v) {
      return d.count ? FormatDuration(v) : std::string("-");
    };
    out += "<td>" + dist(g.gap, g.gap.median) + "</td><td>" + dist(g.gap, g.gap.p99) + "</td><td>" +
           dist(g.gap, g.gap.max) + "</td><td>" + dist(g.detection, g.detection.median) +
           "</td><td>" + dist(g.recovery, g.recovery.median) + "</td></tr>\n";
  }
  return out + "</table>\n";
}

std::string FaultTable(const Report& report) {
  std::string out = "<h2>Per fault</h2>\n<table class=\"faults\"><tr><th>device</th><th>fault</th>"
                    "<th>site</th><th>end</th><th>detection</th>";
  for (int p = 0; p < kPhaseCount; ++p)
    out += std::string("<th>") + RecoveryPhaseName(RecoveryPhase(p)) + "</th>";
  out += "<th>recovery</th><th>gap</th><th>queued</th><th>dropped</th><th>answered</th>"
         "<th>failed</th><th>replayed</th></tr>\n";
  for (const FaultRecord& f : report.faults) {
    out += "<tr><td>" + Escape(f.device_name) + "</td><td>" + Escape(f.fault_type) + "</td><td>" +
           Escape(f.site) + "</td><td>" + FaultEndName(f.end) + "</td><td>" +
           Cell(f.detection_latency_ns) + "</td>";
    for (int p = 0; p < kPhaseCount; ++p) out += "<td>" + Cell(f.phase_ns[p]) + "</td>";
    out += "<td>" + Cell(f.recovery_ns) + "</td><td>" + Cell(f.gap_ns) + "</td>";
    for (int d = 0; d < kDispositionCount; ++d) out += "<td>" + std::to_string(f.disposed[d]) + "</td>";
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

constexpr char kStyle[] = R"(<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; }
svg { border: 1px solid #ddd; background: #fff; }
svg text { font-size: 11px; fill: #444; }
.series { fill: none; stroke: #1f5fbf; stroke-width: 1.5; }
.crash { stroke: #d62728; stroke-width: 2; }
.resumed { stroke: #2ca02c; stroke-width: 2; stroke-dasharray: 4 2; }
.recovery { fill: #d62728; fill-opacity: 0.12; }
.bar { fill: #1f5fbf; }
.axis { stroke: #888; }
.warning { color: #b00; }
</style>
)";

}  // namespace

Result<void> WriteHtmlReport(const Trace& trace, const Report& report, std::ostream& out) {
  auto [t0, t1] = TimeSpan(trace);
  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Umbra recovery report</title>\n";
  html += kStyle;
  html += "</head><body>\n<h1>Umbra recovery report</h1>\n<p>";
  html += std::to_string(report.events) + " events, " + std::to_string(report.faults.size()) +
          " faults, " + std::to_string(report.lost_events) + " events lost, sampling 1/" +
          std::to_string(report.sampling_rate) + ", host " + Escape(trace.header.host_name) + ".</p>\n";
  for (const auto& w : report.warnings) html += "<p class=\"warning\">" + Escape(w) + "</p>\n";
  html += "<h2>Throughput per device</h2>\n<p>Completed requests per second. Red line: fault; "
          "shaded: recovery until the resume phase ended; green dashed: first completion after "
          "the crash (end of the gap).</p>\n";
  for (DeviceId d = 0; d < trace.devices.size(); ++d) html += ThroughputPlot(trace, report, d, t0, t1);
  html += GapHistogram(report);
  html += GroupTable(report);
  html += FaultTable(report);
  html += "</body></html>\n";
  out << html;
  out.flush();
  if (!out) return Fail(Errc::kIo, "writing the HTML report failed");
  return {};
}

}  // namespace umbra::recorder
