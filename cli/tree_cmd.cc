// `umbra tree [FILE] [--json]`: the device tree a machine file makes — buses,
// devices with their states, drivers, classes and links with theirs — as
// probing would leave it if every driver binds. Without FILE: the built-in
// default machine. No driver process is started.
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "machine/default_machine.h"
#include "runtime/model/inprocess_backend.h"
#include "runtime/model/machine.h"
#include "umbra/machine.pb.h"

namespace umbra::cli {
namespace {

struct TreeArgs {
  std::string file;
  bool json = false;
};

int Tree(const TreeArgs& args) {
  std::unique_ptr<proto::Machine> description;
  if (args.file.empty()) {
    auto d = machine::LoadDefaultMachine();
    if (!d) {
      std::fprintf(stderr, "umbra tree: %s\n", d.error().message.c_str());
      return kExitSoftware;
    }
    description = std::move(*d);
  } else if (int rc = LoadMachineFile("tree", args.file, description, MachineChecks::kModel); rc != kExitOk) {
    return rc;
  }
  auto model = model::BuildModel(*description, [](model::Model& m, const model::DriverSpec&) {
    return std::make_shared<model::InProcessBackend>(m, model::InProcessBackend::Completion::kSynchronous);
  });
  if (!model) {
    std::fprintf(stderr, "umbra tree: %s\n", model.error().message.c_str());
    return kExitConfig;
  }
  const std::string out = args.json ? (*model)->RenderJson() : (*model)->RenderText();
  std::fputs(out.c_str(), stdout);
  if (!out.empty() && out.back() != '\n') std::fputc('\n', stdout);
  return kExitOk;
}

}  // namespace

void AddTreeCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("tree", "Print the device tree (states and links) of a machine file");
  auto args = std::make_shared<TreeArgs>();
  cmd->add_option("FILE", args->file, "Machine file (.textproto or .json); default: the built-in machine");
  cmd->add_flag("--json", args->json, "Print the tree as JSON");
  cmd->footer("Examples:\n  umbra tree\n  umbra tree examples/machines/links.textproto\n"
              "  umbra tree examples/machines/echo-links.textproto --json");
  cmd->callback([args, &exit_code] { exit_code = Tree(*args); });
}

}  // namespace umbra::cli
