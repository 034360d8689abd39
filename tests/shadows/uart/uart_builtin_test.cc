// The registration line: RegisterBuiltinShadows knows the uart class.
#include <gtest/gtest.h>

#include "shadows/builtin/builtin.h"

namespace umbra::shadows {
namespace {

TEST(UartRegistration, TheBuiltinRegistryHasTheUartClass) {
  ShadowRegistry registry;
  RegisterBuiltinShadows(registry);
  EXPECT_TRUE(registry.Has("uart"));
}

}  // namespace
}  // namespace umbra::shadows
