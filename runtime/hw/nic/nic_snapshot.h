// NicSnapshot: the configuration a driver programs into the NIC, as one value
// a test can compare "before the crash" with "after recovery".
//
//   NicSnapshot before = nic->snapshot();
//   ... kill the driver, let the shadow recover ...
//   EXPECT_EQ(nic->snapshot(), before);
//
// Thread safety: a plain value.
#pragma once

#include <array>
#include <cstdint>
#include <ostream>
#include <string>

#include "runtime/hw/nic/nic_regs.h"

namespace umbra::hw::nic {

struct NicSnapshot {
  uint64_t mac = 0;  // NicMacFromRegs layout: byte 0 in bits 0..7
  uint32_t mtu = 0;
  uint32_t rx_ctrl = 0;  // kNicRx* bits, including the promiscuous bit
  uint32_t mc_count = 0;
  // The first mc_count entries; the rest are zero so == compares the filter.
  std::array<uint64_t, kNicMulticastSlots> mc_table{};
  uint32_t int_mask = 0;
  uint32_t ctrl_enables = 0;  // kNicCtrlTxEnable | kNicCtrlRxEnable as latched

  bool promiscuous() const { return (rx_ctrl & kNicRxPromiscuous) != 0; }
  bool operator==(const NicSnapshot&) const = default;

  // "mac=02:00:00:00:00:01 mtu=1500 rx_ctrl=0x9 mc=[...] int_mask=0x3 enables=0x6"
  std::string ToString() const;
};

// Reads the raw register window (what the driver last wrote, before the device
// validated it); Nic::snapshot() gives the values the device actually uses.
NicSnapshot ReadRawSnapshot(const NicRegisters& regs);

// "02:00:00:00:00:01"
std::string FormatMac(uint64_t mac);

// gtest prints a snapshot with this when a comparison fails.
inline void PrintTo(const NicSnapshot& s, std::ostream* os) { *os << s.ToString(); }

}  // namespace umbra::hw::nic
