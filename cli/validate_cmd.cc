// `umbra validate FILE`: checks a machine file or a campaign file and prints
// OK, or the error (FILE:LINE:COLUMN: field: message) and nothing else. A
// machine is checked for everything `umbra run` would refuse or leave undone
// (machine/machine_check.h): recovery settings out of range, shadow
// settings its class does not take, a compatible no driver matches, a setting
// its hardware does not know.
//
// Exit codes: 0 valid; 65 the file does not parse (syntax, unknown field);
// 66 no such file; 78 it parses but is refused (a cycle, an unknown bus, an
// unknown fault type ...). Also the loader `tree` and `run` share.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "campaign/campaign.h"
#include "machine/machine_check.h"
#include "runtime/model/machine.h"
#include "umbra/campaign.pb.h"
#include "umbra/machine.pb.h"

namespace umbra::cli {
namespace {

namespace gpb = google::protobuf;

class Silent : public gpb::io::ErrorCollector {
 public:
  void AddError(int, int, const std::string&) override {}
  void AddWarning(int, int, const std::string&) override {}
};

bool LooksJson(const std::string& path, const std::string& content) {
  if (path.ends_with(".json")) return true;
  for (char c : content) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    return c == '{';
  }
  return false;
}

// Whether `content` parses as a `Message`, before any semantic check.
template <class Message>
bool ParsesAs(const std::string& content, bool json) {
  Message m;
  if (json) return gpb::util::JsonStringToMessage(content, &m).ok();
  gpb::TextFormat::Parser parser;
  Silent silent;
  parser.RecordErrorsTo(&silent);
  return parser.ParseFromString(content, &m);
}

enum class FileKind { kMachine, kCampaign, kEmpty };

FileKind Guess(const std::string& content, bool json) {
  const bool machine = ParsesAs<proto::Machine>(content, json);
  const bool campaign = !json && ParsesAs<proto::Campaign>(content, false);
  if (machine && campaign) return FileKind::kEmpty;  // only fields neither has: nothing at all
  if (machine) return FileKind::kMachine;
  if (campaign) return FileKind::kCampaign;
  if (json) return FileKind::kMachine;
  for (const char* word : {"devices", "buses", "drivers", "links", "settings"}) {
    if (content.find(word) != std::string::npos) return FileKind::kMachine;
  }
  for (const char* word : {"workloads", "faults", "runs_per_cell", "seed", "mode"}) {
    if (content.find(word) != std::string::npos) return FileKind::kCampaign;
  }
  return FileKind::kMachine;
}

Result<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Fail(Errc::kNotFound, path + ": no such file");
  if (std::filesystem::is_directory(path, ec)) return Fail(Errc::kInvalidArgument, path + ": is a directory");
  std::ifstream in(path);
  if (!in) return Fail(Errc::kNotFound, path + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// 65 when the text does not parse as `Message`, 78 when it parses and was refused.
template <class Message>
int ExitCodeFor(const std::string& content, bool json) {
  return ParsesAs<Message>(content, json) ? kExitConfig : kExitDataErr;
}

int Validate(const std::string& path) {
  auto content = ReadFile(path);
  if (!content) {
    std::fprintf(stderr, "%s\n", content.error().message.c_str());
    return content.error().code == Errc::kNotFound ? kExitNoInput : kExitDataErr;
  }
  const bool json = LooksJson(path, *content);
  switch (Guess(*content, json)) {
    case FileKind::kEmpty:
      std::fprintf(stderr, "%s: empty: neither a machine (buses, devices ...) nor a campaign (workloads, faults ...)\n",
                   path.c_str());
      return kExitDataErr;
    case FileKind::kMachine: {
      auto m = model::ParseMachine(*content, path, model::MachineFormat::kAuto, machine::BuiltinMachineCheck());
      if (!m) {
        std::fprintf(stderr, "%s\n", m.error().message.c_str());
        return ExitCodeFor<proto::Machine>(*content, json);
      }
      break;
    }
    case FileKind::kCampaign: {
      auto c = faultinject::campaign::ParseCampaignText(*content, path);
      if (!c) {
        std::fprintf(stderr, "%s\n", c.error().message.c_str());
        return ExitCodeFor<proto::Campaign>(*content, false);
      }
      break;
    }
  }
  std::printf("OK\n");
  return kExitOk;
}

}  // namespace

int LoadMachineFile(const std::string& command, const std::string& path, std::unique_ptr<proto::Machine>& out,
                    MachineChecks checks) {
  auto content = ReadFile(path);
  if (!content) {
    std::fprintf(stderr, "umbra %s: %s\n", command.c_str(), content.error().message.c_str());
    return content.error().code == Errc::kNotFound ? kExitNoInput : kExitDataErr;
  }
  model::MachineCheck check;
  switch (checks) {
    case MachineChecks::kModel: break;
    case MachineChecks::kRunnable: check = machine::BuiltinMachineCheck(); break;
  }
  auto m = model::ParseMachine(*content, path, model::MachineFormat::kAuto, check);
  if (!m) {
    std::fprintf(stderr, "umbra %s: %s\n", command.c_str(), m.error().message.c_str());
    return ExitCodeFor<proto::Machine>(*content, LooksJson(path, *content));
  }
  out = std::move(*m);
  return kExitOk;
}

void AddValidateCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("validate", "Check a machine or campaign file: print OK or the errors");
  auto path = std::make_shared<std::string>();
  cmd->add_option("FILE", *path, "A machine file (.textproto or .json) or a campaign file")->required();
  cmd->footer("Exit codes: 0 OK, 65 does not parse, 66 no such file, 78 parses but is refused (cycle, unknown bus,\n"
              "a compatible no driver matches, a shadow or hardware setting that does not exist ...).\n"
              "Examples:\n  umbra validate examples/machines/echo-links.textproto\n"
              "  umbra validate examples/campaigns/echo-failstop.textproto");
  cmd->callback([path, &exit_code] { exit_code = Validate(*path); });
}

}  // namespace umbra::cli
