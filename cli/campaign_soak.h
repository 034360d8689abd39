// `umbra campaign --soak DURATION`: draw runs until the time is up.
//
// A soak repeats the campaign in rounds: round r runs every cell with the
// campaign seed RunSeed(seed, r), so each run is still replayable from its
// own seed. Records are written (and flushed) to --jsonl as each run ends,
// so a soak that dies loses at most the runs in progress. At the end it
// prints the outcome table and what a long run is for: faults per second,
// host crashes, acknowledged writes lost, wrong data, and how the resident
// memory and descriptors of the processes that ran the runs grew.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace umbra::faultinject::campaign {
struct CampaignConfig;
class WorkloadRegistry;
}  // namespace umbra::faultinject::campaign

namespace umbra::cli {

struct SoakOptions {
  int64_t duration_ns = 0;
  bool isolate = true;                   // runs in worker processes (the default)
  std::vector<std::string> worker_argv;  // with isolate: the command that starts a worker
  std::FILE* jsonl = nullptr;            // one line per run, flushed (not owned)
  bool json = false;                     // the summary as JSON
};

// "90s", "30m", "12h", "2d" or plain seconds; -1 when it does not parse.
int64_t ParseDuration(const std::string& text);

// Runs the soak; returns an exit code (0: nothing unexpected, 1: a run not as
// expected or data lost, 70: the engine failed).
int RunSoak(const faultinject::campaign::WorkloadRegistry& registry, faultinject::campaign::CampaignConfig config,
            const SoakOptions& options);

}  // namespace umbra::cli
