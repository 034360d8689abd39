// A real recovery recorded: the echo class with a driver process that is
// killed, the DriverHost's and the shadow core's events in one trace, and the
// recorder's analysis of it (the fault episode, its phases, the gap).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "recorder/analysis.h"
#include "recorder/recorder.h"
#include "recorder/trace_file.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/echo/echo_shadow.h"

namespace umbra::shadows {
namespace {

using recorder::RecoveryPhase;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

std::string TempTrace(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string(name) + "-" + std::to_string(getpid()) + ".trace"))
      .string();
}

runtime::DriverHostOptions EchoOptions(recorder::Recorder* rec) {
  runtime::DriverHostOptions o;
  o.device_name = "echo0";
  o.device_class = "echo";
  o.driver_binary = UMBRA_FAULTY_DRIVER;
  o.heartbeat_period_ns = 20 * kMs;
  o.data = {.ring_entries = 16, .buffer_size = 256, .buffer_count = 16};
  o.restart.budget = 10000;
  o.restart.backoff_initial_ns = 0;
  o.recorder = rec;
  return o;
}

// Records each echo the client completes, as a class interface would: the
// shadow core records phases and dispositions, the class its requests.
class RecordingClient {
 public:
  RecordingClient(echo::EchoShadow& shadow, runtime::DriverHost& host) : shadow_(shadow), host_(host) {}

  bool EchoOnce() {
    std::vector<std::byte> data(64, std::byte{7});
    const int64_t begin = MonotonicNanos();
    host_.recorder().RequestSubmitted(host_.recorder_device(), recorder::RequestOp::kOther, data.size(), begin);
    const bool ok = shadow_.Echo(data).has_value();
    const int64_t end = MonotonicNanos();
    host_.recorder().RequestCompleted(host_.recorder_device(), recorder::RequestOp::kOther, data.size(), end - begin,
                                      ok ? recorder::RequestOutcome::kOk : recorder::RequestOutcome::kFailed, end);
    return ok;
  }

 private:
  echo::EchoShadow& shadow_;
  runtime::DriverHost& host_;
};

class RecoveryRecordingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = TempTrace("umbra-recovery-recording");
    auto r = recorder::Recorder::Create({.path = path_, .flush_period = std::chrono::milliseconds(5)});
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    rec_ = std::move(*r);
  }
  void TearDown() override { std::filesystem::remove(path_); }

  echo::EchoShadow& Start(runtime::DriverHostOptions o) {
    host_ = *sup_.AddDevice(std::move(o));
    shadow_ = echo::EchoShadow::Create(*host_);
    shadow_->Start();
    EXPECT_TRUE(shadow_->WaitUntilPassive(10 * kSec).has_value());
    return *shadow_;
  }

  // Kills the driver through the host, or `from_outside` with kill(2) as an
  // operator or the OOM killer would.
  void KillAndRecover(int sig, bool from_outside = false) {
    const size_t before = shadow_->recoveries().size();
    if (from_outside) {
      ASSERT_EQ(::kill(host_->driver_pid(), sig), 0);
    } else {
      host_->Kill(sig);
    }
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    while (shadow_->recoveries().size() == before && MonotonicNanos() < deadline) usleep(100);
    ASSERT_GT(shadow_->recoveries().size(), before) << "the fault was noticed";
    ASSERT_TRUE(shadow_->WaitUntilPassive(10 * kSec).has_value());
  }

  // Stops everything, closes the trace and analyzes it.
  recorder::Report StopAndAnalyze() {
    shadow_->Stop();
    shadow_.reset();
    sup_.Stop();
    EXPECT_TRUE(rec_->Close().has_value());
    auto trace = recorder::ReadTrace(path_);
    EXPECT_TRUE(trace.has_value());
    EXPECT_TRUE(trace->complete);
    EXPECT_FALSE(trace->damage.has_value());
    auto report = recorder::Analyze(*trace);
    EXPECT_TRUE(report.has_value());
    return *report;
  }

  std::string path_;
  std::unique_ptr<recorder::Recorder> rec_;
  runtime::Supervisor sup_;
  runtime::DriverHost* host_ = nullptr;
  std::unique_ptr<echo::EchoShadow> shadow_;
};

TEST_F(RecoveryRecordingTest, OneCrashGivesOneEpisodeWithEveryPhaseInOrderAndAGap) {
  echo::EchoShadow& s = Start(EchoOptions(rec_.get()));
  ASSERT_TRUE(s.SetTag("blue").has_value());
  RecordingClient client(s, *host_);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.EchoOnce());
  // From outside: no handler runs, so the exit is seen first, then detected.
  KillAndRecover(SIGKILL, /*from_outside=*/true);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.EchoOnce());

  recorder::Report report = StopAndAnalyze();
  ASSERT_EQ(report.faults.size(), 1u);
  const recorder::FaultRecord& f = report.faults[0];
  EXPECT_EQ(f.device_name, "echo0");
  EXPECT_EQ(f.device_class, "echo");
  EXPECT_EQ(f.fault_type, "signal 9");
  EXPECT_EQ(f.end, recorder::FaultEnd::kRecovered);
  ASSERT_TRUE(f.reason.has_value());
  EXPECT_EQ(*f.reason, recorder::DetectionReason::kSignal);
  ASSERT_TRUE(f.detection_latency_ns.has_value());
  EXPECT_GE(*f.detection_latency_ns, 0);
  for (int p = 0; p < recorder::kPhaseCount; ++p) {
    EXPECT_TRUE(f.phase_ns[p].has_value()) << "phase " << RecoveryPhaseName(RecoveryPhase(p));
  }
  // Each phase once, done, in the order a recovery runs them, none overlapping.
  ASSERT_EQ(f.phases.size(), static_cast<size_t>(recorder::kPhaseCount));
  for (size_t i = 0; i < f.phases.size(); ++i) {
    EXPECT_EQ(f.phases[i].phase, RecoveryPhase(i));
    EXPECT_EQ(f.phases[i].outcome, recorder::PhaseOutcome::kDone);
    EXPECT_LE(f.phases[i].begin_ns, f.phases[i].end_ns);
    if (i > 0) {
      EXPECT_LE(f.phases[i - 1].end_ns, f.phases[i].begin_ns);
    }
  }
  ASSERT_TRUE(f.recovery_ns.has_value());
  EXPECT_GT(*f.recovery_ns, 0);
  ASSERT_TRUE(f.gap_ns.has_value());
  EXPECT_GT(*f.gap_ns, 0);
  EXPECT_LE(f.gap_begin_ns, f.start_ns);
  EXPECT_GT(*f.gap_end_ns, f.start_ns);
  ASSERT_EQ(report.groups.size(), 1u);
  EXPECT_EQ(report.groups[0].recovered, 1u);
}

TEST_F(RecoveryRecordingTest, DoubleFaultDuringReplayIsOneEpisodeWithAbortedReplays) {
  auto o = EchoOptions(rec_.get());
  o.settings["crash_replay_on"] = "2,3";  // the first two replacements die while replaying
  echo::EchoShadow& s = Start(std::move(o));
  ASSERT_TRUE(s.SetTag("x").has_value());
  RecordingClient client(s, *host_);
  ASSERT_TRUE(client.EchoOnce());
  KillAndRecover(SIGKILL);
  ASSERT_TRUE(client.EchoOnce());

  recorder::Report report = StopAndAnalyze();
  ASSERT_EQ(report.faults.size(), 1u) << "crashes during recovery belong to the episode";
  const recorder::FaultRecord& f = report.faults[0];
  EXPECT_EQ(f.end, recorder::FaultEnd::kRecovered);
  int replays = 0, aborted = 0, restarts = 0;
  for (const recorder::PhaseSpan& p : f.phases) {
    if (p.phase == RecoveryPhase::kRestart) ++restarts;
    if (p.phase != RecoveryPhase::kReplayConfiguration) continue;
    ++replays;
    if (p.outcome == recorder::PhaseOutcome::kAborted) ++aborted;
  }
  EXPECT_EQ(restarts, 3);
  EXPECT_EQ(replays, 3);
  EXPECT_EQ(aborted, 2);
  EXPECT_EQ(f.phases.back().phase, RecoveryPhase::kResume);
  EXPECT_TRUE(f.gap_ns.has_value());
}

TEST_F(RecoveryRecordingTest, AnsweredRequestsWhileRecoveringAreDisposedInTheEpisode) {
  echo::EchoShadow& s = Start(EchoOptions(rec_.get()));
  ASSERT_TRUE(s.SetTag("green").has_value());
  host_->Kill(SIGSTOP);  // hangs: detected by the watchdog, killed, recovered
  while (s.state() == ShadowState::kPassive) usleep(100);
  ASSERT_TRUE(s.SetTag("red").has_value()) << "answered (logged) while active";
  ASSERT_TRUE(s.WaitUntilPassive(10 * kSec).has_value());

  recorder::Report report = StopAndAnalyze();
  ASSERT_EQ(report.faults.size(), 1u);
  const recorder::FaultRecord& f = report.faults[0];
  EXPECT_EQ(f.end, recorder::FaultEnd::kRecovered);
  EXPECT_GE(f.disposed[static_cast<int>(recorder::Disposition::kAnswered)], 1u);
  EXPECT_EQ(f.fault_type, "missed-heartbeat");
  EXPECT_FALSE(f.detection_latency_ns.has_value()) << "the detection is the first sign";
}

TEST_F(RecoveryRecordingTest, CrashReportedByTheDriversSignalHandlerIsNamedBySignal) {
  echo::EchoShadow& s = Start(EchoOptions(rec_.get()));
  RecordingClient client(s, *host_);
  ASSERT_TRUE(client.EchoOnce());
  KillAndRecover(SIGSEGV);
  ASSERT_TRUE(client.EchoOnce());
  recorder::Report report = StopAndAnalyze();
  ASSERT_EQ(report.faults.size(), 1u) << "the reap after the report is the same fault";
  EXPECT_EQ(report.faults[0].fault_type, "signal 11");
  EXPECT_EQ(report.faults[0].end, recorder::FaultEnd::kRecovered);
}

TEST_F(RecoveryRecordingTest, ASigkillFromTheHostIsDetectedWhenSentNotWhenTheExitIsSeen) {
  echo::EchoShadow& s = Start(EchoOptions(rec_.get()));
  RecordingClient client(s, *host_);
  ASSERT_TRUE(client.EchoOnce());
  KillAndRecover(SIGKILL);
  ASSERT_TRUE(client.EchoOnce());
  ASSERT_EQ(host_->detections().size(), 1u);
  EXPECT_EQ(host_->detections()[0].detail, "sent by the host");
  recorder::Report report = StopAndAnalyze();
  ASSERT_EQ(report.faults.size(), 1u) << "the later reap is the same fault";
  const recorder::FaultRecord& f = report.faults[0];
  EXPECT_EQ(f.fault_type, "signal 9");
  EXPECT_EQ(f.end, recorder::FaultEnd::kRecovered);
  ASSERT_TRUE(f.reason.has_value());
  EXPECT_EQ(*f.reason, recorder::DetectionReason::kSignal);
  EXPECT_FALSE(f.detection_latency_ns.has_value()) << "the detection is the first sign";
}

TEST_F(RecoveryRecordingTest, WithoutARecorderNothingIsRecorded) {
  Start(EchoOptions(nullptr));
  EXPECT_FALSE(host_->recorder().on());
  KillAndRecover(SIGKILL);
  recorder::Report report = StopAndAnalyze();
  EXPECT_TRUE(report.faults.empty());
}

}  // namespace
}  // namespace umbra::shadows
