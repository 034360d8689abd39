// The emulated UART through its datasheet: the test plays the driver,
// writing registers and ring bytes the way a driver process would, and the
// far end of the line. Hostile values are refused and counted.
#include "runtime/hw/uart/uart_device.h"

#include <poll.h>

#include <cstring>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"

namespace umbra::hw::uart {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr uint32_t kRing = 256;

class UartDeviceTest : public ::testing::Test {
 protected:
  void Make(UartOptions o = {}) {
    o.dma_size = 4096;
    dev_ = *UartDevice::Create(o);
    regs_ = dev_->registers();
    dev_->Start();
  }
  // Pokes the doorbell the way a driver does (write to the eventfd).
  void Ring() {
    const uint64_t one = 1;
    ASSERT_EQ(::write(dev_->resources().doorbell_fd, &one, sizeof one), 8);
  }
  template <class Pred>
  bool WaitFor(Pred p, int64_t timeout_ns = 2 * kSec) {
    const int64_t deadline = MonotonicNanos() + timeout_ns;
    while (!p()) {
      if (MonotonicNanos() > deadline) return false;
      usleep(100);
    }
    return true;
  }
  void Enable(uint64_t tx_off = 0, uint32_t tx_size = kRing, uint64_t rx_off = 1024, uint32_t rx_size = kRing) {
    regs_->tx_offset = tx_off;
    regs_->tx_size = tx_size;
    regs_->rx_offset = rx_off;
    regs_->rx_size = rx_size;
    regs_->int_enable = kIntTx | kIntRx;
    regs_->control = kControlEnable;
    Ring();
    ASSERT_TRUE(WaitFor([&] { return regs_->status.load() != 0; }));
  }
  // Enables the rings and the receiver, and sends `data` from the far end;
  // returns once `in_ring` of them are in the RX ring.
  void ReceiveIntoRing(const std::vector<std::byte>& data, uint32_t in_ring) {
    Enable();
    regs_->control = kControlEnable | kControlRxEnable;
    Ring();
    ASSERT_EQ(dev_->line().Send(data, kSec), data.size());
    ASSERT_TRUE(WaitFor([&] { return regs_->rx_tail.load() == in_ring; }));
  }
  bool SetLine(uint32_t divisor, uint32_t data, Parity parity, uint32_t stop) {
    regs_->divisor = divisor;
    regs_->data_bits = data;
    regs_->parity = static_cast<uint32_t>(parity);
    regs_->stop_bits = stop;
    const uint32_t req = regs_->line_request.load() + 1;
    regs_->line_request = req;
    Ring();
    EXPECT_TRUE(WaitFor([&] { return regs_->line_ack.load() == req; }));
    return (regs_->status.load() & kStatusLineError) == 0;
  }
  void Transmit(std::span<const std::byte> bytes) {
    uint32_t tail = regs_->tx_tail.load();
    for (std::byte b : bytes) dev_->dma()[regs_->tx_offset.load() + (tail++ & (regs_->tx_size.load() - 1))] = b;
    regs_->tx_tail.store(tail);
    Ring();
  }
  std::vector<std::byte> ReceiveAtFarEnd(size_t n) {
    std::vector<std::byte> out(n);
    size_t got = 0;
    while (got < n) {
      const size_t k = dev_->line().Receive(std::span(out).subspan(got), kSec);
      if (k == 0) break;
      got += k;
    }
    out.resize(got);
    return out;
  }
  static std::vector<std::byte> Bytes(size_t n, uint8_t seed = 0) {
    std::vector<std::byte> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
    return v;
  }

  std::unique_ptr<UartDevice> dev_;
  UartRegisters* regs_ = nullptr;
};

TEST_F(UartDeviceTest, PowersOnAt9600EightNoneOne) {
  Make();
  EXPECT_EQ(regs_->magic.load(), kMagic);
  EXPECT_EQ(regs_->version.load(), kVersion);
  EXPECT_EQ(regs_->clock_hz.load(), kClockHz);
  EXPECT_EQ(regs_->dma_size.load(), 4096u);
  EXPECT_EQ(dev_->line_config(), LineConfig{});
  EXPECT_EQ(dev_->line_config().baud, 9600u);
  EXPECT_EQ(regs_->active_divisor.load(), kPowerOnDivisor);
  EXPECT_EQ(dev_->compatible(), "umbra,uart-emu");
}

TEST_F(UartDeviceTest, TransmitsRingBytesOntoTheLineInOrderAndRaisesTx) {
  Make();
  Enable();
  const auto data = Bytes(1000);
  size_t sent = 0;
  std::vector<std::byte> got;
  while (got.size() < data.size()) {
    const uint32_t room = kRing - (regs_->tx_tail.load() - regs_->tx_head.load());
    const size_t n = std::min<size_t>(room, data.size() - sent);
    if (n > 0) {
      Transmit(std::span(data).subspan(sent, n));
      sent += n;
    }
    std::byte buf[512];
    const size_t k = dev_->line().Receive(buf, 10 * kMs);
    got.insert(got.end(), buf, buf + k);
  }
  EXPECT_EQ(got, data);
  EXPECT_EQ(regs_->tx_total.load(), data.size());
  EXPECT_EQ(regs_->tx_head.load(), regs_->tx_tail.load());
  EXPECT_NE(regs_->int_cause.load() & kIntTx, 0u);
  pollfd p{dev_->resources().interrupt_fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 1) << "the interrupt eventfd was signalled";
  EXPECT_EQ(dev_->faults(), 0u);
}

TEST_F(UartDeviceTest, ReceivesOnlyWhileEnabledAndHoldsTheFarEndWhenTheRingIsFull) {
  Make();
  Enable();
  const auto data = Bytes(600, 3);
  ASSERT_EQ(dev_->line().Send(data, kSec), data.size());
  usleep(20'000);
  EXPECT_EQ(regs_->rx_tail.load(), 0u) << "receiver not enabled: bytes wait on the line";
  regs_->control = kControlEnable | kControlRxEnable;
  Ring();
  ASSERT_TRUE(WaitFor([&] { return regs_->rx_tail.load() == kRing; }));
  usleep(20'000);
  EXPECT_EQ(regs_->rx_tail.load(), kRing) << "ring full: flow control holds the rest";
  EXPECT_EQ(dev_->line().pending_to_device(), data.size() - kRing);
  // Consume everything, a ring at a time.
  std::vector<std::byte> got;
  uint32_t head = 0;
  while (got.size() < data.size()) {
    ASSERT_TRUE(WaitFor([&] { return regs_->rx_tail.load() != head; }));
    const uint32_t tail = regs_->rx_tail.load();
    for (; head != tail; ++head) got.push_back(dev_->dma()[1024 + (head & (kRing - 1))]);
    regs_->rx_head = head;
    Ring();
  }
  EXPECT_EQ(got, data);
  EXPECT_EQ(regs_->rx_total.load(), data.size());
}

TEST_F(UartDeviceTest, AppliesLineSettingsAndRefusesBadOnesKeepingThePrevious) {
  Make();
  Enable();
  ASSERT_TRUE(SetLine(2, 7, Parity::kOdd, 2));
  const LineConfig good{.baud = 57600, .parity = Parity::kOdd, .data_bits = 7, .stop_bits = 2};
  EXPECT_EQ(dev_->line_config(), good);
  struct Bad {
    uint32_t divisor, data, parity, stop;
  } bad[] = {{0, 8, 0, 1}, {0x10000, 8, 0, 1}, {1, 4, 0, 1}, {1, 9, 0, 1}, {1, 8, 3, 1}, {1, 8, 0, 0}, {1, 8, 0, 3}};
  uint64_t faults = 0;
  for (const Bad& b : bad) {
    EXPECT_FALSE(SetLine(b.divisor, b.data, static_cast<Parity>(b.parity), b.stop));
    EXPECT_EQ(dev_->line_config(), good) << "refused: the previous settings stay";
    EXPECT_EQ(dev_->counters().line_config_faults, ++faults);
  }
  EXPECT_EQ(regs_->active_divisor.load(), 2u);
  EXPECT_TRUE(SetLine(1, 8, Parity::kNone, 1));
  EXPECT_EQ(dev_->line_config().baud, 115200u);
}

TEST_F(UartDeviceTest, RefusesHostileRingConfigurations) {
  Make();
  struct Case {
    uint64_t tx_off;
    uint32_t tx_size;
    uint64_t rx_off;
    uint32_t rx_size;
  } cases[] = {
      {0, 100, 1024, 256},           // not a power of two
      {0, 8, 1024, 256},             // too small
      {0, 1u << 17, 1024, 256},      // too large
      {32, 256, 1024, 256},          // misaligned
      {4096, 256, 1024, 256},        // outside the pool
      {3968, 256, 1024, 256},        // runs off the end
      {~0ull - 63, 256, 1024, 256},  // wraps around
      {0, 256, 128, 256},            // rings overlap
  };
  uint64_t faults = 0;
  for (const Case& c : cases) {
    dev_->Reset();  // what recovery does between two drivers
    Enable(c.tx_off, c.tx_size, c.rx_off, c.rx_size);
    EXPECT_EQ(regs_->status.load(), kStatusConfigError) << c.tx_off << " " << c.tx_size;
    EXPECT_EQ(dev_->counters().ring_config_faults, ++faults);
  }
}

TEST_F(UartDeviceTest, RefusesRingIndicesOutsideTheirWindow) {
  Make();
  Enable();
  regs_->tx_tail = kRing + 1;  // more than a ring ahead of tx_head
  Ring();
  ASSERT_TRUE(WaitFor([&] { return dev_->counters().ring_pointer_faults == 1; }));
  EXPECT_EQ(regs_->tx_total.load(), 0u) << "nothing sent from a bad tail";
  regs_->tx_tail = 0;
  regs_->control = kControlEnable | kControlRxEnable;
  regs_->rx_head = 5;  // ahead of rx_tail
  Ring();
  ASSERT_EQ(dev_->line().Send(Bytes(10), kSec), 10u);
  ASSERT_TRUE(WaitFor([&] { return dev_->counters().ring_pointer_faults == 2; }));
  EXPECT_EQ(regs_->rx_tail.load(), 0u);
  regs_->rx_head = 0;  // fixed: the ring runs again
  Ring();
  EXPECT_TRUE(WaitFor([&] { return regs_->rx_tail.load() == 10; }));
  EXPECT_EQ(dev_->faults(), 2u);
}

TEST_F(UartDeviceTest, DisagreeingEndsSeeFramingErrors) {
  Make();
  Enable();
  ASSERT_TRUE(SetLine(1, 8, Parity::kEven, 1));
  dev_->line().set_far_end({.baud = 115200, .parity = Parity::kNone});
  Transmit(Bytes(50));
  ASSERT_TRUE(WaitFor([&] { return dev_->line().framing_errors() == 50; }));
  EXPECT_EQ(dev_->line().received_total(), 0u) << "garbled bytes never reach the far end";
  regs_->control = kControlEnable | kControlRxEnable;
  ASSERT_EQ(dev_->line().Send(Bytes(20), kSec), 20u);
  Ring();
  ASSERT_TRUE(WaitFor([&] { return regs_->framing_errors.load() == 20; }));
  EXPECT_EQ(regs_->rx_tail.load(), 0u);
  dev_->line().set_far_end({.baud = 115200, .parity = Parity::kEven});
  Transmit(Bytes(5));
  EXPECT_EQ(ReceiveAtFarEnd(5), Bytes(5)) << "agreeing again: bytes flow";
}

TEST_F(UartDeviceTest, SevenDataBitsMaskTheTopBit) {
  Make();
  Enable();
  ASSERT_TRUE(SetLine(12, 7, Parity::kNone, 1));
  dev_->line().set_far_end({.baud = 9600, .data_bits = 7});
  const std::byte in[] = {std::byte{0xC1}, std::byte{0x41}};
  Transmit(in);
  EXPECT_EQ(ReceiveAtFarEnd(2), (std::vector<std::byte>{std::byte{0x41}, std::byte{0x41}}));
}

// Plays a driver that consumes what the RX ring holds until `until` bytes
// were taken since the enable (ring at 1024, kRing bytes).
std::vector<std::byte> ConsumeRx(UartDevice& dev, size_t until) {
  UartRegisters* regs = dev.registers();
  std::vector<std::byte> got;
  uint32_t head = regs->rx_head.load();
  const int64_t deadline = MonotonicNanos() + 2 * kSec;
  while (got.size() < until && MonotonicNanos() < deadline) {
    const uint32_t tail = regs->rx_tail.load();
    for (; head != tail && got.size() < until; ++head) got.push_back(dev.dma()[1024 + (head & (kRing - 1))]);
    regs->rx_head = head;
    const uint64_t one = 1;
    EXPECT_EQ(::write(dev.resources().doorbell_fd, &one, sizeof one), 8);
    usleep(100);
  }
  return got;
}

TEST_F(UartDeviceTest, ResetKeepsEveryUnacknowledgedByteWithItsPosition) {
  Make();
  dev_->AcknowledgeReceived(0);  // a reader acknowledges from now on
  const auto data = Bytes(400, 5);
  ReceiveIntoRing(data, kRing);
  // The driver consumes 200 bytes (the device refills the ring behind it),
  // the reader got 50 of them, and the driver dies; its RX ring is
  // overwritten by a wild write.
  ASSERT_EQ(ConsumeRx(*dev_, 200).size(), 200u);
  ASSERT_TRUE(WaitFor([&] { return regs_->rx_tail.load() == data.size(); }));
  dev_->AcknowledgeReceived(50);
  std::memset(dev_->dma() + 1024, 0xEE, kRing);
  dev_->Reset();
  EXPECT_EQ(regs_->rx_total.load(), data.size()) << "positions never go back";
  // The next driver: the ring starts at the acknowledged position.
  Enable();
  EXPECT_EQ(regs_->rx_origin.load(), 50u);
  EXPECT_EQ(dev_->counters().rx_redelivered, data.size() - 50) << "consumed or not, unacknowledged";
  regs_->control = kControlEnable | kControlRxEnable;
  Ring();
  EXPECT_EQ(ConsumeRx(*dev_, data.size() - 50), std::vector<std::byte>(data.begin() + 50, data.end()))
      << "the device's own copy, in order, ahead of the line's bytes";
  const ReceivePositions p = dev_->receive_positions();
  EXPECT_EQ(p.consumed, data.size());
  EXPECT_EQ(p.acked, 50u);
  EXPECT_TRUE(p.enabled);
}

// The receive side's lost runs (issue 20): two resets in a row, the second
// while the bytes kept over the first were being put into the ring again and
// consumed by a driver that died before handing them on.
TEST_F(UartDeviceTest, ResetsInARowWithBytesInFlightLoseNothing) {
  Make();
  dev_->AcknowledgeReceived(0);
  const auto data = Bytes(1000, 3);
  ReceiveIntoRing(data, kRing);
  ASSERT_EQ(ConsumeRx(*dev_, 600).size(), 600u);  // consumed, never acknowledged
  dev_->AcknowledgeReceived(100);
  dev_->Reset();
  dev_->Reset();  // a second fault before any driver enabled the rings
  Enable();
  regs_->control = kControlEnable | kControlRxEnable;
  Ring();
  ASSERT_EQ(ConsumeRx(*dev_, 300).size(), 300u);  // the next driver dies too
  const uint64_t generation = dev_->receive_positions().generation;
  dev_->Reset();
  Enable();
  EXPECT_EQ(regs_->rx_origin.load(), 100u) << "still the acknowledged position";
  EXPECT_GT(dev_->receive_positions().generation, generation) << "each enable is a new generation";
  regs_->control = kControlEnable | kControlRxEnable;
  Ring();
  EXPECT_EQ(ConsumeRx(*dev_, data.size() - 100), std::vector<std::byte>(data.begin() + 100, data.end()));
}

TEST_F(UartDeviceTest, TheLineWaitsWhileTheKeepIsFullUntilTheReaderAcknowledges) {
  Make({.rx_keep_bytes = 300});
  dev_->AcknowledgeReceived(0);
  const auto data = Bytes(1000, 7);
  ReceiveIntoRing(data, kRing);
  (void)ConsumeRx(*dev_, 300);
  usleep(20'000);
  EXPECT_EQ(regs_->rx_total.load(), 300u) << "no more taken than the device can keep";
  EXPECT_EQ(dev_->line().pending_to_device(), data.size() - 300) << "the far end waits";
  dev_->AcknowledgeReceived(250);
  ASSERT_TRUE(WaitFor([&] { return regs_->rx_total.load() == 550; }));
  dev_->AcknowledgeReceived(10'000);  // past what was received: clamped
  EXPECT_EQ(dev_->receive_positions().acked, 550u);
}

TEST_F(UartDeviceTest, WithoutAReaderWhatTheDriverConsumedIsAcknowledged) {
  Make();
  const auto data = Bytes(200, 9);
  ReceiveIntoRing(data, data.size());
  ASSERT_EQ(ConsumeRx(*dev_, 80).size(), 80u);
  dev_->Reset();
  Enable();
  EXPECT_EQ(regs_->rx_origin.load(), 80u) << "the bytes still in the ring come again";
  regs_->control = kControlEnable | kControlRxEnable;
  Ring();
  EXPECT_EQ(ConsumeRx(*dev_, 120), std::vector<std::byte>(data.begin() + 80, data.end()));
}

TEST_F(UartDeviceTest, ResetFlushesTheTxFifoRestoresPowerOnAndKeepsTxTotal) {
  Make({.line_capacity = 16});
  Enable();
  ASSERT_TRUE(SetLine(1, 8, Parity::kNone, 1));
  dev_->line().set_far_end({.baud = 115200});
  Transmit(Bytes(64));  // the far end holds 16, the rest waits in the TX ring
  ASSERT_TRUE(WaitFor([&] { return regs_->tx_total.load() == 16; }));
  dev_->Reset();
  EXPECT_EQ(dev_->line_config(), LineConfig{});
  EXPECT_EQ(regs_->status.load(), 0u);
  EXPECT_EQ(regs_->control.load(), 0u);
  EXPECT_EQ(regs_->tx_head.load(), 0u);
  EXPECT_EQ(regs_->int_cause.load(), 0u);
  EXPECT_EQ(regs_->tx_total.load(), 16u) << "bytes on the line stay counted";
  EXPECT_EQ(ReceiveAtFarEnd(64).size(), 16u) << "the FIFO's 48 bytes never went out";
  EXPECT_EQ(dev_->counters().resets, 1u);
}

TEST_F(UartDeviceTest, PacedLineTakesAtLeastTheFrameTime) {
  Make({.paced = true});
  Enable();
  dev_->line().set_far_end({.baud = 9600});
  const auto data = Bytes(kRing);  // 256 characters of 10 bits at 9600 baud: 266 ms
  const int64_t start = MonotonicNanos();
  Transmit(data);
  EXPECT_EQ(ReceiveAtFarEnd(data.size()), data);
  EXPECT_GE(MonotonicNanos() - start, 200 * kMs) << "not faster than the line (1 ms burst allowed)";
}

}  // namespace
}  // namespace umbra::hw::uart
