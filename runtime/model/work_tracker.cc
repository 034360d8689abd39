#include "runtime/model/work_tracker.h"

#include <utility>
#include <vector>

namespace umbra::model {

WorkToken& WorkToken::operator=(WorkToken&& other) noexcept {
  if (this != &other) {
    Release();
    state_ = std::move(other.state_);
  }
  return *this;
}

void WorkToken::Release() {
  if (!state_) return;
  {
    std::lock_guard lk(state_->mu);
    --state_->in_flight;
  }
  state_->idle.notify_all();
  state_.reset();
}

TimerRegistration& TimerRegistration::operator=(TimerRegistration&& other) noexcept {
  if (this != &other) {
    Reset();
    state_ = std::move(other.state_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void TimerRegistration::Reset() {
  auto state = state_.lock();
  if (state && id_ != 0) {
    std::lock_guard lk(state->mu);
    state->timers.erase(id_);
  }
  state_.reset();
  id_ = 0;
}

Result<WorkToken> WorkTracker::BeginWork() {
  std::lock_guard lk(state_->mu);
  if (state_->unloading) return Fail(Errc::kBusy, "driver " + state_->owner + " is unloading");
  ++state_->in_flight;
  return WorkToken(state_);
}

Result<void> WorkTracker::DeferCallback(std::function<void()> fn) {
  std::lock_guard lk(state_->mu);
  if (state_->unloading) {
    return Fail(Errc::kBusy, "driver " + state_->owner + " is unloading: no new deferred callbacks");
  }
  state_->deferred.push_back(std::move(fn));
  return {};
}

size_t WorkTracker::RunDeferred() {
  std::unique_lock lk(state_->mu);
  size_t ran = 0;
  // Only what is queued now: a callback that defers another does not loop us.
  size_t budget = state_->deferred.size();
  while (ran < budget && !state_->deferred.empty()) {
    auto fn = std::move(state_->deferred.front());
    state_->deferred.pop_front();
    ++state_->running_callbacks;
    lk.unlock();
    fn();
    lk.lock();
    --state_->running_callbacks;
    ++ran;
  }
  lk.unlock();
  state_->idle.notify_all();
  return ran;
}

TimerRegistration WorkTracker::AddTimer(std::function<void()> cancel) {
  std::lock_guard lk(state_->mu);
  uint64_t id = state_->next_timer++;
  state_->timers.emplace(id, std::move(cancel));
  return TimerRegistration(state_, id);
}

int64_t WorkTracker::in_flight() const {
  std::lock_guard lk(state_->mu);
  return state_->in_flight;
}

size_t WorkTracker::deferred_pending() const {
  std::lock_guard lk(state_->mu);
  return state_->deferred.size();
}

bool WorkTracker::unloading() const {
  std::lock_guard lk(state_->mu);
  return state_->unloading;
}

Result<void> WorkTracker::BeginUnload() {
  std::lock_guard lk(state_->mu);
  if (state_->in_flight > 0) {
    return Fail(Errc::kBusy,
                "driver " + state_->owner + " has " + std::to_string(state_->in_flight) + " operation(s) in flight");
  }
  state_->unloading = true;
  return {};
}

Result<void> WorkTracker::Drain(std::chrono::nanoseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // 1. Timers first, so that none fires and queues more work meanwhile.
  std::map<uint64_t, std::function<void()>> timers;
  {
    std::lock_guard lk(state_->mu);
    timers.swap(state_->timers);
  }
  for (auto& [id, cancel] : timers) {
    if (cancel) cancel();
  }
  // 2. Callbacks already queued run here (new ones are refused).
  RunDeferred();
  // 3. The barrier: callbacks running on other threads, and work that began
  //    before BeginUnload closed the door.
  std::unique_lock lk(state_->mu);
  bool idle = state_->idle.wait_until(lk, deadline, [&] {
    return state_->running_callbacks == 0 && state_->in_flight == 0 && state_->deferred.empty();
  });
  if (idle) return {};
  return Fail(Errc::kTimeout,
              "unloading driver " + state_->owner + ": " + std::to_string(state_->running_callbacks) +
                  " deferred callback(s) and " + std::to_string(state_->in_flight) +
                  " operation(s) still running after " +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) + " ms");
}

void WorkTracker::AbortUnload() {
  std::lock_guard lk(state_->mu);
  state_->unloading = false;
}

}  // namespace umbra::model
