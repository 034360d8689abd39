// Analysis: turns a trace into per-fault recovery figures and distributions.
//
//   Trace trace = UMBRA_TRY(ReadTrace(path));
//   Report report = UMBRA_TRY(Analyze(trace));
//   std::cout << RenderText(report);         // or RenderJson(report)
//
// Definitions (docs/recorder.md has the full text):
// - A fault episode starts at the first FaultInjected, DriverExited or
//   Detected event on a device that has no episode in recovery; a further
//   fault while one is recovering counts as a double fault of that episode.
// - Detection latency: Detected time − episode start (absent when the
//   episode started with the detection itself).
// - Phase time: the sum of PhaseBegin→PhaseEnd spans of that phase.
// - Recovery time: end of the resume phase − detection (or episode start).
// - Gap: on the episode's device, the last successful RequestCompleted at or
//   before the episode start, to the first successful RequestCompleted after
//   it. With no completion before, the gap starts at the episode start.
// - Percentiles are nearest-rank: the value at rank ceil(p/100 · n).
//
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "recorder/event.h"
#include "base/result.h"

namespace umbra::recorder {

struct HistogramBucket {
  int64_t upper_ns = 0;  // values in (previous upper, upper_ns]
  uint64_t count = 0;
};

struct Distribution {
  uint64_t count = 0;
  int64_t min = 0;
  int64_t median = 0;
  int64_t p90 = 0;
  int64_t p99 = 0;
  int64_t max = 0;
  double mean = 0;
  // 1-2-5 buckets (1 µs, 2 µs, 5 µs, 10 µs …) from the min's bucket to the max's.
  std::vector<HistogramBucket> histogram;
};

// Summary statistics of `values` (any order). Empty input gives count 0.
Distribution Summarize(std::vector<int64_t> values);

enum class FaultEnd { kRecovered, kFailed, kUnfinished };
const char* FaultEndName(FaultEnd end);

struct PhaseSpan {
  RecoveryPhase phase;
  int64_t begin_ns;  // CLOCK_MONOTONIC, as in the trace
  int64_t end_ns;
  PhaseOutcome outcome;
};

// One fault episode. Times are CLOCK_MONOTONIC as in the trace.
struct FaultRecord {
  uint32_t trace_index = 0;  // which input trace
  DeviceId device = kNoDevice;
  std::string device_name;
  std::string device_class;
  std::string fault_type;  // the injected action, or how the crash showed ("signal 11")
  std::string site;
  uint64_t seed = 0;
  uint32_t faults = 1;   // > 1: more faults hit during recovery (double faults)
  int64_t start_ns = 0;  // fault injected, or crash seen
  std::optional<int64_t> detected_ns;
  std::optional<DetectionReason> reason;
  int64_t reason_detail = 0;  // the first Detected's detail (signal or exit code)
  std::optional<int64_t> detection_latency_ns;
  std::array<std::optional<int64_t>, kPhaseCount> phase_ns{};
  std::optional<int64_t> recovered_ns;  // end of the resume phase
  std::optional<int64_t> recovery_ns;
  int64_t gap_begin_ns = 0;
  std::optional<int64_t> gap_end_ns;
  std::optional<int64_t> gap_ns;
  std::array<uint64_t, kDispositionCount> disposed{};  // indexed by Disposition
  std::vector<PhaseSpan> phases;
  FaultEnd end = FaultEnd::kUnfinished;
};

// Distributions over the faults of one device class and fault type.
struct FaultGroup {
  std::string device_class;
  std::string fault_type;
  uint64_t faults = 0;
  uint64_t recovered = 0;
  uint64_t failed = 0;
  uint64_t unfinished = 0;
  Distribution gap;
  Distribution detection;
  Distribution recovery;
  std::array<Distribution, kPhaseCount> phases;
  std::array<uint64_t, kDispositionCount> disposed{};
};

// Completed requests of one device class and op (counts scaled by sampling).
struct RequestGroup {
  std::string device_class;
  RequestOp op = RequestOp::kOther;
  uint64_t ok = 0;
  uint64_t failed = 0;       // the driver or the shadow failed it
  uint64_t interrupted = 0;  // in the driver when it died, or when the device stopped (fenced)
  uint64_t bytes = 0;
  Distribution latency;  // over the sampled completions
};

struct Verification {
  uint32_t trace_index = 0;
  std::string device_name;
  std::string workload;
  VerifyOutcome outcome = VerifyOutcome::kPassed;
  std::string detail;
};

struct Report {
  uint32_t traces = 0;
  int64_t duration_ns = 0;  // sum over traces of last − first event time
  uint64_t events = 0;
  uint64_t lost_events = 0;
  uint32_t sampling_rate = 1;         // the largest of the inputs'
  std::vector<std::string> warnings;  // damage, lost events
  std::vector<FaultRecord> faults;
  std::vector<FaultGroup> groups;
  std::vector<RequestGroup> requests;
  std::vector<Verification> verifications;
};

Result<Report> Analyze(const Trace& trace);

// How a detection names its fault: "signal 11", "exit 3", or the reason's
// name ("missed-heartbeat", "upgrade" …).
std::string DetectionText(DetectionReason reason, int64_t detail);
// Several traces (campaign shards, repeated runs) into one report.
Result<Report> Analyze(std::span<const Trace> traces);

// A fixed-width text table: summary, per-group distributions, per-fault rows.
std::string RenderText(const Report& report);
// The same content as one JSON object (docs/recorder.md lists the fields).
std::string RenderJson(const Report& report);

// The per-fault summary `umbra demo` prints: device, fault, site, how it was
// detected, detection, recovery and gap, the requests the shadow queued,
// dropped and replayed, and how it ended — the same figures as RenderText's
// per-fault table and RenderJson's "faults".
std::string RenderFaultSummary(const Report& report);
// RenderJson's "faults" array on its own.
std::string RenderFaultsJson(const Report& report);
// How the fault was detected: "signal 11", "exit 3", "missed-heartbeat"; "-"
// when it never was.
std::string DetectedAs(const FaultRecord& fault);

// "1.25 ms", "830.0 us", "12 ns".
std::string FormatDuration(int64_t ns);

}  // namespace umbra::recorder
