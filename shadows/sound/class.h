// The sound class as one unit: the emulated sound card (playing into a WAV
// file, with its ring and buffer sizes), the sound shadow and its settings,
// and the campaign workload "audio-playback".
//
// Thread safety: as ClassRegistry.
#pragma once

#include "base/result.h"
#include "shadows/class_registry.h"

namespace umbra::shadows {

Result<void> RegisterSoundClass(ClassRegistry& registry);

}  // namespace umbra::shadows
