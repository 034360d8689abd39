// Driver unload: can-unload, in-flight work, timers, deferred callbacks, the barrier.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "tests/runtime/model/model_test_util.h"

namespace umbra::model::testing {
namespace {

using namespace std::chrono_literals;

class UnloadTest : public ModelFixture {
 protected:
  void SetUp() override {
    ModelFixture::SetUp();
    AddDrv("e1000", {"umbra,e1000"});
    drv_ = model_->FindDriver("e1000").value();
  }
  std::shared_ptr<Driver> drv_;
};

TEST_F(UnloadTest, RefusedWhileBound) {
  AddDev("nic0", "umbra,e1000");
  auto r = model_->UnloadDriver("e1000", 100ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kBusy);
  EXPECT_EQ(r.error().message, "driver e1000 is bound to nic0: unbind first");
  EXPECT_EQ(model_->CanUnload("e1000").error().code, Errc::kBusy);
  ASSERT_TRUE(model_->UnbindDevice("nic0", "test"));
  EXPECT_TRUE(model_->CanUnload("e1000"));
  EXPECT_TRUE(model_->UnloadDriver("e1000", 100ms));
  EXPECT_EQ(model_->FindDriver("e1000").error().code, Errc::kNotFound);
  EXPECT_EQ(model_->Read("/bus/platform/drivers/e1000/state").error().code, Errc::kNotFound);
}

TEST_F(UnloadTest, RefusedWithWorkInFlightThenAllowed) {
  auto token = drv_->work().BeginWork();
  ASSERT_TRUE(token);
  EXPECT_EQ(Attr("/bus/platform/drivers/e1000/in_flight"), "1");
  auto r = model_->UnloadDriver("e1000", 100ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "driver e1000 has 1 operation(s) in flight");
  EXPECT_FALSE(drv_->work().unloading());  // refused before anything changed
  token->Release();
  EXPECT_TRUE(model_->UnloadDriver("e1000", 100ms));
}

TEST_F(UnloadTest, TimersAreCancelledBeforeDeferredCallbacksRun) {
  std::vector<std::string> order;
  TimerRegistration timer = drv_->work().AddTimer([&] { order.push_back("cancel timer"); });
  ASSERT_TRUE(drv_->work().DeferCallback([&] { order.push_back("callback 1"); }));
  ASSERT_TRUE(drv_->work().DeferCallback([&] { order.push_back("callback 2"); }));
  ASSERT_TRUE(model_->UnloadDriver("e1000", 100ms));
  EXPECT_EQ(order, (std::vector<std::string>{"cancel timer", "callback 1", "callback 2"}));
  EXPECT_EQ(drv_->work().BeginWork().error().code, Errc::kBusy);
  EXPECT_EQ(drv_->work().DeferCallback([] {}).error().code, Errc::kBusy);
}

TEST_F(UnloadTest, ADroppedTimerRegistrationIsNotCancelled) {
  int cancelled = 0;
  {
    TimerRegistration t = drv_->work().AddTimer([&] { ++cancelled; });
  }
  ASSERT_TRUE(model_->UnloadDriver("e1000", 100ms));
  EXPECT_EQ(cancelled, 0);
}

TEST_F(UnloadTest, TheBarrierWaitsForACallbackRunningOnAnotherThread) {
  std::promise<void> started, release;
  auto release_future = release.get_future().share();
  ASSERT_TRUE(drv_->work().DeferCallback([&, release_future] {
    started.set_value();
    release_future.wait();
  }));
  std::thread worker([&] { drv_->work().RunDeferred(); });
  started.get_future().wait();
  std::atomic<bool> unloaded{false};
  std::thread unloader([&] {
    EXPECT_TRUE(model_->UnloadDriver("e1000", 10s));
    unloaded = true;
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(unloaded.load());  // still draining
  release.set_value();
  unloader.join();
  worker.join();
  EXPECT_TRUE(unloaded.load());
}

TEST_F(UnloadTest, TheBarrierTimesOutWithAClearErrorAndTheDriverStays) {
  std::promise<void> started, release;
  auto release_future = release.get_future().share();
  ASSERT_TRUE(drv_->work().DeferCallback([&, release_future] {
    started.set_value();
    release_future.wait();
  }));
  std::thread worker([&] { drv_->work().RunDeferred(); });
  started.get_future().wait();
  auto r = model_->UnloadDriver("e1000", 30ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kTimeout);
  EXPECT_EQ(r.error().message,
            "unloading driver e1000: 1 deferred callback(s) and 0 operation(s) still running after 30 ms");
  EXPECT_EQ(Attr("/bus/platform/drivers/e1000/state"), "loaded");
  EXPECT_TRUE(drv_->work().BeginWork());  // accepting work again
  release.set_value();
  worker.join();
  AddDev("nic0", "umbra,e1000");  // still matches
  EXPECT_EQ(State("nic0"), "bound");
}

TEST_F(UnloadTest, TokensOutliveTheDriver) {
  auto token = drv_->work().BeginWork().value();
  drv_.reset();
  token.Release();  // no crash: the counter is shared
  EXPECT_TRUE(model_->UnloadDriver("e1000", 10ms));
}

}  // namespace
}  // namespace umbra::model::testing
