#include "recorder/trace_file.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/recorder/test_util.h"

namespace umbra::recorder {
namespace {

using namespace testing;

// Byte offsets of every length-delimited frame in `bytes`.
std::vector<size_t> FrameOffsets(const std::string& bytes) {
  std::vector<size_t> offsets;
  size_t pos = 0;
  while (pos < bytes.size()) {
    offsets.push_back(pos);
    uint64_t size = 0;
    int shift = 0;
    uint8_t b;
    do {
      b = static_cast<uint8_t>(bytes[pos++]);
      size |= uint64_t{b & 0x7fu} << shift;
      shift += 7;
    } while (b & 0x80);
    pos += size;
  }
  return offsets;
}

Trace SampleTrace(int events) {
  TraceBuilder b;
  DeviceId nic = b.Device("nic0", "net");
  for (int i = 0; i < events; ++i) b.Ok((i + 1) * kUs, nic);
  b.trace().header.host_name = "testhost";
  return b.trace();
}

class TraceFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteTrace(SampleTrace(10), path_));
    bytes_ = ReadFile(path_);
    offsets_ = FrameOffsets(bytes_);
    // header, one device, ten events, the end record.
    ASSERT_EQ(offsets_.size(), 13u);
  }

  TempDir dir_;
  std::string path_ = dir_.File("t.trace");
  std::string bytes_;
  std::vector<size_t> offsets_;
};

TEST_F(TraceFileTest, WrittenTraceReadsBackEqual) {
  auto trace = ReadTrace(path_);
  ASSERT_TRUE(trace) << trace.error().ToString();
  Trace want = SampleTrace(10);
  EXPECT_TRUE(trace->complete);
  EXPECT_FALSE(trace->damage);
  EXPECT_EQ(trace->header.host_name, "testhost");
  EXPECT_EQ(trace->devices, want.devices);
  EXPECT_EQ(trace->events, want.events);
}

TEST_F(TraceFileTest, TruncatedTraceReportsTheOffsetAndKeepsEventsBefore) {
  // Cut in the middle of the seventh event (frame 8).
  size_t cut = offsets_[8] + 3;
  WriteFile(path_, bytes_.substr(0, cut));
  auto trace = ReadTrace(path_);
  ASSERT_TRUE(trace) << trace.error().ToString();
  ASSERT_TRUE(trace->damage);
  EXPECT_EQ(trace->damage->offset, offsets_[8]);
  EXPECT_NE(trace->damage->message.find("truncated"), std::string::npos) << trace->damage->message;
  EXPECT_NE(trace->damage->message.find("byte " + std::to_string(offsets_[8])), std::string::npos)
      << trace->damage->message;
  EXPECT_FALSE(trace->complete);
  Trace want = SampleTrace(6);
  EXPECT_EQ(trace->events, want.events);
}

TEST_F(TraceFileTest, CorruptRecordReportsTheOffsetAndKeepsEventsBefore) {
  std::string bad = bytes_;
  // Overwrite the payload of the fifth event (frame 6) with garbage.
  for (size_t i = offsets_[6] + 1; i < offsets_[7]; ++i) bad[i] = '\xff';
  WriteFile(path_, bad);
  auto trace = ReadTrace(path_);
  ASSERT_TRUE(trace);
  ASSERT_TRUE(trace->damage);
  EXPECT_EQ(trace->damage->offset, offsets_[6]);
  EXPECT_NE(trace->damage->message.find("corrupt"), std::string::npos) << trace->damage->message;
  EXPECT_EQ(trace->events, SampleTrace(4).events);
}

TEST_F(TraceFileTest, GarbageLengthPrefixIsCorruption) {
  std::string bad = bytes_;
  for (size_t i = offsets_[3]; i < offsets_[3] + 11; ++i) bad[i] = '\xff';
  WriteFile(path_, bad);
  auto trace = ReadTrace(path_);
  ASSERT_TRUE(trace);
  ASSERT_TRUE(trace->damage);
  EXPECT_EQ(trace->damage->offset, offsets_[3]);
  EXPECT_NE(trace->damage->message.find("corrupt"), std::string::npos) << trace->damage->message;
  EXPECT_EQ(trace->events.size(), 1u);
}

TEST_F(TraceFileTest, EveryTruncationKeepsAnExactPrefix) {
  Trace want = SampleTrace(10);
  for (size_t cut = offsets_[1]; cut < bytes_.size(); ++cut) {
    auto trace = ParseTrace(std::string_view(bytes_).substr(0, cut), "cut");
    ASSERT_TRUE(trace) << cut;
    ASSERT_TRUE(trace->damage) << cut;
    ASSERT_LE(trace->events.size(), want.events.size());
    for (size_t i = 0; i < trace->events.size(); ++i) ASSERT_EQ(trace->events[i], want.events[i]) << cut;
  }
}

TEST_F(TraceFileTest, RandomByteDamageNeverCrashesAndKeepsEventsBeforeIt) {
  Trace want = SampleTrace(10);
  uint64_t state = 12345;
  auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
  for (int round = 0; round < 2000; ++round) {
    std::string bad = bytes_;
    size_t pos = offsets_[1] + (next() >> 33) % (bad.size() - offsets_[1]);
    bad[pos] = static_cast<char>(next() >> 56);
    auto trace = ParseTrace(bad, "flipped");
    ASSERT_TRUE(trace);
    // Events in frames wholly before the damaged one are intact.
    size_t frame = std::upper_bound(offsets_.begin(), offsets_.end(), pos) - offsets_.begin() - 1;
    size_t intact = frame >= 2 ? frame - 2 : 0;
    ASSERT_GE(trace->events.size(), std::min(intact, want.events.size())) << pos;
    for (size_t i = 0; i < std::min(intact, want.events.size()); ++i)
      ASSERT_EQ(trace->events[i], want.events[i]) << pos;
  }
}

TEST_F(TraceFileTest, FileThatIsNotATraceFails) {
  WriteFile(path_, "hello, this is not a trace at all\n");
  auto trace = ReadTrace(path_);
  ASSERT_FALSE(trace);
  EXPECT_EQ(trace.error().code, Errc::kParse);
  EXPECT_FALSE(ReadTrace(dir_.File("missing.trace")));
  WriteFile(path_, "");
  EXPECT_FALSE(ReadTrace(path_));
}

TEST(MergeTracesTest, DevicesJoinByNameAndEventsInterleaveByTime) {
  TraceBuilder a;
  DeviceId a_nic = a.Device("nic0", "net");
  a.Ok(1 * kMs, a_nic).Ok(3 * kMs, a_nic);
  a.trace().lost_events = 2;
  TraceBuilder b;
  DeviceId b_disk = b.Device("disk0", "block");
  DeviceId b_nic = b.Device("nic0", "net");
  b.Ok(2 * kMs, b_nic).Ok(4 * kMs, b_disk, RequestOp::kWrite);
  b.At(5 * kMs, b_disk, LinkChanged{LinkEvent::kSupplierDown, b_nic});
  b.trace().header.sampling_rate = 4;
  std::vector<Trace> parts = {a.trace(), b.trace()};
  Trace m = MergeTraces(parts);
  ASSERT_EQ(m.devices.size(), 2u);
  EXPECT_EQ(m.devices[0].name, "nic0");
  EXPECT_EQ(m.devices[1].name, "disk0");
  ASSERT_EQ(m.events.size(), 5u);
  for (size_t i = 1; i < m.events.size(); ++i) EXPECT_LE(m.events[i - 1].time_ns, m.events[i].time_ns);
  EXPECT_EQ(m.events[1].device, 0u) << "b's nic0 is the merged nic0";
  EXPECT_EQ(m.events[3].device, 1u);
  EXPECT_EQ(std::get<LinkChanged>(m.events[4].body).supplier, 0u) << "the supplier index is remapped too";
  EXPECT_EQ(m.lost_events, 2u);
  EXPECT_EQ(m.header.sampling_rate, 4u);
}

}  // namespace
}  // namespace umbra::recorder
