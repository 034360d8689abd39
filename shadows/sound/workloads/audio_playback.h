// The audio-playback workload: the sound class's mp3-style player
// (shadows/sound/workloads/sound_apps.h, PlayTrack) through SoundShadow on
// an emulated card whose clock runs 16 times real time, into a WAV speaker.
//
// A unit is one 1152-frame "decoded frame" the player writes (24 ms of
// 48 kHz stereo audio, 1.5 ms of real time). The track is the test signal
// whose every short window of frames is unique. Verification: the player
// finished without an error, its position counts every frame, and the
// speaker's output equals the track everywhere outside the gaps (silence
// where the driver was down; never a shifted, repeated or corrupted frame).
//
//   std::unique_ptr<Workload> w = std::make_unique<AudioPlaybackWorkload>();
//
// Thread safety: one run's thread.
#pragma once

#include <memory>
#include <string>

#include "shadows/workload.h"
#include "runtime/hw/sound/sound_card.h"
#include "shadows/sound/sound_shadow.h"

namespace umbra::faultinject::campaign {

class AudioPlaybackWorkload : public SingleDeviceWorkload {
 public:
  static constexpr std::string_view kName = "audio-playback";

  ~AudioPlaybackWorkload() override;

  std::string_view name() const override { return kName; }
  std::string_view device_class() const override { return "sound"; }
  std::string_view driver() const override { return "sound"; }
  uint64_t default_units() const override { return 24; }
  std::vector<SiteUse> sites(uint64_t units) const override;

  Result<void> SetUp(WorkloadContext& ctx) override;
  WorkResult Run(WorkloadContext& ctx) override;
  void TearDown() override;
  // `error` (the shared rule), and `duplicate_id` whose only harm is frames
  // out of place: the sound class cannot see a write acknowledged before the
  // driver copied it (docs/fault-injection.md, "duplicate_id").
  std::optional<std::string> Unseen(FaultType fault, const WorkResult& result) const override;

 private:
  std::string speaker_path_;                    // the card's output; removed last
  std::unique_ptr<hw::sound::SoundCard> card_;  // outlives the run's Supervisor's host, which points at it
  std::unique_ptr<sound::SoundShadow> shadow_;  // the player's device; watched by the engine
};

}  // namespace umbra::faultinject::campaign
