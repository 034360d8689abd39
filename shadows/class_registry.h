// ClassRegistry: where a device class registers its parts. A class is one
// unit: its emulated hardware (by compatible string, with its ring and buffer
// sizes), its shadow (by class name, with the settings it takes) and its
// campaign workloads (by name) are registered by one function of the class,
// Register<Class>Class (shadows/<class>/class.cc), listed once in
// RegisterBuiltinClasses (shadows/builtin/). Each part goes into the registry
// the machine (hardware, shadows) or the campaign engine (workloads) looks it
// up in; a part whose registry was not given is skipped, so a caller fills
// only what it needs.
//
//   machine::HardwareRegistry hardware;
//   ShadowRegistry shadows;
//   ClassRegistry classes(&hardware, &shadows, /*workloads=*/nullptr);
//   UMBRA_TRY(RegisterBuiltinClasses(classes));
//   auto shadow = UMBRA_TRY(shadows.Create("net", host, {{"rx_buffers", "128"}}));
//
// A name registered twice is refused (kAlreadyExists), part by part.
//
// Thread safety: used by one thread while classes register; the registries
// it fills say how they are used afterwards.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/hw/hardware.h"
#include "shadows/registry.h"
#include "shadows/workload.h"

namespace umbra::shadows {

class ClassRegistry {
 public:
  // Any of the three may be null: that part of every class is skipped. The
  // registries must outlive this object (it points at them, owns nothing).
  ClassRegistry(machine::HardwareRegistry* hardware, ShadowRegistry* shadows,
                faultinject::campaign::WorkloadRegistry* workloads)
      : hardware_(hardware), shadows_(shadows), workloads_(workloads) {}

  Result<void> AddHardware(const std::string& compatible, machine::HardwareFactory factory,
                           machine::HardwareSettings settings);
  // `settings`: the keys the shadow takes (an empty list: none).
  Result<void> AddShadow(const std::string& class_name, ShadowFactory factory, std::vector<SettingSpec> settings);
  // A workload W with a static kName, made by its default constructor.
  template <class W>
  Result<void> AddWorkload() {
    if (workloads_ == nullptr) return {};
    return workloads_->Register(std::string(W::kName), [] { return std::make_unique<W>(); });
  }

 private:
  machine::HardwareRegistry* hardware_;                 // not owned; null: skipped
  ShadowRegistry* shadows_;                             // not owned; null: skipped
  faultinject::campaign::WorkloadRegistry* workloads_;  // not owned; null: skipped
};

}  // namespace umbra::shadows
