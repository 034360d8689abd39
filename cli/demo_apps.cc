// Small application loops of `umbra demo` (cli/demo.cc).
#include "cli/demo_apps.h"

#include <unistd.h>

#include <array>
#include <thread>

#include "base/clock.h"
#include "runtime/hw/uart/uart_device.h"
#include "shadows/net/net_shadow.h"
#include "shadows/uart/uart_shadow.h"

namespace umbra::cli::demo {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

std::string StreamOnce(shadows::uart::UartShadow& port, hw::uart::UartDevice& dev, const std::vector<std::byte>& data) {
  std::vector<std::byte> got;
  std::thread reader([&] {
    std::vector<std::byte> buf(4096);
    const int64_t deadline = MonotonicNanos() + 60 * kSec;
    while (got.size() < data.size() && MonotonicNanos() < deadline) {
      size_t n = dev.line().Receive(buf, 100 * kMs);
      got.insert(got.end(), buf.begin(), buf.begin() + n);
    }
  });
  size_t written = 0;
  std::string error;
  while (written < data.size()) {
    auto n = port.Write(std::span(data).subspan(written), 30 * kSec);
    if (!n) {
      error = "writer saw an error: " + n.error().ToString();
      break;
    }
    written += *n;
  }
  reader.join();
  if (!error.empty()) return error;
  if (got != data)
    return std::to_string(got.size()) + " of " + std::to_string(data.size()) + " bytes arrived, DIFFERENT";
  return "";
}
void SendUntilFailed(net::NetShadow& nic, uint64_t peer_mac, const std::atomic<bool>& stop) {
  std::array<std::byte, 64> frame{};
  for (int i = 0; i < 6; ++i) {
    frame[i] = std::byte(peer_mac >> (8 * i));
    frame[6 + i] = std::byte(nic.Mac() >> (8 * i));
  }
  frame[12] = std::byte{0x88};
  frame[13] = std::byte{0xB6};
  const net::FrameView view(frame);
  while (!stop) {
    auto sent = nic.Transmit({&view, 1});
    if (!sent && sent.error().code == Errc::kDeviceFailed) return;
    usleep(1000);
  }
}
}  // namespace umbra::cli::demo
