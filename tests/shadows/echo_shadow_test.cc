// The shadow core end to end, through the echo class, with real driver
// processes that crash, hang and double-fault.
#include "shadows/echo/echo_shadow.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"
#include "tests/shadows/kill_fixture.h"

namespace umbra::shadows::echo {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

runtime::DriverHostOptions Options(const char* binary = UMBRA_FAULTY_DRIVER) {
  runtime::DriverHostOptions o;
  o.device_name = "echo0";
  o.driver_binary = binary;
  // The default 50 ms: a shorter period lets a loaded machine starve a healthy
  // driver into a hang detection, which these tests do not count on.
  o.data = {.ring_entries = 16, .buffer_size = 256, .buffer_count = 16};
  o.restart.budget = 10000;
  o.restart.backoff_initial_ns = 0;
  return o;
}

bool EchoOnce(EchoShadow& s, uint8_t seed, Errc* error = nullptr) {
  std::vector<std::byte> data(64);
  for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte(seed + i);
  auto r = s.Echo(data);
  if (!r) {
    if (error) *error = r.error().code;
    return false;
  }
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != ~std::byte(seed + i)) return false;
  }
  return true;
}

class EchoShadowTest : public ::testing::Test {
 protected:
  std::unique_ptr<EchoShadow> Make(runtime::DriverHostOptions o, RecoveryMode mode = RecoveryMode::kShadow) {
    host_ = *sup_.AddDevice(std::move(o));
    auto s = EchoShadow::Create(*host_, mode);
    s->Start();
    EXPECT_TRUE(s->WaitUntilPassive(10 * kSec).has_value());
    kill_ = std::make_unique<KillFixture>(*host_, *s, KillFixture::Options{});
    return s;
  }
  void TearDown() override { kill_.reset(); }
  runtime::Supervisor sup_;
  runtime::DriverHost* host_ = nullptr;
  std::unique_ptr<KillFixture> kill_;  // kills the driver every way; points at host_ and the shadow
};

TEST_F(EchoShadowTest, ClientSeesNoErrorWhileTheDriverIsKilledManyTimes) {
  auto s = Make(Options());
  ASSERT_TRUE(s->SetTag("blue").has_value());
  std::atomic<bool> done{false};
  std::atomic<int> errors{0}, served{0};
  std::thread client([&] {
    for (uint8_t i = 0; !done; ++i) {
      if (EchoOnce(*s, i))
        ++served;
      else
        ++errors;
    }
  });
  // Joined however the test body ends (an ASSERT returns early).
  struct Join {
    std::atomic<bool>& done;
    std::thread& t;
    ~Join() {
      done = true;
      if (t.joinable()) t.join();
    }
  } join{done, client};
  std::mt19937 rng(7);
  const int signals[] = {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP};
  for (int i = 0; i < 40; ++i) {
    usleep(std::uniform_int_distribution<int>(1000, 20000)(rng));
    kill_->KillAndRecover(signals[i % 4]);
    // The setting was replayed into the new driver. (Should the machine be
    // loaded enough for another recovery to start, ask the next driver.)
    Result<std::string> tag = Fail(Errc::kUnavailable, "not asked");
    for (int attempt = 0; attempt < 5 && !tag; ++attempt) {
      ASSERT_TRUE(s->WaitUntilPassive(10 * kSec).has_value());
      tag = s->DriverTag();
    }
    ASSERT_TRUE(tag.has_value()) << tag.error().ToString();
    EXPECT_EQ(*tag, "blue");
  }
  done = true;
  client.join();
  EXPECT_EQ(errors, 0);
  EXPECT_GT(served, 40);
  auto records = s->recoveries();
  ASSERT_GE(records.size(), 40u) << "one per kill (more if the machine was loaded enough for a false hang)";
  for (const auto& r : records) {
    EXPECT_TRUE(r.succeeded);
    EXPECT_LE(r.detected_ns, r.isolated_ns);
    EXPECT_LE(r.isolated_ns, r.restarted_ns);
    EXPECT_LE(r.restarted_ns, r.replayed_ns);
    EXPECT_LE(r.replayed_ns, r.passive_ns);
  }
}

// Each way a driver dies or misbehaves (signals from outside; a crash, an
// abort, a hang, an exit, a request never completed and a forged completion
// while handling a request): the client sees no error and the setting is
// replayed.
TEST_F(EchoShadowTest, EveryWayOfKillingTheDriverIsHiddenFromTheClient) {
  auto s = Make(Options(UMBRA_ECHO_DRIVER));
  ASSERT_TRUE(s->SetTag("blue").has_value());
  for (DriverFault f : kill_->faults()) {
    SCOPED_TRACE(DriverFaultName(f));
    std::atomic<bool> done{false};
    std::atomic<int> errors{0};
    std::thread client([&] {
      for (uint8_t i = 0; !done; ++i) errors += !EchoOnce(*s, i);
    });
    kill_->KillAndRecover(f);
    done = true;
    client.join();
    EXPECT_EQ(errors.load(), 0);
    ASSERT_TRUE(s->WaitUntilPassive(10 * kSec).has_value());
    EXPECT_EQ(s->DriverTag().value_or("?"), "blue");
  }
  const auto records = s->recoveries();
  ASSERT_GE(records.size(), kill_->faults().size());
  for (const auto& r : records) EXPECT_TRUE(r.succeeded) << r.failure;
}

TEST_F(EchoShadowTest, TagIsAnsweredFromTheShadowWhileRecovering) {
  auto s = Make(Options());
  ASSERT_TRUE(s->SetTag("green").has_value());
  host_->Kill(SIGSTOP);
  while (s->state() == ShadowState::kPassive) usleep(100);
  EXPECT_EQ(s->Tag(), "green");
  ASSERT_TRUE(s->SetTag("red").has_value()) << "logged now, replayed later";
  ASSERT_TRUE(s->WaitUntilPassive(10 * kSec).has_value());
  EXPECT_EQ(s->DriverTag().value_or("?"), "red");
}

TEST_F(EchoShadowTest, DoubleFaultDuringReplayRestartsRecovery) {
  auto o = Options();
  o.settings["crash_replay_on"] = "2,3";  // the first two replacements die while replaying
  auto s = Make(std::move(o));
  ASSERT_TRUE(s->SetTag("x").has_value());
  kill_->KillAndRecover(SIGKILL);
  ASSERT_TRUE(EchoOnce(*s, 1));
  auto records = s->recoveries();
  ASSERT_EQ(records.size(), 1u) << "one recovery, several attempts";
  EXPECT_EQ(records[0].attempts, 3u);
  EXPECT_TRUE(records[0].succeeded);
  EXPECT_EQ(host_->instance(), 4u);
  EXPECT_EQ(s->DriverTag().value_or("?"), "x");
}

TEST_F(EchoShadowTest, BudgetSpentFailsCallsWithAClearError) {
  auto o = Options();
  o.restart.budget = 2;
  o.restart.window_ns = 60 * kSec;
  o.settings["crash_replay_on"] = "2,3,4,5,6";
  auto s = Make(std::move(o));
  ASSERT_TRUE(s->SetTag("x").has_value());
  host_->Kill(SIGKILL);
  while (s->recoveries().empty()) usleep(100);
  Errc code{};
  EXPECT_FALSE(EchoOnce(*s, 1, &code));
  EXPECT_EQ(code, Errc::kDeviceFailed);
  EXPECT_EQ(s->state(), ShadowState::kFailed);
  EXPECT_NE(s->failure_reason().find("restart budget spent"), std::string::npos);
  auto set = s->SetTag("y");
  ASSERT_FALSE(set.has_value());
  EXPECT_EQ(set.error().code, Errc::kDeviceFailed);
}

TEST_F(EchoShadowTest, RestartOnlyModeShowsTheFailureToTheClient) {
  auto o = Options();
  o.restart.backoff_initial_ns = 50 * kMs;
  auto s = Make(std::move(o), RecoveryMode::kRestartOnly);
  ASSERT_TRUE(s->SetTag("blue").has_value());
  int errors = 0;
  for (int i = 0; i < 5; ++i) {
    const size_t before = s->recoveries().size();
    host_->Kill(SIGKILL);
    while (s->recoveries().size() == before) usleep(100);
    errors += !EchoOnce(*s, 1);  // inside the 50 ms restart delay
    ASSERT_TRUE(s->WaitUntilPassive(10 * kSec).has_value());
  }
  EXPECT_EQ(errors, 5);
  EXPECT_EQ(s->DriverTag().value_or("?"), "") << "no replay: the new driver never heard the tag";
}

// Regression: ConfigCall logged the value before the restart-only check, so
// a SetTag refused with kUnavailable still changed what Tag() answered.
TEST_F(EchoShadowTest, RestartOnlySettingRefusedWhileNotPassiveLeavesTheReportedValueAlone) {
  auto s = Make(Options(UMBRA_ECHO_DRIVER), RecoveryMode::kRestartOnly);
  ASSERT_TRUE(s->SetTag("blue").has_value());
  s->OnSupplierRecovering("clk0");  // holding: not passive
  auto refused = s->SetTag("red");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Errc::kUnavailable);
  EXPECT_EQ(s->Tag(), "blue");
  s->OnSupplierRecovered("clk0");
  EXPECT_EQ(s->Tag(), "blue");
  EXPECT_EQ(s->DriverTag().value_or("?"), "blue");
}

TEST_F(EchoShadowTest, SupplierRecoveringHoldsRequestsUntilItIsBack) {
  auto s = Make(Options(UMBRA_ECHO_DRIVER));
  s->OnSupplierRecovering("clk0");
  EXPECT_EQ(s->state(), ShadowState::kHolding);
  std::atomic<bool> finished{false};
  std::thread client([&] {
    EXPECT_TRUE(EchoOnce(*s, 3));
    finished = true;
  });
  usleep(50'000);
  EXPECT_FALSE(finished) << "held while the supplier recovers";
  s->OnSupplierRecovered("clk0");
  client.join();
  EXPECT_TRUE(finished);
  EXPECT_EQ(s->state(), ShadowState::kPassive);
  s->OnSupplierFailed("opt0", /*optional=*/true);
  EXPECT_TRUE(s->degraded());
  EXPECT_TRUE(EchoOnce(*s, 4)) << "degraded, still serving";
  s->OnSupplierFailed("clk0", /*optional=*/false);
  Errc code{};
  EXPECT_FALSE(EchoOnce(*s, 5, &code));
  EXPECT_EQ(code, Errc::kDeviceFailed);
  EXPECT_NE(s->failure_reason().find("supplier clk0 failed"), std::string::npos);
}

}  // namespace
}  // namespace umbra::shadows::echo
