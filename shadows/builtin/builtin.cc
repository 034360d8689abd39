#include "shadows/builtin/builtin.h"

#include <cstdio>
#include <cstdlib>

#include "shadows/block/block_shadow.h"
#include "shadows/echo/echo_shadow.h"
#include "shadows/net/net_shadow.h"
#include "shadows/sound/sound_shadow.h"
#include "shadows/uart/uart_shadow.h"

namespace umbra::shadows {

namespace {

void Add(ShadowRegistry& registry, const char* name, ShadowFactory factory) {
  if (auto r = registry.Register(name, std::move(factory)); !r) {
    std::fprintf(stderr, "RegisterBuiltinShadows: %s\n", r.error().ToString().c_str());
    std::abort();
  }
}

Result<std::unique_ptr<Shadow>> CreateEchoShadow(runtime::DriverHost& host, const ShadowSettings&,
                                                 RecoveryMode mode) {
  return std::unique_ptr<Shadow>(echo::EchoShadow::Create(host, mode));
}

}  // namespace

void RegisterBuiltinShadows(ShadowRegistry& registry) {
  Add(registry, "echo", CreateEchoShadow);
  Add(registry, "net", net::CreateNetShadow);
  Add(registry, "uart", uart::CreateUartShadow);
  Add(registry, "block", block::CreateBlockShadow);
  Add(registry, "sound", sound::CreateSoundShadow);
}

}  // namespace umbra::shadows
