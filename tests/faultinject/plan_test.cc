// Fault plans: derived from the seed alone, printable and parseable, and
// armed through specs the failpoint parser accepts.
#include "faultinject/plan.h"

#include <gtest/gtest.h>

#include "faultinject/spec.h"

namespace umbra::faultinject::campaign {
namespace {

const std::vector<SiteUse> kSites = {{"sdk.request", 200}, {"sdk.complete", 200}, {"sdk.call", 13}, {"host.unit", 200}};

TEST(FaultPlan, SameSeedGivesTheSamePlan) {
  for (FaultType t : AllFaultTypes()) {
    auto a = MakePlan(1234, t, kSites);
    auto b = MakePlan(1234, t, kSites);
    ASSERT_TRUE(a.has_value()) << FaultTypeName(t);
    EXPECT_EQ(*a, *b) << FaultTypeName(t);
    EXPECT_EQ(DriverSpec(*a, 0), DriverSpec(*b, 0));
  }
}

TEST(FaultPlan, DifferentSeedsGiveDifferentPlans) {
  int differ = 0;
  for (uint64_t s = 0; s < 20; ++s) {
    if (*MakePlan(RunSeed(7, s), FaultType::kSegfault, kSites) !=
        *MakePlan(RunSeed(7, s + 1), FaultType::kSegfault, kSites)) {
      ++differ;
    }
  }
  EXPECT_GE(differ, 18);
}

TEST(FaultPlan, RunSeedsDependOnCampaignSeedAndIndex) {
  EXPECT_EQ(RunSeed(1, 5), RunSeed(1, 5));
  EXPECT_NE(RunSeed(1, 5), RunSeed(1, 6));
  EXPECT_NE(RunSeed(1, 5), RunSeed(2, 5));
}

TEST(FaultPlan, SitesAreThoseWhereTheFaultMakesSense) {
  for (uint64_t s = 0; s < 50; ++s) {
    auto p = *MakePlan(s, FaultType::kForgedId, kSites);
    for (const Injection& i : p.faults) EXPECT_EQ(i.site, "sdk.request");
    auto h = *MakePlan(s, FaultType::kSigkill, kSites);
    for (const Injection& i : h.faults) {
      EXPECT_EQ(i.site, kHostSite);
      EXPECT_LT(i.after, 200u);
    }
  }
  std::vector<SiteUse> only_calls = {{"sdk.call", 3}};
  auto none = MakePlan(1, FaultType::kWildDma, only_calls);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, Errc::kNotFound);
}

TEST(FaultPlan, FormatAndParseRoundTrip) {
  for (FaultType t : AllFaultTypes()) {
    for (uint64_t s = 0; s < 30; ++s) {
      FaultPlan p = *MakePlan(s, t, kSites);
      auto back = ParsePlan(FormatPlan(p));
      ASSERT_TRUE(back.has_value()) << FormatPlan(p) << ": " << back.error().message;
      EXPECT_EQ(*back, p) << FormatPlan(p);
    }
  }
}

TEST(FaultPlan, ParseErrorsSayWhat) {
  EXPECT_NE(ParsePlan("seed=1;segfalt@sdk.request+1").error().message.find("unknown fault type"), std::string::npos);
  EXPECT_NE(ParsePlan("segfault@sdk.request").error().message.find("site+N"), std::string::npos);
  EXPECT_NE(ParsePlan("segfault@sdk.request+x").error().message.find("bad hit count"), std::string::npos);
  EXPECT_NE(ParsePlan("segfault@sdk.request%0").error().message.find("bad percentage"), std::string::npos);
  EXPECT_FALSE(ParsePlan("seed=3").has_value());
}

TEST(FaultPlan, DriverSpecsParseAndHostFaultsHaveNone) {
  for (FaultType t : AllFaultTypes()) {
    FaultPlan p = *MakePlan(99, t, kSites);
    for (size_t i = 0; i < p.faults.size(); ++i) {
      const std::string spec = DriverSpec(p, i);
      if (IsHostSide(t)) {
        EXPECT_EQ(spec, "");
        continue;
      }
      auto parsed = ParseSpec(spec);
      EXPECT_TRUE(parsed.has_value()) << spec << ": " << parsed.error().message;
    }
    EXPECT_EQ(DriverSpec(p, p.faults.size()), "");
  }
  FaultPlan p = *ParsePlan("seed=5;segfault@sdk.request+12;abort@sdk.call%2.5");
  EXPECT_EQ(DriverSpec(p, 0), "seed=5;sdk.request=12+1*segfault");
  EXPECT_EQ(DriverSpec(p, 1), "seed=6;sdk.call=2.5%1*abort");
}

}  // namespace
}  // namespace umbra::faultinject::campaign
