#include <algorithm>
#include <map>
#include <string>

#include "recorder/export.h"
#include "recorder/json_writer.h"
#include "base/overloaded.h"

namespace umbra::recorder {
namespace {

// Threads of each device's process track.
constexpr int kRecoveryTid = 1;
constexpr int kDriverTid = 2;
constexpr int kGapTid = 3;
constexpr int kEventsTid = 4;
constexpr int kRunPid = 0;  // run markers and device-less events

int Pid(DeviceId d) { return d == kNoDevice ? kRunPid : static_cast<int>(d) + 1; }

class ChromeWriter {
 public:
  explicit ChromeWriter(int64_t base_ns) : base_ns_(base_ns) { w_.BeginObject(); }

  void BeginEvents() {
    w_.Key("traceEvents");
    w_.BeginArray();
  }

  void Metadata(int pid, int tid, const char* what, const std::string& name) {
    w_.BeginObject();
    w_.Field("name", what);
    w_.Field("ph", "M");
    Ids(pid, tid);
    w_.Key("args");
    w_.BeginObject();
    w_.Field("name", name);
    w_.EndObject();
    w_.EndObject();
  }

  void Slice(int pid, int tid, const std::string& name, const char* cat, int64_t begin_ns, int64_t end_ns,
             const std::string& detail) {
    w_.BeginObject();
    w_.Field("name", name);
    w_.Field("cat", cat);
    w_.Field("ph", "X");
    Ids(pid, tid);
    w_.Field("ts", Micros(begin_ns));
    w_.Field("dur", static_cast<double>(std::max<int64_t>(end_ns - begin_ns, 0)) / 1e3);
    Args(detail);
    w_.EndObject();
  }

  void Instant(int pid, int tid, const std::string& name, const char* cat, int64_t t, const std::string& detail) {
    w_.BeginObject();
    w_.Field("name", name);
    w_.Field("cat", cat);
    w_.Field("ph", "i");
    w_.Field("s", "t");
    Ids(pid, tid);
    w_.Field("ts", Micros(t));
    Args(detail);
    w_.EndObject();
  }

  void Counter(int pid, const char* name, int64_t t, double value) {
    w_.BeginObject();
    w_.Field("name", name);
    w_.Field("ph", "C");
    Ids(pid, 0);
    w_.Field("ts", Micros(t));
    w_.Key("args");
    w_.BeginObject();
    w_.Field("ops_per_s", value);
    w_.EndObject();
    w_.EndObject();
  }

  std::string Finish() {
    w_.EndArray();
    w_.Field("displayTimeUnit", "ms");
    w_.EndObject();
    return w_.Take();
  }

 private:
  double Micros(int64_t t) const { return static_cast<double>(t - base_ns_) / 1e3; }
  void Ids(int pid, int tid) {
    w_.Field("pid", int64_t{pid});
    w_.Field("tid", int64_t{tid});
  }
  void Args(const std::string& detail) {
    w_.Key("args");
    w_.BeginObject();
    if (!detail.empty()) w_.Field("detail", detail);
    w_.EndObject();
  }

  JsonWriter w_;
  int64_t base_ns_;
};

void WriteMetadata(const Trace& trace, ChromeWriter& out) {
  out.Metadata(kRunPid, 0, "process_name", "run");
  for (DeviceId d = 0; d < trace.devices.size(); ++d) {
    int pid = Pid(d);
    std::string cls = trace.devices[d].device_class;
    out.Metadata(pid, 0, "process_name", trace.devices[d].name + (cls.empty() ? "" : " (" + cls + ")"));
    out.Metadata(pid, kRecoveryTid, "thread_name", "recovery");
    out.Metadata(pid, kDriverTid, "thread_name", "driver");
    out.Metadata(pid, kGapTid, "thread_name", "application gap");
    out.Metadata(pid, kEventsTid, "thread_name", "shadow");
  }
}

void WriteEvents(const Trace& trace, ChromeWriter& out) {
  std::map<std::pair<DeviceId, RecoveryPhase>, int64_t> open;
  for (const Event& e : trace.events) {
    int pid = Pid(e.device);
    std::visit(
        Overloaded{
            [&](const PhaseBegin& p) {
              open[{e.device, p.phase}] = e.time_ns;
            },
            [&](const PhaseEnd& p) {
              auto it = open.find({e.device, p.phase});
              if (it == open.end()) return;
              out.Slice(pid, kRecoveryTid, RecoveryPhaseName(p.phase), "phase", it->second, e.time_ns,
                        p.outcome == PhaseOutcome::kDone ? "done" : "aborted");
              open.erase(it);
            },
            [&](const FaultInjected& f) {
              out.Instant(pid, kRecoveryTid, "fault: " + f.action, "fault", e.time_ns,
                          "site " + f.site + " seed " + std::to_string(f.seed));
            },
            [&](const Detected& d) {
              out.Instant(pid, kRecoveryTid, std::string("detected: ") + DetectionReasonName(d.reason), "detection",
                          e.time_ns, std::to_string(d.detail));
            },
            [&](const DriverSpawned& s) {
              out.Instant(pid, kDriverTid, "spawn", "driver", e.time_ns, "pid " + std::to_string(s.pid));
            },
            [&](const DriverReady&) { out.Instant(pid, kDriverTid, "ready", "driver", e.time_ns, ""); },
            [&](const DriverExited& x) {
              out.Instant(pid, kDriverTid, "exit", "driver", e.time_ns,
                          (x.kind == ExitKind::kSignal ? "signal " : "code ") + std::to_string(x.value));
            },
            [&](const DeviceFailed&) { out.Instant(pid, kRecoveryTid, "device failed", "recovery", e.time_ns, ""); },
            [&](const RequestsDisposed& r) {
              out.Instant(pid, kEventsTid, std::string("requests ") + DispositionName(r.disposition), "shadow",
                          e.time_ns, std::to_string(r.count));
            },
            [&](const LinkChanged& l) {
              out.Instant(pid, kEventsTid, LinkEventName(l.event), "link", e.time_ns,
                          "supplier " + trace.DeviceName(l.supplier));
            },
            [&](const WorkloadVerified& v) {
              out.Instant(pid, kEventsTid, "verify " + v.workload, "verify", e.time_ns,
                          (v.outcome == VerifyOutcome::kPassed ? "passed " : "FAILED ") + v.detail);
            },
            [&](const RunMarker& m) {
              out.Instant(kRunPid, 0, (m.kind == RunMarkerKind::kBegin ? "run begin " : "run end ") + m.run_id, "run",
                          e.time_ns, "seed " + std::to_string(m.seed));
            },
            [](const auto&) {},
        },
        e.body);
  }
}

void WriteFaultSlices(const Report& report, ChromeWriter& out) {
  for (const FaultRecord& f : report.faults) {
    int pid = Pid(f.device);
    if (f.recovered_ns)
      out.Slice(pid, kRecoveryTid, "recovery: " + f.fault_type, "recovery", f.start_ns, *f.recovered_ns,
                FaultEndName(f.end));
    if (f.gap_end_ns) out.Slice(pid, kGapTid, "gap", "gap", f.gap_begin_ns, *f.gap_end_ns, "after " + f.fault_type);
  }
}

void WriteCounters(const Trace& trace, int64_t begin, int64_t end, ChromeWriter& out) {
  int64_t bin = std::max<int64_t>(1'000'000, (end - begin) / 1000);
  for (DeviceId d = 0; d < trace.devices.size(); ++d)
    for (const ThroughputBin& b : Throughput(trace, d, begin, end, bin))
      out.Counter(Pid(d), "throughput", b.begin_ns, b.per_second);
}

}  // namespace

std::pair<int64_t, int64_t> TimeSpan(const Trace& trace) {
  if (trace.events.empty()) return {0, 0};
  auto [lo, hi] = std::minmax_element(trace.events.begin(), trace.events.end(),
                                      [](const Event& a, const Event& b) { return a.time_ns < b.time_ns; });
  return {lo->time_ns, hi->time_ns};
}

std::vector<ThroughputBin> Throughput(const Trace& trace, DeviceId device, int64_t begin_ns, int64_t end_ns,
                                      int64_t bin_ns) {
  std::vector<ThroughputBin> bins;
  if (bin_ns <= 0 || end_ns < begin_ns) return bins;
  // The last bin is full-width; an event exactly at end_ns falls into it.
  size_t n = std::max<size_t>(1, static_cast<size_t>((end_ns - begin_ns + bin_ns - 1) / bin_ns));
  std::vector<uint64_t> counts(n, 0);
  for (const Event& e : trace.events) {
    const auto* c = std::get_if<RequestCompleted>(&e.body);
    if (c == nullptr || e.device != device || c->outcome != RequestOutcome::kOk) continue;
    if (e.time_ns < begin_ns || e.time_ns > end_ns) continue;
    ++counts[std::min(n - 1, static_cast<size_t>((e.time_ns - begin_ns) / bin_ns))];
  }
  double scale = 1e9 * trace.header.sampling_rate / static_cast<double>(bin_ns);
  for (size_t i = 0; i < n; ++i)
    bins.push_back({begin_ns + static_cast<int64_t>(i) * bin_ns, static_cast<double>(counts[i]) * scale});
  return bins;
}

Result<void> ExportChrome(const Trace& trace, std::ostream& out) {
  Report report = UMBRA_TRY(Analyze(trace));
  auto [begin, end] = TimeSpan(trace);
  ChromeWriter w(begin);
  w.BeginEvents();
  WriteMetadata(trace, w);
  WriteEvents(trace, w);
  WriteFaultSlices(report, w);
  if (!trace.events.empty()) WriteCounters(trace, begin, end, w);
  out << w.Finish() << '\n';
  out.flush();
  if (!out) return Fail(Errc::kIo, "writing the Chrome trace failed");
  return {};
}

}  // namespace umbra::recorder
