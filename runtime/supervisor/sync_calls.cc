// Synchronous control calls: a message sent on the loop, the caller waiting for
// the answer correlated by its id.
#include "runtime/supervisor/driver_host_impl.h"

#include <boost/asio/post.hpp>

#include "base/clock.h"

namespace umbra::runtime {

Result<std::string> DriverHost::Impl::SendAndWait(std::function<HostToDriver(uint64_t id)> build, int64_t timeout_ns,
                                                  const std::string& what) {
  auto r = SendAndWaitAll(1, std::move(build), timeout_ns, what);
  if (!r) return std::unexpected(r.error());
  return std::move(r->front());
}

Result<std::vector<std::string>> DriverHost::Impl::SendAndWaitAll(size_t n,
                                                                  std::function<HostToDriver(uint64_t first_id)> build,
                                                                  int64_t timeout_ns, const std::string& what) {
  std::vector<std::shared_ptr<PendingCall>> calls(n);
  for (auto& c : calls) c = std::make_shared<PendingCall>();
  asio::post(io_, [this, calls, build = std::move(build)]() mutable { SendPending(calls, build); });
  const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout_ns);
  std::vector<std::string> bodies;
  for (size_t i = 0; i < n; ++i) {
    std::unique_lock lock(calls[i]->mu);
    if (!calls[i]->cv.wait_until(lock, until, [&] { return calls[i]->result.has_value(); })) {
      lock.unlock();
      std::vector<uint64_t> ids;
      for (size_t j = i; j < n; ++j) {
        std::lock_guard l(calls[j]->mu);
        ids.push_back(calls[j]->id);
      }
      asio::post(io_, [this, ids] {
        for (uint64_t id : ids) calls_.erase(id);
      });
      return Fail(Errc::kTimeout, what + " to " + options_.device_name + " timed out");
    }
    if (!*calls[i]->result) return std::unexpected(calls[i]->result->error());
    bodies.push_back(std::move(**calls[i]->result));
  }
  return bodies;
}

void DriverHost::Impl::SendPending(const std::vector<std::shared_ptr<PendingCall>>& calls,
                                   const std::function<HostToDriver(uint64_t first_id)>& build) {
  if (state_ != DeviceState::kRunning || !current_) {
    for (const auto& c : calls) c->Finish(Fail(StateErrc(), StateMessage()));
    return;
  }
  const uint64_t first_id = call_counter_ + 1;
  call_counter_ += calls.size();
  HostToDriver m = build(first_id);
  if (auto r = current_->control.Send(m, {}, ipc::Blocking::kDontWait); !r) {
    // A peer that is gone has died: the caller sees the crash, as it
    // would had the message gone out just before.
    Errc code = r.error().code == Errc::kNoDevice ? Errc::kInterrupted : r.error().code;
    for (const auto& c : calls) c->Finish(Fail(code, "driver died before the call: " + r.error().message));
    return;
  }
  const int64_t sent_ns = MonotonicNanos();
  const int64_t sent_own_ns = [&] {
    std::lock_guard lock(mu_);
    return OwnTimeUpperBoundLocked(sent_ns);
  }();
  for (size_t i = 0; i < calls.size(); ++i) {
    calls[i]->sent_ns = sent_ns;
    calls[i]->sent_own_ns = sent_own_ns;
    calls_[first_id + i] = calls[i];
    std::lock_guard lock(calls[i]->mu);
    calls[i]->id = first_id + i;
  }
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

Result<std::vector<std::string>> DriverHost::Impl::CallBatch(std::vector<DriverCall> batch, int64_t timeout_ns) {
  if (batch.empty()) return std::vector<std::string>();
  const size_t n = batch.size();
  return SendAndWaitAll(
      n,
      [batch = std::move(batch)](uint64_t first_id) {
        HostToDriver m;
        auto* b = m.mutable_call_batch();
        for (size_t i = 0; i < batch.size(); ++i) {
          auto* c = b->add_calls();
          c->set_id(first_id + i);
          c->set_method(batch[i].method);
          c->set_body(batch[i].body);
        }
        return m;
      },
      timeout_ns, "a batch of " + std::to_string(n) + " calls");
}

}  // namespace umbra::runtime
