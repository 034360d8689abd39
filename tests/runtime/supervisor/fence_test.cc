// What the fence after a driver's death does with the requests in flight.
#include <signal.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "drivers/echo/echo_driver.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"

namespace umbra::runtime {
namespace {

constexpr int64_t kSec = 1'000'000'000;

DriverHostOptions EchoOptions() {
  DriverHostOptions o;
  o.device_name = "echo0";
  o.compatible = "umbra,echo";
  o.device_class = "test";
  o.driver_binary = UMBRA_ECHO_DRIVER;
  o.data = {.ring_entries = 16, .buffer_size = 256, .buffer_count = 16};
  o.restart.backoff_initial_ns = 0;
  return o;
}

// Regression: FenceDataPath turned every tracked request into kInterrupted,
// even one the driver had completed and published before it died; its data
// was lost although the driver had done the work.
TEST(Fence, ARequestCompletedBeforeTheDriverDiedComesBackWithItsData) {
  Supervisor sup;
  DriverHost& h = **sup.AddDevice(EchoOptions());
  h.Start();
  ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
  const uint32_t buf = *h.AllocBuffer();
  for (int i = 0; i < 64; ++i) h.buffer(buf)[i] = std::byte(i);
  Request r{.op = drivers::EchoDriver::kEcho, .offset = buf, .length = 64, .capacity = 64, .cookie = 9};
  ASSERT_EQ(*h.Submit({&r, 1}), 1u);
  usleep(100'000);  // the driver echoes it at once; nobody collects the completion
  const pid_t old = h.driver_pid();
  h.Kill(SIGKILL);
  const int64_t deadline = MonotonicNanos() + 10 * kSec;
  while ((h.driver_pid() == old || h.state() != DeviceState::kRunning) && MonotonicNanos() < deadline) {
    usleep(100);
  }
  ASSERT_EQ(h.detections().size(), 1u);
  Completion c{.status = -1};
  ASSERT_EQ(h.Wait({&c, 1}, 5 * kSec), 1u);
  EXPECT_EQ(c.cookie, 9u);
  EXPECT_EQ(c.status, 0) << "completed before the kill, not interrupted";
  EXPECT_EQ(c.length, 64u);
  for (int i = 0; i < 64; ++i) ASSERT_EQ(h.buffer(buf)[i], ~std::byte(i)) << i;
  EXPECT_EQ(h.stats().requests_interrupted, 0u);
  EXPECT_EQ(h.in_flight(), 0u);
}

// A request the driver had not finished is still reported interrupted.
TEST(Fence, ARequestStillInTheDriverIsInterrupted) {
  Supervisor sup;
  auto o = EchoOptions();
  o.driver_binary = UMBRA_FAULTY_DRIVER;
  o.request_deadline_ns = 60 * kSec;
  o.heartbeat_period_ns = 10 * kSec;
  DriverHost& h = **sup.AddDevice(o);
  h.Start();
  ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
  constexpr uint16_t kHang = 14;  // faulty_driver.cc: never completes
  Request r{.op = kHang, .cookie = 4};
  ASSERT_EQ(*h.Submit({&r, 1}), 1u);
  usleep(50'000);
  h.Kill(SIGKILL);
  Completion c{.status = -1};
  ASSERT_EQ(h.Wait({&c, 1}, 5 * kSec), 1u);
  EXPECT_EQ(c.cookie, 4u);
  EXPECT_EQ(c.status, static_cast<int32_t>(Errc::kInterrupted));
}

}  // namespace
}  // namespace umbra::runtime
