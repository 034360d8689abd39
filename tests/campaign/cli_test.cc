// `umbra campaign` and `umbra failpoints list` as a user runs them: exit
// codes, tables, messages.
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace {

struct Ran {
  int rc = -1;
  std::string out;  // stdout and stderr together
};

Ran Umbra(const std::string& args) {
  Ran r;
  const std::string cmd = std::string(UMBRA_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "/umbra_campaign_cli_" + std::to_string(getpid()) + "_" + name;
}

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST(CampaignCli, FailpointsListShowsTheEchoDriversSites) {
  Ran r = Umbra("failpoints list");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Has(r.out, "SITE")) << r.out;
  EXPECT_TRUE(Has(r.out, "sdk.request ")) << r.out;
  EXPECT_TRUE(Has(r.out, "sdk.heartbeat")) << r.out;
  Ran j = Umbra("failpoints list --driver echo --json --units 5");
  EXPECT_EQ(j.rc, 0) << j.out;
  EXPECT_TRUE(Has(j.out, "{\"site\":\"sdk.request\",\"hits\":5,\"triggers\":0}")) << j.out;
}

TEST(CampaignCli, FailpointsListRefusesAnUnknownDriver) {
  Ran r = Umbra("failpoints list --driver nosuch");
  EXPECT_EQ(r.rc, 64);
  EXPECT_TRUE(Has(r.out, "unknown driver 'nosuch' (known: disk, echo, nic, sound, uart)")) << r.out;
}

TEST(CampaignCli, SmallCampaignIsTransparentAndPrintsTheTable) {
  Ran r = Umbra("campaign --workload echo-stream --fault segfault,exit --runs 3 --seed 5 --units 30");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Has(r.out, "campaign seed 5: 6 runs")) << r.out;
  EXPECT_TRUE(Has(r.out, "echo-stream  3T        3T")) << r.out;
  EXPECT_TRUE(Has(r.out, "faults/s")) << r.out;
}

TEST(CampaignCli, JsonReportIsOneObject) {
  Ran r = Umbra("campaign --workload echo-stream --fault exit --runs 2 --seed 3 --units 20 --json --no-isolate-runs");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Has(r.out, "{\"seed\":\"3\",\"mode\":\"shadow\",\"runs\":2")) << r.out;
  EXPECT_TRUE(Has(r.out, "\"outcomes\":{\"transparent\":2")) << r.out;
}

// `error` is a by-design cell: the driver's answer reaches the application.
TEST(CampaignCli, ErrorCellIsExpectedAndExitsZero) {
  Ran r = Umbra("campaign --workload echo-stream --fault error --runs 2 --seed 9 --units 40");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Has(r.out, "1E")) << r.out;  // the other run's error point is past its requests
  EXPECT_FALSE(Has(r.out, "replay: umbra campaign --replay ")) << r.out;
}

// Any M is a bug: exit 1, whatever else the report holds.
TEST(CampaignCli, AnyMalfunctionExitsOneAndExpectedOnesDoNot) {
  const std::string path = TempPath("m.jsonl");
  auto line = [](int index, const char* outcome) {
    return "{\"index\":\"" + std::to_string(index) +
           "\",\"workload\":\"echo-stream\",\"fault\":\"error\",\"mode\":\"shadow\",\"outcome\":\"" + outcome + "\"}\n";
  };
  std::ofstream(path) << line(0, "transparent") << line(1, "expected");
  Ran fine = Umbra("campaign --merge " + path);
  EXPECT_EQ(fine.rc, 0) << fine.out;
  EXPECT_TRUE(Has(fine.out, "1T 1E")) << fine.out;
  std::ofstream(path, std::ios::app) << line(2, "malfunction");
  Ran bad = Umbra("campaign --merge " + path);
  EXPECT_EQ(bad.rc, 1) << bad.out;
  EXPECT_TRUE(Has(bad.out, "1T 1E 1M")) << bad.out;
  std::remove(path.c_str());
}

// Each unexpected run is replayed once: a cell whose runs do not reproduce
// is flaky, and the report says so rather than hiding it.
TEST(CampaignCli, UnexpectedRunsAreReplayedOnceAndSayWhetherTheyReproduced) {
  Ran r = Umbra("campaign --workload echo-stream --fault segfault --runs 4 --seed 5 --units 40 --restart-budget 1");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_TRUE(Has(r.out, "replayed: failed again (reproducible)")) << r.out;
  EXPECT_TRUE(Has(r.out, "reproduced, 0 did not")) << r.out;
  Ran quiet = Umbra("campaign --workload echo-stream --fault segfault --runs 4 --seed 5 --units 40 --restart-budget 1 "
                    "--no-recheck");
  EXPECT_EQ(quiet.rc, 1) << quiet.out;
  EXPECT_FALSE(Has(quiet.out, "replayed:")) << quiet.out;
}

TEST(CampaignCli, FailedRunGivesExitCode1) {
  Ran r = Umbra("campaign --replay 8 --workload echo-stream --fault segfault --units 40 --restart-budget 1 "
                "--plan 'seed=1;segfault@sdk.request+2;segfault@sdk.request+0;segfault@sdk.request+0'");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_TRUE(Has(r.out, "outcome: failed")) << r.out;
}

TEST(CampaignCli, RestartOnlyMalfunctionsAreExpected) {
  Ran r = Umbra("campaign --workload echo-stream --fault sigkill --runs 2 --seed 4 --units 40 --mode restart-only");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Has(r.out, "2M")) << r.out;
}

TEST(CampaignCli, ReplayRerunsOneSeed) {
  Ran r = Umbra("campaign --replay 77 --workload echo-stream --fault abort --units 30");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Has(r.out, "run seed 77: echo-stream/abort")) << r.out;
  EXPECT_TRUE(Has(r.out, "outcome: transparent")) << r.out;
  Ran again = Umbra("campaign --replay 77 --workload echo-stream --fault abort --units 30");
  auto plan = [](const std::string& s) {
    return s.substr(s.find("plan: "), s.find('\n', s.find("plan: ")) - s.find("plan: "));
  };
  EXPECT_EQ(plan(r.out), plan(again.out));
}

TEST(CampaignCli, ReplayShrinksAFailingRun) {
  Ran r = Umbra("campaign --replay 1 --workload echo-stream --fault segfault --units 30 --restart-budget 1 "
                "--plan 'seed=1;segfault@sdk.request+6;segfault@sdk.request+0;segfault@sdk.request+1' --shrink");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_TRUE(Has(r.out, "shrunk in ")) << r.out;
}

TEST(CampaignCli, ShardsMergeThroughJsonLines) {
  const std::string a = TempPath("a.jsonl"), b = TempPath("b.jsonl"), all = TempPath("all.jsonl");
  const std::string base = "campaign --workload echo-stream --fault segfault,exit --runs 2 --seed 8 --units 20 ";
  Ran whole = Umbra(base + "--jsonl " + all);
  ASSERT_EQ(whole.rc, 0) << whole.out;
  ASSERT_EQ(Umbra(base + "--shard 0/2 --jsonl " + a).rc, 0);
  ASSERT_EQ(Umbra(base + "--shard 1/2 --jsonl " + b).rc, 0);
  Ran merged = Umbra("campaign --merge " + a + " " + b);
  Ran unsharded = Umbra("campaign --merge " + all);
  EXPECT_EQ(merged.rc, 0) << merged.out;
  EXPECT_EQ(merged.out, unsharded.out);
  EXPECT_TRUE(Has(merged.out, "echo-stream  2T        2T")) << merged.out;
}

TEST(CampaignCli, UsageErrorsExit64) {
  Ran f = Umbra("campaign --fault segfalt");
  EXPECT_EQ(f.rc, 64);
  EXPECT_TRUE(Has(f.out, "unknown fault type 'segfalt'")) << f.out;
  Ran w = Umbra("campaign --workload nope");
  EXPECT_EQ(w.rc, 64);
  EXPECT_TRUE(Has(
      w.out,
      "unknown workload 'nope' (known: audio-playback, disk-verifier, echo-stream, file-transfer, sqlite, uart-echo)"))
      << w.out;
  Ran s = Umbra("campaign --shard 2/2");
  EXPECT_EQ(s.rc, 64);
  EXPECT_TRUE(Has(s.out, "bad shard")) << s.out;
  Ran r = Umbra("campaign --replay 5");
  EXPECT_EQ(r.rc, 64);
  EXPECT_TRUE(Has(r.out, "exactly one --workload and one --fault")) << r.out;
  EXPECT_EQ(Umbra("campaign --no-such-flag").rc, 64);
}

TEST(CampaignCli, BadCampaignFileExits65WithLineAndField) {
  const std::string path = TempPath("bad.textproto");
  std::ofstream(path) << "seed: 1\nfaults: \"segfault\"\nfaults: \"hang-up\"\n";
  Ran r = Umbra("campaign " + path);
  EXPECT_EQ(r.rc, 65);
  EXPECT_TRUE(Has(r.out, path + ":3:1: field 'faults': unknown fault type 'hang-up'")) << r.out;
  EXPECT_EQ(Umbra("campaign /nonexistent/c.textproto").rc, 66);
  const std::string bad_plan = "campaign --replay 1 --workload echo-stream --fault abort --plan 'abort@'";
  EXPECT_EQ(Umbra(bad_plan).rc, 65);
}

}  // namespace
