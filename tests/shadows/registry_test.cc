#include "shadows/registry.h"

#include <gtest/gtest.h>

namespace umbra::shadows {
namespace {

ShadowFactory NullFactory() {
  return [](runtime::DriverHost&, const ShadowSettings&, RecoveryMode) -> Result<std::unique_ptr<Shadow>> {
    return Fail(Errc::kInternal, "not used");
  };
}

TEST(ShadowRegistry, RefusesANameRegisteredTwice) {
  ShadowRegistry r;
  ASSERT_TRUE(r.Register("net", NullFactory()).has_value());
  auto again = r.Register("net", NullFactory());
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  EXPECT_NE(again.error().message.find("'net'"), std::string::npos);
}

TEST(ShadowRegistry, UnknownClassNamesTheKnownOnes) {
  ShadowRegistry r;
  ASSERT_TRUE(r.Register("net", NullFactory()).has_value());
  ASSERT_TRUE(r.Register("block", NullFactory()).has_value());
  EXPECT_EQ(r.names(), (std::vector<std::string>{"block", "net"}));
}

}  // namespace
}  // namespace umbra::shadows
