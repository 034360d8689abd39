#include "control/machine_control.h"

#include <signal.h>
#include <time.h>

#include <algorithm>

#include <google/protobuf/util/json_util.h>

#include "control/live_fault.h"
#include "base/clock.h"
#include "machine/machine.h"
#include "umbra/run_control.pb.h"

namespace umbra::control {
namespace {

using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;

std::string ToLine(const proto::RunReply& reply) {
  std::string out;
  JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;  // "ok":false is said, not implied
  (void)google::protobuf::util::MessageToJsonString(reply, &out, options);
  return out;
}

std::string ErrorLine(const Error& e) {
  proto::RunReply reply;
  reply.set_ok(false);
  reply.set_error(e.message);
  reply.set_error_code(ErrcName(e.code));
  return ToLine(reply);
}

std::string_view SignalName(int sig) {
  switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGSTOP: return "SIGSTOP";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGTERM: return "SIGTERM";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGCONT: return "SIGCONT";
    default: return "a signal";
  }
}

// Kills the driver, waits for the one that replaces it to exist, kills it too.
std::string KillDuringRecovery(runtime::DriverHost& host) {
  const uint64_t first = host.instance();
  host.Kill(SIGKILL);
  const int64_t deadline = MonotonicNanos() + 5'000'000'000;
  while (host.instance() == first && MonotonicNanos() < deadline) {
    timespec ts{0, 200'000};
    nanosleep(&ts, nullptr);
  }
  if (host.instance() == first) return "sent SIGKILL; no new driver started within 5 s";
  host.Kill(SIGKILL);
  return "sent SIGKILL, then SIGKILL to its replacement (instance " + std::to_string(host.instance()) + ")";
}

Result<std::string> Carry(runtime::DriverHost& host, const LiveFault& fault) {
  switch (fault.kind) {
    case LiveFaultKind::kSignal: host.Kill(fault.signal); return "sent " + std::string(SignalName(fault.signal));
    case LiveFaultKind::kKillDuringRecovery: return KillDuringRecovery(host);
    case LiveFaultKind::kFailpoint: {
      auto armed = host.ArmFailpointsInRunningDriver(fault.spec);
      // A fault at a busy site (a heartbeat) can strike before the driver
      // confirms the arming: the driver dying then is the fault working.
      if (!armed && armed.error().code == Errc::kInterrupted) {
        return "armed " + fault.spec + "; it struck before the driver confirmed";
      }
      if (!armed) return std::unexpected(armed.error());
      return "armed " + fault.spec;
    }
  }
  return Fail(Errc::kInternal, "unknown fault kind");
}

}  // namespace

MachineControl::MachineControl(machine::Machine& machine, MachineControlOptions options)
    : machine_(machine), options_(std::move(options)), started_ns_(MonotonicNanos()) {}

std::string MachineControl::TooLongReply() {
  return ErrorLine(Error{Errc::kInvalidArgument, "request longer than 64 KiB"});
}

std::string MachineControl::HandleLine(std::string_view line) {
  proto::RunRequest request;
  JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  if (auto st = google::protobuf::util::JsonStringToMessage(std::string(line), &request, parse); !st.ok()) {
    return ErrorLine(Error{Errc::kParse, "request is not a RunRequest in JSON: " + std::string(st.message())});
  }
  switch (request.request_case()) {
    case proto::RunRequest::kStatus: return Status();
    case proto::RunRequest::kInject: return Inject(request.inject());
    case proto::RunRequest::kUpgrade: return Upgrade(request.upgrade());
    case proto::RunRequest::REQUEST_NOT_SET: break;
  }
  return ErrorLine(
      Error{Errc::kInvalidArgument, "empty request: send {\"status\":{}}, {\"inject\":{...}} or {\"upgrade\":{...}}"});
}

std::string MachineControl::Status() {
  proto::RunReply reply;
  reply.set_ok(true);
  auto& status = *reply.mutable_status();
  status.set_machine(machine_.name());
  status.set_uptime_ms(static_cast<uint64_t>((MonotonicNanos() - started_ns_) / 1'000'000));
  for (const machine::DeviceSummary& s : machine_.Summarize()) {
    auto& d = *status.add_devices();
    d.set_name(s.name);
    d.set_state(s.state);
    d.set_shadow_state(s.shadow_state);
    d.set_degraded(s.degraded);
    d.set_restarts(s.restarts);
    d.set_recoveries(s.recoveries);
    d.set_last_gap_us(static_cast<uint64_t>(s.last_gap_ns / 1000));
    d.set_reason(s.reason);
    FillDriver(s.name, d);
    if (options_.frontends) {
      for (const auto& f : options_.frontends(s.name)) d.add_frontends(f);
    }
  }
  return ToLine(reply);
}

void MachineControl::FillDriver(const std::string& device, proto::DeviceStatus& d) {
  model::Model& model = machine_.model();
  const std::string dev_path = DevicePath(device);
  d.set_device_class(model.Read(dev_path + "/class").value_or(""));
  const std::string driver = model.Read(dev_path + "/driver").value_or("");
  d.set_driver(driver);
  if (!driver.empty()) {
    const std::string bus = model.Read(dev_path + "/bus").value_or("");
    d.set_driver_binary(model.Read("/bus/" + bus + "/drivers/" + driver + "/binary").value_or(""));
  }
  if (runtime::DriverHost* host = machine_.host(device)) {
    d.set_driver_pid(host->driver_pid());
    d.set_driver_instance(host->instance());
    const runtime::DriverInfo info = host->driver_info();
    d.set_driver_binary(info.binary);  // after an upgrade, not the machine file's
    d.set_driver_version(info.version);
  }
}

std::string MachineControl::Inject(const proto::InjectRequest& request) {
  auto reply = DoInject(request);
  if (!reply) return ErrorLine(reply.error());
  return ToLine(*reply);
}

Result<proto::RunReply> MachineControl::DoInject(const proto::InjectRequest& request) {
  const LiveFault fault = UMBRA_TRY(ResolveLiveFault(request.fault(), request.site()));
  UMBRA_TRY(CheckDevice(request.device()));
  runtime::DriverHost* host = machine_.host(request.device());
  if (!host) return Fail(Errc::kUnavailable, request.device() + " has no driver (it is not bound)");
  const int64_t wait_ns = (request.wait_running_ms() ? request.wait_running_ms() : 10'000) * 1'000'000LL;
  if (auto r = host->WaitUntilRunning(wait_ns); !r) {
    return Fail(Errc::kUnavailable, request.device() + "'s driver is not running: " + r.error().message);
  }
  proto::RunReply reply;
  reply.set_ok(true);
  auto& inject = *reply.mutable_inject();
  inject.set_device(request.device());
  inject.set_fault(request.fault());
  inject.set_driver_pid(host->driver_pid());
  inject.set_driver_instance(host->instance());
  inject.set_detail(UMBRA_TRY(Carry(*host, fault)));
  if (options_.on_inject) options_.on_inject(request.device(), request.fault() + ": " + inject.detail());
  return reply;
}

std::string MachineControl::Upgrade(const proto::UpgradeRequest& request) {
  if (auto ok = CheckDevice(request.device()); !ok) return ErrorLine(ok.error());
  if (request.binary().empty()) return ErrorLine(Error{Errc::kInvalidArgument, "upgrade: no binary given"});
  runtime::DriverHost* host = machine_.host(request.device());
  if (!host) return ErrorLine(Error{Errc::kUnavailable, request.device() + " has no driver (it is not bound)"});
  const int64_t probation_ns = (request.probation_ms() ? request.probation_ms() : 1000) * 1'000'000LL;
  auto r = host->Upgrade({.binary = request.binary(), .probation_ns = probation_ns});
  if (!r) return ErrorLine(r.error());
  proto::RunReply reply;
  reply.set_ok(true);
  auto& u = *reply.mutable_upgrade();
  u.set_device(request.device());
  u.set_upgraded(r->upgraded);
  u.set_rolled_back(r->rolled_back);
  u.set_reason(r->reason);
  u.set_driver_binary(host->driver_info().binary);
  u.set_driver_version(r->driver_version);
  u.set_gap_us(static_cast<uint64_t>(r->gap_ns / 1000));
  if (options_.on_inject) {
    options_.on_inject(request.device(), r->upgraded ? "upgraded to " + request.binary()
                                                     : "upgrade to " + request.binary() + " not done: " + r->reason);
  }
  return ToLine(reply);
}

Result<void> MachineControl::CheckDevice(const std::string& device) const {
  const auto names = machine_.device_names();
  if (std::find(names.begin(), names.end(), device) != names.end()) return {};
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return Fail(Errc::kNotFound,
              "no device \"" + device + "\" in machine " + machine_.name() + " (devices: " + list + ")");
}

std::string MachineControl::DevicePath(const std::string& device) const {
  // "/devices/<bus>/<device>": the bus is found by listing.
  const auto buses = machine_.model().List("/devices");
  if (!buses) return "";
  for (const auto& bus : *buses) {
    const auto devices = machine_.model().List("/devices/" + bus);
    if (devices && std::find(devices->begin(), devices->end(), device) != devices->end()) {
      return "/devices/" + bus + "/" + device;
    }
  }
  return "";
}

}  // namespace umbra::control
