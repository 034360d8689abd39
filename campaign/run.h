// One campaign run: set up a workload, inject its fault plan, run, verify,
// classify by what the application saw.
//
//   WorkloadRegistry registry;
//   RegisterBuiltinWorkloads(registry);
//   RunSpec spec{.index = 0, .seed = RunSeed(42, 0), .workload = "echo-stream",
//                .fault = FaultType::kSegfault};
//   RunRecord rec = UMBRA_TRY(RunOne(registry, spec));
//   rec.outcome == Outcome::kTransparent;
//
// Driver-side injections are armed one per driver instance: the first with
// DriverHost::SetFailpoints once the workload's shadow is passive, each next
// one (or nothing) from the engine's listener the moment the instance before
// it is declared down, so a restarted driver never inherits a used-up fault.
// Host-side injections are signals the engine sends from Progress();
// kill_during_recovery kills again as soon as the new driver has probed,
// while the shadow is still replaying (a double fault).
//
// Thread safety: RunOne may run on several threads at once (each run has its
// own Supervisor and driver processes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faultinject/plan.h"
#include "shadows/builtin/builtin.h"  // RegisterBuiltinWorkloads
#include "shadows/workload.h"
#include "base/result.h"
#include "shadows/shadow.h"

namespace umbra::recorder {
class Recorder;
}

namespace umbra::faultinject::campaign {

// What the application saw.
enum class Outcome {
  kTransparent,  // completed and verified, no error seen
  // The application saw the driver's lie, and the workload's class says its
  // shadow cannot see that lie (Workload::Unseen: a driver that answers
  // EIO, ...): a malfunction by design, not a bug.
  kExpected,
  kMalfunction,  // errors seen or verification failed, not by design: a bug; the host is up
  kFailed,       // the device was given up on (shadow failed); the host is up
  kHostCrash,    // the process running the run died (must never happen)
};
inline constexpr int kOutcomeCount = 5;
std::string_view OutcomeName(Outcome o);  // "transparent", "expected" ...
char OutcomeLetter(Outcome o);            // T, E, M, F, C
std::optional<Outcome> FindOutcome(std::string_view name);

std::string_view ModeName(shadows::RecoveryMode mode);  // "shadow", "restart-only"
std::optional<shadows::RecoveryMode> FindMode(std::string_view name);

struct RunSpec {
  uint64_t index = 0;
  uint64_t seed = 0;
  std::string workload;
  FaultType fault = FaultType::kSegfault;
  shadows::RecoveryMode mode = shadows::RecoveryMode::kShadow;
  uint64_t units = 0;             // 0: the workload's default
  std::optional<FaultPlan> plan;  // replaces the plan the seed derives (shrinking)
};

// Supervision settings every run's devices get: short, so that faults are
// detected and recovered quickly.
struct RunOptions {
  int64_t heartbeat_period_ns = 10'000'000;
  int64_t request_deadline_ns = 200'000'000;
  uint32_t restart_budget = 50;
  int64_t restart_window_ns = 10'000'000'000;
  bool warm_standby = false;
  int64_t settle_timeout_ns = 5'000'000'000;  // waiting for the shadow to be passive again
  // When set, every run records into it (not owned; outlives the runs): a
  // RunMarker around the run, the devices' lifecycle and recovery events,
  // host-side injections as FaultInjected, and the verification as
  // WorkloadVerified. Each run's devices are named "<name>@r<index>" so that
  // runs never share a device in the trace.
  recorder::Recorder* recorder = nullptr;
};

// One recovery of the run, from the shadow's RecoveryRecord.
struct RecoveryFigures {
  std::string reason;       // DetectReasonName
  int64_t detect_ns = -1;   // injection → detection (host-side faults only)
  int64_t restart_ns = -1;  // detection → new driver probed
  int64_t replay_ns = -1;   // probed → passive (replay, reopen, resubmit)
  int64_t gap_ns = -1;      // detection → passive
  uint32_t attempts = 0;
  bool succeeded = false;
  bool operator==(const RecoveryFigures&) const = default;
};

struct RunRecord {
  uint64_t index = 0;
  uint64_t seed = 0;
  std::string workload;
  std::string device;
  std::string device_class;
  FaultType fault = FaultType::kSegfault;
  std::string site;  // of the first injection
  std::string plan;  // FormatPlan
  shadows::RecoveryMode mode = shadows::RecoveryMode::kShadow;
  Outcome outcome = Outcome::kTransparent;
  uint64_t injected = 0;    // faults that fired
  uint64_t detections = 0;  // driver deaths the host detected
  uint64_t restarts = 0;
  std::vector<RecoveryFigures> recoveries;
  uint64_t units = 0;
  uint64_t units_done = 0;
  uint64_t errors = 0;
  std::string first_error;
  bool verified = false;
  std::string verification;
  std::string shadow_state;
  int64_t wall_ns = 0;
  std::string note;  // a host crash's cause; why an expected outcome is by design
  // The process that ran the run, right after it: pid, resident memory and
  // open descriptors (0 when not measured). A soak compares them over a
  // process's life.
  int64_t host_pid = 0;
  uint64_t host_rss_kb = 0;
  uint64_t host_fds = 0;
};

// The command that replays the run: "--replay SEED --workload W --fault F [--mode M]".
std::string ReplayArgs(const RunRecord& record);

// Runs one run. Fails (rather than recording an outcome) when the run could
// not be set up: an unknown workload, no site for the fault, a driver that
// does not start. A set-up during which the driver was declared dead before
// any fault was armed (a missed heartbeat on a loaded machine) is tried
// again, up to three times, from a new Supervisor.
Result<RunRecord> RunOne(const WorkloadRegistry& registry, const RunSpec& spec, const RunOptions& options = {});

// For `umbra failpoints list`: runs `units` units of the first workload whose
// driver is `driver` with every failpoint counting (nothing injected), and
// returns the driver's sites with their hit and trigger counts.
Result<std::vector<runtime::FailpointCount>> ProbeFailpoints(const WorkloadRegistry& registry, std::string_view driver,
                                                             uint64_t units, const std::string& spec = "");
// The drivers the registered workloads run, sorted ("disk", "echo" ...).
std::vector<std::string> WorkloadDrivers(const WorkloadRegistry& registry);

}  // namespace umbra::faultinject::campaign
