// The watchdog: heartbeats, request and call deadlines, and idle CPU, judged in
// the driver's own time (cpu_time.h); and the periodic ring check.
#include "runtime/supervisor/driver_host_impl.h"

#include <algorithm>

#include "base/clock.h"

namespace umbra::runtime {

void DriverHost::Impl::ArmWatchdog() {
  watchdog_.expires_after(Nanos(watchdog_tick_ns_));
  watchdog_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || shutting_down_) return;
    OnWatchdog();
    ArmWatchdog();
  });
}

bool DriverHost::Impl::CurrentIsReady() const {
  return current_ && current_->phase == Instance::Phase::kReady && !current_->awaiting_exit;
}

void DriverHost::Impl::OnWatchdog() {
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

void DriverHost::Impl::StartOwnTime(const Instance& inst, int64_t now) {
  own_time_ = std::make_unique<OwnTime>(inst.pid, now);
  std::lock_guard lock(mu_);
  own_base_ns_ = own_ns_;
  own_wall_ns_ = now;
}

int64_t DriverHost::Impl::AdvanceOwnTime(int64_t now, Heard heard) {
  if (!own_time_) return own_ns_;
  const int64_t own = own_base_ns_ + own_time_->Advance(now, heard);
  std::lock_guard lock(mu_);
  own_ns_ = own;
  own_wall_ns_ = now;
  return own;
}

int64_t DriverHost::Impl::OwnTimeUpperBoundLocked(int64_t now) const {
  return own_ns_ + std::max<int64_t>(0, now - own_wall_ns_);
}

std::optional<std::string> DriverHost::Impl::MissedHeartbeat(int64_t now) {
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

std::optional<std::string> DriverHost::Impl::CheckIdleCpu(int64_t now) {
  bool idle = calls_.empty();
  {
    std::lock_guard lock(mu_);
    idle = idle && in_flight_ == 0;
  }
  std::optional<int64_t> cpu;
  if (idle && current_->cgroup) cpu = current_->cgroup->CpuNanos();
  return current_->misbehaviour->OnTick(now, idle, cpu);
}

std::optional<std::string> DriverHost::Impl::CheckRings() {
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

std::optional<std::pair<uint64_t, int64_t>> DriverHost::Impl::OldestRequestPastWallDeadline(int64_t now) const {
  std::lock_guard lock(mu_);
  if (in_flight_ == 0) return std::nullopt;
  std::optional<std::pair<uint64_t, int64_t>> oldest;
  for (const Slot& s : slots_) {
    if (s.id == 0 || now - s.submitted_ns <= options_.request_deadline_ns) continue;
    if (!oldest || s.submitted_own_ns < oldest->second) oldest = {s.id, s.submitted_own_ns};
  }
  return oldest;
}

std::optional<std::string> DriverHost::Impl::OldestRequestPastDeadline(int64_t now) {
  auto oldest = OldestRequestPastWallDeadline(now);
  if (!oldest || AdvanceOwnTime(now) - oldest->second <= options_.request_deadline_ns) return std::nullopt;
  return "request " + std::to_string(oldest->first) + " older than " +
         std::to_string(options_.request_deadline_ns / kMs) + " ms of the driver's own time";
}

std::optional<std::string> DriverHost::Impl::OldestCallPastDeadline(int64_t now) {
  for (const auto& [id, call] : calls_) {
    if (now - call->sent_ns <= options_.request_deadline_ns) continue;
    if (AdvanceOwnTime(now) - call->sent_own_ns <= options_.request_deadline_ns) continue;
    return "call " + std::to_string(id) + " unanswered for " + std::to_string(options_.request_deadline_ns / kMs) +
           " ms of the driver's own time";
  }
  return std::nullopt;
}

std::optional<std::string> DriverHost::Impl::TakeDataPathViolation() {
  std::lock_guard lock(mu_);
  if (data_violation_.empty()) return std::nullopt;
  return std::exchange(data_violation_, {});
}

}  // namespace umbra::runtime
