#include "shadows/sound/class.h"

#include <cstdlib>
#include <filesystem>

#include "runtime/hw/sound/sound_card.h"
#include "runtime/hw/sound/wav_microphone.h"
#include "runtime/hw/sound/wav_speaker.h"
#include "shadows/sound/sound_shadow.h"
#include "shadows/sound/workloads/audio_playback.h"

namespace umbra::shadows {

namespace {

using machine::Setting;

// The sound card plays into a WAV file ("the speaker"): setting "speaker"
// (relative to the state folder; default <device>-speaker.wav), "speed" (the
// sample clock's pace, 1 = real time). It captures from a WAV file ("the
// microphone", setting "microphone"; none: silence): sample-clock frame n is
// the file's frame n, silence past its end, or frame n modulo its length with
// "microphone_loop" "1".
class SoundHardware final : public machine::Hardware {
 public:
  explicit SoundHardware(std::unique_ptr<hw::sound::SoundCard> card) : card_(std::move(card)) {}
  ~SoundHardware() override { card_->Stop(); }
  hw::Device* device() override { return card_.get(); }
  ipc::DataChannelOptions data_options() const override {
    return {.ring_entries = 256, .buffer_size = 4096, .buffer_count = 64};
  }

 private:
  std::unique_ptr<hw::sound::SoundCard> card_;  // the card, its clock and its speaker
};

// Setting "speed": the sample clock's pace, in (0, 1000].
Result<double> SoundSpeed(const machine::HardwareSpec& spec) {
  const std::string speed = Setting(spec, "speed", "1");
  char* end = nullptr;
  const double v = std::strtod(speed.c_str(), &end);
  if (end == speed.c_str() || *end != '\0' || v <= 0 || v > 1000) {
    return Fail(Errc::kInvalidArgument, spec.device + ": setting speed '" + speed + "' is not a number in (0, 1000]");
  }
  return v;
}

Result<std::unique_ptr<machine::Hardware>> CreateSound(const machine::HardwareSpec& spec) {
  hw::sound::SoundCardOptions options;
  options.name = spec.device;
  auto setting = [&](const char* key, std::string fallback) {
    auto it = spec.settings.find(key);
    return it == spec.settings.end() ? fallback : it->second;
  };
  std::filesystem::path speaker = setting("speaker", spec.device + "-speaker.wav");
  if (speaker.is_relative() && !spec.state_dir.empty()) speaker = spec.state_dir / speaker;
  options.speaker = UMBRA_TRY(hw::sound::WavSpeaker::Create({.path = speaker.string()}));
  options.speed = UMBRA_TRY(SoundSpeed(spec));
  if (const std::string mic = setting("microphone", ""); !mic.empty()) {
    std::filesystem::path path = mic;
    if (path.is_relative() && !spec.state_dir.empty()) path = spec.state_dir / path;
    const auto end =
        setting("microphone_loop", "0") == "1" ? hw::sound::SourceEnd::kLoop : hw::sound::SourceEnd::kSilence;
    options.microphone = UMBRA_TRY(hw::sound::WavMicrophone::Create({.path = path.string(), .at_end = end}));
  }
  auto card = UMBRA_TRY(hw::sound::SoundCard::Create(std::move(options)));
  card->Start();
  return std::unique_ptr<machine::Hardware>(new SoundHardware(std::move(card)));
}

}  // namespace

// The hardware's keys, then its driver's (drivers/sound/), then "failpoints"
// (armed in the driver before probe).
Result<void> RegisterSoundClass(ClassRegistry& registry) {
  UMBRA_TRY(registry.AddHardware(std::string(hw::sound::SoundCard::kCompatible), CreateSound,
                                 {{"speaker", "microphone", "microphone_loop", "speed", "failpoints"},
                                  [](const machine::HardwareSpec& spec) -> Result<void> {
                                    UMBRA_TRY(SoundSpeed(spec));
                                    return {};
                                  }}));
  UMBRA_TRY(registry.AddShadow("sound", sound::CreateSoundShadow, sound::SoundSettings().specs()));
  UMBRA_TRY(registry.AddWorkload<faultinject::campaign::AudioPlaybackWorkload>());
  return {};
}

}  // namespace umbra::shadows
