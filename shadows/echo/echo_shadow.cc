#include "shadows/echo/echo_shadow.h"

#include <cstring>

#include "protocols/echo/echo_protocol.h"
#include "recorder/recorder.h"
#include "base/clock.h"
#include "shadows/data_path.h"

namespace umbra::shadows::echo {

namespace protocol = ::umbra::echo;  // not shadows::echo, this class

std::unique_ptr<EchoShadow> EchoShadow::Create(runtime::Host& host, RecoveryMode mode) {
  return std::unique_ptr<EchoShadow>(new EchoShadow(host, Options{.class_name = "echo", .mode = mode}));
}

// Recorded as the application sees it: one request per call, completed when
// the call returns, so a recovery the call waited through is inside its
// latency and the first call back after a crash ends the gap.
Result<void> EchoShadow::Echo(std::span<std::byte> data, int64_t timeout_ns) {
  recorder::Recorder& rec = host().recorder();
  if (!rec.on()) return EchoThroughDriver(data, timeout_ns);
  const int64_t start = MonotonicNanos();
  rec.RequestSubmitted(host().recorder_device(), recorder::RequestOp::kOther, data.size(), start);
  Result<void> r = EchoThroughDriver(data, timeout_ns);
  const int64_t now = MonotonicNanos();
  const recorder::RequestOutcome outcome = recorder::OutcomeOfStatus(r ? 0 : static_cast<int32_t>(r.error().code));
  rec.RequestCompleted(host().recorder_device(), recorder::RequestOp::kOther, data.size(), now - start, outcome, now);
  return r;
}

Result<void> EchoShadow::EchoThroughDriver(std::span<std::byte> data, int64_t timeout_ns) {
  runtime::Host& h = host();
  if (data.size() > h.buffer_size()) return Fail(Errc::kInvalidArgument, "payload larger than a buffer");
  auto buf = h.AllocBuffer();
  if (!buf) return Fail(Errc::kUnavailable, "no free buffer");
  struct Free {
    runtime::Host& h;
    uint32_t b;
    ~Free() { h.FreeBuffer(b); }
  } free_buffer{h, *buf};
  const uint32_t len = static_cast<uint32_t>(data.size());
  const runtime::Completion c = UMBRA_TRY(RoundTrip(
      *this, [this] { return CheckServing(); },
      {.request = {.op = protocol::kEcho, .offset = *buf, .length = len, .capacity = len},
       .prepare = [&] { std::memcpy(h.buffer(*buf), data.data(), len); },  // a dead driver may have half done it
       .deadline_ns = MonotonicNanos() + timeout_ns}));
  if (c.status != 0) return Fail(static_cast<Errc>(c.status), "driver refused the request");
  std::memcpy(data.data(), h.buffer(*buf), len);
  return {};
}

Result<void> EchoShadow::SetTag(std::string tag) {
  UMBRA_TRY(ConfigCall("tag", 0, protocol::kSetTag, std::move(tag)));
  return {};
}

std::string EchoShadow::Tag() const {
  auto& self = const_cast<EchoShadow&>(*this);
  std::lock_guard lock(self.config_mu());
  return self.config_log().Get("tag").value_or("");
}

Result<std::string> EchoShadow::DriverTag() { return host().Call(protocol::kGetTag, "", 1'000'000'000); }

}  // namespace umbra::shadows::echo
