// Campaigns spread over a cluster: a Slurm job array of shards and a merge
// job that depends on it (`umbra campaign FILE --slurm`), and the merge by hand
// (`umbra campaign --collect DIR`).
//
// A campaign folder, on a file system every node sees, holds:
//   campaign.textproto   the resolved campaign, seed included (what every shard runs)
//   manifest             "shards N" and the umbra binary the scripts call
//   shard.sbatch         the array job: task i runs shard i/N
//   merge.sbatch         the merge job: --collect, then the HTML report
//   shards/shard-I.jsonl one JSON line per run; written as .partial and
//                        renamed when the shard's campaign finished
//   shards/shard-I.exit  the shard's exit status
//   shards/shard-I.trace its trace (merged into report.html)
//   report.txt, report.json, report.html   written by the merge job
//
// A shard is a pure function of (campaign, seed, i, N): rerunning one (its
// array index alone, `sbatch --array=I shard.sbatch`) writes the same runs
// again, so a merged report does not depend on how often a shard ran.
#pragma once

#include <cstdint>
#include <string>

namespace umbra::faultinject::campaign {
struct CampaignConfig;
}

namespace umbra::cli {

struct ClusterSubmit {
  std::string out_dir;       // the campaign folder (created; must be shared by the nodes)
  uint32_t shards = 4;       // array size
  std::string partition;     // empty: the cluster's default
  std::string umbra_binary;  // what the scripts run (this program)
  bool submit = true;        // false: write the scripts and say how to submit them
};

// Writes the campaign folder and, unless !submit, submits the array and the
// merge job with sbatch. Returns an exit code (kExitOk, or the error printed).
int SubmitToSlurm(const faultinject::campaign::CampaignConfig& config, const ClusterSubmit& submit);

// Merges the shards found in a campaign folder: prints the report (JSON with
// `json`), writes report.txt and report.json into the folder, and names the
// shards that are missing, unfinished or failed with the command that reruns
// them. Exit: 0 every shard complete and every run as expected; 1 a run not as
// expected; 75 a shard missing or incomplete.
int CollectShards(const std::string& dir, bool json);

}  // namespace umbra::cli
