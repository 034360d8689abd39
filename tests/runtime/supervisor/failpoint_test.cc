// Failpoints armed in real driver processes through the control channel.
#include <signal.h>

#include <gtest/gtest.h>

#include "drivers/echo/echo_driver.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"

namespace umbra::runtime {
namespace {

constexpr int64_t kSec = 1'000'000'000;

DriverHostOptions Options() {
  DriverHostOptions o;
  o.device_name = "echo0";
  o.driver_binary = UMBRA_ECHO_DRIVER;
  o.data = {.ring_entries = 16, .buffer_size = 64, .buffer_count = 16};
  o.restart.backoff_initial_ns = 0;
  return o;
}

// Sends `n` no-op requests one by one; returns how many completed with status 0.
int Nops(DriverHost& h, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    Request r{.op = drivers::EchoDriver::kNop};
    auto sent = h.Submit({&r, 1});
    if (!sent || *sent != 1) continue;
    Completion c;
    if (h.Wait({&c, 1}, 5 * kSec) == 1 && c.status == 0) ++ok;
  }
  return ok;
}

class FailpointTest : public ::testing::Test {
 protected:
  DriverHost& Start(DriverHostOptions o) {
    DriverHost& h = **sup_.AddDevice(std::move(o));
    h.Start();
    EXPECT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
    return h;
  }
  Supervisor sup_;
};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

TEST_F(FailpointTest, SpecArmedAtSpawnCrashesTheDriverOnTheFourthRequest) {
  if (kAsan) GTEST_SKIP() << "under AddressSanitizer the driver's ASan runtime catches the segfault";
  auto o = Options();
  o.failpoints = "seed=1; sdk.request=3+1*segfault";
  DriverHost& h = Start(std::move(o));
  EXPECT_EQ(Nops(h, 3), 3);
  EXPECT_EQ(Nops(h, 1), 0) << "the fourth request was in flight when it crashed";
  ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
  auto d = h.detections();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason, DetectReason::kSignal);
  EXPECT_EQ(d[0].code, SIGSEGV);
  // Re-armed in the new driver: the skip count starts again.
  EXPECT_EQ(Nops(h, 3), 3);
  EXPECT_EQ(Nops(h, 1), 0);
  ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
  EXPECT_EQ(h.detections().size(), 2u);
}

TEST_F(FailpointTest, SpecChangedLiveAndCountsReported) {
  DriverHost& h = Start(Options());
  EXPECT_EQ(Nops(h, 2), 2);
  ASSERT_TRUE(h.SetFailpoints("sdk.request=2+error").has_value());
  EXPECT_EQ(Nops(h, 4), 2) << "two pass, then every request fails with EIO";
  auto counts = h.QueryFailpoints();
  ASSERT_TRUE(counts.has_value()) << counts.error().ToString();
  bool found = false;
  for (const auto& c : *counts) {
    if (c.site != "sdk.request") continue;
    found = true;
    EXPECT_EQ(c.hits, 4u);
    EXPECT_EQ(c.triggers, 2u);
  }
  EXPECT_TRUE(found);
  ASSERT_TRUE(h.SetFailpoints("sdk.request=off").has_value());
  EXPECT_EQ(Nops(h, 3), 3);
}

TEST_F(FailpointTest, AWarmStandbyTakesOverWithTheSpecCurrentAtTheCrash) {
  auto o = Options();
  o.warm_standby = true;
  DriverHost& h = Start(std::move(o));
  usleep(150'000);  // the standby is spawned 50 ms after the driver is ready, then attaches
  ASSERT_TRUE(h.SetFailpoints("sdk.request=2+error").has_value());
  EXPECT_EQ(Nops(h, 4), 2) << "armed in the live driver";
  h.Kill(SIGKILL);
  const int64_t deadline = MonotonicNanos() + 10 * kSec;
  while (h.detections().empty() && MonotonicNanos() < deadline) usleep(1000);
  ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
  // The standby attached before the spec was set; its probe carried it, with
  // the skip count starting afresh.
  EXPECT_EQ(Nops(h, 4), 2);
  ASSERT_TRUE(h.SetFailpoints("sdk.request=off").has_value());
  EXPECT_EQ(Nops(h, 2), 2);
}

TEST_F(FailpointTest, BadSpecIsRefusedWithItsColumn) {
  DriverHost& h = Start(Options());
  auto r = h.SetFailpoints("sdk.request=segfalt");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kParse);
  EXPECT_NE(r.error().message.find("1:13"), std::string::npos) << r.error().message;
  EXPECT_TRUE(h.detections().empty()) << "a bad spec is the user's error, not the driver's";
}

TEST_F(FailpointTest, ACallTheDriverNeverAnswersIsAHangAtTheRequestDeadline) {
  auto o = Options();
  o.request_deadline_ns = 200'000'000;
  DriverHost& h = Start(std::move(o));
  ASSERT_TRUE(h.SetFailpoints("sdk.call=1*drop_completion").has_value());
  const int64_t t0 = MonotonicNanos();
  auto r = h.Call(drivers::EchoDriver::kGetTag, "", 10 * kSec);
  const int64_t waited = MonotonicNanos() - t0;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kInterrupted) << r.error().ToString();
  EXPECT_LT(waited, 5 * kSec) << "the watchdog, not the caller's timeout, ended the call";
  ASSERT_FALSE(h.detections().empty());
  EXPECT_EQ(h.detections()[0].reason, DetectReason::kRequestDeadline) << h.detections()[0].ToString();
  ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
  ASSERT_TRUE(h.SetFailpoints("sdk.call=off").has_value());  // it was armed in the next driver too
  EXPECT_TRUE(h.Call(drivers::EchoDriver::kGetTag, "", 5 * kSec).has_value()) << "answered by the next driver";
}

struct SiteFaultCase {
  const char* name;
  const char* spec;
  DetectReason reason;
};

class SiteFaultTest : public FailpointTest, public ::testing::WithParamInterface<SiteFaultCase> {};

TEST_P(SiteFaultTest, HostDetectsItAndRecovers) {
  if (kAsan && std::string(GetParam().name) == "heap") {
    GTEST_SKIP() << "under AddressSanitizer the driver's ASan runtime catches the heap corruption";
  }
  auto o = Options();
  o.heartbeat_period_ns = 20'000'000;
  o.request_deadline_ns = kSec;
  DriverHost& h = Start(std::move(o));
  ASSERT_TRUE(h.SetFailpoints(GetParam().spec).has_value());
  Nops(h, 2);
  (void)h.Call(drivers::EchoDriver::kGetTag, "", kSec);
  const int64_t deadline = MonotonicNanos() + 10 * kSec;
  while (h.detections().empty() && MonotonicNanos() < deadline) Nops(h, 1);
  ASSERT_FALSE(h.detections().empty());
  EXPECT_EQ(h.detections()[0].reason, GetParam().reason) << h.detections()[0].ToString();
  ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Faults, SiteFaultTest,
    ::testing::Values(
        SiteFaultCase{"forged_id", "sdk.request=1*forged_id", DetectReason::kProtocolViolation},
        SiteFaultCase{"duplicate_id", "sdk.request=1*duplicate_id", DetectReason::kProtocolViolation},
        SiteFaultCase{"wrong_length", "sdk.complete=1*wrong_length(100000)", DetectReason::kProtocolViolation},
        SiteFaultCase{"wild_dma", "sdk.request=1*wild_dma", DetectReason::kProtocolViolation},
        SiteFaultCase{"malformed_reply", "sdk.call=1*malformed_reply", DetectReason::kProtocolViolation},
        SiteFaultCase{"forged_reply", "sdk.call=1*forged_id", DetectReason::kProtocolViolation},
        SiteFaultCase{"dropped_completion", "sdk.request=1*drop_completion", DetectReason::kRequestDeadline},
        SiteFaultCase{"lost_heartbeats", "sdk.heartbeat=drop_completion", DetectReason::kMissedHeartbeat},
        SiteFaultCase{"abort", "sdk.request=1*abort", DetectReason::kSignal},
        SiteFaultCase{"exit", "sdk.request=1*exit(3)", DetectReason::kExit},
        SiteFaultCase{"heap", "sdk.request=1*corrupt_heap", DetectReason::kSignal},
        SiteFaultCase{"deadlock", "sdk.request=1*deadlock", DetectReason::kMissedHeartbeat}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace umbra::runtime
