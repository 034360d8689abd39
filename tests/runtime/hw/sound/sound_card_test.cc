#include "runtime/hw/sound/sound_card.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/clock.h"
#include "runtime/hw/sound/wav_compare.h"
#include "runtime/hw/sound/wav_microphone.h"
#include "runtime/hw/sound/wav_speaker.h"
#include "tests/runtime/hw/sound/test_driver.h"

namespace umbra::hw::sound {
namespace {

using testing::TempPath;
using testing::TestDriver;

constexpr AudioFormat kFormat{48000, 2, SoundFormat::kS16Le};
constexpr uint32_t kPeriod = 240;  // 5 ms at 48 kHz
constexpr uint32_t kPeriods = 8;

struct Bench {
  std::unique_ptr<SoundCard> card;
  WavSpeaker* speaker = nullptr;  // owned by the card
  std::string path;
};

Bench MakeCard(const std::string& name, ClockMode clock, double speed = 1.0, std::unique_ptr<AudioSource> mic = nullptr,
               std::vector<SoundFault>* faults = nullptr) {
  Bench b;
  b.path = TempPath(name + ".wav");
  auto speaker = WavSpeaker::Create({.path = b.path, .silence_log_path = b.path + ".silences"});
  if (!speaker) throw std::runtime_error(speaker.error().ToString());
  b.speaker = speaker->get();
  SoundCardOptions options;
  options.name = name;
  options.clock = clock;
  options.speed = speed;
  options.dma_size = 256 * 1024;
  options.speaker = std::move(*speaker);
  options.microphone = std::move(mic);
  if (faults) options.on_fault = [faults](const SoundFault& f) { faults->push_back(f); };
  auto card = SoundCard::Create(std::move(options));
  if (!card) throw std::runtime_error(card.error().ToString());
  b.card = std::move(*card);
  return b;
}

WavFile ReadOutput(Bench& b) {
  b.card->FlushBackends();
  auto wav = ReadWav(b.path);
  if (!wav) throw std::runtime_error(wav.error().ToString());
  return *wav;
}

// Plays `src` in manual mode, feeding the ring after every period except
// during [stall_from, stall_to) (in periods). Ends with a drain.
void PlayManual(Bench& b, const WavFile& src, uint64_t stall_from = ~0ull, uint64_t stall_to = 0) {
  TestDriver driver(*b.card);
  driver.Configure(SoundStream::kPlayback, src.format, kPeriod, kPeriods, 4096);
  driver.FillPlayback(src);
  driver.Command(SoundStream::kPlayback, SoundCommand::kStart);
  ASSERT_TRUE(b.card->Advance(0));
  ASSERT_EQ(driver.state(SoundStream::kPlayback), SoundStreamState::kRunning);
  bool drain_sent = false;
  for (uint64_t period = 0; driver.state(SoundStream::kPlayback) != SoundStreamState::kStopped; ++period) {
    ASSERT_TRUE(b.card->Advance(1));
    if (period >= stall_from && period < stall_to) continue;
    driver.FillPlayback(src);
    if (!drain_sent && driver.stream(SoundStream::kPlayback).appl_ptr.load() == src.frames()) {
      driver.Command(SoundStream::kPlayback, SoundCommand::kDrain);
      drain_sent = true;
    }
    ASSERT_LT(period, 100000u) << "the stream never drained";
  }
}

TEST(SoundCard, PowerOnRegisters) {
  Bench b = MakeCard("poweron", ClockMode::kManual);
  TestDriver d(*b.card);
  EXPECT_EQ(d.regs().magic.load(), kSoundMagic);
  EXPECT_EQ(d.regs().version.load(), kSoundVersion);
  EXPECT_EQ(d.regs().int_mask.load(), kIntAll);
  EXPECT_EQ(d.regs().int_cause.load(), 0u);
  EXPECT_EQ(d.regs().volume.load(), 100u);
  EXPECT_EQ(d.regs().mute.load(), 0u);
  EXPECT_EQ(d.regs().dma_size.load(), 256u * 1024);
  EXPECT_EQ(d.state(SoundStream::kPlayback), SoundStreamState::kStopped);
  Resources r = b.card->resources();
  EXPECT_EQ(r.registers_size, kSoundRegistersSize);
  EXPECT_EQ(r.dma_offset, kSoundRegistersSize);
  EXPECT_GE(r.region_size, r.dma_offset + r.dma_size);
  EXPECT_EQ(b.card->compatible(), "umbra,sound-emu");
}

TEST(SoundCard, PlaybackWithAFedRingEqualsTheInput) {
  Bench b = MakeCard("fed", ClockMode::kManual);
  WavFile src = GenerateTestSignal(kFormat, 48000 + 77);  // not a whole number of periods
  PlayManual(b, src);
  WavFile out = ReadOutput(b);
  EXPECT_EQ(out.format, src.format);
  EXPECT_EQ(out.data, src.data);
  EXPECT_TRUE(b.speaker->silences().empty());
  TestDriver d(*b.card);
  EXPECT_EQ(d.stream(SoundStream::kPlayback).xruns.load(), 0u);
  EXPECT_EQ(d.stream(SoundStream::kPlayback).hw_ptr.load(), src.frames());
  EXPECT_EQ(b.card->faults(), 0u);
}

TEST(SoundCard, OtherFormatsPlayUnchanged) {
  for (AudioFormat f : {AudioFormat{44100, 1, SoundFormat::kS32Le}, AudioFormat{96000, 6, SoundFormat::kFloatLe}}) {
    Bench b = MakeCard("formats", ClockMode::kManual);
    WavFile src = GenerateTestSignal(f, kPeriod * 20);
    PlayManual(b, src);
    EXPECT_EQ(ReadOutput(b).data, src.data) << f.ToString();
  }
}

TEST(SoundCard, DriverStallGivesSilenceOfTheRightLengthAtTheRightPlace) {
  Bench b = MakeCard("stall", ClockMode::kManual);
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 100);
  const uint64_t kStallFrom = 20, kStallTo = 35;  // the driver sleeps 15 periods
  PlayManual(b, src, kStallFrom, kStallTo);
  WavFile out = ReadOutput(b);
  // The last fill before the stall (after period kStallFrom - 1 was played)
  // reached hw_ptr + ring; the first fill after it happens once period
  // kStallTo has been played, at the very start of the period after it: the
  // DAC has not played any of that period yet, so it plays all of it.
  const uint64_t gap_first = kStallFrom * kPeriod + kPeriods * kPeriod;
  const uint64_t gap_end = (kStallTo + 1) * kPeriod;
  auto report = CompareAudio(src, out);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->clean()) << report->ToString();
  ASSERT_EQ(report->gaps.size(), 1u) << report->ToString();
  EXPECT_EQ(report->gaps[0].first_frame, gap_first);
  EXPECT_EQ(report->gaps[0].end_frame, gap_end);
  EXPECT_DOUBLE_EQ(report->gaps[0].duration_ms, (gap_end - gap_first) / 48.0);
  EXPECT_EQ(out.frames(), src.frames());
  // The speaker's log says the same, and why.
  std::vector<SilenceRange> expected{{gap_first, gap_end, SilenceReason::kUnderrun}};
  EXPECT_EQ(b.speaker->silences(), expected);
  std::ifstream log(b.path + ".silences");
  std::string line;
  std::getline(log, line);
  EXPECT_EQ(line, std::to_string(gap_first) + " " + std::to_string(gap_end) + " underrun");
  TestDriver d(*b.card);
  EXPECT_EQ(d.stream(SoundStream::kPlayback).xruns.load(), 1u);
  EXPECT_EQ(d.stream(SoundStream::kPlayback).xrun_frames.load(), gap_end - gap_first);
}

// A stream started with an empty ring (a driver restarted mid-stream) whose
// frames come half a period late: the DAC plays those it has not reached
// yet; the half it passed is an underrun, nothing is shifted.
TEST(SoundCard, FramesWrittenDuringAPeriodArePlayedFromWhereTheDacIs) {
  Bench b = MakeCard("late-fill", ClockMode::kManual);
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 4);
  TestDriver d(*b.card);
  d.Configure(SoundStream::kPlayback, kFormat, kPeriod, kPeriods, 0);
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  ASSERT_TRUE(b.card->AdvanceTime(2'500'000));  // started with nothing to play; half a period passes
  d.FillPlayback(src);
  ASSERT_TRUE(b.card->AdvanceTime(20'000'000));  // the card sees the new appl_ptr, then plays on
  WavFile out = ReadOutput(b);
  auto report = CompareAudio(src, out);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->clean()) << report->ToString();
  ASSERT_EQ(report->gaps.size(), 1u) << report->ToString();
  EXPECT_EQ(report->gaps[0].first_frame, 0u);
  EXPECT_EQ(report->gaps[0].end_frame, kPeriod / 2);
  std::vector<SilenceRange> expected{{0, kPeriod / 2, SilenceReason::kUnderrun}};
  EXPECT_EQ(b.speaker->silences(), expected);
  EXPECT_EQ(d.stream(SoundStream::kPlayback).xruns.load(), 1u);
  EXPECT_EQ(d.stream(SoundStream::kPlayback).xrun_frames.load(), kPeriod / 2);
}

TEST(SoundCard, StreamStoppedByResetShowsAsSilenceForTheTimeItWasStopped) {
  Bench b = MakeCard("reset-gap", ClockMode::kManual);
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 40);
  TestDriver d(*b.card);
  d.Configure(SoundStream::kPlayback, kFormat, kPeriod, kPeriods, 0);
  d.FillPlayback(src);
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(b.card->Advance(1));
    d.FillPlayback(src);
  }
  b.card->Reset();  // the driver died; 12.5 ms pass
  ASSERT_TRUE(b.card->AdvanceTime(12'500'000));
  d.Configure(SoundStream::kPlayback, kFormat, kPeriod, kPeriods, 0);
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  ASSERT_TRUE(b.card->Advance(3));
  EXPECT_EQ(d.stream(SoundStream::kPlayback).start_frame.load(), 10 * kPeriod + 600);
  WavFile out = ReadOutput(b);
  ASSERT_EQ(out.frames(), 10 * kPeriod + 600 + 3 * kPeriod);
  std::vector<SilenceRange> silences = b.speaker->silences();
  ASSERT_EQ(silences.size(), 2u);
  EXPECT_EQ(silences[0], (SilenceRange{10 * kPeriod, 10 * kPeriod + 600, SilenceReason::kStopped}));
  EXPECT_EQ(silences[1].reason, SilenceReason::kUnderrun);  // the new driver wrote nothing
}

TEST(SoundCard, CaptureReproducesTheSource) {
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 50);
  Bench b = MakeCard("capture", ClockMode::kManual, 1.0, WavMicrophone::FromWav(src, SourceEnd::kSilence));
  TestDriver d(*b.card);
  d.Configure(SoundStream::kCapture, kFormat, kPeriod, kPeriods, 0);
  d.Command(SoundStream::kCapture, SoundCommand::kStart);
  WavFile captured{kFormat, {}};
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(b.card->Advance(1));
    d.DrainCapture(captured);
  }
  ASSERT_EQ(captured.frames(), 60u * kPeriod);
  auto report = CompareAudio(src, captured);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->clean()) << report->ToString();
  EXPECT_TRUE(report->gaps.empty()) << report->ToString();
  for (uint64_t i = src.frames(); i < captured.frames(); ++i) ASSERT_TRUE(IsSilentFrame(captured.frame(i)));
  EXPECT_EQ(d.stream(SoundStream::kCapture).xruns.load(), 0u);
}

TEST(SoundCard, CaptureRestartedAfterResetResumesAtTheClockPosition) {
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 100);
  Bench b = MakeCard("capture-reset", ClockMode::kManual, 1.0, WavMicrophone::FromWav(src, SourceEnd::kSilence));
  TestDriver d(*b.card);
  d.Configure(SoundStream::kCapture, kFormat, kPeriod, kPeriods, 0);
  d.Command(SoundStream::kCapture, SoundCommand::kStart);
  ASSERT_TRUE(b.card->Advance(5));
  b.card->Reset();  // the driver died; 20 ms pass before the next one starts capturing
  ASSERT_TRUE(b.card->AdvanceTime(20'000'000));
  d.Configure(SoundStream::kCapture, kFormat, kPeriod, kPeriods, 0);
  d.Command(SoundStream::kCapture, SoundCommand::kStart);
  ASSERT_TRUE(b.card->Advance(3));
  const uint64_t start = d.stream(SoundStream::kCapture).start_frame.load();
  EXPECT_EQ(start, 5 * kPeriod + 960);
  WavFile captured{kFormat, {}};
  d.DrainCapture(captured);
  ASSERT_EQ(captured.frames(), 3u * kPeriod);
  // Stream frame p after the restart is source frame start + p.
  EXPECT_EQ(0,
            std::memcmp(captured.data.data(), src.data.data() + start * kFormat.frame_bytes(), captured.data.size()));
}

TEST(SoundCard, SpeakerLogsAStreamInAnotherFormatAsSilence) {
  Bench b = MakeCard("format-change", ClockMode::kManual);
  TestDriver d(*b.card);
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 10);
  d.Configure(SoundStream::kPlayback, kFormat, kPeriod, kPeriods, 0);
  d.FillPlayback(src);
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  ASSERT_TRUE(b.card->Advance(2));
  d.Command(SoundStream::kPlayback, SoundCommand::kStop);
  ASSERT_TRUE(b.card->Advance(0));  // one command at a time: wait until it is taken
  AudioFormat mono{48000, 1, SoundFormat::kS16Le};
  d.Configure(SoundStream::kPlayback, mono, kPeriod, kPeriods, 0);
  d.FillPlayback(GenerateTestSignal(mono, kPeriod * 10));
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  ASSERT_TRUE(b.card->Advance(2));
  EXPECT_EQ(b.card->faults(), 0u);
  EXPECT_EQ(d.state(SoundStream::kPlayback), SoundStreamState::kRunning);
  EXPECT_EQ(d.stream(SoundStream::kPlayback).hw_ptr.load(), 2u * kPeriod);
  WavFile out = ReadOutput(b);
  EXPECT_EQ(out.format, kFormat);
  ASSERT_EQ(out.frames(), 4u * kPeriod);
  std::vector<SilenceRange> expected{{2 * kPeriod, 4 * kPeriod, SilenceReason::kFormatMismatch}};
  EXPECT_EQ(b.speaker->silences(), expected);
}

TEST(SoundCard, SpedUpCaptureReproducesTheSource) {
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 120);
  Bench b = MakeCard("capture-fast", ClockMode::kRealTime, 4.0, WavMicrophone::FromWav(src, SourceEnd::kSilence));
  b.card->Start();
  TestDriver d(*b.card);
  d.Configure(SoundStream::kCapture, kFormat, kPeriod, 64, 0);
  d.regs().int_mask.store(kIntAll & ~kIntCapturePeriod);
  d.Command(SoundStream::kCapture, SoundCommand::kStart);
  WavFile captured{kFormat, {}};
  for (int waits = 0; captured.frames() < src.frames(); ++waits) {
    ASSERT_LT(waits, 100000);
    d.WaitInterrupt(100);
    d.DrainCapture(captured);
  }
  d.Command(SoundStream::kCapture, SoundCommand::kStop);
  b.card->Stop();
  EXPECT_EQ(d.stream(SoundStream::kCapture).xruns.load(), 0u) << "the driver fell behind: a loaded machine?";
  captured.data.resize(src.data.size());
  EXPECT_EQ(captured.data, src.data);
}

TEST(SoundCard, CaptureLoopsTheSourceWhenAskedTo) {
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 3 + 10);
  Bench b = MakeCard("capture-loop", ClockMode::kManual, 1.0, WavMicrophone::FromWav(src, SourceEnd::kLoop));
  TestDriver d(*b.card);
  d.Configure(SoundStream::kCapture, kFormat, kPeriod, kPeriods, 0);
  d.Command(SoundStream::kCapture, SoundCommand::kStart);
  WavFile captured{kFormat, {}};
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(b.card->Advance(1));
    d.DrainCapture(captured);
  }
  for (uint64_t i = 0; i < captured.frames(); ++i)
    ASSERT_TRUE(std::ranges::equal(captured.frame(i), src.frame(i % src.frames()))) << i;
}

TEST(SoundCard, CaptureOverrunIsCountedAndTheRingHoldsTheLatestFrames) {
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 50);
  Bench b = MakeCard("overrun", ClockMode::kManual, 1.0, WavMicrophone::FromWav(src, SourceEnd::kSilence));
  TestDriver d(*b.card);
  d.Configure(SoundStream::kCapture, kFormat, kPeriod, kPeriods, 0);
  d.Command(SoundStream::kCapture, SoundCommand::kStart);
  ASSERT_TRUE(b.card->Advance(kPeriods + 3));  // the driver reads nothing
  EXPECT_EQ(d.stream(SoundStream::kCapture).xruns.load(), 1u);
  EXPECT_EQ(d.stream(SoundStream::kCapture).xrun_frames.load(), 3u * kPeriod);
  WavFile captured{kFormat, {}};
  d.DrainCapture(captured);  // skips the overwritten frames
  auto report = CompareAudio(src, captured);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->clean()) << report->ToString();
  ASSERT_EQ(report->gaps.size(), 1u);
  EXPECT_EQ(report->gaps[0].first_frame, 0u);
  EXPECT_EQ(report->gaps[0].end_frame, 3u * kPeriod);
}

TEST(SoundCard, VolumeAndMuteAreAppliedInTheDac) {
  Bench b = MakeCard("volume", ClockMode::kManual);
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 12);
  TestDriver d(*b.card);
  d.regs().volume.store(50);
  d.Configure(SoundStream::kPlayback, kFormat, kPeriod, kPeriods, 0);
  d.FillPlayback(src);
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(b.card->Advance(1));
    d.FillPlayback(src);
  }
  d.regs().mute.store(1);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(b.card->Advance(1));
    d.FillPlayback(src);
  }
  d.regs().mute.store(0);
  d.regs().volume.store(100);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(b.card->Advance(1));
    d.FillPlayback(src);
  }
  WavFile out = ReadOutput(b);
  ASSERT_EQ(out.frames(), 12u * kPeriod);
  const auto* in = reinterpret_cast<const int16_t*>(src.data.data());
  const auto* o = reinterpret_cast<const int16_t*>(out.data.data());
  for (uint64_t i = 0; i < 4 * kPeriod * 2; ++i) ASSERT_EQ(o[i], static_cast<int16_t>(in[i] * 50 / 100)) << i;
  for (uint64_t i = 4 * kPeriod * 2; i < 8 * kPeriod * 2; ++i) ASSERT_EQ(o[i], 0) << i;
  for (uint64_t i = 8 * kPeriod * 2; i < 12 * kPeriod * 2; ++i) ASSERT_EQ(o[i], in[i]) << i;
  EXPECT_TRUE(b.speaker->silences().empty()) << "mute is not an underrun";
}

TEST(SoundCard, ResetBringsRegistersToPowerOnValues) {
  Bench b = MakeCard("reset", ClockMode::kManual);
  TestDriver d(*b.card);
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 40);
  d.regs().volume.store(30);
  d.regs().mute.store(1);
  d.regs().int_mask.store(0);
  d.Configure(SoundStream::kPlayback, kFormat, kPeriod, kPeriods, 0);
  d.FillPlayback(src);
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  ASSERT_TRUE(b.card->Advance(2));
  ASSERT_NE(d.regs().int_cause.load(), 0u);
  b.card->Reset();
  EXPECT_EQ(d.regs().volume.load(), 100u);
  EXPECT_EQ(d.regs().mute.load(), 0u);
  EXPECT_EQ(d.regs().int_mask.load(), kIntAll);
  EXPECT_EQ(d.regs().int_cause.load(), 0u);
  EXPECT_FALSE(d.InterruptPending());
  for (const SoundStreamRegs& s : d.regs().streams) {
    EXPECT_EQ(s.state.load(), 0u);
    EXPECT_EQ(s.rate.load(), 0u);
    EXPECT_EQ(s.hw_ptr.load(), 0u);
    EXPECT_EQ(s.appl_ptr.load(), 0u);
    EXPECT_EQ(s.period_frames.load(), 0u);
    EXPECT_EQ(s.xruns.load(), 0u);
  }
  EXPECT_EQ(d.regs().magic.load(), kSoundMagic);
  // Time passes: a reset card plays nothing.
  uint64_t frames = b.speaker->frames();
  ASSERT_TRUE(b.card->AdvanceTime(50'000'000));
  EXPECT_EQ(b.speaker->frames(), frames);
  // The driver's own reset bit does the same.
  d.regs().volume.store(10);
  d.regs().control.store(kControlReset);
  d.Ring();
  ASSERT_TRUE(b.card->Advance(0));
  EXPECT_EQ(d.regs().volume.load(), 100u);
  EXPECT_EQ(d.regs().control.load(), 0u);
}

TEST(SoundCard, InterruptsAreMaskableAndSuppressedWhilePending) {
  Bench b = MakeCard("irq", ClockMode::kManual);
  TestDriver d(*b.card);
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 40);
  d.Configure(SoundStream::kPlayback, kFormat, kPeriod, kPeriods, 0);
  d.FillPlayback(src);
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  ASSERT_TRUE(b.card->Advance(1));
  EXPECT_FALSE(d.InterruptPending()) << "masked at power-on";
  EXPECT_EQ(d.regs().int_cause.load() & kIntPlaybackPeriod, kIntPlaybackPeriod) << "latched while masked";
  d.regs().int_cause.store(0);
  d.regs().int_mask.store(0);
  ASSERT_TRUE(b.card->Advance(1));
  EXPECT_EQ(d.WaitInterrupt(0), kIntPlaybackPeriod);
  ASSERT_TRUE(b.card->Advance(1));
  ASSERT_TRUE(d.InterruptPending());
  // Not acknowledged: the next period sets no new bit and signals nothing.
  uint64_t v;
  ASSERT_EQ(::read(b.card->resources().interrupt_fd, &v, sizeof v), 8);
  ASSERT_TRUE(b.card->Advance(1));
  EXPECT_FALSE(d.InterruptPending());
  EXPECT_EQ(d.regs().int_cause.exchange(0), kIntPlaybackPeriod);
  ASSERT_TRUE(b.card->Advance(1));
  EXPECT_TRUE(d.InterruptPending());
}

// A sped-up real-time clock and a manual clock give the same file.
TEST(SoundCard, ManualAndSpedUpClocksGiveIdenticalFiles) {
  WavFile src = GenerateTestSignal(kFormat, 48000 + 123);
  Bench manual = MakeCard("same-manual", ClockMode::kManual);
  PlayManual(manual, src);
  WavFile a = ReadOutput(manual);

  Bench fast = MakeCard("same-fast", ClockMode::kRealTime, 4.0);
  fast.card->Start();
  TestDriver d(*fast.card);
  const uint32_t kRing = 64;  // 320 ms of audio: 80 ms of real slack at 4x
  d.Configure(SoundStream::kPlayback, kFormat, kPeriod, kRing, 0);
  d.FillPlayback(src);
  d.regs().int_mask.store(kIntAll & ~(kIntPlaybackPeriod | kIntStopped));
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  bool drain_sent = false;
  for (int waits = 0; d.state(SoundStream::kPlayback) != SoundStreamState::kStopped || !drain_sent; ++waits) {
    ASSERT_LT(waits, 100000);
    d.WaitInterrupt(100);
    d.FillPlayback(src);
    if (!drain_sent && d.stream(SoundStream::kPlayback).appl_ptr.load() == src.frames()) {
      d.Command(SoundStream::kPlayback, SoundCommand::kDrain);
      drain_sent = true;
    }
  }
  fast.card->Stop();
  WavFile b = ReadOutput(fast);
  EXPECT_EQ(d.stream(SoundStream::kPlayback).xruns.load(), 0u) << "the driver fell behind: a loaded machine?";
  EXPECT_EQ(a.data, src.data);
  EXPECT_EQ(b.data, a.data);
}

// The driver in its own process, knowing only the region fd, the eventfds and
// the datasheet: the atomics and the DMA ring work across the process boundary.
TEST(SoundCard, DriverInAnotherProcessPlaysTheInput) {
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 150 + 5);
  Bench b = MakeCard("child-driver", ClockMode::kRealTime, 4.0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child: no gtest assertions, only an exit status.
    TestDriver d(*b.card);  // maps the memfd again, through its fd
    d.Configure(SoundStream::kPlayback, kFormat, kPeriod, 64, 0);
    d.FillPlayback(src);
    d.regs().int_mask.store(kIntAll & ~(kIntPlaybackPeriod | kIntStopped));
    d.Command(SoundStream::kPlayback, SoundCommand::kStart);
    bool drain_sent = false;
    for (int waits = 0; waits < 100000; ++waits) {
      if (drain_sent && d.state(SoundStream::kPlayback) == SoundStreamState::kStopped) ::_exit(0);
      d.WaitInterrupt(100);
      d.FillPlayback(src);
      if (!drain_sent && d.stream(SoundStream::kPlayback).appl_ptr.load() == src.frames() &&
          d.stream(SoundStream::kPlayback).command.load() == 0) {
        d.Command(SoundStream::kPlayback, SoundCommand::kDrain);
        drain_sent = true;
      }
    }
    ::_exit(1);
  }
  b.card->Start();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  b.card->Stop();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child driver did not finish";
  TestDriver d(*b.card);
  EXPECT_EQ(d.stream(SoundStream::kPlayback).xruns.load(), 0u) << "the driver fell behind: a loaded machine?";
  EXPECT_EQ(ReadOutput(b).data, src.data);
}

TEST(SoundCard, RealTimeClockIsPacedByTheSampleClock) {
  // 20 periods of 5 ms at 2x: about 50 ms. Bounds are generous on purpose.
  Bench b = MakeCard("paced", ClockMode::kRealTime, 2.0);
  b.card->Start();
  TestDriver d(*b.card);
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 20);
  d.Configure(SoundStream::kPlayback, kFormat, kPeriod, 32, 0);
  d.FillPlayback(src);
  d.regs().int_mask.store(kIntAll & ~kIntStopped);
  int64_t t0 = MonotonicNanos();
  d.Command(SoundStream::kPlayback, SoundCommand::kStart);
  while (d.stream(SoundStream::kPlayback).command.load() != 0) ::usleep(100);  // taken
  d.Command(SoundStream::kPlayback, SoundCommand::kDrain);
  while (d.state(SoundStream::kPlayback) != SoundStreamState::kStopped) d.WaitInterrupt(100);
  int64_t elapsed = MonotonicNanos() - t0;
  b.card->Stop();
  EXPECT_GE(elapsed, 45'000'000);  // cannot be faster than the clock
  EXPECT_EQ(ReadOutput(b).data, src.data);
}

// If sox is installed, an independent tool reads the speaker's file.
TEST(SoundCard, SoxReadsTheSpeakerFile) {
  if (std::system("command -v sox >/dev/null 2>&1") != 0) GTEST_SKIP() << "sox is not installed";
  Bench b = MakeCard("sox", ClockMode::kManual);
  WavFile src = GenerateTestSignal(kFormat, kPeriod * 100);
  PlayManual(b, src, 30, 40);
  ReadOutput(b);
  auto run = [](const std::string& cmd) {
    std::string out;
    std::FILE* p = ::popen(cmd.c_str(), "r");
    char buf[512];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    if (p) ::pclose(p);
    return out;
  };
  std::string info = run("sox --i '" + b.path + "' 2>&1");
  EXPECT_NE(info.find("Channels       : 2"), std::string::npos) << info;
  EXPECT_NE(info.find("Sample Rate    : 48000"), std::string::npos) << info;
  EXPECT_NE(info.find("24000 samples"), std::string::npos) << info;
  // sox's statistics: the whole file, the gap the driver stall left (period
  // 30's fill was the last; the ring held 8 more periods; the fill after the
  // stall comes as period 41 starts, in time for all of it) and a played range.
  auto field = [](const std::string& text, const std::string& name) {
    size_t at = text.find(name);
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size()));
  };
  std::string stat = run("sox '" + b.path + "' -n stat 2>&1");
  EXPECT_EQ(field(stat, "Samples read:"), 48000.0) << stat;
  EXPECT_GT(field(stat, "Maximum amplitude:"), 0.1) << stat;
  const uint64_t gap_first = (30 + kPeriods) * kPeriod, gap_end = (40 + 1) * kPeriod;
  std::string gap = run("sox '" + b.path + "' -n trim " + std::to_string(gap_first) + "s " +
                        std::to_string(gap_end - gap_first) + "s stat 2>&1");
  EXPECT_EQ(field(gap, "Samples read:"), 2.0 * (gap_end - gap_first)) << gap;
  EXPECT_EQ(field(gap, "Maximum amplitude:"), 0.0) << gap;
  std::string before = run("sox '" + b.path + "' -n trim " + std::to_string(gap_first - 100) + "s 100s stat 2>&1");
  EXPECT_GT(field(before, "Maximum amplitude:"), 0.0) << before;
  std::string after = run("sox '" + b.path + "' -n trim " + std::to_string(gap_end) + "s 100s stat 2>&1");
  EXPECT_GT(field(after, "Maximum amplitude:"), 0.0) << after;
}

}  // namespace
}  // namespace umbra::hw::sound
