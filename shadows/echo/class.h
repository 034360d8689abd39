// The echo class as one unit: its shadow (no settings) and its campaign
// workload ("echo-stream"). The echo device has no emulated hardware.
//
// Thread safety: as ClassRegistry.
#pragma once

#include "base/result.h"
#include "shadows/class_registry.h"

namespace umbra::shadows {

Result<void> RegisterEchoClass(ClassRegistry& registry);

}  // namespace umbra::shadows
