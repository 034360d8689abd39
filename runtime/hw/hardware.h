// Hardware: the emulated device behind one device of a machine, made by
// compatible string from a HardwareRegistry.
//
//   HardwareRegistry registry;
//   RegisterBuiltinHardware(registry);      // every class's (shadows/builtin/)
//   auto hw = UMBRA_TRY(registry.Create(
//       {.device = "nic0", .compatible = {"umbra,e1000-emu"}, .settings = {{"mac", "02:00:00:00:00:07"}},
//        .state_dir = "/tmp/umbra-run"}));
//   if (hw) {                                // null: nothing to emulate (echo)
//     hw->device()->Start();
//     auto* nic = dynamic_cast<NicHardware*>(hw.get());   // its wire's peer end (shadows/net/class.h)
//   }
//
// A class of hardware registers its factory, with its ring and buffer sizes,
// from its class's registration (shadows/<class>/class.cc); nothing here or in
// the machine changes.
//
// Thread safety: register everything before use; Create may then be called
// from any thread. A Hardware object is used as its hw::Device says.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/hw/device.h"
#include "runtime/ipc/data_channel.h"

namespace umbra::hw::uart {
class Line;
}  // namespace umbra::hw::uart
namespace umbra::hw::nic {
class Nic;
class PeerEndpoint;
}  // namespace umbra::hw::nic

namespace umbra::shadows {
class Shadow;
}  // namespace umbra::shadows

namespace umbra::machine {

// What a factory is given: the device as the machine file describes it.
struct HardwareSpec {
  std::string device;                   // "nic0"
  std::vector<std::string> compatible;  // most specific first
  std::map<std::string, std::string> settings;
  std::string state_dir;  // where files (disk images) go when a path is relative
};

// One device's emulated hardware and what its driver's data channel needs.
class Hardware {
 public:
  virtual ~Hardware() = default;
  virtual hw::Device* device() = 0;
  // Ring and buffer sizes the class's driver and shadow expect.
  virtual ipc::DataChannelOptions data_options() const = 0;
  // Links the class's shadow to what it may read of the device beside the
  // driver (the serial class: its receive positions), before it starts.
  virtual void Connect(shadows::Shadow&) {}
};

using HardwareFactory = std::function<Result<std::unique_ptr<Hardware>>(const HardwareSpec& spec)>;

// The settings a device of some hardware may carry: the hardware's own and
// its driver's (a device's settings reach both).
struct HardwareSettings {
  std::vector<std::string> keys;
  // Checks the values without making anything (no image file, no TAP); null: any value.
  std::function<Result<void>(const HardwareSpec& spec)> check;
};

class HardwareRegistry {
 public:
  // Refuses a compatible string registered twice (kAlreadyExists).
  Result<void> Register(const std::string& compatible, HardwareFactory factory, HardwareSettings settings = {});
  // Refuses (kInvalidArgument) a key of spec.settings that the hardware of its
  // first compatible with a factory does not take, naming the ones it does,
  // or a value its check refuses. No hardware for any compatible: nothing to
  // check. The caller leaves out the keys that are not the device's (shadow.*).
  Result<void> CheckSettings(const HardwareSpec& spec) const;
  // The hardware for the first of spec.compatible that has a factory; null
  // (not an error) when none has: the device has nothing to emulate.
  Result<std::unique_ptr<Hardware>> Create(const HardwareSpec& spec) const;
  bool Has(const std::string& compatible) const { return factories_.count(compatible) > 0; }
  std::vector<std::string> names() const;

 private:
  struct Entry {
    HardwareFactory factory;
    HardwareSettings settings;
  };
  std::map<std::string, Entry> factories_;
};

// A device setting's text, or `fallback` when the device has none.
std::string Setting(const HardwareSpec& spec, const std::string& key, std::string fallback = "");
// A device setting as a whole number; kInvalidArgument naming it when it is not one.
Result<uint64_t> NumberSetting(const HardwareSpec& spec, const std::string& key, uint64_t fallback);
// A device setting as true/1 or false/0; kInvalidArgument naming it otherwise.
Result<bool> BoolSetting(const HardwareSpec& spec, const std::string& key, bool fallback);

}  // namespace umbra::machine
