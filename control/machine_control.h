// MachineControl: answers control-socket requests about one running machine
// (`umbra status`, `umbra inject`, `umbra upgrade`). One RunRequest per line in, one RunReply
// per line out, in protobuf's JSON mapping (proto/umbra/run_control.proto).
// Every request is checked before it touches anything: a line that does not
// parse, an unknown device or fault, gets ok=false and an error saying why.
//
//   MachineControl control(machine, {.on_inject = log});
//   auto server = UMBRA_TRY(ControlServer::Create(dir.socket_path(),
//       [&](std::string_view line) { return control.HandleLine(line); }, control.TooLongReply()));
//
// Thread safety: HandleLine may be called from any thread but the machine's
// own and its supervisors' loops (it blocks while an injection waits for a
// driver to be running). The machine must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace umbra::machine {
class Machine;
}
namespace umbra::proto {
class DeviceStatus;
class InjectRequest;
class UpgradeRequest;
class RunReply;
}  // namespace umbra::proto

namespace umbra::control {

struct MachineControlOptions {
  // Called after each injection that reached a driver (device, what was done).
  std::function<void(const std::string& device, const std::string& detail)> on_inject;
  // The outside faces of a device for `status` ("file /run/…/disk0"); may be empty.
  std::function<std::vector<std::string>(const std::string& device)> frontends;
};

class MachineControl {
 public:
  MachineControl(machine::Machine& machine, MachineControlOptions options);

  // One request line in, one reply line out (no '\n' either way).
  std::string HandleLine(std::string_view line);
  // The reply to a line over kMaxLine.
  static std::string TooLongReply();

 private:
  std::string Status();
  std::string Inject(const proto::InjectRequest& request);
  std::string Upgrade(const proto::UpgradeRequest& request);
  Result<proto::RunReply> DoInject(const proto::InjectRequest& request);
  Result<void> CheckDevice(const std::string& device) const;
  // The bound driver's name, binary, pid and instance.
  void FillDriver(const std::string& device, proto::DeviceStatus& d);
  // "/devices/<bus>/<device>", or "" when the model does not have it.
  std::string DevicePath(const std::string& device) const;

  machine::Machine& machine_;  // not owned; outlives this
  MachineControlOptions options_;
  const int64_t started_ns_;
};

}  // namespace umbra::control
