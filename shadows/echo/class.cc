#include "shadows/echo/class.h"

#include "shadows/echo/echo_shadow.h"
#include "shadows/echo/workloads/echo_stream.h"

namespace umbra::shadows {

namespace {

Result<std::unique_ptr<Shadow>> CreateEchoShadow(runtime::Host& host, const ShadowSettings&, RecoveryMode mode) {
  return std::unique_ptr<Shadow>(echo::EchoShadow::Create(host, mode));
}

}  // namespace

Result<void> RegisterEchoClass(ClassRegistry& registry) {
  UMBRA_TRY(registry.AddShadow("echo", CreateEchoShadow, {}));  // takes no settings
  UMBRA_TRY(registry.AddWorkload<faultinject::campaign::EchoStreamWorkload>());
  return {};
}

}  // namespace umbra::shadows
