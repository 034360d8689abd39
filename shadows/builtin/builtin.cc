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

void Add(ShadowRegistry& registry, const char* name, ShadowFactory factory, std::vector<SettingSpec> settings) {
  if (auto r = registry.Register(name, std::move(factory), std::move(settings)); !r) {
    std::fprintf(stderr, "RegisterBuiltinShadows: %s\n", r.error().ToString().c_str());
    std::abort();
  }
}

Result<std::unique_ptr<Shadow>> CreateEchoShadow(runtime::Host& host, const ShadowSettings&,
                                                 RecoveryMode mode) {
  return std::unique_ptr<Shadow>(echo::EchoShadow::Create(host, mode));
}

}  // namespace

void RegisterBuiltinShadows(ShadowRegistry& registry) {
  Add(registry, "echo", CreateEchoShadow, {});  // takes no settings
  Add(registry, "net", net::CreateNetShadow, net::NetSettings().specs());
  Add(registry, "uart", uart::CreateUartShadow, uart::UartSettings().specs());
  Add(registry, "block", block::CreateBlockShadow, block::BlockSettings().specs());
  Add(registry, "sound", sound::CreateSoundShadow, sound::SoundSettings().specs());
}

}  // namespace umbra::shadows
