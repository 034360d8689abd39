// SoundCard: the emulated sound card ("umbra,sound-emu"), a DAC and an ADC
// with DMA rings of periods, paced by a sample clock the card owns.
//
// The register window and DMA conventions are in sound_regs.h (the
// datasheet); docs/hw-sound.md draws the state machine. The card's behaviour
// is a pure function of its virtual clock and of what the driver wrote: the
// same driver actions at the same virtual times give the same speaker file
// whether the clock runs at real-time pace, faster (speed > 1), or is
// advanced by hand.
//
//   SoundCardOptions options;
//   options.speaker = UMBRA_TRY(WavSpeaker::Create({.path = "out.wav"}));
//   options.clock = ClockMode::kManual;          // or kRealTime with speed
//   auto card = UMBRA_TRY(SoundCard::Create(std::move(options)));
//   SoundRegs* regs = card->registers();          // what a driver maps
//   ... program stream 0, command = kStart, ring the doorbell ...
//   card->Advance(1);                             // one playback period
//
// Thread safety: Start/Stop/Reset/Advance/AdvanceTime/FlushBackends and the
// accessors may be called from any thread. The hardware thread (kRealTime)
// and manual clock calls hold one internal lock per wake-up, not per period
// or frame. The fault callback runs under that lock and must not call back
// into the card.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "runtime/hw/device.h"
#include "runtime/hw/device_memory.h"
#include "runtime/hw/sound/audio_backend.h"
#include "runtime/hw/sound/sound_regs.h"
#include "runtime/ipc/event_fd.h"
#include "runtime/ipc/shared_memory.h"

namespace umbra::hw::sound {

enum class ClockMode {
  kRealTime,  // a hardware thread; virtual time = speed x elapsed real time
  kManual,    // no thread; time moves only in Advance()/AdvanceTime()
};

// One refused value, as reported to the fault callback.
struct SoundFault {
  SoundError error = SoundError::kNone;
  int stream = -1;     // SoundStream index, or -1 for a global register
  uint64_t value = 0;  // the refused value as read
};

struct SoundCardOptions {
  std::string name = "snd0";
  uint64_t dma_size = 1 << 20;  // bytes in the DMA pool
  ClockMode clock = ClockMode::kRealTime;
  double speed = 1.0;                       // kRealTime: virtual seconds per real second
  std::unique_ptr<AudioSink> speaker;       // null: played frames are discarded
  std::unique_ptr<AudioSource> microphone;  // null: capture records silence
  std::function<void(const SoundFault&)> on_fault;
};

class SoundCard final : public Device {
 public:
  static constexpr std::string_view kCompatible = "umbra,sound-emu";

  static Result<std::unique_ptr<SoundCard>> Create(SoundCardOptions options);
  ~SoundCard() override;

  std::string_view compatible() const override { return kCompatible; }
  Resources resources() const override;
  // kRealTime: starts the hardware thread. kManual: nothing to start.
  void Start() override;
  // Joins the hardware thread and flushes the backends. Idempotent.
  void Stop() override;
  void Reset() override;
  uint64_t faults() const override { return faults_.load(std::memory_order_relaxed); }

  // The host's view of the registers and the DMA pool.
  SoundRegs* registers() const { return regs_; }
  std::byte* dma() const { return mem_.region->data() + kSoundRegistersSize; }
  uint64_t dma_size() const { return options_.dma_size; }

  // kManual only (refused otherwise): takes pending commands, then advances
  // the clock by `periods` periods of the playback stream (of the capture
  // stream when playback is stopped; with neither running, only commands are
  // taken). Advance(0) only takes commands.
  Result<void> Advance(uint64_t periods);
  // kManual only: takes pending commands and advances the clock by `ns`.
  Result<void> AdvanceTime(int64_t ns);
  // Virtual nanoseconds since Create().
  int64_t now_ns() const;

  // Makes the speaker's output readable now (the WAV header is patched).
  void FlushBackends();

  AudioSink* speaker() const { return options_.speaker.get(); }
  AudioSource* microphone() const { return options_.microphone.get(); }

 private:
  struct Stream;

  SoundCard(SoundCardOptions options, DeviceMemory mem, ipc::EventFd wake, UniqueFd timer);

  void Loop();
  void WaitForWork(int64_t deadline_ns, bool spin);
  bool PendingCommands() const;

  // Everything below runs under mu_.
  // Tick and the Take* functions return whether a command was taken.
  bool Tick(int64_t now);
  bool TakeCommands(int64_t now);
  bool TakeControl(int64_t now);
  bool TakeCommand(Stream& s, int64_t now);
  void ExecuteCommand(Stream& s, uint32_t command, int64_t now);
  void StartStream(Stream& s, int64_t now);
  void BeginDrain(Stream& s);
  // A stop or reset at `now` in the middle of a playback period: the DAC has
  // played the period's frames up to `now`, and they reach the speaker.
  void CutPlayback(Stream& s, int64_t now);
  void StopStream(Stream& s);
  bool LatchConfig(Stream& s);
  int64_t NextBoundary(const Stream& s) const;
  void RunUntil(int64_t now);
  void CompletePlayback(Stream& s);
  void FetchPlayback(Stream& s);
  void TopUpPlayback(Stream& s, int64_t now);
  uint64_t EmitPeriod(Stream& s, uint64_t upto);
  void CompleteCapture(Stream& s);
  void ApplyVolume(Stream& s, uint64_t frames);
  void ReadVolume();
  void Raise(uint32_t bits);
  void Refuse(SoundError error, int stream, uint64_t value);
  void PowerOn();
  int64_t VirtualNowLocked() const;
  int64_t RealDeadline(int64_t virtual_ns) const;

  SoundCardOptions options_;  // owns the backends for the card's lifetime
  DeviceMemory mem_;          // registers + DMA, doorbell, interrupt: shared with each driver
  SoundRegs* regs_;           // inside mem_.region
  ipc::EventFd wake_;         // Stop() -> hardware thread
  UniqueFd timer_;            // timerfd armed at absolute period deadlines

  mutable std::mutex mu_;                         // the card's state below
  std::vector<std::unique_ptr<Stream>> streams_;  // [SoundStream]; owned, fixed after Create
  uint32_t volume_ = kSoundMaxVolume;
  bool mute_ = false;
  uint32_t refused_volume_ = 0;  // last refused raw value (one fault per change)
  uint32_t refused_mute_ = 0;
  int64_t virtual_ns_ = 0;    // kManual clock; kRealTime base at Start()
  int64_t real_base_ns_ = 0;  // kRealTime: real time at virtual_ns_
  bool running_ = false;

  std::atomic<uint64_t> faults_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;  // the hardware thread (kRealTime, after Start)
};

}  // namespace umbra::hw::sound
