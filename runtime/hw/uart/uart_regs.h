// The datasheet of the Umbra emulated serial port ("umbra,uart-emu"), a
// 16550-like UART with its FIFOs as byte rings in DMA memory.
//
// Everything a driver needs to program the UART is in this header, which
// depends only on the standard library. docs/writing-a-shadow-class.md walks
// through it.
//
// The shared region (one memfd) holds the register window at offset 0 (one
// 4 KiB page, a UartRegisters) followed by the DMA pool. The driver places a
// TX ring and an RX ring (byte rings, power-of-two sizes) anywhere in the
// pool; every offset it writes is relative to the start of the pool.
//
// Bring-up (the driver's probe):
//   1. check magic and version; read clock_hz, max_ring_size, dma_size
//   2. write tx_offset/tx_size, rx_offset/rx_size; write int_enable
//   3. write control = kControlEnable; ring the doorbell; wait for
//      status & kStatusEnabled (kStatusConfigError: the rings were refused)
//
// Line settings: write divisor, data_bits, parity, stop_bits, then
// line_request + 1, ring the doorbell, and wait until line_ack equals
// line_request. status & kStatusLineError then says whether the device
// refused them (it keeps the previous settings). The settings in effect are
// readable at active_*. Baud rate = clock_hz / (16 * divisor).
//
// Transmit: copy bytes into tx[tx_tail % tx_size], store tx_tail + n
// (release), ring the doorbell. The device moves bytes onto the line (paced by
// the baud rate when the line is paced), advancing tx_head and tx_total, and
// raises kIntTx when it has moved some. A byte is "on the line" once tx_head
// passed it; tx_total counts bytes on the line since power-on and is NOT
// cleared by a reset, so a new driver can tell how much of an interrupted
// stream got out.
//
// Receive: set kControlRxEnable. The device takes bytes from the line only
// while the RX ring has room (hardware flow control: the far end waits),
// writes rx[rx_tail % rx_size], stores rx_tail + n (release) and raises
// kIntRx. The driver consumes up to rx_tail (acquire) and stores rx_head. A
// byte received with settings the far end does not share is a framing error:
// it is dropped and counted in framing_errors.
//
// Receive positions: every byte taken from the line has a stream position,
// its index in everything received since power-on. rx_total is the position
// of the next byte the device takes from the line (it never goes back);
// rx_origin, set when the rings are enabled, is the position of the first
// byte the device then puts into the ring, at ring index rx_head, so the byte
// at ring index i has position rx_origin + (i - rx_head at enable).
//
// Acknowledged read position: the host's reader (the class's shadow, the one
// party that knows what reached the application) tells the device, beside
// the driver, that it has every byte before position `acked`
// (UartDevice::AcknowledgeReceived; not a register, so no driver can move
// it). The device keeps its own copy of every byte from `acked` on (a driver
// can write the DMA ring) and takes nothing more from the line while
// rx_keep_bytes of them are unacknowledged (flow control: the far end
// waits). A reset or a driver's death loses none of them: every enable starts
// the ring at rx_origin = acked and puts the kept bytes into it again, ahead
// of the line's, whatever the line settings. A reader drops the positions it
// already has. Until a reader acknowledges, a byte counts as acknowledged
// once the driver consumed it (rx_head passed it), as on a plain UART.
//
//        acked          consumed       ring next         rx_total
//   ───────┼───────────────┼───────────────┼─────────────────┼──── positions
//          │ consumed by   │ in the ring,  │ kept, not in the │ on the line
//          │ the driver,   │ not consumed  │ ring yet (after  │ (the far end
//          │ not yet at    │ yet           │ a reset: all of  │ waits)
//          │ the reader    │               │ them from acked) │
//          └──────────── kept by the device (≤ rx_keep_bytes) ┘
//
// Interrupts: the device sets int_cause bits (fetch_or) and signals the
// interrupt eventfd when an enabled bit goes from clear to set; the driver
// clears bits (fetch_and) FIRST, then looks at the rings.
//
// All ring indices are free-running 32-bit counters. A tx_tail more than
// tx_size ahead of tx_head, or an rx_head outside [rx_tail - rx_size,
// rx_tail], is refused (counted as a fault, the ring stalls until fixed).
//
// Thread safety: registers are lock-free atomics shared across processes; the
// ring bytes are plain memory published by the index stores above.
#pragma once

#include <atomic>
#include <cstdint>

namespace umbra::hw::uart {

inline constexpr uint32_t kMagic = 0x54524155;  // "UART" little-endian
inline constexpr uint32_t kVersion = 1;
inline constexpr char kCompatible[] = "umbra,uart-emu";

inline constexpr uint64_t kRegisterWindowSize = 4096;
inline constexpr uint64_t kDmaPoolOffset = kRegisterWindowSize;

// The input clock: divisor 1 is 115200 baud, 12 is 9600.
inline constexpr uint32_t kClockHz = 1'843'200;
inline constexpr uint32_t kMaxDivisor = 0xFFFF;

// Rings: power-of-two sizes in [kMinRingSize, max_ring_size], offsets
// kRingAlignment-aligned, inside the pool, not overlapping.
inline constexpr uint32_t kMinRingSize = 16;
inline constexpr uint32_t kMaxRingSize = 1u << 16;
inline constexpr uint64_t kRingAlignment = 64;

// control bits (driver).
inline constexpr uint32_t kControlEnable = 1u << 0;    // 0→1: accept the ring config; 1→0: stop
inline constexpr uint32_t kControlRxEnable = 1u << 1;  // take bytes from the line

// status bits (device).
inline constexpr uint32_t kStatusEnabled = 1u << 0;      // rings accepted and running
inline constexpr uint32_t kStatusConfigError = 1u << 1;  // the last enable was refused
inline constexpr uint32_t kStatusLineError = 1u << 2;    // the last line request was refused

// int_cause / int_enable bits.
inline constexpr uint32_t kIntTx = 1u << 0;  // bytes left the TX ring
inline constexpr uint32_t kIntRx = 1u << 1;  // bytes arrived in the RX ring

// parity register values.
enum class Parity : uint32_t { kNone = 0, kOdd = 1, kEven = 2 };
inline constexpr uint32_t kMaxParity = 2;

// Power-on (and after-reset) line settings: 9600 baud, 8N1.
inline constexpr uint32_t kPowerOnDivisor = 12;

// Line settings as one value (what both ends of the line must agree on).
struct LineConfig {
  uint32_t baud = kClockHz / (16 * kPowerOnDivisor);
  Parity parity = Parity::kNone;
  uint32_t data_bits = 8;  // 5..8
  uint32_t stop_bits = 1;  // 1..2
  bool operator==(const LineConfig&) const = default;
};

// Bits one character takes on the wire: start + data + parity + stop.
inline constexpr uint32_t FrameBits(const LineConfig& c) {
  return 1 + c.data_bits + (c.parity == Parity::kNone ? 0 : 1) + c.stop_bits;
}

struct UartRegisters {
  // ---- identity, constant (device) ----
  std::atomic<uint32_t> magic;          // 0x00 kMagic
  std::atomic<uint32_t> version;        // 0x04 kVersion
  std::atomic<uint32_t> clock_hz;       // 0x08 kClockHz
  std::atomic<uint32_t> max_ring_size;  // 0x0C largest accepted ring size
  std::atomic<uint64_t> dma_size;       // 0x10 bytes in the DMA pool
  std::atomic<uint32_t> status;         // 0x18 kStatus* bits (device)

  // ---- configuration (driver) ----
  std::atomic<uint32_t> control;    // 0x1C kControl* bits
  std::atomic<uint64_t> tx_offset;  // 0x20 pool offset of the TX ring (read at enable)
  std::atomic<uint64_t> rx_offset;  // 0x28 pool offset of the RX ring (read at enable)
  std::atomic<uint32_t> tx_size;    // 0x30 bytes in the TX ring (read at enable)
  std::atomic<uint32_t> rx_size;    // 0x34 bytes in the RX ring (read at enable)

  // ---- line settings (driver writes, device applies on line_request) ----
  std::atomic<uint32_t> divisor;       // 0x38 1..kMaxDivisor
  std::atomic<uint32_t> data_bits;     // 0x3C 5..8
  std::atomic<uint32_t> parity;        // 0x40 Parity
  std::atomic<uint32_t> stop_bits;     // 0x44 1..2
  std::atomic<uint32_t> line_request;  // 0x48 driver: bump to apply the four above
  std::atomic<uint32_t> line_ack;      // 0x4C device: = line_request once handled

  // ---- ring indices ----
  std::atomic<uint32_t> tx_tail;  // 0x50 driver: bytes produced into the TX ring
  std::atomic<uint32_t> tx_head;  // 0x54 device: bytes moved onto the line
  std::atomic<uint32_t> rx_tail;  // 0x58 device: bytes received into the RX ring
  std::atomic<uint32_t> rx_head;  // 0x5C driver: bytes consumed from the RX ring

  // ---- interrupts ----
  std::atomic<uint32_t> int_enable;  // 0x60 driver: kInt* bits that signal
  std::atomic<uint32_t> int_cause;   // 0x64 device sets, driver clears

  // ---- counters since power-on (device; Reset keeps them) ----
  std::atomic<uint64_t> tx_total;        // 0x68 bytes put on the line
  std::atomic<uint64_t> rx_total;        // 0x70 bytes taken from the line: the next one's position
  std::atomic<uint64_t> framing_errors;  // 0x78 bytes dropped: the ends disagree

  // ---- the line settings in effect (device) ----
  std::atomic<uint32_t> active_divisor;    // 0x80
  std::atomic<uint32_t> active_data_bits;  // 0x84
  std::atomic<uint32_t> active_parity;     // 0x88
  std::atomic<uint32_t> active_stop_bits;  // 0x8C

  // ---- receive positions (device) ----
  std::atomic<uint64_t> rx_origin;  // 0x90 stream position of ring index rx_head at enable (= acked)
};

// The receive positions as the host sees them (UartDevice::receive_positions),
// for the class's shadow: what a read completion may claim, and what survives
// a reset. Not in the register window.
struct ReceivePositions {
  uint64_t total = 0;       // rx_total
  uint64_t acked = 0;       // the reader's acknowledged position
  uint64_t consumed = 0;    // the position of the byte at the driver's rx_head (this enable)
  uint64_t generation = 0;  // ring enables since power-on: a driver instance's rings
  bool enabled = false;     // the rings of `generation` are running
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(UartRegisters) == 0x98);
static_assert(__builtin_offsetof(UartRegisters, control) == 0x1C);
static_assert(__builtin_offsetof(UartRegisters, divisor) == 0x38);
static_assert(__builtin_offsetof(UartRegisters, tx_tail) == 0x50);
static_assert(__builtin_offsetof(UartRegisters, int_enable) == 0x60);
static_assert(__builtin_offsetof(UartRegisters, tx_total) == 0x68);
static_assert(__builtin_offsetof(UartRegisters, active_divisor) == 0x80);
static_assert(__builtin_offsetof(UartRegisters, rx_origin) == 0x90);

}  // namespace umbra::hw::uart
