// Small application loops of `umbra demo`: a byte stream through a serial
// port, small frames through a NIC. Thread safety: each runs on the calling
// thread, the one application thread of its device.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace umbra::hw::uart {
class UartDevice;
}
namespace umbra::net {
class NetShadow;
}
namespace umbra::shadows::uart {
class UartShadow;
}

namespace umbra::cli::demo {

// Writes `data` through the port while a reader takes it off the line;
// returns what went wrong ("" when every byte arrived in order).
std::string StreamOnce(shadows::uart::UartShadow& port, hw::uart::UartDevice& dev, const std::vector<std::byte>& data);

// A 64-byte frame to `peer_mac` every millisecond until `stop` or the device failed.
void SendUntilFailed(net::NetShadow& nic, uint64_t peer_mac, const std::atomic<bool>& stop);

}  // namespace umbra::cli::demo
