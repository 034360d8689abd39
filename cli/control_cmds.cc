// `umbra status` and `umbra inject`: clients of a running machine's control
// socket (see control/machine_control.h and docs/frontends.md).
//
//   umbra status [--machine NAME | --run-dir DIR] [--json]
//   umbra inject DEVICE FAULT[,FAULT…] [--site SITE] [--every 500ms] [--count N]
//   umbra upgrade DEVICE --binary PATH [--probation MS]
//
// Exit codes: 0 done; 69 no machine answers; 65 the machine refused the
// request (unknown device or fault: the reason is printed); 64 bad usage.
#include <time.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <google/protobuf/util/json_util.h>

#include "cli/commands.h"
#include "control/control_server.h"
#include "control/run_dir.h"
#include "umbra/run_control.pb.h"

namespace umbra::cli {
namespace {

constexpr int kExitUnavailable = 69;
constexpr int64_t kCallTimeoutNs = 30'000'000'000;

struct Where {
  std::string machine;
  std::string run_dir;
};

void AddWhereOptions(CLI::App* cmd, Where& where) {
  cmd->add_option("--machine", where.machine, "The running machine's name (default: the only one running)");
  cmd->add_option("--run-dir", where.run_dir, "The run folder `umbra run --run-dir` was given");
}

// Sends one request; fills `reply`. Prints why it failed and returns the exit code.
int Call(const char* command, const Where& where, const proto::RunRequest& request, proto::RunReply& reply) {
  auto dir = control::RunDir::Find(where.run_dir, where.machine);
  if (!dir) {
    std::fprintf(stderr, "umbra %s: %s\n", command, dir.error().message.c_str());
    return kExitUnavailable;
  }
  std::string line;
  (void)google::protobuf::util::MessageToJsonString(request, &line);
  auto answer = control::CallControl(*dir + "/control.sock", line, kCallTimeoutNs);
  if (!answer) {
    std::fprintf(stderr, "umbra %s: %s\n", command, answer.error().message.c_str());
    return kExitUnavailable;
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // a newer machine may say more
  if (!google::protobuf::util::JsonStringToMessage(*answer, &reply, options).ok()) {
    std::fprintf(stderr, "umbra %s: the machine's answer does not parse: %s\n", command, answer->c_str());
    return kExitSoftware;
  }
  if (!reply.ok()) {
    std::fprintf(stderr, "umbra %s: %s\n", command, reply.error().c_str());
    return kExitDataErr;
  }
  return kExitOk;
}

void PrintStatus(const proto::StatusReply& s) {
  std::printf("machine %s, up %.1f s\n\n", s.machine().c_str(), double(s.uptime_ms()) / 1000);
  std::printf("%-10s %-6s %-11s %-8s %-8s %7s %8s %10s %12s  %s\n", "device", "class", "state", "shadow", "driver",
              "pid", "restarts", "recoveries", "last gap ms", "binary");
  for (const auto& d : s.devices()) {
    std::printf("%-10s %-6s %-11s %-8s %-8s %7d %8lu %10lu %12.3f  %s\n", d.name().c_str(),
                d.device_class().empty() ? "-" : d.device_class().c_str(), d.state().c_str(),
                d.shadow_state().empty() ? "-" : d.shadow_state().c_str(),
                d.driver().empty() ? "-" : d.driver().c_str(), d.driver_pid(), (unsigned long)d.restarts(),
                (unsigned long)d.recoveries(), double(d.last_gap_us()) / 1000, d.driver_binary().c_str());
    if (!d.reason().empty()) std::printf("%10s reason: %s\n", "", d.reason().c_str());
    for (const auto& f : d.frontends()) std::printf("%10s frontend: %s\n", "", f.c_str());
  }
}

struct StatusArgs {
  Where where;
  bool json = false;
};

int Status(const StatusArgs& args) {
  proto::RunRequest request;
  request.mutable_status();
  proto::RunReply reply;
  if (int rc = Call("status", args.where, request, reply); rc != kExitOk) return rc;
  if (args.json) {
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(reply.status(), &out, options);
    std::printf("%s\n", out.c_str());
  } else {
    PrintStatus(reply.status());
  }
  return kExitOk;
}

// "500ms", "2s", "1.5s", "250us"; a bare number is seconds. -1 when malformed.
int64_t ParseDurationNs(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (...) {
    return -1;
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1e9;
  if (unit == "ms") scale = 1e6;
  if (unit == "us") scale = 1e3;
  if (unit == "m" || unit == "min") scale = 60e9;
  if (scale == 0 || value < 0) return -1;
  return static_cast<int64_t>(value * scale);
}

// Splits "segfault,delay(1,2),abort" at the commas outside parentheses.
std::vector<std::string> SplitFaults(const std::string& text) {
  std::vector<std::string> out(1);
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.emplace_back();
      continue;
    }
    out.back() += c;
  }
  return out;
}

struct InjectArgs {
  Where where;
  std::string device;
  std::string faults;
  std::string site;
  std::string every;
  int64_t count = 0;  // 0: once, or forever with --every
  bool json = false;
};

void SleepNs(int64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (nanosleep(&ts, &ts) != 0) {}
}

int Inject(const InjectArgs& args) {
  const int64_t every_ns = args.every.empty() ? 0 : ParseDurationNs(args.every);
  if (every_ns < 0) {
    std::fprintf(stderr, "umbra inject: --every %s: not a duration (500ms, 2s …)\n", args.every.c_str());
    return kExitUsage;
  }
  const std::vector<std::string> faults = SplitFaults(args.faults);
  const int64_t count = args.count > 0 ? args.count : (every_ns > 0 ? INT64_MAX : 1);
  for (int64_t i = 0; i < count; ++i) {
    if (i > 0) SleepNs(every_ns);
    proto::RunRequest request;
    auto& inject = *request.mutable_inject();
    inject.set_device(args.device);
    inject.set_fault(faults[static_cast<size_t>(i) % faults.size()]);
    inject.set_site(args.site);
    proto::RunReply reply;
    if (int rc = Call("inject", args.where, request, reply); rc != kExitOk) return rc;
    const auto& r = reply.inject();
    if (args.json) {
      std::printf("{\"device\":\"%s\",\"fault\":\"%s\",\"pid\":%d,\"instance\":%lu}\n", r.device().c_str(),
                  r.fault().c_str(), r.driver_pid(), (unsigned long)r.driver_instance());
    } else {
      std::printf("%s: %s (driver pid %d, instance %lu)\n", r.device().c_str(), r.detail().c_str(), r.driver_pid(),
                  (unsigned long)r.driver_instance());
    }
    std::fflush(stdout);
  }
  return kExitOk;
}

struct UpgradeArgs {
  Where where;
  std::string device;
  std::string binary;
  uint32_t probation_ms = 1000;
  bool json = false;
};

// Exit 0 when the new binary serves; 1 when it was refused or rolled back
// (the old one serves), with the reason.
int Upgrade(const UpgradeArgs& args) {
  proto::RunRequest request;
  auto& u = *request.mutable_upgrade();
  u.set_device(args.device);
  // The machine resolves the path from its own folder: make it absolute here.
  u.set_binary(args.binary.find('/') == std::string::npos ? args.binary
                                                          : std::filesystem::absolute(args.binary).string());
  u.set_probation_ms(args.probation_ms);
  proto::RunReply reply;
  if (int rc = Call("upgrade", args.where, request, reply); rc != kExitOk) return rc;
  const auto& r = reply.upgrade();
  if (args.json) {
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(r, &out, options);
    std::printf("%s\n", out.c_str());
  } else if (r.upgraded()) {
    std::printf("%s: upgraded to %s (version %s), gap %.3f ms\n", r.device().c_str(), r.driver_binary().c_str(),
                r.driver_version().c_str(), double(r.gap_us()) / 1000);
  } else {
    std::printf("%s: not upgraded%s: %s\n  serving: %s (version %s)\n", r.device().c_str(),
                r.rolled_back() ? " (rolled back)" : "", r.reason().c_str(), r.driver_binary().c_str(),
                r.driver_version().c_str());
  }
  return r.upgraded() ? kExitOk : kExitNotRecovered;
}

}  // namespace

void AddUpgradeCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("upgrade", "Replace a running machine's driver with a new binary, live");
  auto args = std::make_shared<UpgradeArgs>();
  AddWhereOptions(cmd, args->where);
  cmd->add_option("DEVICE", args->device, "The device whose driver is replaced")->required();
  cmd->add_option("--binary", args->binary, "The new driver program")->required();
  cmd->add_option("--probation", args->probation_ms,
                  "Milliseconds after taking over in which a crash or hang rolls back (default 1000)");
  cmd->add_flag("--json", args->json, "Print the outcome as one JSON object");
  cmd->footer("The shadow holds requests while the old driver stops and the new one is probed and replayed;\n"
              "a refused, failing or crashing new driver leaves the old one serving (docs/live-update.md).\n"
              "Exit codes: 0 upgraded, 1 not upgraded (refused or rolled back; the reason is printed),\n"
              "65 refused request (unknown device), 69 no machine answers.\nExample:\n"
              "  umbra upgrade disk0 --binary build/default/drivers/disk/umbra-driver-disk --probation 500");
  cmd->callback([args, &exit_code] { exit_code = Upgrade(*args); });
}

void AddStatusCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("status", "Show a running machine's devices, drivers and recoveries");
  auto args = std::make_shared<StatusArgs>();
  AddWhereOptions(cmd, args->where);
  cmd->add_flag("--json", args->json, "Print the status as one JSON object");
  cmd->footer("Exit codes: 0 shown, 69 no machine answers.\nExample:\n  umbra status --machine small --json");
  cmd->callback([args, &exit_code] { exit_code = Status(*args); });
}

void AddInjectCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("inject", "Inject a fault into a running machine's driver");
  auto args = std::make_shared<InjectArgs>();
  AddWhereOptions(cmd, args->where);
  cmd->add_option("DEVICE", args->device, "The device whose driver gets the fault")->required();
  cmd->add_option("FAULT", args->faults,
                  "sigkill, sigstop, sigsegv, sigabrt …, kill_during_recovery, a failpoint action (segfault, abort, "
                  "hang, delay(300) …) or a failpoint spec; several, comma-separated, are used in turn")
      ->required();
  cmd->add_option("--site", args->site, "Failpoint site for an action (default sdk.heartbeat, or sdk.request)");
  cmd->add_option("--every", args->every, "Inject again after this long (500ms, 2s …)");
  cmd->add_option("--count", args->count, "Inject this many times (default once; forever with --every)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->json, "Print one JSON line per injection");
  cmd->footer("Each injection waits (up to 10 s) for the driver to be running again.\n"
              "Exit codes: 0 injected, 65 refused (unknown device or fault), 69 no machine answers.\nExamples:\n"
              "  umbra inject disk0 sigkill\n  umbra inject nic0 segfault,abort,sigkill,hang --every 500ms --count 20");
  cmd->callback([args, &exit_code] { exit_code = Inject(*args); });
}

}  // namespace umbra::cli
