#include "recorder/recorder.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "recorder/analysis.h"
#include "recorder/trace_file.h"
#include "tests/recorder/test_util.h"

namespace umbra::recorder {
namespace {

using testing::TempDir;

std::vector<EventBody> Bodies(const Trace& t) {
  std::vector<EventBody> out;
  for (const Event& e : t.events) out.push_back(e.body);
  return out;
}

TEST(RecorderTest, EventsWrittenThroughTheHotApiReadBackEqual) {
  TempDir dir;
  auto rec = Recorder::Create({.path = dir.File("t.trace")});
  ASSERT_TRUE(rec) << rec.error().ToString();
  Recorder& r = **rec;
  DeviceId nic = r.RegisterDevice("nic0", "net");
  DeviceId disk = r.RegisterDevice("disk0", "block");
  EXPECT_EQ(r.RegisterDevice("nic0", "net"), nic);

  // Events with strings travel a separate queue; flush them first so the file
  // order is the order below.
  r.RunMarker(RunMarkerKind::kBegin, "run-17", 99);
  r.FaultInjected(nic, "nic.tx.entry", "segfault", 1234);
  ASSERT_TRUE(r.Flush());
  r.RequestSubmitted(nic, RequestOp::kTransmit, 1500);
  r.RequestCompleted(nic, RequestOp::kTransmit, 1500, 4200, RequestOutcome::kOk);
  r.DriverSpawned(nic, 4321);
  r.DriverReady(nic);
  r.DriverExited(nic, ExitKind::kSignal, 11);
  r.Detected(nic, DetectionReason::kSignal, 11);
  r.PhaseBegin(nic, RecoveryPhase::kReplayConfiguration);
  r.PhaseEnd(nic, RecoveryPhase::kReplayConfiguration, PhaseOutcome::kAborted);
  r.DeviceFailed(nic);
  r.RequestsDisposed(disk, Disposition::kQueued, 3);
  r.LinkChanged(disk, LinkEvent::kSupplierDown, nic);
  ASSERT_TRUE(r.Flush());
  r.WorkloadVerified(disk, "verifier", VerifyOutcome::kFailed, "block 7 stale");
  ASSERT_TRUE(r.Close());
  EXPECT_EQ(r.recorded_events(), 14u);

  auto trace = ReadTrace(dir.File("t.trace"));
  ASSERT_TRUE(trace) << trace.error().ToString();
  EXPECT_TRUE(trace->complete);
  EXPECT_FALSE(trace->damage) << trace->damage->message;
  EXPECT_EQ(trace->header.sampling_rate, 1u);
  EXPECT_GT(trace->header.start_monotonic_ns, 0);
  ASSERT_EQ(trace->devices.size(), 2u);
  EXPECT_EQ(trace->devices[nic], (DeviceInfo{"nic0", "net"}));
  EXPECT_EQ(trace->devices[disk], (DeviceInfo{"disk0", "block"}));

  std::vector<EventBody> want = {
      RunMarker{RunMarkerKind::kBegin, "run-17", 99},
      FaultInjected{"nic.tx.entry", "segfault", 1234},
      RequestSubmitted{RequestOp::kTransmit, 1500},
      RequestCompleted{RequestOp::kTransmit, RequestOutcome::kOk, 1500, 4200},
      DriverSpawned{4321},
      DriverReady{},
      DriverExited{ExitKind::kSignal, 11},
      Detected{DetectionReason::kSignal, 11},
      PhaseBegin{RecoveryPhase::kReplayConfiguration},
      PhaseEnd{RecoveryPhase::kReplayConfiguration, PhaseOutcome::kAborted},
      DeviceFailed{},
      RequestsDisposed{Disposition::kQueued, 3},
      LinkChanged{LinkEvent::kSupplierDown, nic},
      WorkloadVerified{"verifier", VerifyOutcome::kFailed, "block 7 stale"},
  };
  EXPECT_EQ(Bodies(*trace), want);
  EXPECT_EQ(trace->events[0].device, kNoDevice);
  EXPECT_EQ(trace->events[2].device, nic);
  EXPECT_EQ(trace->events[11].device, disk);
  for (size_t i = 1; i < trace->events.size(); ++i) {
    EXPECT_GE(trace->events[i].time_ns, trace->events[i - 1].time_ns) << i;
  }
}

TEST(RecorderTest, FlushWritesEverythingRecordedSoFarBeforeClose) {
  TempDir dir;
  auto rec = Recorder::Create({.path = dir.File("t.trace"), .flush_period = std::chrono::hours(1)});
  ASSERT_TRUE(rec);
  DeviceId d = (*rec)->RegisterDevice("snd0", "sound");
  for (int i = 0; i < 50; ++i) (*rec)->RequestSubmitted(d, RequestOp::kPlayback, 960);
  ASSERT_TRUE((*rec)->Flush());

  auto trace = ReadTrace(dir.File("t.trace"));
  ASSERT_TRUE(trace);
  EXPECT_EQ(trace->events.size(), 50u);
  EXPECT_FALSE(trace->complete);
  ASSERT_TRUE(trace->damage);
  EXPECT_NE(trace->damage->message.find("without the end record"), std::string::npos);
}

TEST(RecorderTest, FullBufferCountsEventsAsLostWithoutBlocking) {
  TempDir dir;
  auto rec =
      Recorder::Create({.path = dir.File("t.trace"), .buffer_records = 8, .flush_period = std::chrono::hours(1)});
  ASSERT_TRUE(rec);
  DeviceId d = (*rec)->RegisterDevice("disk0", "block");
  for (int i = 0; i < 100; ++i) (*rec)->RequestSubmitted(d, RequestOp::kWrite, i);
  EXPECT_EQ((*rec)->lost_events(), 92u);
  ASSERT_TRUE((*rec)->Flush());
  // Drained: room again.
  for (int i = 0; i < 4; ++i) (*rec)->RequestSubmitted(d, RequestOp::kWrite, 1000 + i);
  ASSERT_TRUE((*rec)->Close());

  auto trace = ReadTrace(dir.File("t.trace"));
  ASSERT_TRUE(trace);
  EXPECT_TRUE(trace->complete);
  ASSERT_EQ(trace->events.size(), 12u);
  EXPECT_EQ(trace->lost_events, 92u);
  // The first eight were kept, in order.
  for (int i = 0; i < 8; ++i) EXPECT_EQ(std::get<RequestSubmitted>(trace->events[i].body).size, uint64_t(i));
  auto report = Analyze(*trace);
  ASSERT_TRUE(report);
  ASSERT_FALSE(report->warnings.empty());
  EXPECT_NE(report->warnings[0].find("92 events lost"), std::string::npos);
}

TEST(RecorderTest, SamplingKeepsOneInNAndTheRateIsInTheHeader) {
  TempDir dir;
  auto rec = Recorder::Create({.path = dir.File("t.trace"), .sampling_rate = 4});
  ASSERT_TRUE(rec);
  DeviceId d = (*rec)->RegisterDevice("nic0", "net");
  for (int i = 0; i < 100; ++i) (*rec)->RequestCompleted(d, RequestOp::kReceive, 64, 100, RequestOutcome::kOk);
  (*rec)->Detected(d, DetectionReason::kDeadline);  // never sampled
  ASSERT_TRUE((*rec)->Close());

  auto trace = ReadTrace(dir.File("t.trace"));
  ASSERT_TRUE(trace);
  EXPECT_EQ(trace->header.sampling_rate, 4u);
  EXPECT_EQ(trace->events.size(), 26u);
  auto report = Analyze(*trace);
  ASSERT_TRUE(report);
  ASSERT_EQ(report->requests.size(), 1u);
  EXPECT_EQ(report->requests[0].ok, 100u);  // scaled back
}

TEST(RecorderTest, SamplingOfAlternatingSubmitAndCompleteKeepsBoth) {
  TempDir dir;
  auto rec = Recorder::Create({.path = dir.File("t.trace"), .sampling_rate = 2});
  ASSERT_TRUE(rec);
  DeviceId d = (*rec)->RegisterDevice("disk0", "block");
  for (int i = 0; i < 100; ++i) {
    (*rec)->RequestSubmitted(d, RequestOp::kRead, 4096);
    (*rec)->RequestCompleted(d, RequestOp::kRead, 4096, 100, RequestOutcome::kOk);
  }
  ASSERT_TRUE((*rec)->Close());
  auto trace = ReadTrace(dir.File("t.trace"));
  ASSERT_TRUE(trace);
  size_t submitted = 0, completed = 0;
  for (const Event& e : trace->events) {
    submitted += std::holds_alternative<RequestSubmitted>(e.body);
    completed += std::holds_alternative<RequestCompleted>(e.body);
  }
  EXPECT_EQ(submitted, 50u);
  EXPECT_EQ(completed, 50u);
}

TEST(RecorderTest, CallerSuppliedTimestampsAreKept) {
  TempDir dir;
  auto rec = Recorder::Create({.path = dir.File("t.trace")});
  ASSERT_TRUE(rec);
  DeviceId d = (*rec)->RegisterDevice("nic0", "net");
  (*rec)->RequestSubmitted(d, RequestOp::kTransmit, 64, 1000);
  (*rec)->RequestCompleted(d, RequestOp::kTransmit, 64, 500, RequestOutcome::kOk, 1500);
  ASSERT_TRUE((*rec)->Close());
  auto trace = ReadTrace(dir.File("t.trace"));
  ASSERT_TRUE(trace);
  ASSERT_EQ(trace->events.size(), 2u);
  EXPECT_EQ(trace->events[0].time_ns, 1000);
  EXPECT_EQ(trace->events[1].time_ns, 1500);
}

TEST(RecorderTest, CloseIsIdempotentAndLaterEventsAreIgnored) {
  TempDir dir;
  auto rec = Recorder::Create({.path = dir.File("t.trace")});
  ASSERT_TRUE(rec);
  DeviceId d = (*rec)->RegisterDevice("nic0", "net");
  (*rec)->DriverReady(d);
  ASSERT_TRUE((*rec)->Close());
  EXPECT_FALSE((*rec)->on());
  (*rec)->DriverReady(d);
  (*rec)->FaultInjected(d, "s", "abort", 1);
  EXPECT_TRUE((*rec)->Flush());
  EXPECT_TRUE((*rec)->Close());
  auto trace = ReadTrace(dir.File("t.trace"));
  ASSERT_TRUE(trace);
  EXPECT_TRUE(trace->complete);
  EXPECT_FALSE(trace->damage);
  EXPECT_EQ(trace->events.size(), 1u);
}

TEST(RecorderTest, PhaseScopeEndsAbortedUnlessDone) {
  TempDir dir;
  auto rec = Recorder::Create({.path = dir.File("t.trace")});
  ASSERT_TRUE(rec);
  DeviceId d = (*rec)->RegisterDevice("nic0", "net");
  { PhaseScope phase(**rec, d, RecoveryPhase::kProbe); }
  {
    PhaseScope phase(**rec, d, RecoveryPhase::kProbe);
    phase.Done();
  }
  ASSERT_TRUE((*rec)->Close());
  auto trace = ReadTrace(dir.File("t.trace"));
  ASSERT_TRUE(trace);
  std::vector<EventBody> want = {
      PhaseBegin{RecoveryPhase::kProbe}, PhaseEnd{RecoveryPhase::kProbe, PhaseOutcome::kAborted},
      PhaseBegin{RecoveryPhase::kProbe}, PhaseEnd{RecoveryPhase::kProbe, PhaseOutcome::kDone}};
  EXPECT_EQ(Bodies(*trace), want);
}

TEST(RecorderTest, OffRecorderRecordsNothing) {
  Recorder& off = Recorder::Off();
  EXPECT_FALSE(off.on());
  off.RequestSubmitted(0, RequestOp::kRead, 1);
  off.FaultInjected(0, "x", "abort", 1);
  EXPECT_TRUE(off.Flush());
  EXPECT_TRUE(off.Close());
  EXPECT_EQ(off.recorded_events(), 0u);
  EXPECT_EQ(off.lost_events(), 0u);
}

TEST(RecorderTest, CreateRejectsBadOptions) {
  TempDir dir;
  EXPECT_FALSE(Recorder::Create({.path = dir.File("t.trace"), .sampling_rate = 0}));
  EXPECT_FALSE(Recorder::Create({.path = dir.File("t.trace"), .buffer_records = 0}));
  auto missing = Recorder::Create({.path = dir.File("no/such/dir/t.trace")});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kIo);
}

TEST(RecorderTest, ConcurrentProducersLoseNothingThatWasNotCounted) {
  TempDir dir;
  auto rec = Recorder::Create(
      {.path = dir.File("t.trace"), .buffer_records = 1024, .flush_period = std::chrono::milliseconds(1)});
  ASSERT_TRUE(rec);
  Recorder& r = **rec;
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 20000;
  std::vector<DeviceId> ids;
  for (int t = 0; t < kThreads; ++t) ids.push_back(r.RegisterDevice("dev" + std::to_string(t), "block"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        r.RequestSubmitted(ids[t], RequestOp::kWrite, i);
        if (i % 5000 == 0) {
          ASSERT_TRUE(r.Flush());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(r.Close());

  auto trace = ReadTrace(dir.File("t.trace"));
  ASSERT_TRUE(trace);
  EXPECT_TRUE(trace->complete);
  EXPECT_EQ(trace->events.size() + trace->lost_events, kThreads * kPerThread);
  // Each thread's events arrive in its own order, sizes strictly increasing.
  std::vector<int64_t> last(kThreads, -1);
  for (const Event& e : trace->events) {
    auto size = static_cast<int64_t>(std::get<RequestSubmitted>(e.body).size);
    ASSERT_LT(e.device, kThreads);
    EXPECT_GT(size, last[e.device]);
    last[e.device] = size;
  }
}

}  // namespace
}  // namespace umbra::recorder
