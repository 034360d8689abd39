// Rendering a Report: the text tables `umbra report` and `umbra demo` print,
// and the JSON object of `umbra report --json`.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "recorder/analysis.h"
#include "recorder/json_writer.h"

namespace umbra::recorder {

std::string FormatDuration(int64_t ns) {
  char buf[32];
  double v = static_cast<double>(ns);
  if (std::llabs(ns) < 1000)
    std::snprintf(buf, sizeof buf, "%lld ns", static_cast<long long>(ns));
  else if (std::llabs(ns) < 1'000'000)
    std::snprintf(buf, sizeof buf, "%.1f us", v / 1e3);
  else if (std::llabs(ns) < 1'000'000'000)
    std::snprintf(buf, sizeof buf, "%.2f ms", v / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.3f s", v / 1e9);
  return buf;
}

namespace {

std::string Opt(const std::optional<int64_t>& v) { return v ? FormatDuration(*v) : "-"; }

void AppendRow(std::string& out, const std::vector<std::string>& cells, const std::vector<int>& widths) {
  for (size_t i = 0; i < cells.size(); ++i) {
    char buf[256];
    std::snprintf(buf, sizeof buf, i == 0 ? "%-*s" : "  %*s", widths[i], cells[i].c_str());
    out += buf;
  }
  out += '\n';
}

std::string Table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<int> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = static_cast<int>(header[i].size());
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], int(r[i].size()));
  std::string out;
  AppendRow(out, header, widths);
  for (const auto& r : rows) AppendRow(out, r, widths);
  return out;
}

std::vector<std::string> DistCells(const Distribution& d) {
  if (d.count == 0) return {"-", "-", "-", "-"};
  return {FormatDuration(d.median), FormatDuration(d.p90), FormatDuration(d.p99), FormatDuration(d.max)};
}

}  // namespace

std::string RenderText(const Report& report) {
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "traces %u  events %llu  lost %llu  sampling 1/%u  duration %s  faults %zu\n",
                report.traces, static_cast<unsigned long long>(report.events),
                static_cast<unsigned long long>(report.lost_events), report.sampling_rate,
                FormatDuration(report.duration_ns).c_str(), report.faults.size());
  out += buf;
  for (const auto& w : report.warnings) out += "warning: " + w + "\n";

  out += "\nRecovery by class and fault type (median / p90 / p99 / max)\n";
  std::vector<std::vector<std::string>> rows;
  for (const FaultGroup& g : report.groups) {
    std::vector<std::string> r = {g.device_class.empty() ? "-" : g.device_class, g.fault_type, std::to_string(g.faults),
                                  std::to_string(g.recovered), std::to_string(g.failed)};
    for (const Distribution* d : {&g.gap, &g.detection, &g.recovery}) {
      auto c = DistCells(*d);
      r.push_back(c[0] + " / " + c[1] + " / " + c[2] + " / " + c[3]);
    }
    rows.push_back(std::move(r));
  }
  out += Table({"class", "fault", "n", "ok", "failed", "gap", "detection", "recovery"}, rows);

  out += "\nPer fault\n";
  rows.clear();
  for (const FaultRecord& f : report.faults) {
    std::vector<std::string> r = {f.device_name, f.fault_type, FaultEndName(f.end), Opt(f.detection_latency_ns)};
    for (int p = 0; p < kPhaseCount; ++p) r.push_back(Opt(f.phase_ns[p]));
    r.push_back(Opt(f.recovery_ns));
    r.push_back(Opt(f.gap_ns));
    std::string disp;
    for (int d = 0; d < kDispositionCount; ++d) disp += (d ? "/" : "") + std::to_string(f.disposed[d]);
    r.push_back(disp);
    rows.push_back(std::move(r));
  }
  std::vector<std::string> header = {"device", "fault", "end", "detect"};
  for (int p = 0; p < kPhaseCount; ++p) header.push_back(RecoveryPhaseName(RecoveryPhase(p)));
  header.push_back("recovery");
  header.push_back("gap");
  header.push_back("q/drop/ans/fail/replay");
  out += Table(header, rows);

  if (!report.requests.empty()) {
    out += "\nRequests by class and op (latency median / p99 / max)\n";
    rows.clear();
    for (const RequestGroup& g : report.requests) {
      auto c = DistCells(g.latency);
      rows.push_back({g.device_class.empty() ? "-" : g.device_class, RequestOpName(g.op), std::to_string(g.ok),
                      std::to_string(g.failed), std::to_string(g.interrupted), c[0] + " / " + c[2] + " / " + c[3]});
    }
    out += Table({"class", "op", "ok", "failed", "interrupted", "latency"}, rows);
  }
  if (!report.verifications.empty()) {
    out += "\nWorkload verification\n";
    rows.clear();
    for (const Verification& v : report.verifications)
      rows.push_back({v.device_name, v.workload, v.outcome == VerifyOutcome::kPassed ? "passed" : "FAILED", v.detail});
    out += Table({"device", "workload", "result", "detail"}, rows);
  }
  return out;
}

std::string DetectedAs(const FaultRecord& f) { return f.reason ? DetectionText(*f.reason, f.reason_detail) : "-"; }

std::string RenderFaultSummary(const Report& report) {
  std::vector<std::vector<std::string>> rows;
  for (const FaultRecord& f : report.faults) {
    rows.push_back({f.device_name, f.fault_type, f.site.empty() ? "-" : f.site, DetectedAs(f),
                    Opt(f.detection_latency_ns), Opt(f.recovery_ns), Opt(f.gap_ns),
                    std::to_string(f.disposed[static_cast<int>(Disposition::kQueued)]),
                    std::to_string(f.disposed[static_cast<int>(Disposition::kDropped)]),
                    std::to_string(f.disposed[static_cast<int>(Disposition::kReplayed)]), FaultEndName(f.end)});
  }
  return Table({"device", "fault", "site", "detected as", "detection", "recovery", "gap", "queued", "dropped",
                "replayed", "end"},
               rows);
}

namespace {

void WriteOpt(JsonWriter& w, std::string_view key, const std::optional<int64_t>& v) {
  w.Key(key);
  if (v)
    w.Int(*v);
  else
    w.Null();
}

void WriteDistribution(JsonWriter& w, std::string_view key, const Distribution& d) {
  w.Key(key);
  w.BeginObject();
  w.Field("count", d.count);
  w.Field("min_ns", d.min);
  w.Field("median_ns", d.median);
  w.Field("p90_ns", d.p90);
  w.Field("p99_ns", d.p99);
  w.Field("max_ns", d.max);
  w.Field("mean_ns", d.mean);
  w.Key("histogram");
  w.BeginArray();
  for (const HistogramBucket& b : d.histogram) {
    w.BeginObject();
    w.Field("le_ns", b.upper_ns);
    w.Field("count", b.count);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void WriteDisposed(JsonWriter& w, const std::array<uint64_t, kDispositionCount>& disposed) {
  w.Key("requests");
  w.BeginObject();
  for (int d = 0; d < kDispositionCount; ++d) w.Field(DispositionName(Disposition(d)), disposed[d]);
  w.EndObject();
}

void WriteFault(JsonWriter& w, const FaultRecord& f) {
  w.BeginObject();
  w.Field("trace", uint64_t{f.trace_index});
  w.Field("device", f.device_name);
  w.Field("class", f.device_class);
  w.Field("fault", f.fault_type);
  w.Field("site", f.site);
  w.Field("seed", f.seed);
  w.Field("faults", uint64_t{f.faults});
  w.Field("end", FaultEndName(f.end));
  w.Field("start_ns", f.start_ns);
  w.Key("reason");
  if (f.reason)
    w.String(DetectionReasonName(*f.reason));
  else
    w.Null();
  w.Field("detected_as", DetectedAs(f));
  WriteOpt(w, "detection_ns", f.detection_latency_ns);
  w.Key("phases_ns");
  w.BeginObject();
  for (int p = 0; p < kPhaseCount; ++p) WriteOpt(w, RecoveryPhaseName(RecoveryPhase(p)), f.phase_ns[p]);
  w.EndObject();
  WriteOpt(w, "recovery_ns", f.recovery_ns);
  w.Field("gap_begin_ns", f.gap_begin_ns);
  WriteOpt(w, "gap_end_ns", f.gap_end_ns);
  WriteOpt(w, "gap_ns", f.gap_ns);
  WriteDisposed(w, f.disposed);
  w.EndObject();
}

void WriteFaults(JsonWriter& w, const Report& report) {
  w.BeginArray();
  for (const FaultRecord& f : report.faults) WriteFault(w, f);
  w.EndArray();
}

}  // namespace

std::string RenderFaultsJson(const Report& report) {
  JsonWriter w;
  WriteFaults(w, report);
  return w.Take();
}

std::string RenderJson(const Report& report) {
  JsonWriter w;
  w.BeginObject();
  w.Field("traces", uint64_t{report.traces});
  w.Field("events", report.events);
  w.Field("lost_events", report.lost_events);
  w.Field("sampling_rate", uint64_t{report.sampling_rate});
  w.Field("duration_ns", report.duration_ns);
  w.Key("warnings");
  w.BeginArray();
  for (const auto& s : report.warnings) w.String(s);
  w.EndArray();
  w.Key("groups");
  w.BeginArray();
  for (const FaultGroup& g : report.groups) {
    w.BeginObject();
    w.Field("class", g.device_class);
    w.Field("fault", g.fault_type);
    w.Field("faults", g.faults);
    w.Field("recovered", g.recovered);
    w.Field("failed", g.failed);
    w.Field("unfinished", g.unfinished);
    WriteDistribution(w, "gap", g.gap);
    WriteDistribution(w, "detection", g.detection);
    WriteDistribution(w, "recovery", g.recovery);
    w.Key("phases");
    w.BeginObject();
    for (int p = 0; p < kPhaseCount; ++p) WriteDistribution(w, RecoveryPhaseName(RecoveryPhase(p)), g.phases[p]);
    w.EndObject();
    WriteDisposed(w, g.disposed);
    w.EndObject();
  }
  w.EndArray();
  w.Key("faults");
  WriteFaults(w, report);
  w.Key("requests");
  w.BeginArray();
  for (const RequestGroup& g : report.requests) {
    w.BeginObject();
    w.Field("class", g.device_class);
    w.Field("op", RequestOpName(g.op));
    w.Field("ok", g.ok);
    w.Field("failed", g.failed);
    w.Field("interrupted", g.interrupted);
    w.Field("bytes", g.bytes);
    WriteDistribution(w, "latency", g.latency);
    w.EndObject();
  }
  w.EndArray();
  w.Key("verifications");
  w.BeginArray();
  for (const Verification& v : report.verifications) {
    w.BeginObject();
    w.Field("trace", uint64_t{v.trace_index});
    w.Field("device", v.device_name);
    w.Field("workload", v.workload);
    w.Key("passed");
    w.Bool(v.outcome == VerifyOutcome::kPassed);
    w.Field("detail", v.detail);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Take() + "\n";
}

}  // namespace umbra::recorder
