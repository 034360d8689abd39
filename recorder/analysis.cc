#include "recorder/analysis.h"
#include "base/overloaded.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <tuple>

namespace umbra::recorder {
namespace {

int64_t NearestRank(const std::vector<int64_t>& sorted, int percent) {
  size_t n = sorted.size();
  size_t rank = (static_cast<size_t>(percent) * n + 99) / 100;  // ceil(p/100 · n)
  return sorted[std::clamp<size_t>(rank, 1, n) - 1];
}

// Upper edges 1 µs, 2 µs, 5 µs, 10 µs, … ; the bucket index of `v`.
int64_t BucketUpper(size_t index) {
  static constexpr int64_t kSteps[] = {1, 2, 5};
  int64_t upper = 1000 * kSteps[index % 3];
  for (size_t i = 0; i < index / 3; ++i) upper *= 10;
  return upper;
}

size_t BucketOf(int64_t v) {
  size_t i = 0;
  while (BucketUpper(i) < v && i < 40) ++i;
  return i;
}

// A driver exit the host has not reported as detected (yet): the start of an
// episode once the Detected arrives, nothing if none does (a clean exit at
// shutdown).
struct PendingExit {
  int64_t time_ns;
  std::string how;  // "signal 11", "exit 3"
  std::optional<int64_t> last_ok_ns;
};

// The per-device state while walking the timeline.
struct DeviceState {
  std::optional<int64_t> last_ok_ns;
  std::optional<PendingExit> pending_exit;
  // Detections of a live instance (a hang, a protocol violation) whose
  // process the host kills: its exit is the same death, not a new fault.
  uint32_t unreaped_detections = 0;
  std::optional<size_t> episode;  // index into faults; the latest episode of the device
  std::array<std::optional<int64_t>, kPhaseCount> open_phase{};
};

// Request figures per (device class, op), with the raw latencies.
using RequestAccumulator = std::map<std::tuple<std::string, RequestOp>, std::pair<RequestGroup, std::vector<int64_t>>>;

// A fault seen first by its detection: named as an exit would name it when
// the detection carries the signal or exit code ("signal 11"), else by reason.
std::string DetectedFaultType(const Detected& d) { return DetectionText(d.reason, d.detail); }

bool InRecovery(const FaultRecord& f) { return f.end == FaultEnd::kUnfinished; }

class Walker {
 public:
  Walker(const Trace& trace, uint32_t trace_index, Report& report)
      : trace_(trace), index_(trace_index), report_(report) {}

  void Run() {
    std::vector<const Event*> order;
    order.reserve(trace_.events.size());
    for (const Event& e : trace_.events) order.push_back(&e);
    std::stable_sort(order.begin(), order.end(),
                     [](const Event* a, const Event* b) { return a->time_ns < b->time_ns; });
    for (const Event* e : order) Visit(*e);
    if (!order.empty()) report_.duration_ns += order.back()->time_ns - order.front()->time_ns;
  }

 private:
  DeviceState& State(DeviceId d) { return devices_[d]; }

  FaultRecord* Current(DeviceId d) {
    auto& s = State(d);
    return s.episode ? &report_.faults[*s.episode] : nullptr;
  }

  // Starts an episode unless one is recovering; returns it.
  FaultRecord& Begin(const Event& e, std::string fault_type, bool start_known) {
    return Begin(e.device, e.time_ns, std::move(fault_type), start_known, State(e.device).last_ok_ns);
  }
  FaultRecord& Begin(DeviceId device, int64_t start_ns, std::string fault_type, bool start_known,
                     std::optional<int64_t> last_ok_ns) {
    FaultRecord* cur = Current(device);
    if (cur != nullptr && InRecovery(*cur)) return *cur;
    DeviceState& s = State(device);
    FaultRecord f;
    f.trace_index = index_;
    f.device = device;
    f.device_name = trace_.DeviceName(device);
    f.device_class = trace_.DeviceClass(device);
    f.fault_type = std::move(fault_type);
    f.start_ns = start_ns;
    f.gap_begin_ns = last_ok_ns.value_or(start_ns);
    start_known_.push_back(start_known);
    report_.faults.push_back(std::move(f));
    s.episode = report_.faults.size() - 1;
    s.open_phase = {};
    return report_.faults.back();
  }

  void Visit(const Event& e) {
    std::visit(Overloaded{
                   [&](const RequestCompleted& c) { OnCompleted(e, c); },
                   [&](const FaultInjected& f) { OnFault(e, f); },
                   [&](const DriverExited& x) { OnExited(e, x); },
                   [&](const Detected& d) { OnDetected(e, d); },
                   [&](const PhaseBegin& p) { OnPhaseBegin(e, p); },
                   [&](const PhaseEnd& p) { OnPhaseEnd(e, p); },
                   [&](const DeviceFailed&) { OnDeviceFailed(e); },
                   [&](const RequestsDisposed& r) { OnDisposed(e, r); },
                   [&](const WorkloadVerified& v) { OnVerified(e, v); },
                   [](const auto&) {},
               },
               e.body);
  }

  void OnCompleted(const Event& e, const RequestCompleted& c) {
    auto key = std::make_tuple(e.device, c.op);
    RequestGroup& g = requests_[key];
    uint64_t scale = trace_.header.sampling_rate;
    switch (c.outcome) {
      case RequestOutcome::kOk: break;
      case RequestOutcome::kFailed: g.failed += scale; return;
      case RequestOutcome::kInterrupted: g.interrupted += scale; return;
    }
    g.ok += scale;
    g.bytes += c.size * scale;
    latencies_[key].push_back(c.latency_ns);
    DeviceState& s = State(e.device);
    const std::optional<int64_t> previous_ok = s.last_ok_ns;
    s.last_ok_ns = e.time_ns;
    FaultRecord* f = Current(e.device);
    if (f == nullptr || f->gap_end_ns || e.time_ns <= f->start_ns) return;
    // The gap is the interval between this completion and the one before it
    // (or the start, with none before): what the application waited.
    f->gap_begin_ns = previous_ok.value_or(f->start_ns);
    f->gap_end_ns = e.time_ns;
    f->gap_ns = e.time_ns - f->gap_begin_ns;
  }

  // Completions seen between the fault and the device's reset are what the
  // dead (or stopped) driver had published before: the gap goes on until the
  // first completion after the reset.
  void OnQuiesced(FaultRecord& f) {
    f.gap_end_ns.reset();
    f.gap_ns.reset();
  }

  void OnFault(const Event& e, const FaultInjected& fi) {
    FaultRecord* cur = Current(e.device);
    if (cur != nullptr && InRecovery(*cur)) {
      ++cur->faults;
      return;
    }
    FaultRecord& f = Begin(e, fi.action, true);
    f.site = fi.site;
    f.seed = fi.seed;
  }

  // An exit is a fault once the host detects it (OnDetected); the exit of an
  // instance already detected and killed is that same fault.
  void OnExited(const Event& e, const DriverExited& x) {
    DeviceState& s = State(e.device);
    if (s.unreaped_detections > 0) {
      --s.unreaped_detections;
      return;
    }
    std::string how = (x.kind == ExitKind::kSignal ? "signal " : "exit ") + std::to_string(x.value);
    s.pending_exit = PendingExit{e.time_ns, std::move(how), s.last_ok_ns};
  }

  FaultRecord& BeginDetected(const Event& e, const Detected& d) {
    DeviceState& s = State(e.device);
    if (s.pending_exit) {
      PendingExit x = std::move(*s.pending_exit);
      s.pending_exit.reset();
      return Begin(e.device, x.time_ns, std::move(x.how), true, x.last_ok_ns);
    }
    // A spawn that failed has no process to reap.
    if (d.reason != DetectionReason::kSpawnFailed) ++s.unreaped_detections;
    return Begin(e, DetectedFaultType(d), false);
  }

  void OnDetected(const Event& e, const Detected& d) {
    FaultRecord& f = BeginDetected(e, d);
    if (f.detected_ns) return;
    f.detected_ns = e.time_ns;
    f.reason = d.reason;
    f.reason_detail = d.detail;
    if (start_known_[&f - report_.faults.data()]) f.detection_latency_ns = e.time_ns - f.start_ns;
  }

  void OnPhaseBegin(const Event& e, const PhaseBegin& p) {
    FaultRecord* f = Current(e.device);
    if (f == nullptr || !InRecovery(*f)) return;
    State(e.device).open_phase[static_cast<int>(p.phase)] = e.time_ns;
  }

  void OnPhaseEnd(const Event& e, const PhaseEnd& p) {
    FaultRecord* f = Current(e.device);
    auto& open = State(e.device).open_phase[static_cast<int>(p.phase)];
    if (f == nullptr || !InRecovery(*f)) return;
    if (p.phase == RecoveryPhase::kQuiesce) OnQuiesced(*f);
    if (!open) return;
    int64_t span = e.time_ns - *open;
    auto& total = f->phase_ns[static_cast<int>(p.phase)];
    total = total.value_or(0) + span;
    f->phases.push_back(PhaseSpan{p.phase, *open, e.time_ns, p.outcome});
    open.reset();
    if (p.phase != RecoveryPhase::kResume || p.outcome != PhaseOutcome::kDone) return;
    f->end = FaultEnd::kRecovered;
    f->recovered_ns = e.time_ns;
    f->recovery_ns = e.time_ns - f->detected_ns.value_or(f->start_ns);
  }

  void OnDeviceFailed(const Event& e) {
    FaultRecord* f = Current(e.device);
    if (f == nullptr || !InRecovery(*f)) return;
    f->end = FaultEnd::kFailed;
  }

  void OnDisposed(const Event& e, const RequestsDisposed& r) {
    FaultRecord* f = Current(e.device);
    if (f == nullptr) return;
    f->disposed[static_cast<int>(r.disposition)] += r.count;
  }

  void OnVerified(const Event& e, const WorkloadVerified& v) {
    report_.verifications.push_back(Verification{index_, trace_.DeviceName(e.device), v.workload, v.outcome, v.detail});
  }

 public:
  // Adds this trace's request figures to `acc`, pooling the devices of a class.
  void Finish(RequestAccumulator& acc) {
    for (auto& [key, group] : requests_) {
      auto& [g, latencies] = acc[{trace_.DeviceClass(std::get<0>(key)), std::get<1>(key)}];
      g.ok += group.ok;
      g.failed += group.failed;
      g.interrupted += group.interrupted;
      g.bytes += group.bytes;
      auto& from = latencies_[key];
      latencies.insert(latencies.end(), from.begin(), from.end());
    }
  }

 private:
  const Trace& trace_;
  const uint32_t index_;
  Report& report_;
  std::map<DeviceId, DeviceState> devices_;
  // Parallel to report_.faults from this walker's first episode on: whether
  // the episode's start is the fault itself (so detection latency is defined).
  std::vector<bool> start_known_ = std::vector<bool>(report_.faults.size(), false);
  std::map<std::tuple<DeviceId, RequestOp>, RequestGroup> requests_;
  std::map<std::tuple<DeviceId, RequestOp>, std::vector<int64_t>> latencies_;
};

void BuildGroups(Report& report) {
  std::map<std::pair<std::string, std::string>, std::vector<const FaultRecord*>> by_key;
  for (const FaultRecord& f : report.faults) by_key[{f.device_class, f.fault_type}].push_back(&f);
  for (const auto& [key, faults] : by_key) {
    FaultGroup g;
    g.device_class = key.first;
    g.fault_type = key.second;
    std::vector<int64_t> gap, detection, recovery;
    std::array<std::vector<int64_t>, kPhaseCount> phases;
    for (const FaultRecord* f : faults) {
      ++g.faults;
      switch (f->end) {
        case FaultEnd::kRecovered: ++g.recovered; break;
        case FaultEnd::kFailed: ++g.failed; break;
        case FaultEnd::kUnfinished: ++g.unfinished; break;
      }
      if (f->gap_ns) gap.push_back(*f->gap_ns);
      if (f->detection_latency_ns) detection.push_back(*f->detection_latency_ns);
      if (f->recovery_ns) recovery.push_back(*f->recovery_ns);
      for (int p = 0; p < kPhaseCount; ++p)
        if (f->phase_ns[p]) phases[p].push_back(*f->phase_ns[p]);
      for (int d = 0; d < kDispositionCount; ++d) g.disposed[d] += f->disposed[d];
    }
    g.gap = Summarize(std::move(gap));
    g.detection = Summarize(std::move(detection));
    g.recovery = Summarize(std::move(recovery));
    for (int p = 0; p < kPhaseCount; ++p) g.phases[p] = Summarize(std::move(phases[p]));
    report.groups.push_back(std::move(g));
  }
}

}  // namespace

const char* FaultEndName(FaultEnd end) {
  switch (end) {
    case FaultEnd::kRecovered: return "recovered";
    case FaultEnd::kFailed: return "failed";
    case FaultEnd::kUnfinished: return "unfinished";
  }
  return "?";
}

Distribution Summarize(std::vector<int64_t> values) {
  Distribution d;
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  d.count = values.size();
  d.min = values.front();
  d.max = values.back();
  d.median = NearestRank(values, 50);
  d.p90 = NearestRank(values, 90);
  d.p99 = NearestRank(values, 99);
  d.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  size_t lo = BucketOf(d.min), hi = BucketOf(d.max);
  for (size_t i = lo; i <= hi; ++i) d.histogram.push_back({BucketUpper(i), 0});
  for (int64_t v : values) ++d.histogram[BucketOf(v) - lo].count;
  return d;
}

Result<Report> Analyze(std::span<const Trace> traces) {
  if (traces.empty()) return Fail(Errc::kInvalidArgument, "no trace to analyze");
  Report report;
  RequestAccumulator requests;
  for (uint32_t i = 0; i < traces.size(); ++i) {
    const Trace& t = traces[i];
    ++report.traces;
    report.events += t.events.size();
    report.lost_events += t.lost_events;
    report.sampling_rate = std::max(report.sampling_rate, t.header.sampling_rate);
    if (t.damage) report.warnings.push_back(t.damage->message);
    if (t.lost_events > 0)
      report.warnings.push_back(std::to_string(t.lost_events) +
                                " events lost (recorder buffers full); figures may be incomplete");
    Walker walker(t, i, report);
    walker.Run();
    walker.Finish(requests);
  }
  for (auto& [key, entry] : requests) {
    RequestGroup& g = entry.first;
    g.device_class = std::get<0>(key);
    g.op = std::get<1>(key);
    g.latency = Summarize(std::move(entry.second));
    report.requests.push_back(std::move(g));
  }
  BuildGroups(report);
  return report;
}

std::string DetectionText(DetectionReason reason, int64_t detail) {
  switch (reason) {
    case DetectionReason::kSignal: return "signal " + std::to_string(detail);
    case DetectionReason::kExitCode: return "exit " + std::to_string(detail);
    case DetectionReason::kMissedHeartbeat:
    case DetectionReason::kDeadline:
    case DetectionReason::kProtocolViolation:
    case DetectionReason::kChannelEof:
    case DetectionReason::kProbeFailed:
    case DetectionReason::kStartupTimeout:
    case DetectionReason::kSpawnFailed:
    case DetectionReason::kUpgrade: break;
  }
  return DetectionReasonName(reason);
}

Result<Report> Analyze(const Trace& trace) { return Analyze(std::span<const Trace>(&trace, 1)); }

}  // namespace umbra::recorder
