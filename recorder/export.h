// Exporters: a trace as something a person can look at.
//
//   std::ofstream json("trace.json");
//   UMBRA_TRY(ExportChrome(trace, json));        // open in https://ui.perfetto.dev
//   std::ofstream html("report.html");
//   UMBRA_TRY(WriteHtmlReport(trace, report, html));
//
// ExportChrome writes Chrome trace-event JSON: one process track per device
// (named "nic0 (net)"), recovery phases and the whole recovery as complete
// ("X") slices, the application-visible gap as a slice on its own thread,
// faults, detections and driver lifecycle as instant ("i") events, and the
// device's completed-requests throughput as a counter ("C") track.
//
// WriteHtmlReport writes one self-contained HTML file (inline CSS and SVG, no
// script, no network): per device, throughput over time with each crash and
// recovery marked; the gap distribution as a histogram; the report's tables.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <ostream>
#include <vector>

#include "recorder/analysis.h"
#include "recorder/event.h"
#include "base/result.h"

namespace umbra::recorder {

Result<void> ExportChrome(const Trace& trace, std::ostream& out);
// One line per event in time order: milliseconds since the first event, the
// device, what happened ("completed transmit ok size=64 latency=80.0 us").
Result<void> ExportText(const Trace& trace, std::ostream& out);

// `report` is Analyze(trace), or a merged report whose trace 0 is `trace`: the
// throughput plots mark the faults of trace 0; the tables show all faults.
Result<void> WriteHtmlReport(const Trace& trace, const Report& report, std::ostream& out);

// Successful completions per second of `device`, in bins of `bin_ns` from
// `begin_ns` to `end_ns` (scaled by the trace's sampling rate). An event at
// exactly `end_ns` counts in the last bin.
struct ThroughputBin {
  int64_t begin_ns;
  double per_second;
};
std::vector<ThroughputBin> Throughput(const Trace& trace, DeviceId device, int64_t begin_ns, int64_t end_ns,
                                      int64_t bin_ns);

// The first and last event times of the trace (0, 0 when it has none).
std::pair<int64_t, int64_t> TimeSpan(const Trace& trace);

}  // namespace umbra::recorder
