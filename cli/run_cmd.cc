// `umbra run MACHINE-FILE [--for SECONDS] [--json | --jsonl] [--trace FILE] [--run-dir DIR]`: builds the machine —
// emulated hardware, a driver process and a shadow per device — starts it,
// prints the tree, then keeps it running until the duration passes or
// SIGINT/SIGTERM arrives, printing state changes and recoveries as they
// happen, and a summary at the end. While it runs it listens on a control
// socket in its run folder (run_control.h) for `umbra status` and `umbra
// inject`. Everything is shut down before it exits:
// devices unbound (consumers first), drivers stopped and reaped.
//
// Exit codes: 0 every device bound at the end; 1 a device is not (failed,
// unbound); 65/66/78 as `umbra validate`; 70 the machine could not be built.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/run_control.h"
#include "recorder/recorder.h"
#include "base/clock.h"
#include "machine/machine.h"
#include "umbra/machine.pb.h"

namespace umbra::cli {
namespace {

struct RunArgs {
  std::string file;
  double seconds = -1;  // < 0: until a signal
  bool json = false;
  std::string trace;        // empty: no recording
  bool json_lines = false;  // --jsonl: every event as a JSON line when it happens
  std::string run_dir;      // --run-dir; empty: the default for the machine's name
};

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// What happened during the run, one line each, printed live (text or JSON
// lines) or collected (JSON).
class Log {
 public:
  Log(bool json, int64_t t0, bool live_json = false) : json_(json || live_json), live_json_(live_json), t0_(t0) {}
  void Add(const std::string& kind, const std::string& object, const std::string& detail) {
    const double t = double(MonotonicNanos() - t0_) / 1e9;
    std::lock_guard lock(mu_);
    if (json_) {
      char ts[32];
      std::snprintf(ts, sizeof ts, "%.6f", t);
      lines_.push_back(std::string("{\"t\":") + ts + ",\"kind\":" + JsonString(kind) +
                       ",\"object\":" + JsonString(object) + ",\"detail\":" + JsonString(detail) + "}");
      if (live_json_) PrintLive(lines_.back());
      return;
    }
    std::printf("[%9.3fs] %-16s %-14s %s\n", t, kind.c_str(), object.c_str(), detail.c_str());
    std::fflush(stdout);
  }
  // --jsonl: one line as it happens.
  static void PrintLive(const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
  std::string JsonArray() {
    std::lock_guard lock(mu_);
    std::string out = "[";
    for (size_t i = 0; i < lines_.size(); ++i) out += (i ? "," : "") + lines_[i];
    return out + "]";
  }

 private:
  const bool json_;
  const bool live_json_;
  const int64_t t0_;
  std::mutex mu_;
  std::vector<std::string> lines_;  // guarded by mu_
};

// Waits for SIGINT/SIGTERM (blocked in every thread) or the deadline.
// Returns the signal, or 0 when the time is up.
int WaitForSignalOrDeadline(const sigset_t& set, int64_t deadline_ns) {
  for (;;) {
    int64_t left = deadline_ns < 0 ? 1'000'000'000 : deadline_ns - MonotonicNanos();
    if (deadline_ns >= 0 && left <= 0) return 0;
    if (left > 100'000'000) left = 100'000'000;
    timespec ts{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return sig;
  }
}

std::string SummaryJson(const std::vector<machine::DeviceSummary>& summary) {
  std::string out = "[";
  for (size_t i = 0; i < summary.size(); ++i) {
    const auto& s = summary[i];
    out += (i ? "," : "");
    out += "{\"device\":" + JsonString(s.name) + ",\"state\":" + JsonString(s.state) +
           ",\"shadow\":" + JsonString(s.shadow_state) + ",\"degraded\":" + (s.degraded ? "true" : "false") +
           ",\"restarts\":" + std::to_string(s.restarts) + ",\"recoveries\":" + std::to_string(s.recoveries) +
           ",\"last_gap_us\":" + std::to_string(s.last_gap_ns / 1000) + ",\"reason\":" + JsonString(s.reason) + "}";
  }
  return out + "]";
}

void PrintSummary(const std::vector<machine::DeviceSummary>& summary) {
  std::printf("\n%-10s %-10s %-10s %-9s %8s %10s %12s  %s\n", "device", "state", "shadow", "degraded", "restarts",
              "recoveries", "last gap ms", "reason");
  for (const auto& s : summary) {
    std::printf("%-10s %-10s %-10s %-9s %8lu %10lu %12.3f  %s\n", s.name.c_str(), s.state.c_str(),
                s.shadow_state.empty() ? "-" : s.shadow_state.c_str(), s.degraded ? "yes" : "no",
                (unsigned long)s.restarts, (unsigned long)s.recoveries, double(s.last_gap_ns) / 1e6, s.reason.c_str());
  }
}

int Run(const RunArgs& args) {
  std::unique_ptr<proto::Machine> description;
  if (int rc = LoadMachineFile("run", args.file, description); rc != kExitOk) return rc;
  spdlog::set_level(spdlog::level::err);

  // Block the signals before any thread starts, so that every thread
  // inherits the mask and only sigtimedwait below sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  const int64_t t0 = MonotonicNanos();
  Log log(args.json, t0, args.json_lines);
  machine::MachineOptions options;
  // The recorder outlives the machine (declared first, closed after Stop).
  std::unique_ptr<recorder::Recorder> rec;
  if (!args.trace.empty()) {
    auto created = recorder::Recorder::Create({.path = args.trace});
    if (!created) {
      std::fprintf(stderr, "umbra run: cannot create %s: %s\n", args.trace.c_str(), created.error().message.c_str());
      return kExitCantCreate;
    }
    rec = std::move(*created);
    options.recorder = rec.get();
  }
  options.on_notice = [&log](const machine::Notice& n) {
    log.Add(machine::NoticeKindName(n.kind), n.device.empty() ? "machine" : n.device, n.detail);
  };
  auto m = machine::Machine::Create(*description, std::move(options));
  if (!m) {
    std::fprintf(stderr, "umbra run: %s\n", m.error().message.c_str());
    return m.error().code == Errc::kInvalidArgument ? kExitConfig : kExitSoftware;
  }
  machine::Machine& machine = **m;
  model::Subscription sub = machine.model().Subscribe([&log](const model::Event& e) {
    switch (e.type) {
      case model::EventType::kBind: log.Add("bind", e.name, "driver " + e.detail); break;
      case model::EventType::kUnbind: log.Add("unbind", e.name, e.detail); break;
      case model::EventType::kStateChange: log.Add("state", e.name, e.detail); break;
      case model::EventType::kLinkStateChange: log.Add("link", e.name, e.detail); break;
      case model::EventType::kAdd:
      case model::EventType::kRemove:
      case model::EventType::kLinkAdd:
      case model::EventType::kLinkRemove: break;
    }
  });
  if (auto r = machine.Start(); !r) {
    std::fprintf(stderr, "umbra run: %s\n", r.error().message.c_str());
    return kExitConfig;
  }
  if (auto r = machine.WaitSettled(15'000'000'000); !r) log.Add("warning", "machine", r.error().message);
  const std::string tree = args.json ? machine.model().RenderJson() : machine.model().RenderText();
  if (!args.json && !args.json_lines) {
    std::printf("\n%s\n", tree.c_str());
    std::fflush(stdout);
  }
  auto faces =
      StartRunFaces(machine, *description, args.run_dir,
                    [&log](const std::string& k, const std::string& o, const std::string& d) { log.Add(k, o, d); });
  if (!faces) {
    std::fprintf(stderr, "umbra run: %s\n", faces.error().message.c_str());
    machine.Stop();
    return kExitCantCreate;
  }
  const int64_t deadline = args.seconds < 0 ? -1 : t0 + static_cast<int64_t>(args.seconds * 1e9);
  const int sig = WaitForSignalOrDeadline(set, deadline);
  log.Add("stop", "machine", sig ? std::string(strsignal(sig)) : "time is up");
  faces->reset();  // no more requests or frontend traffic while the machine stops
  (void)machine.WaitSettled(2'000'000'000);
  auto summary = machine.Summarize();
  const std::string final_tree = args.json ? machine.model().RenderJson() : "";
  machine.Stop();  // the unbinds (consumers first) are logged too
  sub.Reset();
  if (rec) {
    if (auto r = rec->Close(); !r) log.Add("warning", "machine", "trace: " + r.error().message);
    log.Add("trace", args.trace, "umbra report " + args.trace + " --html report.html");
  }
  bool all_bound = true;
  for (const auto& s : summary) all_bound = all_bound && s.state == "bound";
  if (args.json_lines) {
    Log::PrintLive("{\"kind\":\"summary\",\"summary\":" + SummaryJson(summary) +
                   ",\"ok\":" + (all_bound ? "true" : "false") + "}");
  } else if (args.json) {
    std::printf("{\"machine\":%s,\"tree\":%s,\"events\":%s,\"final_tree\":%s,\"summary\":%s,\"ok\":%s}\n",
                JsonString(machine.name()).c_str(), tree.c_str(), log.JsonArray().c_str(), final_tree.c_str(),
                SummaryJson(summary).c_str(), all_bound ? "true" : "false");
  } else {
    PrintSummary(summary);
  }
  return all_bound ? kExitOk : kExitNotRecovered;
}

}  // namespace

void AddRunCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("run", "Run a machine: drivers in their own processes behind shadows");
  auto args = std::make_shared<RunArgs>();
  cmd->add_option("MACHINE-FILE", args->file, "Machine file (.textproto or .json)")->required();
  cmd->add_option("--for", args->seconds, "Stop after this many seconds (default: at Ctrl-C)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "Print one JSON object at the end instead of live lines");
  cmd->add_option("--trace", args->trace,
                  "Record every request, fault and recovery step into FILE (umbra report FILE)");
  cmd->add_flag("--jsonl", args->json_lines,
                "Print every event (recoveries, injections …) as a JSON line when it happens");
  cmd->add_option("--run-dir", args->run_dir,
                  "Owner-only folder for the control socket and frontends (default: $XDG_RUNTIME_DIR/umbra/NAME, "
                  "or /tmp/umbra-UID/NAME)");
  cmd->footer("Exit codes: 0 every device bound at the end, 1 some device is not, 65/66/78 as validate.\n"
              "Examples:\n  umbra run examples/machines/echo-links.textproto --for 5\n"
              "  umbra run examples/machines/echo-links.textproto --for 2 --json");
  cmd->callback([args, &exit_code] { exit_code = Run(*args); });
}

}  // namespace umbra::cli
