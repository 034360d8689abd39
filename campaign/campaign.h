// Campaigns: many runs over (workload × fault type) cells, in parallel, in
// shards, from a seed.
//
//   CampaignConfig c{.workloads = {"echo-stream"}, .faults = {FaultType::kSegfault},
//                    .runs_per_cell = 20, .seed = 42, .jobs = 2};
//   std::vector<RunRecord> records = UMBRA_TRY(RunInProcess(registry, c, on_record));
//   FormatSummary(records);
//
// Run i of a campaign is cell i / runs_per_cell (workloads outer, faults inner)
// with seed RunSeed(seed, i); a shard i/N keeps the runs whose index % N == i.
// RunIsolated runs them in worker processes (`umbra campaign-worker`, started
// with posix_spawn) so that a run that brings its process down is recorded as
// a host crash and the campaign goes on in a new worker.
//
// Thread safety: the functions may be called from any thread; `on_record` is
// called from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "faultinject/plan.h"
#include "campaign/run.h"
#include "shadows/workload.h"
#include "base/result.h"

namespace umbra::faultinject::campaign {

struct CampaignConfig {
  std::vector<std::string> workloads;  // empty: every registered workload
  std::vector<FaultType> faults;       // empty: every fault type
  uint32_t runs_per_cell = 10;
  uint64_t seed = 0;
  uint32_t jobs = 0;  // 0: the number of cores
  shadows::RecoveryMode mode = shadows::RecoveryMode::kShadow;
  uint64_t units = 0;  // 0: each workload's default
  RunOptions run;
  uint32_t shard_index = 0;
  uint32_t shard_count = 1;
  // When set (CLOCK_MONOTONIC, MonotonicNanos): no run starts after it; the
  // runs not started are left out, not counted as crashes (`--soak`).
  int64_t deadline_ns = 0;
};

// Fills empty workload and fault lists, checks names; kInvalidArgument names
// what is wrong.
Result<void> Resolve(const WorkloadRegistry& registry, CampaignConfig& config);

// Every run of the campaign (all shards), in index order.
std::vector<RunSpec> ExpandRuns(const CampaignConfig& config);
// The runs of this config's shard.
std::vector<RunSpec> ShardRuns(const CampaignConfig& config);

using RecordSink = std::function<void(const RunRecord&)>;

// Runs the shard's runs on `jobs` threads of this process. A run that cannot
// be set up is recorded as a malfunction with the reason in `note`.
std::vector<RunRecord> RunInProcess(const WorkloadRegistry& registry, const CampaignConfig& config,
                                    const RecordSink& on_record);

// Runs the shard's runs in `jobs` worker processes: `worker_argv` is the
// command that starts one (e.g. {"/path/umbra", "campaign-worker"}); the
// engine appends "--config TEXT --worker K/J --after I --shard i/N". A worker that dies
// records its current run as a host crash and is replaced.
Result<std::vector<RunRecord>> RunIsolated(const CampaignConfig& config, const std::vector<std::string>& worker_argv,
                                           const RecordSink& on_record);

// The worker side: runs worker `k` of `jobs`'s share of the shard (runs with
// index > `after`), writing one JSON line per run to `fd` as each finishes,
// with this process's pid, RSS and descriptor count after the run.
int RunWorker(const WorkloadRegistry& registry, const CampaignConfig& config, uint32_t k, uint32_t jobs, int64_t after,
              int fd);

// Shrinking: starting from `spec`'s plan, drops injections and moves their
// points (earlier, then later) while the run's outcome stays `target`;
// returns the smallest plan found and its record.
struct ShrinkResult {
  FaultPlan plan;
  RunRecord record;
  int attempts = 0;
};
Result<ShrinkResult> Shrink(const WorkloadRegistry& registry, RunSpec spec, const RunOptions& options, Outcome target);

// Whether an outcome is what the mode promises: transparent or expected (by
// design) with shadows; any of these or a malfunction with restart-only.
bool AsExpected(Outcome outcome, shadows::RecoveryMode mode);

// ---- campaign files (protobuf text format, proto/umbra/campaign.proto) ----

// Parses a campaign file's text; errors read "FILE:LINE:COL: field 'NAME': what".
Result<CampaignConfig> ParseCampaignText(const std::string& text, const std::string& file_name);
Result<CampaignConfig> LoadCampaignFile(const std::string& path);
// The config as campaign-file text (what workers receive).
std::string CampaignToText(const CampaignConfig& config);

}  // namespace umbra::faultinject::campaign
