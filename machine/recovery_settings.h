// RecoverySettings: how one device's driver is watched and restarted, as the
// machine file says — the built-in defaults, then the machine's
// (settings.heartbeat_period_ms and settings.restart_budget, then
// settings.recovery), then the device's own `recovery`, field by field.
//
//   RecoverySettings r = ResolveRecovery(description, description.devices(2));
//   runtime::DriverHostOptions o;
//   r.ApplyTo(o);
//
// The file's values were range-checked by model::LoadMachine; docs/machines.md
// lists the fields and their defaults.
//
// Thread safety: plain values and free functions.
#pragma once

#include <cstdint>

#include "runtime/supervisor/driver_host.h"
#include "runtime/supervisor/restart_policy.h"

namespace umbra::proto {
class Machine;
class MachineDevice;
}  // namespace umbra::proto

namespace umbra::machine {

enum class WarmStandby { kOn, kOff };

struct RecoverySettings {
  WarmStandby warm_standby = WarmStandby::kOn;
  int64_t heartbeat_period_ns = runtime::DriverHostOptions{}.heartbeat_period_ns;
  int64_t request_deadline_ns = runtime::DriverHostOptions{}.request_deadline_ns;
  runtime::RestartPolicy::Options restart;

  void ApplyTo(runtime::DriverHostOptions& o) const;
};

RecoverySettings ResolveRecovery(const proto::Machine& machine, const proto::MachineDevice& device);

}  // namespace umbra::machine
