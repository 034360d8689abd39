// DriverHost: one device's driver, kept running in its own process.
//
// The host side of everything a driver process is: it spawns the driver
// (posix_spawn, or takes a warm standby), performs the handshake (Hello →
// Attach with the data region and doorbells as SCM_RIGHTS → Attached → Probe →
// ProbeDone), serves the data path (Submit/Poll/Wait on shared-memory rings)
// and the control path (Call), watches the process (pidfd, channel EOF,
// protocol violations, heartbeats, per-request deadlines), and on any failure
// turns it into one recovery path: kill the process group, report in-flight
// requests as interrupted, restart under the RestartPolicy, or mark the device
// failed when the budget is spent.
//
//   Supervisor sup;                       // owns the event loop thread
//   DriverHostOptions o{.device_name = "echo0", .driver_binary = path};
//   DriverHost& echo = *UMBRA_TRY(sup.AddDevice(o));
//   UMBRA_TRY(echo.WaitUntilRunning(1s));
//   echo.Submit({&req, 1});  ...  echo.Wait(out, timeout);
//
// State machine (docs/runtime.md draws it):
//   kStopped → kStarting (Start) → kRunning (OnProbeDone)
//   kRunning → kRecovering (Detect) → kRunning (OnProbeDone) | kFailed (budget)
//   kFailed → kStarting (ResetFailed);  any → kStopping → kStopped (Shutdown)
//
// Thread safety: the data-path calls (Submit, Poll, Wait, buffers) may be made
// from any one client thread at a time; Call and the accessors from any
// thread. Everything else runs on the supervisor's event loop thread. The data
// path takes `mu_` once per batch; recovery takes it briefly to fence the
// rings.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/hw/device.h"
#include "runtime/ipc/data_channel.h"
#include "runtime/sandbox/sandbox.h"
#include "runtime/supervisor/misbehaviour.h"
#include "runtime/supervisor/restart_policy.h"

namespace boost::asio {
class io_context;
}
namespace umbra::recorder {
class Recorder;
}

namespace umbra::runtime {

enum class DeviceState { kStopped, kStarting, kRunning, kRecovering, kFailed, kStopping };
const char* DeviceStateName(DeviceState s);

// Why a driver instance was declared dead.
enum class DetectReason {
  kExit,               // exited by itself; code = exit status
  kSignal,             // killed by a signal; code = signal number
  kChannelEof,         // closed its control channel
  kProtocolViolation,  // sent something invalid; detail says what
  kMissedHeartbeat,    // no heartbeat for two periods (a hang)
  kRequestDeadline,    // a request outlived its deadline (a hang)
  kProbeFailed,        // probe returned an error
  kHandshakeTimeout,   // no Hello/Attached/ProbeDone in time
  kSpawnFailed,        // the binary could not be started
  kHostRequest,        // the host killed it (fault injection, tests)
  kUpgrade,            // not a fault: replaced by a live update (Upgrade)
};
const char* DetectReasonName(DetectReason r);

struct Detection {
  DetectReason reason = DetectReason::kExit;
  int code = 0;            // exit status or signal number
  std::string detail;      // human-readable
  int64_t at_ns = 0;       // when it was detected (MonotonicNanos)
  uint64_t instance = 0;   // which driver instance
  std::string ToString() const;
};

struct DriverHostOptions {
  std::string device_name;
  std::string compatible;
  std::string device_class;
  std::string driver_binary;             // path, or a name FindDriverBinary resolves
  std::vector<std::string> driver_args;
  ipc::DataChannelOptions data;
  int64_t heartbeat_period_ns = 50'000'000;
  int64_t request_deadline_ns = 2'000'000'000;
  int64_t handshake_deadline_ns = 5'000'000'000;
  int64_t probe_deadline_ns = 5'000'000'000;
  int64_t shutdown_grace_ns = 500'000'000;
  RestartPolicy::Options restart;
  bool warm_standby = false;
  bool inherit_stdio = false;
  bool core_dumps = false;
  // The sandbox each driver instance runs in (runtime/sandbox/sandbox.h);
  // on unless turned off, which is logged.
  sandbox::SandboxOptions sandbox;
  // Control-message floods and CPU held while idle (misbehaviour.h).
  MisbehaviourLimits misbehaviour;
  std::map<std::string, std::string> settings;
  double log_burst = 1000;               // driver log lines allowed at once ...
  double log_lines_per_second = 500;     // ... and sustained; the rest are counted and dropped
  std::string failpoints;                // armed in the driver before probe
  uint64_t seed = 0;
  hw::Device* hw = nullptr;              // emulated device handed to the driver (not owned)
  recorder::Recorder* recorder = nullptr;  // where lifecycle and recovery events go (not owned)
};

// A data-path request as the client sees it; `cookie` is the client's own tag
// and never leaves the host.
struct Request {
  uint16_t op = 0;
  uint16_t flags = 0;
  uint32_t offset = 0;   // payload in the buffer pool
  uint32_t length = 0;
  uint32_t capacity = 0; // bytes the driver may write back at `offset` (>= length)
  uint64_t arg = 0;
  uint64_t cookie = 0;
};

struct Completion {
  uint64_t cookie = 0;
  int32_t status = 0;    // 0, or an Errc value (kInterrupted when the driver died)
  uint32_t length = 0;   // bytes produced (validated against the request's capacity)
  uint64_t arg = 0;
};

// Told about the driver's life; called on the supervisor thread.
class DriverHostListener {
 public:
  virtual ~DriverHostListener() = default;
  virtual void OnDriverDown(const Detection&) {}
  virtual void OnDriverReady(uint64_t /*instance*/, int64_t /*recovery_ns*/) {}
  virtual void OnDeviceFailed(const Detection&) {}
  virtual void OnDriverLog(int /*level*/, const std::string& /*text*/) {}
};

// A live update (Upgrade; docs/live-update.md).
struct UpgradeOptions {
  std::string binary;                      // the new driver: a path, or a name FindDriverBinary resolves
  int64_t probation_ns = 1'000'000'000;    // a crash or hang of the new driver within this rolls back
  int64_t timeout_ns = 30'000'000'000;     // the caller waits at most this long for the outcome
};

struct UpgradeResult {
  bool upgraded = false;       // true: the new driver serves; false: the old one does
  std::string reason;          // why not (refused before the switch, or rolled back)
  bool rolled_back = false;    // the switch happened and was undone
  std::string driver_version;  // what the serving driver reported in its Hello
  int64_t gap_ns = 0;          // old driver told to stop → new driver ready (0 if it never was)
};

// Which driver serves the device: its program and what it said in its Hello.
struct DriverInfo {
  std::string binary;
  std::string name;
  std::string version;
};

struct FailpointCount {
  std::string site;
  uint64_t hits = 0;
  uint64_t triggers = 0;
};

struct DriverHostStats {
  uint64_t restarts = 0;
  uint64_t requests_submitted = 0;
  uint64_t requests_completed = 0;
  uint64_t requests_interrupted = 0;
  uint64_t protocol_violations = 0;
  uint64_t log_lines = 0;
  uint64_t log_lines_suppressed = 0;
  uint64_t heartbeats = 0;
  uint64_t waits_handed_over = 0;        // Waits that slept at once: the driver runs on the waiter's CPU
  int64_t last_recovery_ns = 0;          // detect → ready of the latest recovery
};

class DriverHost {
 public:
  // Created by Supervisor::AddDevice; `io` is the supervisor's loop.
  static Result<std::unique_ptr<DriverHost>> Create(boost::asio::io_context& io,
                                                    DriverHostOptions options);
  ~DriverHost();
  DriverHost(const DriverHost&) = delete;
  DriverHost& operator=(const DriverHost&) = delete;

  const std::string& name() const;
  DeviceState state() const;
  // The most recent detection (if any) and the reason the device failed.
  std::vector<Detection> detections() const;
  DriverHostStats stats() const;
  uint64_t instance() const;
  pid_t driver_pid() const;

  void set_listener(DriverHostListener* listener);  // not owned; set before Start

  // The recorder events go to (Recorder::Off() when none) and this device's id in it.
  recorder::Recorder& recorder() const;
  uint32_t recorder_device() const;

  // Lifecycle (thread-safe; the work happens on the event loop).
  void Start();
  void ResetFailed();
  // Replaces the running driver with another binary through a planned
  // recovery: the new driver is spawned and attached as a standby (its Hello
  // must carry this protocol version, or it is refused before the old driver
  // is touched); then the shadow is told the driver is going (it holds new
  // requests), the old driver is asked to stop and may finish what it has in
  // flight, the rest is taken back for resubmission, and the new driver is
  // probed and replayed like any restarted one. Until `probation_ns` has
  // passed, a failed probe, a crash or a hang of the new driver brings the
  // old binary back, never counted against the restart budget. Blocks the
  // calling (non-loop) thread until the outcome is known. Errors: kUnavailable
  // (not running), kBusy (an upgrade in progress), kNotFound (no such binary),
  // kTimeout.
  Result<UpgradeResult> Upgrade(const UpgradeOptions& options);
  DriverInfo driver_info() const;

  // Kills the current driver the way a fault would (host-side fault injection).
  // A SIGKILL counts as detected when it is sent. Nothing happens while no
  // driver instance exists (between a crash and a delayed restart).
  void Kill(int signal);
  // Blocks the calling (non-loop) thread until the state is kRunning.
  Result<void> WaitUntilRunning(int64_t timeout_ns);
  Result<void> WaitForState(DeviceState s, int64_t timeout_ns);

  // ---- data path (one client thread) ----

  // Buffers in the pool, for payloads. Alloc returns the offset, or nullopt.
  std::optional<uint32_t> AllocBuffer();
  void FreeBuffer(uint32_t offset);
  std::byte* buffer(uint32_t offset);
  uint32_t buffer_size() const;

  // Queues up to requests.size() requests; returns how many were accepted
  // (fewer when the ring is full). kUnavailable while recovering,
  // kDeviceFailed once failed, kNoDevice when stopped.
  Result<size_t> Submit(std::span<const Request> requests);
  // Non-blocking: fills `out` with completions, returns how many.
  size_t Poll(std::span<Completion> out);
  // Spins briefly, then blocks until at least one completion or `timeout_ns`.
  size_t Wait(std::span<Completion> out, int64_t timeout_ns);
  // Requests accepted and not yet completed.
  size_t in_flight() const;

  // ---- control path (any thread but the loop) ----

  Result<std::string> Call(uint32_t method, std::string body, int64_t timeout_ns);

  // Arms a failpoint spec in the running driver and in every driver started
  // after it (the spec's parse errors come back from the driver).
  Result<void> SetFailpoints(const std::string& spec, int64_t timeout_ns = 2'000'000'000);
  // Arms a failpoint spec in the running driver only: a driver started after
  // it gets the spec SetFailpoints last gave (a live fault injected into a
  // running machine must not crash the driver that replaces its victim).
  Result<void> ArmFailpointsInRunningDriver(const std::string& spec, int64_t timeout_ns = 2'000'000'000);
  // The running driver's failpoint sites with their hit and trigger counts.
  Result<std::vector<FailpointCount>> QueryFailpoints(int64_t timeout_ns = 2'000'000'000);

  // Asks the driver to stop; kills it after the grace period. Blocks until done.
  void Shutdown();

  // Used by the supervisor and tests: the event-loop side.
  class Impl;

 private:
  explicit DriverHost(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace umbra::runtime
