#include "recorder/html_plots.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "recorder/html_svg.h"

namespace umbra::recorder::html {
namespace {

// A logarithmic time axis over whole decades that hold [lo, hi].
struct LogAxis {
  double lo_exp, hi_exp;
  static LogAxis For(int64_t lo, int64_t hi) {
    double a = std::floor(std::log10(static_cast<double>(std::max<int64_t>(lo, 1))));
    double b = std::ceil(std::log10(static_cast<double>(std::max<int64_t>(hi, 1))));
    if (b <= a) b = a + 1;
    return {a, b};
  }
  double X(int64_t v) const {
    const double e = std::log10(static_cast<double>(std::max<int64_t>(v, 1)));
    return kLeft + (kWidth - kLeft - kRight) * (e - lo_exp) / (hi_exp - lo_exp);
  }
};

double CdfY(double p) { return kTop + (kHeight - kTop - kBottom) * (1.0 - p); }

std::string CdfFrame(const LogAxis& axis) {
  std::string out;
  const double y0 = kHeight - kBottom;
  for (double e = axis.lo_exp; e <= axis.hi_exp; e += 1) {
    const int64_t v = static_cast<int64_t>(std::llround(std::pow(10.0, e)));
    out += Line("grid", axis.X(v), kTop, axis.X(v), y0);
    out += Text(axis.X(v), y0 + 14, FormatDuration(v), "middle");
  }
  for (double p : {0.0, 0.5, 1.0}) {
    out += Line("grid", kLeft, CdfY(p), kWidth - kRight, CdfY(p));
    out += Text(kLeft - 6, CdfY(p) + 4, std::to_string(static_cast<int>(p * 100)) + "%", "end");
  }
  out += Line("axis", kLeft, y0, kWidth - kRight, y0);
  out += Line("axis", kLeft, kTop, kLeft, y0);
  out += Text(kWidth - kRight, kHeight - 6, "gap (log scale)", "end");
  out += Text(4, kTop - 6, "faults with a gap ≤ x");
  return out;
}

// A step line: the share of `sorted` at or below each x.
std::string CdfSeries(const LogAxis& axis, const std::string& device_class, const std::string& fault,
                      const std::vector<int64_t>& sorted, const char* colour) {
  const double n = static_cast<double>(sorted.size());
  std::string points = Num(axis.X(sorted.front())) + "," + Num(CdfY(0)) + " ";
  std::string dots;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const double x = axis.X(sorted[i]);
    points += Num(x) + "," + Num(CdfY(static_cast<double>(i) / n)) + " " + Num(x) + "," +
              Num(CdfY(static_cast<double>(i + 1) / n)) + " ";
    dots += "<circle class=\"cdf-point\" cx=\"" + Num(x) + "\" cy=\"" + Num(CdfY(static_cast<double>(i + 1) / n)) +
            "\" r=\"3\" fill=\"" + colour + "\"><title>" + Escape(fault) + ": " + FormatDuration(sorted[i]) +
            "</title></circle>";
  }
  points += Num(kWidth - kRight) + "," + Num(CdfY(1));
  return "<polyline class=\"cdf\" data-class=\"" + Escape(device_class) + "\" data-fault=\"" + Escape(fault) +
         "\" stroke=\"" + colour + "\" points=\"" + points + "\"/>" + dots;
}

std::string CdfPlot(const std::string& device_class, const std::map<std::string, std::vector<int64_t>>& by_fault) {
  int64_t lo = INT64_MAX, hi = 0;
  for (const auto& [fault, gaps] : by_fault) {
    lo = std::min(lo, gaps.front());
    hi = std::max(hi, gaps.back());
  }
  const LogAxis axis = LogAxis::For(lo, hi);
  std::string svg = "<h3>" + Escape(device_class.empty() ? "-" : device_class) +
                    "</h3>\n<svg class=\"gap-cdf\" data-class=\"" + Escape(device_class) +
                    "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) + "\" height=\"" +
                    std::to_string(kHeight) + "\">" + CdfFrame(axis);
  std::string legend = "<p class=\"legend\">";
  size_t i = 0;
  for (const auto& [fault, gaps] : by_fault) {
    const char* colour = Palette(i++);
    svg += CdfSeries(axis, device_class, fault, gaps, colour);
    const Distribution d = Summarize(gaps);
    legend += std::string("<span class=\"key\" style=\"background:") + colour + "\"></span>" + Escape(fault) +
              (d.count == 1 ? ": 1 fault, " + FormatDuration(d.max)
                            : ": " + std::to_string(d.count) + " faults, median " + FormatDuration(d.median) +
                                  ", max " + FormatDuration(d.max));
  }
  return svg + "</svg>\n" + legend + "</p>\n";
}

// The bar's segments: detect, then every recorded phase but resume (which
// only flips the shadow back to passive).
constexpr int kSegments = kPhaseCount;  // detect + 7 phases
const char* SegmentName(int segment) { return segment == 0 ? "detect" : RecoveryPhaseName(RecoveryPhase(segment - 1)); }

std::optional<int64_t> BarEnd(const FaultRecord& f) {
  if (f.recovered_ns) return f.recovered_ns;
  std::optional<int64_t> end = f.detected_ns;
  for (const PhaseSpan& p : f.phases) end = std::max(end.value_or(p.end_ns), p.end_ns);
  return end;
}

std::string Segment(double x0, double w, double y, int segment, int64_t ns, const std::string& outcome) {
  return "<rect class=\"phase\" data-phase=\"" + std::string(SegmentName(segment)) + "\" x=\"" + Num(x0) + "\" y=\"" +
         Num(y) + "\" width=\"" + Num(std::max(w, 1.0)) + "\" height=\"14\" fill=\"" +
         Palette(static_cast<size_t>(segment)) + "\"><title>" + SegmentName(segment) + " " + FormatDuration(ns) +
         outcome + "</title></rect>";
}

constexpr int kLabelWidth = 190;
constexpr int kTotalWidth = 80;
constexpr int kRow = 20;
constexpr size_t kMaxBars = 200;

std::string PhaseBar(const FaultRecord& f, double y) {
  const std::optional<int64_t> end = BarEnd(f);
  std::string out = Text(4, y + 11, f.device_name + " " + f.fault_type);
  if (!end || *end <= f.start_ns) return out + Text(kLabelWidth, y + 11, "no recovery recorded");
  const double x0 = kLabelWidth, width = kWidth - kLabelWidth - kTotalWidth;
  const double total = static_cast<double>(*end - f.start_ns);
  auto x = [&](int64_t t) { return x0 + width * static_cast<double>(t - f.start_ns) / total; };
  out += "<rect class=\"wait\" x=\"" + Num(x0) + "\" y=\"" + Num(y) + "\" width=\"" + Num(width) +
         "\" height=\"14\"><title>in no phase (waiting: restart backoff, thread hand-over)</title></rect>";
  if (f.detected_ns && *f.detected_ns > f.start_ns)
    out += Segment(x(f.start_ns), x(*f.detected_ns) - x(f.start_ns), y, 0, *f.detected_ns - f.start_ns, "");
  for (const PhaseSpan& p : f.phases) {
    if (p.phase == RecoveryPhase::kResume) continue;
    out += Segment(x(p.begin_ns), x(p.end_ns) - x(p.begin_ns), y, static_cast<int>(p.phase) + 1, p.end_ns - p.begin_ns,
                   p.outcome == PhaseOutcome::kAborted ? " (aborted)" : "");
  }
  return out + Text(kWidth - 4, y + 11, FormatDuration(*end - f.start_ns) + (f.recovered_ns ? "" : " ✗"), "end");
}

}  // namespace

std::string GapCdfPlots(const Report& report) {
  std::map<std::string, std::map<std::string, std::vector<int64_t>>> by_class;
  for (const FaultRecord& f : report.faults)
    if (f.gap_ns) by_class[f.device_class][f.fault_type].push_back(*f.gap_ns);
  std::string out = "<h2>Gap distribution per class and fault type</h2>\n<p>For each device class, the share of faults "
                    "whose application-visible gap was at most x (a cumulative distribution: further left is "
                    "better; a step per fault).</p>\n";
  if (by_class.empty()) return out + "<p class=\"empty\">No fault with a measured gap.</p>\n";
  for (auto& [device_class, by_fault] : by_class) {
    for (auto& [fault, gaps] : by_fault) std::sort(gaps.begin(), gaps.end());
    out += CdfPlot(device_class, by_fault);
  }
  return out;
}

std::string PhaseBars(const Report& report) {
  std::string out = "<h2>Where each recovery's time went</h2>\n<p>One bar per fault, from the fault to the end of its "
                    "recovery, scaled to its own length (the total is on the right; ✗: not recovered). Hover a "
                    "segment for its time.</p>\n";
  const size_t rows = std::min(report.faults.size(), kMaxBars);
  if (rows == 0) return out + "<p class=\"empty\">No fault.</p>\n";
  std::string svg = "<svg class=\"phases\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) +
                    "\" height=\"" + std::to_string(rows * kRow + 10) + "\">";
  for (size_t i = 0; i < rows; ++i) svg += PhaseBar(report.faults[i], 5 + static_cast<double>(i * kRow));
  out += svg + "</svg>\n<p class=\"legend\">";
  for (int s = 0; s < kSegments; ++s)
    out += std::string("<span class=\"key\" style=\"background:") + Palette(static_cast<size_t>(s)) + "\"></span>" +
           SegmentName(s) + " ";
  out += "<span class=\"key wait-key\"></span>waiting (in no phase)</p>\n";
  if (report.faults.size() > rows)
    out += "<p>The first " + std::to_string(rows) + " of " + std::to_string(report.faults.size()) +
           " faults; the table below lists them all.</p>\n";
  return out;
}

}  // namespace umbra::recorder::html
