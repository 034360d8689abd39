#include "drivers/echo/echo_driver.h"

#include <cstddef>

#include "drivers/sdk/probe.h"

namespace umbra::drivers {

Result<void> EchoDriver::Probe(sdk::Context& ctx) {
  UMBRA_TRY(sdk::ProbePrologue({.device = "echo", .sites = kEchoSites, .probe_site = "echo.probe"}));
  ctx.Log(sdk::LogLevel::kDebug, "echo probed, instance " + std::to_string(ctx.device().instance));
  return {};
}

void EchoDriver::OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) {
  ++served_;
  switch (req.op) {
    case kEcho: {
      if (!ctx.InPool(req.offset, req.length)) {
        ctx.Complete(req, static_cast<int32_t>(Errc::kInvalidArgument), 0);
        return;
      }
      std::byte* p = ctx.pool() + req.offset;
      for (uint32_t i = 0; i < req.length; ++i) p[i] = ~p[i];
      ctx.Complete(req, 0, req.length, req.arg);
      return;
    }
    case kNop: ctx.Complete(req, 0, 0, req.arg); return;
    default: ctx.Complete(req, static_cast<int32_t>(Errc::kInvalidArgument), 0); return;
  }
}

Result<std::string> EchoDriver::OnCall(sdk::Context&, uint32_t method, std::string_view body) {
  switch (method) {
    case kSetTag: tag_ = std::string(body); return std::string();
    case kGetTag: return tag_;
    case kGetCount: return std::to_string(served_);
    default: return Fail(Errc::kInvalidArgument, "echo has no method " + std::to_string(method));
  }
}

}  // namespace umbra::drivers
