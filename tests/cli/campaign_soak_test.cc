// `umbra campaign --soak`: rounds until the time is up, every run recorded
// as it ends, and the runs the deadline cut off not counted as crashes.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "cli/campaign_soak.h"
#include "campaign/report.h"
#include "campaign/run.h"
#include "tests/shell.h"

namespace umbra::cli {
namespace {

namespace fc = faultinject::campaign;

TEST(CampaignSoak, DurationsTakeUnitsAndRefuseNonsense) {
  EXPECT_EQ(ParseDuration("90"), 90'000'000'000);
  EXPECT_EQ(ParseDuration("90s"), 90'000'000'000);
  EXPECT_EQ(ParseDuration("1.5m"), 90'000'000'000);
  EXPECT_EQ(ParseDuration("2h"), 7'200'000'000'000);
  EXPECT_EQ(ParseDuration("1d"), 86'400'000'000'000);
  EXPECT_EQ(ParseDuration(""), -1);
  EXPECT_EQ(ParseDuration("soon"), -1);
  EXPECT_EQ(ParseDuration("10 minutes"), -1);
  EXPECT_EQ(ParseDuration("-5s"), -1);
}

TEST(CampaignSoak, RunsUntilTheDeadlineAndCountsNoCutOffRunAsAHostCrash) {
  const std::string jsonl =
      std::filesystem::temp_directory_path() / ("umbra-soak-" + std::to_string(getpid()) + ".jsonl");
  const ::umbra::testing::Output run =
      ::umbra::testing::Shell(::umbra::testing::ShellQuote(UMBRA_BINARY) +
                              " campaign --workload echo-stream --fault segfault,sigkill --units 60"
                              " --jobs 2 --soak 3s --jsonl " +
                              ::umbra::testing::ShellQuote(jsonl));
  const std::string& out = run.out;
  EXPECT_EQ(run.code, 0) << out;
  EXPECT_NE(out.find("host crashes: 0;"), std::string::npos) << out;
  EXPECT_NE(out.find("acknowledged writes lost: 0"), std::string::npos) << out;

  auto records = fc::ReadJsonLines(jsonl);
  std::filesystem::remove(jsonl);
  ASSERT_TRUE(records) << records.error().message;
  ASSERT_FALSE(records->empty()) << out;
  std::set<uint64_t> indices;
  std::set<uint64_t> seeds;
  for (const fc::RunRecord& r : *records) {
    EXPECT_NE(r.outcome, fc::Outcome::kHostCrash) << r.note;
    EXPECT_NE(r.host_pid, 0) << "run " << r.index << " does not say which process ran it";
    EXPECT_GT(r.host_rss_kb, 0u);
    EXPECT_GT(r.host_fds, 0u);
    indices.insert(r.index);
    seeds.insert(r.seed);
  }
  EXPECT_EQ(indices.size(), records->size()) << "a run index was used twice";
  EXPECT_EQ(seeds.size(), records->size()) << "two runs drew the same seed";
  EXPECT_NE(out.find("soak: " + std::to_string(records->size()) + " runs"), std::string::npos)
      << "the summary does not count every recorded run:\n"
      << out;
}

}  // namespace
}  // namespace umbra::cli
