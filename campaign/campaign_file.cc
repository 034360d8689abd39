// Campaign files: proto/umbra/campaign.proto in protobuf text format.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

#include "campaign/campaign.h"
#include "umbra/campaign.pb.h"

namespace umbra::faultinject::campaign {
namespace {

namespace pb = google::protobuf;

// Keeps the first error with its position; the parser's messages already name
// an unknown field.
class FirstError : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (!message_.empty()) return;
    line_ = line;
    column_ = column;
    message_ = message;
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  bool failed() const { return !message_.empty(); }
  std::string Format(const std::string& file) const {
    return file + ":" + std::to_string(line_ + 1) + ":" + std::to_string(column_ + 1) + ": " + message_;
  }

 private:
  int line_ = 0;
  int column_ = 0;
  std::string message_;
};

// "FILE:LINE:COL: field 'NAME': what" for a value that parsed but is not allowed.
Error FieldError(const pb::TextFormat::ParseInfoTree& tree, const std::string& file, const char* field, int index,
                 const std::string& what) {
  const auto* desc = proto::Campaign::descriptor()->FindFieldByName(field);
  pb::TextFormat::ParseLocation loc = tree.GetLocation(desc, index);
  return Error{Errc::kParse, file + ":" + std::to_string(loc.line + 1) + ":" + std::to_string(loc.column + 1) +
                                 ": field '" + field + "': " + what};
}

}  // namespace

Result<CampaignConfig> ParseCampaignText(const std::string& text, const std::string& file_name) {
  proto::Campaign msg;
  pb::TextFormat::Parser parser;
  FirstError errors;
  pb::TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(text, &msg) || errors.failed()) {
    return Fail(Errc::kParse, errors.Format(file_name));
  }
  CampaignConfig c;
  for (const std::string& w : msg.workloads()) c.workloads.push_back(w);
  for (int i = 0; i < msg.faults_size(); ++i) {
    auto t = FindFaultType(msg.faults(i));
    if (!t) {
      return std::unexpected(FieldError(tree, file_name, "faults", i, "unknown fault type '" + msg.faults(i) + "'"));
    }
    c.faults.push_back(*t);
  }
  if (msg.runs_per_cell() > 0) c.runs_per_cell = msg.runs_per_cell();
  c.seed = msg.seed();
  c.jobs = msg.jobs();
  if (!msg.mode().empty()) {
    auto mode = FindMode(msg.mode());
    if (!mode) {
      return std::unexpected(
          FieldError(tree, file_name, "mode", -1, "unknown mode '" + msg.mode() + "' (shadow or restart-only)"));
    }
    c.mode = *mode;
  }
  c.units = msg.units();
  if (msg.restart_budget() > 0) c.run.restart_budget = msg.restart_budget();
  return c;
}

Result<CampaignConfig> LoadCampaignFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Fail(Errc::kNotFound, path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  return ParseCampaignText(text.str(), path);
}

std::string CampaignToText(const CampaignConfig& c) {
  proto::Campaign msg;
  for (const std::string& w : c.workloads) msg.add_workloads(w);
  for (FaultType t : c.faults) msg.add_faults(std::string(FaultTypeName(t)));
  msg.set_runs_per_cell(c.runs_per_cell);
  msg.set_seed(c.seed);
  msg.set_jobs(c.jobs);
  msg.set_mode(std::string(ModeName(c.mode)));
  msg.set_units(c.units);
  msg.set_restart_budget(c.run.restart_budget);
  std::string out;
  pb::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.PrintToString(msg, &out);
  return out;
}

}  // namespace umbra::faultinject::campaign
