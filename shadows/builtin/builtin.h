// RegisterBuiltinClasses: every device class Umbra ships, listed explicitly
// (no static-constructor registration): one line per class, calling its
// Register<Class>Class (shadows/<class>/class.cc). A test can fill its own
// registries instead, with a replacement class.
//
//   machine::HardwareRegistry hardware;
//   shadows::ShadowRegistry shadows;
//   shadows::ClassRegistry classes(&hardware, &shadows, nullptr);
//   UMBRA_TRY(shadows::RegisterBuiltinClasses(classes));
//
// The three functions after it fill one registry each, for the callers that
// need only that part.
//
// Thread safety: call once per set of registries, before they are shared.
#pragma once

#include "base/result.h"
#include "runtime/hw/hardware.h"
#include "shadows/class_registry.h"
#include "shadows/registry.h"
#include "shadows/workload.h"

namespace umbra::shadows {

// Registers echo, net, block, sound and uart. kAlreadyExists when a part of
// one was registered already.
Result<void> RegisterBuiltinClasses(ClassRegistry& registry);

// The shadows only. Registering them twice into one registry is a bug and aborts.
void RegisterBuiltinShadows(ShadowRegistry& registry);

}  // namespace umbra::shadows

namespace umbra::machine {

// The emulated hardware only. Registering it twice into one registry is a bug and aborts.
void RegisterBuiltinHardware(HardwareRegistry& registry);

}  // namespace umbra::machine

namespace umbra::faultinject::campaign {

// The campaign workloads only.
Result<void> RegisterBuiltinWorkloads(WorkloadRegistry& registry);

}  // namespace umbra::faultinject::campaign
