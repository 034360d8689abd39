// The echo driver: the smallest driver that uses both channels.
//
// It speaks the echo class protocol (protocols/echo/echo_protocol.h): op
// kEcho returns the payload with every byte complemented; method kSetTag
// stores a tag, kGetTag returns it, kGetCount returns the number of requests
// served by this instance.
//
// Failpoint sites: echo.probe (an error fails the probe); requests go through
// the SDK's own sdk.request site.
#pragma once

#include <cstdint>
#include <string>

#include "drivers/sdk/driver.h"
#include "protocols/echo/echo_protocol.h"

namespace umbra::drivers {

inline constexpr std::string_view kEchoSites[] = {"echo.probe"};

class EchoDriver : public sdk::Driver {
 public:
  // The protocol's ops and methods, as EchoDriver::kEcho ... for the tests.
  using Op = echo::Op;
  using Method = echo::Method;
  using enum echo::Op;
  using enum echo::Method;

  std::string_view name() const override { return "echo"; }
  std::string_view version() const override { return "1.0"; }

  Result<void> Probe(sdk::Context& ctx) override;
  void OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) override;
  Result<std::string> OnCall(sdk::Context& ctx, uint32_t method, std::string_view body) override;

  uint64_t served() const { return served_; }

 private:
  std::string tag_;
  uint64_t served_ = 0;
};

}  // namespace umbra::drivers
