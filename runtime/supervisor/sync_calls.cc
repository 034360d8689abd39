// Synchronous control calls: a message sent on the loop, the caller waiting for
// the answer correlated by its id.
#include "runtime/supervisor/driver_host_impl.h"

#include <boost/asio/post.hpp>

#include "runtime/base/clock.h"

namespace umbra::runtime {

Result<std::string> DriverHost::Impl::SendAndWait(std::function<HostToDriver(uint64_t id)> build, int64_t timeout_ns,
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

Result<std::string> DriverHost::Impl::Call(uint32_t method, std::string body, int64_t timeout_ns) {
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

}  // namespace umbra::runtime
