#include "runtime/hw/sound/wav.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "runtime/hw/sound/wav_compare.h"
#include "tests/runtime/hw/sound/test_driver.h"

namespace umbra::hw::sound {
namespace {

using testing::TempPath;

std::vector<std::byte> FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto b = std::as_bytes(std::span<const char>(raw));
  return {b.begin(), b.end()};
}

class WavRoundTrip : public ::testing::TestWithParam<AudioFormat> {};

TEST_P(WavRoundTrip, WriteThenReadGivesTheSameFrames) {
  WavFile in = GenerateTestSignal(GetParam(), 1234);
  std::string path = TempPath("roundtrip.wav");
  ASSERT_TRUE(WriteWav(path, in));
  auto out = ReadWav(path);
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->format, in.format);
  EXPECT_EQ(out->data, in.data);
}

INSTANTIATE_TEST_SUITE_P(Formats, WavRoundTrip,
                         ::testing::Values(AudioFormat{48000, 2, SoundFormat::kS16Le},
                                           AudioFormat{44100, 1, SoundFormat::kS32Le},
                                           AudioFormat{16000, 8, SoundFormat::kFloatLe}));

TEST(WavWriter, FlushLeavesAValidFileWhileWriting) {
  std::string path = TempPath("streaming.wav");
  auto writer = WavWriter::Create(path, {8000, 1, SoundFormat::kS16Le});
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteSilence(100));
  ASSERT_TRUE((*writer)->Flush());
  auto mid = ReadWav(path);
  ASSERT_TRUE(mid) << mid.error().ToString();
  EXPECT_EQ(mid->frames(), 100u);
  ASSERT_TRUE((*writer)->WriteSilence(50));
  ASSERT_TRUE((*writer)->Finish());
  EXPECT_EQ(ReadWav(path)->frames(), 150u);
  EXPECT_FALSE((*writer)->WriteSilence(1)) << "writing after Finish must fail";
}

// Each malformed image is refused with kParse and a message naming the problem.
struct Malformed {
  const char* what;
  std::function<void(std::vector<std::byte>&)> damage;
  const char* message;
};

TEST(WavParse, MalformedFilesAreRefusedWithAClearMessage) {
  std::string path = TempPath("good.wav");
  ASSERT_TRUE(WriteWav(path, GenerateTestSignal({48000, 2, SoundFormat::kS16Le}, 10)));
  const std::vector<std::byte> good = FileBytes(path);
  auto put16 = [](std::vector<std::byte>& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); };
  auto put32 = [](std::vector<std::byte>& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); };
  const Malformed cases[] = {
      {"truncated header", [](auto& b) { b.resize(8); }, "too short"},
      {"not RIFF", [](auto& b) { std::memcpy(b.data(), "RIFX", 4); }, "missing RIFF"},
      {"not WAVE", [](auto& b) { std::memcpy(b.data() + 8, "AVI ", 4); }, "not WAVE"},
      {"mp3 tag", [&](auto& b) { put16(b, 20, 0x55); }, "unsupported format tag 0x0055"},
      {"24-bit", [&](auto& b) { put16(b, 34, 24); }, "24 bits"},
      {"zero channels", [&](auto& b) { put16(b, 22, 0); }, "0 channels"},
      {"bad block align", [&](auto& b) { put16(b, 32, 3); }, "block align 3"},
      {"short fmt", [&](auto& b) { put32(b, 16, 12); }, "fmt chunk is 12 bytes"},
      {"data too long", [&](auto& b) { put32(b, 40, 1000); }, "declares 1000 bytes"},
      {"partial frame",
       [&](auto& b) {
         put32(b, 40, 38);
         b.resize(44 + 38);
       },
       "not a whole number"},
      {"no data", [](auto& b) { b.resize(36); }, "no data chunk"},
  };
  for (const Malformed& c : cases) {
    std::vector<std::byte> bytes = good;
    c.damage(bytes);
    auto r = ParseWav(bytes, "case.wav");
    ASSERT_FALSE(r) << c.what;
    EXPECT_EQ(r.error().code, Errc::kParse) << c.what;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos) << c.what << ": " << r.error().message;
    EXPECT_NE(r.error().message.find("case.wav"), std::string::npos) << c.what;
  }
  auto missing = ReadWav(TempPath("does-not-exist.wav"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
}

TEST(TestSignal, EveryFrameIsSoundAndEveryWindowIsUnique) {
  for (SoundFormat f : {SoundFormat::kS16Le, SoundFormat::kS32Le, SoundFormat::kFloatLe}) {
    WavFile w = GenerateTestSignal({48000, 2, f}, 48000 * 3);
    std::set<std::vector<std::byte>> windows;
    const uint64_t kWindow = 8;
    for (uint64_t i = 0; i < w.frames(); ++i) ASSERT_FALSE(IsSilentFrame(w.frame(i))) << i;
    for (uint64_t i = 0; i + kWindow <= w.frames(); i += 1) {
      auto first = w.data.begin() + i * w.format.frame_bytes();
      windows.emplace(first, first + kWindow * w.format.frame_bytes());
    }
    EXPECT_EQ(windows.size(), w.frames() - kWindow + 1) << SoundFormatName(f);
  }
}

class Compare : public ::testing::Test {
 protected:
  AudioFormat format_{48000, 2, SoundFormat::kS16Le};
  WavFile ref_ = GenerateTestSignal(format_, 48000);
  uint32_t fb_ = format_.frame_bytes();

  void Silence(WavFile& w, uint64_t first, uint64_t end) {
    std::memset(w.data.data() + first * fb_, 0, (end - first) * fb_);
  }
  CompareReport Run(const WavFile& out) {
    auto r = CompareAudio(ref_, out);
    EXPECT_TRUE(r);
    return *r;
  }
};

TEST_F(Compare, IdenticalFilesHaveNoGapAndNoMismatch) {
  CompareReport r = Run(ref_);
  EXPECT_TRUE(r.clean());
  EXPECT_TRUE(r.gaps.empty());
  EXPECT_EQ(r.compared_frames, ref_.frames());
}

TEST_F(Compare, ReportsEachGapFromFirstMissingToFirstRestoredFrame) {
  WavFile out = ref_;
  Silence(out, 4800, 5040);
  Silence(out, 10000, 10001);
  CompareReport r = Run(out);
  EXPECT_TRUE(r.clean()) << r.ToString();
  ASSERT_EQ(r.gaps.size(), 2u) << r.ToString();
  EXPECT_EQ(r.gaps[0].first_frame, 4800u);
  EXPECT_EQ(r.gaps[0].end_frame, 5040u);
  EXPECT_DOUBLE_EQ(r.gaps[0].first_ms, 100.0);
  EXPECT_DOUBLE_EQ(r.gaps[0].duration_ms, 5.0);
  EXPECT_EQ(r.gaps[1].frames(), 1u);
}

TEST_F(Compare, LateSoundAfterAGapIsReportedAsShifted) {
  // 240 frames of silence, then the stream resumes where it stopped (late).
  WavFile out = ref_;
  Silence(out, 1000, 1240);
  std::memcpy(out.data.data() + 1240 * fb_, ref_.data.data() + 1000 * fb_, 2000 * fb_);
  CompareReport r = Run(out);
  ASSERT_EQ(r.gaps.size(), 1u);
  ASSERT_FALSE(r.clean());
  EXPECT_EQ(r.mismatches[0].kind, MismatchKind::kShifted) << r.ToString();
  EXPECT_EQ(r.mismatches[0].offset, -240);
  EXPECT_EQ(r.mismatches[0].first_frame, 1240u);
}

TEST_F(Compare, ReplayedPeriodIsReportedAsRepeated) {
  WavFile out = ref_;
  std::memcpy(out.data.data() + 2240 * fb_, ref_.data.data() + 2000 * fb_, 240 * fb_);
  CompareReport r = Run(out);
  ASSERT_EQ(r.mismatches.size(), 1u) << r.ToString();
  EXPECT_EQ(r.mismatches[0].kind, MismatchKind::kRepeated);
  EXPECT_EQ(r.mismatches[0].first_frame, 2240u);
  EXPECT_EQ(r.mismatches[0].end_frame, 2480u);
  EXPECT_EQ(r.mismatches[0].offset, -240);
}

TEST_F(Compare, GarbageIsReportedAsCorrupted) {
  WavFile out = ref_;
  for (uint64_t i = 3000 * fb_; i < 3100 * fb_; ++i) out.data[i] = std::byte(0x5A);
  CompareReport r = Run(out);
  ASSERT_EQ(r.mismatches.size(), 1u) << r.ToString();
  EXPECT_EQ(r.mismatches[0].kind, MismatchKind::kCorrupted);
  EXPECT_EQ(r.mismatches[0].first_frame, 3000u);
  EXPECT_EQ(r.mismatches[0].end_frame, 3100u);
}

TEST_F(Compare, ShortOutputAndTrailingSilenceAreAccounted) {
  WavFile shorter = ref_;
  shorter.data.resize(1000 * fb_);
  EXPECT_EQ(Run(shorter).missing_tail, ref_.frames() - 1000);
  WavFile longer = ref_;
  longer.data.resize(longer.data.size() + 500 * fb_);
  EXPECT_TRUE(Run(longer).clean());
  std::memset(longer.data.data() + (ref_.frames() + 10) * fb_, 1, fb_);
  CompareReport r = Run(longer);
  ASSERT_EQ(r.mismatches.size(), 1u);
  EXPECT_EQ(r.mismatches[0].kind, MismatchKind::kExtra);
}

TEST_F(Compare, RefusesDifferentFormats) {
  WavFile other = GenerateTestSignal({44100, 2, SoundFormat::kS16Le}, 10);
  auto r = CompareAudio(ref_, other);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
}

}  // namespace
}  // namespace umbra::hw::sound
