// The datasheet of the Umbra emulated NIC ("umbra,e1000-emu"): register window
// and descriptor formats. A driver programs the device from this header alone.
//
// Memory map of the device region (one memfd, see hw::Resources):
//   [0, 4096)                 NicRegisters (this struct, at registers_offset)
//   [4096, 4096 + dma_size)   DMA pool: descriptor rings and frame buffers.
// Every "offset" below (ring bases, descriptor buffers) is relative to the
// start of the DMA pool, never a pointer.
//
// Programming model (e1000-like):
//   1. Probe: poll `ctrl` until kNicCtrlReset reads 0 after writing it (or rely
//      on the host's Reset()); check `magic`; read the MAC from mac_lo/mac_hi.
//   2. Write configuration registers (MAC, MTU, rx_ctrl, multicast table,
//      ring base/size, interrupt mask set/clear), then set kNicCtrlTxEnable /
//      kNicCtrlRxEnable in `ctrl` and ring the doorbell. Configuration
//      registers take effect when the device handles a doorbell, never before:
//      always ring it after writing them; bump config_seq first and wait for
//      config_ack to match to know they are in effect.
//   3. Transmit: fill the descriptor at tx_tail (buffer offset, length, EOP),
//      advance tx_tail, and ring the doorbell if `device_idle` reads 1 (after
//      the tail store, with a seq_cst fence between them). The device sends
//      descriptors from tx_head up to tx_tail, sets DD in each, advances
//      tx_head and raises kNicIntTxDone.
//   4. Receive: fill RX descriptors with free buffers (offset, capacity) and
//      advance rx_tail; the device writes frames at rx_head, sets DD|EOP and
//      the frame length, advances rx_head and raises kNicIntRx. The ring is
//      empty for the device when rx_head == rx_tail, so keep one slot unused.
//   5. Interrupts: wait on the interrupt eventfd; read-and-acknowledge causes
//      with `int_cause.exchange(0)` (or clear bits with fetch_and), THEN
//      clean the rings, then wait again. The device does not signal again
//      while an enabled cause is pending, so acknowledging before looking at
//      the rings is what guarantees no completion is missed.
//
// Every value the driver writes is copied out once and validated; a bad one is
// refused (the device keeps its previous value or marks the descriptor with
// kNicDescStatusError) and counted as a fault on the host side.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace umbra::hw::nic {

inline constexpr uint32_t kNicMagic = 0x43494E55;  // "UNIC" little-endian
inline constexpr uint32_t kNicVersion = 1;

inline constexpr uint64_t kNicRegisterWindowSize = 4096;
inline constexpr uint32_t kNicMulticastSlots = 64;
inline constexpr uint32_t kNicMaxRingSize = 4096;  // descriptors per ring
inline constexpr uint32_t kNicMinMtu = 68;
inline constexpr uint32_t kNicMaxMtu = 9000;
inline constexpr uint32_t kNicDefaultMtu = 1500;
inline constexpr uint32_t kNicEthHeaderSize = 14;  // dst, src, ethertype; no FCS
// A frame's length may not exceed mtu + kNicEthHeaderSize (no VLAN tags).
inline constexpr uint32_t kNicMaxFrameSize = kNicMaxMtu + kNicEthHeaderSize;
inline constexpr uint64_t kNicDescriptorAlign = 16;  // ring base alignment

// ctrl (driver writes; device clears kNicCtrlReset when the reset is done).
inline constexpr uint32_t kNicCtrlReset = 1u << 0;     // self-clearing software reset
inline constexpr uint32_t kNicCtrlTxEnable = 1u << 1;  // transmit DMA on
inline constexpr uint32_t kNicCtrlRxEnable = 1u << 2;  // receive DMA on
inline constexpr uint32_t kNicCtrlKnownBits = kNicCtrlReset | kNicCtrlTxEnable | kNicCtrlRxEnable;

// status (device writes).
inline constexpr uint32_t kNicStatusLinkUp = 1u << 0;
inline constexpr uint32_t kNicStatusTxEnabled = 1u << 1;  // the latched enable bits
inline constexpr uint32_t kNicStatusRxEnabled = 1u << 2;
inline constexpr uint32_t kNicStatusSpeedShift = 8;  // bits 8..11: NicSpeed
inline constexpr uint32_t kNicStatusSpeedMask = 0xFu << kNicStatusSpeedShift;

enum class NicSpeed : uint32_t { k10Mbps = 0, k100Mbps = 1, k1Gbps = 2, k10Gbps = 3 };

// rx_ctrl (driver writes): which frames the receive filter accepts.
inline constexpr uint32_t kNicRxUnicast = 1u << 0;               // frames to our MAC
inline constexpr uint32_t kNicRxPromiscuous = 1u << 1;           // every frame
inline constexpr uint32_t kNicRxMulticastPromiscuous = 1u << 2;  // every multicast frame
inline constexpr uint32_t kNicRxBroadcast = 1u << 3;             // ff:ff:ff:ff:ff:ff
inline constexpr uint32_t kNicRxKnownBits =
    kNicRxUnicast | kNicRxPromiscuous | kNicRxMulticastPromiscuous | kNicRxBroadcast;

// Interrupt causes (int_cause, int_mask, int_mask_set, int_mask_clear).
inline constexpr uint32_t kNicIntTxDone = 1u << 0;      // TX descriptors completed
inline constexpr uint32_t kNicIntRx = 1u << 1;          // frames written to the RX ring
inline constexpr uint32_t kNicIntLinkChange = 1u << 2;  // status.link changed
inline constexpr uint32_t kNicIntRxMissed = 1u << 3;    // a frame found no RX descriptor
inline constexpr uint32_t kNicIntKnownBits = kNicIntTxDone | kNicIntRx | kNicIntLinkChange | kNicIntRxMissed;

// Hardware statistics counters: indices into NicRegisters::stats. The device
// keeps them across driver crashes and clears them only on reset.
enum NicStat : uint32_t {
  kNicStatTxFrames = 0,
  kNicStatTxOctets,
  kNicStatTxErrors,  // descriptors completed with kNicDescStatusError, frames dropped on link down
  kNicStatRxFrames,
  kNicStatRxOctets,
  kNicStatRxMissed,    // no RX descriptor, or the receiver was off
  kNicStatRxFiltered,  // refused by the address filter
  kNicStatRxErrors,    // too short, longer than mtu, bigger than the buffer, bad descriptor
  kNicStatCount,
};

// The register window. All fields are naturally aligned lock-free atomics so a
// driver in another process can use them directly. "driver" / "device" says
// who writes a field; the other side only reads it.
struct NicRegisters {
  // Identification (device, read-only).
  std::atomic<uint32_t> magic;     // kNicMagic
  std::atomic<uint32_t> version;   // kNicVersion
  std::atomic<uint64_t> dma_size;  // bytes in the DMA pool

  // Control and status.
  std::atomic<uint32_t> ctrl;    // driver: kNicCtrl*; unknown bits are refused
  std::atomic<uint32_t> status;  // device: kNicStatus*
  // Configuration handshake. The driver writes any new value to config_seq
  // before ringing the doorbell; the device copies the value it saw into
  // config_ack after it has applied (or refused) every configuration
  // register. config_ack == config_seq: the device runs what was written.
  std::atomic<uint32_t> config_seq;  // driver
  std::atomic<uint32_t> config_ack;  // device

  // Station address. Power-on value: the permanent address (perm_mac_*).
  // mac_lo holds bytes 0..3 (byte 0 in bits 0..7), mac_hi bytes 4..5 in bits
  // 0..15. Driver-writable; a multicast or all-zero address is refused.
  std::atomic<uint32_t> mac_lo;
  std::atomic<uint32_t> mac_hi;
  std::atomic<uint32_t> perm_mac_lo;  // device, read-only
  std::atomic<uint32_t> perm_mac_hi;

  // Receive configuration (driver).
  std::atomic<uint32_t> mtu;      // kNicMinMtu..kNicMaxMtu, power-on kNicDefaultMtu
  std::atomic<uint32_t> rx_ctrl;  // kNicRx*, power-on 0 (receive nothing)
  // Exact multicast filter: the first mc_count entries of mc_table, each a
  // multicast MAC in bits 0..47 (byte 0 in bits 0..7). A count above
  // kNicMulticastSlots or a non-multicast entry refuses the whole table.
  std::atomic<uint32_t> mc_count;
  // Doorbell suppression hint (device): 1 while the hardware thread sleeps and
  // needs the doorbell to notice a tail update; 0 while it polls the rings.
  std::atomic<uint32_t> device_idle;
  std::atomic<uint64_t> mc_table[kNicMulticastSlots];

  // Interrupts. int_mask (device) is the effective mask: 1 = cause enabled.
  // The driver enables causes by OR-ing bits into int_mask_set and disables
  // them by OR-ing into int_mask_clear; the device applies and zeroes both on
  // the doorbell. int_cause: the device ORs cause bits in and signals the
  // interrupt eventfd when an enabled cause becomes pending while no enabled
  // cause was pending; the driver acknowledges by clearing bits.
  std::atomic<uint32_t> int_cause;
  std::atomic<uint32_t> int_mask;
  std::atomic<uint32_t> int_mask_set;
  std::atomic<uint32_t> int_mask_clear;

  // Transmit ring (base/size/tail: driver; head: device). base is a DMA-pool
  // offset aligned to kNicDescriptorAlign; size is 2..kNicMaxRingSize
  // descriptors. Base and size are latched when kNicCtrlTxEnable goes 0→1 and
  // head restarts at 0 then.
  std::atomic<uint64_t> tx_ring_base;
  std::atomic<uint32_t> tx_ring_size;
  std::atomic<uint32_t> tx_head;
  std::atomic<uint32_t> tx_tail;
  std::atomic<uint32_t> reserved2;

  // Receive ring, same rules with kNicCtrlRxEnable.
  std::atomic<uint64_t> rx_ring_base;
  std::atomic<uint32_t> rx_ring_size;
  std::atomic<uint32_t> rx_head;
  std::atomic<uint32_t> rx_tail;
  std::atomic<uint32_t> reserved3;

  // Statistics (device), indexed by NicStat.
  std::atomic<uint64_t> stats[kNicStatCount];
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == 4 && sizeof(std::atomic<uint64_t>) == 8);
static_assert(std::is_standard_layout_v<NicRegisters>);
static_assert(offsetof(NicRegisters, ctrl) == 0x10);
static_assert(offsetof(NicRegisters, mac_lo) == 0x20);
static_assert(offsetof(NicRegisters, mtu) == 0x30);
static_assert(offsetof(NicRegisters, mc_table) == 0x40);
static_assert(offsetof(NicRegisters, int_cause) == 0x240);
static_assert(offsetof(NicRegisters, tx_ring_base) == 0x250);
static_assert(offsetof(NicRegisters, rx_ring_base) == 0x268);
static_assert(offsetof(NicRegisters, stats) == 0x280);
static_assert(sizeof(NicRegisters) == 0x2C0);
static_assert(sizeof(NicRegisters) <= kNicRegisterWindowSize);

// A TX or RX descriptor: 16 bytes in a ring in the DMA pool.
//   buffer: DMA-pool offset of the frame buffer (driver).
//   meta:   bits 0..15 length, 16..23 command, 24..31 status.
//     TX: the driver writes length = frame length, cmd = kNicDescCmdEop,
//         status = 0; the device writes status DD (| ERR if refused).
//     RX: the driver writes length = buffer capacity, status = 0; the device
//         writes length = frame length and status DD|EOP (| ERR if refused).
struct NicDescriptor {
  std::atomic<uint64_t> buffer;
  std::atomic<uint64_t> meta;
};
static_assert(sizeof(NicDescriptor) == 16);
static_assert(std::is_standard_layout_v<NicDescriptor>);

inline constexpr uint8_t kNicDescCmdEop = 1u << 0;  // last (and only) descriptor of a frame
inline constexpr uint8_t kNicDescCmdKnownBits = kNicDescCmdEop;
inline constexpr uint8_t kNicDescStatusDone = 1u << 0;   // DD: the device is finished with it
inline constexpr uint8_t kNicDescStatusEop = 1u << 1;    // RX: the frame ends here
inline constexpr uint8_t kNicDescStatusError = 1u << 2;  // refused; see the host's faults

constexpr uint64_t NicDescMeta(uint32_t length, uint8_t cmd, uint8_t status) {
  return (uint64_t{length} & 0xFFFF) | (uint64_t{cmd} << 16) | (uint64_t{status} << 24);
}
constexpr uint32_t NicDescLength(uint64_t meta) { return static_cast<uint32_t>(meta & 0xFFFF); }
constexpr uint8_t NicDescCmd(uint64_t meta) { return static_cast<uint8_t>(meta >> 16); }
constexpr uint8_t NicDescStatus(uint64_t meta) { return static_cast<uint8_t>(meta >> 24); }

// MAC helpers: byte 0 is the first byte on the wire.
constexpr uint64_t NicMacToU64(const uint8_t (&mac)[6]) {
  uint64_t v = 0;
  for (int i = 5; i >= 0; --i) v = (v << 8) | mac[i];
  return v;
}
constexpr uint32_t NicMacLo(uint64_t mac) { return static_cast<uint32_t>(mac); }
constexpr uint32_t NicMacHi(uint64_t mac) { return static_cast<uint32_t>((mac >> 32) & 0xFFFF); }
constexpr uint64_t NicMacFromRegs(uint32_t lo, uint32_t hi) { return uint64_t{lo} | (uint64_t{hi & 0xFFFF} << 32); }
constexpr bool NicMacIsMulticast(uint64_t mac) { return (mac & 1) != 0; }

}  // namespace umbra::hw::nic
