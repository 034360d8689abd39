// The net class's data path records its requests: transmits and receives with
// their sizes, latencies and outcomes, sampled as the recorder asks, and a
// crash between them gives the analysis a gap on the device.
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <variant>

#include <gtest/gtest.h>

#include "recorder/analysis.h"
#include "recorder/recorder.h"
#include "recorder/trace_file.h"
#include "tests/shadows/net/net_rig.h"

namespace umbra::net {
namespace {

using namespace umbra::net::testing;
using recorder::RequestOp;
using recorder::RequestOutcome;

std::vector<std::byte> Frame(uint64_t dst, uint64_t src, uint32_t seq, size_t size) {
  std::vector<std::byte> f(size, std::byte{0x5A});
  for (int i = 0; i < 6; ++i) {
    f[i] = std::byte(dst >> (8 * i));
    f[6 + i] = std::byte(src >> (8 * i));
  }
  f[12] = std::byte{0x88};
  f[13] = std::byte{0xB6};
  std::memcpy(f.data() + 14, &seq, sizeof seq);
  return f;
}

struct Counts {
  uint64_t tx_submitted = 0, tx_ok = 0, rx_submitted = 0, rx_ok = 0, not_ok = 0;
  uint64_t tx_bytes = 0, rx_bytes = 0;
  bool latencies_sane = true;
};

Counts Count(const recorder::Trace& trace) {
  Counts c;
  for (const recorder::Event& e : trace.events) {
    if (const auto* s = std::get_if<recorder::RequestSubmitted>(&e.body)) {
      (s->op == RequestOp::kTransmit ? c.tx_submitted : c.rx_submitted)++;
    } else if (const auto* d = std::get_if<recorder::RequestCompleted>(&e.body)) {
      if (d->latency_ns < 0 || d->latency_ns > 60'000'000'000) c.latencies_sane = false;
      if (d->outcome != RequestOutcome::kOk) {
        ++c.not_ok;
      } else if (d->op == RequestOp::kTransmit) {
        ++c.tx_ok;
        c.tx_bytes += d->size;
      } else {
        ++c.rx_ok;
        c.rx_bytes += d->size;
      }
    }
  }
  return c;
}

class NetRecordingTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(path_); }

  void Build(uint32_t sampling_rate) {
    path_ = (std::filesystem::temp_directory_path() / ("umbra-net-recording-" + std::to_string(getpid()) + ".trace"))
                .string();
    auto r = recorder::Recorder::Create({.path = path_, .sampling_rate = sampling_rate});
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    rec_ = std::move(*r);
    ASSERT_NO_FATAL_FAILURE(
        rig_.Build(shadows::RecoveryMode::kShadow, [&](runtime::DriverHostOptions& o) { o.recorder = rec_.get(); }));
    ASSERT_TRUE(rig_.shadow->Up().has_value());
  }

  // Transmits `n` frames of `size` bytes one call each and waits until the
  // peer has them all.
  void TransmitAndDrain(uint32_t n, size_t size) {
    for (uint32_t i = 0; i < n; ++i) {
      auto f = Frame(kPeerMac, rig_.shadow->Mac(), i, size);
      FrameView v(f);
      auto sent = rig_.shadow->Transmit({&v, 1});
      ASSERT_TRUE(sent.has_value()) << sent.error().ToString();
      ASSERT_EQ(*sent, 1u);
    }
    std::vector<std::byte> buf(4096);
    uint32_t got = 0;
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    while (got < n && MonotonicNanos() < deadline) {
      auto r = rig_.peer->Receive(buf, 100 * kMs);
      ASSERT_TRUE(r.has_value()) << r.error().ToString();
      if (*r > 0) ++got;
    }
    ASSERT_EQ(got, n);
  }

  // The peer sends `n` frames; the shadow receives them all.
  void ReceiveAll(uint32_t n, size_t size) {
    for (uint32_t i = 0; i < n; ++i) {
      auto f = Frame(rig_.shadow->Mac(), kPeerMac, i, size);
      ASSERT_TRUE(rig_.peer->Send(f).has_value());
    }
    std::array<FrameView, 32> in;
    uint32_t seen = 0;
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    while (seen < n && MonotonicNanos() < deadline) {
      auto r = rig_.shadow->Receive(in, 100 * kMs);
      ASSERT_TRUE(r.has_value()) << r.error().ToString();
      seen += static_cast<uint32_t>(*r);
    }
    ASSERT_EQ(seen, n);
  }

  recorder::Trace StopAndRead() {
    rig_.shadow->Stop();  // the last transmit completions are polled by now or fenced
    EXPECT_TRUE(rec_->Close().has_value());
    auto trace = recorder::ReadTrace(path_);
    EXPECT_TRUE(trace.has_value());
    return std::move(*trace);
  }

  std::string path_;
  std::unique_ptr<recorder::Recorder> rec_;  // outlives the rig (declared first)
  NetRig rig_;
};

TEST_F(NetRecordingTest, TransmitsAndReceivesAreRecordedWithSizesAndLatencies) {
  ASSERT_NO_FATAL_FAILURE(Build(1));
  ASSERT_NO_FATAL_FAILURE(TransmitAndDrain(50, 200));
  ASSERT_NO_FATAL_FAILURE(ReceiveAll(40, 300));
  // A transmit's completion is seen by the next call that polls the ring.
  ASSERT_NO_FATAL_FAILURE(TransmitAndDrain(1, 200));
  recorder::Trace trace = StopAndRead();
  ASSERT_EQ(trace.devices.size(), 1u);
  EXPECT_EQ(trace.devices[0].name, "nic0");
  EXPECT_EQ(trace.devices[0].device_class, "net");
  Counts c = Count(trace);
  EXPECT_EQ(c.tx_submitted, 51u);
  EXPECT_GE(c.tx_ok, 50u);
  EXPECT_EQ(c.tx_bytes, c.tx_ok * 200);
  EXPECT_EQ(c.rx_ok, 40u);
  EXPECT_EQ(c.rx_bytes, 40u * 300);
  EXPECT_GE(c.rx_submitted, 40u) << "each posted receive buffer is a submission";
  EXPECT_TRUE(c.latencies_sane);

  auto report = recorder::Analyze(trace);
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->faults.empty());
  ASSERT_EQ(report->requests.size(), 2u);
  for (const recorder::RequestGroup& g : report->requests) {
    EXPECT_EQ(g.device_class, "net");
    EXPECT_GT(g.latency.count, 0u);
  }
}

TEST_F(NetRecordingTest, SamplingKeepsOneInN) {
  ASSERT_NO_FATAL_FAILURE(Build(10));
  ASSERT_NO_FATAL_FAILURE(TransmitAndDrain(100, 100));
  recorder::Trace trace = StopAndRead();
  EXPECT_EQ(trace.header.sampling_rate, 10u);
  Counts c = Count(trace);
  EXPECT_EQ(c.tx_submitted, 10u) << "the first of every 10";
  EXPECT_LE(c.tx_ok, 10u);
}

TEST_F(NetRecordingTest, ACrashBetweenTransmitsGivesTheDeviceAGap) {
  ASSERT_NO_FATAL_FAILURE(Build(1));
  ASSERT_NO_FATAL_FAILURE(TransmitAndDrain(20, 100));
  ASSERT_NO_FATAL_FAILURE(rig_.KillAndRecover(SIGSEGV));
  ASSERT_NO_FATAL_FAILURE(TransmitAndDrain(20, 100));
  // Transmit completions are reaped when the application next calls in;
  // receive for a while so that the driver's latest ones are seen.
  std::array<FrameView, 8> in;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(rig_.shadow->Receive(in, 5 * kMs).has_value());
  recorder::Trace trace = StopAndRead();
  auto report = recorder::Analyze(trace);
  ASSERT_TRUE(report.has_value());
  ASSERT_EQ(report->faults.size(), 1u);
  const recorder::FaultRecord& f = report->faults[0];
  EXPECT_EQ(f.device_class, "net");
  EXPECT_EQ(f.end, recorder::FaultEnd::kRecovered);
  ASSERT_TRUE(f.gap_ns.has_value()) << "a transmit completed after the recovery";
  EXPECT_GT(*f.gap_ns, 0);
  EXPECT_GT(*f.gap_end_ns, f.start_ns);
  for (int p = 0; p < recorder::kPhaseCount; ++p) {
    EXPECT_TRUE(f.phase_ns[p].has_value()) << "phase " << recorder::RecoveryPhaseName(recorder::RecoveryPhase(p));
  }
}

}  // namespace
}  // namespace umbra::net
