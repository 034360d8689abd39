// `umbra sandbox allowlist`: the system calls a sandboxed driver may make
// (runtime/sandbox/seccomp.h), one per line, with the argument rules last.
// To find what a driver of your own needs beyond them, run it with
// `sandbox { seccomp: LOG }` in its machine file: the kernel logs each call
// outside the list (audit type 1326, see docs/security.md) and lets it through.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "runtime/sandbox/seccomp.h"

namespace umbra::cli {

void AddSandboxCommand(CLI::App& app, int& exit_code) {
  auto* sandbox = app.add_subcommand("sandbox", "What a driver may do in its sandbox");
  sandbox->require_subcommand(1);
  auto* allowlist = sandbox->add_subcommand("allowlist", "Print the system calls a sandboxed driver may make");
  allowlist->callback([&exit_code] {
    for (const auto& line : sandbox::DescribeAllowlist()) std::printf("%s\n", line.c_str());
    exit_code = kExitOk;
  });
}

}  // namespace umbra::cli
