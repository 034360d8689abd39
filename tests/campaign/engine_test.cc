// The campaign engine end to end, with real echo driver processes: replay,
// shards, and every outcome.
#include <gtest/gtest.h>

#include "campaign/campaign.h"
#include "campaign/report.h"

namespace umbra::faultinject::campaign {
namespace {

class CampaignEngine : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(RegisterBuiltinWorkloads(registry_).has_value()); }
  WorkloadRegistry registry_;
};

// What must be equal between two runs of the same seed (timings are not).
struct Essence {
  uint64_t index, seed;
  std::string workload, fault, site, plan;
  Outcome outcome;
  bool operator==(const Essence&) const = default;
};
Essence EssenceOf(const RunRecord& r) {
  return {r.index, r.seed, r.workload, std::string(FaultTypeName(r.fault)), r.site, r.plan, r.outcome};
}

TEST_F(CampaignEngine, RegistryRefusesDuplicatesAndUnknownNames) {
  auto again = registry_.Register("echo-stream", [] { return std::unique_ptr<Workload>(); });
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  EXPECT_EQ(registry_.Create("nope").error().code, Errc::kNotFound);
  EXPECT_EQ(registry_.names(), (std::vector<std::string>{"audio-playback", "disk-verifier", "echo-stream",
                                                         "file-transfer", "sqlite", "uart-echo"}));
}

TEST_F(CampaignEngine, ReplayReproducesTheRunsRecord) {
  RunSpec spec{
      .index = 3, .seed = RunSeed(11, 3), .workload = "echo-stream", .fault = FaultType::kSegfault, .units = 60};
  auto a = RunOne(registry_, spec);
  auto b = RunOne(registry_, spec);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(EssenceOf(*a), EssenceOf(*b));
  EXPECT_EQ(a->injected, b->injected);
  EXPECT_EQ(a->detections, b->detections);
  EXPECT_EQ(a->recoveries.size(), b->recoveries.size());
  EXPECT_EQ(a->plan, FormatPlan(*MakePlan(spec.seed, spec.fault, registry_.Create("echo-stream").value()->sites(60))));
}

TEST_F(CampaignEngine, TransparentWhenTheShadowHidesAKill) {
  RunSpec spec{.seed = 5,
               .workload = "echo-stream",
               .fault = FaultType::kSigkill,
               .units = 50,
               .plan = *ParsePlan("seed=1;sigkill@host.unit+10;sigkill@host.unit+30")};
  auto r = RunOne(registry_, spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::kTransparent) << r->verification << " " << r->first_error;
  EXPECT_EQ(r->injected, 2u);
  EXPECT_EQ(r->detections, 2u);
  ASSERT_EQ(r->recoveries.size(), 2u);
  for (const auto& f : r->recoveries) {
    EXPECT_TRUE(f.succeeded);
    EXPECT_GE(f.detect_ns, 0);  // host-side: injection → detection is known
    EXPECT_GT(f.gap_ns, 0);
  }
}

TEST_F(CampaignEngine, DriverSideFaultIsArmedOncePerInstance) {
  RunSpec spec{.seed = 6,
               .workload = "echo-stream",
               .fault = FaultType::kAbort,
               .units = 40,
               .plan = *ParsePlan("seed=1;abort@sdk.request+5;abort@sdk.request+0")};
  auto r = RunOne(registry_, spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::kTransparent) << r->verification << " " << r->first_error;
  EXPECT_EQ(r->detections, 2u) << "one abort per planned injection, none inherited by a restarted driver";
}

TEST_F(CampaignEngine, DoubleFaultKillsTheDriverWhileTheShadowRecovers) {
  RunSpec spec{.seed = 7,
               .workload = "echo-stream",
               .fault = FaultType::kKillDuringRecovery,
               .units = 40,
               .plan = *ParsePlan("seed=1;kill_during_recovery@host.unit+10")};
  auto r = RunOne(registry_, spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::kTransparent) << r->verification << " " << r->first_error;
  EXPECT_EQ(r->injected, 2u);
  EXPECT_EQ(r->detections, 2u);
}

TEST_F(CampaignEngine, FailedWhenTheRestartBudgetIsSpent) {
  RunSpec spec{.seed = 8,
               .workload = "echo-stream",
               .fault = FaultType::kSegfault,
               .units = 40,
               .plan = *ParsePlan("seed=1;segfault@sdk.request+2;segfault@sdk.request+0;segfault@sdk.request+0")};
  RunOptions tiny;
  tiny.restart_budget = 1;
  auto r = RunOne(registry_, spec, tiny);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::kFailed) << r->shadow_state;
  EXPECT_EQ(r->shadow_state, "failed");
  EXPECT_GT(r->errors, 0u);
}

TEST_F(CampaignEngine, MalfunctionInRestartOnlyMode) {
  RunSpec spec{.seed = 9,
               .workload = "echo-stream",
               .fault = FaultType::kSigkill,
               .mode = shadows::RecoveryMode::kRestartOnly,
               .units = 50,
               .plan = *ParsePlan("seed=1;sigkill@host.unit+10")};
  auto r = RunOne(registry_, spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::kMalfunction);
  EXPECT_FALSE(r->verified) << "restart-only does not replay the tag: " << r->verification;
  EXPECT_TRUE(AsExpected(r->outcome, shadows::RecoveryMode::kRestartOnly));
  EXPECT_FALSE(AsExpected(r->outcome, shadows::RecoveryMode::kShadow));
}

// A driver that answers with an error is believed (a shadow hides a
// driver's failure, not its answer): the application sees the error, and the
// run is an expected outcome, with the reason, not a malfunction.
TEST_F(CampaignEngine, ExpectedWhenTheDriverReturnsAnError) {
  RunSpec spec{.seed = 10,
               .workload = "echo-stream",
               .fault = FaultType::kError,
               .units = 30,
               .plan = *ParsePlan("seed=1;error@sdk.request+4")};
  auto r = RunOne(registry_, spec);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::kExpected);
  EXPECT_TRUE(AsExpected(r->outcome, shadows::RecoveryMode::kShadow));
  EXPECT_NE(r->note.find("not its answer"), std::string::npos) << r->note;
  EXPECT_EQ(r->errors, 1u);
  EXPECT_EQ(r->injected, 1u) << "counted from the live driver's trigger count";
}

TEST_F(CampaignEngine, HostCrashWhenTheRunsProcessDies) {
  CampaignConfig c{
      .workloads = {"echo-stream"}, .faults = {FaultType::kSigkill}, .runs_per_cell = 3, .seed = 1, .jobs = 1};
  ASSERT_TRUE(Resolve(registry_, c).has_value());
  // A "worker" that dies of SIGSEGV before reporting anything.
  auto records = RunIsolated(c, {"/bin/sh", "-c", "kill -SEGV $$", "worker"}, nullptr);
  ASSERT_TRUE(records.has_value()) << records.error().message;
  ASSERT_EQ(records->size(), 3u);
  for (const auto& r : *records) {
    EXPECT_EQ(r.outcome, Outcome::kHostCrash);
    EXPECT_NE(r.note.find("signal"), std::string::npos) << r.note;
  }
}

TEST_F(CampaignEngine, ShardsMergeIntoTheUnshardedReport) {
  // Faults whose outcome does not depend on timing: whether an injected
  // error reaches the application (E) or lands on a request the shadow
  // retries (T) varies from run to run, and this test is about merging.
  CampaignConfig c{.workloads = {"echo-stream"},
                   .faults = {FaultType::kSegfault, FaultType::kAbort, FaultType::kSigkill},
                   .runs_per_cell = 3,
                   .seed = 2024,
                   .jobs = 2,
                   .units = 30};
  ASSERT_TRUE(Resolve(registry_, c).has_value());
  std::vector<RunRecord> whole = MergeRecords(RunInProcess(registry_, c, nullptr));
  ASSERT_EQ(whole.size(), 9u);
  std::vector<RunRecord> parts;
  for (uint32_t i = 0; i < 2; ++i) {
    CampaignConfig shard = c;
    shard.shard_index = i;
    shard.shard_count = 2;
    for (const RunRecord& r : RunInProcess(registry_, shard, nullptr)) {
      EXPECT_EQ(r.index % 2, i);
      // Through the JSON lines a shard writes.
      parts.push_back(*RecordFromJson(RecordToJson(r)));
    }
  }
  std::vector<RunRecord> merged = MergeRecords(parts);
  ASSERT_EQ(merged.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(EssenceOf(merged[i]), EssenceOf(whole[i]));
  EXPECT_EQ(FormatSummary(merged), FormatSummary(whole));
}

TEST_F(CampaignEngine, RecordsSurviveJson) {
  RunRecord r{.index = 4,
              .seed = 18446744073709551615ull,
              .workload = "echo-stream",
              .device = "echo0",
              .device_class = "echo",
              .fault = FaultType::kWildDma,
              .site = "sdk.request",
              .plan = "seed=1;wild_dma@sdk.request+3",
              .outcome = Outcome::kFailed,
              .injected = 2,
              .recoveries = {{.reason = "signal", .restart_ns = 5, .gap_ns = 9, .attempts = 1, .succeeded = true}},
              .first_error = "say \"hi\"\n",
              .verification = "ok"};
  auto back = RecordFromJson(RecordToJson(r));
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->seed, r.seed);
  EXPECT_EQ(back->fault, r.fault);
  EXPECT_EQ(back->outcome, r.outcome);
  EXPECT_EQ(back->recoveries, r.recoveries);
  EXPECT_EQ(back->first_error, r.first_error);
  EXPECT_FALSE(RecordFromJson("{\"fault\":\"nope\"}").has_value());
}

TEST_F(CampaignEngine, SummaryCountsOutcomesPerCell) {
  std::vector<RunRecord> rs(4);
  rs[0] = {.workload = "echo-stream", .fault = FaultType::kSegfault, .outcome = Outcome::kTransparent};
  rs[1] = rs[0];
  rs[2] = {.workload = "echo-stream", .fault = FaultType::kSigkill, .outcome = Outcome::kTransparent};
  rs[3] = {.workload = "echo-stream", .fault = FaultType::kSigkill, .outcome = Outcome::kMalfunction};
  EXPECT_EQ(FormatSummary(rs),
            "WORKLOAD     segfault  sigkill\n"
            "echo-stream  2T        1T 1M\n"
            "runs 4: 3 transparent, 0 expected, 1 malfunction, 0 failed, 0 host-crash  "
            "(T transparent, E expected: a lie the class cannot see, M malfunction: a bug, F failed, C host crash)\n");
}

TEST_F(CampaignEngine, ShrinkDropsInjectionsThatDoNotMatter) {
  RunSpec spec{.seed = 12,
               .workload = "echo-stream",
               .fault = FaultType::kError,
               .units = 30,
               .plan = *ParsePlan("seed=1;error@sdk.request+8")};
  auto s = Shrink(registry_, spec, {}, Outcome::kExpected);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(FormatPlan(s->plan), "seed=1;error@sdk.request+0") << "the error still shows at the first request";
  EXPECT_EQ(s->record.outcome, Outcome::kExpected);
  EXPECT_FALSE(Shrink(registry_, spec, {}, Outcome::kTransparent).has_value());
}

}  // namespace
}  // namespace umbra::faultinject::campaign
