#include "runtime/supervisor/driver_host.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <optional>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "base/spin.h"
#include "base/tsan.h"
#include "runtime/ipc/control_channel.h"
#include "recorder/recorder.h"
#include "runtime/supervisor/cpu_time.h"
#include "runtime/sandbox/cgroup.h"
#include "runtime/sandbox/seccomp.h"
#include "runtime/supervisor/spawn.h"
#include "umbra/control.pb.h"

namespace umbra::runtime {

namespace asio = boost::asio;
using proto::DriverToHost;
using proto::HostToDriver;

const char* DeviceStateName(DeviceState s) {
  switch (s) {
    case DeviceState::kStopped: return "stopped";
    case DeviceState::kStarting: return "starting";
    case DeviceState::kRunning: return "running";
    case DeviceState::kRecovering: return "recovering";
    case DeviceState::kFailed: return "failed";
    case DeviceState::kStopping: return "stopping";
  }
  return "?";
}

const char* DetectReasonName(DetectReason r) {
  switch (r) {
    case DetectReason::kExit: return "exit";
    case DetectReason::kSignal: return "signal";
    case DetectReason::kChannelEof: return "channel-eof";
    case DetectReason::kProtocolViolation: return "protocol-violation";
    case DetectReason::kMissedHeartbeat: return "missed-heartbeat";
    case DetectReason::kRequestDeadline: return "request-deadline";
    case DetectReason::kProbeFailed: return "probe-failed";
    case DetectReason::kHandshakeTimeout: return "handshake-timeout";
    case DetectReason::kSpawnFailed: return "spawn-failed";
    case DetectReason::kHostRequest: return "host-request";
    case DetectReason::kUpgrade: return "upgrade";
  }
  return "?";
}

std::string Detection::ToString() const {
  std::string s = DetectReasonName(reason);
  if (reason == DetectReason::kExit) s += " code " + std::to_string(code);
  if (reason == DetectReason::kSignal) s += std::string(" ") + sigabbrev_np(code);
  if (!detail.empty()) s += ": " + detail;
  return s;
}

namespace {

constexpr int64_t kMs = 1'000'000;
// How long to wait for the exit status after EOF or an Exiting message before
// settling for the less precise reason (and killing a process stuck in exit).
// A process that really exits is reaped as soon as it is gone; the grace only
// bounds a process that hangs on its way out. The detection time is when the
// EOF or Exiting message arrived, not when the status did.
constexpr int64_t kExitStatusGraceNs = 500 * kMs;
constexpr size_t kMaxLogLine = 4096;
// How long after a driver became ready its replacement standby is spawned.
constexpr int64_t kStandbyDelayNs = 50 * kMs;
// How long after a recovery the drivers it stopped are killed: their
// teardown must not land on the first requests the successor serves.
constexpr int64_t kParkedKillDelayNs = 20 * kMs;
// At most this many stopped drivers wait (faults coming faster than the
// delay): each holds its memory and two of the host's descriptors.
constexpr size_t kMaxParked = 8;
constexpr size_t kMaxNameLength = 128;

asio::steady_timer::duration Nanos(int64_t ns) { return std::chrono::nanoseconds(ns); }

recorder::DetectionReason ToRecorder(DetectReason r) {
  switch (r) {
    case DetectReason::kExit: return recorder::DetectionReason::kExitCode;
    case DetectReason::kSignal: return recorder::DetectionReason::kSignal;
    case DetectReason::kChannelEof: return recorder::DetectionReason::kChannelEof;
    case DetectReason::kProtocolViolation: return recorder::DetectionReason::kProtocolViolation;
    case DetectReason::kMissedHeartbeat: return recorder::DetectionReason::kMissedHeartbeat;
    case DetectReason::kRequestDeadline: return recorder::DetectionReason::kDeadline;
    case DetectReason::kProbeFailed: return recorder::DetectionReason::kProbeFailed;
    case DetectReason::kHandshakeTimeout: return recorder::DetectionReason::kStartupTimeout;
    case DetectReason::kSpawnFailed: return recorder::DetectionReason::kSpawnFailed;
    case DetectReason::kHostRequest: return recorder::DetectionReason::kSignal;
    case DetectReason::kUpgrade: return recorder::DetectionReason::kUpgrade;
  }
  return recorder::DetectionReason::kSignal;
}

int WaitPidfd(int pidfd, siginfo_t& info, int flags) {
  std::memset(&info, 0, sizeof info);
  return static_cast<int>(syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | flags, nullptr));
}

}  // namespace

// One driver process, from spawn to reaping.
struct Instance {
  // kStandby: a warm spare, attached ahead of time and idle until a Probe.
  enum class Phase { kSpawned, kAttaching, kStandby, kProbing, kReady, kDead };

  Instance(asio::io_context& io, uint64_t n, SpawnedProcess p, ipc::ControlChannel c)
      : number(n),
        pid(p.pid),
        pidfd(std::move(p.pidfd)),
        control(std::move(c)),
        control_watch(io, control.fd()),
        pid_watch(io, pidfd.get()),
        deadline(io),
        exit_grace(io) {}
  ~Instance() {
    // The descriptors are owned by `control` and `pidfd`, not by Asio.
    control_watch.release();
    pid_watch.release();
  }

  uint64_t number;
  pid_t pid;
  UniqueFd pidfd;                         // exit notification; reaped through it
  ipc::ControlChannel control;            // host end of the socketpair
  asio::posix::stream_descriptor control_watch;
  asio::posix::stream_descriptor pid_watch;
  asio::steady_timer deadline;            // handshake / probe deadline
  std::unique_ptr<ExitWatch> exit_watch;  // opened at spawn; snapshot before the signal
  std::unique_ptr<sandbox::InstanceCgroup> cgroup;  // its processes; killed and removed when reaped
  std::optional<MisbehaviourWatch> misbehaviour;    // floods, CPU held while idle
  asio::steady_timer exit_grace;          // waiting for the exit status
  Phase phase = Phase::kSpawned;
  bool killed = false;
  bool pinned = false;                    // kept off the host loop's CPU (AwayFromThisCpu)
  bool parked = false;                    // stopped (SIGSTOP), to be killed after the recovery
  bool reaped = false;
  bool awaiting_exit = false;
  bool probe_on_attached = false;         // a standby promoted before it had attached
  std::optional<Detection> fallback;      // used if the exit status does not come
  int64_t spawned_ns = 0;
  int64_t last_heartbeat_ns = 0;
  int64_t last_heartbeat_own_ns = 0;      // the device's own time at that heartbeat
  uint64_t last_heartbeat_seq = 0;
  DriverInfo info;                        // its binary, and its Hello's name and version
  DriverToHost msg;                       // reused receive buffer
};

struct PendingCall {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<std::string>> result;
  uint64_t id = 0;  // assigned on the loop; 0 until sent
  int64_t sent_ns = 0;  // when it went to the driver (loop thread only)
  int64_t sent_own_ns = 0;  // the device's own time then, at most (loop thread only)
  void Finish(Result<std::string> r) {
    std::lock_guard lock(mu);
    if (!result) result = std::move(r);
    cv.notify_all();
  }
};

class DriverHost::Impl {
 public:
  Impl(asio::io_context& io, DriverHostOptions options, std::unique_ptr<ipc::DataChannel> data)
      : io_(io),
        options_(std::move(options)),
        data_(std::move(data)),
        policy_(options_.restart),
        watchdog_(io),
        restart_timer_(io),
        parked_timer_(io),
        rec_(options_.recorder ? *options_.recorder : recorder::Recorder::Off()),
        rec_id_(rec_.RegisterDevice(options_.device_name, options_.device_class)),
        slots_(data_->layout().ring_entries) {
    for (uint32_t i = 0; i < slots_.size(); ++i) free_slots_.push_back(slots_.size() - 1 - i);
    for (uint32_t i = 0; i < data_->buffer_count(); ++i) {
      free_buffers_.push_back(data_->buffer_offset(data_->buffer_count() - 1 - i));
    }
    interrupted_.reserve(slots_.size());
    log_tokens_ = options_.log_burst;
    log_refill_ns_ = MonotonicNanos();
    watchdog_tick_ns_ = std::max<int64_t>(
        std::min(options_.heartbeat_period_ns, options_.request_deadline_ns) / 4, 250'000);
  }

  // ---------------- lifecycle (loop thread) ----------------

  void Start() {
    if (state_ != DeviceState::kStopped && state_ != DeviceState::kFailed) return;
    SetState(DeviceState::kStarting);
    // The device may read and write payloads in the pool itself, if its
    // driver asks it to (docs/block.md, "Payloads in place"); until the
    // host stops.
    if (options_.hw != nullptr) options_.hw->MapHostMemory({data_->pool(), data_->pool_size()});
    ArmWatchdog();
    StartInstance();
  }

  void ResetFailed() {
    if (state_ != DeviceState::kFailed) return;
    policy_.Reset();
    SetState(DeviceState::kStopped);
    Start();
  }

  void Kill(int sig) {
    if (!current_ || current_->phase == Instance::Phase::kDead) return;
    if (sig == SIGKILL) {
      // The host knows a SIGKILL it sends is fatal: recovery starts now (and
      // KillInstance sends it), not when the exit becomes visible.
      OnDetect(current_, Detection{.reason = DetectReason::kSignal, .code = SIGKILL,
                                   .detail = "sent by the host"});
      return;
    }
    // The driver reports catchable signals itself; a stop is a hang.
    (void)syscall(SYS_pidfd_send_signal, current_->pidfd.get(), sig, nullptr, 0);
  }

  void BeginShutdown() {
    if (upgrade_) {
      if (upgrade_->old) KillInstance(upgrade_->old);
      FinishUpgrade({.reason = "the device was stopped during the upgrade"});
    }
    shutting_down_ = true;
    restart_timer_.cancel();
    SetState(DeviceState::kStopping);
    FenceDataPath(Errc::kNoDevice);
    FailPendingCalls(Errc::kNoDevice, "device stopped");
    if (standby_) KillInstance(std::move(standby_));
    KillParked();
    if (current_) {
      auto inst = current_;
      HostToDriver m;
      m.mutable_shutdown();
      (void)inst->control.Send(m, {}, ipc::Blocking::kDontWait);
      inst->deadline.expires_after(Nanos(options_.shutdown_grace_ns));
      inst->deadline.async_wait([this, inst](const boost::system::error_code&) {
        if (!inst->reaped) KillInstance(inst);
      });
      reaping_.push_back(inst);
      current_.reset();
    }
    MaybeFinishShutdown();
  }

  void MaybeFinishShutdown() {
    if (!shutting_down_ || !reaping_.empty()) return;
    watchdog_.cancel();
    next_cgroup_.reset();
    if (options_.hw != nullptr) options_.hw->MapHostMemory({});
    SetState(DeviceState::kStopped);
  }

  // Statistics are read by other threads under mu_.
  template <class F>
  void Count(F&& f) {
    std::lock_guard lock(mu_);
    f();
  }

  // Recovery phases are recorded only while recovering; a phase still open
  // when a new one begins (a double fault) ends as aborted.
  void BeginPhase(recorder::RecoveryPhase phase) {
    if (recovering_since_ns_ == 0) return;
    if (open_phase_) rec_.PhaseEnd(rec_id_, *open_phase_, recorder::PhaseOutcome::kAborted);
    rec_.PhaseBegin(rec_id_, phase);
    open_phase_ = phase;
  }
  void EndPhase(recorder::RecoveryPhase phase) {
    if (open_phase_ != phase) return;
    rec_.PhaseEnd(rec_id_, phase);
    open_phase_.reset();
  }

  // ---------------- spawning and the handshake ----------------

  // Starts a driver process of `binary` (default: the device's own).
  Result<std::shared_ptr<Instance>> Spawn(const std::string* binary = nullptr) {
    auto [host_end, driver_end] = UMBRA_TRY(ipc::ControlChannel::CreatePair());
    std::unique_ptr<sandbox::InstanceCgroup> cgroup = SandboxCgroup();
    SpawnRequest req{.binary = binary ? *binary : binary_,
                     .args = options_.driver_args,
                     .control_fd = driver_end.fd(),
                     .inherit_stdio = options_.inherit_stdio,
                     .core_dumps = options_.core_dumps,
                     .sandbox = &options_.sandbox,
                     .cgroup = cgroup.get()};
    SpawnedProcess p = UMBRA_TRY(SpawnDriver(req));
    auto inst = std::make_shared<Instance>(io_, ++instance_counter_, std::move(p),
                                           std::move(host_end));
    inst->cgroup = std::move(cgroup);
    inst->misbehaviour.emplace(options_.misbehaviour);
    // The next one's cgroup, while this driver runs its exec on another CPU.
    asio::post(io_, [this] { PrepareCgroup(); });
    inst->spawned_ns = MonotonicNanos();
    inst->info.binary = req.binary;
    // Its /proc files opened now, while it runs its exec: a recovery does
    // not wait for that.
    inst->exit_watch = std::make_unique<ExitWatch>(inst->pid);
    rec_.DriverSpawned(rec_id_, inst->pid);
    WatchControl(inst);
    WatchExit(inst);
    return inst;
  }

  // The next instance's cgroup, when it is sandboxed (null when no hierarchy
  // can be written: the PID namespace alone then ends its processes). Made
  // ahead of time when it can be (PrepareCgroup), so that a spawn does not
  // wait for three mkdirs.
  std::unique_ptr<sandbox::InstanceCgroup> SandboxCgroup() {
    if (next_cgroup_) return std::move(next_cgroup_);
    return MakeCgroup();
  }
  std::unique_ptr<sandbox::InstanceCgroup> MakeCgroup() {
    const sandbox::SandboxOptions& o = options_.sandbox;
    if (o.mode != sandbox::SandboxMode::kOn || !o.cgroup) return nullptr;
    return sandbox::InstanceCgroup::Create(options_.device_name + "." + std::to_string(++cgroup_counter_), o.limits);
  }
  void PrepareCgroup() {
    if (!next_cgroup_ && !shutting_down_) next_cgroup_ = MakeCgroup();
  }

  void StartInstance() {
    BeginPhase(recorder::RecoveryPhase::kRestart);
    if (standby_ && standby_->phase == Instance::Phase::kStandby) {
      current_ = std::move(standby_);
      if (!current_->pinned) AwayFromThisCpu(*current_);
      SendProbe(current_);
      AwaitProbeDone(current_);
      return;
    }
    if (standby_ && PromoteUnfinishedStandby()) return;
    if (standby_) KillInstance(std::move(standby_));
    auto inst = Spawn();
    if (!inst) {
      OnDetect(nullptr, Detection{.reason = DetectReason::kSpawnFailed,
                                  .detail = inst.error().message,
                                  .at_ns = MonotonicNanos()});
      return;
    }
    current_ = *inst;
    ArmDeadline(current_, options_.handshake_deadline_ns, "no Hello from the driver");
  }

  // A standby still on its way (spawned, or attached but not yet answered)
  // takes over all the same: it is further along than a fresh spawn would
  // be. Spawned: its Hello gets Attach and Probe, as for any new driver.
  // Attaching: its Attached gets the Probe (probe_on_attached).
  bool PromoteUnfinishedStandby() {
    switch (standby_->phase) {
      case Instance::Phase::kSpawned: break;
      case Instance::Phase::kAttaching: standby_->probe_on_attached = true; break;
      case Instance::Phase::kStandby:
      case Instance::Phase::kProbing:
      case Instance::Phase::kReady:
      case Instance::Phase::kDead: return false;
    }
    current_ = std::move(standby_);
    if (!current_->pinned) AwayFromThisCpu(*current_);
    ArmDeadline(current_, options_.handshake_deadline_ns, "the standby did not finish its handshake");
    return true;
  }

  void SpawnStandby() {
    if (!options_.warm_standby || standby_ || shutting_down_) return;
    auto inst = Spawn();
    if (!inst) {
      spdlog::warn("[{}] cannot spawn a warm standby: {}", options_.device_name,
                   inst.error().message);
      return;
    }
    standby_ = *inst;
  }

  void ArmDeadline(const std::shared_ptr<Instance>& inst, int64_t ns, const char* what) {
    inst->deadline.expires_after(Nanos(ns));
    inst->deadline.async_wait([this, inst, what](const boost::system::error_code& ec) {
      if (ec || inst != current_ || inst->phase == Instance::Phase::kReady) return;
      OnDetect(inst, Detection{.reason = DetectReason::kHandshakeTimeout, .detail = what});
    });
  }

  // Attach, and unless the instance is a standby, Probe right behind it: the
  // driver reads it as soon as it has attached, which saves a round trip
  // through this loop on every restart.
  void SendAttach(const std::shared_ptr<Instance>& inst, bool then_probe) {
    HostToDriver m;
    auto* a = m.mutable_attach();
    a->set_protocol_version(proto::PROTOCOL_VERSION_CURRENT);
    auto* dev = a->mutable_device();
    dev->set_name(options_.device_name);
    dev->set_compatible(options_.compatible);
    dev->set_device_class(options_.device_class);
    dev->set_instance(inst->number);
    a->set_heartbeat_period_us(static_cast<uint32_t>(options_.heartbeat_period_ns / 1000));
    const auto& l = data_->layout();
    auto* d = a->mutable_data();
    d->set_region_size(l.region_size);
    d->set_submit_ring_offset(l.submit_ring_offset);
    d->set_complete_ring_offset(l.complete_ring_offset);
    d->set_ring_entries(l.ring_entries);
    d->set_pool_offset(l.pool_offset);
    d->set_pool_size(l.pool_size);
    d->set_buffer_size(l.buffer_size);
    std::vector<int> fds{data_->region().fd(), data_->submit_doorbell().fd(),
                         data_->complete_doorbell().fd()};
    a->add_fds(proto::FD_ROLE_DATA_REGION);
    a->add_fds(proto::FD_ROLE_SUBMIT_DOORBELL);
    a->add_fds(proto::FD_ROLE_COMPLETE_DOORBELL);
    if (options_.hw != nullptr) {
      hw::Resources r = options_.hw->resources();
      auto* h = a->mutable_hw();
      h->set_region_size(r.region_size);
      h->set_registers_offset(r.registers_offset);
      h->set_registers_size(r.registers_size);
      h->set_dma_offset(r.dma_offset);
      h->set_dma_size(r.dma_size);
      fds.insert(fds.end(), {r.region_fd, r.doorbell_fd, r.interrupt_fd});
      a->add_fds(proto::FD_ROLE_HW_REGION);
      a->add_fds(proto::FD_ROLE_HW_DOORBELL);
      a->add_fds(proto::FD_ROLE_HW_INTERRUPT);
    }
    for (const auto& [k, v] : options_.settings) {
      auto* setting = a->add_settings();
      setting->set_key(k);
      setting->set_value(v);
    }
    // A standby gets the failpoints with its Probe: the spec may change
    // before it takes over, and its idle heartbeats must not count as hits.
    if (then_probe) a->set_failpoints(options_.failpoints);
    a->set_seed(options_.seed);
    a->set_standby(!then_probe);
    inst->phase = Instance::Phase::kAttaching;
    HostToDriver probe;
    probe.mutable_probe();
    auto sent = inst->control.Send(m, fds, ipc::Blocking::kDontWait);
    if (sent && then_probe) sent = inst->control.Send(probe, {}, ipc::Blocking::kDontWait);
    if (!sent) {
      OnDetect(inst, Detection{.reason = DetectReason::kChannelEof, .detail = sent.error().message});
      return;
    }
    ArmDeadline(inst, options_.handshake_deadline_ns, "no Attached from the driver");
  }

  // A standby taking over: it attached when it was spawned, so only the
  // probe is left (with the failpoint spec current now).
  void SendProbe(const std::shared_ptr<Instance>& inst) {
    HostToDriver m;
    m.mutable_probe()->set_failpoints(options_.failpoints);
    if (auto sent = inst->control.Send(m, {}, ipc::Blocking::kDontWait); !sent) {
      OnDetect(inst, Detection{.reason = DetectReason::kChannelEof, .detail = sent.error().message});
      return;
    }
    inst->phase = Instance::Phase::kProbing;
    EndPhase(recorder::RecoveryPhase::kRestart);
    BeginPhase(recorder::RecoveryPhase::kProbe);
    ArmDeadline(inst, options_.probe_deadline_ns, "probe did not finish in time");
  }

  // A standby probes in tens of microseconds: watch its channel for the
  // answer for a moment rather than sleep, which would add the wake-up of
  // this loop's virtual CPU to every failover. Bounded; the event loop takes
  // over from there. (Not a Spin that gives way: the standby is already on a
  // CPU, and a runnable thread it woke is no reason to sleep here.)
  void AwaitProbeDone(const std::shared_ptr<Instance>& inst) {
    constexpr int64_t kBudgetNs = 250'000;
    const int64_t until = MonotonicNanos() + kBudgetNs;
    while (inst->phase == Instance::Phase::kProbing && MonotonicNanos() < until) {
      pollfd p{inst->control.fd(), POLLIN, 0};
      if (::poll(&p, 1, 0) == 1 && !ReadPending(inst)) return;
    }
  }

  // Keeps `inst` off the CPU this loop runs on, from its probe until the next
  // standby is spawned: woken by this loop, the scheduler would otherwise
  // often queue it right here, behind the loop that waits for it, or put the
  // client the loop wakes next on the same CPU as the spinning driver.
  static void AwayFromThisCpu(Instance& inst) {
    const int here = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    if (here < 0 || sched_getaffinity(0, sizeof set, &set) != 0) return;
    CPU_CLR(here, &set);
    if (CPU_COUNT(&set) == 0) return;
    if (sched_setaffinity(inst.pid, sizeof set, &set) == 0) inst.pinned = true;
  }
  // Back to the host's CPUs, which a driver inherits at spawn.
  static void AnyCpu(Instance& inst) {
    if (!inst.pinned) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) (void)sched_setaffinity(inst.pid, sizeof set, &set);
    inst.pinned = false;
  }

  // A standby will take over: wake it now, off this CPU, so that it is
  // running by the time its Probe comes (its wake-up overlaps the wait for
  // the failed driver and the quiesce).
  void WakeStandby() {
    if (!standby_ || standby_->phase != Instance::Phase::kStandby || standby_->pinned) return;
    AwayFromThisCpu(*standby_);
    HostToDriver wake;
    wake.mutable_wake();
    (void)standby_->control.Send(wake, {}, ipc::Blocking::kDontWait);
  }

  // ---------------- receiving ----------------

  void WatchControl(const std::shared_ptr<Instance>& inst) {
    inst->control_watch.async_wait(asio::posix::stream_descriptor::wait_read,
                                   [this, inst](const boost::system::error_code& ec) {
                                     if (ec || inst->phase == Instance::Phase::kDead) return;
                                     if (ReadPending(inst)) WatchControl(inst);
                                   });
  }

  // Handles the datagrams waiting on the control channel, a bounded batch so
  // that a flooding driver cannot starve the loop. False when the instance is
  // dead (or its channel closed) and must not be watched again.
  bool ReadPending(const std::shared_ptr<Instance>& inst) {
    for (int i = 0; i < 64; ++i) {
      auto fds = inst->control.Receive(inst->msg, ipc::Blocking::kDontWait);
      if (!fds) {
        if (fds.error().code == Errc::kUnavailable) return true;
        if (fds.error().code == Errc::kNoDevice) {
          AwaitExitStatus(inst, Detection{.reason = DetectReason::kChannelEof,
                                          .detail = "control channel closed"});
          return false;
        }
        Violation(inst, fds.error().message);
        return false;
      }
      if (!fds->empty()) {
        Violation(inst, "driver sent file descriptors");
        return false;
      }
      if (auto flood = inst->misbehaviour->OnMessage(MonotonicNanos())) {
        Violation(inst, *flood);
        return false;
      }
      if (!OnMessage(inst, inst->msg)) return false;
      if (inst->phase == Instance::Phase::kDead) return false;
    }
    return true;
  }

  void WatchExit(const std::shared_ptr<Instance>& inst) {
    inst->pid_watch.async_wait(asio::posix::stream_descriptor::wait_read,
                               [this, inst](const boost::system::error_code& ec) {
                                 if (ec) return;
                                 OnExited(inst);
                               });
  }

  void OnExited(const std::shared_ptr<Instance>& inst) {
    siginfo_t info;
    if (WaitPidfd(inst->pidfd.get(), info, WNOHANG) != 0 || info.si_pid == 0) {
      WatchExit(inst);  // spurious
      return;
    }
    inst->reaped = true;
    // Whatever it left behind dies with its group (and the group goes).
    inst->cgroup.reset();
    rec_.DriverExited(rec_id_, info.si_code == CLD_EXITED ? recorder::ExitKind::kCode
                                                          : recorder::ExitKind::kSignal,
                      info.si_status);
    inst->exit_grace.cancel();
    inst->deadline.cancel();
    Detection d{.at_ns = MonotonicNanos()};
    if (info.si_code == CLD_EXITED) {
      d.reason = DetectReason::kExit;
      d.code = info.si_status;
    } else {
      d.reason = DetectReason::kSignal;
      d.code = info.si_status;
    }
    if (inst->phase != Instance::Phase::kDead) {
      if (inst->fallback) d.at_ns = inst->fallback->at_ns;
      OnDetect(inst, d);
    }
    std::erase(reaping_, inst);
    if (upgrade_ && inst == upgrade_->old) ContinueUpgrade();
    MaybeFinishShutdown();
  }

  // The process announced its end (EOF, Exiting): the exit status is moments
  // away; wait a little for it so that the reason is exact.
  void AwaitExitStatus(const std::shared_ptr<Instance>& inst, Detection fallback) {
    if (inst->awaiting_exit || inst->phase == Instance::Phase::kDead) return;
    inst->awaiting_exit = true;
    fallback.at_ns = MonotonicNanos();
    inst->fallback = fallback;
    inst->exit_grace.expires_after(Nanos(kExitStatusGraceNs));
    inst->exit_grace.async_wait([this, inst](const boost::system::error_code& ec) {
      if (ec || inst->phase == Instance::Phase::kDead) return;
      OnDetect(inst, *inst->fallback);
    });
  }

  void Violation(const std::shared_ptr<Instance>& inst, std::string what) {
    Count([&] { ++stats_.protocol_violations; });
    OnDetect(inst, Detection{.reason = DetectReason::kProtocolViolation, .detail = std::move(what)});
  }

  static bool ValidName(const std::string& s) {
    return !s.empty() && s.size() <= kMaxNameLength &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  }

  // Returns false when the instance was declared dead.
  bool OnMessage(const std::shared_ptr<Instance>& inst, const DriverToHost& m) {
    using Phase = Instance::Phase;
    switch (m.msg_case()) {
      case DriverToHost::kHello: {
        if (inst->phase != Phase::kSpawned) return Violation(inst, "Hello twice"), false;
        const auto& h = m.hello();
        if (h.protocol_version() != proto::PROTOCOL_VERSION_CURRENT) {
          return Violation(inst, "protocol version " + std::to_string(h.protocol_version()) +
                                     ", expected " +
                                     std::to_string(proto::PROTOCOL_VERSION_CURRENT)),
                 false;
        }
        if (!ValidName(h.driver_name()) || h.driver_version().size() > kMaxNameLength) {
          return Violation(inst, "bad driver name or version in Hello"), false;
        }
        driver_name_ = h.driver_name();
        inst->info.name = h.driver_name();
        inst->info.version = h.driver_version();
        inst->deadline.cancel();
        // A standby is attached now and probed when it takes over: mapping
        // the regions then would cost a failover a few hundred microseconds.
        SendAttach(inst, /*then_probe=*/inst != standby_);
        return inst->phase != Phase::kDead;
      }
      case DriverToHost::kAttached: {
        if (inst->phase != Phase::kAttaching) return Violation(inst, "unexpected Attached"), false;
        if (inst->probe_on_attached) {  // a standby promoted while it attached
          inst->deadline.cancel();
          inst->phase = Phase::kStandby;
          SendProbe(inst);
          return inst->phase != Phase::kDead;
        }
        if (inst == standby_) {
          inst->deadline.cancel();
          inst->phase = Phase::kStandby;
          if (upgrade_ && inst == upgrade_->candidate && !upgrade_->switched) SwitchDrivers();
          return true;
        }
        inst->phase = Phase::kProbing;
        EndPhase(recorder::RecoveryPhase::kRestart);
        BeginPhase(recorder::RecoveryPhase::kProbe);
        ArmDeadline(inst, options_.probe_deadline_ns, "probe did not finish in time");
        return true;
      }
      case DriverToHost::kProbeDone: {
        if (inst->phase != Phase::kProbing) return Violation(inst, "unexpected ProbeDone"), false;
        if (m.probe_done().status() != 0) {
          OnDetect(inst, Detection{.reason = DetectReason::kProbeFailed,
                                   .code = m.probe_done().status(),
                                   .detail = m.probe_done().message().substr(0, kMaxLogLine)});
          return false;
        }
        OnReady(inst);
        return true;
      }
      case DriverToHost::kReply: return OnReply(inst, m.reply());
      case DriverToHost::kFailpointFired: return OnFailpointFired(inst, m.failpoint_fired());
      case DriverToHost::kHeartbeat: {
        if (inst->phase == Phase::kSpawned) {
          return Violation(inst, "heartbeat before attach"), false;
        }
        if (m.heartbeat().seq() <= inst->last_heartbeat_seq) {
          return Violation(inst, "heartbeat sequence went backwards"), false;
        }
        inst->last_heartbeat_seq = m.heartbeat().seq();
        inst->last_heartbeat_ns = MonotonicNanos();
        if (inst == current_ && inst->phase == Phase::kReady) {
          inst->last_heartbeat_own_ns = AdvanceOwnTime(inst->last_heartbeat_ns, Heard::kJustNow);
        }
        Count([&] { ++stats_.heartbeats; });
        return true;
      }
      case DriverToHost::kLog: OnLog(m.log()); return true;
      case DriverToHost::kStats: {
        if (m.stats().counters_size() > 256) return Violation(inst, "too many counters"), false;
        std::lock_guard lock(mu_);
        driver_counters_.clear();
        for (const auto& c : m.stats().counters()) {
          if (!ValidName(c.name())) continue;
          driver_counters_[c.name()] = c.value();
        }
        return true;
      }
      case DriverToHost::kCrash: {
        const int sig = m.crash().signal();
        if (sig <= 0 || sig >= 65) return Violation(inst, "crash with a bad signal number"), false;
        if (sig == SIGSYS && m.crash().denied_syscall_plus_one() > 0) {
          const int nr = m.crash().denied_syscall_plus_one() - 1;
          return Violation(inst, "system call " + sandbox::SyscallName(nr) + " (" + std::to_string(nr) +
                                     ") is not allowed by the sandbox"), false;
        }
        OnDetect(inst, Detection{.reason = DetectReason::kSignal, .code = sig,
                                 .detail = "reported by the driver's signal handler"});
        return false;
      }
      case DriverToHost::kExiting:
        AwaitExitStatus(inst, Detection{.reason = DetectReason::kExit,
                                        .detail = "driver called exit()"});
        return true;
      case DriverToHost::kRemoveDone:
      case DriverToHost::kFailpointsSet:
      case DriverToHost::kFailpointCounts:
        return OnControlAnswer(inst, m);
      case DriverToHost::MSG_NOT_SET:
        return Violation(inst, "empty message"), false;
    }
    return Violation(inst, "unknown message"), false;
  }

  bool OnControlAnswer(const std::shared_ptr<Instance>& inst, const DriverToHost& m) {
    // Failpoint answers are correlated like replies; they carry their id.
    uint64_t id = 0;
    std::string body;
    int32_t status = 0;
    std::string message;
    if (m.has_failpoints_set()) {
      id = m.failpoints_set().id();
      status = m.failpoints_set().status();
      message = m.failpoints_set().message();
    } else if (m.has_failpoint_counts()) {
      id = m.failpoint_counts().id();
      body = m.failpoint_counts().SerializeAsString();
    } else {
      // RemoveDone: the old driver of an upgrade has stopped its device.
      if (upgrade_ && inst == upgrade_->old) ContinueUpgrade();
      return inst->phase != Instance::Phase::kDead;
    }
    proto::Reply r;
    r.set_id(id);
    r.set_status(status);
    r.set_message(message);
    r.set_body(body);
    return OnReply(inst, r);
  }

  bool OnReply(const std::shared_ptr<Instance>& inst, const proto::Reply& r) {
    auto it = calls_.find(r.id());
    if (it == calls_.end()) return Violation(inst, "reply with unknown id " + std::to_string(r.id())), false;
    auto call = std::move(it->second);
    calls_.erase(it);
    if (r.status() == 0) {
      call->Finish(r.body());
    } else {
      const int s = r.status();
      Errc code = (s > 0 && s <= static_cast<int>(Errc::kInternal)) ? static_cast<Errc>(s)
                                                                   : Errc::kInternal;
      call->Finish(Fail(code, r.message().substr(0, kMaxLogLine)));
    }
    return true;
  }

  // The driver's failpoint struck: into the trace at the time it says (within
  // the instance's life), so that the fault's detection can be timed.
  bool OnFailpointFired(const std::shared_ptr<Instance>& inst, const proto::FailpointFired& f) {
    if (!RecordFailpointFired(*inst, f)) return Violation(inst, "bad site or action in FailpointFired"), false;
    return true;
  }

  // Into the trace at the time the driver says (within the instance's life);
  // false when the report is malformed.
  bool RecordFailpointFired(const Instance& inst, const proto::FailpointFired& f) {
    if (!ValidName(f.site()) || !ValidName(f.action())) return false;
    const int64_t at = std::clamp<int64_t>(f.at_ns(), inst.spawned_ns, MonotonicNanos());
    rec_.FaultInjected(rec_id_, f.site(), f.action(), options_.seed, at);
    return true;
  }

  // What a driver that just died had said but the host not yet read: only
  // its failpoint reports matter now (the rest dies with it).
  void ReadFaultReports(Instance& inst) {
    DriverToHost m;  // not inst.msg: a message being handled may have led here
    for (int i = 0; i < 64; ++i) {
      if (!inst.control.Receive(m, ipc::Blocking::kDontWait)) return;
      if (m.has_failpoint_fired() && !RecordFailpointFired(inst, m.failpoint_fired())) return;
    }
  }

  void OnLog(const proto::Log& log) {
    const int64_t now = MonotonicNanos();
    log_tokens_ = std::min(options_.log_burst,
                           log_tokens_ + (now - log_refill_ns_) * options_.log_lines_per_second / 1e9);
    log_refill_ns_ = now;
    if (log_tokens_ < 1) {
      Count([&] { ++stats_.log_lines_suppressed; });
      return;
    }
    log_tokens_ -= 1;
    Count([&] { ++stats_.log_lines; });
    std::string text = log.text().substr(0, kMaxLogLine);
    for (char& c : text) {
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = ' ';
    }
    auto level = spdlog::level::info;
    switch (log.level()) {
      case proto::Log::LEVEL_TRACE: level = spdlog::level::trace; break;
      case proto::Log::LEVEL_DEBUG: level = spdlog::level::debug; break;
      case proto::Log::LEVEL_WARN: level = spdlog::level::warn; break;
      case proto::Log::LEVEL_ERROR: level = spdlog::level::err; break;
      default: break;
    }
    spdlog::log(level, "[{}] {}", options_.device_name, text);
    if (listener_) listener_->OnDriverLog(static_cast<int>(log.level()), text);
  }

  void OnReady(const std::shared_ptr<Instance>& inst) {
    inst->deadline.cancel();
    EndPhase(recorder::RecoveryPhase::kProbe);
    rec_.DriverReady(rec_id_);
    inst->phase = Instance::Phase::kReady;
    inst->last_heartbeat_ns = MonotonicNanos();
    StartOwnTime(*inst, inst->last_heartbeat_ns);
    inst->last_heartbeat_own_ns = own_base_ns_;
    int64_t recovery_ns = 0;
    if (recovering_since_ns_ > 0) {
      recovery_ns = MonotonicNanos() - recovering_since_ns_;
      recovering_since_ns_ = 0;
    }
    {
      std::lock_guard lock(mu_);
      up_since_ns_ = MonotonicNanos();
      stats_.last_recovery_ns = recovery_ns;
      rings_live_ = true;
      info_ = inst->info;
    }
    SetState(DeviceState::kRunning);
    if (listener_) listener_->OnDriverReady(inst->number, recovery_ns);
    if (upgrade_ && inst == upgrade_->candidate) StartProbation();
    if (!parked_.empty()) {
      parked_timer_.expires_after(Nanos(kParkedKillDelayNs));
      parked_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec && state_ == DeviceState::kRunning) KillParked();
      });
    }
    // The next standby is spawned a little later, so that its exec does not
    // compete with the shadow replaying configuration into this driver.
    if (options_.warm_standby) {
      restart_timer_.expires_after(Nanos(kStandbyDelayNs));
      restart_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        // Kept off the loop's CPU until now: the first requests after a
        // failover would otherwise often find it on the client's CPU.
        if (current_) AnyCpu(*current_);
        if (state_ == DeviceState::kRunning) SpawnStandby();
      });
    }
  }

  // ---------------- detection and recovery ----------------

  void KillInstance(std::shared_ptr<Instance> inst, bool park = false) {
    if (!inst->killed && !inst->reaped && !inst->parked) {
      // Which threads sleep, before the signal wakes them (see ExitWatch).
      if (!inst->exit_watch) inst->exit_watch = std::make_unique<ExitWatch>(inst->pid);
      inst->exit_watch->Snapshot();
      // One that was idle need not run again before the recovery goes on:
      // from now on it runs only on a CPU nobody else wants.
      if (park || inst->exit_watch->AllAsleep()) YieldCpuOf(inst->pid);
      Signal(*inst, park ? SIGSTOP : SIGKILL);
      if (park) {
        if (parked_.size() >= kMaxParked) KillParked();
        inst->parked = true;
        parked_.push_back(inst);
      } else {
        inst->killed = true;
      }
    } else if (!park && inst->parked && !inst->killed && !inst->reaped) {
      Signal(*inst, SIGKILL);
      inst->killed = true;
    }
    inst->phase = Instance::Phase::kDead;
    inst->deadline.cancel();
    inst->exit_grace.cancel();
    inst->control_watch.cancel();
    if (!inst->reaped && std::find(reaping_.begin(), reaping_.end(), inst) == reaping_.end()) {
      reaping_.push_back(inst);
    }
  }

  // The driver was made leader of its own process group, so its children
  // get the signal too. Until the driver is reaped its pid, and with it the
  // group's id, cannot be reused; only a driver that left its group (or a
  // group emptied of it) needs the pidfd.
  static void Signal(Instance& inst, int sig) {
    if (sig == SIGKILL && inst.cgroup) inst.cgroup->Kill();
    if (::kill(-inst.pid, sig) == 0 && getpgid(inst.pid) == inst.pid) return;
    syscall(SYS_pidfd_send_signal, inst.pidfd.get(), sig, nullptr, 0);
  }

  // Stopped drivers of recoveries that are over (or given up) are killed
  // now: their teardown no longer competes with one.
  void KillParked() {
    parked_timer_.cancel();
    for (auto& inst : parked_) KillInstance(inst);
    parked_.clear();
  }

  // A killed driver may still be running on another core for a moment (the
  // kernel delivers SIGKILL at its next entry, and a virtual CPU can be
  // descheduled in between): until it has left user space it can still write
  // to the rings, the pool and the emulated device. Those are reset and handed
  // to the next driver only after this returns. Bounded: past the bound the
  // recovery goes on (and says so) rather than stall the device.
  void AwaitLeftUserSpace(Instance& inst) {
    // Reaped, or its socket closed (the kernel closes files after the
    // process stopped running its code): past user space. An Exiting message
    // is not enough: atexit handlers may still be running.
    if (inst.reaped || (inst.fallback && inst.fallback->reason == DetectReason::kChannelEof)) return;
    if (!inst.exit_watch) return;  // already watched out of user space
    constexpr int64_t kBoundNs = 50 * kMs;
    const int64_t start = MonotonicNanos();
    // Naps of a few microseconds, not the default 50 µs timer slack on top.
    const int slack = prctl(PR_GET_TIMERSLACK);
    prctl(PR_SET_TIMERSLACK, 1000);
    struct RestoreSlack {
      int ns;
      ~RestoreSlack() { if (ns > 0) prctl(PR_SET_TIMERSLACK, ns); }
    } restore{slack};
    while (!inst.exit_watch->LeftUserSpace()) {
      if (MonotonicNanos() - start > kBoundNs) {
        spdlog::warn("[{}] driver instance {} still running {} ms after SIGKILL; recovering anyway",
                     options_.device_name, inst.number, kBoundNs / kMs);
        return;
      }
      struct timespec nap {0, 20'000};
      nanosleep(&nap, nullptr);
    }
  }

  // A driver that forked: its children were stopped with its group, but a
  // stop takes effect when each next runs. Kill the whole instance instead
  // and wait, bounded like AwaitLeftUserSpace, until its cgroup is empty:
  // no process of it may touch the rings once they are reset.
  void EndLeftovers(const std::shared_ptr<Instance>& inst) {
    if (!inst->cgroup || inst->cgroup->ProcessCount() <= 1) return;
    KillInstance(inst);
    const int64_t until = MonotonicNanos() + 50 * kMs;
    while (inst->cgroup->ProcessCount() > 0 && MonotonicNanos() < until) {
      struct timespec nap {0, 20'000};
      nanosleep(&nap, nullptr);
    }
  }

  void OnDetect(const std::shared_ptr<Instance>& inst, Detection d) {
    if (d.at_ns == 0) d.at_ns = MonotonicNanos();
    if (inst && inst == standby_) {
      KillInstance(std::move(standby_));
      if (upgrade_ && inst == upgrade_->candidate) OnCandidateLost(d);
      return;
    }
    const bool roll_back = upgrade_ && inst && inst == upgrade_->candidate;
    if (inst && inst != current_) {
      KillInstance(inst);
      return;
    }
    d.instance = inst ? inst->number : instance_counter_.load();
    if (shutting_down_) {
      if (inst) KillInstance(inst);
      current_.reset();
      return;
    }
    if (recovering_since_ns_ == 0) recovering_since_ns_ = d.at_ns;
    if (inst && inst->phase != Instance::Phase::kDead) ReadFaultReports(*inst);
    rec_.Detected(rec_id_, ToRecorder(d.reason), d.code);
    BeginPhase(recorder::RecoveryPhase::kIsolate);
    if (inst) {
      KillInstance(inst, /*park=*/true);
      WakeStandby();
      AwaitLeftUserSpace(*inst);
      EndLeftovers(inst);
      inst->exit_watch.reset();
    }
    current_.reset();
    own_time_.reset();
    EndPhase(recorder::RecoveryPhase::kIsolate);
    // The state changes before the detection is published, so that whoever
    // sees the detection also sees the device recovering.
    SetState(DeviceState::kRecovering);
    {
      std::lock_guard lock(mu_);
      detections_.push_back(d);
      if (detections_.size() > 64) detections_.erase(detections_.begin());
    }
    spdlog::info("[{}] driver instance {} down: {}", options_.device_name, d.instance, d.ToString());
    // Quiesce the device, tell the listener, and only then fail what was in
    // flight: whoever sees a failed call can already tell it was a crash.
    BeginPhase(recorder::RecoveryPhase::kQuiesce);
    if (options_.hw != nullptr) options_.hw->Reset();
    if (listener_) listener_->OnDriverDown(d);
    FenceDataPath(Errc::kInterrupted);
    FailPendingCalls(Errc::kInterrupted, "driver died during the call: " + d.ToString());
    EndPhase(recorder::RecoveryPhase::kQuiesce);

    if (roll_back) {  // the old binary comes back, and an upgrade never spends the budget
      RollBack(d);
      StartInstance();
      return;
    }
    // The next crash is judged by how long the next instance stays up.
    int64_t up_since;
    Count([&] { up_since = std::exchange(up_since_ns_, -1); });
    auto decision = policy_.OnCrash(MonotonicNanos(), up_since);
    if (decision.give_up) {
      MarkFailed(d);
      return;
    }
    Count([&] { ++stats_.restarts; });
    if (decision.delay_ns == 0) {
      StartInstance();
      return;
    }
    KillParked();  // no hurry: the restart waits anyway
    restart_timer_.expires_after(Nanos(decision.delay_ns));
    restart_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || shutting_down_ || state_ != DeviceState::kRecovering) return;
      StartInstance();
    });
  }

  void MarkFailed(const Detection& d) {
    if (upgrade_) FinishUpgrade({.reason = "the device failed during the upgrade: " + d.ToString()});
    spdlog::error("[{}] restart budget spent ({} restarts in {} s); device failed: {}",
                  options_.device_name, policy_.options().budget,
                  policy_.options().window_ns / 1'000'000'000, d.ToString());
    KillParked();
    if (open_phase_) rec_.PhaseEnd(rec_id_, *open_phase_, recorder::PhaseOutcome::kAborted);
    open_phase_.reset();
    rec_.DeviceFailed(rec_id_);
    recovering_since_ns_ = 0;
    FenceDataPath(Errc::kDeviceFailed);
    SetState(DeviceState::kFailed);
    if (standby_) KillInstance(std::move(standby_));
    if (listener_) listener_->OnDeviceFailed(d);
  }

  // Stops the data path: completions the driver published before it stopped
  // are handed out as they are, every other request in flight completes with
  // `code`, and the rings start empty for the next driver. The client is woken.
  void FenceDataPath(Errc code) {
    {
      std::lock_guard lock(mu_);
      CollectPublishedLocked();
      rings_live_ = false;
      for (uint32_t i = 0; i < slots_.size(); ++i) {
        Slot& s = slots_[i];
        if (s.id == 0) continue;
        interrupted_.push_back(Completion{.cookie = s.cookie, .status = static_cast<int32_t>(code)});
        s.id = 0;
        free_slots_.push_back(i);
        ++stats_.requests_interrupted;
      }
      in_flight_ = 0;
      data_->ResetRings();
    }
    data_->complete_doorbell().Signal();
  }

  // A completion in the ring was finished by the driver before it died (or
  // was stopped): its request is done, not interrupted. Taken through the
  // same checks as Poll, into the queue Poll hands out first. A completion
  // that fails them ends the collection; the driver is being replaced
  // anyway, so the violation is not held against its successor. (mu_ held.)
  void CollectPublishedLocked() {
    if (!rings_live_ || in_flight_ == 0) return;
    std::vector<Completion> out(interrupted_.size() + in_flight_);
    const size_t n = PollLocked(out);
    interrupted_.insert(interrupted_.end(), out.begin(), out.begin() + static_cast<ptrdiff_t>(n));
    data_violation_.clear();
  }

  // ---------------- live update (docs/live-update.md) ----------------

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
    asio::steady_timer timer;             // the candidate's handshake, then its probation
    std::function<void(Result<UpgradeResult>)> done;
  };

  void BeginUpgrade(const UpgradeOptions& o, std::string binary,
                    std::function<void(Result<UpgradeResult>)> done) {
    if (upgrade_) return done(Fail(Errc::kBusy, options_.device_name + ": an upgrade is already in progress"));
    if (state_ != DeviceState::kRunning || !current_) {
      return done(Fail(Errc::kUnavailable, options_.device_name + " is " + DeviceStateName(state_) +
                                               ", not running: nothing to upgrade"));
    }
    upgrade_ = std::make_unique<Upgrade>(io_);
    upgrade_->old_binary = binary_;
    upgrade_->new_binary = std::move(binary);
    upgrade_->probation_ns = o.probation_ns;
    upgrade_->done = std::move(done);
    // The old binary's standby makes way; one comes back if the upgrade is
    // refused, and stays through the probation for a rollback.
    restart_timer_.cancel();
    if (standby_) KillInstance(std::move(standby_));
    auto inst = Spawn(&upgrade_->new_binary);
    if (!inst) return Refuse("cannot start " + upgrade_->new_binary + ": " + inst.error().message);
    upgrade_->candidate = standby_ = *inst;
    upgrade_->timer.expires_after(Nanos(options_.handshake_deadline_ns));
    upgrade_->timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !upgrade_ || upgrade_->switched) return;
      KillInstance(std::move(standby_));
      Refuse("the new driver did not finish its handshake in " +
             std::to_string(options_.handshake_deadline_ns / 1'000'000) + " ms");
    });
  }

  // Before the switch: the old driver was never touched and keeps serving.
  void Refuse(std::string why) {
    FinishUpgrade({.reason = std::move(why)});
    SpawnStandby();
  }

  // The new driver has attached: the old one is asked to stop (Remove: its
  // PrepareStop and Stop run, then it says RemoveDone and exits). The shadow
  // is told first, so that it holds new requests from now on; the old
  // driver may complete what it has in flight until then (or until its grace
  // runs out, when it is killed).
  void SwitchDrivers() {
    Upgrade& u = *upgrade_;
    u.switched = true;
    u.timer.cancel();
    u.stop_ns = MonotonicNanos();
    recovering_since_ns_ = u.stop_ns;
    rec_.Detected(rec_id_, recorder::DetectionReason::kUpgrade, 0);
    BeginPhase(recorder::RecoveryPhase::kIsolate);
    own_time_.reset();
    u.old = std::move(current_);
    SetState(DeviceState::kRecovering);
    if (listener_) {
      listener_->OnDriverDown(Detection{.reason = DetectReason::kUpgrade, .detail = "live update to " + u.new_binary,
                                        .at_ns = u.stop_ns, .instance = u.old->number});
    }
    HostToDriver m;
    m.mutable_remove();
    (void)u.old->control.Send(m, {}, ipc::Blocking::kDontWait);
    u.old->deadline.expires_after(Nanos(options_.shutdown_grace_ns));
    u.old->deadline.async_wait([this, old = u.old](const boost::system::error_code& ec) {
      if (!ec && !old->reaped) KillInstance(old);
    });
  }

  // The old driver has stopped its device (RemoveDone) or is gone: it is
  // killed (its exit is not waited for: the teardown of a process and its
  // namespaces is not the device's business, only that it left user space), the device is
  // quiesced, what it left in flight is taken back, and the new driver takes
  // over (or, if it died meanwhile, the old binary starts again).
  void ContinueUpgrade() {
    Upgrade& u = *upgrade_;
    if (!u.old) return;
    const std::shared_ptr<Instance> old = std::move(u.old);
    old->deadline.cancel();
    if (!old->reaped) {
      // Killed, not parked: it stopped its device and is on its way out,
      // and a parked instance would outlive the upgrade until KillParked.
      KillInstance(old);
      AwaitLeftUserSpace(*old);
      EndLeftovers(old);
    }
    EndPhase(recorder::RecoveryPhase::kIsolate);
    BeginPhase(recorder::RecoveryPhase::kQuiesce);
    if (options_.hw != nullptr) options_.hw->Reset();
    FenceDataPath(Errc::kInterrupted);
    FailPendingCalls(Errc::kInterrupted, "driver replaced by a live update during the call");
    EndPhase(recorder::RecoveryPhase::kQuiesce);
    const std::string lost = u.lost;
    if (!lost.empty()) {
      u.candidate.reset();
      FinishUpgrade({.reason = lost + "; the old driver was started again", .rolled_back = true});
    }
    StartInstance();
  }

  void OnCandidateLost(const Detection& d) {
    const std::string why = "the new driver " + d.ToString();
    if (!upgrade_->switched) return Refuse(why);
    upgrade_->lost = why;
  }

  void StartProbation() {
    Upgrade& u = *upgrade_;
    u.timer.expires_after(Nanos(u.probation_ns));
    u.timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !upgrade_ || current_ != upgrade_->candidate || state_ != DeviceState::kRunning) return;
      CommitUpgrade();
    });
  }

  // The probation is over: the new binary is the device's from now on, and
  // so is its standby.
  void CommitUpgrade() {
    Upgrade& u = *upgrade_;
    {
      std::lock_guard lock(mu_);  // driver_info() reads it
      binary_ = u.new_binary;
    }
    restart_timer_.cancel();
    if (standby_) KillInstance(std::move(standby_));
    SpawnStandby();
    int64_t gap_ns = 0;
    Count([&] { gap_ns = stats_.last_recovery_ns; });
    FinishUpgrade({.upgraded = true, .driver_version = current_->info.version, .gap_ns = gap_ns});
  }

  void RollBack(const Detection& d) {
    spdlog::warn("[{}] upgrade to {} rolled back: {}", options_.device_name, upgrade_->new_binary, d.ToString());
    upgrade_->candidate.reset();
    FinishUpgrade({.reason = "the new driver " + d.ToString() + " during its probation; rolled back to " +
                             upgrade_->old_binary,
                   .rolled_back = true});
  }

  void FinishUpgrade(UpgradeResult r) {
    auto u = std::move(upgrade_);
    u->timer.cancel();
    if (r.driver_version.empty()) {
      std::lock_guard lock(mu_);
      r.driver_version = info_.version;
    }
    spdlog::info("[{}] upgrade to {}: {}", options_.device_name, u->new_binary,
                 r.upgraded ? "done" : r.reason);
    u->done(std::move(r));
  }

  void FailPendingCalls(Errc code, const std::string& why) {
    auto calls = std::move(calls_);
    calls_.clear();
    for (auto& [id, call] : calls) call->Finish(Fail(code, why));
  }

  void ArmWatchdog() {
    watchdog_.expires_after(Nanos(watchdog_tick_ns_));
    watchdog_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || shutting_down_) return;
      OnWatchdog();
      ArmWatchdog();
    });
  }

  bool CurrentIsReady() const {
    return current_ && current_->phase == Instance::Phase::kReady && !current_->awaiting_exit;
  }

  // Hangs are judged in the driver's own time (cpu_time.h): the CPU it got
  // while it is runnable, the wall clock while it sleeps, so that a driver
  // starved by load is never called hung, while one that spins or blocks
  // still is. A driver on its way out (EOF or Exiting seen) is judged by its
  // exit.
  void OnWatchdog() {
    if (!CurrentIsReady()) return;
    const int64_t now = MonotonicNanos();
    if (std::optional<std::string> hung = MissedHeartbeat(now)) {
      OnDetect(current_, Detection{.reason = DetectReason::kMissedHeartbeat, .detail = *hung});
      return;
    }
    if (!CurrentIsReady()) return;  // found dead while reading its messages
    if (std::optional<std::string> late = OldestRequestPastDeadline(now)) {
      OnDetect(current_, Detection{.reason = DetectReason::kRequestDeadline, .detail = *late});
      return;
    }
    if (std::optional<std::string> late = OldestCallPastDeadline(now)) {
      OnDetect(current_, Detection{.reason = DetectReason::kRequestDeadline, .detail = *late});
      return;
    }
    if (std::optional<std::string> hog = CheckIdleCpu(now)) {
      OnDetect(current_, Detection{.reason = DetectReason::kMissedHeartbeat, .detail = *hog});
      return;
    }
    if (std::optional<std::string> bad = CheckRings()) Violation(current_, *bad);
  }

  // Starts the own-time clock for the driver that just became ready.
  void StartOwnTime(const Instance& inst, int64_t now) {
    own_time_ = std::make_unique<OwnTime>(inst.pid, now);
    std::lock_guard lock(mu_);
    own_base_ns_ = own_ns_;
    own_wall_ns_ = now;
  }

  // Brings the device's own-time clock up to `now` (a look at /proc) and
  // returns it. The clock runs on across driver instances.
  int64_t AdvanceOwnTime(int64_t now, Heard heard = Heard::kNotLately) {
    if (!own_time_) return own_ns_;
    const int64_t own = own_base_ns_ + own_time_->Advance(now, heard);
    std::lock_guard lock(mu_);
    own_ns_ = own;
    own_wall_ns_ = now;
    return own;
  }

  // The own time now, at most: as of the last look, plus all the wall time
  // since (as if the driver had not waited for a CPU since). Submissions are
  // stamped with it, so that a deadline can come late but never early. (mu_ held.)
  int64_t OwnTimeUpperBoundLocked(int64_t now) const { return own_ns_ + std::max<int64_t>(0, now - own_wall_ns_); }

  // Two heartbeat periods of the driver's own time without a heartbeat.
  std::optional<std::string> MissedHeartbeat(int64_t now) {
    const int64_t period = options_.heartbeat_period_ns;
    // Not late on the wall clock: not late in own time either (no /proc read).
    if (now - current_->last_heartbeat_ns <= 2 * period) return std::nullopt;
    if (AdvanceOwnTime(now) - current_->last_heartbeat_own_ns <= 2 * period) return std::nullopt;
    // Heartbeats may be waiting unread if the loop was busy: read them first.
    auto inst = current_;
    if (!ReadPending(inst) || inst != current_) return std::nullopt;
    const int64_t own = AdvanceOwnTime(now) - current_->last_heartbeat_own_ns;
    if (own <= 2 * period) return std::nullopt;
    return "no heartbeat for " + std::to_string(own / kMs) + " ms of its own time (" +
           std::to_string((now - current_->last_heartbeat_ns) / kMs) + " ms on the clock)";
  }

  // A driver that burns a CPU with nothing to do (a spinning thread while
  // another keeps heartbeating) is a hang in all but name.
  std::optional<std::string> CheckIdleCpu(int64_t now) {
    bool idle = calls_.empty();
    {
      std::lock_guard lock(mu_);
      idle = idle && in_flight_ == 0;
    }
    std::optional<int64_t> cpu;
    if (idle && current_->cgroup) cpu = current_->cgroup->CpuNanos();
    return current_->misbehaviour->OnTick(now, idle, cpu);
  }

  // A driver can scribble over ring indices without ringing any doorbell;
  // look at them once per tick so that it cannot pass for a hang.
  std::optional<std::string> CheckRings() {
    std::lock_guard lock(mu_);
    if (rings_live_) {
      data_->complete().Available();
      if (data_->complete().poisoned() && data_violation_.empty()) {
        data_violation_ = "completion ring indices corrupted";
      }
    }
    if (data_violation_.empty()) return std::nullopt;
    rings_live_ = false;
    return std::exchange(data_violation_, {});
  }

  // The oldest request in flight, by own time at submission, if it is
  // older than the deadline on the wall clock (else nothing to look at).
  std::optional<std::pair<uint64_t, int64_t>> OldestRequestPastWallDeadline(int64_t now) const {
    std::lock_guard lock(mu_);
    if (in_flight_ == 0) return std::nullopt;
    std::optional<std::pair<uint64_t, int64_t>> oldest;
    for (const Slot& s : slots_) {
      if (s.id == 0 || now - s.submitted_ns <= options_.request_deadline_ns) continue;
      if (!oldest || s.submitted_own_ns < oldest->second) oldest = {s.id, s.submitted_own_ns};
    }
    return oldest;
  }

  // A request older than the deadline in the driver's own time: a hang.
  std::optional<std::string> OldestRequestPastDeadline(int64_t now) {
    auto oldest = OldestRequestPastWallDeadline(now);
    if (!oldest || AdvanceOwnTime(now) - oldest->second <= options_.request_deadline_ns) return std::nullopt;
    return "request " + std::to_string(oldest->first) + " older than " +
           std::to_string(options_.request_deadline_ns / kMs) + " ms of the driver's own time";
  }

  // A control call the driver has not answered within the request deadline
  // (in its own time) is a hang too (a handler stuck, or a reply it dropped).
  std::optional<std::string> OldestCallPastDeadline(int64_t now) {
    for (const auto& [id, call] : calls_) {
      if (now - call->sent_ns <= options_.request_deadline_ns) continue;
      if (AdvanceOwnTime(now) - call->sent_own_ns <= options_.request_deadline_ns) continue;
      return "call " + std::to_string(id) + " unanswered for " +
             std::to_string(options_.request_deadline_ns / kMs) + " ms of the driver's own time";
    }
    return std::nullopt;
  }

  std::optional<std::string> TakeDataPathViolation() {
    std::lock_guard lock(mu_);
    if (data_violation_.empty()) return std::nullopt;
    return std::exchange(data_violation_, {});
  }

  // ---------------- data path (client thread, under mu_) ----------------

  Result<size_t> Submit(std::span<const Request> reqs) {
    std::lock_guard lock(mu_);
    if (!rings_live_) return Fail(StateErrc(), StateMessage());
    auto& ring = data_->submit();
    const int64_t now = MonotonicNanos();
    const int64_t own = OwnTimeUpperBoundLocked(now);
    size_t n = 0;
    for (const Request& r : reqs) {
      const uint32_t cap = std::max(r.capacity, r.length);
      if (!data_->InPool(r.offset, cap)) {
        if (n == 0) return Fail(Errc::kInvalidArgument, "request buffer outside the pool");
        break;
      }
      if (free_slots_.empty()) break;
      const uint32_t slot = free_slots_.back();
      const uint64_t id = (++id_counter_ << 20) | slot;
      ipc::Descriptor d{.id = id, .op = r.op, .flags = r.flags, .status = 0,
                        .offset = r.offset, .length = r.length, .arg = r.arg};
      if (!ring.TryPush(d)) break;
      free_slots_.pop_back();
      slots_[slot] = Slot{.id = id, .cookie = r.cookie, .offset = r.offset, .capacity = cap,
                          .submitted_ns = now, .submitted_own_ns = own};
      ++n;
    }
    if (n == 0) return size_t{0};
    in_flight_ += n;
    stats_.requests_submitted += n;
    CrossProcessRelease(data_->pool());  // the device may read the payloads in place
    if (ring.Publish()) data_->submit_doorbell().Signal();
    return n;
  }

  size_t PollLocked(std::span<Completion> out) {
    size_t n = 0;
    while (n < out.size() && !interrupted_.empty()) {
      out[n++] = interrupted_.front();
      interrupted_.erase(interrupted_.begin());
    }
    if (!rings_live_) return n;
    auto& ring = data_->complete();
    ipc::Descriptor d;
    while (n < out.size() && data_violation_.empty() && ring.TryPop(d)) {
      const uint32_t slot = static_cast<uint32_t>(d.id & ((1u << 20) - 1));
      if (slot >= slots_.size() || slots_[slot].id != d.id || d.id == 0) {
        data_violation_ = "completion for unknown request id " + std::to_string(d.id);
        break;
      }
      Slot& s = slots_[slot];
      if (d.length > s.capacity) {
        data_violation_ = "completion length " + std::to_string(d.length) + " exceeds buffer of " +
                          std::to_string(s.capacity);
        break;
      }
      if (d.status < 0 || d.status > static_cast<int32_t>(Errc::kInternal)) {
        data_violation_ = "completion with invalid status " + std::to_string(d.status);
        break;
      }
      out[n++] = Completion{.cookie = s.cookie, .status = d.status, .length = d.length, .arg = d.arg};
      s.id = 0;
      free_slots_.push_back(slot);
      --in_flight_;
      ++stats_.requests_completed;
    }
    if (n > 0) CrossProcessAcquire(data_->pool());  // payloads the device wrote in place
    if (ring.poisoned() && data_violation_.empty()) {
      data_violation_ = "completion ring indices corrupted";
    }
    if (data_->submit().poisoned() && data_violation_.empty()) {
      data_violation_ = "submit ring indices corrupted";
    }
    ring.Release();
    if (!data_violation_.empty()) {
      rings_live_ = false;  // stop trusting the rings until recovery
      asio::post(io_, [this] {
        if (auto v = TakeDataPathViolation(); v && current_) Violation(current_, *v);
      });
    }
    return n;
  }

  size_t Poll(std::span<Completion> out) {
    std::lock_guard lock(mu_);
    return PollLocked(out);
  }

  // True when this thread should sleep at once instead of spinning: the
  // driver last ran on this very CPU and has the few requests outstanding
  // (a depth-1 client) in hand. Spinning would only keep it off the CPU for
  // our turn; sleeping gives it the CPU now, and it hands it back when it
  // wakes us (process_runtime.cc, PublishCompletions). With many requests
  // outstanding, completions keep coming and taking turns serves better.
  // The driver's CPU is its own word in the ring header: a hint that can
  // only make this wait sleep sooner or later. (mu_ held, rings live.)
  bool HandOverTheCpu() {
    constexpr size_t kFewInFlight = 2;
    const int cpu = sched_getcpu();
    data_->complete().NoteCpu(cpu);
    return cpu >= 0 && in_flight_ <= kFewInFlight && data_->submit().consumer_cpu() == cpu;
  }

  size_t Wait(std::span<Completion> out, int64_t timeout_ns) {
    const int64_t deadline = MonotonicNanos() + timeout_ns;
    constexpr int64_t kSpinNs = 200'000;  // taking turns (base/spin.h)
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (size_t n = PollLocked(out); n > 0) return n;
        if (in_flight_ == 0 && rings_live_) return 0;
      }
      Spin spin(std::min(kSpinNs, deadline - MonotonicNanos()), Spin::kTakeTurns);
      bool ready = false;
      while (spin.Again()) {
        std::lock_guard lock(mu_);
        if (rings_live_ && HandOverTheCpu()) {
          ++stats_.waits_handed_over;
          break;
        }
        if (!interrupted_.empty() || (rings_live_ && data_->complete().Available() > 0) ||
            !rings_live_) {
          ready = true;
          break;
        }
      }
      if (ready) continue;
      const int64_t now = MonotonicNanos();
      if (now >= deadline) return 0;
      {
        std::lock_guard lock(mu_);
        if (rings_live_ && !data_->complete().PrepareToSleep()) continue;
      }
      data_->complete_doorbell().Wait(deadline - now);
      {
        std::lock_guard lock(mu_);
        if (rings_live_) data_->complete().CancelSleep();
      }
    }
  }

  Errc StateErrc() const {
    switch (state_.load()) {
      case DeviceState::kFailed: return Errc::kDeviceFailed;
      case DeviceState::kStopped:
      case DeviceState::kStopping: return Errc::kNoDevice;
      case DeviceState::kStarting:
      case DeviceState::kRecovering:
      case DeviceState::kRunning: return Errc::kUnavailable;
    }
    return Errc::kUnavailable;
  }
  std::string StateMessage() const {
    return options_.device_name + " is " + DeviceStateName(state_.load());
  }

  // ---------------- control path ----------------

  // Sends a message made by `build(id)` and waits for the answer correlated
  // by that id (a Reply, or a failpoint answer).
  Result<std::string> SendAndWait(std::function<HostToDriver(uint64_t id)> build, int64_t timeout_ns,
                              const std::string& what) {
    auto call = std::make_shared<PendingCall>();
    asio::post(io_, [this, call, build = std::move(build)]() mutable {
      if (state_ != DeviceState::kRunning || !current_) {
        call->Finish(Fail(StateErrc(), StateMessage()));
        return;
      }
      const uint64_t my_id = ++call_counter_;
      HostToDriver m = build(my_id);
      if (auto r = current_->control.Send(m, {}, ipc::Blocking::kDontWait); !r) {
        // A peer that is gone has died: the caller sees the crash, as it
        // would had the message gone out just before.
        Errc code = r.error().code == Errc::kNoDevice ? Errc::kInterrupted : r.error().code;
        call->Finish(Fail(code, "driver died before the call: " + r.error().message));
        return;
      }
      call->sent_ns = MonotonicNanos();
      call->sent_own_ns = [&] {
        std::lock_guard lock(mu_);
        return OwnTimeUpperBoundLocked(call->sent_ns);
      }();
      calls_[my_id] = call;
      std::lock_guard lock(call->mu);
      call->id = my_id;
    });
    std::unique_lock lock(call->mu);
    if (!call->cv.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                           [&] { return call->result.has_value(); })) {
      const uint64_t my_id = call->id;
      lock.unlock();
      asio::post(io_, [this, my_id] { calls_.erase(my_id); });
      return Fail(Errc::kTimeout, what + " to " + options_.device_name + " timed out");
    }
    return std::move(*call->result);
  }

  Result<std::string> Call(uint32_t method, std::string body, int64_t timeout_ns) {
    return SendAndWait(
        [method, body = std::move(body)](uint64_t id) {
          HostToDriver m;
          auto* c = m.mutable_call();
          c->set_id(id);
          c->set_method(method);
          c->set_body(body);
          return m;
        },
        timeout_ns, "call " + std::to_string(method));
  }

  void SetState(DeviceState s) {
    {
      std::lock_guard lock(state_mu_);
      state_ = s;
    }
    state_cv_.notify_all();
  }

  Result<void> WaitForState(DeviceState want, int64_t timeout_ns) {
    std::unique_lock lock(state_mu_);
    if (state_cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return state_ == want; })) {
      return {};
    }
    return Fail(Errc::kTimeout, options_.device_name + " did not become " + DeviceStateName(want) +
                                    " (it is " + DeviceStateName(state_) + ")");
  }

  struct Slot {
    uint64_t id = 0;      // 0: free
    uint64_t cookie = 0;
    uint32_t offset = 0;
    uint32_t capacity = 0;
    int64_t submitted_ns = 0;      // MonotonicNanos at submission
    int64_t submitted_own_ns = 0;  // the device's own time then, at most
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

  std::unique_ptr<Upgrade> upgrade_;           // a live update in progress, if any
  std::shared_ptr<Instance> current_;          // the driver serving the device
  std::shared_ptr<Instance> standby_;           // warm spare, handshake done
  std::vector<std::shared_ptr<Instance>> reaping_;  // killed, exit not yet collected
  std::vector<std::shared_ptr<Instance>> parked_;   // stopped by a recovery still going on
  std::atomic<uint64_t> instance_counter_{0};
  uint64_t cgroup_counter_ = 0;                            // names the groups (loop thread)
  std::unique_ptr<sandbox::InstanceCgroup> next_cgroup_;   // made ahead for the next spawn
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
  uint64_t id_counter_ = 0;
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

// ---------------- DriverHost ----------------

Result<std::unique_ptr<DriverHost>> DriverHost::Create(asio::io_context& io,
                                                       DriverHostOptions options) {
  if (options.device_name.empty()) return Fail(Errc::kInvalidArgument, "device needs a name");
  std::string binary = UMBRA_TRY(FindDriverBinary(options.driver_binary));
  switch (options.sandbox.mode) {
    case sandbox::SandboxMode::kOn:
      sandbox::HardenHost();
      break;
    case sandbox::SandboxMode::kOff:
      spdlog::warn("[{}] sandbox off: the driver runs as the host's user, in the host's namespaces",
                   options.device_name);
      break;
  }
  auto data = UMBRA_TRY(ipc::DataChannel::Create(options.device_name, options.data));
  auto impl = std::make_unique<Impl>(io, std::move(options), std::move(data));
  impl->binary_ = std::move(binary);
  impl->PrepareCgroup();  // before the loop knows this device: no race
  return std::unique_ptr<DriverHost>(new DriverHost(std::move(impl)));
}

DriverHost::DriverHost(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DriverHost::~DriverHost() = default;

const std::string& DriverHost::name() const { return impl_->options_.device_name; }
DeviceState DriverHost::state() const { return impl_->state_.load(); }
std::vector<Detection> DriverHost::detections() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->detections_;
}
DriverHostStats DriverHost::stats() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->stats_;
}
uint64_t DriverHost::instance() const { return impl_->instance_counter_; }
pid_t DriverHost::driver_pid() const {
  pid_t pid = -1;
  std::promise<void> done;
  asio::post(impl_->io_, [&] {
    if (impl_->current_) pid = impl_->current_->pid;
    done.set_value();
  });
  done.get_future().wait();
  return pid;
}
void DriverHost::set_listener(DriverHostListener* l) { impl_->listener_ = l; }
recorder::Recorder& DriverHost::recorder() const { return impl_->rec_; }
uint32_t DriverHost::recorder_device() const { return impl_->rec_id_; }

void DriverHost::Start() { asio::post(impl_->io_, [this] { impl_->Start(); }); }

Result<UpgradeResult> DriverHost::Upgrade(const UpgradeOptions& options) {
  std::string binary = UMBRA_TRY(FindDriverBinary(options.binary));
  // Checked on the loop too; here so that a stopped host (whose loop may be
  // gone) answers at once.
  if (const DeviceState s = state(); s != DeviceState::kRunning) {
    return Fail(Errc::kUnavailable, name() + " is " + DeviceStateName(s) + ", not running: nothing to upgrade");
  }
  auto done = std::make_shared<std::promise<Result<UpgradeResult>>>();
  auto outcome = done->get_future();
  asio::post(impl_->io_, [this, options, binary = std::move(binary), done]() mutable {
    impl_->BeginUpgrade(options, std::move(binary), [done](Result<UpgradeResult> r) { done->set_value(std::move(r)); });
  });
  if (outcome.wait_for(std::chrono::nanoseconds(options.timeout_ns)) != std::future_status::ready) {
    return Fail(Errc::kTimeout, name() + ": no outcome of the upgrade after " +
                                    std::to_string(options.timeout_ns / 1'000'000) + " ms");
  }
  return outcome.get();
}

DriverInfo DriverHost::driver_info() const {
  std::lock_guard lock(impl_->mu_);
  DriverInfo info = impl_->info_;
  if (info.binary.empty()) info.binary = impl_->binary_;
  return info;
}
void DriverHost::ResetFailed() { asio::post(impl_->io_, [this] { impl_->ResetFailed(); }); }
void DriverHost::Kill(int sig) { asio::post(impl_->io_, [this, sig] { impl_->Kill(sig); }); }

Result<void> DriverHost::WaitUntilRunning(int64_t timeout_ns) {
  return impl_->WaitForState(DeviceState::kRunning, timeout_ns);
}
Result<void> DriverHost::WaitForState(DeviceState s, int64_t timeout_ns) {
  return impl_->WaitForState(s, timeout_ns);
}

std::optional<uint32_t> DriverHost::AllocBuffer() {
  std::lock_guard lock(impl_->mu_);
  if (impl_->free_buffers_.empty()) return std::nullopt;
  uint32_t off = impl_->free_buffers_.back();
  impl_->free_buffers_.pop_back();
  return off;
}
void DriverHost::FreeBuffer(uint32_t offset) {
  std::lock_guard lock(impl_->mu_);
  impl_->free_buffers_.push_back(offset);
}
std::byte* DriverHost::buffer(uint32_t offset) { return impl_->data_->pool() + offset; }
uint32_t DriverHost::buffer_size() const { return impl_->data_->layout().buffer_size; }

Result<size_t> DriverHost::Submit(std::span<const Request> r) { return impl_->Submit(r); }
size_t DriverHost::Poll(std::span<Completion> out) { return impl_->Poll(out); }
size_t DriverHost::Wait(std::span<Completion> out, int64_t t) { return impl_->Wait(out, t); }
size_t DriverHost::in_flight() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->in_flight_;
}

Result<std::string> DriverHost::Call(uint32_t method, std::string body, int64_t timeout_ns) {
  return impl_->Call(method, std::move(body), timeout_ns);
}

Result<void> DriverHost::SetFailpoints(const std::string& spec, int64_t timeout_ns) {
  // Armed again in every driver started from now on (SendAttach reads it on the loop).
  asio::post(impl_->io_, [this, spec] { impl_->options_.failpoints = spec; });
  return ArmFailpointsInRunningDriver(spec, timeout_ns);
}

Result<void> DriverHost::ArmFailpointsInRunningDriver(const std::string& spec, int64_t timeout_ns) {
  auto r = impl_->SendAndWait(
      [spec](uint64_t id) {
        HostToDriver m;
        m.mutable_set_failpoints()->set_id(id);
        m.mutable_set_failpoints()->set_spec(spec);
        return m;
      },
      timeout_ns, "setting failpoints");
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<std::vector<FailpointCount>> DriverHost::QueryFailpoints(int64_t timeout_ns) {
  auto r = impl_->SendAndWait(
      [](uint64_t id) {
        HostToDriver m;
        m.mutable_query_failpoints()->set_id(id);
        return m;
      },
      timeout_ns, "querying failpoints");
  if (!r) return std::unexpected(r.error());
  proto::FailpointCounts counts;
  if (!counts.ParseFromString(*r)) return Fail(Errc::kProtocol, "bad failpoint counts");
  std::vector<FailpointCount> out;
  for (const auto& site : counts.sites()) {
    if (!Impl::ValidName(site.name())) return Fail(Errc::kProtocol, "bad failpoint site name");
    out.push_back({site.name(), site.hits(), site.triggers()});
  }
  return out;
}

void DriverHost::Shutdown() {
  asio::post(impl_->io_, [this] { impl_->BeginShutdown(); });
  (void)impl_->WaitForState(DeviceState::kStopped, 10'000'000'000);
}

}  // namespace umbra::runtime
