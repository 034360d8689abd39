// The sound class end to end: a real driver process behind the sound shadow,
// used only through sound::Pcm, while the driver is crashed, aborted, killed
// and hung. The speaker's WAV file is compared with what the application
// played, frame by frame.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/hw/sound/wav_compare.h"
#include "shadows/builtin/builtin.h"
#include "shadows/sound/workloads/sound_apps.h"
#include "tests/shadows/sound/sound_rig.h"

namespace umbra::sound {
namespace {

using namespace testing;
using hw::sound::AudioFormat;
using hw::sound::CompareAudio;
using hw::sound::GenerateTestSignal;
using hw::sound::SoundFormat;
using hw::sound::WavFile;

constexpr AudioFormat kFormat{48000, 2, SoundFormat::kS16Le};
constexpr PcmParams kParams{.rate = 48000, .channels = 2, .period_frames = 240, .periods = 8};

// Plays `signal` through the Pcm in 10 ms writes, then drains.
Result<void> Play(Pcm& pcm, const WavFile& signal) {
  UMBRA_TRY(pcm.OpenPlayback(kParams));
  const size_t step = 480 * kFormat.frame_bytes();
  for (size_t off = 0; off < signal.data.size(); off += step) {
    const size_t n = std::min(step, signal.data.size() - off);
    UMBRA_TRY(pcm.Write(std::span<const std::byte>(signal.data).subspan(off, n)));
  }
  UMBRA_TRY(pcm.Drain());
  return pcm.Close(Direction::kPlayback);
}

// Kills the driver with SIGSEGV, SIGABRT, SIGKILL and SIGSTOP (a hang) in
// turn at random moments until `done`.
void KillLoop(SoundRig& rig, std::atomic<bool>& done, std::atomic<int>& kills, int max_kills, uint32_t seed) {
  const int signals[] = {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP};
  std::mt19937 rng(seed);
  for (int i = 0; i < max_kills && !done; ++i) {
    usleep(std::uniform_int_distribution<int>(20'000, 80'000)(rng));
    if (done) break;
    auto r = rig.KillAndRecover(signals[i % 4]);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ++kills;
  }
}

Result<hw::sound::CompareReport> CompareSpeaker(SoundRig& rig, const WavFile& in) {
  rig.card->FlushBackends();
  WavFile out = UMBRA_TRY(hw::sound::ReadWav(rig.speaker_path));
  return CompareAudio(in, out);
}

TEST(SoundShadowTest, PlaybackSurvivesCrashesAbortsKillsAndHangsWithoutShiftedSamples) {
  SoundRig rig;
  auto built = rig.Build();
  ASSERT_TRUE(built.has_value()) << built.error().ToString();
  const WavFile in = GenerateTestSignal(kFormat, 48000 * 8);  // 8 s of audio, 2 s at 4x
  std::atomic<bool> done{false};
  std::atomic<int> kills{0};
  std::thread killer([&] { KillLoop(rig, done, kills, 12, 7); });
  auto played = Play(*rig.shadow, in);
  done = true;
  killer.join();
  ASSERT_TRUE(played.has_value()) << "the application saw an error: " << played.error().ToString();
  EXPECT_GE(kills, 4) << "playback outlived every kind of fault";
  auto report = CompareSpeaker(rig, in);
  ASSERT_TRUE(report.has_value()) << report.error().ToString();
  EXPECT_TRUE(report->clean()) << report->ToString();
  EXPECT_GE(report->gaps.size(), 1u) << "the crashes left gaps";
  EXPECT_EQ(report->missing_tail, 0u) << report->ToString();
  const PcmStatus st = rig.shadow->Status(Direction::kPlayback);
  EXPECT_EQ(st.position, in.frames()) << "the application's position counts every frame";
  for (const auto& g : report->gaps)
    std::printf("gap at %.1f ms: %llu frames (%.2f ms audio)\n", g.first_ms,
                static_cast<unsigned long long>(g.frames()), g.duration_ms);
}

TEST(SoundShadowTest, RealTimePlaybackAcrossOneCrashIsClean) {
  SoundRig rig;
  ASSERT_TRUE(rig.Build({.speed = 1.0}).has_value());
  const WavFile in = GenerateTestSignal(kFormat, 48000 / 2);  // 0.5 s at real pace
  std::thread killer([&] {
    usleep(200'000);
    auto r = rig.KillAndRecover(SIGSEGV);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
  });
  auto played = Play(*rig.shadow, in);
  killer.join();
  ASSERT_TRUE(played.has_value()) << played.error().ToString();
  auto report = CompareSpeaker(rig, in);
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->clean()) << report->ToString();
  for (const auto& g : report->gaps)
    std::printf("real-time gap: %llu frames = %.2f ms\n", static_cast<unsigned long long>(g.frames()), g.duration_ms);
}

TEST(SoundShadowTest, SoxSeesTheSpeakerFileAndItsLength) {
  if (std::system("command -v sox >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "sox is not installed: the independent check is skipped";
  }
  SoundRig rig;
  auto built = rig.Build();
  ASSERT_TRUE(built.has_value()) << built.error().ToString();
  const WavFile in = GenerateTestSignal(kFormat, 48000 * 2);
  std::thread killer([&] {
    usleep(150'000);
    ASSERT_TRUE(rig.KillAndRecover(SIGKILL).has_value());
  });
  ASSERT_TRUE(Play(*rig.shadow, in).has_value());
  killer.join();
  rig.card->FlushBackends();
  const std::string info = "sox --i -s " + rig.speaker_path + " > " + rig.speaker_path + ".samples";
  ASSERT_EQ(std::system(info.c_str()), 0);
  FILE* f = std::fopen((rig.speaker_path + ".samples").c_str(), "r");
  ASSERT_NE(f, nullptr);
  unsigned long long samples = 0;
  ASSERT_EQ(std::fscanf(f, "%llu", &samples), 1);
  std::fclose(f);
  EXPECT_GE(samples, in.frames()) << "sox reads every frame the card played";
  const std::string stat = "sox " + rig.speaker_path + " -n stat 2>/dev/null >/dev/null";
  EXPECT_EQ(std::system(stat.c_str()), 0) << "sox stat reads the file";
}

// What a capture read, frame by frame: inside a recorded gap it must be
// silence, outside it the source.
struct CaptureCheck {
  uint64_t wrong = 0;           // a frame that is neither
  uint64_t silent_in_gaps = 0;  // silent frames inside the gaps
  uint64_t gap_frames = 0;      // frames the gaps cover
};
CaptureCheck CheckCapture(const WavFile& source, const WavFile& captured, const std::vector<FrameRange>& gaps) {
  CaptureCheck c;
  size_t g = 0;
  for (uint64_t i = 0; i < captured.frames(); ++i) {
    while (g < gaps.size() && gaps[g].end <= i) ++g;
    const bool in_gap = g < gaps.size() && gaps[g].first <= i;
    const auto got = captured.frame(i);
    if (in_gap) {
      if (hw::sound::IsSilentFrame(got))
        ++c.silent_in_gaps;
      else
        ++c.wrong;
    } else if (!std::equal(got.begin(), got.end(), source.frame(i).begin())) {
      ++c.wrong;
    }
  }
  for (const auto& r : gaps) c.gap_frames += r.frames();
  return c;
}

// Reads `frames` of capture in 480-frame chunks; the application sees no error.
void Capture(Pcm& pcm, WavFile& captured) {
  const size_t step = 480 * kFormat.frame_bytes();
  for (size_t off = 0; off < captured.data.size(); off += step) {
    auto r = pcm.Read(std::span<std::byte>(captured.data).subspan(off, std::min(step, captured.data.size() - off)));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
  }
}

TEST(SoundShadowTest, RecordingAcrossCrashesIsTheSourceWithSilenceExactlyInTheGaps) {
  const WavFile source = GenerateTestSignal(kFormat, 48000 * 6);
  SoundRig rig;
  ASSERT_TRUE(rig.Build({.microphone = source}).has_value());
  Pcm& pcm = *rig.shadow;
  ASSERT_TRUE(pcm.OpenCapture(kParams).has_value());
  std::atomic<bool> done{false};
  std::atomic<int> kills{0};
  std::thread killer([&] { KillLoop(rig, done, kills, 8, 3); });
  WavFile captured{kFormat, std::vector<std::byte>(source.data.size() - 48000 * kFormat.frame_bytes())};
  Capture(pcm, captured);
  done = true;
  killer.join();
  EXPECT_GE(kills, 2);
  const auto gaps = pcm.CaptureGaps();
  EXPECT_FALSE(gaps.empty()) << "the crashes were heard as silence";
  const CaptureCheck c = CheckCapture(source, captured, gaps);
  EXPECT_EQ(c.wrong, 0u);
  EXPECT_EQ(c.silent_in_gaps, c.gap_frames);
  EXPECT_EQ(rig.shadow->Status(Direction::kCapture).silent_frames, c.gap_frames);
}

// A driver held off its CPU in the middle of a read (a loaded machine; here
// a failpoint's sleep of more than the whole ring, after it looked where the
// card was) is lapped by the card: the frames it copies afterwards are a later
// lap. It must give them up as silence, never hand them on.
TEST(SoundShadowTest, ADriverLappedByTheCardWhileItReadsGivesThoseFramesUpAsSilence) {
  const WavFile source = GenerateTestSignal(kFormat, 48000 * 4);
  SoundRig rig;
  ASSERT_TRUE(rig.Build({.microphone = source,
                         .heartbeat_ns = 200 * kMs,  // a few sleeps in a row are no hang
                         .tweak = [](runtime::DriverHostOptions& o) { o.failpoints = "snd.read=4%delay(15)"; }})
                  .has_value());
  Pcm& pcm = *rig.shadow;
  ASSERT_TRUE(pcm.OpenCapture(kParams).has_value());
  WavFile captured{kFormat, std::vector<std::byte>(source.data.size() - 48000 * kFormat.frame_bytes())};
  Capture(pcm, captured);
  const auto gaps = pcm.CaptureGaps();
  EXPECT_FALSE(gaps.empty()) << "the card lapped the delayed driver";
  const CaptureCheck c = CheckCapture(source, captured, gaps);
  EXPECT_EQ(c.wrong, 0u) << "frames of a later lap were handed on";
  EXPECT_EQ(c.silent_in_gaps, c.gap_frames);
  EXPECT_EQ(rig.shadow->recoveries().size(), 0u) << "a slow driver is not a crash";
}

struct CardSnapshot {
  uint32_t rate, channels, format, period_frames, periods, volume, mute;
  bool operator==(const CardSnapshot&) const = default;
};

CardSnapshot Snapshot(SoundRig& rig) {
  const auto& r = *rig.card->registers();
  const auto& s = r.streams[0];
  return {s.rate.load(),    s.channels.load(), s.format.load(), s.period_frames.load(),
          s.periods.load(), r.volume.load(),   r.mute.load()};
}

TEST(SoundShadowTest, ParametersAndVolumeAfterRecoveryEqualThoseBefore) {
  SoundRig rig;
  auto built = rig.Build();
  ASSERT_TRUE(built.has_value()) << built.error().ToString();
  Pcm& pcm = *rig.shadow;
  ASSERT_TRUE(pcm.OpenPlayback({.rate = 44100, .channels = 1, .period_frames = 441, .periods = 4}).has_value());
  ASSERT_TRUE(pcm.SetVolume(37).has_value());
  const CardSnapshot before = Snapshot(rig);
  EXPECT_EQ(before.volume, 37u);
  EXPECT_EQ(before.rate, 44100u);
  for (int sig : {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP}) {
    ASSERT_TRUE(rig.KillAndRecover(sig).has_value());
    EXPECT_EQ(Snapshot(rig), before) << "after signal " << sig;
    EXPECT_EQ(pcm.Volume(), 37u);
  }
  ASSERT_TRUE(pcm.SetMute(true).has_value());
  ASSERT_TRUE(rig.KillAndRecover(SIGKILL).has_value());
  EXPECT_EQ(rig.card->registers()->mute.load(), 1u);
  EXPECT_TRUE(pcm.Muted());
}

TEST(SoundShadowTest, VolumeSetWhileRecoveringIsAnsweredAndReplayed) {
  SoundRig rig;
  ASSERT_TRUE(
      rig.Build({.tweak = [](runtime::DriverHostOptions& o) { o.restart.backoff_initial_ns = 50 * kMs; }}).has_value());
  Pcm& pcm = *rig.shadow;
  ASSERT_TRUE(pcm.SetVolume(80).has_value());
  ASSERT_TRUE(rig.KillAndRecover(SIGKILL).has_value());
  rig.host->Kill(SIGKILL);  // the second restart waits 50 ms: set the volume meanwhile
  while (rig.shadow->passive()) usleep(100);
  ASSERT_TRUE(pcm.SetVolume(20).has_value());
  EXPECT_EQ(pcm.Volume(), 20u) << "answered from the shadow";
  ASSERT_TRUE(rig.shadow->WaitUntilPassive(10 * kSec).has_value());
  EXPECT_EQ(rig.card->registers()->volume.load(), 20u);
}

TEST(SoundShadowTest, RestartOnlyModeShowsTheCrashToThePlayer) {
  SoundRig rig;
  ASSERT_TRUE(rig.Build({.mode = shadows::RecoveryMode::kRestartOnly}).has_value());
  const WavFile in = GenerateTestSignal(kFormat, 48000 * 2);
  std::thread killer([&] {
    usleep(100'000);
    rig.host->Kill(SIGKILL);
  });
  auto played = Play(*rig.shadow, in);
  killer.join();
  EXPECT_FALSE(played.has_value()) << "without the shadow the player sees the crash";
}

// Bugs planted inside the driver by its snd.* failpoints, armed in every
// driver instance (the spec is re-armed at each spawn, so each new driver
// fails again after `skip` more hits): whatever the bug, the speaker's file
// equals the signal outside the gaps, nothing is shifted, repeated or
// corrupted, and the player sees no error.
struct FailpointCase {
  const char* name;
  const char* spec;
  runtime::DetectReason reason;  // how the shadow or the host must have seen it
  int code = 0;                  // the signal, for kSignal
};

void PrintTo(const FailpointCase& fc, std::ostream* os) { *os << fc.name << " (" << fc.spec << ")"; }

class SoundFailpointTest : public ::testing::TestWithParam<FailpointCase> {};

TEST_P(SoundFailpointTest, PlaybackOutsideTheGapsEqualsTheSignalAndThePlayerSeesNoError) {
  const FailpointCase& fc = GetParam();
  SoundRig rig;
  auto built = rig.Build({.tweak = [&](runtime::DriverHostOptions& o) {
    o.failpoints = fc.spec;
    o.request_deadline_ns = 300 * kMs;  // a write that never completes is a hang
  }});
  ASSERT_TRUE(built.has_value()) << built.error().ToString();
  const WavFile in = GenerateTestSignal(kFormat, 48000 * 8);  // 8 s of audio, 2 s at 4x
  Pcm& pcm = *rig.shadow;
  ASSERT_TRUE(pcm.OpenPlayback(kParams).has_value());
  const size_t step = 480 * kFormat.frame_bytes();
  for (size_t off = 0; off < in.data.size(); off += step) {
    auto r = pcm.Write(std::span<const std::byte>(in.data).subspan(off, std::min(step, in.data.size() - off)));
    ASSERT_TRUE(r.has_value()) << "the application saw an error: " << r.error().ToString();
  }
  const int64_t written_ns = MonotonicNanos();
  auto drained = pcm.Drain();
  ASSERT_TRUE(drained.has_value()) << "the application saw an error: " << drained.error().ToString();
  ASSERT_TRUE(pcm.Close(Direction::kPlayback).has_value());
  // The player may be done while the last restart is still under way.
  ASSERT_TRUE(rig.shadow->WaitUntilPassive(10 * kSec).has_value());
  const auto records = rig.shadow->recoveries();
  ASSERT_GE(records.size(), 2u) << "the failpoint fired in the first driver and in a restarted one";
  // On a loaded machine a starved driver may also miss a heartbeat; the
  // planted bug must have been seen the way the case says at least once.
  size_t as_expected = 0;
  for (const auto& r : records) {
    EXPECT_TRUE(r.succeeded) << r.failure;
    as_expected +=
        r.detection.reason == fc.reason && (fc.reason != runtime::DetectReason::kSignal || r.detection.code == fc.code);
  }
  EXPECT_GE(as_expected, 1u) << "first detection: " << records[0].detection.ToString();
  auto report = CompareSpeaker(rig, in);
  ASSERT_TRUE(report.has_value()) << report.error().ToString();
  EXPECT_TRUE(report->clean()) << report->ToString();
  EXPECT_GE(report->gaps.size(), 1u) << "the restarts left gaps";
  // A recovery still under way while the last frames drain leaves a gap
  // that never ends: the file stops short. Nothing else may.
  if (report->missing_tail > 0) {
    EXPECT_GT(records.back().passive_ns, written_ns) << "a missing tail without a recovery during the drain\n"
                                                     << report->ToString();
  }
  const PcmStatus st = rig.shadow->Status(Direction::kPlayback);
  EXPECT_EQ(st.position, in.frames()) << "the application's position counts every frame";
  std::printf("%s: %zu recoveries, %zu gaps, %.1f ms of audio missing\n", fc.name, records.size(), report->gaps.size(),
              report->gap_frames() * 1000.0 / kFormat.rate);
}

#if defined(__SANITIZE_ADDRESS__)
// The driver's ASan runtime reports a segfault itself and exits with status 1.
constexpr runtime::DetectReason kSegfaultReason = runtime::DetectReason::kExit;
#else
constexpr runtime::DetectReason kSegfaultReason = runtime::DetectReason::kSignal;
#endif

INSTANTIATE_TEST_SUITE_P(
    Bugs, SoundFailpointTest,
    ::testing::Values(
        FailpointCase{"SegfaultWhileWriting", "seed=1;snd.write=250+1*segfault", kSegfaultReason, SIGSEGV},
        FailpointCase{"AbortInTheInterruptHandler", "seed=2;snd.irq=250+1*abort", runtime::DetectReason::kSignal,
                      SIGABRT},
        FailpointCase{"HangWhileWriting", "seed=3;snd.write=250+1*hang", runtime::DetectReason::kMissedHeartbeat},
        // The driver's appl_ptr corrupted far past the ring: the card refuses
        // it and stops the stream; the driver fails its writes, and the
        // shadow turns the failed write into a restart.
        FailpointCase{"ApplPtrTheCardRefuses", "seed=4;snd.write=250+1*bad_register", runtime::DetectReason::kSignal,
                      SIGKILL},
        FailpointCase{"WriteError", "seed=5;snd.write=250+1*error", runtime::DetectReason::kSignal, SIGKILL},
        // A write the driver never completes: the request deadline finds it.
        FailpointCase{"LostWriteCompletion", "seed=6;snd.write=250+1*drop_completion",
                      runtime::DetectReason::kRequestDeadline}),
    [](const ::testing::TestParamInfo<FailpointCase>& info) { return std::string(info.param.name); });

TEST(SoundShadowTest, RegistryCreatesTheSoundClass) {
  shadows::ShadowRegistry registry;
  shadows::RegisterBuiltinShadows(registry);
  EXPECT_TRUE(registry.Has("sound"));
}

}  // namespace
}  // namespace umbra::sound

namespace umbra::sound {
namespace {

using namespace testing;

// Runs `app` while the driver is killed in turn by every fault type.
template <class App>
void RunAcrossCrashes(SoundRig& rig, App app, int min_kills) {
  std::atomic<bool> done{false};
  std::atomic<int> kills{0};
  std::thread killer([&] {
    const int signals[] = {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP};
    for (int i = 0; !done; ++i) {
      usleep(40'000);
      if (done) break;
      ASSERT_TRUE(rig.KillAndRecover(signals[i % 4]).has_value());
      ++kills;
    }
  });
  auto stats = app();
  done = true;
  killer.join();
  ASSERT_TRUE(stats.has_value()) << "the application saw an error: " << stats.error().ToString();
  EXPECT_GE(kills, min_kills);
  if (!stats->note.empty()) std::printf("note: %s\n", stats->note.c_str());
}

TEST(SoundAppsTest, Mp3StylePlayerRunsToCompletionAcrossCrashes) {
  SoundRig rig;
  ASSERT_TRUE(rig.Build().has_value());
  const auto track = hw::sound::GenerateTestSignal({44100, 2, hw::sound::SoundFormat::kS16Le}, 44100 * 3);
  RunAcrossCrashes(
      rig, [&] { return workloads::PlayTrack(*rig.shadow, track, {.period_frames = 441}); }, 2);
  rig.card->FlushBackends();
  auto out = hw::sound::ReadWav(rig.speaker_path);
  ASSERT_TRUE(out.has_value());
  auto report = hw::sound::CompareAudio(track, *out);
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->clean()) << report->ToString();
}

TEST(SoundAppsTest, AudioRecorderRunsToCompletionAcrossCrashes) {
  const auto source = hw::sound::GenerateTestSignal({48000, 2, hw::sound::SoundFormat::kS16Le}, 48000 * 4);
  SoundRig rig;
  ASSERT_TRUE(rig.Build({.microphone = source}).has_value());
  hw::sound::WavFile got;
  RunAcrossCrashes(
      rig, [&] { return workloads::RecordAudio(*rig.shadow, 48000 * 3, {}, &got); }, 2);
  EXPECT_EQ(got.frames(), 48000u * 3);
}

TEST(SoundAppsTest, SpeechSynthesizerRunsToCompletionAcrossCrashes) {
  SoundRig rig;
  ASSERT_TRUE(rig.Build().has_value());
  RunAcrossCrashes(
      rig,
      [&] {
        return workloads::Speak(*rig.shadow,
                                "Shadow drivers hide the failure of a device driver from the applications that use it. "
                                "This sentence is spoken while the sound driver is crashed again and again.");
      },
      1);
}

TEST(SoundAppsTest, GameLikeClientRunsToCompletionAcrossCrashes) {
  SoundRig rig;
  ASSERT_TRUE(rig.Build().has_value());
  uint64_t events = 0;
  RunAcrossCrashes(
      rig,
      [&]() -> Result<workloads::AppStats> {
        auto s = workloads::PlayGame(*rig.shadow, 400, 5, {});
        if (s) events = s->events;
        return s;
      },
      2);
  EXPECT_GT(events, 0u);
}

}  // namespace
}  // namespace umbra::sound
