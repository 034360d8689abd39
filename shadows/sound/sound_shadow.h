// The sound shadow: a sound card whose driver may crash, behind a sound::Pcm
// that never shows it.
//
// Passive (driver healthy): Write cuts the application's frames into pool
// buffers of at most one period and submits them at their application
// position (kWrite); the driver copies them into the DMA ring, so Write blocks
// at the card's pace once the ring and `queue_periods` more periods are full.
// Read submits one buffer at a time (kRead) and waits until it was captured.
// The shadow logs the configuration (volume, mute: the configuration log;
// each stream's parameters, state, origin and position: its own stream
// records) and keeps a copy of the last ring + queue frames written; the
// application never runs further ahead of the clock than that copy reaches.
// A write or drain the driver fails (not interrupted by a crash) is a driver
// bug: the shadow kills the driver, and the recovery below takes over.
//
// Recovering (policies):
//   Write   dropped — late sound is worse than a gap — but the position moves
//           on and the call takes as long as the card would have: it returns
//           when the sample clock (estimated from the last start and
//           `clock_speed`) reaches the point where a live card would have
//           taken the frames. Never an error, never longer than real time.
//   Read    silence for the frames the card could not capture, at the
//           clock's pace, recorded in CaptureGaps() and in the recorder
//           (RequestCompleted kCapture/kInterrupted, RequestsDisposed kAnswered).
//   Volume, mute, Status, Position: answered from the shadow; settings are
//           logged and replayed.
// After the new driver probed: ReplayConfiguration (volume, mute), then
// ReopenObjects (open, hw_params, prepare, and for a running stream kStart
// with the stream's origin: the driver returns the new base, so application
// position `a` plays at the same clock frame as before), then
// ResubmitRequests (playback: the kept frames that are still in the future,
// so playback resumes with the next period; capture: reads go live again).
//
//   runtime::Host& host = *UMBRA_TRY(sup.AddDevice({... .driver_binary = "umbra-driver-sound",
//                                                        .hw = card.get()}));
//   auto shadow = UMBRA_TRY(sound::SoundShadow::Create(host, {}));
//   UMBRA_TRY(shadow->Open(5'000'000'000));
//   UMBRA_TRY(shadow->OpenPlayback({}));  ...  shadow->Write(frames);
//
// RecoveryMode::kRestartOnly is the comparison: no replay and no reopen;
// Write/Read/settings fail with kUnavailable while the driver restarts, and
// the streams are gone afterwards (the application sees errors).
//
// Thread safety: see sound::Pcm. The data path and the stream records are
// guarded by `mu_`, taken once per period-sized chunk; a thread waiting for
// the card waits in 1 ms slices so the other stream's thread and the
// recovery worker get in.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/result.h"
#include "shadows/registry.h"
#include "shadows/shadow.h"
#include "shadows/sound/pcm.h"

namespace umbra::sound {

struct SoundShadowOptions {
  // Periods of frames the shadow queues beyond the card's ring before Write
  // blocks (like a sound server's buffer).
  uint32_t queue_periods = 2;
  // Virtual seconds of the card's sample clock per real second: 1 for a real
  // card; the emulated card can run faster in tests. Only used to pace the
  // application while the driver is down.
  double clock_speed = 1.0;
  int64_t call_timeout_ns = 2'000'000'000;
};

class SoundShadow final : public shadows::Shadow, public Pcm {
 public:
  static Result<std::unique_ptr<SoundShadow>> Create(runtime::Host& host, SoundShadowOptions options,
                                                     shadows::RecoveryMode mode = shadows::RecoveryMode::kShadow);
  ~SoundShadow() override;

  // Starts the driver and waits until it serves.
  Result<void> Open(int64_t timeout_ns);

  // sound::Pcm
  Result<void> OpenPlayback(const PcmParams& params) override;
  Result<void> OpenCapture(const PcmParams& params) override;
  Result<void> Start(Direction d) override;
  Result<size_t> Write(std::span<const std::byte> frames) override;
  Result<size_t> Read(std::span<std::byte> out) override;
  uint64_t Position(Direction d) const override;
  Result<void> Drain() override;
  Result<void> Stop(Direction d) override;
  Result<void> Close(Direction d) override;
  Result<void> SetVolume(uint32_t percent) override;
  uint32_t Volume() const override { return volume_.load(std::memory_order_relaxed); }
  Result<void> SetMute(bool mute) override;
  bool Muted() const override { return mute_.load(std::memory_order_relaxed); }
  PcmStatus Status(Direction d) const override;
  std::vector<FrameRange> CaptureGaps() const override;

 protected:
  void OnDriverLost() override;
  Result<void> ReopenObjects() override;
  Result<void> ResubmitRequests() override;

 private:
  // Everything the shadow knows about one stream (guarded by mu_).
  struct StreamRecord {
    Direction dir = Direction::kPlayback;
    PcmState state = PcmState::kClosed;
    PcmParams params;
    uint32_t frame_bytes = 0;
    uint64_t ring_frames = 0;
    uint32_t chunk_frames = 0;  // frames per pool buffer
    uint64_t position = 0;      // application position
    bool has_origin = false;
    uint64_t origin = 0;             // clock frame of application position 0
    uint64_t base = 0;               // application position at the stream's position 0
    int64_t anchor_ns = 0;           // when the hardware stream last started (0: never)
    uint64_t start_position = 0;     // application position when last prepared
    uint64_t setup_epoch = 0;        // == epoch_: the current driver has it open and prepared
    uint64_t started_epoch = 0;      // == epoch_: ... and started
    std::vector<uint32_t> free;      // pool buffers of this stream
    uint32_t buffers = 0;            // pool buffers it owns
    std::vector<std::byte> history;  // playback: frame a at (a % history_frames)
    uint64_t history_frames = 0;
    uint64_t dropped = 0, silent = 0;
    uint64_t dropped_until = 0;  // playback: frames before it were dropped while the stream was not started
    // capture: the one read in flight
    bool read_in_flight = false;
    bool read_done = false;
    int32_t read_status = 0;
    uint32_t read_bytes = 0;
    uint64_t read_silent = 0;
    std::vector<FrameRange> gaps;
  };

  SoundShadow(runtime::Host& host, Options options, SoundShadowOptions sound_options)
      : Shadow(host, std::move(options)), sound_options_(sound_options) {}

  StreamRecord& rec(Direction d) { return streams_[d == Direction::kPlayback ? 0 : 1]; }
  const StreamRecord& rec(Direction d) const { return streams_[d == Direction::kPlayback ? 0 : 1]; }
  bool InDriver(const StreamRecord& s) const { return s.setup_epoch == epoch_.load(std::memory_order_acquire); }
  bool StartedInDriver(const StreamRecord& s) const {
    return s.started_epoch == epoch_.load(std::memory_order_acquire);
  }
  uint64_t LeadFrames(const StreamRecord& s) const {
    return s.ring_frames + uint64_t{sound_options_.queue_periods} * s.params.period_frames;
  }
  Result<void> OpenStream(Direction d, const PcmParams& params);
  // Under mu_: driver calls that (re)build a stream in the current driver.
  Result<void> SetUpInDriverLocked(StreamRecord& s);
  Result<void> StartInDriverLocked(StreamRecord& s);
  std::vector<runtime::DriverCall> SetUpCalls(const StreamRecord& s) const;
  runtime::DriverCall StartCall(const StreamRecord& s) const;
  void SetUpDoneLocked(StreamRecord& s, uint64_t epoch);
  Result<void> StartedLocked(StreamRecord& s, uint64_t epoch, const std::string& reply);
  // Under mu_: the sample clock's position in application frames, estimated.
  uint64_t ClockPositionLocked(const StreamRecord& s, int64_t now) const;
  int64_t NanosForFrames(const StreamRecord& s, uint64_t frames) const;
  void KeepHistoryLocked(StreamRecord& s, const std::byte* data, uint64_t frames);
  // Under mu_: submits frames [a, a + n) of the history; false if the
  // driver refused (down) or no buffer is free.
  bool SubmitWriteLocked(StreamRecord& s, uint64_t a, uint64_t n);
  size_t PollLocked();
  void HandleLocked(std::span<const runtime::Completion> done);
  // Waits up to `slice_ns` for completions, under mu_.
  void WaitLocked(int64_t slice_ns);
  // Blocks (mu_ released while sleeping) until the clock reaches `a`.
  void PaceUntil(std::unique_lock<std::mutex>& lock, StreamRecord& s, uint64_t a);
  void AddGapLocked(StreamRecord& s, uint64_t first, uint64_t frames);
  Result<size_t> WriteChunk(std::unique_lock<std::mutex>& lock, StreamRecord& s, const std::byte* data, uint64_t n);
  Result<void> ReadChunk(std::unique_lock<std::mutex>& lock, StreamRecord& s, std::byte* out, uint64_t n);
  void ReleaseBuffersLocked(StreamRecord& s);
  // Under mu_: a playback write or capture read handed to the driver, and
  // its completion (docs/recorder.md, "Recording from a class").
  void RecordSubmittedLocked(const runtime::Request& req);
  void RecordCompletedLocked(const runtime::Completion& c);
  static bool WriteFailed(int32_t status);
  // Under mu_: kills the current driver (once per driver instance).
  void RestartFaultyDriverLocked(int32_t status);

  const SoundShadowOptions sound_options_;

  mutable std::mutex mu_;  // the data path and the stream records
  bool buffers_ready_ = false;
  std::vector<uint32_t> pool_free_;  // pool buffers no stream owns
  StreamRecord streams_[2];
  std::vector<runtime::Completion> completions_;
  std::vector<runtime::Request> requests_;
  struct Submitted {
    int64_t time_ns = 0;
    uint32_t length = 0;
  };
  std::vector<Submitted> submitted_;  // per pool buffer (offset / buffer size), written only while recording
  std::atomic<bool> live_{false};     // the driver serves streams (cleared by OnDriverLost)
  std::atomic<uint64_t> epoch_{1};    // bumped by OnDriverLost: stream records of older epochs are stale
  uint64_t killed_epoch_ = 0;         // the epoch whose driver the shadow killed (guarded by mu_)
  std::atomic<uint32_t> volume_{100};
  std::atomic<bool> mute_{false};
};

// The settings the factory takes: "queue_periods", "clock_speed".
const shadows::SettingsSchema<SoundShadowOptions>& SoundSettings();
// The registry's factory for "sound".
Result<std::unique_ptr<shadows::Shadow>> CreateSoundShadow(runtime::Host& host, const shadows::ShadowSettings& settings,
                                                           shadows::RecoveryMode mode);

}  // namespace umbra::sound
