// The umbra command's subcommands, one function each.
#pragma once

namespace CLI {
class App;
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
  kExitConfig = 78,
};

// `umbra demo`: registers the subcommand; its callback runs the demo.
void AddDemoCommand(CLI::App& app, int& exit_code);
// `umbra campaign` (and the hidden `campaign-worker` it starts).
void AddCampaignCommand(CLI::App& app, int& exit_code);
// `umbra failpoints list`.
void AddFailpointsCommand(CLI::App& app, int& exit_code);

}  // namespace umbra::cli
