// The shadow core against a fake host (runtime::Host implemented in this
// test): the shadow's recovery logic, without driver processes. The
// integration tests (echo_shadow_test.cc, the class tests) run the same core
// against the real DriverHost and real driver processes.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "recorder/recorder.h"
#include "runtime/supervisor/host.h"
#include "shadows/shadow.h"

namespace umbra::shadows {
namespace {

using runtime::DeviceState;

constexpr int64_t kTimeoutNs = 5'000'000'000;
constexpr uint32_t kSetKnob = 7;

// A host whose "driver" is a map of the settings it was given. Crash()
// forgets them, as a restarted driver would, and tells the listener the way
// DriverHost does (OnDriverDown, then OnDriverReady after the restart).
class FakeHost final : public runtime::Host {
 public:
  const std::string& name() const override { return name_; }
  DeviceState state() const override {
    std::lock_guard lock(mu_);
    return state_;
  }
  std::vector<runtime::Detection> detections() const override { return {}; }
  runtime::DriverHostStats stats() const override { return {}; }
  recorder::Recorder& recorder() const override { return recorder::Recorder::Off(); }
  uint32_t recorder_device() const override { return 0; }
  void set_listener(runtime::DriverHostListener* l) override { listener_ = l; }
  void Start() override { Restart(); }
  void Shutdown() override { SetState(DeviceState::kStopped); }
  void Kill(int) override { Crash(); }
  Result<void> SetFailpoints(const std::string&, int64_t) override { return {}; }
  Result<std::vector<runtime::FailpointCount>> QueryFailpoints(int64_t) override {
    return std::vector<runtime::FailpointCount>{};
  }
  std::optional<uint32_t> AllocBuffer() override { return std::nullopt; }
  void FreeBuffer(uint32_t) override {}
  std::byte* buffer(uint32_t) override { return nullptr; }
  uint32_t buffer_size() const override { return 0; }
  Result<size_t> Submit(std::span<const runtime::Request>) override {
    return Fail(Errc::kInvalidArgument, "the fake host has no data path");
  }
  size_t Poll(std::span<runtime::Completion>) override { return 0; }
  size_t Wait(std::span<runtime::Completion>, int64_t) override { return 0; }

  // The driver applies a setting while it runs, and refuses the call else.
  Result<std::string> Call(uint32_t method, std::string body, int64_t) override {
    std::lock_guard lock(mu_);
    if (state_ != DeviceState::kRunning) return Fail(Errc::kUnavailable, name_ + " is down");
    applied_[method] = body;
    ++calls_;
    return body;
  }
  Result<std::vector<std::string>> CallBatch(std::vector<runtime::DriverCall> calls, int64_t timeout_ns) override {
    std::vector<std::string> bodies;
    for (runtime::DriverCall& c : calls) bodies.push_back(UMBRA_TRY(Call(c.method, std::move(c.body), timeout_ns)));
    return bodies;
  }

  void Crash() {
    {
      std::lock_guard lock(mu_);
      state_ = DeviceState::kRecovering;
      applied_.clear();  // the driver's state died with it
    }
    listener_->OnDriverDown(runtime::Detection{.reason = runtime::DetectReason::kHostRequest, .instance = instance_});
  }
  void Restart() {
    SetState(DeviceState::kRunning);
    listener_->OnDriverReady(++instance_, 0);
  }

  std::optional<std::string> applied(uint32_t method) const {
    std::lock_guard lock(mu_);
    auto it = applied_.find(method);
    return it == applied_.end() ? std::nullopt : std::optional(it->second);
  }
  int calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  void SetState(DeviceState s) {
    std::lock_guard lock(mu_);
    state_ = s;
  }

  std::string name_ = "knob0";
  runtime::DriverHostListener* listener_ = nullptr;
  uint64_t instance_ = 0;
  mutable std::mutex mu_;
  DeviceState state_ = DeviceState::kStopped;
  std::map<uint32_t, std::string> applied_;
  int calls_ = 0;
};

// The smallest shadow class: one setting, kept in the configuration log.
class KnobShadow final : public Shadow {
 public:
  explicit KnobShadow(runtime::Host& host, RecoveryMode mode = RecoveryMode::kShadow)
      : Shadow(host, Options{.class_name = "knob", .mode = mode}) {}
  ~KnobShadow() override { Stop(); }
  Result<std::string> SetKnob(std::string value) { return ConfigCall("knob", 0, kSetKnob, std::move(value)); }
};

TEST(ShadowOnFakeHost, ReplaysTheConfigurationIntoTheRestartedDriver) {
  FakeHost host;
  KnobShadow shadow(host);
  shadow.Start();
  ASSERT_TRUE(shadow.WaitUntilPassive(kTimeoutNs).has_value());
  ASSERT_TRUE(shadow.SetKnob("11").has_value());
  EXPECT_EQ(host.applied(kSetKnob), "11");

  host.Crash();
  EXPECT_EQ(shadow.state(), ShadowState::kRecovering);
  EXPECT_EQ(host.applied(kSetKnob), std::nullopt) << "the new driver starts without it";
  host.Restart();
  ASSERT_TRUE(shadow.WaitUntilPassive(kTimeoutNs).has_value());
  EXPECT_EQ(host.applied(kSetKnob), "11") << "replayed";
  const auto records = shadow.recoveries();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_TRUE(records[0].succeeded);
  EXPECT_GT(records[0].replayed_ns, 0);
}

// A setting made while the driver is down is not sent to the host (which
// would refuse it): it is recorded, answered, and the replay applies it.
TEST(ShadowOnFakeHost, ASettingMadeWhileRecoveringIsAppliedByTheReplay) {
  FakeHost host;
  KnobShadow shadow(host);
  shadow.Start();
  ASSERT_TRUE(shadow.WaitUntilPassive(kTimeoutNs).has_value());
  ASSERT_TRUE(shadow.SetKnob("1").has_value());
  host.Crash();
  const int calls_before = host.calls();
  EXPECT_TRUE(shadow.SetKnob("2").has_value()) << "hidden from the client";
  EXPECT_EQ(host.calls(), calls_before) << "not sent while the driver is down";
  host.Restart();
  ASSERT_TRUE(shadow.WaitUntilPassive(kTimeoutNs).has_value());
  EXPECT_EQ(host.applied(kSetKnob), "2");
}

// Without a shadow (restart only) nothing is replayed, and a setting made
// while the driver is down is refused.
TEST(ShadowOnFakeHost, RestartOnlyRefusesWhileDownAndReplaysNothing) {
  FakeHost host;
  KnobShadow shadow(host, RecoveryMode::kRestartOnly);
  shadow.Start();
  ASSERT_TRUE(shadow.WaitUntilPassive(kTimeoutNs).has_value());
  ASSERT_TRUE(shadow.SetKnob("5").has_value());
  host.Crash();
  auto refused = shadow.SetKnob("6");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Errc::kUnavailable);
  host.Restart();
  ASSERT_TRUE(shadow.WaitUntilPassive(kTimeoutNs).has_value());
  EXPECT_EQ(host.applied(kSetKnob), std::nullopt);
}

}  // namespace
}  // namespace umbra::shadows
