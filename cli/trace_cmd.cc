// `umbra trace export`: a recorder trace in a format other tools open.
//
//   umbra trace export run.trace --format chrome -o trace.json   # then ui.perfetto.dev
//
// Exit codes as `umbra report`: 66 when the trace cannot be read, 65 when it is
// not a trace or is damaged (what was readable is still exported), 73 when the
// output cannot be written.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "recorder/export.h"
#include "recorder/trace_file.h"

namespace umbra::cli {
namespace {

struct ExportArgs {
  std::string trace;
  std::string format = "chrome";
  std::string output;
};

int RunExport(const ExportArgs& a) {
  std::vector<recorder::Trace> traces;
  const int read_rc = ReadTraces("trace export", {a.trace}, traces);
  if (traces.empty()) return read_rc;
  std::ofstream out(a.output, std::ios::trunc);
  if (!out) {
    std::fprintf(stderr, "umbra trace export: cannot create %s\n", a.output.c_str());
    return kExitCantCreate;
  }
  auto exported = a.format == "text" ? recorder::ExportText(traces[0], out) : recorder::ExportChrome(traces[0], out);
  if (auto r = exported; !r) {
    std::fprintf(stderr, "umbra trace export: %s\n", r.error().message.c_str());
    return kExitSoftware;
  }
  out.close();
  if (!out) {
    std::fprintf(stderr, "umbra trace export: writing %s failed\n", a.output.c_str());
    return kExitCantCreate;
  }
  std::fprintf(stderr, "umbra trace export: %zu events written to %s%s\n", traces[0].events.size(), a.output.c_str(),
               a.format == "chrome" ? " (open it in https://ui.perfetto.dev)" : "");
  return read_rc;
}

}  // namespace

void AddTraceCommand(CLI::App& app, int& exit_code) {
  CLI::App* trace = app.add_subcommand("trace", "Work with recorder traces");
  trace->require_subcommand(1);
  auto args = std::make_shared<ExportArgs>();
  CLI::App* exp = trace->add_subcommand(
      "export", "Convert a trace for a viewer (chrome: Perfetto, chrome://tracing; text: one line per event)");
  exp->add_option("trace", args->trace, "Trace file")->required();
  exp->add_option("--format", args->format, "Output format")
      ->check(CLI::IsMember({"chrome", "text"}))
      ->capture_default_str();
  exp->add_option("-o,--output", args->output, "Output file")->required();
  exp->callback([args, &exit_code] { exit_code = RunExport(*args); });
}

}  // namespace umbra::cli
