// The serial-port class as one unit: the emulated UART ("umbra,uart-emu",
// with its ring and buffer sizes), the uart shadow and its settings, and the
// campaign workload "uart-echo".
//
//   auto* uart = dynamic_cast<machine::UartHardware*>(machine.hardware("ttyS0"));
//   hw::uart::Line* far_end = uart->line();
//
// Thread safety: as ClassRegistry; a UartHardware as its hw::Device says.
#pragma once

#include "base/result.h"
#include "runtime/hw/hardware.h"
#include "shadows/class_registry.h"

namespace umbra::hw::uart {
class Line;
}  // namespace umbra::hw::uart

namespace umbra::machine {

// A UART and its cable: the far end's Line, where the other machine's
// bytes come from and go to.
class UartHardware : public Hardware {
 public:
  virtual hw::uart::Line* line() = 0;
};

}  // namespace umbra::machine

namespace umbra::shadows {

Result<void> RegisterUartClass(ClassRegistry& registry);

}  // namespace umbra::shadows
