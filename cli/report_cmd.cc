// `umbra report`: the recorder's analysis of one or more traces.
//
//   umbra report run.trace                       # tables: gap, detection, phases per fault
//   umbra report shard0.trace shard1.trace --json
//   umbra report run.trace --html report.html    # plots a person can read at a glance
//
// `umbra trace export` (trace_cmd.cc) shares the way traces are read here:
// a missing or unreadable file ends the command (66), a file that is not a
// trace too (65); a damaged trace is reported up to the damage, with a
// warning naming the byte offset, and the command then exits 65.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "recorder/analysis.h"
#include "recorder/export.h"
#include "recorder/trace_file.h"

namespace umbra::cli {

int ReadTraces(const char* command, const std::vector<std::string>& paths, std::vector<recorder::Trace>& traces) {
  int rc = kExitOk;
  for (const std::string& path : paths) {
    auto t = recorder::ReadTrace(path);
    if (!t && t.error().code == Errc::kParse) {
      std::fprintf(stderr, "umbra %s: %s is not an umbra trace: %s\n", command, path.c_str(),
                   t.error().message.c_str());
      return kExitDataErr;
    }
    if (!t) {
      std::fprintf(stderr, "umbra %s: %s\n", command, t.error().message.c_str());
      return kExitNoInput;
    }
    if (t->damage) {
      std::fprintf(stderr, "umbra %s: warning: %s (read up to byte %llu)\n", command, t->damage->message.c_str(),
                   static_cast<unsigned long long>(t->damage->offset));
      switch (t->damage->kind) {
        case recorder::DamageKind::kUnreadable:
        case recorder::DamageKind::kTrailing: rc = kExitDataErr; break;
        case recorder::DamageKind::kIncomplete: break;  // a writer that did not close: usable
      }
    }
    traces.push_back(std::move(*t));
  }
  return rc;
}

namespace {

struct ReportArgs {
  std::vector<std::string> traces;
  bool json = false;
  std::string html;
};

int RunReport(const ReportArgs& a) {
  std::vector<recorder::Trace> traces;
  const int read_rc = ReadTraces("report", a.traces, traces);
  if (traces.size() != a.traces.size()) return read_rc;
  auto report = recorder::Analyze(traces);
  if (!report) {
    std::fprintf(stderr, "umbra report: %s\n", report.error().message.c_str());
    return kExitSoftware;
  }
  std::cout << (a.json ? recorder::RenderJson(*report) : recorder::RenderText(*report));
  std::cout.flush();
  if (!a.html.empty()) {
    std::ofstream out(a.html, std::ios::trunc);
    if (!out) {
      std::fprintf(stderr, "umbra report: cannot create %s\n", a.html.c_str());
      return kExitCantCreate;
    }
    if (auto r = recorder::WriteHtmlReport(traces[0], *report, out); !r) {
      std::fprintf(stderr, "umbra report: %s\n", r.error().message.c_str());
      return kExitSoftware;
    }
    out.close();
    if (!out) {
      std::fprintf(stderr, "umbra report: writing %s failed\n", a.html.c_str());
      return kExitCantCreate;
    }
  }
  return read_rc;
}

}  // namespace

void AddReportCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Analyze recorder traces: recovery gap, detection and phases per fault, distributions");
  cmd->add_option("traces", args->traces, "Trace files (several are merged into one report)")->required();
  cmd->add_flag("--json", args->json, "Print the report as one JSON object");
  cmd->add_option("--html", args->html, "Also write a self-contained HTML report with plots to FILE");
  cmd->callback([args, &exit_code] { exit_code = RunReport(*args); });
}

}  // namespace umbra::cli
