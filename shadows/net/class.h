// The network class as one unit: the emulated NIC ("umbra,e1000-emu", on an
// in-process wire or a TAP interface, with its ring and buffer sizes), the
// net shadow and its settings, and the campaign workload "file-transfer".
//
//   auto* nic = dynamic_cast<machine::NicHardware*>(machine.hardware("nic0"));
//   hw::nic::PeerEndpoint* rest_of_network = nic->peer();   // null with a TAP
//
// Thread safety: as ClassRegistry; a NicHardware as its hw::Device says.
#pragma once

#include "base/result.h"
#include "runtime/hw/hardware.h"
#include "shadows/class_registry.h"

namespace umbra::hw::nic {
class Nic;
class PeerEndpoint;
}  // namespace umbra::hw::nic

namespace umbra::machine {

// A NIC and the far end of its in-process wire (null with a TAP backend).
class NicHardware : public Hardware {
 public:
  virtual hw::nic::Nic* nic() = 0;
  // The rest of the network: send frames to the NIC, receive what it sends.
  virtual hw::nic::PeerEndpoint* peer() = 0;
};

}  // namespace umbra::machine

namespace umbra::shadows {

Result<void> RegisterNetClass(ClassRegistry& registry);

}  // namespace umbra::shadows
