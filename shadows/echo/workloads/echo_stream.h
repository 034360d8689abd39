// The echo-stream workload: a stream of echo requests through EchoShadow.
//
// Each unit echoes a payload of 16..256 bytes derived from the run's seed;
// every 16 units it changes the echo tag (a setting the shadow logs and
// replays). Verification: every byte came back transformed (complemented),
// every unit was answered, and the driver holds the tag the application set
// last (so a restarted driver got its configuration back).
//
//   std::unique_ptr<Workload> w = std::make_unique<EchoStreamWorkload>();
//
// Thread safety: one run's thread.
#pragma once

#include <memory>

#include "shadows/workload.h"
#include "shadows/echo/echo_shadow.h"

namespace umbra::faultinject::campaign {

class EchoStreamWorkload : public SingleDeviceWorkload {
 public:
  static constexpr std::string_view kName = "echo-stream";

  std::string_view name() const override { return kName; }
  std::string_view device_class() const override { return "echo"; }
  std::string_view driver() const override { return "echo"; }
  uint64_t default_units() const override { return 200; }
  std::vector<SiteUse> sites(uint64_t units) const override;

  Result<void> SetUp(WorkloadContext& ctx) override;
  WorkResult Run(WorkloadContext& ctx) override;
  void TearDown() override;

 private:
  std::unique_ptr<shadows::echo::EchoShadow> shadow_;  // the application's device; watched by the engine
};

}  // namespace umbra::faultinject::campaign
