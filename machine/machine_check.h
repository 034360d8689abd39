// CheckMachine: what a machine would refuse, or leave undone without saying
// why, found before anything is built — `umbra validate` and `umbra run` run
// it on every machine file they load:
//
//   * every device's compatible matches a driver on its bus (a misspelt one
//     leaves the device unbound), and every driver's match table matches a
//     device;
//   * a device a driver binds has a device_class with a shadow class;
//   * its "shadow.<key>" settings are ones that class takes, with values of
//     the right kind (ShadowRegistry::CheckSettings);
//   * its other settings are ones its hardware and the hardware's driver take,
//     with values the hardware accepts (HardwareRegistry::CheckSettings).
//
//   auto m = model::LoadMachine(path, BuiltinMachineCheck());
//   // "m.textproto:12:34: devices[1].settings[\"shadow.queue_events\"]: the block shadow has no setting ..."
//
// Thread safety: free functions without shared state.
#pragma once

#include <optional>

#include "runtime/hw/hardware.h"
#include "runtime/model/machine.h"

namespace umbra::proto {
class Machine;
class MachineDevice;
class MachineDriver;
}  // namespace umbra::proto
namespace umbra::shadows {
class ShadowRegistry;
}  // namespace umbra::shadows

namespace umbra::machine {

// The first thing `m` would be refused for, as a located field.
std::optional<model::FieldError> CheckMachine(const proto::Machine& m, const shadows::ShadowRegistry& shadows,
                                              const HardwareRegistry& hardware);
// The driver that binds device `d` (matched as the model matches), or null.
const proto::MachineDriver* MatchingDriver(const proto::Machine& m, const proto::MachineDevice& d);
// CheckMachine with the built-in shadow classes and hardware.
model::MachineCheck BuiltinMachineCheck();

}  // namespace umbra::machine
