// Recovery through links, removal, revocable handles and pending operations.
#include <gtest/gtest.h>

#include "tests/runtime/model/model_test_util.h"

namespace umbra::model::testing {
namespace {

class RecoveryTest : public ModelFixture {
 protected:
  // clk0 supplies nic0 (managed) and led0 (optional); app0 depends on nic0.
  void SetUp() override {
    ModelFixture::SetUp();
    backend_ = AddDrv("any", {"test,dev"});
    for (auto n : {"clk0", "nic0", "led0", "app0"}) AddDev(n);
    Link("nic0", "clk0");
    Link("led0", "clk0", LinkFlag::kManaged | LinkFlag::kOptional);
    Link("app0", "nic0");
    for (auto n : {"nic0", "led0", "app0"}) {
      listeners_[n] = std::make_shared<RecordingListener>();
      ASSERT_TRUE(model_->SetLinkListener(n, listeners_[n]));
    }
    ASSERT_EQ(State("app0"), "bound");
  }
  std::vector<std::string> Heard(const std::string& n) { return listeners_[n]->events(); }

  std::shared_ptr<InProcessBackend> backend_;
  std::map<std::string, std::shared_ptr<RecordingListener>> listeners_;
};

TEST_F(RecoveryTest, ConsumersHoldWhileASupplierRecoversAndAreToldWhenItIsBack) {
  ASSERT_TRUE(model_->SetRecovering("clk0"));
  EXPECT_EQ(State("clk0"), "recovering");
  EXPECT_EQ(State("nic0"), "bound");  // nothing is torn down
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "active");
  EXPECT_EQ(Heard("nic0"), (std::vector<std::string>{"recovering clk0"}));
  EXPECT_EQ(Heard("led0"), (std::vector<std::string>{"recovering clk0"}));
  EXPECT_TRUE(Heard("app0").empty());  // nic0's shadow hides it: not transitive

  ASSERT_TRUE(model_->SetRecovering("clk0"));  // a double fault: no second notice
  ASSERT_TRUE(model_->SetRecovered("clk0"));
  EXPECT_EQ(State("clk0"), "bound");
  EXPECT_EQ(Heard("nic0"), (std::vector<std::string>{"recovering clk0", "recovered clk0"}));
  EXPECT_EQ(backend_->calls().size(), 4u);  // four probes, no remove
}

TEST_F(RecoveryTest, RecoveryHooksRefuseTheWrongState) {
  EXPECT_EQ(model_->SetRecovered("clk0").error().code, Errc::kInvalidArgument);
  AddDev("lonely", "no,driver");
  auto r = model_->SetRecovering("lonely");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("only a bound device can start recovering"), std::string::npos);
  EXPECT_EQ(model_->SetRecovering("ghost").error().code, Errc::kNotFound);
}

TEST_F(RecoveryTest, ASupplierThatFailsForGoodUnbindsManagedConsumersAndDegradesOptionalOnes) {
  std::vector<std::string> unbinds;
  Subscription sub = model_->Subscribe([&](const Event& e) {
    if (e.type == EventType::kUnbind) unbinds.push_back(e.name + ": " + e.detail);
  });
  ASSERT_TRUE(model_->SetRecovering("clk0"));
  ASSERT_TRUE(model_->SetFailed("clk0", "restart budget spent (3 in 10s)"));
  EXPECT_EQ(State("clk0"), "failed");
  EXPECT_EQ(Attr("/devices/platform/clk0/reason"), "restart budget spent (3 in 10s)");
  EXPECT_EQ(State("nic0"), "unbound");
  EXPECT_EQ(Attr("/devices/platform/nic0/reason"), "supplier clk0 failed: restart budget spent (3 in 10s)");
  EXPECT_EQ(State("app0"), "unbound");  // nic0's consumer went first
  EXPECT_EQ(State("led0"), "bound");
  EXPECT_EQ(Attr("/devices/platform/led0/degraded"), "1");
  EXPECT_EQ(Heard("nic0"), (std::vector<std::string>{"recovering clk0", "failed clk0 required"}));
  EXPECT_EQ(Heard("led0"), (std::vector<std::string>{"recovering clk0", "failed clk0 optional"}));
  ASSERT_EQ(unbinds.size(), 3u);
  EXPECT_TRUE(unbinds[0].starts_with("app0: ")) << unbinds[0];
  EXPECT_TRUE(unbinds[1].starts_with("nic0: ")) << unbinds[1];
  EXPECT_TRUE(unbinds[2].starts_with("clk0: ")) << unbinds[2];
  EXPECT_EQ(LinkStatus("nic0", "clk0"), "dormant");
  EXPECT_EQ(Attr("/bus/platform/drivers/any/bound"), "led0");
}

TEST_F(RecoveryTest, WaitersOnAFailedDeviceHearDeviceFailed) {
  auto backend = AddDrv("slow", {"test,slow"}, Completion::kOnDemand);
  auto h = AddDev("disk0", "test,slow");
  Result<void> got;
  ASSERT_TRUE(model_->WhenReady(h, [&](Result<void> r) { got = r; }));
  ASSERT_TRUE(model_->SetFailed("disk0", "probe crashed 3 times"));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kDeviceFailed);
  EXPECT_EQ(got.error().message, "disk0 failed: probe crashed 3 times");
  EXPECT_EQ(backend->CompleteProbe("disk0").error().code, Errc::kInvalidArgument);  // too late
}

TEST_F(RecoveryTest, AFailedDeviceCanBeProbedAgain) {
  ASSERT_TRUE(model_->SetFailed("app0", "gave up"));
  ASSERT_TRUE(model_->ProbeDevice("app0"));
  EXPECT_EQ(State("app0"), "bound");
}

// --- removal and handles ---------------------------------------------------------

TEST_F(RecoveryTest, HandlesFailWithNoDeviceAfterRemoval) {
  auto h = model_->Open("app0").value();
  EXPECT_EQ(h.Read("state").value(), "bound");
  ASSERT_TRUE(model_->RemoveDevice("app0"));
  EXPECT_FALSE(h.alive());
  auto r = h.Read("state");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kNoDevice);
  EXPECT_EQ(r.error().message, "app0 was removed");
  EXPECT_EQ(h.state().error().code, Errc::kNoDevice);
  EXPECT_EQ(h.Write("x", "1").error().code, Errc::kNoDevice);
  EXPECT_EQ(h.Access([](Device&) -> Result<void> { return {}; }).error().code, Errc::kNoDevice);
  EXPECT_EQ(h.name(), "app0");  // identity stays readable
  EXPECT_EQ(h.device()->state(), DeviceState::kRemoved);
  EXPECT_EQ(model_->RemoveDevice("app0").error().code, Errc::kNotFound);
}

TEST_F(RecoveryTest, ANewDeviceWithTheSameNameDoesNotRevive_OldHandles) {
  auto old = model_->Open("app0").value();
  ASSERT_TRUE(model_->RemoveDevice("app0"));
  auto fresh = AddDev("app0");
  EXPECT_TRUE(fresh.alive());
  EXPECT_FALSE(old.alive());
  EXPECT_EQ(old.Read("state").error().code, Errc::kNoDevice);
  EXPECT_NE(fresh.device()->generation(), 0u);
}

TEST_F(RecoveryTest, RemovingASupplierUnbindsItsConsumersFirstAndDeletesItsLinks) {
  ASSERT_TRUE(model_->RemoveDevice("clk0"));
  EXPECT_EQ(State("clk0"), "(not-found: no device named \"clk0\")");
  EXPECT_EQ(State("nic0"), "unbound");
  EXPECT_EQ(Attr("/devices/platform/nic0/reason"), "supplier clk0 removed");
  EXPECT_FALSE(model_->link_state("nic0", "clk0"));
  EXPECT_EQ(model_->link_count(), 1u);  // app0 -> nic0
  std::vector<std::string> removes;
  for (const auto& c : backend_->calls()) {
    if (c.starts_with("remove ")) removes.push_back(c);
  }
  EXPECT_EQ(removes, (std::vector<std::string>{"remove app0", "remove nic0", "remove clk0"}));
  EXPECT_EQ(Attr("/devices/platform/led0/degraded"), "0");  // no link, nothing missing
  EXPECT_EQ(Heard("led0"), (std::vector<std::string>{"unbound clk0"}));
}

TEST_F(RecoveryTest, PendingOperationsOnARemovedDeviceFailWithNoDevice) {
  auto backend = AddDrv("slow", {"test,slow"}, Completion::kOnDemand);
  auto h = AddDev("disk0", "test,slow");
  Result<void> got;
  ASSERT_TRUE(model_->WhenReady(h, [&](Result<void> r) { got = r; }));
  ASSERT_TRUE(model_->RemoveDevice("disk0"));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kNoDevice);
  EXPECT_EQ(got.error().message, "disk0 was removed");
  // The probe that was running completes late: refused, nothing touched.
  auto late = model_->ProbeDone(*h.device(), {});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::kNoDevice);
  EXPECT_EQ(model_->WhenReady(h, [](Result<void>) {}).error().code, Errc::kNoDevice);
}

TEST_F(RecoveryTest, RemovingADeviceFromInsideItsOwnAccessIsRefused) {
  auto h = model_->Open("app0").value();
  Result<void> inner;
  ASSERT_TRUE(h.Access([&](Device&) -> Result<void> {
    inner = model_->RemoveDevice("app0");
    return {};
  }));
  ASSERT_FALSE(inner);
  EXPECT_EQ(inner.error().code, Errc::kBusy);
  EXPECT_TRUE(h.alive());
}

TEST_F(RecoveryTest, HandlesOutliveTheModel) {
  auto h = model_->Open("nic0").value();
  model_.reset();
  EXPECT_FALSE(h.alive());
  EXPECT_EQ(h.Read("state").error().code, Errc::kNoDevice);
}

}  // namespace
}  // namespace umbra::model::testing
