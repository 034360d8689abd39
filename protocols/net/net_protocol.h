// The network class protocol: what the net shadow and a NIC driver say to each
// other. Shared by drivers/nic (the driver side) and shadows/net (the host
// side); plain structs copied byte for byte, no protobuf.
//
// Data path (runtime::Request / ipc::Descriptor):
//   kTx      offset/length name one frame in the data pool. The driver copies
//            it into its DMA memory and completes the request (status 0,
//            length 0) once the frame is in the TX ring, so the host buffer is
//            free again. A frame the device cannot take completes with
//            kInvalidArgument (too long for the MTU, too short).
//   kRxPost  offset names an empty pool buffer, length its capacity. The
//            driver completes it with one received frame (length = frame
//            length, arg = 0), or with length 0 and arg = kRxExpired when it
//            has held the buffer longer than its "rx_expire_ms" setting (so a
//            quiet network never looks like a hung request: repost it).
//
// Control path (DriverHost::Call, body = one of the structs below):
//   kGetInfo       → NetInfo            permanent and current MAC, MTU, link, counters
//   kSetMac        NetMacBody           station address (unicast, non-zero)
//   kSetMtu        NetMtuBody           kNicMinMtu..kNicMaxMtu
//   kSetRxMode     NetRxModeBody        kNetRxPromiscuous | kNetRxAllMulticast
//   kSetMulticast  NetMulticastBody     exact multicast filter, up to 64 entries
//   kSetUp         NetUpBody            1: open (rings and receiver on), 0: stop
//
//   std::string body = net::Encode(NetMtuBody{.mtu = 9000});
//   host.Call(net::kSetMtu, body, timeout);
//   auto info = net::Decode<NetInfo>(UMBRA_TRY(host.Call(net::kGetInfo, "", timeout)));
//
// Thread safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "protocols/pod_codec.h"

namespace umbra::net {

enum NetOp : uint16_t { kTx = 1, kRxPost = 2 };
enum NetMethod : uint32_t {
  kGetInfo = 1,
  kSetMac = 2,
  kSetMtu = 3,
  kSetRxMode = 4,
  kSetMulticast = 5,
  kSetUp = 6,
};

// kRxPost completion `arg`: the buffer comes back without a frame.
inline constexpr uint64_t kRxExpired = 1;

inline constexpr uint32_t kNetRxPromiscuous = 1u << 0;
inline constexpr uint32_t kNetRxAllMulticast = 1u << 1;
inline constexpr uint32_t kNetRxKnownBits = kNetRxPromiscuous | kNetRxAllMulticast;
inline constexpr uint32_t kNetMaxMulticast = 64;

struct NetMacBody {
  uint64_t mac = 0;  // byte 0 of the address in bits 0..7
};
struct NetMtuBody {
  uint32_t mtu = 0;
};
struct NetRxModeBody {
  uint32_t flags = 0;  // kNetRx*
};
struct NetMulticastBody {
  uint32_t count = 0;
  uint64_t entries[kNetMaxMulticast] = {};
};
struct NetUpBody {
  uint32_t up = 0;
};

// What the driver reports about itself and its device.
struct NetInfo {
  uint64_t permanent_mac = 0;
  uint64_t mac = 0;
  uint32_t mtu = 0;
  uint32_t link_up = 0;
  uint32_t up = 0;
  uint32_t rx_mode = 0;
  uint64_t link_changes = 0;  // link-change interrupts this driver instance saw
  uint64_t tx_frames = 0;     // this instance's own counters
  uint64_t rx_frames = 0;
  uint64_t rx_no_buffer = 0;  // frames that waited for a host buffer
  uint64_t hw_tx_errors = 0;  // the device's counters (cleared by a reset)
  uint64_t hw_rx_missed = 0;
  uint64_t hw_rx_filtered = 0;
  uint64_t hw_rx_errors = 0;
};

// Bodies are the bytes of one of the structs above (protocols/pod_codec.h).
using ::umbra::ipc::Decode;
using ::umbra::ipc::Encode;

}  // namespace umbra::net
