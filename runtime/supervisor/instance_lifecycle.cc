// The driver instance life cycle: spawn, handshake (Hello, Attach, Probe), warm
// standby, ready, kill and parking, shutdown; and the device state.
#include "runtime/supervisor/driver_host_impl.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "base/clock.h"

namespace umbra::runtime {

DriverHost::Impl::Impl(asio::io_context& io, DriverHostOptions options, std::unique_ptr<ipc::DataChannel> data)
    : io_(io), options_(std::move(options)), data_(std::move(data)), policy_(options_.restart), watchdog_(io),
      restart_timer_(io), parked_timer_(io), rec_(options_.recorder ? *options_.recorder : recorder::Recorder::Off()),
      rec_id_(rec_.RegisterDevice(options_.device_name, options_.device_class)), slots_(data_->layout().ring_entries) {
  for (uint32_t i = 0; i < slots_.size(); ++i) free_slots_.push_back(slots_.size() - 1 - i);
  for (uint32_t i = 0; i < data_->buffer_count(); ++i) {
    free_buffers_.push_back(data_->buffer_offset(data_->buffer_count() - 1 - i));
  }
  interrupted_.reserve(slots_.size());
  log_tokens_ = options_.log_burst;
  log_refill_ns_ = MonotonicNanos();
  watchdog_tick_ns_ =
      std::max<int64_t>(std::min(options_.heartbeat_period_ns, options_.request_deadline_ns) / 4, 250'000);
}

void DriverHost::Impl::Start() {
  if (state_ != DeviceState::kStopped && state_ != DeviceState::kFailed) return;
  SetState(DeviceState::kStarting);
  // The device may read and write payloads in the pool itself, if its
  // driver asks it to (docs/block.md, "Payloads in place"); until the
  // host stops.
  if (options_.hw != nullptr) options_.hw->MapHostMemory({data_->pool(), data_->pool_size()});
  ArmWatchdog();
  StartInstance();
}

void DriverHost::Impl::ResetFailed() {
  if (state_ != DeviceState::kFailed) return;
  policy_.Reset();
  SetState(DeviceState::kStopped);
  Start();
}

void DriverHost::Impl::Kill(int sig) {
  if (!current_ || current_->phase == Instance::Phase::kDead) return;
  if (sig == SIGKILL) {
    // The host knows a SIGKILL it sends is fatal: recovery starts now (and
    // KillInstance sends it), not when the exit becomes visible.
    OnDetect(current_, Detection{.reason = DetectReason::kSignal, .code = SIGKILL, .detail = "sent by the host"});
    return;
  }
  // The driver reports catchable signals itself; a stop is a hang.
  (void)syscall(SYS_pidfd_send_signal, current_->pidfd.get(), sig, nullptr, 0);
}

void DriverHost::Impl::BeginShutdown() {
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

void DriverHost::Impl::MaybeFinishShutdown() {
  if (!shutting_down_ || !reaping_.empty()) return;
  watchdog_.cancel();
  next_cgroup_.reset();
  if (options_.hw != nullptr) options_.hw->MapHostMemory({});
  SetState(DeviceState::kStopped);
}

Result<std::shared_ptr<Instance>> DriverHost::Impl::Spawn(const std::string* binary) {
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
  auto inst = std::make_shared<Instance>(io_, ++instance_counter_, std::move(p), std::move(host_end));
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

std::unique_ptr<sandbox::InstanceCgroup> DriverHost::Impl::SandboxCgroup() {
  if (next_cgroup_) return std::move(next_cgroup_);
  return MakeCgroup();
}

std::unique_ptr<sandbox::InstanceCgroup> DriverHost::Impl::MakeCgroup() {
  const sandbox::SandboxOptions& o = options_.sandbox;
  if (o.mode != sandbox::SandboxMode::kOn || !o.cgroup) return nullptr;
  return sandbox::InstanceCgroup::Create(options_.device_name + "." + std::to_string(++cgroup_counter_), o.limits);
}

void DriverHost::Impl::PrepareCgroup() {
  if (!next_cgroup_ && !shutting_down_) next_cgroup_ = MakeCgroup();
}

void DriverHost::Impl::StartInstance() {
  BeginPhase(recorder::RecoveryPhase::kRestart);
  if (standby_) Hurry(*standby_);
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
    OnDetect(
        nullptr,
        Detection{.reason = DetectReason::kSpawnFailed, .detail = inst.error().message, .at_ns = MonotonicNanos()});
    return;
  }
  current_ = *inst;
  ArmDeadline(current_, options_.handshake_deadline_ns, "no Hello from the driver");
}

bool DriverHost::Impl::PromoteUnfinishedStandby() {
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

void DriverHost::Impl::SpawnStandby() {
  if (!options_.warm_standby || standby_ || shutting_down_) return;
  auto inst = Spawn();
  if (!inst) {
    spdlog::warn("[{}] cannot spawn a warm standby: {}", options_.device_name, inst.error().message);
    return;
  }
  standby_ = *inst;
  YieldCpuOf(standby_->pid);
  standby_->idle_priority = true;
  standby_->hurry.expires_after(Nanos(kStandbyIdleNs));
  standby_->hurry.async_wait([inst = standby_](const boost::system::error_code& ec) {
    if (!ec && inst->phase != Instance::Phase::kDead) Hurry(*inst);
  });
}

void DriverHost::Impl::Hurry(Instance& inst) {
  if (!inst.idle_priority) return;
  NormalCpuOf(inst.pid);
  inst.idle_priority = false;
}

void DriverHost::Impl::ArmDeadline(const std::shared_ptr<Instance>& inst, int64_t ns, const char* what) {
  inst->deadline.expires_after(Nanos(ns));
  inst->deadline.async_wait([this, inst, what](const boost::system::error_code& ec) {
    if (ec || inst != current_ || inst->phase == Instance::Phase::kReady) return;
    OnDetect(inst, Detection{.reason = DetectReason::kHandshakeTimeout, .detail = what});
  });
}

void DriverHost::Impl::SendAttach(const std::shared_ptr<Instance>& inst, bool then_probe) {
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
  std::vector<int> fds{data_->region().fd(), data_->submit_doorbell().fd(), data_->complete_doorbell().fd()};
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

void DriverHost::Impl::SendProbe(const std::shared_ptr<Instance>& inst) {
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

void DriverHost::Impl::AwaitProbeDone(const std::shared_ptr<Instance>& inst) {
  constexpr int64_t kBudgetNs = 250'000;
  const int64_t until = MonotonicNanos() + kBudgetNs;
  while (inst->phase == Instance::Phase::kProbing && MonotonicNanos() < until) {
    pollfd p{inst->control.fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) == 1 && !ReadPending(inst)) return;
  }
}

void DriverHost::Impl::AwayFromThisCpu(Instance& inst) {
  const int here = sched_getcpu();
  cpu_set_t set;
  CPU_ZERO(&set);
  if (here < 0 || sched_getaffinity(0, sizeof set, &set) != 0) return;
  CPU_CLR(here, &set);
  if (CPU_COUNT(&set) == 0) return;
  if (sched_setaffinity(inst.pid, sizeof set, &set) == 0) inst.pinned = true;
}

void DriverHost::Impl::AnyCpu(Instance& inst) {
  if (!inst.pinned) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) (void)sched_setaffinity(inst.pid, sizeof set, &set);
  inst.pinned = false;
}

void DriverHost::Impl::WakeStandby() {
  if (!standby_ || standby_->phase != Instance::Phase::kStandby || standby_->pinned) return;
  Hurry(*standby_);
  AwayFromThisCpu(*standby_);
  HostToDriver wake;
  wake.mutable_wake();
  (void)standby_->control.Send(wake, {}, ipc::Blocking::kDontWait);
}

void DriverHost::Impl::OnReady(const std::shared_ptr<Instance>& inst) {
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

void DriverHost::Impl::KillInstance(std::shared_ptr<Instance> inst, bool park) {
  if (!inst->killed && !inst->reaped && !inst->parked) {
    // Which threads sleep, before the signal wakes them (see ExitWatch).
    if (!inst->exit_watch) inst->exit_watch = std::make_unique<ExitWatch>(inst->pid);
    inst->exit_watch->Snapshot();
    // One that was idle need not run again before the recovery goes on:
    // from now on it runs only on a CPU nobody else wants. One that was
    // running or waiting for a CPU must run once more for the signal to
    // take effect: at idle priority that waited for an idle CPU, tens of
    // milliseconds on a busy machine (a parked one yields when killed).
    if (inst->exit_watch->AllAsleep()) YieldCpuOf(inst->pid);
    Signal(*inst, park ? SIGSTOP : SIGKILL);
    if (park) {
      if (parked_.size() >= kMaxParked) KillParked();
      inst->parked = true;
      parked_.push_back(inst);
    } else {
      inst->killed = true;
    }
  } else if (!park && inst->parked && !inst->killed && !inst->reaped) {
    YieldCpuOf(inst->pid);  // stopped: its exit must not compete with its successor
    Signal(*inst, SIGKILL);
    inst->killed = true;
  }
  inst->phase = Instance::Phase::kDead;
  inst->deadline.cancel();
  inst->exit_grace.cancel();
  inst->hurry.cancel();
  inst->control_watch.cancel();
  if (!inst->reaped && std::find(reaping_.begin(), reaping_.end(), inst) == reaping_.end()) {
    reaping_.push_back(inst);
  }
}

void DriverHost::Impl::Signal(Instance& inst, int sig) {
  if (sig == SIGKILL && inst.cgroup) inst.cgroup->Kill();
  if (::kill(-inst.pid, sig) == 0 && getpgid(inst.pid) == inst.pid) return;
  syscall(SYS_pidfd_send_signal, inst.pidfd.get(), sig, nullptr, 0);
}

void DriverHost::Impl::KillParked() {
  parked_timer_.cancel();
  for (auto& inst : parked_) KillInstance(inst);
  parked_.clear();
}

void DriverHost::Impl::SetState(DeviceState s) {
  {
    std::lock_guard lock(state_mu_);
    state_ = s;
  }
  state_cv_.notify_all();
}

Result<void> DriverHost::Impl::WaitForState(DeviceState want, int64_t timeout_ns) {
  std::unique_lock lock(state_mu_);
  if (state_cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return state_ == want; })) {
    return {};
  }
  return Fail(Errc::kTimeout, options_.device_name + " did not become " + DeviceStateName(want) + " (it is " +
                                  DeviceStateName(state_) + ")");
}

}  // namespace umbra::runtime
