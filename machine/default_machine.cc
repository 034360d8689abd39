#include "machine/default_machine.h"

#include "runtime/model/machine.h"
#include "umbra/machine.pb.h"

namespace umbra::machine {

std::string_view DefaultMachineText() {
  return R"pb(# The default machine: a NIC, a disk, a serial port and a sound card.
#   nic0 -> disk0   managed:  nic0 holds while disk0 recovers, is unbound if it fails
#   ttyS0 -> nic0   optional: ttyS0 runs degraded without nic0
name: "default"
settings {
  deferred_probe_timeout_ms: 5000
  recovery {
    warm_standby: true        # a spare driver per device: failover in well under a millisecond
    heartbeat_period_ms: 10   # a hang is caught after 20 ms of the driver's own CPU time
    request_deadline_ms: 2000
    restart_budget { max_restarts: 10 window_ms: 10000 }
    # Restart at once, unless the driver crashed within 30 ms of its restart
    # (a crash loop): then wait 10 ms, 20 ms, 40 ms, 50 ms ... until the
    # budget is spent. A second up forgives the restarts before it.
    backoff { initial_ms: 10 max_ms: 50 crash_loop_ms: 30 stable_ms: 1000 }
  }
}
buses { name: "platform" }
devices {
  name: "disk0" bus: "platform" compatible: "umbra,disk-emu" device_class: "block"
  settings { key: "blocks" value: "4096" }
  settings { key: "queue_depth" value: "32" }
}
devices {
  name: "nic0" bus: "platform" compatible: "umbra,e1000-emu" device_class: "net"
  settings { key: "mac" value: "02:00:00:00:00:01" }
}
devices { name: "ttyS0" bus: "platform" compatible: "umbra,uart-emu" device_class: "uart" }
devices {
  name: "snd0" bus: "platform" compatible: "umbra,sound-emu" device_class: "sound"
  settings { key: "speaker" value: "snd0-speaker.wav" }
}
drivers { name: "disk" bus: "platform" compatible: "umbra,disk-emu" binary: "umbra-driver-disk" }
drivers { name: "nic" bus: "platform" compatible: "umbra,e1000-emu" binary: "umbra-driver-nic" }
drivers { name: "uart" bus: "platform" compatible: "umbra,uart-emu" binary: "umbra-driver-uart" }
drivers { name: "sound" bus: "platform" compatible: "umbra,sound-emu" binary: "umbra-driver-sound" }
links { consumer: "nic0" supplier: "disk0" flags: "managed" }
links { consumer: "ttyS0" supplier: "nic0" flags: "managed" flags: "optional" }
)pb";
}

Result<std::unique_ptr<proto::Machine>> LoadDefaultMachine() {
  return model::ParseMachine(DefaultMachineText(), "<default machine>", model::MachineFormat::kText);
}

}  // namespace umbra::machine
