// The data path (client thread, under mu_): the request slot table behind
// Submit, Poll and Wait, with every completion checked before it is handed out.
#include "runtime/supervisor/driver_host_impl.h"

#include <sched.h>
#include <algorithm>

#include <boost/asio/post.hpp>

#include "base/clock.h"
#include "base/spin.h"
#include "base/tsan.h"
#include "runtime/supervisor/cookie.h"

namespace umbra::runtime {

Result<size_t> DriverHost::Impl::Submit(std::span<const Request> reqs) {
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
    const uint32_t generation = NextGeneration(slots_[slot].generation);
    const uint64_t id = RequestCookie{.index = slot, .tag = generation}.Encode();
    ipc::Descriptor d{
        .id = id, .op = r.op, .flags = r.flags, .status = 0, .offset = r.offset, .length = r.length, .arg = r.arg};
    if (!ring.TryPush(d)) break;
    free_slots_.pop_back();
    slots_[slot] = Slot{.id = id,
                        .cookie = r.cookie,
                        .offset = r.offset,
                        .capacity = cap,
                        .submitted_ns = now,
                        .submitted_own_ns = own,
                        .generation = generation};
    ++n;
  }
  if (n == 0) return size_t{0};
  in_flight_ += n;
  stats_.requests_submitted += n;
  CrossProcessRelease(data_->pool());  // the device may read the payloads in place
  if (ring.Publish()) data_->submit_doorbell().Signal();
  return n;
}

size_t DriverHost::Impl::PollLocked(std::span<Completion> out) {
  size_t n = 0;
  while (n < out.size() && !interrupted_.empty()) {
    out[n++] = interrupted_.front();
    interrupted_.erase(interrupted_.begin());
  }
  if (!rings_live_) return n;
  auto& ring = data_->complete();
  ipc::Descriptor d;
  while (n < out.size() && data_violation_.empty() && ring.TryPop(d)) {
    const uint32_t slot = RequestCookie::Decode(d.id).index;
    if (slot >= slots_.size() || slots_[slot].id != d.id || d.id == 0) {
      data_violation_ = "completion for unknown request id " + std::to_string(d.id);
      break;
    }
    Slot& s = slots_[slot];
    if (d.length > s.capacity) {
      data_violation_ =
          "completion length " + std::to_string(d.length) + " exceeds buffer of " + std::to_string(s.capacity);
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

size_t DriverHost::Impl::Poll(std::span<Completion> out) {
  std::lock_guard lock(mu_);
  return PollLocked(out);
}

bool DriverHost::Impl::HandOverTheCpu() {
  constexpr size_t kFewInFlight = 2;
  const int cpu = sched_getcpu();
  data_->complete().NoteCpu(cpu);
  return cpu >= 0 && in_flight_ <= kFewInFlight && data_->submit().consumer_cpu() == cpu;
}

size_t DriverHost::Impl::Wait(std::span<Completion> out, int64_t timeout_ns) {
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
      if (!interrupted_.empty() || (rings_live_ && data_->complete().Available() > 0) || !rings_live_) {
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

Errc DriverHost::Impl::StateErrc() const {
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

std::string DriverHost::Impl::StateMessage() const {
  return options_.device_name + " is " + DeviceStateName(state_.load());
}

}  // namespace umbra::runtime
