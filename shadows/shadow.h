// Shadow: the class-independent half of a shadow driver.
//
// One Shadow stands between a device's users and its driver. While the driver
// is healthy (passive) the class forwards every call and records what recovery
// needs: the configuration log, the objects the driver holds for clients, the
// requests in flight. When the DriverHost reports the driver down, the shadow
// goes active: the class applies its policy to each new request (queue, drop,
// answer from the shadow, or fail), and once a new driver has probed, the
// shadow's worker thread replays the configuration, reopens the objects and
// resubmits requests, then goes back to passive. A double fault at any step
// restarts recovery; when the restart budget is spent the shadow fails every
// pending and new request with a clear error.
//
//   passive ──OnDriverDown──► recovering ──OnDriverReady──► (worker) Replay ─►
//     Reopen ─► Resubmit ─► passive;   recovering ──OnDeviceFailed──► failed
//   (docs/shadows.md draws it with the function behind each transition)
//
// A class derives from Shadow, implements its interface (net::Interface,
// sound::Pcm, block::Disk ...) on top of `host()`, and overrides the hooks.
//
// Thread safety: the class interface is called from client threads; the
// DriverHostListener callbacks run on the supervisor's loop; recovery runs on
// the shadow's own worker thread (it may block on driver calls). state() is an
// atomic read, so the passive fast path takes no lock beyond the class's own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "runtime/supervisor/host.h"
#include "shadows/config_log.h"

namespace umbra::shadows {

enum class ShadowState {
  kPassive,     // driver healthy: forward and record
  kRecovering,  // driver down or being brought back: class policies apply
  kHolding,     // a supplier is recovering: requests wait, the driver is fine
  kFailed,      // restart budget spent: everything fails with a clear error
  kStopped,
};
const char* ShadowStateName(ShadowState s);

// What recovery does, for the comparison the original evaluation made.
enum class RecoveryMode {
  kShadow,       // restart and replay: failures hidden
  kRestartOnly,  // restart, no replay: in-flight and new requests fail while down
};

// The steps of one recovery, with monotonic timestamps (0: not reached).
struct RecoveryRecord {
  uint64_t number = 0;
  runtime::Detection detection;
  int64_t detected_ns = 0;     // the DriverHost noticed
  int64_t isolated_ns = 0;     // process killed, data path fenced, device quiesced
  int64_t restarted_ns = 0;    // new driver probed
  int64_t replayed_ns = 0;     // configuration replayed
  int64_t reopened_ns = 0;     // objects reopened
  int64_t resubmitted_ns = 0;  // requests resubmitted
  int64_t passive_ns = 0;      // serving again
  uint32_t attempts = 0;       // driver restarts this recovery took (double faults)
  uint64_t queued = 0, dropped = 0, answered = 0, failed = 0, resubmitted = 0;
  bool succeeded = false;
  std::string failure;  // why, when !succeeded
};

class Shadow : public runtime::DriverHostListener {
 public:
  struct Options {
    std::string class_name;
    RecoveryMode mode = RecoveryMode::kShadow;
    int64_t call_timeout_ns = 2'000'000'000;  // driver calls made while replaying
    size_t max_records = 4096;                // recovery records kept
    ConfigLog::Options config;
  };

  ~Shadow() override;
  Shadow(const Shadow&) = delete;
  Shadow& operator=(const Shadow&) = delete;

  const std::string& class_name() const { return options_.class_name; }
  const std::string& device_name() const { return host_.name(); }
  RecoveryMode mode() const { return options_.mode; }
  ShadowState state() const { return state_.load(std::memory_order_acquire); }
  bool passive() const { return state() == ShadowState::kPassive; }
  runtime::Host& host() { return host_; }

  // Becomes the host's listener, starts the worker and the driver.
  void Start();
  // Stops the worker and the driver; pending requests fail with kNoDevice.
  // A class's destructor must call Stop() first: the worker calls the class's
  // hooks, which must not run while the class is being destroyed.
  void Stop();
  Result<void> WaitUntilPassive(int64_t timeout_ns);

  std::vector<RecoveryRecord> recoveries() const;
  std::string failure_reason() const;

  // Device links (wired from the device model): a supplier this device
  // depends on is recovering / back / gone for good.
  void OnSupplierRecovering(const std::string& supplier);
  void OnSupplierRecovered(const std::string& supplier);
  void OnSupplierFailed(const std::string& supplier, bool optional);
  bool degraded() const { return degraded_.load(); }

  // Counters the class bumps while active (also copied into the record).
  void CountQueued(uint64_t n = 1) { queued_ += n; }
  void CountDropped(uint64_t n = 1) { dropped_ += n; }
  void CountAnswered(uint64_t n = 1) { answered_ += n; }
  void CountFailed(uint64_t n = 1) { failed_ += n; }
  void CountResubmitted(uint64_t n = 1) { resubmitted_ += n; }

 protected:
  Shadow(runtime::Host& host, Options options);

  // ---- hooks for the class ----
  // Loop thread, right after the driver died (keep it short, no driver calls).
  virtual void OnDriverLost() {}
  // Worker thread; may call the driver with CallDriver. The defaults replay the
  // configuration log and nothing else.
  virtual Result<void> ReplayConfiguration();
  virtual Result<void> ReopenObjects() { return {}; }
  // Resubmit in-flight and queued requests (after recovery and after holding).
  virtual Result<void> ResubmitRequests() { return {}; }
  // After the shadow went back to passive, and when it failed for good.
  virtual void OnResumed() {}
  virtual void OnFailed(const std::string& /*why*/) {}

  // ---- services ----
  // Records a setting and applies it: while passive it is sent to the driver
  // (a driver that rejects it gets the old value back in the log and the error
  // is returned); while active it is only recorded and replayed later. A call
  // interrupted by a crash is hidden: the replay applies it.
  Result<std::string> ConfigCall(const std::string& key, int rank, uint32_t method, std::string value);
  // A driver call on the worker thread during recovery.
  Result<std::string> CallDriver(uint32_t method, std::string body);
  ConfigLog& config_log() { return config_; }  // guarded by config_mu_
  std::mutex& config_mu() { return config_mu_; }

  // Errors handed to clients.
  Error FailedError() const;
  // What a class answers a client call while the device cannot serve it:
  // failed for good → FailedError(); stopped → kNoDevice; restarting in
  // restart-only mode → kUnavailable (counted as failed). Otherwise {}: in
  // shadow mode a recovery is the class's to hide.
  Result<void> CheckServing();

  // DriverHostListener (loop thread).
  void OnDriverDown(const runtime::Detection& d) override;
  void OnDriverReady(uint64_t instance, int64_t recovery_ns) override;
  void OnDeviceFailed(const runtime::Detection& d) override;

 private:
  void WorkerLoop();
  void RunRecovery(uint64_t generation);
  void GoPassive();
  void SetState(ShadowState s);
  RecoveryRecord* CurrentRecord();  // under records_mu_

  runtime::Host& host_;  // the DriverHost (owned by the Supervisor), or a test's fake; outlives the shadow
  Options options_;

  std::atomic<ShadowState> state_{ShadowState::kStopped};
  std::atomic<bool> degraded_{false};
  std::atomic<uint64_t> queued_{0}, dropped_{0}, answered_{0}, failed_{0}, resubmitted_{0};

  std::mutex config_mu_;  // serialises configuration calls with replay
  ConfigLog config_;

  mutable std::mutex mu_;  // worker hand-off, records, holds
  std::condition_variable cv_;
  std::thread worker_;  // runs recoveries; joined in Stop
  bool stop_ = false;
  bool ready_pending_ = false;
  bool recovering_ = false;                  // between OnDriverDown and passive
  uint64_t generation_ = 0;                  // bumped by every OnDriverDown: a double fault
  std::map<std::string, bool> holding_for_;  // suppliers recovering
  std::vector<RecoveryRecord> records_;
  std::string failure_;
};

}  // namespace umbra::shadows
