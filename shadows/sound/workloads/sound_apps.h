// The four applications of the original evaluation that use sound, written
// against sound::Pcm so that each runs on the sound shadow (or anything else
// implementing it) and can be checked afterwards:
//
//   mp3-player      PlayTrack: plays a track (a WAV, or a generated signal)
//                   at the card's pace in 1152-frame "decoded frames", drains.
//   audio-recorder  RecordAudio: captures N frames from the microphone.
//   speech          Speak: synthesizes text with espeak-ng (when installed)
//                   and streams its output in as it is produced; without
//                   espeak-ng a generated signal, and the reason is reported.
//   game            PlayGame: a 10 ms game loop that writes silence, mixing a
//                   short sound effect in whenever a (seeded) event fires.
//
//   auto stats = UMBRA_TRY(workloads::PlayTrack(*shadow, track, params));
//   if (stats.dropped_frames > 0) ...   // what the driver crashes cost
//
// Each returns an error only if the application saw one; crashes hidden by
// the shadow show up only in the dropped/silent counts.
//
// Thread safety: each call uses the Pcm from the calling thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "runtime/hw/sound/wav.h"
#include "shadows/sound/pcm.h"

namespace umbra::sound::workloads {

struct AppStats {
  uint64_t frames = 0;          // frames the application wrote or read
  uint64_t dropped_frames = 0;  // playback frames dropped while the driver was down
  uint64_t silent_frames = 0;   // capture frames returned as silence
  uint64_t events = 0;          // game: sound effects played
  std::string note;             // e.g. why a generated signal replaced speech
};

Result<AppStats> PlayTrack(Pcm& pcm, const hw::sound::WavFile& track, PcmParams params);
// Captures `frames` frames into `out` (format of `params`).
Result<AppStats> RecordAudio(Pcm& pcm, uint64_t frames, PcmParams params, hw::sound::WavFile* out);
// `espeak_binary` empty: "espeak-ng" on PATH.
Result<AppStats> Speak(Pcm& pcm, std::string_view text, std::string espeak_binary = "");
Result<AppStats> PlayGame(Pcm& pcm, uint32_t ticks, uint32_t seed, PcmParams params);

// Speech as espeak-ng makes it (22050 Hz mono), or nullopt-like error when
// espeak-ng is not installed (kNotFound) or failed.
Result<hw::sound::WavFile> SynthesizeSpeech(std::string_view text, const std::string& espeak_binary = "");

}  // namespace umbra::sound::workloads
