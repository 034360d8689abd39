#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "faultinject/failpoint.h"
#include "base/clock.h"

namespace umbra::faultinject {
namespace {

Spec MustParse(std::string_view text) {
  Result<Spec> spec = ParseSpec(text);
  if (!spec) throw std::runtime_error(spec.error().message);
  return *spec;
}

void MustArm(FailpointRegistry& registry, std::string_view text, std::string_view device = "dev0",
             std::string_view driver = "drv", ArmSide side = ArmSide::kDriver) {
  Result<void> armed = registry.Arm(MustParse(text), device, driver, side);
  if (!armed) throw std::runtime_error(armed.error().message);
}

// The actions `n` successive hits on `site` decide.
std::vector<ActionKind> Sequence(FailpointRegistry& registry, std::string_view site, int n) {
  std::vector<ActionKind> out;
  for (int i = 0; i < n; ++i) out.push_back(registry.Evaluate(site).action);
  return out;
}

constexpr ActionKind kOff = ActionKind::kOff;
constexpr ActionKind kErr = ActionKind::kError;

TEST(FailpointRegistry, DisarmedDecidesNothingAndCountsNothing) {
  FailpointRegistry registry;
  registry.Declare("x");
  EXPECT_FALSE(registry.armed());
  EXPECT_EQ(registry.Evaluate("x").action, kOff);
  EXPECT_EQ(registry.Hit("x"), Action{});
  ASSERT_EQ(registry.List().size(), 1u);
  EXPECT_EQ(registry.List()[0].hits, 0u);
}

TEST(FailpointRegistry, SkipPassesTheFirstHits) {
  FailpointRegistry registry;
  MustArm(registry, "x=3+error");
  EXPECT_EQ(Sequence(registry, "x", 5), (std::vector{kOff, kOff, kOff, kErr, kErr}));
}

TEST(FailpointRegistry, CountStopsTheLastTerm) {
  FailpointRegistry registry;
  MustArm(registry, "x=2*error");
  EXPECT_EQ(Sequence(registry, "x", 5), (std::vector{kErr, kErr, kOff, kOff, kOff}));
}

TEST(FailpointRegistry, ChainMovesOnWhenATermsCountIsUsedUp) {
  FailpointRegistry registry;
  MustArm(registry, "x=2*error->1*drop_completion->bad_register");
  EXPECT_EQ(Sequence(registry, "x", 6), (std::vector{kErr, kErr, ActionKind::kDropCompletion, ActionKind::kBadRegister,
                                                     ActionKind::kBadRegister, ActionKind::kBadRegister}));
}

TEST(FailpointRegistry, OffTermsPassThroughWithoutCountingAsTriggers) {
  FailpointRegistry registry;
  MustArm(registry, "x=3*off->error");
  EXPECT_EQ(Sequence(registry, "x", 5), (std::vector{kOff, kOff, kOff, kErr, kErr}));
  EXPECT_EQ(registry.List()[0].hits, 5u);
  EXPECT_EQ(registry.List()[0].triggers, 2u);
}

TEST(FailpointRegistry, SkipAppliesPerTermOfTheChain) {
  FailpointRegistry registry;
  MustArm(registry, "x=1*error->2+forged_id");
  EXPECT_EQ(Sequence(registry, "x", 5), (std::vector{kErr, kOff, kOff, ActionKind::kForgedId, ActionKind::kForgedId}));
}

TEST(FailpointRegistry, ProbabilityTriggersAboutThatOften) {
  FailpointRegistry registry;
  MustArm(registry, "seed=1;x=25%error;never=0%error;always=100%error");
  int triggers = 0;
  for (int i = 0; i < 10000; ++i) triggers += registry.Evaluate("x").action == kErr;
  EXPECT_GT(triggers, 2200);
  EXPECT_LT(triggers, 2800);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(registry.Evaluate("never").action, kOff);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(registry.Evaluate("always").action, kErr);
}

TEST(FailpointRegistry, ProbabilityAndCountThenChain) {
  FailpointRegistry registry;
  MustArm(registry, "seed=5;x=10%3*error->abort");
  int errors = 0;
  int i = 0;
  for (; errors < 3 && i < 100000; ++i) {
    ActionKind a = registry.Evaluate("x").action;
    ASSERT_NE(a, ActionKind::kAbort) << "abort before three errors";
    errors += a == kErr;
  }
  ASSERT_EQ(errors, 3);
  EXPECT_EQ(registry.Evaluate("x").action, ActionKind::kAbort);
}

TEST(FailpointRegistry, RangesAreDrawnPerTriggerWithinBounds) {
  FailpointRegistry registry;
  MustArm(registry, "seed=3;x=wrong_length(-2..2)");
  bool seen_lo = false, seen_hi = false;
  for (int i = 0; i < 500; ++i) {
    Trigger t = registry.Evaluate("x");
    ASSERT_EQ(t.action, ActionKind::kWrongLength);
    ASSERT_GE(t.value, -2);
    ASSERT_LE(t.value, 2);
    seen_lo |= t.value == -2;
    seen_hi |= t.value == 2;
  }
  EXPECT_TRUE(seen_lo);
  EXPECT_TRUE(seen_hi);
}

TEST(FailpointRegistry, ArgumentsGetTheirDefaults) {
  FailpointRegistry registry;
  MustArm(registry, "e=error;en=error(ENOMEM);r=bad_register;w=wild_dma;l=leak(4096,16);s=segfault;"
                    "sw=segfault(wild);x=exit;p=print(\"hi there\");h=corrupt_heap");
  EXPECT_EQ(registry.Evaluate("e"), (Trigger{kErr, EIO, 0, ""}));
  EXPECT_EQ(registry.Evaluate("en"), (Trigger{kErr, ENOMEM, 0, ""}));
  EXPECT_EQ(registry.Evaluate("r"), (Trigger{ActionKind::kBadRegister, 0xdeadbeef, 0, ""}));
  EXPECT_EQ(registry.Evaluate("w"), (Trigger{ActionKind::kWildDma, 4096, 0, ""}));
  EXPECT_EQ(registry.Evaluate("l"), (Trigger{ActionKind::kLeak, 4096, 16, "stop"}));
  EXPECT_EQ(registry.Evaluate("s"), (Trigger{ActionKind::kSegfault, 0, 0, "null"}));
  EXPECT_EQ(registry.Evaluate("sw"), (Trigger{ActionKind::kSegfault, 0, 0, "wild"}));
  EXPECT_EQ(registry.Evaluate("x"), (Trigger{ActionKind::kExit, 1, 0, ""}));
  EXPECT_EQ(registry.Evaluate("p"), (Trigger{ActionKind::kPrint, 0, 0, "hi there"}));
  EXPECT_EQ(registry.Evaluate("h"), (Trigger{ActionKind::kCorruptHeap, 0, 0, "double_free"}));
}

std::vector<ActionKind> SeededSequence(std::string_view spec, bool interleave_other_sites) {
  FailpointRegistry registry;
  MustArm(registry, spec);
  std::vector<ActionKind> out;
  for (int i = 0; i < 200; ++i) {
    if (interleave_other_sites && i % 3 == 0) registry.Evaluate("nic.rx.complete");
    out.push_back(registry.Evaluate("nic.tx.submit").action);
  }
  return out;
}

TEST(FailpointRegistry, SameSeedGivesTheSameTriggers) {
  const char* spec = "seed=42;nic.*=30%error->50%3*forged_id->20%abort";
  std::vector<ActionKind> first = SeededSequence(spec, false);
  EXPECT_EQ(SeededSequence(spec, false), first);
  // Another site's hits do not disturb this site's sequence.
  EXPECT_EQ(SeededSequence(spec, true), first);
}

TEST(FailpointRegistry, DifferentSeedsGiveDifferentTriggers) {
  EXPECT_NE(SeededSequence("seed=42;nic.*=50%error", false), SeededSequence("seed=43;nic.*=50%error", false));
}

TEST(FailpointRegistry, SitesWithTheSameRuleHaveIndependentStreams) {
  FailpointRegistry registry;
  MustArm(registry, "seed=42;nic.*=50%error");
  EXPECT_NE(Sequence(registry, "nic.a", 64), Sequence(registry, "nic.b", 64));
}

TEST(FailpointRegistry, UnseededSpecGetsARandomSeedThatReplays) {
  FailpointRegistry registry;
  MustArm(registry, "x=50%error");
  uint64_t seed = registry.seed();
  std::vector<ActionKind> first = Sequence(registry, "x", 64);
  MustArm(registry, "seed=" + std::to_string(seed) + ";x=50%error");
  EXPECT_EQ(Sequence(registry, "x", 64), first);
}

TEST(FailpointRegistry, LaterRulesWinAndGlobsSelectSites) {
  FailpointRegistry registry;
  MustArm(registry, "nic.*=error(1);nic.tx=error(2);nic.r?=error(3)");
  EXPECT_EQ(registry.Evaluate("nic.tx").value, 2);
  EXPECT_EQ(registry.Evaluate("nic.rx").value, 3);
  EXPECT_EQ(registry.Evaluate("nic.probe").value, 1);
  EXPECT_EQ(registry.Evaluate("disk.write").action, kOff);
}

TEST(FailpointRegistry, FiltersSelectDeviceAndDriver) {
  FailpointRegistry registry;
  MustArm(registry,
          "[device=nic0]a=error;[driver=e1000]b=error;[device=nic1]c=error;"
          "[device=nic?,driver=e1*]d=error;[device=nic0,driver=hda]e=error",
          "nic0", "e1000");
  EXPECT_EQ(registry.Evaluate("a").action, kErr);
  EXPECT_EQ(registry.Evaluate("b").action, kErr);
  EXPECT_EQ(registry.Evaluate("c").action, kOff);
  EXPECT_EQ(registry.Evaluate("d").action, kErr);
  EXPECT_EQ(registry.Evaluate("e").action, kOff);
}

TEST(FailpointRegistry, HostSideRulesAreArmedOnlyOnTheHostSide) {
  const char* spec = "host.request=2+sigkill;x=error";
  FailpointRegistry driver;
  MustArm(driver, spec);
  EXPECT_EQ(driver.Evaluate("host.request").action, kOff);
  EXPECT_EQ(driver.Evaluate("x").action, kErr);
  FailpointRegistry host;
  MustArm(host, spec, "nic0", "e1000", ArmSide::kHost);
  EXPECT_EQ(Sequence(host, "host.request", 3), (std::vector{kOff, kOff, ActionKind::kSigkill}));
  EXPECT_EQ(host.Evaluate("x").action, kOff);
}

TEST(FailpointRegistry, RearmingRestartsChainsButKeepsCounts) {
  FailpointRegistry registry;
  MustArm(registry, "seed=1;x=1*error");
  EXPECT_EQ(Sequence(registry, "x", 2), (std::vector{kErr, kOff}));
  MustArm(registry, "seed=1;x=1*error");
  EXPECT_EQ(Sequence(registry, "x", 2), (std::vector{kErr, kOff}));
  EXPECT_EQ(registry.List()[0].hits, 4u);
  EXPECT_EQ(registry.List()[0].triggers, 2u);
  registry.Disarm();
  EXPECT_FALSE(registry.armed());
  EXPECT_EQ(registry.Evaluate("x").action, kOff);
  EXPECT_EQ(registry.List()[0].hits, 4u);
}

TEST(FailpointRegistry, ListShowsDeclaredSitesAndCounts) {
  FailpointRegistry registry;
  registry.Declare({"nic.tx.submit", "nic.rx.complete", "nic.probe"});
  MustArm(registry, "nic.tx.*=1+error;other=abort");
  for (int i = 0; i < 3; ++i) registry.Evaluate("nic.tx.submit");
  registry.Evaluate("nic.undeclared");
  std::vector<SiteStats> rows = registry.List();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].name, "nic.probe");
  EXPECT_EQ(rows[0].hits, 0u);
  EXPECT_TRUE(rows[0].declared);
  EXPECT_EQ(rows[0].rule, "");
  EXPECT_EQ(rows[1].name, "nic.rx.complete");
  EXPECT_EQ(rows[2].name, "nic.tx.submit");
  EXPECT_EQ(rows[2].hits, 3u);
  EXPECT_EQ(rows[2].triggers, 2u);
  EXPECT_EQ(rows[2].rule, "nic.tx.*=1+error");
  EXPECT_EQ(rows[3].name, "nic.undeclared");
  EXPECT_FALSE(rows[3].declared);
  EXPECT_EQ(rows[3].hits, 1u);
  EXPECT_EQ(FormatSiteTable(rows), "SITE                   HITS    TRIGGERS  RULE\n"
                                   "nic.probe                 0           0  -\n"
                                   "nic.rx.complete           0           0  -\n"
                                   "nic.tx.submit             3           2  nic.tx.*=1+error\n"
                                   "nic.undeclared            1           0  - (undeclared)\n");
  registry.ResetCounts();
  EXPECT_EQ(registry.List()[2].hits, 0u);
}

TEST(FailpointRegistry, HitReturnsSiteInterpretedFaults) {
  FailpointRegistry registry;
  MustArm(registry, "e=error(ETIMEDOUT);m=malformed_reply;f=forged_id;d=duplicate_id;l=wrong_length(-3);"
                    "w=wild_dma(8192);r=bad_register(0x55);c=drop_completion;o=off");
  EXPECT_EQ(registry.Hit("e"), (Action{SiteFault::kError, ETIMEDOUT}));
  EXPECT_EQ(registry.Hit("m"), (Action{SiteFault::kMalformedReply, 0}));
  EXPECT_EQ(registry.Hit("f"), (Action{SiteFault::kForgedId, 0}));
  EXPECT_EQ(registry.Hit("d"), (Action{SiteFault::kDuplicateId, 0}));
  EXPECT_EQ(registry.Hit("l"), (Action{SiteFault::kWrongLength, -3}));
  EXPECT_EQ(registry.Hit("w"), (Action{SiteFault::kWildDma, 8192}));
  EXPECT_EQ(registry.Hit("r"), (Action{SiteFault::kBadRegister, 0x55}));
  EXPECT_EQ(registry.Hit("c"), (Action{SiteFault::kDropCompletion, 0}));
  EXPECT_EQ(registry.Hit("o"), Action{});
  EXPECT_FALSE(registry.Hit("unmatched"));
}

TEST(FailpointRegistry, PrintLogsAndCarriesOn) {
  FailpointRegistry registry;
  std::vector<std::string> lines;
  registry.set_log_sink([&](std::string_view line) { lines.emplace_back(line); });
  MustArm(registry, "a.b=print(\"reached, as planned\");c=2*print");
  EXPECT_EQ(registry.Hit("a.b"), Action{});
  EXPECT_EQ(registry.Hit("c"), Action{});
  EXPECT_EQ(lines, (std::vector<std::string>{"failpoint a.b hit: reached, as planned", "failpoint c hit"}));
}

TEST(FailpointRegistry, DelaySleepsAtLeastItsTime) {
  FailpointRegistry registry;
  MustArm(registry, "slow=delay(20)");
  int64_t start = MonotonicNanos();
  EXPECT_EQ(registry.Hit("slow"), Action{});
  EXPECT_GE(MonotonicNanos() - start, 20'000'000);
}

TEST(FailpointRegistry, MacroUsesTheGlobalRegistry) {
  FailpointRegistry& global = FailpointRegistry::Global();
  EXPECT_FALSE(UMBRA_FAILPOINT("test.macro"));
  MustArm(global, "test.macro=1+1*error(EAGAIN)");
  EXPECT_TRUE(global.armed());
  EXPECT_EQ(UMBRA_FAILPOINT("test.macro"), Action{});
  EXPECT_EQ(UMBRA_FAILPOINT("test.macro"), (Action{SiteFault::kError, EAGAIN}));
  EXPECT_EQ(UMBRA_FAILPOINT("test.macro"), Action{});
  global.Disarm();
  EXPECT_FALSE(detail::g_global_armed.load());
  EXPECT_FALSE(UMBRA_FAILPOINT("test.macro"));
}

TEST(FailpointRegistry, ConcurrentHitsAreAllCounted) {
  FailpointRegistry registry;
  MustArm(registry, "seed=9;x=50%error;y=10%forged_id");
  constexpr int kThreads = 4;
  constexpr int kHits = 5000;
  std::atomic<uint64_t> seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kHits; ++i) {
        seen += static_cast<bool>(registry.Hit(t % 2 == 0 ? "x" : "y"));
        if (i % 1000 == 0) registry.List();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<SiteStats> rows = registry.List();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].hits + rows[1].hits, uint64_t{kThreads * kHits});
  EXPECT_EQ(rows[0].triggers + rows[1].triggers, seen.load());
}

// The host re-arms a live driver: hits racing with Arm/Disarm see either the
// old or the new spec, never a torn one (run under TSan).
TEST(FailpointRegistry, RearmingWhileOtherThreadsHit) {
  FailpointRegistry registry;
  Spec errors = MustParse("seed=1;x=error(1)");
  Spec forged = MustParse("seed=2;x=forged_id");
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        Action a = registry.Hit("x");
        bool ok = a == Action{} || a == Action{SiteFault::kError, 1} || a == Action{SiteFault::kForgedId, 0};
        bad += !ok;
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(registry.Arm(i % 2 == 0 ? errors : forged, "dev0", "drv"));
    if (i % 7 == 0) registry.Disarm();
  }
  stop = true;
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace umbra::faultinject
