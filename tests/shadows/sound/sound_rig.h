// An emulated sound card with a WAV speaker and microphone, its driver in a
// real process, and the sound shadow in front of it: what every sound test
// and the sound benchmark start from. Free of GoogleTest so the benchmark can
// use it.
#pragma once

#include <unistd.h>

#include <cstdlib>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/clock.h"
#include "runtime/hw/sound/sound_card.h"
#include "runtime/hw/sound/wav.h"
#include "runtime/hw/sound/wav_microphone.h"
#include "runtime/hw/sound/wav_speaker.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/sound/sound_shadow.h"

namespace umbra::sound::testing {

inline constexpr int64_t kMs = 1'000'000;
inline constexpr int64_t kSec = 1'000'000'000;

// A scratch directory for this process, removed at exit.
inline std::string ScratchPath(const std::string& name) {
  static const struct Dir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("umbra-sound-shadow-" + std::to_string(::getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } dir;
  return (dir.path / name).string();
}

struct SoundRigOptions {
  double speed = 4.0;                            // the card's clock: virtual seconds per real second
  std::string speaker_path;                      // empty: a scratch file
  std::optional<hw::sound::WavFile> microphone;  // what the microphone hears
  shadows::RecoveryMode mode = shadows::RecoveryMode::kShadow;
  int64_t heartbeat_ns = 20 * kMs;
  bool warm_standby = false;
  std::function<void(runtime::DriverHostOptions&)> tweak;
};

// Members are declared so that they are destroyed in a safe order: the
// shadow (stops the driver) before the supervisor, the card last.
struct SoundRig {
  std::unique_ptr<hw::sound::SoundCard> card;
  hw::sound::WavSpeaker* speaker = nullptr;  // owned by the card
  std::string speaker_path;
  runtime::Supervisor sup;
  runtime::DriverHost* host = nullptr;
  std::unique_ptr<SoundShadow> shadow;

  Result<void> Build(SoundRigOptions o = {}) {
    speaker_path =
        o.speaker_path.empty() ? ScratchPath("speaker-" + std::to_string(MonotonicNanos()) + ".wav") : o.speaker_path;
    auto sp = UMBRA_TRY(hw::sound::WavSpeaker::Create({.path = speaker_path}));
    speaker = sp.get();
    hw::sound::SoundCardOptions co;
    co.clock = hw::sound::ClockMode::kRealTime;
    co.speed = o.speed;
    co.speaker = std::move(sp);
    if (o.microphone) co.microphone = hw::sound::WavMicrophone::FromWav(*o.microphone, hw::sound::SourceEnd::kSilence);
    card = UMBRA_TRY(hw::sound::SoundCard::Create(std::move(co)));
    card->Start();
    runtime::DriverHostOptions h;
    h.device_name = "snd0";
    h.device_class = "sound";
    h.compatible = "umbra,sound-emu";
    h.driver_binary = UMBRA_SOUND_DRIVER;
    h.heartbeat_period_ns = o.heartbeat_ns;
    h.data = {.ring_entries = 256, .buffer_size = 4096, .buffer_count = 64};
    h.restart.budget = 100000;
    h.restart.backoff_initial_ns = 0;
    h.warm_standby = o.warm_standby;
    h.inherit_stdio = std::getenv("UMBRA_SOUND_TEST_STDIO") != nullptr;
    h.hw = card.get();
    if (o.tweak) o.tweak(h);
    host = UMBRA_TRY(sup.AddDevice(std::move(h)));
    shadow = UMBRA_TRY(SoundShadow::Create(*host, {.clock_speed = o.speed}, o.mode));
    UMBRA_TRY(shadow->Open(10 * kSec));
    return {};
  }

  // Kills the driver and waits until the shadow recovered from it.
  Result<void> KillAndRecover(int sig) {
    const size_t before = shadow->recoveries().size();
    host->Kill(sig);
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    int64_t resend = MonotonicNanos() + 200 * kMs;
    while (shadow->recoveries().size() == before) {
      if (MonotonicNanos() > deadline) return Fail(Errc::kTimeout, "the fault was not noticed");
      // A kill that lands while the host restarts the driver (after a
      // detection of its own on a loaded machine) finds no driver: again.
      if (MonotonicNanos() > resend) {
        host->Kill(sig);
        resend = MonotonicNanos() + 200 * kMs;
      }
      usleep(100);
    }
    return shadow->WaitUntilPassive(10 * kSec);
  }

  // The speaker's clock frame now (frames since playback first started).
  uint64_t PlaybackClockFrame() const {
    const auto& r = card->registers()->streams[0];
    return r.start_frame.load() + r.hw_ptr.load();
  }

  ~SoundRig() {
    if (shadow) shadow->shadows::Shadow::Stop();
    shadow.reset();
    sup.Stop();
    if (card) card->Stop();
  }
};

}  // namespace umbra::sound::testing
