// DriverHost::Impl: the event-loop side of a DriverHost (driver_host.h).
//
// Private to runtime/supervisor. The class is declared here and defined in
// one file per concern; each group of declarations below names its file:
//   driver_host.cc         the public DriverHost, forwarding to Impl
//   driver_host_names.cc   names of states and detection reasons
//   instance_lifecycle.cc  spawn, handshake, standby, ready, kill, parking
//   control_messages.cc    control messages from the driver, checked
//   recovery.cc            detection and the recovery sequence
//   watchdog.cc            heartbeats, deadlines and idle CPU in own time
//   request_slots.cc       the data path's request slot table
//   sync_calls.cc          synchronous control calls (Call and friends)
//   failpoint_calls.cc     failpoint calls into the running driver
//   upgrade.cc             live update
//
// Thread safety: as DriverHost; every member not marked "guarded by mu_"
// belongs to the loop thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "recorder/recorder.h"
#include "runtime/ipc/control_channel.h"
#include "runtime/sandbox/cgroup.h"
#include "runtime/supervisor/cpu_time.h"
#include "runtime/supervisor/driver_host.h"
#include "runtime/supervisor/spawn.h"
#include "umbra/control.pb.h"

namespace umbra::runtime {

namespace asio = boost::asio;
using proto::DriverToHost;
using proto::HostToDriver;

inline constexpr int64_t kMs = 1'000'000;
// How long to wait for the exit status after EOF or an Exiting message before
// settling for the less precise reason (and killing a process stuck in exit).
// A process that really exits is reaped as soon as it is gone; the grace only
// bounds a process that hangs on its way out. The detection time is when the
// EOF or Exiting message arrived, not when the status did.
inline constexpr int64_t kExitStatusGraceNs = 500 * kMs;
inline constexpr size_t kMaxLogLine = 4096;
// How long after a driver became ready its replacement standby is spawned:
// after the shadow's replay and first requests (about a millisecond), so
// that the spawn (a clone on this loop) is off the recovery's path. The
// standby then starts at idle priority (SpawnStandby), so that its exec and
// warm-up take only a CPU nobody else wants, and a second fault soon after
// the first still finds a spare.
inline constexpr int64_t kStandbyDelayNs = 5 * kMs;
// How long a new standby stays at idle priority: on a busy machine an idle
// process may not run for hundreds of milliseconds, and a standby that has
// not finished starting is no spare.
inline constexpr int64_t kStandbyIdleNs = 20 * kMs;
// How long after a recovery the drivers it stopped are killed: their
// teardown must not land on the first requests the successor serves.
inline constexpr int64_t kParkedKillDelayNs = 20 * kMs;
// At most this many stopped drivers wait (faults coming faster than the
// delay): each holds its memory and two of the host's descriptors.
inline constexpr size_t kMaxParked = 8;
inline constexpr size_t kMaxNameLength = 128;

inline asio::steady_timer::duration Nanos(int64_t ns) { return std::chrono::nanoseconds(ns); }

// The recorder's name for a detection reason (driver_host_names.cc).
recorder::DetectionReason ToRecorder(DetectReason r);

// One driver process, from spawn to reaping.
struct Instance {
  // kStandby: a warm spare, attached ahead of time and idle until a Probe.
  enum class Phase { kSpawned, kAttaching, kStandby, kProbing, kReady, kDead };

  Instance(asio::io_context& io, uint64_t n, SpawnedProcess p, ipc::ControlChannel c)
      : number(n), pid(p.pid), pidfd(std::move(p.pidfd)), control(std::move(c)), control_watch(io, control.fd()),
        pid_watch(io, pidfd.get()), deadline(io), exit_grace(io), hurry(io) {}
  ~Instance() {
    // The descriptors are owned by `control` and `pidfd`, not by Asio.
    control_watch.release();
    pid_watch.release();
  }

  uint64_t number;
  pid_t pid;
  UniqueFd pidfd;               // exit notification; reaped through it
  ipc::ControlChannel control;  // host end of the socketpair
  asio::posix::stream_descriptor control_watch;
  asio::posix::stream_descriptor pid_watch;
  asio::steady_timer deadline;                      // handshake / probe deadline
  std::unique_ptr<ExitWatch> exit_watch;            // opened at spawn; snapshot before the signal
  std::unique_ptr<sandbox::InstanceCgroup> cgroup;  // its processes; killed and removed when reaped
  std::optional<MisbehaviourWatch> misbehaviour;    // floods, CPU held while idle
  asio::steady_timer exit_grace;                    // waiting for the exit status
  asio::steady_timer hurry;                         // a standby's time at idle priority
  Phase phase = Phase::kSpawned;
  bool killed = false;
  bool pinned = false;  // kept off the host loop's CPU (AwayFromThisCpu)
  bool parked = false;  // stopped (SIGSTOP), to be killed after the recovery
  bool reaped = false;
  bool awaiting_exit = false;
  bool probe_on_attached = false;     // a standby promoted before it had attached
  bool idle_priority = false;         // a standby spawned at SCHED_IDLE, not yet hurried
  std::optional<Detection> fallback;  // used if the exit status does not come
  int64_t spawned_ns = 0;
  int64_t last_heartbeat_ns = 0;
  int64_t last_heartbeat_own_ns = 0;  // the device's own time at that heartbeat
  uint64_t last_heartbeat_seq = 0;
  DriverInfo info;   // its binary, and its Hello's name and version
  DriverToHost msg;  // reused receive buffer
};

struct PendingCall {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<std::string>> result;
  uint64_t id = 0;          // assigned on the loop; 0 until sent
  int64_t sent_ns = 0;      // when it went to the driver (loop thread only)
  int64_t sent_own_ns = 0;  // the device's own time then, at most (loop thread only)
  void Finish(Result<std::string> r) {
    std::lock_guard lock(mu);
    if (!result) result = std::move(r);
    cv.notify_all();
  }
};

class DriverHost::Impl {
 public:
  // ---- instance_lifecycle.cc: the instance life cycle: spawn, handshake, standby, ready, kill and parking ----

  Impl(asio::io_context& io, DriverHostOptions options, std::unique_ptr<ipc::DataChannel> data);
  void Start();
  void ResetFailed();
  void Kill(int sig);
  void BeginShutdown();
  void MaybeFinishShutdown();
  // Starts a driver process of `binary` (default: the device's own).
  Result<std::shared_ptr<Instance>> Spawn(const std::string* binary = nullptr);
  // The next instance's cgroup, when it is sandboxed (null when no hierarchy
  // can be written: the PID namespace alone then ends its processes). Made
  // ahead of time when it can be (PrepareCgroup), so that a spawn does not
  // wait for three mkdirs.
  std::unique_ptr<sandbox::InstanceCgroup> SandboxCgroup();
  std::unique_ptr<sandbox::InstanceCgroup> MakeCgroup();
  void PrepareCgroup();
  void StartInstance();
  // A standby still on its way (spawned, or attached but not yet answered)
  // takes over all the same: it is further along than a fresh spawn would
  // be. Spawned: its Hello gets Attach and Probe, as for any new driver.
  // Attaching: its Attached gets the Probe (probe_on_attached).
  bool PromoteUnfinishedStandby();
  void SpawnStandby();
  // A standby about to take over runs at the ordinary priority again.
  static void Hurry(Instance& inst);
  void ArmDeadline(const std::shared_ptr<Instance>& inst, int64_t ns, const char* what);
  // Attach, and unless the instance is a standby, Probe right behind it: the
  // driver reads it as soon as it has attached, which saves a round trip
  // through this loop on every restart.
  void SendAttach(const std::shared_ptr<Instance>& inst, bool then_probe);
  // A standby taking over: it attached when it was spawned, so only the
  // probe is left (with the failpoint spec current now).
  void SendProbe(const std::shared_ptr<Instance>& inst);
  // A standby probes in tens of microseconds: watch its channel for the
  // answer for a moment rather than sleep, which would add the wake-up of
  // this loop's virtual CPU to every failover. Bounded; the event loop takes
  // over from there. (Not a Spin that gives way: the standby is already on a
  // CPU, and a runnable thread it woke is no reason to sleep here.)
  void AwaitProbeDone(const std::shared_ptr<Instance>& inst);
  // Keeps `inst` off the CPU this loop runs on, from its probe until the next
  // standby is spawned: woken by this loop, the scheduler would otherwise
  // often queue it right here, behind the loop that waits for it, or put the
  // client the loop wakes next on the same CPU as the spinning driver.
  static void AwayFromThisCpu(Instance& inst);
  // Back to the host's CPUs, which a driver inherits at spawn.
  static void AnyCpu(Instance& inst);
  // A standby will take over: wake it now, off this CPU, so that it is
  // running by the time its Probe comes (its wake-up overlaps the wait for
  // the failed driver and the quiesce).
  void WakeStandby();
  void OnReady(const std::shared_ptr<Instance>& inst);
  void KillInstance(std::shared_ptr<Instance> inst, bool park = false);
  // The driver was made leader of its own process group, so its children
  // get the signal too. Until the driver is reaped its pid, and with it the
  // group's id, cannot be reused; only a driver that left its group (or a
  // group emptied of it) needs the pidfd.
  static void Signal(Instance& inst, int sig);
  // Stopped drivers of recoveries that are over (or given up) are killed
  // now: their teardown no longer competes with one.
  void KillParked();
  void SetState(DeviceState s);
  Result<void> WaitForState(DeviceState want, int64_t timeout_ns);

  // ---- control_messages.cc: control messages from the driver: reading, checking, answering ----

  void WatchControl(const std::shared_ptr<Instance>& inst);
  // Handles the datagrams waiting on the control channel, a bounded batch so
  // that a flooding driver cannot starve the loop. False when the instance is
  // dead (or its channel closed) and must not be watched again.
  bool ReadPending(const std::shared_ptr<Instance>& inst);
  // The process announced its end (EOF, Exiting): the exit status is moments
  // away; wait a little for it so that the reason is exact.
  void AwaitExitStatus(const std::shared_ptr<Instance>& inst, Detection fallback);
  void Violation(const std::shared_ptr<Instance>& inst, std::string what);
  static bool ValidName(const std::string& s);
  // Returns false when the instance was declared dead.
  bool OnMessage(const std::shared_ptr<Instance>& inst, const DriverToHost& m);
  // One handler per message; each returns false when the instance was
  // declared dead.
  bool OnHello(const std::shared_ptr<Instance>& inst, const proto::Hello& h);
  bool OnAttached(const std::shared_ptr<Instance>& inst);
  bool OnProbeDone(const std::shared_ptr<Instance>& inst, const proto::ProbeDone& p);
  bool OnHeartbeat(const std::shared_ptr<Instance>& inst, const proto::Heartbeat& h);
  bool OnStats(const std::shared_ptr<Instance>& inst, const proto::Stats& s);
  bool OnCrash(const std::shared_ptr<Instance>& inst, const proto::Crash& c);
  bool OnControlAnswer(const std::shared_ptr<Instance>& inst, const DriverToHost& m);
  bool OnReply(const std::shared_ptr<Instance>& inst, const proto::Reply& r);
  // The driver's failpoint struck: into the trace at the time it says (within
  // the instance's life), so that the fault's detection can be timed.
  bool OnFailpointFired(const std::shared_ptr<Instance>& inst, const proto::FailpointFired& f);
  // Into the trace at the time the driver says (within the instance's life);
  // false when the report is malformed.
  bool RecordFailpointFired(const Instance& inst, const proto::FailpointFired& f);
  // What a driver that just died had said but the host not yet read: only
  // its failpoint reports matter now (the rest dies with it).
  void ReadFaultReports(Instance& inst);
  void OnLog(const proto::Log& log);

  // ---- recovery.cc: detection and recovery sequencing ----

  // Recovery phases are recorded only while recovering; a phase still open
  // when a new one begins (a double fault) ends as aborted.
  void BeginPhase(recorder::RecoveryPhase phase);
  void EndPhase(recorder::RecoveryPhase phase);
  void WatchExit(const std::shared_ptr<Instance>& inst);
  void OnExited(const std::shared_ptr<Instance>& inst);
  // True when the driver process has exited and waits to be reaped (it is
  // not reaped here): the loop may run a timer before the exit's wake-up.
  static bool HasExited(const Instance& inst);
  // A killed driver may still be running on another core for a moment (the
  // kernel delivers SIGKILL at its next entry, and a virtual CPU can be
  // descheduled in between): until it has left user space it can still write
  // to the rings, the pool and the emulated device. Those are reset and handed
  // to the next driver only after this returns. Bounded: past the bound the
  // recovery goes on (and says so) rather than stall the device.
  void AwaitLeftUserSpace(Instance& inst);
  // A driver that forked: its children were stopped with its group, but a
  // stop takes effect when each next runs. Kill the whole instance instead
  // and wait, bounded like AwaitLeftUserSpace, until its cgroup is empty:
  // no process of it may touch the rings once they are reset.
  void EndLeftovers(const std::shared_ptr<Instance>& inst);
  void OnDetect(const std::shared_ptr<Instance>& inst, Detection d);
  void MarkFailed(const Detection& d);
  // Stops the data path: completions the driver published before it stopped
  // are handed out as they are, every other request in flight completes with
  // `code`, and the rings start empty for the next driver. The client is woken.
  void FenceDataPath(Errc code);
  // A completion in the ring was finished by the driver before it died (or
  // was stopped): its request is done, not interrupted. Taken through the
  // same checks as Poll, into the queue Poll hands out first. A completion
  // that fails them ends the collection; the driver is being replaced
  // anyway, so the violation is not held against its successor. (mu_ held.)
  void CollectPublishedLocked();
  void FailPendingCalls(Errc code, const std::string& why);

  // ---- watchdog.cc: the watchdog: heartbeats, deadlines, idle CPU, ring checks in own time ----

  void ArmWatchdog();
  bool CurrentIsReady() const;
  // Hangs are judged in the driver's own time (cpu_time.h): the CPU it got
  // while it is runnable, the wall clock while it sleeps, so that a driver
  // starved by load is never called hung, while one that spins or blocks
  // still is. A driver on its way out (EOF or Exiting seen) is judged by its
  // exit.
  void OnWatchdog();
  // Starts the own-time clock for the driver that just became ready.
  void StartOwnTime(const Instance& inst, int64_t now);
  // Brings the device's own-time clock up to `now` (a look at /proc) and
  // returns it. The clock runs on across driver instances.
  int64_t AdvanceOwnTime(int64_t now, Heard heard = Heard::kNotLately);
  // The own time now, at most: as of the last look, plus all the wall time
  // since (as if the driver had not waited for a CPU since). Submissions are
  // stamped with it, so that a deadline can come late but never early. (mu_ held.)
  int64_t OwnTimeUpperBoundLocked(int64_t now) const;
  // Two heartbeat periods of the driver's own time without a heartbeat.
  std::optional<std::string> MissedHeartbeat(int64_t now);
  // A driver that burns a CPU with nothing to do (a spinning thread while
  // another keeps heartbeating) is a hang in all but name.
  std::optional<std::string> CheckIdleCpu(int64_t now);
  // A driver can scribble over ring indices without ringing any doorbell;
  // look at them once per tick so that it cannot pass for a hang.
  std::optional<std::string> CheckRings();
  // The oldest request in flight, by own time at submission, if it is
  // older than the deadline on the wall clock (else nothing to look at).
  std::optional<std::pair<uint64_t, int64_t>> OldestRequestPastWallDeadline(int64_t now) const;
  // A request older than the deadline in the driver's own time: a hang.
  std::optional<std::string> OldestRequestPastDeadline(int64_t now);
  // A control call the driver has not answered within the request deadline
  // (in its own time) is a hang too (a handler stuck, or a reply it dropped).
  std::optional<std::string> OldestCallPastDeadline(int64_t now);
  std::optional<std::string> TakeDataPathViolation();

  // ---- request_slots.cc: the data path: the request slot table, Submit, Poll, Wait ----

  Result<size_t> Submit(std::span<const Request> reqs);
  size_t PollLocked(std::span<Completion> out);
  size_t Poll(std::span<Completion> out);
  // True when this thread should sleep at once instead of spinning: the
  // driver last ran on this very CPU and has the few requests outstanding
  // (a depth-1 client) in hand. Spinning would only keep it off the CPU for
  // our turn; sleeping gives it the CPU now, and it hands it back when it
  // wakes us (process_runtime.cc, PublishCompletions). With many requests
  // outstanding, completions keep coming and taking turns serves better.
  // The driver's CPU is its own word in the ring header: a hint that can
  // only make this wait sleep sooner or later. (mu_ held, rings live.)
  bool HandOverTheCpu();
  size_t Wait(std::span<Completion> out, int64_t timeout_ns);
  Errc StateErrc() const;
  std::string StateMessage() const;

  // ---- sync_calls.cc: synchronous control calls ----

  // Sends a message made by `build(id)` and waits for the answer correlated
  // by that id (a Reply, or a failpoint answer).
  Result<std::string> SendAndWait(std::function<HostToDriver(uint64_t id)> build, int64_t timeout_ns,
                                  const std::string& what);
  // One message made by `build(first_id)` that asks for `n` answers,
  // correlated by the ids first_id .. first_id + n - 1: waits for them in
  // order and returns their bodies, or the first error (the answers still
  // to come are taken when they come).
  Result<std::vector<std::string>> SendAndWaitAll(size_t n, std::function<HostToDriver(uint64_t first_id)> build,
                                                  int64_t timeout_ns, const std::string& what);
  // On the loop: numbers the calls, sends their message, and tracks them
  // (their deadline runs from now).
  void SendPending(const std::vector<std::shared_ptr<PendingCall>>& calls,
                   const std::function<HostToDriver(uint64_t first_id)>& build);
  Result<std::string> Call(uint32_t method, std::string body, int64_t timeout_ns);
  Result<std::vector<std::string>> CallBatch(std::vector<DriverCall> batch, int64_t timeout_ns);

  // ---- upgrade.cc: live update ----

  void BeginUpgrade(const UpgradeOptions& o, std::string binary, std::function<void(Result<UpgradeResult>)> done);
  // Before the switch: the old driver was never touched and keeps serving.
  void Refuse(std::string why);
  // The new driver has attached: the old one is asked to stop (Remove: its
  // PrepareStop and Stop run, then it says RemoveDone and exits). The shadow
  // is told first, so that it holds new requests from now on; the old
  // driver may complete what it has in flight until then (or until its grace
  // runs out, when it is killed).
  void SwitchDrivers();
  // The old driver has stopped its device (RemoveDone) or is gone: it is
  // killed (its exit is not waited for: the teardown of a process and its
  // namespaces is not the device's business, only that it left user space), the device is
  // quiesced, what it left in flight is taken back, and the new driver takes
  // over (or, if it died meanwhile, the old binary starts again).
  void ContinueUpgrade();
  void OnCandidateLost(const Detection& d);
  void StartProbation();
  // The probation is over: the new binary is the device's from now on, and
  // so is its standby.
  void CommitUpgrade();
  void RollBack(const Detection& d);
  void FinishUpgrade(UpgradeResult r);

  // Statistics are read by other threads under mu_.
  template <class F>
  void Count(F&& f) {
    std::lock_guard lock(mu_);
    f();
  }

  // One upgrade in progress: the new driver from spawn to the end of its
  // probation, the old one while it stops.
  struct Upgrade {
    explicit Upgrade(asio::io_context& io) : timer(io) {}
    std::string old_binary;
    std::string new_binary;
    int64_t probation_ns = 0;
    std::shared_ptr<Instance> candidate;  // the new driver
    std::shared_ptr<Instance> old;        // the old driver, from its stop until it is reaped
    bool switched = false;                // the old driver was told to stop
    std::string lost;                     // why the candidate died before it took over
    int64_t stop_ns = 0;
    asio::steady_timer timer;  // the candidate's handshake, then its probation
    std::function<void(Result<UpgradeResult>)> done;
  };

  struct Slot {
    uint64_t id = 0;  // 0: free; else a RequestCookie of the slot and its generation
    uint64_t cookie = 0;
    uint32_t offset = 0;
    uint32_t capacity = 0;
    int64_t submitted_ns = 0;      // MonotonicNanos at submission
    int64_t submitted_own_ns = 0;  // the device's own time then, at most
    uint32_t generation = 0;       // of the slot's latest id (RequestCookie), kept while free
  };

  asio::io_context& io_;
  DriverHostOptions options_;
  std::string binary_;
  std::string driver_name_;
  DriverHostListener* listener_ = nullptr;

  // Kept for the device's whole life: each driver instance maps the same region.
  std::unique_ptr<ipc::DataChannel> data_;
  RestartPolicy policy_;
  asio::steady_timer watchdog_;
  asio::steady_timer restart_timer_;
  asio::steady_timer parked_timer_;  // KillParked after a recovery
  recorder::Recorder& rec_;          // Recorder::Off() when the user asked for none
  recorder::DeviceId rec_id_;
  std::optional<recorder::RecoveryPhase> open_phase_;  // begun, not yet ended
  int64_t watchdog_tick_ns_;
  // The current driver's CPU accounting, from its OnReady; loop thread only.
  std::unique_ptr<OwnTime> own_time_;

  std::unique_ptr<Upgrade> upgrade_;                // a live update in progress, if any
  std::shared_ptr<Instance> current_;               // the driver serving the device
  std::shared_ptr<Instance> standby_;               // warm spare, handshake done
  std::vector<std::shared_ptr<Instance>> reaping_;  // killed, exit not yet collected
  std::vector<std::shared_ptr<Instance>> parked_;   // stopped by a recovery still going on
  std::atomic<uint64_t> instance_counter_{0};
  uint64_t cgroup_counter_ = 0;                           // names the groups (loop thread)
  std::unique_ptr<sandbox::InstanceCgroup> next_cgroup_;  // made ahead for the next spawn
  int64_t recovering_since_ns_ = 0;
  bool shutting_down_ = false;
  std::unordered_map<uint64_t, std::shared_ptr<PendingCall>> calls_;
  uint64_t call_counter_ = 0;
  double log_tokens_ = 0;  // starts full: see the constructor
  int64_t log_refill_ns_ = 0;

  std::mutex state_mu_;
  std::condition_variable state_cv_;
  std::atomic<DeviceState> state_{DeviceState::kStopped};

  // Guarded by mu_: the data path and what recovery fences.
  mutable std::mutex mu_;
  bool rings_live_ = false;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> free_buffers_;
  std::vector<Completion> interrupted_;
  size_t in_flight_ = 0;
  std::string data_violation_;
  int64_t up_since_ns_ = -1;
  // The device's own-time clock (OwnTime, summed over its driver instances):
  // its value as of the last look at /proc, and when that was.
  int64_t own_ns_ = 0;
  int64_t own_wall_ns_ = 0;
  int64_t own_base_ns_ = 0;  // own_ns_ when the current driver became ready
  DriverHostStats stats_;
  DriverInfo info_;  // of the driver that last became ready
  std::vector<Detection> detections_;
  std::map<std::string, uint64_t> driver_counters_;
};

}  // namespace umbra::runtime
