#include "shadows/shadow.h"

#include <signal.h>

#include <spdlog/spdlog.h>

#include "recorder/recorder.h"
#include "base/clock.h"

namespace umbra::shadows {

namespace {

// The requests the class disposed of during a recovery, as RequestsDisposed
// events (one per non-zero counter) on the device's recorder.
void RecordDispositions(recorder::Recorder& rec, recorder::DeviceId device, uint64_t queued, uint64_t dropped,
                        uint64_t answered, uint64_t failed, uint64_t replayed) {
  auto record = [&](recorder::Disposition d, uint64_t n) {
    if (n > 0) rec.RequestsDisposed(device, d, n);
  };
  record(recorder::Disposition::kQueued, queued);
  record(recorder::Disposition::kDropped, dropped);
  record(recorder::Disposition::kAnswered, answered);
  record(recorder::Disposition::kFailed, failed);
  record(recorder::Disposition::kReplayed, replayed);
}

}  // namespace

const char* ShadowStateName(ShadowState s) {
  switch (s) {
    case ShadowState::kPassive: return "passive";
    case ShadowState::kRecovering: return "recovering";
    case ShadowState::kHolding: return "holding";
    case ShadowState::kFailed: return "failed";
    case ShadowState::kStopped: return "stopped";
  }
  return "?";
}

Shadow::Shadow(runtime::Host& host, Options options)
    : host_(host), options_(std::move(options)), config_(options_.config) {}

Shadow::~Shadow() { Stop(); }

void Shadow::Start() {
  {
    std::lock_guard lock(mu_);
    if (worker_.joinable()) return;
    stop_ = false;
  }
  host_.set_listener(this);
  worker_ = std::thread([this] { WorkerLoop(); });
  host_.Start();
}

void Shadow::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!worker_.joinable()) return;
    stop_ = true;
    state_.store(ShadowState::kStopped, std::memory_order_release);
  }
  cv_.notify_all();
  worker_.join();
  host_.Shutdown();
  host_.set_listener(nullptr);
}

Result<void> Shadow::WaitUntilPassive(int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  if (cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                   [&] { return state() == ShadowState::kPassive || state() == ShadowState::kFailed; }) &&
      state() == ShadowState::kPassive) {
    return {};
  }
  return Fail(state() == ShadowState::kFailed ? Errc::kDeviceFailed : Errc::kTimeout,
              device_name() + " is " + ShadowStateName(state()) + (failure_.empty() ? "" : ": " + failure_));
}

std::vector<RecoveryRecord> Shadow::recoveries() const {
  std::lock_guard lock(mu_);
  return records_;
}

std::string Shadow::failure_reason() const {
  std::lock_guard lock(mu_);
  return failure_;
}

Error Shadow::FailedError() const {
  std::lock_guard lock(mu_);
  return Error{Errc::kDeviceFailed,
               device_name() + " failed: " + (failure_.empty() ? "driver could not be recovered" : failure_)};
}

void Shadow::SetState(ShadowState s) {
  state_.store(s, std::memory_order_release);
  cv_.notify_all();
}

RecoveryRecord* Shadow::CurrentRecord() {
  if (!recovering_ || records_.empty()) return nullptr;
  return &records_.back();
}

// ---------------- DriverHostListener (loop thread) ----------------

void Shadow::OnDriverDown(const runtime::Detection& d) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    ++generation_;
    ready_pending_ = false;
    if (!recovering_) {
      recovering_ = true;
      if (records_.size() >= options_.max_records) records_.erase(records_.begin());
      RecoveryRecord r;
      r.number = records_.empty() ? 1 : records_.back().number + 1;
      r.detection = d;
      r.detected_ns = d.at_ns;
      records_.push_back(std::move(r));
      queued_ = dropped_ = answered_ = failed_ = resubmitted_ = 0;
    }
    records_.back().isolated_ns = MonotonicNanos();
    SetState(ShadowState::kRecovering);
  }
  OnDriverLost();
}

void Shadow::OnDriverReady(uint64_t, int64_t) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    if (RecoveryRecord* r = CurrentRecord()) {
      r->restarted_ns = MonotonicNanos();
      ++r->attempts;
    }
    ready_pending_ = true;
  }
  cv_.notify_all();
}

void Shadow::OnDeviceFailed(const runtime::Detection& d) {
  std::string why = "restart budget spent; last failure: " + d.ToString();
  {
    std::lock_guard lock(mu_);
    if (RecoveryRecord* r = CurrentRecord()) {
      r->failure = why;
      r->failed = failed_;
      RecordDispositions(host_.recorder(), host_.recorder_device(), queued_, dropped_, answered_, failed_,
                         resubmitted_);
    }
    recovering_ = false;
    failure_ = why;
    SetState(ShadowState::kFailed);
  }
  spdlog::error("[{}] shadow: device failed: {}", device_name(), why);
  OnFailed(why);
}

// ---------------- recovery (worker thread) ----------------

void Shadow::WorkerLoop() {
  for (;;) {
    uint64_t generation;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || ready_pending_; });
      if (stop_) return;
      ready_pending_ = false;
      generation = generation_;
    }
    RunRecovery(generation);
  }
}

void Shadow::RunRecovery(uint64_t generation) {
  // Each step either completes, or fails because the driver died again (a
  // double fault: wait for the next ready), or fails on its own (the new
  // driver misbehaves: kill it, which is a double fault too).
  // Every step is a recovery phase in the trace: begun before the hook runs,
  // ended done when the step completed, aborted when it failed (double fault).
  // The first start runs the same steps; only recoveries are recorded.
  bool recovering;
  {
    std::lock_guard lock(mu_);
    recovering = recovering_;
  }
  recorder::Recorder& tracer = recovering ? host_.recorder() : recorder::Recorder::Off();
  const recorder::DeviceId device = host_.recorder_device();
  auto step = [&](Result<void> r, int64_t RecoveryRecord::*stamp) {
    std::lock_guard lock(mu_);
    if (generation != generation_) return false;
    if (!r) {
      const Errc code = r.error().code;
      if (code == Errc::kInterrupted || code == Errc::kUnavailable) return false;  // died again
      spdlog::warn("[{}] shadow: recovery step failed, restarting the driver: {}", device_name(), r.error().ToString());
      host_.Kill(SIGKILL);
      return false;
    }
    if (RecoveryRecord* rec = CurrentRecord()) rec->*stamp = MonotonicNanos();
    return true;
  };
  auto phase = [&](recorder::RecoveryPhase p, auto hook, int64_t RecoveryRecord::*stamp) {
    tracer.PhaseBegin(device, p);
    const bool done = step(hook(), stamp);
    tracer.PhaseEnd(device, p, done ? recorder::PhaseOutcome::kDone : recorder::PhaseOutcome::kAborted);
    return done;
  };
  if (options_.mode == RecoveryMode::kShadow) {
    if (!phase(
            recorder::RecoveryPhase::kReplayConfiguration, [&] { return ReplayConfiguration(); },
            &RecoveryRecord::replayed_ns)) {
      return;
    }
    if (!phase(
            recorder::RecoveryPhase::kReopen, [&] { return ReopenObjects(); }, &RecoveryRecord::reopened_ns)) {
      return;
    }
  }
  if (!phase(
          recorder::RecoveryPhase::kResubmit, [&] { return ResubmitRequests(); }, &RecoveryRecord::resubmitted_ns)) {
    return;
  }
  // Resume: from the resubmitted requests to serving again. Its end (done) is
  // what ends the fault episode in the recorder's analysis; the dispositions
  // are recorded inside it, so they belong to this episode. It is recorded
  // before the state turns passive: once clients are served they may cause
  // the next fault, which must not fall into this episode.
  tracer.PhaseBegin(device, recorder::RecoveryPhase::kResume);
  {
    std::lock_guard lock(mu_);
    if (generation != generation_) {
      tracer.PhaseEnd(device, recorder::RecoveryPhase::kResume, recorder::PhaseOutcome::kAborted);
      return;
    }
    RecordDispositions(tracer, device, queued_, dropped_, answered_, failed_, resubmitted_);
    if (RecoveryRecord* r = CurrentRecord()) {
      r->passive_ns = MonotonicNanos();
      r->succeeded = true;
      r->queued = queued_;
      r->dropped = dropped_;
      r->answered = answered_;
      r->failed = failed_;
      r->resubmitted = resubmitted_;
    }
    recovering_ = false;
    failure_.clear();
    tracer.PhaseEnd(device, recorder::RecoveryPhase::kResume);
    SetState(holding_for_.empty() ? ShadowState::kPassive : ShadowState::kHolding);
  }
  OnResumed();
}

// One batch: the driver runs the settings in replay order, one wake-up for
// all of them instead of a control round trip per setting.
Result<void> Shadow::ReplayConfiguration() {
  std::lock_guard lock(config_mu_);
  std::vector<runtime::DriverCall> calls;
  for (const ConfigLog::Entry& e : config_.InReplayOrder()) {
    calls.push_back(runtime::DriverCall{.method = e.method, .body = e.value});
  }
  UMBRA_TRY(host_.CallBatch(std::move(calls), options_.call_timeout_ns));
  return {};
}

Result<void> Shadow::CheckServing() {
  switch (state()) {
    case ShadowState::kFailed: return std::unexpected(FailedError());
    case ShadowState::kStopped: return Fail(Errc::kNoDevice, device_name() + " is not open");
    case ShadowState::kPassive:
    case ShadowState::kRecovering:
    case ShadowState::kHolding: break;
  }
  if (options_.mode == RecoveryMode::kRestartOnly && !passive()) {
    CountFailed();
    return Fail(Errc::kUnavailable, device_name() + " is restarting");
  }
  return {};
}

Result<std::string> Shadow::CallDriver(uint32_t method, std::string body) {
  return host_.Call(method, std::move(body), options_.call_timeout_ns);
}

Result<std::string> Shadow::ConfigCall(const std::string& key, int rank, uint32_t method, std::string value) {
  std::lock_guard lock(config_mu_);
  if (state() == ShadowState::kFailed) return std::unexpected(FailedError());
  // Refused before it is logged: a call that fails must not change what the
  // class reports (Get answers from the log).
  if (options_.mode == RecoveryMode::kRestartOnly && state() != ShadowState::kPassive) {
    return Fail(Errc::kUnavailable, device_name() + " is restarting");
  }
  std::optional<std::string> previous = config_.Get(key);
  UMBRA_TRY(config_.Set(key, rank, method, value));
  if (state() != ShadowState::kPassive && state() != ShadowState::kHolding) {
    CountAnswered();
    return std::string();  // applied when the configuration is replayed
  }
  auto r = host_.Call(method, value, options_.call_timeout_ns);
  if (r) return r;
  switch (r.error().code) {
    case Errc::kNoDevice:
      // The send found the driver's channel closed (EPIPE): it died just
      // before the call, unless the device itself is going away.
      if (host_.state() == runtime::DeviceState::kStopping || host_.state() == runtime::DeviceState::kStopped) {
        break;
      }
      [[fallthrough]];
    case Errc::kInterrupted:
    case Errc::kUnavailable:
      // The driver died under the call; the replay will apply the setting.
      // Without a shadow nothing is replayed: the call failed.
      if (options_.mode == RecoveryMode::kShadow) return std::string();
      break;
    default: break;
  }
  // The driver refused the value (or died without a shadow to replay it):
  // keep what was there before.
  if (previous) {
    (void)config_.Set(key, rank, method, *previous);
  } else {
    config_.Erase(key);
  }
  return r;
}

// ---------------- links ----------------

void Shadow::OnSupplierRecovering(const std::string& supplier) {
  std::lock_guard lock(mu_);
  holding_for_[supplier] = true;
  if (state() == ShadowState::kPassive) SetState(ShadowState::kHolding);
}

void Shadow::OnSupplierRecovered(const std::string& supplier) {
  bool resume = false;
  {
    std::lock_guard lock(mu_);
    holding_for_.erase(supplier);
    if (holding_for_.empty() && state() == ShadowState::kHolding) {
      SetState(ShadowState::kPassive);
      resume = true;
    }
  }
  if (resume) {
    (void)ResubmitRequests();
    OnResumed();
  }
}

void Shadow::OnSupplierFailed(const std::string& supplier, bool optional) {
  if (optional) {
    degraded_ = true;
    OnSupplierRecovered(supplier);
    return;
  }
  std::string why = "supplier " + supplier + " failed";
  {
    std::lock_guard lock(mu_);
    holding_for_.erase(supplier);
    failure_ = why;
    SetState(ShadowState::kFailed);
  }
  OnFailed(why);
}

}  // namespace umbra::shadows
