// Line: the far end of the emulated serial cable — what a test or an
// application on "the other machine" talks to.
//
// Two bounded byte queues, one per direction. The far end Send()s bytes
// toward the UART (blocking while its queue is full) and Receive()s what the
// UART transmitted (blocking until bytes arrive or the timeout passes). The
// far end has its own line settings (set_far_end): a byte sent by a UART
// whose settings differ is garbled — dropped and counted in
// framing_errors() — so a wrong configuration replay is visible.
//
//   auto uart = UMBRA_TRY(UartDevice::Create({}));
//   Line& line = uart->line();
//   line.set_far_end({.baud = 115200, .parity = Parity::kEven});
//   line.Send(bytes, 1'000'000'000);
//   size_t n = line.Receive(out, 1'000'000'000);
//
// Thread safety: every method may be called from any thread (one mutex). The
// Device* methods are the UART's side, called from its hardware thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "runtime/hw/uart/uart_regs.h"

namespace umbra::hw::uart {

class Line {
 public:
  // `capacity`: bytes each direction holds before its sender waits.
  explicit Line(size_t capacity) : capacity_(capacity) {}

  // ---- the far end ----
  // Queues bytes toward the UART; blocks while the queue is full. Returns how
  // many were queued (fewer than asked only when `timeout_ns` passed).
  size_t Send(std::span<const std::byte> bytes, int64_t timeout_ns);
  // Takes up to out.size() bytes the UART transmitted; blocks until at least
  // one arrives or `timeout_ns` passes (then returns 0).
  size_t Receive(std::span<std::byte> out, int64_t timeout_ns);
  void set_far_end(const LineConfig& config);
  LineConfig far_end() const;
  // Bytes the UART sent with settings the far end does not share (dropped).
  uint64_t framing_errors() const;
  // Bytes delivered to the far end since creation.
  uint64_t received_total() const;
  // Bytes queued toward the UART that it has not taken yet.
  size_t pending_to_device() const;

  // ---- the UART's side (hardware thread) ----
  // Room for bytes the UART transmits (0: the far end is not reading: CTS off).
  size_t DeviceSpace() const;
  // One byte onto the line with the UART's current settings.
  void DeviceTransmit(std::byte b, const LineConfig& uart_config);
  // Takes up to out.size() bytes toward the UART. A byte sent while the UART's
  // settings differ from the far end's comes back as a framing error: it is
  // not copied and `*framing_errors` is incremented.
  size_t DeviceTake(std::span<std::byte> out, const LineConfig& uart_config, uint64_t* framing_errors);
  // Called (without the line's mutex) whenever the far end sends or reads:
  // the UART's hardware thread may have work.
  void set_wake(std::function<void()> wake);

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::byte> to_device_;    // guarded by mu_
  std::deque<std::byte> from_device_;  // guarded by mu_
  LineConfig far_end_;                 // guarded by mu_
  uint64_t framing_errors_ = 0;        // guarded by mu_
  uint64_t received_total_ = 0;        // guarded by mu_
  std::function<void()> wake_;         // set once before the UART starts
};

}  // namespace umbra::hw::uart
