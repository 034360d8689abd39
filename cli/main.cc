// umbra: run drivers under shadows, inject faults, measure recovery.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/commands.h"

int main(int argc, char** argv) {
  // Logs go to stderr: stdout is for results (tables, --json).
  spdlog::set_default_logger(spdlog::stderr_color_mt("umbra"));
  CLI::App app{"Umbra: device drivers in their own processes, shadowed so that their crashes go unnoticed."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "umbra 0.1.0");
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log what the runtime does");
  int exit_code = umbra::cli::kExitOk;
  umbra::cli::AddDemoCommand(app, exit_code);
  umbra::cli::AddCampaignCommand(app, exit_code);
  umbra::cli::AddFailpointsCommand(app, exit_code);
  umbra::cli::AddTreeCommand(app, exit_code);
  umbra::cli::AddRunCommand(app, exit_code);
  umbra::cli::AddValidateCommand(app, exit_code);
  umbra::cli::AddReportCommand(app, exit_code);
  umbra::cli::AddTraceCommand(app, exit_code);
  umbra::cli::AddSandboxCommand(app, exit_code);
  umbra::cli::AddStatusCommand(app, exit_code);
  umbra::cli::AddInjectCommand(app, exit_code);
  umbra::cli::AddUpgradeCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : umbra::cli::kExitUsage;
  }
  return exit_code;
}
