// WavMicrophone: "the microphone" — a WAV file read at the sample clock's pace.
//
// The file is loaded whole at Create(). Clock frame n of the capture stream
// is file frame n (or n modulo the length with kLoop); past the end it
// delivers silence (kSilence). A capture stream in another format than the
// file's gets silence, counted in mismatched_frames().
//
//   auto mic = UMBRA_TRY(WavMicrophone::Create({.path = "speech.wav"}));
//   options.microphone = std::move(mic);   // the card owns it
//
// Thread safety: AudioSource calls come from the card, one at a time; the
// accessors may be called from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "runtime/hw/sound/audio_backend.h"

namespace umbra::hw::sound {

enum class SourceEnd { kSilence, kLoop };

struct WavMicrophoneOptions {
  std::string path;
  SourceEnd at_end = SourceEnd::kSilence;
};

class WavMicrophone final : public AudioSource {
 public:
  static Result<std::unique_ptr<WavMicrophone>> Create(WavMicrophoneOptions options);
  // A source from frames already in memory (tests, generated signals).
  static std::unique_ptr<WavMicrophone> FromWav(WavFile wav, SourceEnd at_end);

  void Begin(const AudioFormat& format, uint64_t position) override;
  void Read(std::span<std::byte> frames) override;

  const WavFile& wav() const { return wav_; }
  uint64_t mismatched_frames() const { return mismatched_.load(std::memory_order_relaxed); }

 private:
  WavMicrophone(WavFile wav, SourceEnd at_end) : wav_(std::move(wav)), at_end_(at_end) {}

  WavFile wav_;
  SourceEnd at_end_;
  uint64_t position_ = 0;  // next file frame (before the loop modulo)
  bool format_mismatch_ = false;
  std::atomic<uint64_t> mismatched_{0};
};

}  // namespace umbra::hw::sound
