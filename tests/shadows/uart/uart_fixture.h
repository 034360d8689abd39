// The uart class's test fixture: an emulated UART, a supervisor with real
// driver processes, and a shadow connected to the UART's receive positions;
// helpers to kill and recover, and the far end's check of a byte stream.
#pragma once

#include <unistd.h>

#include <atomic>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "runtime/hw/uart/uart_device.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/uart/device_link.h"
#include "shadows/uart/uart_shadow.h"

namespace umbra::shadows::uart::fixture {

inline constexpr int64_t kMs = 1'000'000;
inline constexpr int64_t kSec = 1'000'000'000;

using hw::uart::LineConfig;

// The stream's byte at position i: not periodic in any small power of two,
// so a lost, repeated or reordered chunk never lines up by accident.
inline std::byte StreamByte(uint64_t i) {
  uint64_t x = i * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return std::byte(static_cast<uint8_t>(x >> 7));
}

// The far end's view of driver settings.
inline LineConfig AsLineConfig(const LineSettings& s) {
  return LineConfig{.baud = s.baud,
                    .parity = static_cast<hw::uart::Parity>(static_cast<uint32_t>(s.parity)),
                    .data_bits = s.data_bits,
                    .stop_bits = s.stop_bits};
}

inline const LineSettings kLine{.baud = 115200, .parity = Parity::kEven, .data_bits = 8, .stop_bits = 1};
inline const LineSettings kOdd7{.baud = 57600, .parity = Parity::kOdd, .data_bits = 7, .stop_bits = 2};

class UartShadowTest : public ::testing::Test {
 protected:
  runtime::DriverHostOptions Options(const char* binary = UMBRA_UART_DRIVER) {
    runtime::DriverHostOptions o;
    o.device_name = "ttyS0";
    o.device_class = "uart";
    o.compatible = hw::uart::kCompatible;
    o.driver_binary = binary;
    o.heartbeat_period_ns = 20 * kMs;
    o.data = {.ring_entries = 16, .buffer_size = 256, .buffer_count = 32};
    o.restart.budget = 10000;
    o.restart.backoff_initial_ns = 0;
    return o;
  }

  std::unique_ptr<UartShadow> Make(runtime::DriverHostOptions o, RecoveryMode mode = RecoveryMode::kShadow,
                                   UartShadowOptions so = {}) {
    uart_ = *hw::uart::UartDevice::Create({.name = "ttyS0"});
    uart_->Start();
    o.hw = uart_.get();
    host_ = *sup_.AddDevice(std::move(o));
    auto s = *UartShadow::Create(*host_, so, mode);
    s->ConnectDevice(LinkTo(*uart_));
    s->Start();
    EXPECT_TRUE(s->WaitUntilPassive(10 * kSec).has_value());
    return s;
  }

  // Sets the line on both ends and opens the port.
  void OpenWithLine(UartShadow& s, const LineSettings& line = kLine) {
    ASSERT_TRUE(s.SetLine(line).has_value());
    uart_->line().set_far_end(AsLineConfig(line));
    ASSERT_TRUE(s.Open().has_value());
  }

  void KillAndRecover(UartShadow& s, int sig) {
    const size_t before = s.recoveries().size();
    host_->Kill(sig);
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    while (s.recoveries().size() == before && MonotonicNanos() < deadline) usleep(100);
    ASSERT_GT(s.recoveries().size(), before) << "the fault was noticed";
    ASSERT_TRUE(s.WaitUntilPassive(10 * kSec).has_value());
  }

  // The far end: reads until `expected` bytes arrived (or nothing comes for
  // 3 s) and checks each against the stream; returns the count verified.
  uint64_t VerifyAtFarEnd(const std::atomic<uint64_t>& expected, std::atomic<bool>& writer_done, uint64_t* mismatches) {
    uint64_t got = 0;
    std::vector<std::byte> buf(4096);
    int64_t last = MonotonicNanos();
    while (!writer_done || got < expected) {
      const size_t n = uart_->line().Receive(buf, 100 * kMs);
      for (size_t i = 0; i < n; ++i) {
        if (buf[i] != StreamByte(got)) ++*mismatches;
        ++got;
      }
      if (n > 0) last = MonotonicNanos();
      if (MonotonicNanos() - last > 3 * kSec) break;
    }
    return got;
  }

  std::unique_ptr<hw::uart::UartDevice> uart_;  // outlives the supervisor, whose hosts point at it
  runtime::Supervisor sup_;
  runtime::DriverHost* host_ = nullptr;
};

}  // namespace umbra::shadows::uart::fixture
