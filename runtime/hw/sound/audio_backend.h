// The sound card's backends: where the DAC's output goes and where the ADC's
// input comes from. WavSpeaker and WavMicrophone are the file-backed ones; a
// new backend (a real sound server, a network stream) implements one of these.
//
// Positions are frames of the card's sample clock, counted from the first
// start of the stream's direction since the card was created: a stream that
// is stopped and restarted later (after a driver crash and a Reset) resumes at
// the clock's position, so the time it was stopped shows up as silence in
// the speaker's file, and the microphone skips what was said meanwhile.
//
// Thread safety: the card calls a backend from one thread at a time (its
// hardware thread, or the thread driving a manual clock), under its lock.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/hw/sound/wav.h"

namespace umbra::hw::sound {

class AudioSink {
 public:
  virtual ~AudioSink() = default;

  // The playback stream (re)started with `format`; its first frame plays at
  // clock frame `position` (never before the end of what was played).
  virtual void Begin(const AudioFormat& format, uint64_t position) = 0;
  // Frames the DAC played, volume and mute applied.
  virtual void Play(std::span<const std::byte> frames) = 0;
  // Frames the DAC played as silence because the driver had not written them.
  virtual void Underrun(uint64_t frames) = 0;
  // Makes what was played so far durable and readable (e.g. a valid file).
  virtual void Flush() = 0;
};

class AudioSource {
 public:
  virtual ~AudioSource() = default;

  // The capture stream (re)started with `format`; the next Read() returns
  // the source from clock frame `position`.
  virtual void Begin(const AudioFormat& format, uint64_t position) = 0;
  // Fills `frames` (whole frames of the Begin format) with the next frames.
  virtual void Read(std::span<std::byte> frames) = 0;
};

}  // namespace umbra::hw::sound
