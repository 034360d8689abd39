// uart::Port: the serial-port class interface applications program against.
//
// A byte stream with line settings. Implemented by UartShadow, which keeps
// the stream whole across driver crashes: settings are replayed, bytes
// written while the driver restarts are queued and sent in order after it,
// and bytes in flight when it died are sent exactly once.
//
//   Port& port = *shadow;
//   UMBRA_TRY(port.Open());
//   UMBRA_TRY(port.SetLine({.baud = 115200, .parity = Parity::kEven}));
//   UMBRA_TRY(port.Write(bytes, 1'000'000'000));
//   size_t n = UMBRA_TRY(port.Read(buffer, 1'000'000'000));
//
// Thread safety: every method may be called from any thread; bytes written
// by one thread go out in the order it wrote them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "protocols/uart/uart_protocol.h"
#include "base/result.h"

namespace umbra::shadows::uart {

using drivers::uart::LineSettings;
using drivers::uart::Parity;

class Port {
 public:
  virtual ~Port() = default;

  // Enables the receiver and starts moving bytes. Writes and reads before
  // Open fail with kInvalidArgument.
  virtual Result<void> Open() = 0;
  // Baud rate (a StandardBaud), parity, data bits (5..8), stop bits (1..2).
  virtual Result<void> SetLine(const LineSettings& settings) = 0;
  // The settings last set (the power-on 9600 8N1 before any).
  virtual LineSettings line() const = 0;
  // Queues bytes for transmission, blocking while the queue is full. Returns
  // how many were queued: all of them, or fewer when `timeout_ns` passed
  // (none: kTimeout). Queued bytes are sent in order, each exactly once.
  virtual Result<size_t> Write(std::span<const std::byte> bytes, int64_t timeout_ns) = 0;
  // Takes received bytes, blocking until at least one arrived (kTimeout when
  // none did within `timeout_ns`).
  virtual Result<size_t> Read(std::span<std::byte> out, int64_t timeout_ns) = 0;
  // Blocks until every queued byte is on the line.
  virtual Result<void> Drain(int64_t timeout_ns) = 0;
};

}  // namespace umbra::shadows::uart
