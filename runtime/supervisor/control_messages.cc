// Control messages from a driver: read in bounded batches, each checked
// against the instance's phase; anything invalid is a protocol violation.
#include "runtime/supervisor/driver_host_impl.h"

#include <signal.h>
#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "runtime/sandbox/seccomp.h"

namespace umbra::runtime {

void DriverHost::Impl::WatchControl(const std::shared_ptr<Instance>& inst) {
  inst->control_watch.async_wait(asio::posix::stream_descriptor::wait_read,
                                 [this, inst](const boost::system::error_code& ec) {
                                   if (ec || inst->phase == Instance::Phase::kDead) return;
                                   if (ReadPending(inst)) WatchControl(inst);
                                 });
}

bool DriverHost::Impl::ReadPending(const std::shared_ptr<Instance>& inst) {
  for (int i = 0; i < 64; ++i) {
    auto fds = inst->control.Receive(inst->msg, ipc::Blocking::kDontWait);
    if (!fds) {
      if (fds.error().code == Errc::kUnavailable) return true;
      if (fds.error().code == Errc::kNoDevice) {
        AwaitExitStatus(inst, Detection{.reason = DetectReason::kChannelEof, .detail = "control channel closed"});
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

void DriverHost::Impl::AwaitExitStatus(const std::shared_ptr<Instance>& inst, Detection fallback) {
  if (inst->awaiting_exit || inst->phase == Instance::Phase::kDead) return;
  inst->awaiting_exit = true;
  fallback.at_ns = MonotonicNanos();
  inst->fallback = fallback;
  inst->exit_grace.expires_after(Nanos(kExitStatusGraceNs));
  inst->exit_grace.async_wait([this, inst](const boost::system::error_code& ec) {
    if (ec || inst->phase == Instance::Phase::kDead) return;
    // On a loaded machine the loop can come back after the grace with the
    // exit already there: take its status rather than the fallback's guess.
    if (HasExited(*inst)) {
      inst->pid_watch.cancel();
      OnExited(inst);
      return;
    }
    OnDetect(inst, *inst->fallback);
  });
}

void DriverHost::Impl::Violation(const std::shared_ptr<Instance>& inst, std::string what) {
  Count([&] { ++stats_.protocol_violations; });
  OnDetect(inst, Detection{.reason = DetectReason::kProtocolViolation, .detail = std::move(what)});
}

bool DriverHost::Impl::ValidName(const std::string& s) {
  return !s.empty() && s.size() <= kMaxNameLength &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

bool DriverHost::Impl::OnMessage(const std::shared_ptr<Instance>& inst, const DriverToHost& m) {
  switch (m.msg_case()) {
    case DriverToHost::kHello: return OnHello(inst, m.hello());
    case DriverToHost::kAttached: return OnAttached(inst);
    case DriverToHost::kProbeDone: return OnProbeDone(inst, m.probe_done());
    case DriverToHost::kReply: return OnReply(inst, m.reply());
    case DriverToHost::kFailpointFired: return OnFailpointFired(inst, m.failpoint_fired());
    case DriverToHost::kHeartbeat: return OnHeartbeat(inst, m.heartbeat());
    case DriverToHost::kLog: OnLog(m.log()); return true;
    case DriverToHost::kStats: return OnStats(inst, m.stats());
    case DriverToHost::kCrash: return OnCrash(inst, m.crash());
    case DriverToHost::kExiting:
      AwaitExitStatus(inst, Detection{.reason = DetectReason::kExit, .detail = "driver called exit()"});
      return true;
    case DriverToHost::kRemoveDone:
    case DriverToHost::kFailpointsSet:
    case DriverToHost::kFailpointCounts: return OnControlAnswer(inst, m);
    case DriverToHost::MSG_NOT_SET: return Violation(inst, "empty message"), false;
  }
  return Violation(inst, "unknown message"), false;
}

bool DriverHost::Impl::OnHello(const std::shared_ptr<Instance>& inst, const proto::Hello& h) {
  if (inst->phase != Instance::Phase::kSpawned) return Violation(inst, "Hello twice"), false;
  if (h.protocol_version() != proto::PROTOCOL_VERSION_CURRENT) {
    return Violation(inst, "protocol version " + std::to_string(h.protocol_version()) + ", expected " +
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
  return inst->phase != Instance::Phase::kDead;
}

bool DriverHost::Impl::OnAttached(const std::shared_ptr<Instance>& inst) {
  using Phase = Instance::Phase;
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

bool DriverHost::Impl::OnProbeDone(const std::shared_ptr<Instance>& inst, const proto::ProbeDone& p) {
  if (inst->phase != Instance::Phase::kProbing) return Violation(inst, "unexpected ProbeDone"), false;
  if (p.status() != 0) {
    OnDetect(inst, Detection{.reason = DetectReason::kProbeFailed,
                             .code = p.status(),
                             .detail = p.message().substr(0, kMaxLogLine)});
    return false;
  }
  OnReady(inst);
  return true;
}

bool DriverHost::Impl::OnHeartbeat(const std::shared_ptr<Instance>& inst, const proto::Heartbeat& h) {
  if (inst->phase == Instance::Phase::kSpawned) return Violation(inst, "heartbeat before attach"), false;
  if (h.seq() <= inst->last_heartbeat_seq) {
    return Violation(inst, "heartbeat sequence went backwards"), false;
  }
  inst->last_heartbeat_seq = h.seq();
  inst->last_heartbeat_ns = MonotonicNanos();
  if (inst == current_ && inst->phase == Instance::Phase::kReady) {
    inst->last_heartbeat_own_ns = AdvanceOwnTime(inst->last_heartbeat_ns, Heard::kJustNow);
  }
  Count([&] { ++stats_.heartbeats; });
  return true;
}

bool DriverHost::Impl::OnStats(const std::shared_ptr<Instance>& inst, const proto::Stats& s) {
  if (s.counters_size() > 256) return Violation(inst, "too many counters"), false;
  std::lock_guard lock(mu_);
  driver_counters_.clear();
  for (const auto& c : s.counters()) {
    if (!ValidName(c.name())) continue;
    driver_counters_[c.name()] = c.value();
  }
  return true;
}

bool DriverHost::Impl::OnCrash(const std::shared_ptr<Instance>& inst, const proto::Crash& c) {
  const int sig = c.signal();
  if (sig <= 0 || sig >= 65) return Violation(inst, "crash with a bad signal number"), false;
  if (sig == SIGSYS && c.denied_syscall_plus_one() > 0) {
    const int nr = c.denied_syscall_plus_one() - 1;
    return Violation(inst, "system call " + sandbox::SyscallName(nr) + " (" + std::to_string(nr) +
                               ") is not allowed by the sandbox"),
           false;
  }
  OnDetect(
      inst,
      Detection{.reason = DetectReason::kSignal, .code = sig, .detail = "reported by the driver's signal handler"});
  return false;
}

bool DriverHost::Impl::OnControlAnswer(const std::shared_ptr<Instance>& inst, const DriverToHost& m) {
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

bool DriverHost::Impl::OnReply(const std::shared_ptr<Instance>& inst, const proto::Reply& r) {
  auto it = calls_.find(r.id());
  if (it == calls_.end()) return Violation(inst, "reply with unknown id " + std::to_string(r.id())), false;
  auto call = std::move(it->second);
  calls_.erase(it);
  if (r.status() == 0) {
    call->Finish(r.body());
  } else {
    const int s = r.status();
    Errc code = (s > 0 && s <= static_cast<int>(Errc::kInternal)) ? static_cast<Errc>(s) : Errc::kInternal;
    call->Finish(Fail(code, r.message().substr(0, kMaxLogLine)));
  }
  return true;
}

bool DriverHost::Impl::OnFailpointFired(const std::shared_ptr<Instance>& inst, const proto::FailpointFired& f) {
  if (!RecordFailpointFired(*inst, f)) return Violation(inst, "bad site or action in FailpointFired"), false;
  return true;
}

bool DriverHost::Impl::RecordFailpointFired(const Instance& inst, const proto::FailpointFired& f) {
  if (!ValidName(f.site()) || !ValidName(f.action())) return false;
  const int64_t at = std::clamp<int64_t>(f.at_ns(), inst.spawned_ns, MonotonicNanos());
  rec_.FaultInjected(rec_id_, f.site(), f.action(), options_.seed, at);
  return true;
}

void DriverHost::Impl::ReadFaultReports(Instance& inst) {
  DriverToHost m;  // not inst.msg: a message being handled may have led here
  for (int i = 0; i < 64; ++i) {
    if (!inst.control.Receive(m, ipc::Blocking::kDontWait)) return;
    if (m.has_failpoint_fired() && !RecordFailpointFired(inst, m.failpoint_fired())) return;
  }
}

void DriverHost::Impl::OnLog(const proto::Log& log) {
  const int64_t now = MonotonicNanos();
  log_tokens_ =
      std::min(options_.log_burst, log_tokens_ + (now - log_refill_ns_) * options_.log_lines_per_second / 1e9);
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

}  // namespace umbra::runtime
