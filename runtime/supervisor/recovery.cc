// Detection and recovery sequencing: isolate (kill or park, wait until out of
// user space), quiesce, fence the data path, then restart under the policy or fail.
#include "runtime/supervisor/driver_host_impl.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "base/clock.h"

namespace umbra::runtime {

namespace {

int WaitPidfd(int pidfd, siginfo_t& info, int flags) {
  std::memset(&info, 0, sizeof info);
  return static_cast<int>(syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | flags, nullptr));
}

}  // namespace

void DriverHost::Impl::BeginPhase(recorder::RecoveryPhase phase) {
  if (recovering_since_ns_ == 0) return;
  if (open_phase_) rec_.PhaseEnd(rec_id_, *open_phase_, recorder::PhaseOutcome::kAborted);
  rec_.PhaseBegin(rec_id_, phase);
  open_phase_ = phase;
}

void DriverHost::Impl::EndPhase(recorder::RecoveryPhase phase) {
  if (open_phase_ != phase) return;
  rec_.PhaseEnd(rec_id_, phase);
  open_phase_.reset();
}

void DriverHost::Impl::WatchExit(const std::shared_ptr<Instance>& inst) {
  inst->pid_watch.async_wait(asio::posix::stream_descriptor::wait_read,
                             [this, inst](const boost::system::error_code& ec) {
                               if (ec) return;
                               OnExited(inst);
                             });
}

bool DriverHost::Impl::HasExited(const Instance& inst) {
  siginfo_t info;
  return WaitPidfd(inst.pidfd.get(), info, WNOHANG | WNOWAIT) == 0 && info.si_pid != 0;
}

void DriverHost::Impl::OnExited(const std::shared_ptr<Instance>& inst) {
  if (inst->reaped) return;  // by the exit grace's timer, before this wake-up ran
  siginfo_t info;
  if (WaitPidfd(inst->pidfd.get(), info, WNOHANG) != 0 || info.si_pid == 0) {
    WatchExit(inst);  // spurious
    return;
  }
  inst->reaped = true;
  // Whatever it left behind dies with its group (and the group goes).
  inst->cgroup.reset();
  rec_.DriverExited(rec_id_, info.si_code == CLD_EXITED ? recorder::ExitKind::kCode : recorder::ExitKind::kSignal,
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

void DriverHost::Impl::AwaitLeftUserSpace(Instance& inst) {
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
    ~RestoreSlack() {
      if (ns > 0) prctl(PR_SET_TIMERSLACK, ns);
    }
  } restore{slack};
  while (!inst.exit_watch->LeftUserSpace()) {
    if (MonotonicNanos() - start > kBoundNs) {
      spdlog::warn("[{}] driver instance {} still running {} ms after SIGKILL; recovering anyway", options_.device_name,
                   inst.number, kBoundNs / kMs);
      return;
    }
    struct timespec nap {
      0, 20'000
    };
    nanosleep(&nap, nullptr);
  }
}

void DriverHost::Impl::EndLeftovers(const std::shared_ptr<Instance>& inst) {
  if (!inst->cgroup || inst->cgroup->ProcessCount() <= 1) return;
  KillInstance(inst);
  const int64_t until = MonotonicNanos() + 50 * kMs;
  while (inst->cgroup->ProcessCount() > 0 && MonotonicNanos() < until) {
    struct timespec nap {
      0, 20'000
    };
    nanosleep(&nap, nullptr);
  }
}

void DriverHost::Impl::OnDetect(const std::shared_ptr<Instance>& inst, Detection d) {
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

void DriverHost::Impl::MarkFailed(const Detection& d) {
  if (upgrade_) FinishUpgrade({.reason = "the device failed during the upgrade: " + d.ToString()});
  spdlog::error("[{}] restart budget spent ({} restarts in {} s); device failed: {}", options_.device_name,
                policy_.options().budget, policy_.options().window_ns / 1'000'000'000, d.ToString());
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

void DriverHost::Impl::FenceDataPath(Errc code) {
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

void DriverHost::Impl::CollectPublishedLocked() {
  if (!rings_live_ || in_flight_ == 0) return;
  std::vector<Completion> out(interrupted_.size() + in_flight_);
  const size_t n = PollLocked(out);
  interrupted_.insert(interrupted_.end(), out.begin(), out.begin() + static_cast<ptrdiff_t>(n));
  data_violation_.clear();
}

void DriverHost::Impl::FailPendingCalls(Errc code, const std::string& why) {
  auto calls = std::move(calls_);
  calls_.clear();
  for (auto& [id, call] : calls) call->Finish(Fail(code, why));
}

}  // namespace umbra::runtime
