// The net shadow: a network device whose driver may crash, behind a
// net::Interface that never shows it.
//
// Passive (driver healthy): Transmit copies frames into pool buffers and
// submits them in one batch; Receive keeps `rx_buffers` pool buffers posted to
// the driver (kRxPost) and hands completed ones to the application as views.
// Configuration calls (MAC, MTU, receive mode, multicast list, up/down) go to
// the driver through the shadow's configuration log.
//
// Recovering: transmits are dropped, counted and reported as accepted (the
// network tolerates loss); Receive waits for the driver to be back; Mac(),
// Mtu(), Stats() and LinkUp() are answered from the shadow's own state;
// configuration calls are logged and applied by the replay. After the new
// driver probed: the configuration is replayed in rank order (MAC, MTU,
// receive mode, multicast list, then up), and the RX buffers the crash
// interrupted are posted again (ResubmitRequests).
//
//   runtime::Host& host = *UMBRA_TRY(sup.AddDevice({... .driver_binary = "umbra-driver-nic",
//                                                        .hw = nic.get()}));
//   auto shadow = UMBRA_TRY(net::NetShadow::Create(host, {}));
//   UMBRA_TRY(shadow->Open(5'000'000'000));
//   UMBRA_TRY(shadow->Up());
//
// Recording (DriverHostOptions::recorder): a transmit per frame submitted and
// a receive per RX buffer posted (RequestSubmitted), each completed ok, failed
// or interrupted when its completion is polled (RequestCompleted, with the
// latency from submission); one clock read per batch, nothing when recording
// is off (docs/recorder.md, "Recording from a class").
//
// RecoveryMode::kRestartOnly is the comparison without a shadow's help: no
// replay, and Transmit/Receive/configuration fail with kUnavailable while the
// driver restarts.
//
// Thread safety: one application thread for Transmit and Receive (see
// net::Interface); configuration calls and accessors from any thread. The data
// path takes `dp_mu_` once per call (a batch), shared only with the shadow's
// worker while it reposts buffers after a recovery.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/result.h"
#include "runtime/supervisor/cookie.h"
#include "shadows/net/interface.h"
#include "shadows/registry.h"
#include "shadows/shadow.h"

namespace umbra::recorder {
class Recorder;
}

namespace umbra::net {

struct NetShadowOptions {
  uint32_t rx_buffers = 64;  // pool buffers kept posted for receive
  int64_t call_timeout_ns = 2'000'000'000;
};

class NetShadow final : public shadows::Shadow, public Interface {
 public:
  static Result<std::unique_ptr<NetShadow>> Create(runtime::Host& host, NetShadowOptions options,
                                                   shadows::RecoveryMode mode = shadows::RecoveryMode::kShadow);
  ~NetShadow() override;

  // net::Interface
  Result<void> Open(int64_t timeout_ns) override;
  Result<void> Up() override;
  Result<void> Down() override;
  Result<size_t> Transmit(std::span<const FrameView> frames) override;
  Result<size_t> Receive(std::span<FrameView> out, int64_t timeout_ns) override;
  Result<void> SetMac(uint64_t mac) override;
  uint64_t Mac() const override { return mac_.load(std::memory_order_relaxed); }
  Result<void> SetMtu(uint32_t mtu) override;
  uint32_t Mtu() const override { return mtu_.load(std::memory_order_relaxed); }
  Result<void> SetRxMode(RxMode mode) override;
  Result<void> SetMulticast(std::span<const uint64_t> addresses) override;
  NetStats Stats() const override;
  bool LinkUp() override;

  uint64_t permanent_mac() const { return permanent_mac_.load(std::memory_order_relaxed); }
  // When the first frame received through a new driver reached the
  // application after the latest recovery (MonotonicNanos; 0: not yet).
  int64_t first_rx_after_recovery_ns() const { return first_rx_after_recovery_ns_.load(); }

 protected:
  Result<void> ResubmitRequests() override;
  void OnResumed() override;

 private:
  // A pool buffer's offset and what it is used for travel in the cookie
  // (runtime::RequestCookie: the offset is its index, the use its tag).
  static constexpr uint32_t kTxTag = 1;
  static constexpr uint32_t kRxTag = 2;
  struct Ready {
    uint32_t offset;
    uint32_t length;
  };

  // When each pool buffer was submitted and how many bytes, for the
  // recorder's per-request latency (indexed by offset / buffer size; written
  // only while recording).
  struct Submitted {
    int64_t time_ns;
    uint32_t length;
  };

  NetShadow(runtime::Host& host, Options options, NetShadowOptions net_options);

  Result<void> Config(const char* key, int rank, uint32_t method, std::string body);
  // Under dp_mu_.
  void EnsureBuffersLocked();
  void HandleLocked(std::span<const runtime::Completion> done);
  size_t PollLocked();
  void PostRxLocked();
  size_t DeliverLocked(std::span<FrameView> out);
  // Recording (no-ops with the recorder off): one clock read per batch.
  void RecordTransmittedLocked(std::span<const runtime::Request> sent);
  void RecordCompletionsLocked(std::span<const runtime::Completion> done);
  void RecordPostedLocked(std::span<const runtime::Request> posted);
  Submitted* SubmittedLocked(uint32_t offset);

  const NetShadowOptions net_options_;
  recorder::Recorder& recorder_;  // the host's (Recorder::Off() when none); outlives the shadow
  const uint32_t recorder_device_;

  std::mutex dp_mu_;  // the data path's own state below
  bool buffers_ready_ = false;
  uint32_t buffer_size_ = 0;
  std::vector<uint32_t> tx_free_;  // pool buffers for transmit
  std::vector<uint32_t> rx_idle_;  // receive buffers not posted
  std::vector<Ready> ready_;       // received, not yet handed out (FIFO from ready_head_)
  size_t ready_head_ = 0;
  std::vector<uint32_t> lent_;  // handed out by the last Receive
  uint32_t rx_posted_ = 0;
  std::vector<runtime::Request> requests_;  // scratch, sized once
  std::vector<runtime::Completion> completions_;
  std::vector<Submitted> submitted_;  // per pool buffer, sized once

  std::atomic<uint64_t> permanent_mac_{0}, mac_{0};
  std::atomic<uint32_t> mtu_{1500};
  std::atomic<bool> link_up_{false};
  std::atomic<uint64_t> tx_frames_{0}, tx_bytes_{0}, tx_dropped_{0}, rx_frames_{0}, rx_bytes_{0};
  std::atomic<bool> await_first_rx_{false};
  std::atomic<int64_t> first_rx_after_recovery_ns_{0};
};

// The settings the factory takes: "rx_buffers".
const shadows::SettingsSchema<NetShadowOptions>& NetSettings();
// The registry's factory for "net".
Result<std::unique_ptr<shadows::Shadow>> CreateNetShadow(runtime::Host& host, const shadows::ShadowSettings& settings,
                                                         shadows::RecoveryMode mode);

}  // namespace umbra::net
