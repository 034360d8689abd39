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

struct ToyOptions {
  uint32_t depth = 4;
  size_t bytes = 100;
  double speed = 1.0;
};

const SettingsSchema<ToyOptions>& ToySettings() {
  static const auto schema = SettingsSchema<ToyOptions>("toy")
                                 .Count("depth", &ToyOptions::depth)
                                 .Count("bytes", &ToyOptions::bytes)
                                 .Number("speed", &ToyOptions::speed);
  return schema;
}

TEST(SettingsSchema, ParsesIntoTheOptionsAndKeepsTheDefaultsOfWhatIsNotSet) {
  auto o = ToySettings().Parse({{"depth", "16"}, {"speed", "2.5"}});
  ASSERT_TRUE(o.has_value()) << o.error().ToString();
  EXPECT_EQ(o->depth, 16u);
  EXPECT_EQ(o->bytes, 100u);
  EXPECT_EQ(o->speed, 2.5);
  ASSERT_EQ(ToySettings().specs().size(), 3u);
  EXPECT_EQ(ToySettings().specs()[2].kind, SettingKind::kNumber);
}

TEST(SettingsSchema, ErrorsNameTheSettingAndTheBadValue) {
  struct Case {
    ShadowSettings settings;
    std::string expected;
  };
  const Case cases[] = {
      {{{"depth", "lots"}}, "setting depth is 'lots', not a whole number"},
      {{{"depth", "4294967296"}}, "'4294967296', not a whole number up to 4294967295"},
      {{{"depth", "-1"}}, "'-1'"},
      {{{"depth", "12abc"}}, "'12abc'"},
      {{{"speed", "0"}}, "setting speed is '0', not a number greater than 0"},
      {{{"speed", ""}}, "setting speed is ''"},
      {{{"colour", "red"}}, "no setting 'colour' (it takes: depth, bytes, speed)"},
  };
  for (const Case& c : cases) {
    auto o = ToySettings().Parse(c.settings);
    ASSERT_FALSE(o.has_value()) << c.expected;
    EXPECT_EQ(o.error().code, Errc::kInvalidArgument);
    EXPECT_NE(o.error().message.find(c.expected), std::string::npos) << o.error().message;
    EXPECT_NE(o.error().message.find("toy"), std::string::npos) << o.error().message;
  }
}

TEST(SettingsSchema, TheRegistryChecksWhatTheSchemaDeclares) {
  ShadowRegistry r;
  ASSERT_TRUE(r.Register("toy", NullFactory(), ToySettings().specs()).has_value());
  EXPECT_TRUE(r.CheckSettings("toy", {{"depth", "8"}, {"speed", "0.5"}}).has_value());
  EXPECT_FALSE(r.CheckSettings("toy", {{"depth", "x"}}).has_value());
  EXPECT_FALSE(r.CheckSettings("toy", {{"colour", "1"}}).has_value());
}

}  // namespace
}  // namespace umbra::shadows
