#include "shadows/uart/class.h"

#include "runtime/hw/uart/uart_device.h"
#include "runtime/hw/uart/uart_regs.h"
#include "shadows/uart/device_link.h"
#include "shadows/uart/uart_shadow.h"
#include "shadows/uart/workloads/uart_echo.h"

namespace umbra::shadows {

namespace {

class EmulatedUart final : public machine::UartHardware {
 public:
  explicit EmulatedUart(std::unique_ptr<hw::uart::UartDevice> uart) : uart_(std::move(uart)) {}
  ~EmulatedUart() override { uart_->Stop(); }
  hw::Device* device() override { return uart_.get(); }
  hw::uart::Line* line() override { return &uart_->line(); }
  ipc::DataChannelOptions data_options() const override {
    return {.ring_entries = 16, .buffer_size = 256, .buffer_count = 32};
  }
  // The shadow reads and acknowledges the UART's receive positions, so that
  // no received byte is lost or passed on changed (shadows/uart/device_link.h).
  void Connect(Shadow& shadow) override {
    if (auto* s = dynamic_cast<uart::UartShadow*>(&shadow)) s->ConnectDevice(uart::LinkTo(*uart_));
  }

 private:
  std::unique_ptr<hw::uart::UartDevice> uart_;  // the device and its line
};

Result<std::unique_ptr<machine::Hardware>> CreateUart(const machine::HardwareSpec& spec) {
  auto uart = UMBRA_TRY(hw::uart::UartDevice::Create({.name = spec.device}));
  return std::unique_ptr<machine::Hardware>(new EmulatedUart(std::move(uart)));
}

}  // namespace

// The hardware's keys, then its driver's (drivers/uart/), then "failpoints"
// (armed in the driver before probe).
Result<void> RegisterUartClass(ClassRegistry& registry) {
  UMBRA_TRY(registry.AddHardware(hw::uart::kCompatible, CreateUart, {{"read_timeout_ms", "failpoints"}, nullptr}));
  UMBRA_TRY(registry.AddShadow("uart", uart::CreateUartShadow, uart::UartSettings().specs()));
  UMBRA_TRY(registry.AddWorkload<faultinject::campaign::UartEchoWorkload>());
  return {};
}

}  // namespace umbra::shadows
