// WorkTracker: a driver's in-flight work, deferred callbacks and timers, so
// that unloading the driver can wait for all of it (the rcu_barrier lesson).
//
//   WorkTracker& work = driver->work();
//   auto token = work.BeginWork();          // kBusy once the driver unloads
//   if (!token) return std::unexpected(token.error());
//   ... send the request; `token` is released when the reply is handled ...
//   work.DeferCallback([] { FreeRequestLater(); });   // runs in RunDeferred()
//   TimerRegistration t = work.AddTimer([&] { timer.cancel(); });
//
// Model::UnloadDriver refuses while tokens are held (CanUnload), then: new
// work and new callbacks are refused, timers are cancelled first (so none can
// queue more callbacks), queued callbacks run on the unloading thread, and it
// waits, up to a timeout, for callbacks running on other threads.
//
// Thread safety: every member may be called from any thread. Tokens and timer
// registrations may outlive the tracker (they share its state).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"

namespace umbra::model {

namespace internal {
struct WorkState {
  explicit WorkState(std::string n) : owner(std::move(n)) {}
  const std::string owner;  // the driver's name, for messages
  std::mutex mu;
  std::condition_variable idle;
  bool unloading = false;                            // guarded by mu
  int64_t in_flight = 0;                             // guarded by mu
  int64_t running_callbacks = 0;                     // guarded by mu
  std::deque<std::function<void()>> deferred;        // guarded by mu
  std::map<uint64_t, std::function<void()>> timers;  // guarded by mu
  uint64_t next_timer = 1;                           // guarded by mu
};
}  // namespace internal

// One unit of in-flight work; released when destroyed. Movable.
class WorkToken {
 public:
  WorkToken() = default;
  explicit WorkToken(std::shared_ptr<internal::WorkState> s) : state_(std::move(s)) {}
  WorkToken(WorkToken&& other) noexcept = default;
  WorkToken& operator=(WorkToken&& other) noexcept;
  ~WorkToken() { Release(); }
  void Release();

 private:
  // Keeps the counter alive even if the driver is gone first.
  std::shared_ptr<internal::WorkState> state_;
};

// A timer the tracker cancels on unload; unregisters when destroyed. Movable.
class TimerRegistration {
 public:
  TimerRegistration() = default;
  TimerRegistration(std::weak_ptr<internal::WorkState> s, uint64_t id) : state_(std::move(s)), id_(id) {}
  TimerRegistration(TimerRegistration&& other) noexcept
      : state_(std::move(other.state_)), id_(std::exchange(other.id_, 0)) {}
  TimerRegistration& operator=(TimerRegistration&& other) noexcept;
  ~TimerRegistration() { Reset(); }
  void Reset();

 private:
  std::weak_ptr<internal::WorkState> state_;  // weak: a registration never keeps a tracker alive
  uint64_t id_ = 0;
};

class WorkTracker {
 public:
  explicit WorkTracker(std::string owner) : state_(std::make_shared<internal::WorkState>(std::move(owner))) {}

  // kBusy "driver e1000 is unloading" once an unload began.
  Result<WorkToken> BeginWork();
  // Queues `fn` to run in RunDeferred (or in the unload barrier).
  Result<void> DeferCallback(std::function<void()> fn);
  // Runs the callbacks queued so far on the calling thread; returns how many.
  size_t RunDeferred();
  // Registers how to cancel a timer; UnloadDriver calls `cancel` first.
  TimerRegistration AddTimer(std::function<void()> cancel);

  int64_t in_flight() const;
  size_t deferred_pending() const;
  bool unloading() const;

  // For the model: refuses (kBusy) with tokens held, otherwise refuses new work.
  Result<void> BeginUnload();
  // For the model: cancel timers, run queued callbacks, wait for running ones.
  Result<void> Drain(std::chrono::nanoseconds timeout);
  // For the model: an unload that failed; accept work again.
  void AbortUnload();

 private:
  // Shared with tokens and registrations, which may outlive the tracker.
  std::shared_ptr<internal::WorkState> state_;
};

}  // namespace umbra::model
