// The sample uart driver: a short driver for the emulated 16550-like UART
// (runtime/hw/uart/uart_regs.h), speaking the uart class protocol
// (uart_protocol.h).
//
// Lifecycle: Probe checks the datasheet identity, lays the TX and RX rings
// out at the start of the DMA pool, enables interrupts and the rings, and
// starts a fiber that ends idle reads (the read timeout). Writes are copied
// from the host's buffer pool into the TX ring as space frees up and complete
// once the device moved their last byte onto the line; reads are filled from
// the RX ring on the RX interrupt, each completion carrying the stream
// position of its first byte (the device's rx_origin plus what this driver
// consumed). Calls set the line, enable the receiver and report the device's
// tx_total.
//
//   sdk::InProcessRunner run(std::make_unique<UartDriver>(), {.hw = view});
//   UMBRA_TRY(run.Probe());
//
// Failpoints (docs/fault-injection.md), besides the SDK's sdk.*:
//   uart.probe      error: the probe fails
//   uart.tx         (each write request) error: completes with kIo;
//                   drop_completion: never completes; bad_register: a tx_tail
//                   past the ring (the device refuses it, TX stalls);
//                   wrong_length: completes claiming more than was written
//   uart.rx         (each RX service) drop_completion: leaves bytes in the
//                   ring; wrong_length: a read longer than its buffer;
//                   bad_register: an rx_head past rx_tail
//   uart.set_line   error: kIo; bad_register: divisor 0 (the device refuses)
//   uart.interrupt  drop_completion: a lost interrupt
// Executed actions (segfault, abort, hang ...) work at every site.
//
// Settings: "read_timeout_ms" (default 100): an empty read completes with
// length 0 after this long; 0 turns the timeout (and its fiber) off.
//
// Thread safety: single-threaded, as every driver (the SDK's loop and fibers).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "drivers/sdk/driver.h"
#include "protocols/uart/uart_protocol.h"
#include "runtime/hw/uart/uart_regs.h"

namespace umbra::drivers::uart {

inline constexpr std::string_view kUartSites[] = {"uart.probe", "uart.tx", "uart.rx", "uart.set_line",
                                                  "uart.interrupt"};

class UartDriver : public sdk::Driver {
 public:
  static constexpr uint32_t kRingSize = 4096;

  std::string_view name() const override { return "uart"; }
  std::string_view version() const override { return "1.0"; }

  Result<void> Probe(sdk::Context& ctx) override;
  void Stop(sdk::Context& ctx) override;
  void OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) override;
  Result<std::string> OnCall(sdk::Context& ctx, uint32_t method, std::string_view body) override;
  void OnInterrupt(sdk::Context& ctx) override;
  std::map<std::string, uint64_t> Counters() const override;

 private:
  struct PendingWrite {
    ipc::Descriptor request;
    uint32_t copied = 0;  // bytes already in the TX ring
    uint32_t end = 0;     // TX ring index after its last byte (once fully copied)
  };
  struct PendingRead {
    ipc::Descriptor request;
    int64_t posted_ns = 0;
  };

  Result<void> SetLine(sdk::Context& ctx, const LineSettings& s);
  void ServiceTx(sdk::Context& ctx);
  void ServiceRx(sdk::Context& ctx);
  void ExpireReads(sdk::Context& ctx);
  void Fail(sdk::Context& ctx, const ipc::Descriptor& req, Errc code);

  hw::uart::UartRegisters* regs_ = nullptr;  // the device's register window (mapped by the SDK)
  std::byte* tx_ring_ = nullptr;             // in the device's DMA pool
  std::byte* rx_ring_ = nullptr;
  uint32_t tx_tail_ = 0;  // our copy of what we published
  uint32_t rx_head_ = 0;
  uint64_t rx_position_ = 0;  // stream position of the byte at rx_head_ (rx_origin at probe)
  int64_t read_timeout_ns_ = 100'000'000;
  std::deque<PendingWrite> writes_;  // in submission order
  std::deque<PendingRead> reads_;
  uint64_t bytes_written_ = 0, bytes_read_ = 0, interrupts_ = 0;
};

}  // namespace umbra::drivers::uart
