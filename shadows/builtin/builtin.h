// RegisterBuiltinShadows: every shadow class Umbra ships, listed explicitly
// (no static-constructor registration). A test can fill its own registry
// instead, with a replacement class.
//
//   shadows::ShadowRegistry registry;
//   shadows::RegisterBuiltinShadows(registry);
//   auto shadow = UMBRA_TRY(registry.Create("net", host, {{"rx_buffers", "128"}}));
//
// Thread safety: call once, before the registry is shared.
#pragma once

#include "shadows/registry.h"

namespace umbra::shadows {

// Registers echo and net (one line per class). Registering them twice into
// one registry is a bug and aborts.
void RegisterBuiltinShadows(ShadowRegistry& registry);

}  // namespace umbra::shadows
