#include "shadows/data_path.h"

#include <pthread.h>

#include <chrono>

#include "base/clock.h"

namespace umbra::shadows {

namespace {

// Waits for the driver to serve again; counts the request as queued and, once
// back, as resubmitted.
Result<void> AwaitDriver(Shadow& shadow, int64_t deadline_ns) {
  shadow.CountQueued();
  UMBRA_TRY(shadow.WaitUntilPassive(deadline_ns - MonotonicNanos()));
  shadow.CountResubmitted();
  return {};
}

}  // namespace

Result<runtime::Completion> RoundTrip(Shadow& shadow, const std::function<Result<void>()>& check_serving,
                                      RoundTripRequest r) {
  runtime::Host& host = shadow.host();
  for (;;) {
    UMBRA_TRY(check_serving());
    if (MonotonicNanos() > r.deadline_ns) return Fail(Errc::kTimeout, shadow.device_name() + ": request timed out");
    if (!shadow.passive()) {
      UMBRA_TRY(AwaitDriver(shadow, r.deadline_ns));
      continue;
    }
    if (r.prepare) r.prepare();
    auto sent = host.Submit({&r.request, 1});
    if (!sent || *sent == 0) continue;  // went down between the check and the submit
    runtime::Completion c;
    while (host.Wait({&c, 1}, r.deadline_ns - MonotonicNanos()) == 0) {
      if (MonotonicNanos() > r.deadline_ns) {
        return Fail(Errc::kTimeout, shadow.device_name() + ": request timed out");
      }
    }
    if (c.status != static_cast<int32_t>(Errc::kInterrupted)) return c;
    if (shadow.mode() == RecoveryMode::kRestartOnly) {
      shadow.CountFailed();
      return Fail(Errc::kInterrupted, shadow.device_name() + ": the driver crashed during the request");
    }
    // Sent again once the driver is back (the loop waits for it).
  }
}

void DataPath::Start(const std::string& name) {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
  pthread_setname_np(thread_.native_handle(), (name + "-dp").substr(0, 15).c_str());
}

void DataPath::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  FreeAll();
}

void DataPath::Kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

bool DataPath::Post(runtime::Request request, uint64_t tag) {
  request.cookie = next_cookie_++;
  auto sent = host_.Submit({&request, 1});
  if (!sent || *sent == 0) {
    host_.FreeBuffer(request.offset);
    return false;
  }
  posted_[request.cookie] = Posted{
      .op = request.op, .buffer = request.offset, .length = request.length, .tag = tag, .submit_ns = MonotonicNanos()};
  in_flight_.store(posted_.size(), std::memory_order_relaxed);
  return true;
}

void DataPath::Dispatch(const runtime::Completion& c) {
  auto it = posted_.find(c.cookie);
  if (it == posted_.end()) return;  // not ours (the host checks ids, so it cannot be)
  const Posted p = it->second;
  posted_.erase(it);
  in_flight_.store(posted_.size(), std::memory_order_relaxed);
  hooks_.completed(c, p);
  host_.FreeBuffer(p.buffer);
}

void DataPath::Loop() {
  runtime::Completion done[16];
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    size_t n = host_.Poll(done);
    if (n == 0 && !posted_.empty()) n = host_.Wait(done, hooks_.wait_ns);
    for (size_t i = 0; i < n; ++i) Dispatch(done[i]);
    if (shadow_.passive() && !paused_) hooks_.submit();
    if (n == 0 && posted_.empty()) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::nanoseconds(hooks_.wait_ns), [&] { return stop_ || kicked_; });
      kicked_ = false;
    }
  }
}

void DataPath::FreeAll() {
  for (const auto& [cookie, p] : posted_) host_.FreeBuffer(p.buffer);
  posted_.clear();
  in_flight_.store(0, std::memory_order_relaxed);
}

}  // namespace umbra::shadows
