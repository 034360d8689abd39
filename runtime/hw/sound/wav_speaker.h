// WavSpeaker: "the speaker" — a WAV file receiving exactly what the DAC played.
//
// One frame in the file per frame of the sample clock since playback first
// started: played frames as they were played, silence where the DAC had
// nothing. Every silent range the card caused is also logged with its reason,
// so gaps are visible and measurable without analysing the samples:
//
//   auto speaker = UMBRA_TRY(WavSpeaker::Create({.path = "out.wav"}));
//   WavSpeaker* ears = speaker.get();
//   options.speaker = std::move(speaker);            // the card owns it
//   ... play ...; card->FlushBackends();
//   for (const SilenceRange& r : ears->silences()) ...
//
// The WAV format is the one of the first Begin(); a later stream in another
// format is written as silence (logged as kFormatMismatch).
//
// Thread safety: AudioSink calls come from the card, one at a time.
// silences(), frames() and error() may be called from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/hw/sound/audio_backend.h"

namespace umbra::hw::sound {

enum class SilenceReason {
  kUnderrun,        // the stream ran but the driver had not written these frames
  kStopped,         // no stream ran (stopped, reset, driver being restarted)
  kFormatMismatch,  // the stream's format differs from the file's
};

const char* SilenceReasonName(SilenceReason reason);

// Frames [first_frame, end_frame) of the file are silence the card produced.
struct SilenceRange {
  uint64_t first_frame = 0;
  uint64_t end_frame = 0;
  SilenceReason reason = SilenceReason::kUnderrun;
  bool operator==(const SilenceRange&) const = default;
};

struct WavSpeakerOptions {
  std::string path;
  // When set, Flush() rewrites this text file with one line per silent range:
  // "<first_frame> <end_frame> <reason>".
  std::string silence_log_path;
};

class WavSpeaker final : public AudioSink {
 public:
  static Result<std::unique_ptr<WavSpeaker>> Create(WavSpeakerOptions options);

  void Begin(const AudioFormat& format, uint64_t position) override;
  void Play(std::span<const std::byte> frames) override;
  void Underrun(uint64_t frames) override;
  void Flush() override;

  std::vector<SilenceRange> silences() const;
  uint64_t frames() const { return frames_.load(std::memory_order_relaxed); }
  // The first write error, if any (later frames are dropped).
  std::optional<Error> error() const;

 private:
  explicit WavSpeaker(WavSpeakerOptions options) : options_(std::move(options)) {}
  void AddSilence(uint64_t frames, SilenceReason reason);
  void Check(Result<void> r);

  WavSpeakerOptions options_;
  std::unique_ptr<WavWriter> writer_;  // created at the first Begin(), when the format is known
  bool format_mismatch_ = false;
  uint32_t stream_frame_bytes_ = 1;  // of the current stream (the file's may differ)
  std::atomic<uint64_t> frames_{0};
  mutable std::mutex mu_;  // guards silences_ and error_ (rarely touched)
  std::vector<SilenceRange> silences_;
  std::optional<Error> error_;
};

}  // namespace umbra::hw::sound
