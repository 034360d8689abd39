#include "machine/recovery_settings.h"

#include "umbra/machine.pb.h"

namespace umbra::machine {

namespace {

constexpr int64_t kMs = 1'000'000;

// Each nonzero field replaces what is there: 0 means "inherit".
void Override(int64_t& ns, uint32_t ms) {
  if (ms > 0) ns = int64_t{ms} * kMs;
}

void ApplyBudget(const proto::RestartBudget& b, runtime::RestartPolicy::Options& r) {
  if (b.max_restarts() > 0) r.budget = b.max_restarts();
  Override(r.window_ns, b.window_ms());
  Override(r.backoff_initial_ns, b.backoff_ms());
}

void ApplyRecovery(const proto::Recovery& p, RecoverySettings& s) {
  if (p.has_warm_standby()) s.warm_standby = p.warm_standby() ? WarmStandby::kOn : WarmStandby::kOff;
  Override(s.heartbeat_period_ns, p.heartbeat_period_ms());
  Override(s.request_deadline_ns, p.request_deadline_ms());
  ApplyBudget(p.restart_budget(), s.restart);
  Override(s.restart.backoff_initial_ns, p.backoff().initial_ms());
  Override(s.restart.backoff_max_ns, p.backoff().max_ms());
  Override(s.restart.crash_loop_ns, p.backoff().crash_loop_ms());
  Override(s.restart.stable_period_ns, p.backoff().stable_ms());
}

}  // namespace

void RecoverySettings::ApplyTo(runtime::DriverHostOptions& o) const {
  o.warm_standby = warm_standby == WarmStandby::kOn;
  o.heartbeat_period_ns = heartbeat_period_ns;
  o.request_deadline_ns = request_deadline_ns;
  o.restart = restart;
}

RecoverySettings ResolveRecovery(const proto::Machine& machine, const proto::MachineDevice& device) {
  RecoverySettings s;
  const proto::MachineSettings& m = machine.settings();
  Override(s.heartbeat_period_ns, m.heartbeat_period_ms());
  ApplyBudget(m.restart_budget(), s.restart);
  ApplyRecovery(m.recovery(), s);
  ApplyRecovery(device.recovery(), s);
  return s;
}

}  // namespace umbra::machine
