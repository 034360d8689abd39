#include "recorder/analysis.h"

#include <gtest/gtest.h>

#include <numeric>

#include "tests/recorder/json_value.h"
#include "tests/recorder/test_util.h"

namespace umbra::recorder {
namespace {

using namespace testing;

TEST(SummarizeTest, NearestRankPercentiles) {
  std::vector<int64_t> v(100);
  std::iota(v.begin(), v.end(), 1);
  std::reverse(v.begin(), v.end());
  Distribution d = Summarize(v);
  EXPECT_EQ(d.count, 100u);
  EXPECT_EQ(d.min, 1);
  EXPECT_EQ(d.median, 50);
  EXPECT_EQ(d.p90, 90);
  EXPECT_EQ(d.p99, 99);
  EXPECT_EQ(d.max, 100);
  EXPECT_DOUBLE_EQ(d.mean, 50.5);
  uint64_t total = 0;
  for (const auto& b : d.histogram) total += b.count;
  EXPECT_EQ(total, 100u);
}

TEST(SummarizeTest, HistogramUsesOneTwoFiveBuckets) {
  Distribution d = Summarize({1500 * kUs, 1800 * kUs, 4 * kMs, 30 * kMs});
  ASSERT_FALSE(d.histogram.empty());
  EXPECT_EQ(d.histogram.front().upper_ns, 2 * kMs);
  EXPECT_EQ(d.histogram.front().count, 2u);
  EXPECT_EQ(d.histogram[1].upper_ns, 5 * kMs);
  EXPECT_EQ(d.histogram[1].count, 1u);
  EXPECT_EQ(d.histogram.back().upper_ns, 50 * kMs);
  EXPECT_EQ(d.histogram.back().count, 1u);
  EXPECT_EQ(Summarize({}).count, 0u);
  Distribution one = Summarize({7});
  EXPECT_EQ(one.median, 7);
  EXPECT_EQ(one.p99, 7);
}

// A net device completes every 100 µs, crashes at 350 µs, and is back at 2.1 ms.
Trace OneCrash() {
  TraceBuilder b;
  DeviceId nic = b.Device("nic0", "net");
  DeviceId disk = b.Device("disk0", "block");
  b.Ok(100 * kUs, nic).Ok(200 * kUs, nic).Ok(300 * kUs, nic);
  b.Ok(320 * kUs, disk);  // another device's completions do not end nic0's gap
  b.At(350 * kUs, nic, FaultInjected{"nic.tx.entry", "segfault", 42});
  b.At(360 * kUs, nic, DriverExited{ExitKind::kSignal, 11});
  b.At(400 * kUs, nic, Detected{DetectionReason::kSignal, 11});
  b.Phase(nic, RecoveryPhase::kIsolate, 400 * kUs, 450 * kUs);
  b.Phase(nic, RecoveryPhase::kQuiesce, 450 * kUs, 470 * kUs);
  b.Phase(nic, RecoveryPhase::kRestart, 470 * kUs, 1470 * kUs);
  b.At(500 * kUs, nic, RequestsDisposed{Disposition::kDropped, 5});
  b.Ok(900 * kUs, disk);
  b.Phase(nic, RecoveryPhase::kProbe, 1470 * kUs, 1600 * kUs);
  b.Phase(nic, RecoveryPhase::kReplayConfiguration, 1600 * kUs, 1700 * kUs);
  b.Phase(nic, RecoveryPhase::kReopen, 1700 * kUs, 1750 * kUs);
  b.Phase(nic, RecoveryPhase::kResubmit, 1750 * kUs, 1800 * kUs);
  b.At(1780 * kUs, nic, RequestsDisposed{Disposition::kReplayed, 2});
  b.Phase(nic, RecoveryPhase::kResume, 1800 * kUs, 1810 * kUs);
  b.Ok(2100 * kUs, nic).Ok(2200 * kUs, nic);
  // Shuffle file order a little: analysis sorts by time.
  std::swap(b.trace().events[0], b.trace().events[2]);
  return b.trace();
}

TEST(AnalyzeTest, GapDetectionAndPhasesOfOneCrash) {
  auto report = Analyze(OneCrash());
  ASSERT_TRUE(report) << report.error().ToString();
  ASSERT_EQ(report->faults.size(), 1u);
  const FaultRecord& f = report->faults[0];
  EXPECT_EQ(f.device_name, "nic0");
  EXPECT_EQ(f.device_class, "net");
  EXPECT_EQ(f.fault_type, "segfault");
  EXPECT_EQ(f.site, "nic.tx.entry");
  EXPECT_EQ(f.seed, 42u);
  EXPECT_EQ(f.end, FaultEnd::kRecovered);
  EXPECT_EQ(f.faults, 1u);
  EXPECT_EQ(f.reason, DetectionReason::kSignal);
  EXPECT_EQ(f.detection_latency_ns, 50 * kUs);
  EXPECT_EQ(f.phase_ns[int(RecoveryPhase::kIsolate)], 50 * kUs);
  EXPECT_EQ(f.phase_ns[int(RecoveryPhase::kQuiesce)], 20 * kUs);
  EXPECT_EQ(f.phase_ns[int(RecoveryPhase::kRestart)], 1000 * kUs);
  EXPECT_EQ(f.phase_ns[int(RecoveryPhase::kProbe)], 130 * kUs);
  EXPECT_EQ(f.phase_ns[int(RecoveryPhase::kReplayConfiguration)], 100 * kUs);
  EXPECT_EQ(f.phase_ns[int(RecoveryPhase::kResume)], 10 * kUs);
  EXPECT_EQ(f.recovery_ns, 1410 * kUs);  // detection → end of resume
  EXPECT_EQ(f.gap_begin_ns, 300 * kUs);
  EXPECT_EQ(f.gap_end_ns, 2100 * kUs);
  EXPECT_EQ(f.gap_ns, 1800 * kUs);
  EXPECT_EQ(f.disposed[int(Disposition::kDropped)], 5u);
  EXPECT_EQ(f.disposed[int(Disposition::kReplayed)], 2u);
  EXPECT_EQ(f.disposed[int(Disposition::kQueued)], 0u);
  EXPECT_EQ(f.phases.size(), 8u);
}

TEST(AnalyzeTest, DoubleFaultDuringRestartIsOneEpisodeWithBothAttempts) {
  TraceBuilder b;
  DeviceId d = b.Device("disk0", "block");
  b.Ok(0, d, RequestOp::kWrite);
  b.At(1 * kMs, d, FaultInjected{"disk.submit", "abort", 1});
  b.At(1 * kMs + 100 * kUs, d, Detected{DetectionReason::kSignal, 6});
  b.Phase(d, RecoveryPhase::kRestart, 2 * kMs, 3 * kMs, PhaseOutcome::kAborted);
  b.At(2500 * kUs, d, FaultInjected{"host", "sigkill", 2});
  b.Phase(d, RecoveryPhase::kRestart, 3 * kMs, 5 * kMs);
  b.Phase(d, RecoveryPhase::kResume, 5 * kMs, 6 * kMs);
  b.Ok(7 * kMs, d, RequestOp::kWrite);
  auto report = Analyze(b.trace());
  ASSERT_TRUE(report);
  ASSERT_EQ(report->faults.size(), 1u);
  const FaultRecord& f = report->faults[0];
  EXPECT_EQ(f.faults, 2u);
  EXPECT_EQ(f.fault_type, "abort");
  EXPECT_EQ(f.phase_ns[int(RecoveryPhase::kRestart)], 3 * kMs);
  EXPECT_EQ(f.gap_ns, 7 * kMs);
  EXPECT_EQ(f.end, FaultEnd::kRecovered);
}

TEST(AnalyzeTest, CrashWithoutInjectionStartsAtTheExit) {
  TraceBuilder b;
  DeviceId d = b.Device("snd0", "sound");
  b.Ok(1 * kMs, d, RequestOp::kPlayback);
  b.At(2 * kMs, d, DriverExited{ExitKind::kSignal, 9});
  b.At(2 * kMs + 70 * kUs, d, Detected{DetectionReason::kSignal, 9});
  b.At(3 * kMs, d, DeviceFailed{});
  auto report = Analyze(b.trace());
  ASSERT_TRUE(report);
  ASSERT_EQ(report->faults.size(), 1u);
  const FaultRecord& f = report->faults[0];
  EXPECT_EQ(f.fault_type, "signal 9");
  EXPECT_EQ(f.detection_latency_ns, 70 * kUs);
  EXPECT_EQ(f.end, FaultEnd::kFailed);
  EXPECT_FALSE(f.gap_ns);  // never served again
  EXPECT_FALSE(f.recovery_ns);
  ASSERT_EQ(report->groups.size(), 1u);
  EXPECT_EQ(report->groups[0].failed, 1u);
  EXPECT_EQ(report->groups[0].gap.count, 0u);
}

TEST(AnalyzeTest, ExitOfAnInstanceAlreadyDetectedIsNotANewFault) {
  // A hang: detected, killed, recovered; the killed process is reaped only
  // after the recovery ended (a loaded machine).
  TraceBuilder b;
  DeviceId d = b.Device("echo0", "echo");
  b.Ok(1 * kMs, d, RequestOp::kOther);
  b.At(2 * kMs, d, Detected{DetectionReason::kMissedHeartbeat, 0});
  for (int p = 0; p < kPhaseCount; ++p) b.Phase(d, RecoveryPhase(p), 2 * kMs + p * kUs, 2 * kMs + (p + 1) * kUs);
  b.Ok(3 * kMs, d, RequestOp::kOther);
  b.At(4 * kMs, d, DriverExited{ExitKind::kSignal, 9});
  b.Ok(5 * kMs, d, RequestOp::kOther);
  auto report = Analyze(b.trace());
  ASSERT_TRUE(report);
  ASSERT_EQ(report->faults.size(), 1u);
  EXPECT_EQ(report->faults[0].fault_type, "missed-heartbeat");
  EXPECT_EQ(report->faults[0].gap_ns, 2 * kMs);
}

TEST(AnalyzeTest, CleanExitWithoutDetectionIsNotAFault) {
  TraceBuilder b;
  DeviceId d = b.Device("nic0", "net");
  b.Ok(1 * kMs, d);
  b.At(2 * kMs, d, DriverExited{ExitKind::kCode, 0});  // shutdown
  auto report = Analyze(b.trace());
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->faults.empty());
}

TEST(AnalyzeTest, SignalReportedBeforeTheExitIsNamedBySignal) {
  TraceBuilder b;
  DeviceId d = b.Device("nic0", "net");
  b.Ok(1 * kMs, d);
  b.At(2 * kMs, d, Detected{DetectionReason::kSignal, 11});  // the driver's handler reported it
  b.At(2 * kMs + 50 * kUs, d, DriverExited{ExitKind::kSignal, 11});
  for (int p = 0; p < kPhaseCount; ++p) b.Phase(d, RecoveryPhase(p), 3 * kMs + p * kUs, 3 * kMs + (p + 1) * kUs);
  b.Ok(4 * kMs, d);
  auto report = Analyze(b.trace());
  ASSERT_TRUE(report);
  ASSERT_EQ(report->faults.size(), 1u);
  EXPECT_EQ(report->faults[0].fault_type, "signal 11");
  EXPECT_FALSE(report->faults[0].detection_latency_ns);
  EXPECT_EQ(report->faults[0].end, FaultEnd::kRecovered);
}

TEST(AnalyzeTest, DetectionAloneHasNoDetectionLatency) {
  TraceBuilder b;
  DeviceId d = b.Device("nic0", "net");
  b.At(1 * kMs, d, Detected{DetectionReason::kMissedHeartbeat, 0});
  auto report = Analyze(b.trace());
  ASSERT_TRUE(report);
  ASSERT_EQ(report->faults.size(), 1u);
  EXPECT_EQ(report->faults[0].fault_type, "missed-heartbeat");
  EXPECT_FALSE(report->faults[0].detection_latency_ns);
  EXPECT_EQ(report->faults[0].end, FaultEnd::kUnfinished);
}

Trace ThreeCrashes(int64_t first_gap_ms) {
  TraceBuilder b;
  DeviceId nic = b.Device("nic0", "net");
  int64_t t = 0;
  for (int i = 0; i < 3; ++i) {
    b.Ok(t, nic);
    FullRecovery(b, nic, t + 1);
    t += (first_gap_ms + i) * kMs;  // gap = first_gap_ms + i
    b.Ok(t, nic);
    t += 10 * kMs;
  }
  return b.trace();
}

TEST(AnalyzeTest, GroupsSummarizeGapsPerClassAndFaultType) {
  auto report = Analyze(ThreeCrashes(1));
  ASSERT_TRUE(report);
  ASSERT_EQ(report->faults.size(), 3u);
  ASSERT_EQ(report->groups.size(), 1u);
  const FaultGroup& g = report->groups[0];
  EXPECT_EQ(g.device_class, "net");
  EXPECT_EQ(g.fault_type, "segfault");
  EXPECT_EQ(g.faults, 3u);
  EXPECT_EQ(g.recovered, 3u);
  EXPECT_EQ(g.gap.min, 1 * kMs);
  EXPECT_EQ(g.gap.median, 2 * kMs);
  EXPECT_EQ(g.gap.max, 3 * kMs);
  EXPECT_EQ(g.detection.median, 50 * kUs);
  EXPECT_EQ(g.phases[int(RecoveryPhase::kProbe)].median, 10 * kUs);

  std::string text = RenderText(*report);
  EXPECT_NE(text.find("segfault"), std::string::npos);
  EXPECT_NE(text.find("2.00 ms"), std::string::npos) << text;
}

TEST(AnalyzeTest, JsonOutputParsesAndCarriesTheFigures) {
  auto report = Analyze(ThreeCrashes(1));
  ASSERT_TRUE(report);
  Json root = Json::Parse(RenderJson(*report));
  const Json& groups = root["groups"];
  ASSERT_EQ(groups.array.size(), 1u);
  const Json& gap = groups[0]["gap"];
  EXPECT_EQ(gap["median_ns"].number, 2e6);
  EXPECT_EQ(gap["count"].number, 3);
  const Json& faults = root["faults"];
  ASSERT_EQ(faults.array.size(), 3u);
  const Json& f0 = faults[0];
  EXPECT_EQ(f0["gap_ns"].number, 1e6);
  EXPECT_EQ(f0["end"].string, "recovered");
  EXPECT_EQ(f0["phases_ns"]["restart"].number, 10e3);
  EXPECT_EQ(f0["reason"].string, "signal");
  EXPECT_EQ(root["verifications"].kind, Json::Kind::kArray);
}

TEST(AnalyzeTest, MergingTracesPoolsTheirFaults) {
  std::vector<Trace> shards = {ThreeCrashes(1), ThreeCrashes(10)};
  auto report = Analyze(shards);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->traces, 2u);
  ASSERT_EQ(report->faults.size(), 6u);
  EXPECT_EQ(report->faults[3].trace_index, 1u);
  ASSERT_EQ(report->groups.size(), 1u);
  EXPECT_EQ(report->groups[0].faults, 6u);
  EXPECT_EQ(report->groups[0].gap.max, 12 * kMs);
  EXPECT_FALSE(Analyze(std::span<const Trace>()));
  // Request figures of both shards pool into one row per class and op.
  ASSERT_EQ(report->requests.size(), 1u);
  EXPECT_EQ(report->requests[0].device_class, "net");
  EXPECT_EQ(report->requests[0].ok, 12u);
}

// The bug: completions the dead (or stopped) driver had published before the
// fault are polled after it; the first of them ended the gap, which then read
// microseconds while the application waited for the whole recovery. The gap
// runs until the first completion after the device's reset.
TEST(AnalyzeTest, CompletionsPublishedBeforeTheResetDoNotEndTheGap) {
  TraceBuilder b;
  DeviceId nic = b.Device("nic0", "net");
  b.Ok(100 * kUs, nic).Ok(200 * kUs, nic);
  b.At(300 * kUs, nic, FaultInjected{"demo", "hang", 1});
  b.Ok(310 * kUs, nic);  // published before the stop, polled after it
  b.At(80 * kMs, nic, Detected{DetectionReason::kMissedHeartbeat, 0});
  b.Phase(nic, RecoveryPhase::kIsolate, 80 * kMs, 81 * kMs);
  b.Ok(80'500 * kUs, nic);  // collected while isolating: still the old driver's
  b.Phase(nic, RecoveryPhase::kQuiesce, 81 * kMs, 82 * kMs);
  b.Phase(nic, RecoveryPhase::kRestart, 82 * kMs, 85 * kMs);
  b.Phase(nic, RecoveryPhase::kResume, 85 * kMs, 86 * kMs);
  b.Ok(90 * kMs, nic).Ok(91 * kMs, nic);
  auto report = Analyze(b.trace());
  ASSERT_TRUE(report);
  ASSERT_EQ(report->faults.size(), 1u);
  const FaultRecord& f = report->faults[0];
  EXPECT_EQ(f.detection_latency_ns, 80 * kMs - 300 * kUs);
  EXPECT_EQ(f.gap_begin_ns, 80'500 * kUs);  // the last completion the application saw
  EXPECT_EQ(f.gap_end_ns, 90 * kMs);
  EXPECT_EQ(f.gap_ns, 9'500 * kUs);
}

// Requests the crash fenced (posted receive buffers, above all) are counted
// as interrupted, apart from requests that failed.
TEST(AnalyzeTest, InterruptedRequestsAreNotCountedAsFailed) {
  TraceBuilder b;
  DeviceId nic = b.Device("nic0", "net");
  b.Ok(100 * kUs, nic, RequestOp::kReceive);
  for (int i = 0; i < 5; ++i)
    b.At(200 * kUs, nic, RequestCompleted{RequestOp::kReceive, RequestOutcome::kInterrupted, 0, 10 * kMs});
  b.At(300 * kUs, nic, RequestCompleted{RequestOp::kReceive, RequestOutcome::kFailed, 0, 10 * kUs});
  auto report = Analyze(b.trace());
  ASSERT_TRUE(report);
  ASSERT_EQ(report->requests.size(), 1u);
  EXPECT_EQ(report->requests[0].ok, 1u);
  EXPECT_EQ(report->requests[0].failed, 1u);
  EXPECT_EQ(report->requests[0].interrupted, 5u);
  EXPECT_EQ(report->requests[0].latency.count, 1u);  // only completions that delivered count
  EXPECT_NE(RenderText(*report).find("interrupted"), std::string::npos);
}

TEST(AnalyzeTest, OutcomeOfAStatus) {
  EXPECT_EQ(OutcomeOfStatus(0), RequestOutcome::kOk);
  EXPECT_EQ(OutcomeOfStatus(static_cast<int32_t>(Errc::kInterrupted)), RequestOutcome::kInterrupted);
  EXPECT_EQ(OutcomeOfStatus(static_cast<int32_t>(Errc::kNoDevice)), RequestOutcome::kInterrupted);
  EXPECT_EQ(OutcomeOfStatus(static_cast<int32_t>(Errc::kIo)), RequestOutcome::kFailed);
}

}  // namespace
}  // namespace umbra::recorder
