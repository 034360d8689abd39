// Campaign files: what parses, and errors that name the file, line and field.
#include <gtest/gtest.h>

#include "campaign/campaign.h"

namespace umbra::faultinject::campaign {
namespace {

TEST(CampaignFile, ParsesEveryField) {
  auto c = ParseCampaignText("workloads: \"echo-stream\"\nfaults: \"segfault\"\nfaults: \"sigkill\"\nruns_per_cell: 7\n"
                             "seed: 99\njobs: 3\nmode: \"restart-only\"\nunits: 40\nrestart_budget: 4\n",
                             "c.textproto");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->workloads, std::vector<std::string>{"echo-stream"});
  EXPECT_EQ(c->faults, (std::vector<FaultType>{FaultType::kSegfault, FaultType::kSigkill}));
  EXPECT_EQ(c->runs_per_cell, 7u);
  EXPECT_EQ(c->seed, 99u);
  EXPECT_EQ(c->jobs, 3u);
  EXPECT_EQ(c->mode, shadows::RecoveryMode::kRestartOnly);
  EXPECT_EQ(c->units, 40u);
  EXPECT_EQ(c->run.restart_budget, 4u);
}

TEST(CampaignFile, UnknownFieldNamesFileLineAndField) {
  auto c = ParseCampaignText("seed: 1\nruns_per_cel: 3\n", "c.textproto");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, Errc::kParse);
  EXPECT_EQ(c.error().message.rfind("c.textproto:2:", 0), 0u) << c.error().message;
  EXPECT_NE(c.error().message.find("runs_per_cel"), std::string::npos) << c.error().message;
}

TEST(CampaignFile, BadValueTypeNamesTheLine) {
  auto c = ParseCampaignText("seed: 1\n\nruns_per_cell: \"many\"\n", "c.textproto");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message.rfind("c.textproto:3:", 0), 0u) << c.error().message;
}

TEST(CampaignFile, UnknownFaultNamesLineColumnAndField) {
  auto c = ParseCampaignText("faults: \"segfault\"\nfaults:  \"segfalt\"\n", "c.textproto");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "c.textproto:2:1: field 'faults': unknown fault type 'segfalt'");
}

TEST(CampaignFile, UnknownModeNamesTheField) {
  auto c = ParseCampaignText("seed: 2\nmode: \"nooks\"\n", "c.textproto");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("c.textproto:2:"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("field 'mode'"), std::string::npos) << c.error().message;
}

TEST(CampaignFile, ConfigSurvivesTheTextWorkersReceive) {
  CampaignConfig c{.workloads = {"echo-stream"},
                   .faults = {FaultType::kHang},
                   .runs_per_cell = 3,
                   .seed = 77,
                   .jobs = 2,
                   .mode = shadows::RecoveryMode::kRestartOnly,
                   .units = 9};
  auto back = ParseCampaignText(CampaignToText(c), "--config");
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->workloads, c.workloads);
  EXPECT_EQ(back->faults, c.faults);
  EXPECT_EQ(back->seed, 77u);
  EXPECT_EQ(back->mode, c.mode);
  EXPECT_EQ(back->units, 9u);
}

TEST(CampaignFile, SampleDriversExampleCoversEveryClassAndFaultType) {
  auto c = LoadCampaignFile(std::string(UMBRA_SOURCE_DIR) + "/examples/campaigns/sample-drivers.textproto");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  WorkloadRegistry registry;
  ASSERT_TRUE(RegisterBuiltinWorkloads(registry).has_value());
  ASSERT_TRUE(Resolve(registry, *c).has_value());
  std::vector<std::string> classes;
  for (const std::string& w : c->workloads) classes.emplace_back(registry.Create(w).value()->device_class());
  EXPECT_EQ(classes, (std::vector<std::string>{"net", "block", "block", "sound"}));
  EXPECT_EQ(c->faults.size(), static_cast<size_t>(kFaultTypeCount));
  EXPECT_EQ(c->runs_per_cell, 20u);
}

TEST(CampaignFile, MissingFileIsNotFound) {
  auto c = LoadCampaignFile("/nonexistent/campaign.textproto");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, Errc::kNotFound);
}

}  // namespace
}  // namespace umbra::faultinject::campaign
