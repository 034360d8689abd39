// Runs that campaigns found malfunctioning outside the by-design cells, each
// replayed from its recorded seed and plan: they must now be transparent.
#include <gtest/gtest.h>

#include "campaign/campaign.h"

namespace umbra::faultinject::campaign {
namespace {

Result<RunRecord> Replay(uint64_t seed, const char* workload, FaultType fault, const char* plan) {
  WorkloadRegistry registry;
  UMBRA_TRY(RegisterBuiltinWorkloads(registry));
  RunSpec spec{.seed = seed, .workload = workload, .fault = fault, .plan = UMBRA_TRY(ParsePlan(plan))};
  return RunOne(registry, spec);
}

std::string Describe(const RunRecord& r) {
  return "outcome " + std::string(OutcomeName(r.outcome)) + ", " + std::to_string(r.injected) + " injected, " +
         std::to_string(r.detections) + " detected, errors " + std::to_string(r.errors) + " (" + r.first_error + "), " +
         r.verification;
}

// The driver loses a write's completion (a request-deadline hang); the new
// driver loses the replay of that acknowledged write (disk.submit, a second
// hang). Before the fix, a read of the write's blocks went out behind the
// lost replay and returned what the disk held before the write ("block 167
// expected generation 129, read zeros"): an acknowledged write lost to the
// application, though the third driver wrote it again.
TEST(CampaignMalfunctions, ReadBehindAReplayedWriteTheDriverLostSeesTheAcknowledgedWrite) {
  auto r = Replay(14093625478711830866u, "disk-verifier", FaultType::kDropCompletion,
                  "seed=5267406799295135437;drop_completion@sdk.complete+134;drop_completion@disk.submit+4");
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->detections, 2u) << Describe(*r);
  EXPECT_EQ(r->outcome, Outcome::kTransparent) << Describe(*r);
  EXPECT_NE(r->verification.find(" lost=0 "), std::string::npos) << r->verification;
}

// A read completion whose length the driver inflated, still inside the 256-byte
// read buffer (wrong_length@sdk.complete on a read; uart.rx does the same in
// the driver): the shadow used to pass the buffer's stale tail to the
// application as received bytes ("64/64 chunks echoed, 1 changed", nothing
// detected). The device's receive count shows the bytes were never received.
TEST(CampaignMalfunctions, UartReadLongerThanTheDeviceReceivedIsRefusedNotPassedOn) {
  for (auto [seed, plan] :
       {std::pair{8767485747811298419u, "seed=16352449609500296145;wrong_length@sdk.complete+29"},
        std::pair{7309883201358905417u, "seed=13855320929713426452;wrong_length@uart.rx+17;wrong_length@uart.rx+20;"
                                        "wrong_length@sdk.complete+32"}}) {
    auto r = Replay(seed, "uart-echo", FaultType::kWrongLength, plan);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(r->outcome, Outcome::kTransparent) << plan << ": " << Describe(*r);
    EXPECT_GE(r->detections, 1u) << plan << ": the lie is a protocol violation: " << Describe(*r);
  }
}

}  // namespace
}  // namespace umbra::faultinject::campaign
