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
// DriverHost implements Host (host.h), the interface shadows hold.
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
#include "runtime/supervisor/host.h"
#include "runtime/supervisor/misbehaviour.h"
#include "runtime/supervisor/restart_policy.h"

namespace boost::asio {
class io_context;
}
namespace umbra::recorder {
class Recorder;
}

namespace umbra::runtime {

struct DriverHostOptions {
  std::string device_name;
  std::string compatible;
  std::string device_class;
  std::string driver_binary;  // path, or a name FindDriverBinary resolves
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
  double log_burst = 1000;            // driver log lines allowed at once ...
  double log_lines_per_second = 500;  // ... and sustained; the rest are counted and dropped
  std::string failpoints;             // armed in the driver before probe
  uint64_t seed = 0;
  hw::Device* hw = nullptr;                // emulated device handed to the driver (not owned)
  recorder::Recorder* recorder = nullptr;  // where lifecycle and recovery events go (not owned)
};

// A live update (Upgrade; docs/live-update.md).
struct UpgradeOptions {
  std::string binary;                    // the new driver: a path, or a name FindDriverBinary resolves
  int64_t probation_ns = 1'000'000'000;  // a crash or hang of the new driver within this rolls back
  int64_t timeout_ns = 30'000'000'000;   // the caller waits at most this long for the outcome
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

class DriverHost final : public Host {
 public:
  // Created by Supervisor::AddDevice; `io` is the supervisor's loop.
  static Result<std::unique_ptr<DriverHost>> Create(boost::asio::io_context& io, DriverHostOptions options);
  ~DriverHost() override;
  DriverHost(const DriverHost&) = delete;
  DriverHost& operator=(const DriverHost&) = delete;

  const std::string& name() const override;
  DeviceState state() const override;
  // The most recent detection (if any) and the reason the device failed.
  std::vector<Detection> detections() const override;
  DriverHostStats stats() const override;
  uint64_t instance() const;
  pid_t driver_pid() const;

  void set_listener(DriverHostListener* listener) override;  // not owned; set before Start

  // The recorder events go to (Recorder::Off() when none) and this device's id in it.
  recorder::Recorder& recorder() const override;
  uint32_t recorder_device() const override;

  // Lifecycle (thread-safe; the work happens on the event loop).
  void Start() override;
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
  void Kill(int signal) override;
  // Blocks the calling (non-loop) thread until the state is kRunning.
  Result<void> WaitUntilRunning(int64_t timeout_ns);
  Result<void> WaitForState(DeviceState s, int64_t timeout_ns);

  // ---- data path (one client thread) ----

  // Buffers in the pool, for payloads. Alloc returns the offset, or nullopt.
  std::optional<uint32_t> AllocBuffer() override;
  void FreeBuffer(uint32_t offset) override;
  std::byte* buffer(uint32_t offset) override;
  uint32_t buffer_size() const override;

  // Queues up to requests.size() requests; returns how many were accepted
  // (fewer when the ring is full). kUnavailable while recovering,
  // kDeviceFailed once failed, kNoDevice when stopped.
  Result<size_t> Submit(std::span<const Request> requests) override;
  // Non-blocking: fills `out` with completions, returns how many.
  size_t Poll(std::span<Completion> out) override;
  // Spins briefly, then blocks until at least one completion or `timeout_ns`.
  size_t Wait(std::span<Completion> out, int64_t timeout_ns) override;
  // Requests accepted and not yet completed.
  size_t in_flight() const;

  // ---- control path (any thread but the loop) ----

  Result<std::string> Call(uint32_t method, std::string body, int64_t timeout_ns) override;
  // Several calls in one message: the driver runs them in order and answers
  // each (one wake-up of the driver, not one per call). Their bodies in
  // order, or the first call's error (the calls after a failed one are not
  // run). `timeout_ns` bounds the whole batch.
  Result<std::vector<std::string>> CallBatch(std::vector<DriverCall> calls, int64_t timeout_ns) override;

  // Arms a failpoint spec in the running driver and in every driver started
  // after it (the spec's parse errors come back from the driver).
  Result<void> SetFailpoints(const std::string& spec, int64_t timeout_ns = 2'000'000'000) override;
  // Arms a failpoint spec in the running driver only: a driver started after
  // it gets the spec SetFailpoints last gave (a live fault injected into a
  // running machine must not crash the driver that replaces its victim).
  Result<void> ArmFailpointsInRunningDriver(const std::string& spec, int64_t timeout_ns = 2'000'000'000);
  // The running driver's failpoint sites with their hit and trigger counts.
  Result<std::vector<FailpointCount>> QueryFailpoints(int64_t timeout_ns = 2'000'000'000) override;

  // Asks the driver to stop; kills it after the grace period. Blocks until done.
  void Shutdown() override;

  // Used by the supervisor and tests: the event-loop side.
  class Impl;

 private:
  explicit DriverHost(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace umbra::runtime
