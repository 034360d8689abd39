// `umbra campaign --slurm` on a real one-node Slurm cluster started by the
// test itself (munged, slurmctld and slurmd from Debian, configured in a
// temporary folder on free ports by scripts/slurm-cluster.sh), compared with
// the same campaign run on this machine alone.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "campaign/report.h"
#include "tests/shell.h"
#include "campaign/run.h"

namespace umbra::cli {
namespace {

namespace fs = std::filesystem;
namespace fc = faultinject::campaign;
using ::umbra::testing::Output;
using ::umbra::testing::Shell;
using ::umbra::testing::ShellQuote;
using namespace std::chrono_literals;

bool Have(const char* program) { return Shell(std::string("command -v ") + program).code == 0; }

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A one-node cluster in a folder of its own (scripts/slurm-cluster.sh:
// munged on a private socket and key, slurmctld and slurmd on free ports).
class SlurmCluster {
 public:
  explicit SlurmCluster(fs::path dir) : dir_(std::move(dir)) {}
  ~SlurmCluster() { Stop(); }

  // Empty on success, else why the cluster could not be started.
  std::string Start() {
    Output r = Shell(Script() + " start " + ShellQuote(dir_.string()));
    if (r.code != 0) return r.out;
    setenv("SLURM_CONF", (dir_ / "slurm.conf").c_str(), 1);
    return "";
  }

  // Waits until no job is queued or running; false after `timeout`.
  bool WaitIdle(std::chrono::seconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      Output q = Shell("squeue -h");
      if (q.code == 0 && q.out.find_first_not_of(" \n") == std::string::npos) return true;
      std::this_thread::sleep_for(500ms);
    }
    return false;
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    (void)Shell(Script() + " stop " + ShellQuote(dir_.string()));
    unsetenv("SLURM_CONF");
  }

 private:
  static std::string Script() { return ShellQuote(std::string(UMBRA_SOURCE_DIR) + "/scripts/slurm-cluster.sh"); }

  fs::path dir_;
  bool stopped_ = false;
};

// The identity of every run and what became of it; timings left out.
std::vector<std::string> Runs(const std::vector<fc::RunRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) {
    out.push_back(std::to_string(r.index) + " " + std::to_string(r.seed) + " " + r.workload + " " +
                  std::string(fc::FaultTypeName(r.fault)) + " " + r.site + " " + r.plan + " " +
                  std::string(fc::OutcomeName(r.outcome)));
  }
  return out;
}

class CampaignSlurmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "a Slurm cluster of its own needs root (slurmd runs jobs as root here)";
    for (const char* p : {"munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"}) {
      if (!Have(p)) GTEST_SKIP() << p << " is not installed (Debian: slurm-wlm, munge; ./test installs them)";
    }
    char tmpl[] = "/tmp/umbra-slurm-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cluster_ = std::make_unique<SlurmCluster>(dir_ / "cluster");
    const std::string why = cluster_->Start();
    ASSERT_EQ(why, "") << "Slurm is installed but the cluster did not start";
    std::ofstream(dir_ / "campaign.textproto") << "workloads: \"echo-stream\"\nfaults: \"segfault\"\n"
                                                  "faults: \"sigkill\"\nfaults: \"abort\"\nfaults: \"exit\"\n"
                                                  "runs_per_cell: 3\nunits: 40\njobs: 1\n";
  }

  void TearDown() override {
    if (cluster_) cluster_->Stop();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::string Umbra(const std::string& args) { return ShellQuote(UMBRA_BINARY) + " " + args; }

  fs::path dir_;
  std::unique_ptr<SlurmCluster> cluster_;
};

TEST_F(CampaignSlurmTest, AFourShardArrayMergesToTheSameRunsAsOneMachineAndARerunShardChangesNothing) {
  const fs::path out = dir_ / "c";
  const std::string file = ShellQuote((dir_ / "campaign.textproto").string());
  Output submit =
      Shell(Umbra("campaign " + file + " --seed 4242 --slurm --shards 4 --out " + ShellQuote(out.string())));
  ASSERT_EQ(submit.code, 0) << submit.out;
  ASSERT_TRUE(cluster_->WaitIdle(300s)) << "jobs still queued after 300 s:\n" << Shell("squeue").out;
  ASSERT_TRUE(fs::exists(out / "report.json")) << Slurp(out / "logs" / "merge.out");
  EXPECT_GT(fs::file_size(out / "report.html"), 1000u) << Slurp(out / "logs" / "merge.out");

  Output local =
      Shell(Umbra("campaign " + file + " --seed 4242 --jsonl " + ShellQuote((dir_ / "local.jsonl").string())));
  ASSERT_LE(local.code, 1) << local.out;
  auto mine = fc::ReadJsonLines((dir_ / "local.jsonl").string());
  ASSERT_TRUE(mine) << mine.error().message;
  std::vector<fc::RunRecord> merged;
  for (int i = 0; i < 4; ++i) {
    auto part = fc::ReadJsonLines((out / "shards" / ("shard-" + std::to_string(i) + ".jsonl")).string());
    ASSERT_TRUE(part) << part.error().message;
    EXPECT_FALSE(part->empty()) << "shard " << i << " ran nothing";
    merged.insert(merged.end(), part->begin(), part->end());
  }
  EXPECT_EQ(Runs(fc::MergeRecords(merged)), Runs(fc::MergeRecords(*mine)));
  EXPECT_EQ(Slurp(out / "report.txt"), fc::FormatSummary(fc::MergeRecords(*mine)));

  // A lost shard is named, with the command that reruns it; the rerun gives
  // the same runs, so the merged report is the same.
  const std::string before = Slurp(out / "report.txt");
  fs::remove(out / "shards" / "shard-2.jsonl");
  Output missing = Shell(Umbra("campaign --collect " + ShellQuote(out.string())));
  EXPECT_EQ(missing.code, 75) << missing.out;
  EXPECT_NE(missing.out.find("shard 2/4: missing"), std::string::npos) << missing.out;
  EXPECT_NE(missing.out.find("sbatch --array=2 "), std::string::npos) << missing.out;
  Output rerun = Shell("sbatch --array=2 " + ShellQuote((out / "shard.sbatch").string()));
  ASSERT_EQ(rerun.code, 0) << rerun.out;
  ASSERT_TRUE(cluster_->WaitIdle(120s));
  Output again = Shell(Umbra("campaign --collect " + ShellQuote(out.string())));
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(Slurp(out / "report.txt"), before);
}

}  // namespace
}  // namespace umbra::cli
