#include "campaign/report.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>

#include "umbra/campaign.pb.h"

namespace umbra::faultinject::campaign {
namespace {

using Counts = std::array<uint64_t, kOutcomeCount>;

proto::CampaignRun ToProto(const RunRecord& r) {
  proto::CampaignRun p;
  p.set_index(r.index);
  p.set_seed(r.seed);
  p.set_workload(r.workload);
  p.set_device(r.device);
  p.set_device_class(r.device_class);
  p.set_fault(std::string(FaultTypeName(r.fault)));
  p.set_site(r.site);
  p.set_plan(r.plan);
  p.set_mode(std::string(ModeName(r.mode)));
  p.set_outcome(std::string(OutcomeName(r.outcome)));
  p.set_injected(r.injected);
  p.set_detections(r.detections);
  p.set_restarts(r.restarts);
  for (const RecoveryFigures& f : r.recoveries) {
    auto* q = p.add_recoveries();
    q->set_reason(f.reason);
    q->set_detect_ns(f.detect_ns);
    q->set_restart_ns(f.restart_ns);
    q->set_replay_ns(f.replay_ns);
    q->set_gap_ns(f.gap_ns);
    q->set_attempts(f.attempts);
    q->set_succeeded(f.succeeded);
  }
  p.set_units(r.units);
  p.set_units_done(r.units_done);
  p.set_errors(r.errors);
  p.set_first_error(r.first_error);
  p.set_verified(r.verified);
  p.set_verification(r.verification);
  p.set_shadow_state(r.shadow_state);
  p.set_wall_ns(r.wall_ns);
  p.set_note(r.note);
  p.set_host_pid(r.host_pid);
  p.set_host_rss_kb(r.host_rss_kb);
  p.set_host_fds(r.host_fds);
  return p;
}

Result<RunRecord> FromProto(const proto::CampaignRun& p) {
  RunRecord r;
  r.index = p.index();
  r.seed = p.seed();
  r.workload = p.workload();
  r.device = p.device();
  r.device_class = p.device_class();
  auto fault = FindFaultType(p.fault());
  if (!fault) return Fail(Errc::kParse, "unknown fault '" + p.fault() + "'");
  r.fault = *fault;
  r.site = p.site();
  r.plan = p.plan();
  auto mode = FindMode(p.mode());
  if (!mode) return Fail(Errc::kParse, "unknown mode '" + p.mode() + "'");
  r.mode = *mode;
  auto outcome = FindOutcome(p.outcome());
  if (!outcome) return Fail(Errc::kParse, "unknown outcome '" + p.outcome() + "'");
  r.outcome = *outcome;
  r.injected = p.injected();
  r.detections = p.detections();
  r.restarts = p.restarts();
  for (const auto& q : p.recoveries()) {
    r.recoveries.push_back({.reason = q.reason(),
                            .detect_ns = q.detect_ns(),
                            .restart_ns = q.restart_ns(),
                            .replay_ns = q.replay_ns(),
                            .gap_ns = q.gap_ns(),
                            .attempts = q.attempts(),
                            .succeeded = q.succeeded()});
  }
  r.units = p.units();
  r.units_done = p.units_done();
  r.errors = p.errors();
  r.first_error = p.first_error();
  r.verified = p.verified();
  r.verification = p.verification();
  r.shadow_state = p.shadow_state();
  r.wall_ns = p.wall_ns();
  r.note = p.note();
  r.host_pid = p.host_pid();
  r.host_rss_kb = p.host_rss_kb();
  r.host_fds = p.host_fds();
  return r;
}

std::string CellText(const Counts& c) {
  std::string out;
  for (int o = 0; o < kOutcomeCount; ++o) {
    if (c[o] == 0) continue;
    if (!out.empty()) out += ' ';
    out += std::to_string(c[o]) + OutcomeLetter(static_cast<Outcome>(o));
  }
  return out.empty() ? "-" : out;
}

std::string Pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::vector<FaultType> FaultsPresent(const std::vector<RunRecord>& records) {
  std::vector<FaultType> out;
  for (FaultType t : AllFaultTypes()) {
    if (std::ranges::any_of(records, [t](const RunRecord& r) { return r.fault == t; })) out.push_back(t);
  }
  return out;
}

}  // namespace

std::string RecordToJson(const RunRecord& record) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(ToProto(record), &out, options);
  return out;
}

Result<RunRecord> RecordFromJson(std::string_view line) {
  proto::CampaignRun p;
  auto status = google::protobuf::util::JsonStringToMessage(std::string(line), &p);
  if (!status.ok()) return Fail(Errc::kParse, std::string(status.message()));
  return FromProto(p);
}

Result<std::vector<RunRecord>> ReadJsonLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Fail(Errc::kNotFound, path + ": cannot open");
  std::vector<RunRecord> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto r = RecordFromJson(line);
    if (!r) return Fail(Errc::kParse, path + ":" + std::to_string(n) + ": " + r.error().message);
    out.push_back(std::move(*r));
  }
  return out;
}

std::vector<RunRecord> MergeRecords(std::vector<RunRecord> records) {
  std::ranges::stable_sort(records, {}, &RunRecord::index);
  auto dup = std::ranges::unique(records, {}, &RunRecord::index);
  records.erase(dup.begin(), dup.end());
  return records;
}

std::string FormatSummary(const std::vector<RunRecord>& records) {
  const std::vector<FaultType> faults = FaultsPresent(records);
  std::map<std::string, std::map<FaultType, Counts>> cells;
  Counts total{};
  for (const RunRecord& r : records) {
    ++cells[r.workload][r.fault][static_cast<int>(r.outcome)];
    ++total[static_cast<int>(r.outcome)];
  }
  std::vector<size_t> widths;
  size_t first = std::string_view("WORKLOAD").size();
  for (const auto& [w, row] : cells) first = std::max(first, w.size());
  for (FaultType t : faults) {
    size_t width = FaultTypeName(t).size();
    for (const auto& [w, row] : cells) {
      auto it = row.find(t);
      if (it != row.end()) width = std::max(width, CellText(it->second).size());
    }
    widths.push_back(width);
  }
  std::string out = Pad("WORKLOAD", first);
  for (size_t i = 0; i < faults.size(); ++i) out += "  " + Pad(std::string(FaultTypeName(faults[i])), widths[i]);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  out += '\n';
  for (const auto& [w, row] : cells) {
    std::string line = Pad(w, first);
    for (size_t i = 0; i < faults.size(); ++i) {
      auto it = row.find(faults[i]);
      line += "  " + Pad(it == row.end() ? "-" : CellText(it->second), widths[i]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + '\n';
  }
  out += "runs " + std::to_string(records.size()) + ":";
  for (int o = 0; o < kOutcomeCount; ++o) {
    out += " " + std::to_string(total[o]) + " " + std::string(OutcomeName(static_cast<Outcome>(o)));
    out += o + 1 < kOutcomeCount ? "," : "";
  }
  out += "  (T transparent, E expected: a lie the class cannot see, M malfunction: a bug, F failed, C host crash)\n";
  return out;
}

std::string ReportJson(const std::vector<RunRecord>& records, uint64_t campaign_seed, std::string_view mode) {
  Counts total{};
  uint64_t injected = 0;
  std::map<std::string, std::map<FaultType, Counts>> cells;
  for (const RunRecord& r : records) {
    ++total[static_cast<int>(r.outcome)];
    ++cells[r.workload][r.fault][static_cast<int>(r.outcome)];
    injected += r.injected;
  }
  auto counts_json = [](const Counts& c) {
    std::string s = "{";
    for (int o = 0; o < kOutcomeCount; ++o) {
      s += (o ? "," : "") + std::string("\"") + std::string(OutcomeName(static_cast<Outcome>(o))) +
           "\":" + std::to_string(c[o]);
    }
    return s + "}";
  };
  std::string out = "{\"seed\":\"" + std::to_string(campaign_seed) + "\",\"mode\":\"" + std::string(mode) +
                    "\",\"runs\":" + std::to_string(records.size()) + ",\"injected\":" + std::to_string(injected) +
                    ",\"outcomes\":" + counts_json(total) + ",\"cells\":[";
  bool first = true;
  for (const auto& [w, row] : cells) {
    for (const auto& [t, c] : row) {
      out += (first ? "" : ",") + std::string("{\"workload\":\"") + w + "\",\"fault\":\"" +
             std::string(FaultTypeName(t)) + "\",\"outcomes\":" + counts_json(c) + "}";
      first = false;
    }
  }
  out += "],\"records\":[";
  for (size_t i = 0; i < records.size(); ++i) out += (i ? "," : "") + RecordToJson(records[i]);
  return out + "]}";
}

}  // namespace umbra::faultinject::campaign
