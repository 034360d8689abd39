#include "cli/campaign_soak.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string_view>

#include "cli/commands.h"
#include "campaign/campaign.h"
#include "faultinject/plan.h"
#include "campaign/report.h"
#include "campaign/run.h"
#include "base/clock.h"

namespace umbra::cli {
namespace {

namespace fc = faultinject::campaign;

// The number after "key=" in a workload's verification text (the disk
// verifier says "lost=N misdirected=N corrupt=N"), or 0.
uint64_t CountIn(const std::string& text, std::string_view key) {
  const size_t at = text.find(std::string(key) + "=");
  if (at == std::string::npos) return 0;
  return std::strtoull(text.c_str() + at + key.size() + 1, nullptr, 10);
}

// First and last measurement of one process that ran runs.
struct HostLife {
  uint64_t runs = 0;
  uint64_t first_rss_kb = 0, last_rss_kb = 0;
  uint64_t first_fds = 0, last_fds = 0;
};

struct SoakTally {
  uint64_t runs = 0;
  uint64_t injected = 0;
  uint64_t unexpected = 0;
  uint64_t host_crashes = 0;
  uint64_t lost = 0;   // acknowledged writes that read back wrong
  uint64_t wrong = 0;  // misdirected or corrupt blocks
  uint64_t outcomes[fc::kOutcomeCount] = {};
  std::map<int64_t, HostLife> hosts;
  std::vector<fc::RunRecord> slim;  // what the outcome table needs, nothing more

  void Add(const fc::RunRecord& r) {
    ++runs;
    injected += r.injected;
    ++outcomes[static_cast<int>(r.outcome)];
    if (!fc::AsExpected(r.outcome, r.mode)) ++unexpected;
    if (r.outcome == fc::Outcome::kHostCrash) ++host_crashes;
    lost += CountIn(r.verification, "lost");
    wrong += CountIn(r.verification, "misdirected") + CountIn(r.verification, "corrupt");
    if (r.host_pid != 0) {
      HostLife& h = hosts[r.host_pid];
      if (h.runs++ == 0) {
        h.first_rss_kb = r.host_rss_kb;
        h.first_fds = r.host_fds;
      }
      h.last_rss_kb = r.host_rss_kb;
      h.last_fds = r.host_fds;
    }
    slim.push_back({.index = r.index, .workload = r.workload, .fault = r.fault, .mode = r.mode, .outcome = r.outcome});
  }
};

// The longest-lived host process: its growth over its runs says whether a
// host leaks; the largest growth of any is given beside it.
std::string GrowthText(const SoakTally& t) {
  if (t.hosts.empty()) return "host growth: not measured";
  const HostLife* longest = nullptr;
  int64_t max_rss = 0, max_fds = 0;
  for (const auto& [pid, h] : t.hosts) {
    if (!longest || h.runs > longest->runs) longest = &h;
    max_rss = std::max<int64_t>(max_rss, static_cast<int64_t>(h.last_rss_kb) - static_cast<int64_t>(h.first_rss_kb));
    max_fds = std::max<int64_t>(max_fds, static_cast<int64_t>(h.last_fds) - static_cast<int64_t>(h.first_fds));
  }
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "host growth over the longest-lived of %zu host processes (%llu runs): RSS %llu -> %llu KiB, "
                "descriptors %llu -> %llu; largest growth of any: %+lld KiB, %+lld descriptors",
                t.hosts.size(), static_cast<unsigned long long>(longest->runs),
                static_cast<unsigned long long>(longest->first_rss_kb),
                static_cast<unsigned long long>(longest->last_rss_kb),
                static_cast<unsigned long long>(longest->first_fds), static_cast<unsigned long long>(longest->last_fds),
                static_cast<long long>(max_rss), static_cast<long long>(max_fds));
  return buf;
}

void PrintSummary(const SoakTally& t, double seconds, uint32_t jobs, uint64_t rounds, bool json) {
  const double per_s = seconds > 0 ? static_cast<double>(t.injected) / seconds : 0;
  if (json) {
    std::printf("{\"runs\":%llu,\"rounds\":%llu,\"faults_injected\":%llu,\"seconds\":%.3f,\"faults_per_second\":%.2f,"
                "\"faults_per_second_per_job\":%.2f,\"unexpected\":%llu,\"host_crashes\":%llu,"
                "\"lost_acknowledged_writes\":%llu,\"wrong_blocks\":%llu,\"host_processes\":%zu}\n",
                static_cast<unsigned long long>(t.runs), static_cast<unsigned long long>(rounds),
                static_cast<unsigned long long>(t.injected), seconds, per_s, per_s / jobs,
                static_cast<unsigned long long>(t.unexpected), static_cast<unsigned long long>(t.host_crashes),
                static_cast<unsigned long long>(t.lost), static_cast<unsigned long long>(t.wrong), t.hosts.size());
    return;
  }
  std::fputs(fc::FormatSummary(t.slim).c_str(), stdout);
  std::printf(
      "soak: %llu runs in %llu round(s), %llu faults injected in %.1f s: %.1f faults/s (%.1f per job, %u jobs)\n"
      "  not as expected: %llu; host crashes: %llu; acknowledged writes lost: %llu; wrong blocks: %llu\n  %s\n",
      static_cast<unsigned long long>(t.runs), static_cast<unsigned long long>(rounds),
      static_cast<unsigned long long>(t.injected), seconds, per_s, per_s / jobs, jobs,
      static_cast<unsigned long long>(t.unexpected), static_cast<unsigned long long>(t.host_crashes),
      static_cast<unsigned long long>(t.lost), static_cast<unsigned long long>(t.wrong), GrowthText(t).c_str());
}

}  // namespace

int64_t ParseDuration(const std::string& text) {
  if (text.empty()) return -1;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || v <= 0) return -1;
  const std::string unit(end);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1;
  else if (unit == "m")
    scale = 60;
  else if (unit == "h")
    scale = 3600;
  else if (unit == "d")
    scale = 86400;
  else
    return -1;
  return static_cast<int64_t>(v * scale * 1e9);
}

int RunSoak(const fc::WorkloadRegistry& registry, fc::CampaignConfig config, const SoakOptions& o) {
  const int64_t start = MonotonicNanos();
  config.deadline_ns = start + o.duration_ns;
  // Rounds of at least kRunsPerJob runs per job: with isolated runs a
  // round's workers are new processes, and a leak needs runs to show.
  constexpr uint64_t kRunsPerJob = 200;
  const uint64_t cells = std::max<size_t>(1, fc::ShardRuns(config).size() / std::max(1u, config.runs_per_cell));
  const uint64_t want = kRunsPerJob * std::max(1u, config.jobs);
  config.runs_per_cell = std::max<uint32_t>(config.runs_per_cell, static_cast<uint32_t>((want + cells - 1) / cells));
  const uint64_t per_round = fc::ShardRuns(config).size();
  const bool progress = isatty(STDERR_FILENO);
  std::fprintf(stderr, "soak seed %llu for %.0f s: rounds of %llu runs, %u jobs%s\n",
               static_cast<unsigned long long>(config.seed), static_cast<double>(o.duration_ns) / 1e9,
               static_cast<unsigned long long>(per_round), config.jobs, o.isolate ? ", runs isolated" : "");
  SoakTally tally;
  uint64_t round = 0;
  for (; MonotonicNanos() < config.deadline_ns; ++round) {
    fc::CampaignConfig c = config;
    c.seed = fc::RunSeed(config.seed, round);
    auto on_record = [&](const fc::RunRecord& in) {
      fc::RunRecord r = in;
      r.index += round * per_round;
      tally.Add(r);
      if (o.jsonl) {
        std::fprintf(o.jsonl, "%s\n", fc::RecordToJson(r).c_str());
        std::fflush(o.jsonl);
      }
      if (progress) {
        const double s = static_cast<double>(MonotonicNanos() - start) / 1e9;
        std::fprintf(stderr, "\r%.0f s: %llu runs, %llu faults (%.1f/s), %llu not as expected, %llu host crashes ", s,
                     static_cast<unsigned long long>(tally.runs), static_cast<unsigned long long>(tally.injected),
                     static_cast<double>(tally.injected) / std::max(s, 1e-3),
                     static_cast<unsigned long long>(tally.unexpected),
                     static_cast<unsigned long long>(tally.host_crashes));
      }
    };
    if (o.isolate) {
      auto r = fc::RunIsolated(c, o.worker_argv, on_record);
      if (!r) {
        std::fprintf(stderr, "umbra campaign: %s\n", r.error().message.c_str());
        return kExitSoftware;
      }
    } else {
      (void)fc::RunInProcess(registry, c, on_record);
    }
  }
  if (progress) std::fputc('\n', stderr);
  PrintSummary(tally, static_cast<double>(MonotonicNanos() - start) / 1e9, std::max(1u, config.jobs), round, o.json);
  return tally.unexpected == 0 && tally.lost == 0 && tally.wrong == 0 ? kExitOk : kExitNotRecovered;
}

}  // namespace umbra::cli
