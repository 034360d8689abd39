// ExportText: one line per event, in time order, for reading a trace with
// grep and less (`umbra trace export TRACE --format text -o -`).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "recorder/export.h"
#include "base/overloaded.h"

namespace umbra::recorder {
namespace {

std::string Describe(const EventBody& body) {
  return std::visit(
      Overloaded{
          [](const RequestSubmitted& r) {
            return std::string("submitted ") + RequestOpName(r.op) + " size=" + std::to_string(r.size);
          },
          [](const RequestCompleted& r) {
            return std::string("completed ") + RequestOpName(r.op) + " " + RequestOutcomeName(r.outcome) +
                   " size=" + std::to_string(r.size) + " latency=" + FormatDuration(r.latency_ns);
          },
          [](const DriverSpawned& s) { return "spawned pid=" + std::to_string(s.pid); },
          [](const DriverReady&) { return std::string("ready"); },
          [](const DriverExited& x) {
            return std::string("exited ") + (x.kind == ExitKind::kSignal ? "signal " : "code ") +
                   std::to_string(x.value);
          },
          [](const FaultInjected& f) {
            return "fault " + f.action + " site=\"" + f.site + "\" seed=" + std::to_string(f.seed);
          },
          [](const Detected& d) {
            return std::string("detected ") + DetectionReasonName(d.reason) + " " + std::to_string(d.detail);
          },
          [](const PhaseBegin& p) { return std::string("begin ") + RecoveryPhaseName(p.phase); },
          [](const PhaseEnd& p) {
            return std::string("end ") + RecoveryPhaseName(p.phase) +
                   (p.outcome == PhaseOutcome::kDone ? " done" : " aborted");
          },
          [](const DeviceFailed&) { return std::string("device failed"); },
          [](const RequestsDisposed& r) {
            return std::string("disposed ") + DispositionName(r.disposition) + " " + std::to_string(r.count);
          },
          [](const LinkChanged& l) {
            return std::string("link ") + LinkEventName(l.event) + " supplier=" + std::to_string(l.supplier);
          },
          [](const WorkloadVerified& v) {
            return "verified " + v.workload + (v.outcome == VerifyOutcome::kPassed ? " passed " : " FAILED ") +
                   v.detail;
          },
          [](const RunMarker& m) {
            return std::string("run ") + (m.kind == RunMarkerKind::kBegin ? "begin " : "end ") + m.run_id;
          },
      },
      body);
}

}  // namespace

Result<void> ExportText(const Trace& trace, std::ostream& out) {
  std::vector<const Event*> order;
  order.reserve(trace.events.size());
  for (const Event& e : trace.events) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Event* a, const Event* b) { return a->time_ns < b->time_ns; });
  const int64_t t0 = order.empty() ? 0 : order.front()->time_ns;
  char stamp[32];
  for (const Event* e : order) {
    std::snprintf(stamp, sizeof stamp, "%12.6f ", static_cast<double>(e->time_ns - t0) / 1e6);
    out << stamp << trace.DeviceName(e->device) << ' ' << Describe(e->body) << '\n';
  }
  out.flush();
  if (!out) return Fail(Errc::kIo, "writing the text export failed");
  return {};
}

}  // namespace umbra::recorder
