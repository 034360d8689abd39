// Recovery settings from machine files: defaults, the machine's, a device's own.
#include "machine/recovery_settings.h"

#include <gtest/gtest.h>

#include "machine/default_machine.h"
#include "runtime/model/machine.h"
#include "umbra/machine.pb.h"

namespace umbra::machine {
namespace {

constexpr int64_t kMs = 1'000'000;

std::unique_ptr<proto::Machine> Parse(const std::string& text) {
  auto m = model::ParseMachine(text, "m.textproto");
  EXPECT_TRUE(m.has_value()) << m.error().ToString();
  return m ? std::move(*m) : nullptr;
}

constexpr const char* kTwoDevices = R"(
buses { name: "platform" }
devices { name: "a" bus: "platform" compatible: "umbra,echo" device_class: "echo" }
devices {
  name: "b" bus: "platform" compatible: "umbra,echo" device_class: "echo"
  recovery {
    warm_standby: false
    heartbeat_period_ms: 25
    backoff { crash_loop_ms: 70 }
  }
}
drivers { name: "echo" bus: "platform" compatible: "umbra,echo" binary: "umbra-driver-echo" }
)";

TEST(RecoverySettings, AFileThatSaysNothingGetsWarmStandbyAndTheRuntimeDefaults) {
  auto m = Parse(kTwoDevices);
  ASSERT_TRUE(m);
  const RecoverySettings a = ResolveRecovery(*m, m->devices(0));
  EXPECT_EQ(a.warm_standby, WarmStandby::kOn);
  const runtime::DriverHostOptions defaults;
  EXPECT_EQ(a.heartbeat_period_ns, defaults.heartbeat_period_ns);
  EXPECT_EQ(a.request_deadline_ns, defaults.request_deadline_ns);
  EXPECT_EQ(a.restart.budget, runtime::RestartPolicy::Options{}.budget);
}

TEST(RecoverySettings, ADeviceOverridesTheMachineFieldByField) {
  auto m = Parse(std::string(R"(settings { recovery {
    heartbeat_period_ms: 10 request_deadline_ms: 500
    restart_budget { max_restarts: 4 window_ms: 2000 }
    backoff { initial_ms: 3 max_ms: 40 crash_loop_ms: 20 stable_ms: 800 } } })") +
                 kTwoDevices);
  ASSERT_TRUE(m);
  const RecoverySettings a = ResolveRecovery(*m, m->devices(0));
  EXPECT_EQ(a.warm_standby, WarmStandby::kOn);
  EXPECT_EQ(a.heartbeat_period_ns, 10 * kMs);
  EXPECT_EQ(a.request_deadline_ns, 500 * kMs);
  EXPECT_EQ(a.restart.budget, 4u);
  EXPECT_EQ(a.restart.window_ns, 2000 * kMs);
  EXPECT_EQ(a.restart.backoff_initial_ns, 3 * kMs);
  EXPECT_EQ(a.restart.backoff_max_ns, 40 * kMs);
  EXPECT_EQ(a.restart.crash_loop_ns, 20 * kMs);
  EXPECT_EQ(a.restart.stable_period_ns, 800 * kMs);

  const RecoverySettings b = ResolveRecovery(*m, m->devices(1));
  EXPECT_EQ(b.warm_standby, WarmStandby::kOff);
  EXPECT_EQ(b.heartbeat_period_ns, 25 * kMs);
  EXPECT_EQ(b.restart.crash_loop_ns, 70 * kMs);
  EXPECT_EQ(b.request_deadline_ns, 500 * kMs) << "inherited";
  EXPECT_EQ(b.restart.backoff_max_ns, 40 * kMs) << "inherited";

  runtime::DriverHostOptions o;
  b.ApplyTo(o);
  EXPECT_FALSE(o.warm_standby);
  EXPECT_EQ(o.heartbeat_period_ns, 25 * kMs);
  EXPECT_EQ(o.restart.crash_loop_ns, 70 * kMs);
}

TEST(RecoverySettings, TheOlderMachineWideSpellingsStillWork) {
  auto m = Parse(std::string(R"(settings { heartbeat_period_ms: 30
    restart_budget { max_restarts: 3 window_ms: 1000 backoff_ms: 7 } })") +
                 kTwoDevices);
  ASSERT_TRUE(m);
  const RecoverySettings a = ResolveRecovery(*m, m->devices(0));
  EXPECT_EQ(a.heartbeat_period_ns, 30 * kMs);
  EXPECT_EQ(a.restart.budget, 3u);
  EXPECT_EQ(a.restart.backoff_initial_ns, 7 * kMs);
}

TEST(RecoverySettings, TheDefaultMachineRunsWithWarmStandbyAndATenMillisecondHeartbeat) {
  auto m = LoadDefaultMachine();
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  for (const auto& d : (*m)->devices()) {
    const RecoverySettings r = ResolveRecovery(**m, d);
    EXPECT_EQ(r.warm_standby, WarmStandby::kOn) << d.name();
    EXPECT_EQ(r.heartbeat_period_ns, 10 * kMs) << d.name();
  }
}

TEST(RecoverySettings, OutOfRangeOrGivenTwiceIsRefusedWithLineAndField) {
  auto low = model::ParseMachine(std::string(R"(settings {
  recovery { backoff { initial_ms: 100 max_ms: 10 } } })") +
                                     kTwoDevices,
                                 "m.textproto");
  ASSERT_FALSE(low.has_value());
  EXPECT_NE(low.error().message.find("m.textproto:2:"), std::string::npos) << low.error().message;
  EXPECT_NE(low.error().message.find("settings.recovery.backoff.max_ms: shorter than initial_ms"), std::string::npos)
      << low.error().message;
  auto twice = model::ParseMachine(std::string(R"(settings { recovery {
  restart_budget { backoff_ms: 5 } backoff { initial_ms: 5 } } })") +
                                       kTwoDevices,
                                   "m.textproto");
  ASSERT_FALSE(twice.has_value());
  EXPECT_NE(twice.error().message.find("backoff.initial_ms: given twice"), std::string::npos) << twice.error().message;
}

}  // namespace
}  // namespace umbra::machine
