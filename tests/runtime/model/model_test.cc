// Matching, probing, deferred probe, link states, unbind order and cycles.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "tests/runtime/model/model_test_util.h"

namespace umbra::model::testing {
namespace {

using ModelTest = ModelFixture;

TEST_F(ModelTest, DeviceBindsWhenAMatchingDriverRegisters) {
  AddDev("nic0", "umbra,e1000");
  EXPECT_EQ(State("nic0"), "unbound");
  AddDrv("other", {"umbra,rtl8139"});
  EXPECT_EQ(State("nic0"), "unbound");
  AddDrv("e1000", {"umbra,e1000"});
  EXPECT_EQ(State("nic0"), "bound");
  EXPECT_EQ(Attr("/devices/platform/nic0/driver"), "e1000");
}

TEST_F(ModelTest, DeviceRegisteredAfterItsDriverBindsAtOnce) {
  auto backend = AddDrv("e1000", {"umbra,e1000"});
  AddDev("nic0", "umbra,e1000");
  EXPECT_EQ(State("nic0"), "bound");
  EXPECT_EQ(backend->calls(), (std::vector<std::string>{"probe nic0"}));
}

TEST_F(ModelTest, MostSpecificCompatibleWins) {
  AddDrv("generic", {"umbra,generic-nic"});
  AddDrv("specific", {"umbra,e1000"});
  ASSERT_TRUE(
      model_->AddDevice({.name = "nic0", .bus = "platform", .compatible = {"umbra,e1000", "umbra,generic-nic"}}));
  EXPECT_EQ(Attr("/devices/platform/nic0/driver"), "specific");
}

TEST_F(ModelTest, DriversOnlyMatchDevicesOnTheirBus) {
  ASSERT_TRUE(model_->AddBus("pci"));
  ASSERT_TRUE(model_->AddDevice({.name = "nic0", .bus = "pci", .compatible = {"umbra,e1000"}}));
  AddDrv("e1000", {"umbra,e1000"});  // on platform
  EXPECT_EQ(State("nic0"), "unbound");
}

TEST_F(ModelTest, AsyncProbeShowsProbingUntilProbeDone) {
  auto backend = AddDrv("e1000", {"umbra,e1000"}, Completion::kOnDemand);
  AddDev("nic0", "umbra,e1000");
  EXPECT_EQ(State("nic0"), "probing");
  EXPECT_EQ(backend->pending(), (std::vector<std::string>{"nic0"}));
  ASSERT_TRUE(backend->CompleteProbe("nic0"));
  EXPECT_EQ(State("nic0"), "bound");
}

TEST_F(ModelTest, FailedProbeLeavesTheDeviceUnboundWithAReason) {
  auto backend = AddDrv("e1000", {"umbra,e1000"}, Completion::kOnDemand);
  AddDev("nic0", "umbra,e1000");
  ASSERT_TRUE(backend->CompleteProbe("nic0", Fail(Errc::kIo, "reset timed out")));
  EXPECT_EQ(State("nic0"), "unbound");
  EXPECT_EQ(Attr("/devices/platform/nic0/reason"), "probe by e1000 failed: io: reset timed out");
}

TEST_F(ModelTest, ProbeDoneOnADeviceNotProbingIsRefused) {
  AddDrv("e1000", {"umbra,e1000"});
  auto h = AddDev("nic0", "umbra,e1000");
  auto r = model_->ProbeDone(*h.device(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
}

TEST_F(ModelTest, DriverDeferredProbeIsRetriedWhenAnotherDeviceBinds) {
  auto backend = AddDrv("dsp", {"umbra,dsp"});
  backend->FailNextProbe("dsp0", Error{Errc::kUnavailable, "firmware not loaded"});
  AddDev("dsp0", "umbra,dsp");
  EXPECT_EQ(State("dsp0"), "deferred");
  EXPECT_NE(Attr("/devices/platform/dsp0/reason").find("firmware not loaded"), std::string::npos);
  AddDev("dsp1", "umbra,dsp");  // binding anything retries deferred probes
  EXPECT_EQ(State("dsp1"), "bound");
  EXPECT_EQ(State("dsp0"), "bound");
}

TEST_F(ModelTest, ConsumerDefersUntilItsSupplierBindsThenRetries) {
  AddDev("clk0", "umbra,clk");
  AddDev("nic0", "umbra,e1000");
  Link("nic0", "clk0");
  AddDrv("e1000", {"umbra,e1000"});
  EXPECT_EQ(State("nic0"), "deferred");
  EXPECT_EQ(Attr("/devices/platform/nic0/waiting_for"), "clk0");
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "dormant");
  AddDrv("clk", {"umbra,clk"});
  EXPECT_EQ(State("clk0"), "bound");
  EXPECT_EQ(State("nic0"), "bound");
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "active");
  EXPECT_EQ(Attr("/devices/platform/nic0/waiting_for"), "");
}

TEST_F(ModelTest, ConsumerWaitsForEveryManagedSupplier) {
  AddDev("a", "umbra,a");
  AddDev("b", "umbra,b");
  AddDev("c", "umbra,c");
  Link("c", "a");
  Link("c", "b");
  AddDrv("cdrv", {"umbra,c"});
  AddDrv("adrv", {"umbra,a"});
  EXPECT_EQ(State("c"), "deferred");
  EXPECT_EQ(Attr("/devices/platform/c/waiting_for"), "b");
  AddDrv("bdrv", {"umbra,b"});
  EXPECT_EQ(State("c"), "bound");
}

TEST_F(ModelTest, StatelessLinksDoNotDeferProbing) {
  AddDev("clk0", "umbra,clk");
  AddDev("nic0", "umbra,e1000");
  Link("nic0", "clk0", LinkFlag::kStateless);
  AddDrv("e1000", {"umbra,e1000"});
  EXPECT_EQ(State("nic0"), "bound");
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "not tracked");
}

TEST_F(ModelTest, LinkStatesFollowTheKernelStateMachine) {
  AddDev("clk0", "umbra,clk");
  AddDev("nic0", "umbra,e1000");
  Link("nic0", "clk0");
  auto clk = AddDrv("clk", {"umbra,clk"}, Completion::kOnDemand);
  auto nic = AddDrv("e1000", {"umbra,e1000"}, Completion::kOnDemand);
  EXPECT_EQ(State("nic0"), "deferred");
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "dormant");
  ASSERT_TRUE(clk->CompleteProbe("clk0"));  // supplier bound: consumer is probed
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "consumer probing");
  ASSERT_TRUE(nic->CompleteProbe("nic0"));
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "active");
  ASSERT_TRUE(model_->UnbindDevice("nic0", "test"));
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "available");
  ASSERT_TRUE(model_->ProbeDevice("nic0"));
  ASSERT_TRUE(nic->CompleteProbe("nic0"));
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "active");
  std::vector<std::string> seen;
  Subscription sub = model_->Subscribe([&](const Event& e) {
    if (e.type == EventType::kLinkStateChange) seen.push_back(e.detail);
  });
  ASSERT_TRUE(model_->UnbindDevice("clk0", "test"));
  EXPECT_EQ(seen, (std::vector<std::string>{"active -> supplier unbinding", "supplier unbinding -> dormant"}));
  EXPECT_EQ(State("nic0"), "unbound");
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "dormant");
}

TEST_F(ModelTest, AutoProbeConsumerProbesAnUnboundConsumerWhenTheSupplierBinds) {
  auto clk = AddDrv("clk", {"umbra,clk"});
  AddDrv("e1000", {"umbra,e1000"});
  ASSERT_TRUE(model_->Write("/bus/platform/drivers_autoprobe", "0"));
  AddDev("clk0", "umbra,clk");
  AddDev("nic0", "umbra,e1000");
  Link("nic0", "clk0", LinkFlag::kManaged | LinkFlag::kAutoProbeConsumer);
  EXPECT_EQ(State("nic0"), "unbound");
  ASSERT_TRUE(model_->ProbeDevice("clk0"));
  EXPECT_EQ(State("clk0"), "bound");
  EXPECT_EQ(State("nic0"), "bound");
}

TEST_F(ModelTest, AutoRemoveLinksVanishOnUnbind) {
  AddDrv("any", {"test,dev"});
  AddDev("s");
  AddDev("c1");
  AddDev("c2");
  Link("c1", "s", LinkFlag::kManaged | LinkFlag::kAutoRemoveConsumer);
  Link("c2", "s", LinkFlag::kManaged | LinkFlag::kAutoRemoveSupplier);
  ASSERT_TRUE(model_->UnbindDevice("c1", "test"));
  EXPECT_FALSE(model_->link_state("c1", "s"));
  EXPECT_TRUE(model_->link_state("c2", "s"));
  ASSERT_TRUE(model_->UnbindDevice("s", "test"));
  EXPECT_FALSE(model_->link_state("c2", "s"));
  EXPECT_EQ(State("c2"), "unbound");  // it was unbound before its supplier
}

TEST_F(ModelTest, UnbindGoesInReverseTopologicalOrder) {
  auto backend = AddDrv("any", {"test,dev"});
  // root <- mid1 <- leaf, root <- mid2 <- leaf; extra <- leaf via optional.
  for (auto n : {"root", "mid1", "mid2", "leaf", "opt"}) AddDev(n);
  Link("mid1", "root");
  Link("mid2", "root");
  Link("leaf", "mid1");
  Link("leaf", "mid2");
  Link("opt", "root", LinkFlag::kManaged | LinkFlag::kOptional);
  ASSERT_TRUE(model_->UnbindDevice("root", "maintenance"));
  std::vector<std::string> removes;
  for (const auto& c : backend->calls()) {
    if (c.starts_with("remove ")) removes.push_back(c.substr(7));
  }
  ASSERT_EQ(removes.size(), 4u);
  EXPECT_EQ(removes.front(), "leaf");
  EXPECT_EQ(removes.back(), "root");
  EXPECT_EQ(State("opt"), "bound");  // an optional consumer stays, degraded
  EXPECT_EQ(Attr("/devices/platform/opt/degraded"), "1");
  EXPECT_EQ(Attr("/devices/platform/leaf/reason"), "supplier root unbound: maintenance");
}

TEST_F(ModelTest, SupplierIsUnboundOnlyAfterItsConsumers) {
  auto backend = AddDrv("any", {"test,dev"});
  AddDev("s");
  AddDev("c");
  Link("c", "s");
  std::vector<std::string> order;
  Subscription sub = model_->Subscribe([&](const Event& e) {
    if (e.type == EventType::kUnbind) order.push_back(e.name);
  });
  ASSERT_TRUE(model_->UnbindDevice("s", ""));
  EXPECT_EQ(order, (std::vector<std::string>{"c", "s"}));
}

TEST_F(ModelTest, ACycleIsRefusedWithTheWholeCycleNamed) {
  for (auto n : {"a", "b", "c"}) AddDev(n);
  Link("a", "b");
  Link("b", "c");
  auto r = model_->AddLink("c", "a", LinkFlag::kManaged);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(r.error().message, "link c -> a would close a cycle: c -> a -> b -> c");
  EXPECT_FALSE(model_->link_state("c", "a"));
}

TEST_F(ModelTest, ASelfLinkIsACycleOfOne) {
  AddDev("a");
  auto r = model_->AddLink("a", "a", LinkFlag::kManaged);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cycle: a -> a"), std::string::npos);
}

TEST_F(ModelTest, ALongCycleIsNamedInFull) {
  constexpr int kN = 60;
  for (int i = 0; i < kN; ++i) AddDev("d" + std::to_string(i));
  // d0 -> d1 -> ... -> d59 (each depends on the next), added in a scrambled order.
  std::vector<int> order(kN - 1);
  for (int i = 0; i < kN - 1; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  for (int i : order) Link("d" + std::to_string(i), "d" + std::to_string(i + 1));
  auto r = model_->AddLink("d59", "d0", LinkFlag::kStateless);  // stateless links count too
  ASSERT_FALSE(r);
  std::string expected = "d59";
  for (int i = 0; i < kN; ++i) expected += " -> d" + std::to_string(i);
  EXPECT_EQ(r.error().message, "link d59 -> d0 would close a cycle: " + expected);
}

// The incremental order must agree with a plain reachability search.
TEST_F(ModelTest, CycleCheckAgreesWithBruteForceOnRandomGraphs) {
  constexpr int kN = 40;
  for (int i = 0; i < kN; ++i) AddDev("n" + std::to_string(i));
  std::vector<std::set<int>> deps(kN);  // deps[c]: suppliers of c
  auto reaches = [&](int from, int to) {
    std::vector<int> stack{from};
    std::vector<bool> seen(kN);
    while (!stack.empty()) {
      int x = stack.back();
      stack.pop_back();
      if (x == to) return true;
      if (seen[x]) continue;
      seen[x] = true;
      for (int y : deps[x]) stack.push_back(y);
    }
    return false;
  };
  std::mt19937 rng(42);
  int accepted = 0, refused = 0;
  for (int step = 0; step < 400; ++step) {
    int c = rng() % kN, s = rng() % kN;
    if (c == s || deps[c].contains(s)) continue;
    bool closes = reaches(s, c);
    auto r = model_->AddLink("n" + std::to_string(c), "n" + std::to_string(s), LinkFlag::kStateless);
    ASSERT_EQ(!r, closes) << "n" << c << " -> n" << s << ": " << (r ? "accepted" : r.error().message);
    if (r) {
      deps[c].insert(s);
      ++accepted;
    } else {
      ++refused;
    }
  }
  EXPECT_GT(accepted, 50);
  EXPECT_GT(refused, 10);
}

TEST_F(ModelTest, DuplicateAndDanglingLinksAreRefused) {
  AddDev("a");
  AddDev("b");
  Link("a", "b");
  EXPECT_EQ(model_->AddLink("a", "b", LinkFlag::kManaged).error().code, Errc::kAlreadyExists);
  EXPECT_EQ(model_->AddLink("a", "nope", LinkFlag::kManaged).error().code, Errc::kNotFound);
  auto bad = model_->AddLink("a", "b", LinkFlag::kStateless | LinkFlag::kOptional);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("needs a managed link"), std::string::npos);
}

TEST_F(ModelTest, RemovingTheLinkLetsADeferredConsumerProbe) {
  AddDev("clk0", "umbra,clk");
  AddDev("nic0", "umbra,e1000");
  Link("nic0", "clk0");
  AddDrv("e1000", {"umbra,e1000"});
  EXPECT_EQ(State("nic0"), "deferred");
  ASSERT_TRUE(model_->RemoveLink("nic0", "clk0"));
  EXPECT_EQ(State("nic0"), "bound");
}

TEST_F(ModelTest, DeferralTimeoutRelaxesOptionalLinksAndReportsWhatStillWaits) {
  AddDev("phy0", "umbra,phy");  // optional supplier, no driver yet
  AddDev("clk0", "umbra,clk");  // required supplier, no driver yet
  AddDev("nic0", "umbra,e1000");
  Link("nic0", "phy0", LinkFlag::kManaged | LinkFlag::kOptional);
  Link("nic0", "clk0");
  AddDrv("e1000", {"umbra,e1000"});
  EXPECT_EQ(State("nic0"), "deferred");
  EXPECT_EQ(Attr("/devices/platform/nic0/waiting_for"), "phy0,clk0");  // optional links wait too, until the timeout

  DeferralReport report = model_->ExpireDeferral();
  EXPECT_EQ(report.relaxed_links, 1u);
  ASSERT_EQ(report.waiting.size(), 1u);
  EXPECT_EQ(report.ToString(), "nic0 waits for clk0 (unbound)");
  EXPECT_EQ(Attr("/links/phy0--nic0/relaxed"), "1");

  AddDrv("clk", {"umbra,clk"});
  EXPECT_EQ(State("nic0"), "bound");
  EXPECT_EQ(Attr("/devices/platform/nic0/degraded"), "1");

  auto listener = std::make_shared<RecordingListener>();
  ASSERT_TRUE(model_->SetLinkListener("nic0", listener));
  AddDrv("phy", {"umbra,phy"});  // the optional supplier arrives: no longer degraded
  EXPECT_EQ(Attr("/devices/platform/nic0/degraded"), "0");
  EXPECT_EQ(LinkStatus("nic0", "phy0"), "active");
  EXPECT_EQ(listener->events(), (std::vector<std::string>{"recovered phy0"}));
}

TEST_F(ModelTest, ExpireDeferralWithNothingWaitingSaysSo) {
  EXPECT_EQ(model_->ExpireDeferral().ToString(), "nothing waits");
}

TEST_F(ModelTest, WhenReadyFiresOnBind) {
  auto backend = AddDrv("e1000", {"umbra,e1000"}, Completion::kOnDemand);
  auto h = AddDev("nic0", "umbra,e1000");
  int fired = 0;
  ASSERT_TRUE(model_->WhenReady(h, [&](Result<void> r) {
    EXPECT_TRUE(r);
    ++fired;
  }));
  EXPECT_EQ(fired, 0);
  ASSERT_TRUE(backend->CompleteProbe("nic0"));
  EXPECT_EQ(fired, 1);
  ASSERT_TRUE(model_->WhenReady(h, [&](Result<void>) { ++fired; }));  // already bound: now
  EXPECT_EQ(fired, 2);
}

TEST_F(ModelTest, NamesAreValidated) {
  EXPECT_FALSE(model_->AddDevice({.name = "", .bus = "platform"}));
  EXPECT_FALSE(model_->AddDevice({.name = "a/b", .bus = "platform"}));
  EXPECT_FALSE(model_->AddDevice({.name = "a--b", .bus = "platform"}));
  EXPECT_EQ(model_->AddDevice({.name = "x", .bus = "nobus"}).error().code, Errc::kNotFound);
  AddDev("x");
  EXPECT_EQ(model_->AddDevice({.name = "x", .bus = "platform"}).error().code, Errc::kAlreadyExists);
  EXPECT_EQ(model_->AddBus("platform").error().code, Errc::kAlreadyExists);
}

}  // namespace
}  // namespace umbra::model::testing
