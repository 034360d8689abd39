#include "shadows/builtin/builtin.h"

#include <cstdio>
#include <cstdlib>

#include "shadows/block/class.h"
#include "shadows/echo/class.h"
#include "shadows/net/class.h"
#include "shadows/sound/class.h"
#include "shadows/uart/class.h"

namespace umbra::shadows {

namespace {

// For the parts whose registration never fails but by a bug (a name twice).
void OrAbort(const char* what, const Result<void>& r) {
  if (r) return;
  std::fprintf(stderr, "%s: %s\n", what, r.error().ToString().c_str());
  std::abort();
}

}  // namespace

// The one list of classes: a new class adds its line here.
Result<void> RegisterBuiltinClasses(ClassRegistry& registry) {
  UMBRA_TRY(RegisterEchoClass(registry));
  UMBRA_TRY(RegisterNetClass(registry));
  UMBRA_TRY(RegisterUartClass(registry));
  UMBRA_TRY(RegisterBlockClass(registry));
  UMBRA_TRY(RegisterSoundClass(registry));
  return {};
}

void RegisterBuiltinShadows(ShadowRegistry& registry) {
  ClassRegistry classes(nullptr, &registry, nullptr);
  OrAbort("RegisterBuiltinShadows", RegisterBuiltinClasses(classes));
}

}  // namespace umbra::shadows

namespace umbra::machine {

void RegisterBuiltinHardware(HardwareRegistry& registry) {
  shadows::ClassRegistry classes(&registry, nullptr, nullptr);
  shadows::OrAbort("RegisterBuiltinHardware", shadows::RegisterBuiltinClasses(classes));
}

}  // namespace umbra::machine

namespace umbra::faultinject::campaign {

Result<void> RegisterBuiltinWorkloads(WorkloadRegistry& registry) {
  shadows::ClassRegistry classes(nullptr, nullptr, &registry);
  return shadows::RegisterBuiltinClasses(classes);
}

}  // namespace umbra::faultinject::campaign
