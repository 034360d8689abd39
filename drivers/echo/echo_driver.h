// The echo driver: the smallest driver that uses both channels.
//
// Data path: op kEcho returns the payload with every byte transformed
// (bytewise complement), so a test can tell the driver really handled it.
// Control path: method kSetTag stores a tag, kGetTag returns it, kGetCount
// returns the number of requests served by this instance.
//
// Failpoint sites: echo.probe (an error fails the probe); requests go through
// the SDK's own sdk.request site.
#pragma once

#include <cstdint>
#include <string>

#include "drivers/sdk/driver.h"

namespace umbra::drivers {

inline constexpr std::string_view kEchoSites[] = {"echo.probe"};

class EchoDriver : public sdk::Driver {
 public:
  enum Op : uint16_t { kEcho = 1, kNop = 2 };
  enum Method : uint32_t { kSetTag = 1, kGetTag = 2, kGetCount = 3 };

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
