// The uart-echo workload: a byte stream through the serial-port class
// (uart::Port, UartShadow) to a far end on the emulated UART's line that
// sends every byte back, read back by the application.
//
// The line runs at 115200 8E1 (set on both ends before faults are armed, so
// a driver restarted without the shadow's replay is back at 9600 8N1 and the
// far end reads garbage). A unit is one 64-byte chunk written and the same
// 64 bytes read back. Verification: every chunk came back unchanged and in
// order, the line saw no framing error, and the driver holds the settings the
// application set.
//
// A fault with an echo on its way back is the receive path's hard case: the
// echo may sit in the UART's receive ring, or have been consumed by the
// driver without its read completing, when the device is reset. The UART
// holds its ring over the reset and the shadow drops bytes it already has by
// their stream position (docs/fault-injection.md, uart-echo).
//
//   std::unique_ptr<Workload> w = std::make_unique<UartEchoWorkload>();
//
// Thread safety: one run's thread, plus the far end's thread Run starts and
// joins.
#pragma once

#include <memory>

#include "shadows/workload.h"
#include "runtime/hw/uart/uart_device.h"
#include "shadows/uart/uart_shadow.h"

namespace umbra::faultinject::campaign {

class UartEchoWorkload : public SingleDeviceWorkload {
 public:
  static constexpr std::string_view kName = "uart-echo";

  ~UartEchoWorkload() override;

  std::string_view name() const override { return kName; }
  std::string_view device_class() const override { return "uart"; }
  std::string_view driver() const override { return "uart"; }
  uint64_t default_units() const override { return 64; }
  std::vector<SiteUse> sites(uint64_t units) const override;

  Result<void> SetUp(WorkloadContext& ctx) override;
  WorkResult Run(WorkloadContext& ctx) override;
  void TearDown() override;

 private:
  // What the shadow received and the UART's receive count, for the record.
  std::string ReceiveSummary() const;

  std::unique_ptr<hw::uart::UartDevice> uart_;         // outlives the run's Supervisor's host, which points at it
  std::unique_ptr<shadows::uart::UartShadow> shadow_;  // the application's port; watched by the engine
};

}  // namespace umbra::faultinject::campaign
