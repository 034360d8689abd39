// sound::Pcm: what an application uses to play and record sound, in the
// manner of ALSA's PCM API (snd_pcm_open / hw_params / writei / readi / drain).
//
// Implemented by the sound shadow (SoundShadow: the card's driver runs
// isolated and its crashes are hidden). One playback and one capture stream
// per device. Frames are interleaved little-endian samples in the stream's
// format; every call takes whole frames.
//
//   sound::Pcm& pcm = *shadow;
//   UMBRA_TRY(pcm.OpenPlayback({.rate = 48000, .channels = 2, .period_frames = 240, .periods = 4}));
//   while (more) UMBRA_TRY(pcm.Write(frames));   // blocks at the card's pace;
//                                                // starts the stream once the ring is full
//   UMBRA_TRY(pcm.Drain());                      // returns once everything was played
//   UMBRA_TRY(pcm.Close(sound::Direction::kPlayback));
//
// Positions: Position(d) counts the frames the application wrote (playback)
// or read (capture) since the stream was opened. Frame `a` is heard (or was
// said) at a fixed sample-clock instant, the stream's start plus `a` frames,
// whatever happens to the driver: a crash makes a gap, never a shift.
//
// Errors: kDeviceFailed once the device is given up on; kInvalidArgument for
// bad parameters or a call in the wrong state; kUnavailable only in the
// restart-only comparison mode while the driver restarts.
//
// Thread safety: one application thread per stream for Write/Read and that
// stream's Start/Drain/Stop/Close; the volume calls and the accessors may be
// made from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "runtime/hw/sound/sound_regs.h"

namespace umbra::sound {

enum class Direction { kPlayback, kCapture };
const char* DirectionName(Direction d);

struct PcmParams {
  uint32_t rate = 48000;
  uint32_t channels = 2;
  hw::sound::SoundFormat format = hw::sound::SoundFormat::kS16Le;
  uint32_t period_frames = 240;  // 5 ms at 48 kHz
  uint32_t periods = 4;

  uint32_t frame_bytes() const { return hw::sound::SoundSampleBytes(static_cast<uint32_t>(format)) * channels; }
  bool operator==(const PcmParams&) const = default;
};

enum class PcmState {
  kClosed,
  kPrepared,  // opened (or drained/stopped): Write/Read start it
  kRunning,
  kStopped,  // after Stop or Drain; Write/Read prepare and start it again
};
const char* PcmStateName(PcmState s);

// Frames [first, end) in application positions.
struct FrameRange {
  uint64_t first = 0;
  uint64_t end = 0;
  uint64_t frames() const { return end - first; }
  bool operator==(const FrameRange&) const = default;
};

struct PcmStatus {
  PcmState state = PcmState::kClosed;
  PcmParams params;
  uint64_t position = 0;        // frames written / read by the application
  uint64_t dropped_frames = 0;  // playback: written while the driver was down, never played
  uint64_t silent_frames = 0;   // capture: returned as silence (the driver was down)
  uint64_t recoveries = 0;      // driver recoveries the device went through
};

class Pcm {
 public:
  virtual ~Pcm() = default;

  virtual Result<void> OpenPlayback(const PcmParams& params) = 0;
  virtual Result<void> OpenCapture(const PcmParams& params) = 0;
  // Starts a prepared stream now (Write and Read also start it by themselves).
  virtual Result<void> Start(Direction d) = 0;
  // Plays whole frames; blocks like snd_pcm_writei until they are queued.
  // Returns the number of frames taken (all of them).
  virtual Result<size_t> Write(std::span<const std::byte> frames) = 0;
  // Fills `out` with captured frames; blocks until they were captured.
  virtual Result<size_t> Read(std::span<std::byte> out) = 0;
  virtual uint64_t Position(Direction d) const = 0;
  // Playback: returns once everything written has been played, then stops.
  virtual Result<void> Drain() = 0;
  // Stops now; what was not played is discarded.
  virtual Result<void> Stop(Direction d) = 0;
  virtual Result<void> Close(Direction d) = 0;

  virtual Result<void> SetVolume(uint32_t percent) = 0;  // 0..100
  virtual uint32_t Volume() const = 0;
  virtual Result<void> SetMute(bool mute) = 0;
  virtual bool Muted() const = 0;

  virtual PcmStatus Status(Direction d) const = 0;
  // Capture: the ranges Read returned as silence because the driver was
  // down (merged, in application positions).
  virtual std::vector<FrameRange> CaptureGaps() const = 0;
};

}  // namespace umbra::sound
