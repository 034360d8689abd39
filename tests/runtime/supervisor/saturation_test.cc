// Saturating both cores for 30 s must not make a healthy driver look hung.
// Its own binary, run alone (RUN_SERIAL): it would disturb every other test.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "drivers/echo/echo_driver.h"
#include "runtime/base/clock.h"
#include "runtime/supervisor/supervisor.h"

namespace umbra::runtime {
namespace {

constexpr int64_t kSec = 1'000'000'000;

bool EchoOnce(DriverHost& h) {
  auto buf = h.AllocBuffer();
  if (!buf) return false;
  std::memset(h.buffer(*buf), 0x5a, 16);
  Request r{.op = drivers::EchoDriver::kEcho, .offset = *buf, .length = 16, .capacity = 16};
  bool ok = false;
  if (auto n = h.Submit({&r, 1}); n && *n == 1) {
    Completion c;
    ok = h.Wait({&c, 1}, 5 * kSec) == 1 && c.status == 0;
  }
  h.FreeBuffer(*buf);
  return ok;
}

TEST(Saturation, NoFalseHangDetectionWhileBothCoresAreSaturated) {
  if (std::getenv("UMBRA_SKIP_SLOW")) GTEST_SKIP() << "UMBRA_SKIP_SLOW is set";
  Supervisor sup;
  DriverHostOptions o;
  o.device_name = "echo0";
  o.driver_binary = UMBRA_ECHO_DRIVER;  // the default 50 ms heartbeat period
  DriverHost& h = **sup.AddDevice(o);
  h.Start();
  ASSERT_TRUE(h.WaitUntilRunning(10 * kSec).has_value());
  std::atomic<bool> stop{false};
  std::vector<std::thread> hogs;
  for (unsigned i = 0; i < std::max(2u, std::thread::hardware_concurrency()); ++i) {
    hogs.emplace_back([&] {
      volatile uint64_t x = 0;
      while (!stop.load(std::memory_order_relaxed)) x = x + 1;
    });
  }
  const int64_t end = MonotonicNanos() + 30 * kSec;
  int served = 0;
  while (MonotonicNanos() < end) {
    served += EchoOnce(h);
    usleep(10'000);
  }
  stop = true;
  for (auto& t : hogs) t.join();
  auto d = h.detections();
  EXPECT_TRUE(d.empty()) << d.front().ToString();
  EXPECT_GT(served, 100);
}

}  // namespace
}  // namespace umbra::runtime
