// Live update (docs/live-update.md): a new binary attached as a standby, the old
// driver removed, the new one probed and kept on probation, rolled back on failure.
#include "runtime/supervisor/driver_host_impl.h"

#include <future>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "base/clock.h"

namespace umbra::runtime {

void DriverHost::Impl::BeginUpgrade(const UpgradeOptions& o, std::string binary,
                                    std::function<void(Result<UpgradeResult>)> done) {
  if (upgrade_) return done(Fail(Errc::kBusy, options_.device_name + ": an upgrade is already in progress"));
  if (state_ != DeviceState::kRunning || !current_) {
    return done(Fail(Errc::kUnavailable,
                     options_.device_name + " is " + DeviceStateName(state_) + ", not running: nothing to upgrade"));
  }
  upgrade_ = std::make_unique<Upgrade>(io_);
  upgrade_->old_binary = binary_;
  upgrade_->new_binary = std::move(binary);
  upgrade_->probation_ns = o.probation_ns;
  upgrade_->done = std::move(done);
  // The old binary's standby makes way; one comes back if the upgrade is
  // refused, and stays through the probation for a rollback.
  restart_timer_.cancel();
  if (standby_) KillInstance(std::move(standby_));
  auto inst = Spawn(&upgrade_->new_binary);
  if (!inst) return Refuse("cannot start " + upgrade_->new_binary + ": " + inst.error().message);
  upgrade_->candidate = standby_ = *inst;
  upgrade_->timer.expires_after(Nanos(options_.handshake_deadline_ns));
  upgrade_->timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || !upgrade_ || upgrade_->switched) return;
    KillInstance(std::move(standby_));
    Refuse("the new driver did not finish its handshake in " +
           std::to_string(options_.handshake_deadline_ns / 1'000'000) + " ms");
  });
}

void DriverHost::Impl::Refuse(std::string why) {
  FinishUpgrade({.reason = std::move(why)});
  SpawnStandby();
}

void DriverHost::Impl::SwitchDrivers() {
  Upgrade& u = *upgrade_;
  u.switched = true;
  u.timer.cancel();
  u.stop_ns = MonotonicNanos();
  recovering_since_ns_ = u.stop_ns;
  rec_.Detected(rec_id_, recorder::DetectionReason::kUpgrade, 0);
  BeginPhase(recorder::RecoveryPhase::kIsolate);
  own_time_.reset();
  u.old = std::move(current_);
  SetState(DeviceState::kRecovering);
  if (listener_) {
    listener_->OnDriverDown(Detection{.reason = DetectReason::kUpgrade,
                                      .detail = "live update to " + u.new_binary,
                                      .at_ns = u.stop_ns,
                                      .instance = u.old->number});
  }
  HostToDriver m;
  m.mutable_remove();
  (void)u.old->control.Send(m, {}, ipc::Blocking::kDontWait);
  u.old->deadline.expires_after(Nanos(options_.shutdown_grace_ns));
  u.old->deadline.async_wait([this, old = u.old](const boost::system::error_code& ec) {
    if (!ec && !old->reaped) KillInstance(old);
  });
}

void DriverHost::Impl::ContinueUpgrade() {
  Upgrade& u = *upgrade_;
  if (!u.old) return;
  const std::shared_ptr<Instance> old = std::move(u.old);
  old->deadline.cancel();
  if (!old->reaped) {
    // Killed, not parked: it stopped its device and is on its way out,
    // and a parked instance would outlive the upgrade until KillParked.
    KillInstance(old);
    AwaitLeftUserSpace(*old);
    EndLeftovers(old);
  }
  EndPhase(recorder::RecoveryPhase::kIsolate);
  BeginPhase(recorder::RecoveryPhase::kQuiesce);
  if (options_.hw != nullptr) options_.hw->Reset();
  FenceDataPath(Errc::kInterrupted);
  FailPendingCalls(Errc::kInterrupted, "driver replaced by a live update during the call");
  EndPhase(recorder::RecoveryPhase::kQuiesce);
  const std::string lost = u.lost;
  if (!lost.empty()) {
    u.candidate.reset();
    FinishUpgrade({.reason = lost + "; the old driver was started again", .rolled_back = true});
  }
  StartInstance();
}

void DriverHost::Impl::OnCandidateLost(const Detection& d) {
  const std::string why = "the new driver " + d.ToString();
  if (!upgrade_->switched) return Refuse(why);
  upgrade_->lost = why;
}

void DriverHost::Impl::StartProbation() {
  Upgrade& u = *upgrade_;
  u.timer.expires_after(Nanos(u.probation_ns));
  u.timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || !upgrade_ || current_ != upgrade_->candidate || state_ != DeviceState::kRunning) return;
    CommitUpgrade();
  });
}

void DriverHost::Impl::CommitUpgrade() {
  Upgrade& u = *upgrade_;
  {
    std::lock_guard lock(mu_);  // driver_info() reads it
    binary_ = u.new_binary;
  }
  restart_timer_.cancel();
  if (standby_) KillInstance(std::move(standby_));
  SpawnStandby();
  int64_t gap_ns = 0;
  Count([&] { gap_ns = stats_.last_recovery_ns; });
  FinishUpgrade({.upgraded = true, .driver_version = current_->info.version, .gap_ns = gap_ns});
}

void DriverHost::Impl::RollBack(const Detection& d) {
  spdlog::warn("[{}] upgrade to {} rolled back: {}", options_.device_name, upgrade_->new_binary, d.ToString());
  upgrade_->candidate.reset();
  FinishUpgrade(
      {.reason = "the new driver " + d.ToString() + " during its probation; rolled back to " + upgrade_->old_binary,
       .rolled_back = true});
}

void DriverHost::Impl::FinishUpgrade(UpgradeResult r) {
  auto u = std::move(upgrade_);
  u->timer.cancel();
  if (r.driver_version.empty()) {
    std::lock_guard lock(mu_);
    r.driver_version = info_.version;
  }
  spdlog::info("[{}] upgrade to {}: {}", options_.device_name, u->new_binary, r.upgraded ? "done" : r.reason);
  u->done(std::move(r));
}

Result<UpgradeResult> DriverHost::Upgrade(const UpgradeOptions& options) {
  std::string binary = UMBRA_TRY(FindDriverBinary(options.binary));
  // Checked on the loop too; here so that a stopped host (whose loop may be
  // gone) answers at once.
  if (const DeviceState s = state(); s != DeviceState::kRunning) {
    return Fail(Errc::kUnavailable, name() + " is " + DeviceStateName(s) + ", not running: nothing to upgrade");
  }
  auto done = std::make_shared<std::promise<Result<UpgradeResult>>>();
  auto outcome = done->get_future();
  asio::post(impl_->io_, [this, options, binary = std::move(binary), done]() mutable {
    impl_->BeginUpgrade(options, std::move(binary), [done](Result<UpgradeResult> r) { done->set_value(std::move(r)); });
  });
  if (outcome.wait_for(std::chrono::nanoseconds(options.timeout_ns)) != std::future_status::ready) {
    return Fail(Errc::kTimeout,
                name() + ": no outcome of the upgrade after " + std::to_string(options.timeout_ns / 1'000'000) + " ms");
  }
  return outcome.get();
}

}  // namespace umbra::runtime
