// LinkTo: the receive-position link between a uart shadow and the emulated
// UART it stands in front of (UartShadow::ConnectDevice), for whoever holds
// both: the machine's hardware adapter, campaign workloads and tests. The
// shadow library itself does not depend on the emulation.
//
//   shadow->ConnectDevice(shadows::uart::LinkTo(*uart));  // before Open
//
// Thread safety: the link calls the device's thread-safe accessors; the
// device must outlive the shadow.
#pragma once

#include <cstdint>

#include "runtime/hw/uart/uart_device.h"
#include "shadows/uart/uart_shadow.h"

namespace umbra::shadows::uart {

inline UartDeviceLink LinkTo(hw::uart::UartDevice& device) {
  return UartDeviceLink{.positions = [&device] { return device.receive_positions(); },
                        .acknowledge = [&device](uint64_t position) { device.AcknowledgeReceived(position); }};
}

}  // namespace umbra::shadows::uart
