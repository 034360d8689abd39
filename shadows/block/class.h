// The block class as one unit: the emulated disk ("umbra,disk-emu", with
// its image file, cache and ring and buffer sizes), the block shadow and its
// settings, and the campaign workloads "disk-verifier" and "sqlite".
//
// Thread safety: as ClassRegistry.
#pragma once

#include "base/result.h"
#include "shadows/class_registry.h"

namespace umbra::shadows {

Result<void> RegisterBlockClass(ClassRegistry& registry);

}  // namespace umbra::shadows
