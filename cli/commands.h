// The umbra command's subcommands, one function each.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace umbra::recorder {
struct Trace;
}

namespace umbra::proto {
class Machine;
}

namespace umbra::cli {

// Exit codes, sysexits-style.
enum ExitCode : int {
  kExitOk = 0,
  kExitNotRecovered = 1,  // the run finished but something did not recover or verify
  kExitUsage = 64,
  kExitDataErr = 65,
  kExitNoInput = 66,
  kExitSoftware = 70,
  kExitCantCreate = 73,
  kExitConfig = 78,
};

// `umbra demo`: registers the subcommand; its callback runs the demo.
void AddDemoCommand(CLI::App& app, int& exit_code);
// `umbra campaign` (and the hidden `campaign-worker` it starts).
void AddCampaignCommand(CLI::App& app, int& exit_code);
// `umbra failpoints list`.
void AddFailpointsCommand(CLI::App& app, int& exit_code);
// `umbra tree [FILE] [--json]`.
void AddTreeCommand(CLI::App& app, int& exit_code);
// `umbra run MACHINE-FILE [--for SECONDS] [--json]`.
void AddRunCommand(CLI::App& app, int& exit_code);
// `umbra status [--json]` and `umbra inject DEVICE FAULT`: a running machine's control socket.
void AddStatusCommand(CLI::App& app, int& exit_code);
void AddInjectCommand(CLI::App& app, int& exit_code);
// `umbra upgrade DEVICE --binary PATH [--probation MS]`: a live update.
void AddUpgradeCommand(CLI::App& app, int& exit_code);
// `umbra validate FILE`.
void AddValidateCommand(CLI::App& app, int& exit_code);

// How much of a machine file LoadMachineFile checks.
enum class MachineChecks {
  kModel,     // what the device model needs (`tree`: a model to show)
  kRunnable,  // and everything `run` would refuse (machine/machine_check.h)
};
// Loads a machine file for `tree` and `run`: kExitOk, or prints
// "umbra COMMAND: <error>" and returns kExitNoInput (no such file),
// kExitDataErr (does not parse) or kExitConfig (parses but is refused).
int LoadMachineFile(const std::string& command, const std::string& path, std::unique_ptr<proto::Machine>& out,
                    MachineChecks checks = MachineChecks::kRunnable);
// `umbra report TRACE... [--json] [--html FILE]`.
void AddReportCommand(CLI::App& app, int& exit_code);
// `umbra trace export TRACE --format chrome -o FILE`.
void AddTraceCommand(CLI::App& app, int& exit_code);
// `umbra sandbox allowlist`.
void AddSandboxCommand(CLI::App& app, int& exit_code);

// Reads trace files for `umbra <command>`, appending each to `traces`. A file
// that is missing or unreadable stops reading (returns 66), one that is not a
// trace too (65), with the error on stderr. A damaged trace is kept, with a
// warning naming the byte offset on stderr, and makes the result 65 (a trace
// whose writer did not close only warns). Returns kExitOk otherwise.
int ReadTraces(const char* command, const std::vector<std::string>& paths, std::vector<recorder::Trace>& traces);

}  // namespace umbra::cli
