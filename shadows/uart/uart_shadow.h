// UartShadow: the uart class's shadow, a Port that hides driver crashes.
//
// Policies per request type while the driver is down or restarting:
//   SetLine   logged in the configuration log (one entry, the latest value)
//             and replayed into every new driver, before Open;
//   Open      logged and replayed after the line settings;
//   Write     queued (bounded by tx_queue_bytes: writers block, back-pressure)
//             and sent in order once the driver is back;
//   in flight writes interrupted by the crash: after the new driver probed,
//             the shadow asks it how many bytes the device ever put on the
//             line (kGetTxTotal, which survives resets) and resends exactly
//             the bytes that did not get out — none lost, none twice;
//   Read      answered from the shadow's receive queue; receive buffers are
//             reposted to the new driver. Receiving is exact when the shadow
//             is connected to its UART (ConnectDevice): each read completion
//             carries the stream position of its first byte; the shadow
//             acknowledges to the device every position it queued, and the
//             device keeps every byte after that and puts them into the ring
//             again after a reset, so a new driver's first read may repeat
//             positions (dropped) but never skip one. A read whose bytes the
//             driver did not take from the ring (a wrong length), that
//             overlaps the previous one, or that skips positions (a lost
//             completion) is a protocol violation: the driver is restarted
//             and the bytes come again. A read is queued only once it is
//             confirmed: the next read starts where it ends, or the driver's
//             consumed position (the device's rx_head) is its end, after
//             a quiet pass of the pump (docs/hw-uart.md);
//   line()    answered from the log.
// When the restart budget is spent every call fails with kDeviceFailed.
//
// One "pump" thread owns the DriverHost's data path (one client thread, as
// DriverHost requires): it moves queued bytes into write requests, keeps
// reads posted, and applies completions. Applications never touch the data
// path.
//
//   auto shadow = UMBRA_TRY(UartShadow::Create(host, {}));
//   shadow->ConnectDevice(LinkTo(uart));  // shadows/uart/device_link.h
//   shadow->Start();
//   UMBRA_TRY(shadow->WaitUntilPassive(1s));
//   UMBRA_TRY(shadow->Open());
//   UMBRA_TRY(shadow->Write(bytes, 1s));
//
// Thread safety: the Port methods from any thread; see Shadow for the rest.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/hw/uart/uart_regs.h"
#include "shadows/registry.h"
#include "shadows/shadow.h"
#include "shadows/uart/port.h"

namespace umbra::shadows::uart {

// What the receive side saw, since creation.
struct UartReceiveStats {
  uint64_t bytes = 0;       // bytes queued for Read, each stream position once
  uint64_t duplicates = 0;  // bytes dropped: their position had been received already
  // Positions skipped and never received (only without ConnectDevice: the
  // device then keeps only what its driver did not consume).
  uint64_t lost = 0;
  // Read completions refused because they claimed bytes the driver never
  // took from the ring, or overlapped the read before (a wrong length; the
  // driver was restarted).
  uint64_t impossible = 0;
  // Read completions refused because they skipped bytes an earlier read
  // took from the ring (the driver lost that read's completion; restarted).
  uint64_t gaps = 0;
  // Read completions whose driver's rings were reset before the shadow saw
  // them: not taken, the device puts their bytes into the ring again.
  uint64_t stale = 0;
};

// The UART's receive positions, read and acknowledged by the host beside the
// driver (UartDevice::receive_positions and AcknowledgeReceived).
struct UartDeviceLink {
  std::function<hw::uart::ReceivePositions()> positions;
  std::function<void(uint64_t)> acknowledge;
};

struct UartShadowOptions {
  size_t tx_queue_bytes = 64 << 10;  // bytes written and not yet on the line
  size_t rx_queue_bytes = 64 << 10;  // bytes received and not yet read
  // Write requests outstanding at the driver. Crashes are handled exactly
  // once at any depth (a driver transmits and completes in order), but a
  // driver that FAILS a write while later ones go out leaves a hole in the
  // stream that nothing can repair; with 1 nothing goes out after a failed
  // write, at the cost of a round trip per buffer (a serial line is slower
  // than that anyway).
  size_t writes_in_flight = 1;
  size_t reads_posted = 4;  // read buffers outstanding at the driver
};

class UartShadow final : public Shadow, public Port {
 public:
  static Result<std::unique_ptr<UartShadow>> Create(runtime::Host& host, UartShadowOptions options,
                                                    RecoveryMode mode = RecoveryMode::kShadow);
  ~UartShadow() override;

  // Port.
  Result<void> Open() override;
  Result<void> SetLine(const LineSettings& settings) override;
  LineSettings line() const override;
  Result<size_t> Write(std::span<const std::byte> bytes, int64_t timeout_ns) override;
  Result<size_t> Read(std::span<std::byte> out, int64_t timeout_ns) override;
  Result<void> Drain(int64_t timeout_ns) override;

  // Connects the shadow to its UART's receive positions (before Open; the
  // device must outlive the shadow). The shadow starts at the device's
  // acknowledged position and acknowledges from then on. Without it the
  // class cannot tell a wrong length that fits the read buffer from a right
  // one, nor recover bytes a dead driver consumed (they count as lost).
  void ConnectDevice(UartDeviceLink link);
  // The settings the current driver instance reports from the device (a real call).
  Result<LineSettings> DriverLine();
  // Bytes confirmed on the line since creation.
  uint64_t bytes_on_line() const;
  UartReceiveStats receive_stats() const;

 private:
  struct InFlight {
    uint32_t buffer;
    uint32_t length;
    int64_t submitted_ns = 0;  // set only while recording
    uint64_t generation = 0;   // reads: the device's ring generation when posted
  };
  // A read completion checked but not yet confirmed (its length).
  struct HeldRead {
    uint64_t position;
    uint64_t generation;
    std::vector<std::byte> bytes;
    uint64_t end() const { return position + bytes.size(); }
  };
  // The pump's requests in the trace (docs/recorder.md): a write per buffer
  // handed to the driver, a read per buffer that came back with bytes.
  void RecordSubmitted(InFlight& f, bool write);
  void RecordCompleted(const InFlight& f, const runtime::Completion& c, bool write);

  UartShadow(runtime::Host& host, Options base, UartShadowOptions options)
      : Shadow(host, std::move(base)), options_(options) {}

  // Shadow hooks.
  void OnDriverLost() override;
  Result<void> ResubmitRequests() override;
  void OnFailed(const std::string& why) override;

  Result<void> CheckUsable() const;
  // The pump thread and its steps (pump thread only, except where noted).
  void PumpLoop();
  void HandleCompletion(const runtime::Completion& c);
  void HandleWrite(const InFlight& f, const runtime::Completion& c);
  void HandleRead(const InFlight& f, const runtime::Completion& c);
  // Under io_mu_, connected: why a read at `position` of `length` bytes from
  // the rings of `generation` cannot be right ("" when it can), given the
  // driver's consumed position.
  std::string CheckRead(uint64_t position, uint32_t length, uint64_t generation, uint64_t consumed);
  // Under io_mu_, connected: queues the held read once confirmed (its end is
  // the driver's consumed position); drops it once its rings were reset.
  void ConfirmHeld();
  // Under io_mu_: queues the held read and forgets it.
  void QueueHeld();
  // Under io_mu_: queues the bytes of a read completion at stream `position`
  // that are not already queued or read, and acknowledges them to the device.
  void AcceptReceived(uint64_t position, const std::byte* bytes, size_t length);
  // A completion that showed a driver bug. Under io_mu_: no more submissions
  // until the next driver's resync; true the first time (the caller then
  // kills the driver, after unlocking).
  bool PoisonLocked();
  void KillDriver(const std::string& why);
  void ApplyResync();
  void SubmitWrites();
  void PostReads();

  const UartShadowOptions options_;

  mutable std::mutex io_mu_;  // everything below up to the pump's own state
  std::condition_variable io_cv_;
  bool open_ = false;
  bool pump_stop_ = false;
  std::deque<std::byte> tx_;              // written, not yet confirmed on the line; tx_[0] is stream byte confirmed_
  uint64_t confirmed_ = 0;                // stream bytes known to be on the line
  uint64_t submitted_ = 0;                // bytes of tx_'s front in write requests not yet completed
  bool need_resync_ = true;               // no writes until the new driver's tx_total is known
  bool poisoned_ = false;                 // a write failed oddly: completions no longer trusted until resync
  std::optional<uint64_t> resync_total_;  // handed from the worker to the pump
  std::optional<Error> resync_error_;
  uint64_t resyncs_ = 0;     // bumped by the pump each time one was applied
  uint64_t base_total_ = 0;  // the device's tx_total when base_stream_ was confirmed
  uint64_t base_stream_ = 0;
  uint64_t sent_since_base_ = 0;           // stream bytes handed to drivers since the base
  std::deque<std::byte> rx_;               // received, not yet read
  std::optional<uint64_t> rx_next_;        // stream position of the next byte to queue (from the first read)
  std::optional<uint64_t> rx_generation_;  // the ring generation of the last read queued
  std::optional<HeldRead> held_;           // the last read checked, waiting for confirmation
  UartDeviceLink link_;                    // empty: not connected
  UartReceiveStats rx_stats_;

  // Pump-thread state (no lock).
  std::deque<InFlight> writes_;
  std::deque<InFlight> reads_;

  std::thread pump_;  // owns the data path; started by Open, joined in the destructor
};

// The settings the factory takes: "tx_queue_bytes", "rx_queue_bytes".
const SettingsSchema<UartShadowOptions>& UartSettings();
// The registry's factory.
Result<std::unique_ptr<Shadow>> CreateUartShadow(runtime::Host& host, const ShadowSettings& settings,
                                                 RecoveryMode mode);

}  // namespace umbra::shadows::uart
