// The pieces every emulated device shares (runtime/hw/hw_thread.h): the
// hardware thread's life cycle and the interrupt edge rule, with real
// threads and real eventfds.
#include "runtime/hw/hw_thread.h"

#include <unistd.h>

#include <atomic>

#include <gtest/gtest.h>

namespace umbra::hw {
namespace {

constexpr uint32_t kA = 1u << 0;
constexpr uint32_t kB = 1u << 1;

TEST(HardwareThread, StopWakesTheSleepingThreadAndJoinsItIdempotently) {
  HardwareThread t(*ipc::EventFd::Create());
  std::atomic<bool> sleeping{false}, returned{false};
  t.Start("hwtest", [&] {
    while (!t.stopping()) {
      sleeping = true;
      t.wake().Wait(-1);  // sleeps until Stop signals
    }
    returned = true;
  });
  EXPECT_TRUE(t.running());
  t.Start("hwtest", [] { FAIL() << "a second thread while running"; });
  while (!sleeping) usleep(100);
  EXPECT_FALSE(t.stopping());
  EXPECT_GE(t.cpu_ns(), 0);
  t.Stop();  // would hang here if Stop did not wake it
  EXPECT_FALSE(t.running());
  EXPECT_TRUE(returned);
  EXPECT_EQ(t.cpu_ns(), 0) << "not running";
  t.Stop();  // idempotent
  // Startable again after a stop.
  std::atomic<bool> ran{false};
  t.Start("hwtest", [&] { ran = true; });
  t.Stop();
  EXPECT_TRUE(ran);
}

TEST(RaiseInterrupt, OneEdgePerCauseUntilAcknowledgedAndNoneWhileMasked) {
  auto line = *ipc::EventFd::Create();
  std::atomic<uint32_t> cause{0}, mask{0};  // kBitMasks: 0 = everything enabled
  EXPECT_TRUE(RaiseInterrupt(cause, mask, MaskSense::kBitMasks, kA, line));
  EXPECT_EQ(line.Drain(), 1u);
  EXPECT_FALSE(RaiseInterrupt(cause, mask, MaskSense::kBitMasks, kA, line)) << "still pending: no new edge";
  EXPECT_TRUE(RaiseInterrupt(cause, mask, MaskSense::kBitMasks, kB, line)) << "another cause is a new edge";
  EXPECT_EQ(cause.load(), kA | kB);
  cause.fetch_and(~kA);  // the driver acknowledges A
  EXPECT_TRUE(RaiseInterrupt(cause, mask, MaskSense::kBitMasks, kA, line));
  cause = 0;
  mask = kA;
  EXPECT_FALSE(RaiseInterrupt(cause, mask, MaskSense::kBitMasks, kA, line)) << "masked";
  EXPECT_EQ(cause.load(), kA) << "a masked cause is still recorded";
  EXPECT_EQ(line.Drain(), 2u);
}

TEST(RaiseInterrupt, EnableSenseSignalsOnlyEnabledCauses) {
  auto line = *ipc::EventFd::Create();
  std::atomic<uint32_t> cause{0}, enable{kB};
  EXPECT_FALSE(RaiseInterrupt(cause, enable, MaskSense::kBitEnables, kA, line));
  EXPECT_TRUE(RaiseInterrupt(cause, enable, MaskSense::kBitEnables, kB, line));
  EXPECT_FALSE(RaiseInterrupt(cause, enable, MaskSense::kBitEnables, 0, line)) << "no bits, no edge";
  EXPECT_EQ(line.Drain(), 1u);
}

}  // namespace
}  // namespace umbra::hw
