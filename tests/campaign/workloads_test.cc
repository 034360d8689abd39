// The class workloads (file-transfer, disk-verifier, sqlite, audio-playback,
// uart-echo)
// under the campaign engine, with real driver processes and emulated
// hardware: each fail-stop fault is hidden by the class's shadow, and the
// same fault without the shadow's replay is visible to the application.
#include <algorithm>

#include <gtest/gtest.h>

#include "campaign/campaign.h"

namespace umbra::faultinject::campaign {
namespace {

struct Case {
  const char* workload;
  FaultType fault;
  const char* plan;
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.workload << "/" << FaultTypeName(c.fault) << " " << c.plan;
}

Result<RunRecord> RunCase(const Case& c, shadows::RecoveryMode mode) {
  WorkloadRegistry registry;
  UMBRA_TRY(RegisterBuiltinWorkloads(registry));
  RunSpec spec{
      .seed = 42, .workload = c.workload, .fault = c.fault, .mode = mode, .plan = UMBRA_TRY(ParsePlan(c.plan))};
  return RunOne(registry, spec);
}

std::string Describe(const RunRecord& r) {
  return "outcome " + std::string(OutcomeName(r.outcome)) + ", " + std::to_string(r.injected) + " injected, " +
         std::to_string(r.detections) + " detected, errors " + std::to_string(r.errors) + " (" + r.first_error + "), " +
         r.verification;
}

// ---- with the shadow: every fail-stop fault is transparent ----

class ShadowHidesTheFault : public ::testing::TestWithParam<Case> {};

TEST_P(ShadowHidesTheFault, Transparent) {
  auto r = RunCase(GetParam(), shadows::RecoveryMode::kShadow);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->outcome, Outcome::kTransparent) << Describe(*r);
  EXPECT_TRUE(r->verified) << r->verification;
  EXPECT_GE(r->detections, 1u) << "the fault fired and the host noticed: " << Describe(*r);
  EXPECT_EQ(r->units_done, r->units);
  for (const RecoveryFigures& f : r->recoveries) EXPECT_TRUE(f.succeeded);
}

INSTANTIATE_TEST_SUITE_P(
    Workloads, ShadowHidesTheFault,
    ::testing::Values(
        Case{"file-transfer", FaultType::kSegfault, "seed=1;segfault@nic.tx+20;segfault@sdk.request+5"},
        Case{"file-transfer", FaultType::kAbort, "seed=1;abort@sdk.complete+30"},
        Case{"file-transfer", FaultType::kSigkill, "seed=1;sigkill@host.unit+10;sigkill@host.unit+40"},
        Case{"disk-verifier", FaultType::kSegfault, "seed=1;segfault@disk.complete+30;segfault@disk.submit+7"},
        Case{"disk-verifier", FaultType::kAbort, "seed=1;abort@disk.flush+0"},
        Case{"disk-verifier", FaultType::kSigkill, "seed=1;sigkill@host.unit+64;sigkill@host.unit+160"},
        Case{"sqlite", FaultType::kSegfault, "seed=1;segfault@disk.complete+40"},
        Case{"sqlite", FaultType::kAbort, "seed=1;abort@disk.flush+3;abort@disk.submit+2"},
        Case{"sqlite", FaultType::kSigkill, "seed=1;sigkill@host.unit+3"},
        Case{"audio-playback", FaultType::kSegfault, "seed=1;segfault@snd.write+10"},
        Case{"audio-playback", FaultType::kAbort, "seed=1;abort@snd.irq+10;abort@sdk.request+3"},
        Case{"audio-playback", FaultType::kSigkill, "seed=1;sigkill@host.unit+8"},
        // A crash while the stream is set up: the track is written (and
        // dropped) before the driver is back; none of it may be played late.
        Case{"audio-playback", FaultType::kCorruptHeap, "seed=7767718865717752203;corrupt_heap@sdk.call.exit+3"},
        // Transmit and receive paths: a fault with an echo on its way back
        // (in the RX ring, or consumed by the driver and not completed, as
        // at sdk.request.exit after a read) must not lose it.
        Case{"uart-echo", FaultType::kSegfault, "seed=1;segfault@uart.tx+20;segfault@uart.rx+40"},
        Case{"uart-echo", FaultType::kAbort, "seed=1;abort@uart.rx+5;abort@sdk.request.exit+30"},
        Case{"uart-echo", FaultType::kSigkill, "seed=1;sigkill@host.unit+10;sigkill@host.unit+40"},
        Case{"uart-echo", FaultType::kHang, "seed=1;hang@uart.rx+20"}),
    [](const auto& info) {
      std::string name = std::string(info.param.workload) + "_" + std::string(FaultTypeName(info.param.fault));
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

// ---- restart-only: the same kind of fault is seen by the application ----

class RestartOnlyShowsTheFault : public ::testing::TestWithParam<Case> {};

TEST_P(RestartOnlyShowsTheFault, NotTransparent) {
  auto r = RunCase(GetParam(), shadows::RecoveryMode::kRestartOnly);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_GE(r->detections, 1u) << Describe(*r);
  EXPECT_NE(r->outcome, Outcome::kTransparent) << Describe(*r);
  EXPECT_NE(r->outcome, Outcome::kHostCrash);
}

INSTANTIATE_TEST_SUITE_P(Workloads, RestartOnlyShowsTheFault,
                         ::testing::Values(Case{"file-transfer", FaultType::kSegfault, "seed=1;segfault@nic.tx+20"},
                                           Case{"disk-verifier", FaultType::kSegfault,
                                                "seed=1;segfault@disk.complete+30"},
                                           Case{"sqlite", FaultType::kSegfault, "seed=1;segfault@disk.submit+40"},
                                           // The player's stream set-up (hw_params): a crash in a
                                           // data-path write may, on a loaded machine, land after
                                           // the whole track was handed to the driver.
                                           Case{"audio-playback", FaultType::kSegfault, "seed=1;segfault@sdk.call+1"},
                                           Case{"uart-echo", FaultType::kSegfault, "seed=1;segfault@uart.tx+20"}),
                         [](const auto& info) {
                           std::string name = info.param.workload;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace umbra::faultinject::campaign
