// `umbra campaign`: fault-injection campaigns over shadowed devices.
//
//   umbra campaign --workload echo-stream --fault segfault,sigkill --runs 20 --seed 7
//   umbra campaign examples/campaigns/echo.textproto --jsonl runs.jsonl
//   umbra campaign --shard 0/2 --jsonl a.jsonl ...; umbra campaign --merge a.jsonl b.jsonl
//   umbra campaign --replay SEED --workload echo-stream --fault segfault [--shrink]
//   umbra campaign --workload echo-stream --runs 5 --trace runs.trace; umbra report runs.trace
//   umbra campaign FILE --slurm --shards 8 --out /shared/c1; umbra campaign --collect /shared/c1
//
// Runs go to worker processes (`umbra campaign-worker`, hidden) unless
// --no-isolate-runs, so that a run that brings its process down is recorded
// as a host crash instead of ending the campaign.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/campaign_cluster.h"
#include "cli/campaign_soak.h"
#include "cli/commands.h"
#include "campaign/campaign.h"
#include "campaign/report.h"
#include "campaign/trace.h"
#include "recorder/recorder.h"
#include "base/clock.h"

namespace umbra::cli {
namespace {

namespace fc = faultinject::campaign;

struct CampaignArgs {
  std::string file;
  std::vector<std::string> workloads;
  std::vector<std::string> faults;
  uint32_t runs = 0;
  std::string seed;
  uint32_t jobs = 0;
  std::string shard;
  std::string mode;
  uint64_t units = 0;
  uint32_t restart_budget = 0;
  std::string replay;
  std::string plan;
  bool shrink = false;
  bool json = false;
  std::string jsonl;
  std::vector<std::string> merge;
  bool isolate = true;
  std::string trace;
  bool slurm = false;  // submit as a Slurm job array (campaign_cluster.h)
  ClusterSubmit cluster;
  std::string collect;  // merge a campaign folder's shards
  std::string soak;     // run rounds until this duration is over
  bool recheck = true;
};

struct WorkerArgs {
  std::string config;
  std::string worker;
  int64_t after = -1;
  std::string shard = "0/1";
  std::string trace;
  int64_t deadline_ns = 0;
};

int Usage(const std::string& message) {
  std::fprintf(stderr, "umbra campaign: %s\n", message.c_str());
  return kExitUsage;
}

int InputError(const Error& e) {
  std::fprintf(stderr, "umbra campaign: %s\n", e.message.c_str());
  return e.code == Errc::kNotFound ? kExitNoInput : kExitDataErr;
}

bool ParseU64(const std::string& s, uint64_t& out) {
  try {
    size_t used = 0;
    out = std::stoull(s, &used, 0);
    return used == s.size() && s[0] != '-';
  } catch (const std::exception&) {
    return false;
  }
}

std::string SelfPath() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// Fills `c` from a campaign file (if any), then the flags over it.
int BuildConfig(const CampaignArgs& a, const fc::WorkloadRegistry& registry, fc::CampaignConfig& c) {
  if (!a.file.empty()) {
    auto loaded = fc::LoadCampaignFile(a.file);
    if (!loaded) return InputError(loaded.error());
    c = *loaded;
  }
  if (!a.workloads.empty()) c.workloads = a.workloads;
  if (!a.faults.empty()) {
    c.faults.clear();
    for (const std::string& f : a.faults) {
      auto t = fc::FindFaultType(f);
      if (!t) return Usage("unknown fault type '" + f + "'");
      c.faults.push_back(*t);
    }
  }
  if (a.runs) c.runs_per_cell = a.runs;
  if (a.jobs) c.jobs = a.jobs;
  if (a.units) c.units = a.units;
  if (a.restart_budget) c.run.restart_budget = a.restart_budget;
  if (!a.mode.empty()) {
    auto m = fc::FindMode(a.mode);
    if (!m) return Usage("unknown mode '" + a.mode + "' (shadow or restart-only)");
    c.mode = *m;
  }
  if (!a.seed.empty() && !ParseU64(a.seed, c.seed)) return Usage("bad seed '" + a.seed + "'");
  if (a.seed.empty() && c.seed == 0) c.seed = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
  if (!a.shard.empty()) {
    unsigned i = 0, n = 0;
    char slash = 0;
    if (std::sscanf(a.shard.c_str(), "%u%c%u", &i, &slash, &n) != 3 || slash != '/' || n == 0 || i >= n) {
      return Usage("bad shard '" + a.shard + "' (want i/N with i < N)");
    }
    c.shard_index = i;
    c.shard_count = n;
  }
  if (auto r = fc::Resolve(registry, c); !r) return Usage(r.error().message);
  return kExitOk;
}

void PrintUnexpected(const fc::RunRecord& r) {
  std::printf("run %llu seed %llu %s/%s at %s: %s%s%s\n  replay: umbra campaign %s\n",
              static_cast<unsigned long long>(r.index), static_cast<unsigned long long>(r.seed), r.workload.c_str(),
              std::string(fc::FaultTypeName(r.fault)).c_str(), r.site.c_str(),
              std::string(fc::OutcomeName(r.outcome)).c_str(),
              r.first_error.empty() ? "" : (": " + r.first_error).c_str(),
              r.note.empty() ? "" : (" (" + r.note + ")").c_str(), fc::ReplayArgs(r).c_str());
}

struct Rechecks {
  size_t runs = 0;
  size_t reproduced = 0;
};

// Runs an unexpected run once more, in this process, from its seed, and says
// whether the outcome came again: a run that does not reproduce is timing-
// dependent, and its cell is flaky rather than clean. Host crashes are not
// replayed here (they would end this process).
void Recheck(const fc::WorkloadRegistry& registry, const fc::CampaignConfig& c, const fc::RunRecord& r, Rechecks& out) {
  if (r.outcome == fc::Outcome::kHostCrash) return;
  const fc::RunSpec spec{
      .index = r.index, .seed = r.seed, .workload = r.workload, .fault = r.fault, .mode = r.mode, .units = c.units};
  auto again = fc::RunOne(registry, spec, c.run);
  ++out.runs;
  if (!again) {
    std::printf("  replayed: could not run: %s\n", again.error().message.c_str());
    return;
  }
  if (again->outcome == r.outcome) {
    ++out.reproduced;
    std::printf("  replayed: %s again (reproducible)\n", std::string(fc::OutcomeName(again->outcome)).c_str());
    return;
  }
  std::printf("  replayed: %s: DID NOT REPRODUCE (timing-dependent; the cell is flaky)\n",
              std::string(fc::OutcomeName(again->outcome)).c_str());
}

void PrintRecord(const fc::RunRecord& r) {
  std::printf("run seed %llu: %s/%s, mode %s\n  plan: %s\n  outcome: %s (%llu faults injected, %llu detected, "
              "%llu restarts)\n  verification: %s%s\n",
              static_cast<unsigned long long>(r.seed), r.workload.c_str(),
              std::string(fc::FaultTypeName(r.fault)).c_str(), std::string(fc::ModeName(r.mode)).c_str(),
              r.plan.c_str(), std::string(fc::OutcomeName(r.outcome)).c_str(),
              static_cast<unsigned long long>(r.injected), static_cast<unsigned long long>(r.detections),
              static_cast<unsigned long long>(r.restarts), r.verification.c_str(),
              r.first_error.empty() ? "" : ("\n  first error: " + r.first_error).c_str());
  for (const auto& f : r.recoveries) {
    const std::string detect = f.detect_ns < 0 ? "n/a" : std::to_string(f.detect_ns / 1e6) + " ms";
    std::printf("  recovery (%s): detect %s, restart %.3f ms, replay %.3f ms, gap %.3f ms, %u attempt(s)%s\n",
                f.reason.c_str(), detect.c_str(), f.restart_ns / 1e6, f.replay_ns / 1e6, f.gap_ns / 1e6, f.attempts,
                f.succeeded ? "" : ", failed");
  }
}

// --trace FILE: a recorder for the runs of this process (a worker's part when
// `worker` is set), handed to the engine through RunOptions::recorder.
int OpenTrace(const std::string& path, fc::CampaignConfig& c, std::unique_ptr<recorder::Recorder>& rec) {
  if (path.empty()) return kExitOk;
  auto r = recorder::Recorder::Create({.path = path});
  if (!r) {
    std::fprintf(stderr, "umbra campaign: %s\n", r.error().message.c_str());
    return kExitCantCreate;
  }
  rec = std::move(*r);
  c.run.recorder = rec.get();
  return kExitOk;
}

int CloseTrace(const std::string& path, std::unique_ptr<recorder::Recorder>& rec) {
  if (!rec) return kExitOk;
  if (auto r = rec->Close(); !r) {
    std::fprintf(stderr, "umbra campaign: trace %s: %s\n", path.c_str(), r.error().message.c_str());
    return kExitCantCreate;
  }
  return kExitOk;
}

// After isolated runs: the workers' parts become one trace.
int CollectTrace(const std::string& path) {
  auto t = fc::CollectTraceParts(path);
  if (!t) {
    std::fprintf(stderr, "umbra campaign: trace %s: %s\n", path.c_str(), t.error().message.c_str());
    return kExitCantCreate;
  }
  for (const std::string& w : t->warnings) std::fprintf(stderr, "umbra campaign: warning: %s\n", w.c_str());
  std::fprintf(stderr, "trace %s: %zu events from %zu worker(s)\n", path.c_str(), t->events, t->parts);
  return kExitOk;
}

int Replay(const CampaignArgs& a, const fc::WorkloadRegistry& registry, fc::CampaignConfig c) {
  if (c.workloads.size() != 1 || c.faults.size() != 1) {
    return Usage("--replay needs exactly one --workload and one --fault");
  }
  fc::RunSpec spec{.seed = 0, .workload = c.workloads[0], .fault = c.faults[0], .mode = c.mode, .units = c.units};
  if (!ParseU64(a.replay, spec.seed)) return Usage("bad seed '" + a.replay + "'");
  if (!a.plan.empty()) {
    auto plan = fc::ParsePlan(a.plan);
    if (!plan) return InputError(plan.error());
    spec.plan = *plan;
  }
  std::unique_ptr<recorder::Recorder> trace;
  if (int rc = OpenTrace(a.trace, c, trace); rc != kExitOk) return rc;
  auto rec = fc::RunOne(registry, spec, c.run);
  c.run.recorder = nullptr;
  (void)CloseTrace(a.trace, trace);
  if (!rec) {
    std::fprintf(stderr, "umbra campaign: %s\n", rec.error().message.c_str());
    return kExitSoftware;
  }
  if (a.json)
    std::printf("%s\n", fc::RecordToJson(*rec).c_str());
  else
    PrintRecord(*rec);
  if (!a.shrink || fc::AsExpected(rec->outcome, c.mode))
    return fc::AsExpected(rec->outcome, c.mode) ? kExitOk : kExitNotRecovered;
  auto shrunk = fc::Shrink(registry, spec, c.run, rec->outcome);
  if (!shrunk) {
    std::printf("shrink: %s\n", shrunk.error().message.c_str());
    return kExitNotRecovered;
  }
  std::printf("shrunk in %d runs to: %s\n  replay: umbra campaign %s --plan '%s'\n", shrunk->attempts,
              fc::FormatPlan(shrunk->plan).c_str(), fc::ReplayArgs(shrunk->record).c_str(),
              fc::FormatPlan(shrunk->plan).c_str());
  return kExitNotRecovered;
}

int Merge(const CampaignArgs& a) {
  std::vector<fc::RunRecord> all;
  for (const std::string& path : a.merge) {
    auto recs = fc::ReadJsonLines(path);
    if (!recs) return InputError(recs.error());
    all.insert(all.end(), recs->begin(), recs->end());
  }
  all = fc::MergeRecords(std::move(all));
  const auto mode = all.empty() ? shadows::RecoveryMode::kShadow : all[0].mode;
  if (a.json) {
    std::printf("%s\n", fc::ReportJson(all, 0, fc::ModeName(mode)).c_str());
  } else {
    std::fputs(fc::FormatSummary(all).c_str(), stdout);
  }
  for (const auto& r : all) {
    if (!fc::AsExpected(r.outcome, r.mode)) return kExitNotRecovered;
  }
  return kExitOk;
}

// The --jsonl file, closed when it goes out of scope; empty without --jsonl.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using JsonlFile = std::unique_ptr<std::FILE, FileCloser>;

// Opens `path` for writing into `out` (nothing when `path` is empty); false
// when it cannot be created.
bool OpenJsonl(const std::string& path, JsonlFile& out) {
  if (path.empty()) return true;
  out.reset(std::fopen(path.c_str(), "w"));
  return out != nullptr;
}

int Soak(const CampaignArgs& a, const fc::WorkloadRegistry& registry, const fc::CampaignConfig& c) {
  SoakOptions o{.duration_ns = ParseDuration(a.soak),
                .isolate = a.isolate,
                .worker_argv = {SelfPath(), "campaign-worker"},
                .json = a.json};
  if (o.duration_ns <= 0) return Usage("bad --soak '" + a.soak + "' (want e.g. 90s, 30m, 12h)");
  if (!a.trace.empty()) return Usage("--soak does not record a trace (it would grow without bound)");
  JsonlFile jsonl;
  if (!OpenJsonl(a.jsonl, jsonl)) return Usage("cannot write " + a.jsonl);
  o.jsonl = jsonl.get();
  return RunSoak(registry, c, o);
}

// After the table: every unexpected run with its replay command (rechecked
// unless --no-recheck), the first one shrunk with --shrink. Exit 0 only when
// every run is as the mode promises.
int Conclude(const CampaignArgs& a, const fc::WorkloadRegistry& registry, const fc::CampaignConfig& c,
             const std::vector<fc::RunRecord>& records) {
  int rc = kExitOk;
  const fc::RunRecord* first_bad = nullptr;
  Rechecks rechecks;
  for (const auto& r : records) {
    if (fc::AsExpected(r.outcome, c.mode)) continue;
    rc = kExitNotRecovered;
    if (!first_bad) first_bad = &r;
    if (a.json) continue;
    PrintUnexpected(r);
    if (a.recheck) Recheck(registry, c, r, rechecks);
  }
  if (!a.json && a.recheck && rechecks.runs > 0) {
    std::printf("replayed %zu unexpected run(s): %zu reproduced, %zu did not (timing-dependent: flaky)\n",
                rechecks.runs, rechecks.reproduced, rechecks.runs - rechecks.reproduced);
  }
  if (a.shrink && first_bad && first_bad->outcome != fc::Outcome::kHostCrash) {
    fc::RunSpec spec{.index = first_bad->index,
                     .seed = first_bad->seed,
                     .workload = first_bad->workload,
                     .fault = first_bad->fault,
                     .mode = c.mode,
                     .units = c.units};
    auto shrunk = fc::Shrink(registry, spec, c.run, first_bad->outcome);
    if (shrunk) {
      std::printf("run %llu shrunk in %d runs to: %s\n", static_cast<unsigned long long>(first_bad->index),
                  shrunk->attempts, fc::FormatPlan(shrunk->plan).c_str());
    } else {
      std::printf("run %llu: %s\n", static_cast<unsigned long long>(first_bad->index), shrunk.error().message.c_str());
    }
  }
  return rc;
}

int RunCampaign(const CampaignArgs& a) {
  spdlog::set_level(spdlog::level::off);
  fc::WorkloadRegistry registry;
  (void)fc::RegisterBuiltinWorkloads(registry);
  if (!a.merge.empty()) return Merge(a);
  if (!a.collect.empty()) return CollectShards(a.collect, a.json);
  fc::CampaignConfig c;
  if (int rc = BuildConfig(a, registry, c); rc != kExitOk) return rc;
  if (!a.replay.empty()) return Replay(a, registry, c);
  if (a.slurm) {
    if (!a.shard.empty()) return Usage("--slurm makes the shards itself; leave out --shard");
    ClusterSubmit s = a.cluster;
    s.umbra_binary = SelfPath();
    if (s.out_dir.empty()) s.out_dir = "umbra-campaign-" + std::to_string(c.seed);
    return SubmitToSlurm(c, s);
  }
  if (!a.plan.empty()) return Usage("--plan goes with --replay");
  if (!a.soak.empty()) return Soak(a, registry, c);

  JsonlFile jsonl;
  if (!OpenJsonl(a.jsonl, jsonl)) return Usage("cannot write " + a.jsonl);
  const size_t total = fc::ShardRuns(c).size();
  const bool progress = isatty(STDERR_FILENO);
  std::fprintf(stderr, "campaign seed %llu: %zu runs (shard %u/%u), %u jobs, mode %s%s\n",
               static_cast<unsigned long long>(c.seed), total, c.shard_index, c.shard_count, c.jobs,
               std::string(fc::ModeName(c.mode)).c_str(), a.isolate ? ", runs isolated" : "");
  size_t done = 0;
  uint64_t injected = 0;
  uint64_t outcomes[fc::kOutcomeCount] = {};
  const int64_t start = MonotonicNanos();
  auto on_record = [&](const fc::RunRecord& r) {
    ++done;
    injected += r.injected;
    ++outcomes[static_cast<int>(r.outcome)];
    if (jsonl) {
      // Flushed per run: a campaign that dies loses at most the run in progress.
      std::fprintf(jsonl.get(), "%s\n", fc::RecordToJson(r).c_str());
      std::fflush(jsonl.get());
    }
    if (progress) {
      std::fprintf(stderr, "\r%zu/%zu runs, %llu faults injected:", done, total,
                   static_cast<unsigned long long>(injected));
      for (int o = 0; o < fc::kOutcomeCount; ++o) {
        std::fprintf(stderr, " %llu %c", static_cast<unsigned long long>(outcomes[o]),
                     fc::OutcomeLetter(static_cast<fc::Outcome>(o)));
      }
    }
  };
  std::vector<fc::RunRecord> records;
  if (a.isolate) {
    std::vector<std::string> worker_argv = {SelfPath(), "campaign-worker"};
    if (!a.trace.empty()) worker_argv.insert(worker_argv.end(), {"--trace", a.trace});
    auto r = fc::RunIsolated(c, worker_argv, on_record);
    if (!r) {
      std::fprintf(stderr, "umbra campaign: %s\n", r.error().message.c_str());
      return kExitSoftware;
    }
    records = std::move(*r);
    if (!a.trace.empty() && CollectTrace(a.trace) != kExitOk) return kExitCantCreate;
  } else {
    std::unique_ptr<recorder::Recorder> trace;
    if (int rc = OpenTrace(a.trace, c, trace); rc != kExitOk) return rc;
    records = fc::MergeRecords(fc::RunInProcess(registry, c, on_record));
    c.run.recorder = nullptr;
    if (CloseTrace(a.trace, trace) != kExitOk) return kExitCantCreate;
  }
  const double seconds = static_cast<double>(MonotonicNanos() - start) / 1e9;
  if (progress) std::fputc('\n', stderr);
  jsonl.reset();
  std::fprintf(stderr, "%zu runs, %llu faults injected in %.2f s: %.1f faults/s, %.2f ms per run\n", records.size(),
               static_cast<unsigned long long>(injected), seconds, static_cast<double>(injected) / seconds,
               records.empty() ? 0.0 : seconds * 1e3 / static_cast<double>(records.size()));
  if (a.json) {
    std::printf("%s\n", fc::ReportJson(records, c.seed, fc::ModeName(c.mode)).c_str());
  } else {
    std::fputs(fc::FormatSummary(records).c_str(), stdout);
  }
  return Conclude(a, registry, c, records);
}

int RunWorkerCommand(const WorkerArgs& w) {
  spdlog::set_level(spdlog::level::off);
  fc::WorkloadRegistry registry;
  (void)fc::RegisterBuiltinWorkloads(registry);
  auto c = fc::ParseCampaignText(w.config, "--config");
  if (!c) return InputError(c.error());
  unsigned k = 0, jobs = 0;
  char slash = 0;
  if (std::sscanf(w.worker.c_str(), "%u%c%u", &k, &slash, &jobs) != 3 || slash != '/' || jobs == 0 || k >= jobs) {
    return Usage("bad --worker '" + w.worker + "'");
  }
  unsigned si = 0, sn = 0;
  if (std::sscanf(w.shard.c_str(), "%u%c%u", &si, &slash, &sn) != 3 || slash != '/' || sn == 0 || si >= sn) {
    return Usage("bad --shard '" + w.shard + "'");
  }
  c->shard_index = si;
  c->shard_count = sn;
  c->deadline_ns = w.deadline_ns;
  if (auto r = fc::Resolve(registry, *c); !r) return Usage(r.error().message);
  const std::string part = w.trace.empty() ? "" : fc::TracePartPath(w.trace, k);
  std::unique_ptr<recorder::Recorder> trace;
  if (int rc = OpenTrace(part, *c, trace); rc != kExitOk) return rc;
  std::fflush(stdout);
  const int rc = fc::RunWorker(registry, *c, k, jobs, w.after, STDOUT_FILENO);
  c->run.recorder = nullptr;
  (void)CloseTrace(part, trace);
  return rc;
}

std::vector<std::string> SplitCommas(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const std::string& s : in) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(',', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) out.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  return out;
}

}  // namespace

void AddCampaignCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CampaignArgs>();
  CLI::App* cmd = app.add_subcommand("campaign", "Run a fault-injection campaign and print what applications saw");
  cmd->add_option("file", args->file, "Campaign file (protobuf text, proto/umbra/campaign.proto)");
  cmd->add_option("-w,--workload", args->workloads, "Workloads (comma-separated; default: all)");
  cmd->add_option("-f,--fault", args->faults, "Fault types (comma-separated; default: all)");
  cmd->add_option("-n,--runs", args->runs, "Runs per (workload, fault) cell (default 10)");
  cmd->add_option("--seed", args->seed, "Campaign seed (default: random, printed)");
  cmd->add_option("-j,--jobs", args->jobs, "Parallel runs (default: number of cores)");
  cmd->add_option("--shard", args->shard, "Run only the runs with index % N == i (i/N)");
  cmd->add_option("--mode", args->mode, "shadow (default) or restart-only");
  cmd->add_option("--units", args->units, "Units of work per run (default: the workload's)");
  cmd->add_option("--restart-budget", args->restart_budget, "Driver restarts allowed per 10 s (default 50)");
  cmd->add_option("--replay", args->replay, "Re-run the one run with this seed (with --workload and --fault)");
  cmd->add_option("--plan", args->plan, "With --replay: this fault plan instead of the seed's");
  cmd->add_flag("--shrink", args->shrink, "Shrink a failing run's fault plan and print the minimal one");
  cmd->add_flag("--json", args->json, "Print the report as one JSON object");
  cmd->add_option("--jsonl", args->jsonl, "Write one JSON object per run to this file");
  cmd->add_option("--merge", args->merge, "Merge JSON-lines files of shards into one report")->expected(1, -1);
  cmd->add_flag("--isolate-runs,!--no-isolate-runs", args->isolate,
                "Run in worker processes so a host crash is recorded (default on)");
  cmd->add_flag("--recheck,!--no-recheck", args->recheck,
                "Replay each unexpected run once and say whether it reproduced (default on)");
  cmd->add_option("--trace", args->trace, "Record every run into this trace file (then: umbra report FILE)");
  cmd->add_flag("--slurm", args->slurm,
                "Submit as a Slurm job array of shards plus a merge job (see docs/fault-injection.md)");
  cmd->add_option("--shards", args->cluster.shards, "With --slurm: number of shards (default 4)");
  cmd->add_option("--partition", args->cluster.partition, "With --slurm: the Slurm partition");
  cmd->add_option("--out", args->cluster.out_dir,
                  "With --slurm: the campaign folder, shared by the nodes (default umbra-campaign-SEED)");
  cmd->add_flag("!--no-submit", args->cluster.submit, "With --slurm: write the job scripts, do not submit them");
  cmd->add_option("--collect", args->collect, "Merge the shards of a campaign folder made by --slurm");
  cmd->add_option("--soak", args->soak,
                  "Keep drawing runs for this long (90s, 30m, 12h), then report faults/s, crashes, lost data, growth");
  cmd->callback([args, &exit_code] {
    args->workloads = SplitCommas(args->workloads);
    args->faults = SplitCommas(args->faults);
    exit_code = RunCampaign(*args);
  });

  auto worker = std::make_shared<WorkerArgs>();
  CLI::App* w = app.add_subcommand("campaign-worker", "");
  w->group("");  // hidden: started by `umbra campaign`
  w->add_option("--config", worker->config)->required();
  w->add_option("--worker", worker->worker)->required();
  w->add_option("--after", worker->after);
  w->add_option("--shard", worker->shard);
  w->add_option("--trace", worker->trace);
  w->add_option("--deadline", worker->deadline_ns);
  w->callback([worker, &exit_code] { exit_code = RunWorkerCommand(*worker); });
}

}  // namespace umbra::cli
