#include "shadows/registry.h"

#include <gtest/gtest.h>

namespace umbra::shadows {
namespace {

ShadowFactory NullFactory() {
  return [](runtime::Host&, const ShadowSettings&, RecoveryMode) -> Result<std::unique_ptr<Shadow>> {
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

TEST(ShadowRegistry, SettingsAreCheckedAgainstWhatTheClassTakes) {
  ShadowRegistry r;
  ASSERT_TRUE(r.Register("sound", NullFactory(),
                         std::vector<SettingSpec>{{"queue_periods", SettingKind::kCount},
                                                  {"clock_speed", SettingKind::kNumber}})
                  .has_value());
  ASSERT_TRUE(r.Register("echo", NullFactory(), std::vector<SettingSpec>{}).has_value());
  ASSERT_TRUE(r.Register("custom", NullFactory()).has_value());
  EXPECT_TRUE(r.CheckSettings("sound", {{"queue_periods", "4"}, {"clock_speed", "1.5"}}).has_value());
  auto unknown = r.CheckSettings("sound", {{"queue_events", "4"}});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, Errc::kInvalidArgument);
  EXPECT_NE(unknown.error().message.find("'queue_events'"), std::string::npos) << unknown.error().message;
  EXPECT_NE(unknown.error().message.find("queue_periods, clock_speed"), std::string::npos);
  auto lots = r.CheckSettings("sound", {{"queue_periods", "lots"}});
  ASSERT_FALSE(lots.has_value());
  EXPECT_NE(lots.error().message.find("'lots'"), std::string::npos) << lots.error().message;
  EXPECT_FALSE(r.CheckSettings("sound", {{"clock_speed", "0"}}).has_value());
  EXPECT_FALSE(r.CheckSettings("echo", {{"anything", "1"}}).has_value()) << "an empty list: it takes none";
  EXPECT_TRUE(r.CheckSettings("custom", {{"anything", "1"}}).has_value()) << "no list: its factory checks";
  EXPECT_EQ(r.CheckSettings("nope", {}).error().code, Errc::kNotFound);
}

}  // namespace
}  // namespace umbra::shadows
