// The sound frontend: sox plays a WAV file into the playback FIFO while the
// sound driver keeps crashing; the card's speaker (a WAV file) must hold the
// input sample for sample, frame for frame, except for silent gaps where the
// driver was down — a gap, never a shift. And the other way: sox records
// from the capture FIFO while the driver keeps crashing; what it recorded is
// the card's microphone (a looping WAV file), frame for frame, except for
// silent gaps. Needs sox; skips otherwise.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/control/running_machine.h"

namespace umbra::testing {
namespace {

using namespace std::chrono_literals;

std::vector<char> ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The samples of a WAV file's data chunk (empty when there is none).
std::vector<char> WavData(const std::vector<char>& wav) {
  for (size_t at = 12; at + 8 <= wav.size();) {
    uint32_t size = 0;
    std::memcpy(&size, &wav[at + 4], 4);
    if (std::memcmp(&wav[at], "data", 4) == 0) {
      return {wav.begin() + static_cast<ptrdiff_t>(at + 8),
              wav.begin() + static_cast<ptrdiff_t>(std::min<size_t>(wav.size(), at + 8 + size))};
    }
    at += 8 + size + (size & 1);
  }
  return {};
}

TEST(SoundFrontendTest, SpeakerHoldsTheInputOutsideTheGapsAcrossCrashes) {
  if (Shell("command -v sox").code != 0) GTEST_SKIP() << "needs sox (scripts/bootstrap.sh installs it)";
  const auto dir = std::filesystem::temp_directory_path() / ("umbra-sndfe-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  struct RemoveAtEnd {  // also when an assertion ends the test early
    std::filesystem::path dir;
    ~RemoveAtEnd() { std::filesystem::remove_all(dir); }
  } remove_at_end{dir};
  const std::string speaker = (dir / "speaker.wav").string();
  std::ofstream(dir / "snd.textproto") << MachineHead("snd") + R"pb(
devices {
  name: "snd0" bus: "platform" compatible: "umbra,sound-emu" device_class: "sound"
  settings { key: "speaker" value: ")pb" + speaker +
                                              R"pb(" }
  frontend {}
}
drivers { name: "sound" bus: "platform" compatible: "umbra,sound-emu" binary: "umbra-driver-sound" }
)pb";
  // Three seconds of noise: no two stretches alike, so a shift would show.
  const std::string in = (dir / "in.wav").string();
  ASSERT_EQ(Shell("sox -n -r 48000 -c 2 -b 16 -e signed " + in + " synth 3 whitenoise vol 0.5").code, 0);
  {
    RunningMachine machine((dir / "run").string());
    ASSERT_TRUE(machine.Start((dir / "snd.textproto").string())) << machine.output();
    Output play;
    std::thread player([&] { play = Shell("timeout 30 sox " + in + " -t wav " + machine.run_dir() + "/snd0.play"); });
    // Crashes once the stream plays (see docs/frontends.md on crashes before).
    std::this_thread::sleep_for(500ms);
    Crasher crasher(machine.run_dir(), "snd0", {"sigkill", "segfault", "abort"}, 400ms, 4);
    player.join();
    EXPECT_EQ(play.code, 0) << play.out;
    EXPECT_GE(crasher.Stop(), 2) << crasher.failures();
    std::this_thread::sleep_for(1500ms);  // the end of the stream reaches the speaker
    EXPECT_TRUE(machine.WaitForCount("\"kind\":\"recovered\"", 2, 5s)) << machine.output();
  }  // the machine stops: the speaker's file is complete
  const std::vector<char> want = WavData(ReadFile(in));
  const std::vector<char> got = WavData(ReadFile(speaker));
  ASSERT_EQ(want.size(), 3u * 48000 * 4);
  ASSERT_GE(got.size(), want.size());
  size_t same = 0, silent = 0, wrong = 0;
  const char zero[4] = {};
  for (size_t f = 0; f < want.size(); f += 4) {
    if (std::memcmp(&got[f], &want[f], 4) == 0) {
      ++same;
    } else if (std::memcmp(&got[f], zero, 4) == 0) {
      ++silent;
    } else {
      ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0u) << same << " frames equal, " << silent << " silent";
  EXPECT_GT(silent, 0u) << "the crashes left no gap";
  EXPECT_GT(same, want.size() / 4 / 2) << "most of the sound was played";
}

// The position in `ring` (a looping signal of `frame` bytes per frame) where
// the frames of `probe` start, or SIZE_MAX.
size_t FindInLoop(const std::vector<char>& ring, const char* probe, size_t frames, size_t frame) {
  const size_t len = ring.size() / frame;
  for (size_t p = 0; p < len; ++p) {
    bool all = true;
    for (size_t i = 0; i < frames && all; ++i) {
      all = std::memcmp(&ring[(p + i) % len * frame], probe + i * frame, frame) == 0;
    }
    if (all) return p;
  }
  return SIZE_MAX;
}

TEST(SoundFrontendTest, CaptureFifoHoldsTheMicrophoneOutsideTheGapsAcrossCrashes) {
  if (Shell("command -v sox").code != 0) GTEST_SKIP() << "needs sox (scripts/bootstrap.sh installs it)";
  const auto dir = std::filesystem::temp_directory_path() / ("umbra-sndcap-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  struct RemoveAtEnd {
    std::filesystem::path dir;
    ~RemoveAtEnd() { std::filesystem::remove_all(dir); }
  } remove_at_end{dir};
  // Two seconds of noise, looped by the microphone: the card's clock frame n
  // says the file's frame n modulo its length.
  const std::string mic = (dir / "mic.wav").string();
  ASSERT_EQ(Shell("sox -n -r 48000 -c 2 -b 16 -e signed " + mic + " synth 2 whitenoise vol 0.5").code, 0);
  std::ofstream(dir / "snd.textproto") << MachineHead("sndcap") + R"pb(
devices {
  name: "snd0" bus: "platform" compatible: "umbra,sound-emu" device_class: "sound"
  settings { key: "speaker" value: ")pb" + (dir / "speaker.wav").string() +
                                              R"pb(" }
  settings { key: "microphone" value: ")pb" + mic +
                                              R"pb(" }
  settings { key: "microphone_loop" value: "1" }
  frontend {}
}
drivers { name: "sound" bus: "platform" compatible: "umbra,sound-emu" binary: "umbra-driver-sound" }
)pb";
  const std::string out = (dir / "out.wav").string();
  {
    RunningMachine machine((dir / "run").string());
    ASSERT_TRUE(machine.Start((dir / "snd.textproto").string())) << machine.output();
    Output rec;
    std::thread recorder(
        [&] { rec = Shell("timeout 30 sox -t wav " + machine.run_dir() + "/snd0.rec -b 16 " + out + " trim 0 3"); });
    std::this_thread::sleep_for(500ms);
    Crasher crasher(machine.run_dir(), "snd0", {"sigkill", "segfault", "abort"}, 400ms, 4);
    recorder.join();
    EXPECT_EQ(rec.code, 0) << rec.out;
    EXPECT_GE(crasher.Stop(), 2) << crasher.failures();
    EXPECT_TRUE(machine.WaitForCount("\"kind\":\"recovered\"", 2, 5s)) << machine.output();
  }
  const std::vector<char> ring = WavData(ReadFile(mic));
  const std::vector<char> got = WavData(ReadFile(out));
  ASSERT_EQ(ring.size(), 2u * 48000 * 4);
  ASSERT_EQ(got.size(), 3u * 48000 * 4) << "sox recorded three seconds";
  // Where the recording starts in the loop: found from its first sounding frames.
  const char zero[4] = {};
  size_t first = 0;
  while (first + 16 * 4 <= got.size() && std::memcmp(&got[first], zero, 4) == 0) first += 4;
  ASSERT_LT(first + 16 * 4, got.size()) << "the recording is silent";
  const size_t at = FindInLoop(ring, &got[first], 16, 4);
  ASSERT_NE(at, SIZE_MAX) << "the recording's first sound is not in the microphone's file";
  const size_t len = ring.size() / 4;
  size_t same = 0, silent = 0, wrong = 0, gap = 0, longest_gap = 0;
  for (size_t f = first / 4; f < got.size() / 4; ++f) {
    const char* want = &ring[(at + f - first / 4) % len * 4];
    const bool quiet = std::memcmp(&got[f * 4], zero, 4) == 0;
    if (std::memcmp(&got[f * 4], want, 4) == 0) {
      ++same;
    } else if (quiet) {
      ++silent;
    } else {
      ++wrong;
    }
    gap = quiet ? gap + 1 : 0;
    longest_gap = std::max(longest_gap, gap);
  }
  RecordProperty("longest_gap_frames", static_cast<int>(longest_gap));
  EXPECT_EQ(wrong, 0u) << same << " frames equal, " << silent << " silent";
  EXPECT_GT(silent, 0u) << "the crashes left no gap";
  EXPECT_GT(same, got.size() / 4 / 2) << "most of the microphone was recorded";
}

}  // namespace
}  // namespace umbra::testing
