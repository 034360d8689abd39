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
//             reposted to the new driver. Bytes that reached the UART while
//             the driver was hung or dead, and bytes a dead driver consumed
//             without completing, are received again after the restart (the
//             device holds its RX ring over the reset); each read completion
//             carries the stream position of its first byte, and the shadow
//             keeps the position it has received up to, so a byte delivered
//             twice is dropped and every byte is read once, in order (in
//             both recovery modes: the positions are the device's facts);
//   line()    answered from the log.
// When the restart budget is spent every call fails with kDeviceFailed.
//
// One "pump" thread owns the DriverHost's data path (one client thread, as
// DriverHost requires): it moves queued bytes into write requests, keeps
// reads posted, and applies completions. Applications never touch the data
// path.
//
//   auto shadow = UMBRA_TRY(UartShadow::Create(host, {}));
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
#include <thread>

#include "shadows/registry.h"
#include "shadows/shadow.h"
#include "shadows/uart/port.h"

namespace umbra::shadows::uart {

// What the receive side saw, since creation.
struct UartReceiveStats {
  uint64_t bytes = 0;       // bytes queued for Read, each stream position once
  uint64_t duplicates = 0;  // bytes dropped: their position had been received already
  uint64_t lost = 0;        // positions skipped: overwritten in the RX ring before anyone saw them
  // Read completions refused because they claimed bytes the device never
  // received (a driver lying about a length; the driver was restarted).
  uint64_t impossible = 0;
  // Read completions refused because they skipped bytes an earlier read
  // took from the ring (the driver lost that read's completion; restarted).
  uint64_t gaps = 0;
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
  size_t reads_posted = 4;           // read buffers outstanding at the driver
  // The device's count of bytes received from the line (its rx_total
  // register; called from the pump thread, must outlive the shadow). A read
  // completion whose bytes end past the highest count seen is a length the
  // driver could not have produced: a protocol violation, the driver is
  // restarted and the bytes are received again. Empty: the class cannot tell
  // a wrong length that still fits the read buffer from a right one, and
  // passes the bytes on (a lie the shadow cannot see).
  std::function<uint64_t()> device_rx_total;
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
  // Under io_mu_: queues the bytes of a read completion at stream `position`
  // that are not already queued or read.
  void AcceptReceived(uint64_t position, const std::byte* bytes, uint32_t length);
  // Under io_mu_: whether a read completion at `position` skips bytes that
  // a restart can still deliver (a lost read completion).
  bool LostACompletion(uint64_t position);
  // Whether the device received every byte a read completion claims
  // (options_.device_rx_total; true without it).
  bool DeviceReceived(uint64_t position, uint32_t length);
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
  std::deque<std::byte> tx_;     // written, not yet confirmed on the line; tx_[0] is stream byte confirmed_
  uint64_t confirmed_ = 0;       // stream bytes known to be on the line
  uint64_t submitted_ = 0;       // bytes of tx_'s front in write requests not yet completed
  bool need_resync_ = true;      // no writes until the new driver's tx_total is known
  bool poisoned_ = false;        // a write failed oddly: completions no longer trusted until resync
  std::optional<uint64_t> resync_total_;  // handed from the worker to the pump
  std::optional<Error> resync_error_;
  uint64_t resyncs_ = 0;         // bumped by the pump each time one was applied
  uint64_t base_total_ = 0;      // the device's tx_total when base_stream_ was confirmed
  uint64_t base_stream_ = 0;
  uint64_t sent_since_base_ = 0;  // stream bytes handed to drivers since the base
  std::deque<std::byte> rx_;     // received, not yet read
  std::optional<uint64_t> rx_next_;  // stream position of the next byte to queue (from the first read)
  std::optional<uint64_t> refused_gap_at_;  // the rx_next_ of the last gap LostACompletion refused
  UartReceiveStats rx_stats_;

  // Pump-thread state (no lock).
  uint64_t rx_total_seen_ = 0;  // highest device_rx_total read (a reset lowers it while it holds bytes over)
  std::deque<InFlight> writes_;
  std::deque<InFlight> reads_;

  std::thread pump_;  // owns the data path; started by Open, joined in the destructor
};

// The registry's factory: settings "tx_queue_bytes", "rx_queue_bytes".
Result<std::unique_ptr<Shadow>> CreateUartShadow(runtime::Host& host, const ShadowSettings& settings,
                                                 RecoveryMode mode);

}  // namespace umbra::shadows::uart
