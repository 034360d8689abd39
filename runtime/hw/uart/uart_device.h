// UartDevice: the emulated serial port ("umbra,uart-emu"), a 16550-like UART
// whose TX and RX FIFOs are byte rings in its DMA pool, wired to a Line whose
// far end a test or an application drives.
//
// The driver programs it through the datasheet in uart_regs.h alone; the host
// creates it, hands resources() to the driver, and reads the settings in
// effect (line_config()) to check a recovery replayed them.
//
//   auto uart = UMBRA_TRY(UartDevice::Create({.name = "ttyS0"}));
//   uart->Start();
//   host_options.hw = uart.get();       // the DriverHost hands it to the driver
//   uart->line().Receive(out, timeout); // what the driver transmitted
//   ...                                 // the driver dies
//   uart->AcknowledgeReceived(pos);     // the host's reader has every byte before pos
//   uart->Reset();                      // TX FIFO flushed, RX kept from the ack, 9600 8N1
//
// Semantics: with `paced`, the transmitter moves one character per frame time
// (FrameBits / baud), bursting at most 1 ms of characters after an idle
// spell; without it, as fast as the far end reads. The receiver takes bytes
// from the line only while RX is enabled and the RX ring has room, so bytes
// the far end sends during a driver restart wait on the line. The device
// keeps every received byte after the acknowledged read position, which the
// host's reader (the shadow) moves with AcknowledgeReceived, and every enable
// puts them into the ring again from there, with their stream positions
// (uart_regs.h, "Receive positions"): a driver that dies or hangs with
// received bytes in the ring, or with bytes it consumed but never handed on,
// loses none of them, however many resets follow each other. Bytes in
// the TX ring that had not gone out are dropped, as on real hardware (the
// shadow resends them, knowing tx_total).
//
// Thread safety: the hardware thread (Start/Stop) moves bytes; Reset and the
// accessors may be called from any thread (they take the state mutex).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "runtime/hw/device.h"
#include "runtime/hw/device_memory.h"
#include "runtime/hw/uart/line.h"
#include "runtime/hw/uart/uart_regs.h"
#include "runtime/ipc/event_fd.h"
#include "runtime/ipc/shared_memory.h"

namespace umbra::hw::uart {

// What was refused.
enum class FaultKind {
  kRingConfig,   // enable with a bad ring offset or size
  kLineConfig,   // a line request with a bad divisor, data bits, parity or stop bits
  kRingPointer,  // tx_tail or rx_head outside the ring's valid window
};

struct UartOptions {
  std::string name = "uart0";       // names the shared region and the hardware thread
  uint64_t dma_size = 64 << 10;     // bytes in the DMA pool
  size_t line_capacity = 64 << 10;  // bytes the line holds each way
  bool paced = false;               // transmit at the baud rate
  // Received bytes kept after the acknowledged position; the receiver takes
  // no more from the line while this many are unacknowledged (flow control).
  size_t rx_keep_bytes = 64 << 10;
};

// Counters since creation (Reset does not clear them).
struct UartCounters {
  uint64_t ring_config_faults = 0;
  uint64_t line_config_faults = 0;
  uint64_t ring_pointer_faults = 0;
  uint64_t interrupts = 0;
  uint64_t resets = 0;
  uint64_t rx_redelivered = 0;  // bytes an enable put into the ring again (received, not acknowledged)
};

class UartDevice final : public Device {
 public:
  static Result<std::unique_ptr<UartDevice>> Create(UartOptions options);
  ~UartDevice() override;
  UartDevice(const UartDevice&) = delete;
  UartDevice& operator=(const UartDevice&) = delete;

  // Device.
  std::string_view compatible() const override { return kCompatible; }
  Resources resources() const override;
  void Start() override;
  void Stop() override;
  void Reset() override;
  uint64_t faults() const override;

  // The far end of the cable.
  Line& line() { return line_; }
  // The line settings in effect (what the registers' active_* say).
  LineConfig line_config() const;
  UartCounters counters() const;
  // The register window and DMA pool, for tests that play a driver.
  UartRegisters* registers() const { return regs_; }
  // The receive positions (uart_regs.h, ReceivePositions).
  ReceivePositions receive_positions();
  // The host's reader has every byte before `position`: the device may drop
  // them. Clamped to rx_total; never moves back. The first call switches the
  // device from "consumed by the driver is acknowledged" to the reader's acks.
  void AcknowledgeReceived(uint64_t position);
  std::byte* dma() const { return mem_.region->data() + kDmaPoolOffset; }

 private:
  UartDevice(UartOptions options, DeviceMemory mem, ipc::EventFd wake);

  void Run();
  // One pass over the registers and rings; returns how long the hardware
  // thread may sleep (-1: until woken). Under mu_.
  int64_t Step();
  void PowerOnRegisters();
  void ApplyControl();
  void ApplyLineRequest();
  int64_t Transmit(int64_t now);
  void Receive();
  // Follows the driver's rx_head into rx_consumed_ (a refused one is ignored).
  void ObserveRxHead();
  // Takes line bytes into rx_kept_ (within rx_keep_bytes) for `room` ring bytes.
  void TakeFromLine(uint64_t room);
  // Drops the kept bytes before both the acknowledged and the ring position.
  void TrimKept();
  void Raise(uint32_t cause);
  bool RingOk(uint64_t offset, uint32_t size) const;

  const UartOptions options_;
  DeviceMemory mem_;     // registers + DMA pool, doorbell, interrupt: handed to every driver
  ipc::EventFd wake_;    // line activity, Stop: wakes the hardware thread
  UartRegisters* regs_;  // points into mem_.region
  Line line_;

  mutable std::mutex mu_;  // the device state below; held by the hardware thread per pass
  bool enabled_ = false;
  bool rx_enabled_ = false;
  uint32_t last_control_ = 0;
  uint64_t tx_offset_ = 0, rx_offset_ = 0;
  uint32_t tx_size_ = 0, rx_size_ = 0;
  uint32_t tx_head_ = 0, rx_tail_ = 0;
  uint32_t bad_tx_tail_ = 0, bad_rx_head_ = 0;  // last refused values, counted once each
  LineConfig line_config_;
  int64_t next_tx_ns_ = 0;  // pacing: when the next character may leave
  // Receive positions (uart_regs.h). The driver can write the DMA ring, so
  // the device keeps its own copy of every unacknowledged byte (rx_kept_)
  // and fills the ring from it. Invariant: rx_kept_from_ <= min(rx_acked_,
  // rx_ring_next_), rx_ring_next_ <= rx_total_, and the byte at position p in
  // [rx_kept_from_, rx_total_) is rx_kept_[p - rx_kept_from_]. All but the
  // ring's and the driver's (rx_ring_next_, rx_consumed_, rx_head_seen_)
  // survive Reset.
  uint64_t rx_total_ = 0;      // bytes taken from the line: the next one's position
  uint64_t rx_acked_ = 0;      // the reader has every byte before this
  bool reader_acks_ = false;   // AcknowledgeReceived was called (else: consumed = acknowledged)
  uint64_t rx_kept_from_ = 0;  // position of rx_kept_[0]
  std::deque<std::byte> rx_kept_;
  uint64_t rx_ring_next_ = 0;   // position of the next byte into the ring
  uint64_t rx_consumed_ = 0;    // position of the byte at the driver's rx_head
  uint32_t rx_head_seen_ = 0;   // the last rx_head accepted
  uint64_t rx_generation_ = 0;  // enables since creation
  UartCounters counters_;

  std::atomic<bool> stop_{false};
  std::thread thread_;  // the hardware thread; joined by Stop
};

}  // namespace umbra::hw::uart
