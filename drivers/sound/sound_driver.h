// The sample sound driver for the emulated PCM card ("umbra,sound-emu").
//
// Reads like a short ALSA driver, programmed from the datasheet
// (runtime/hw/sound/sound_regs.h) alone:
//   Probe      reset the card, check its magic, unmask the period, stop and
//              fault interrupts.
//   Open/Close (kOpen/kClose) claim and release a stream (playback, capture).
//   HwParams   (kHwParams) rate, channels, format, period size and count,
//              checked against the datasheet and the DMA pool: the playback
//              ring lives in the first half of the pool, the capture ring in
//              the second.
//   Prepare    (kPrepare) stop the stream, program its registers, positions 0.
//   Start      (kStart) kStart to the card; reads start_frame and computes the
//              stream's base (see protocols/sound/sound_protocol.h).
//   Write      (kWrite) copy frames from a host pool buffer into the ring at
//              their stream position, zero-filling any hole so the card never
//              replays stale ring content, advance appl_ptr; complete once
//              copied. Frames the DAC has passed are skipped; a request that
//              does not fit yet waits for the next period interrupt.
//   Read       (kRead) held until the ADC captured its frames, then copied out
//              of the ring; frames before the stream or lost to an overrun
//              are silence, counted in the completion's arg.
//   Interrupt  ack int_cause, then move waiting writes and reads along.
//   Drain/Stop (kDrain/kStop), volume and mute (kSetVolume/kSetMute).
//
//   UMBRA_DRIVER_MAIN(umbra::drivers::SoundDriver)     // drivers/sound/main.cc
//   // or in-process: InProcessRunner run(std::make_unique<SoundDriver>(), {...});
//
// Completion policy: a write completes when its frames are in the DMA ring
// (not when they have been played). This keeps one pool buffer per period in
// flight, and the application's pace is set by ring space, like
// snd_pcm_writei; the shadow keeps its own copy of recent frames, so nothing
// it needs is lost with the ring when the driver dies.
//
// Failpoint sites (kSoundSites): snd.probe, snd.open, snd.hw_params,
// snd.prepare, snd.start, snd.write, snd.read, snd.irq, snd.volume, snd.drain.
// Site-interpreted faults model sound driver bugs: kBadRegister programs a
// wrong register value (rate, appl_ptr, volume), kError fails the operation,
// kDropCompletion loses a request or an interrupt, kWrongLength reports a read
// longer than asked.
//
// Thread safety: like every driver, single-threaded (the SDK's loop and fibers).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "drivers/sdk/driver.h"
#include "runtime/hw/sound/sound_regs.h"
#include "protocols/sound/sound_protocol.h"

namespace umbra::drivers {

inline constexpr std::string_view kSoundSites[] = {
    "snd.probe", "snd.open", "snd.hw_params", "snd.prepare", "snd.start",
    "snd.write", "snd.read", "snd.irq",       "snd.volume",  "snd.drain",
};

class SoundDriver : public sdk::Driver {
 public:
  std::string_view name() const override { return "sound"; }
  std::string_view version() const override { return "1.0"; }

  Result<void> Probe(sdk::Context& ctx) override;
  void Stop(sdk::Context& ctx) override;
  void OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) override;
  Result<std::string> OnCall(sdk::Context& ctx, uint32_t method, std::string_view body) override;
  void OnInterrupt(sdk::Context& ctx) override;
  std::map<std::string, uint64_t> Counters() const override;

 private:
  struct Stream {
    bool open = false;
    bool configured = false;
    bool prepared = false;
    bool started = false;
    // The card stopped the running stream because it refused a value we
    // programmed: writes and reads fail (kIo) until the next prepare.
    bool refused = false;
    uint32_t rate = 0, channels = 0, format = 0, period_frames = 0, periods = 0;
    uint32_t frame_bytes = 0;
    uint64_t ring_frames = 0;
    uint64_t ring_offset = 0;             // bytes from the DMA pool start
    uint64_t base = 0;                    // application position at stream position 0
    uint64_t appl = 0;                    // our appl_ptr (stream position)
    std::deque<ipc::Descriptor> pending;  // writes waiting for space / reads for data
  };

  hw::sound::SoundRegs& regs() const { return *regs_; }
  hw::sound::SoundStreamRegs& sregs(uint32_t s) const { return regs_->streams[s]; }
  Result<Stream*> StreamFor(std::string_view body, bool need_open);
  uint64_t HwPtr(uint32_t s) const;

  Result<void> ResetCard(sdk::Context& ctx);
  Result<void> Command(sdk::Context& ctx, uint32_t s, hw::sound::SoundCommand c);
  Result<void> WaitState(sdk::Context& ctx, uint32_t s, hw::sound::SoundStreamState want, int64_t timeout_ns);
  void StopStream(sdk::Context& ctx, uint32_t s);
  void FailPending(sdk::Context& ctx, Stream& st, Errc why);

  Result<std::string> Open(std::string_view body);
  Result<std::string> Close(sdk::Context& ctx, std::string_view body);
  Result<std::string> HwParams(std::string_view body);
  Result<std::string> Prepare(sdk::Context& ctx, std::string_view body);
  Result<std::string> Start(sdk::Context& ctx, std::string_view body);
  Result<std::string> StopCall(sdk::Context& ctx, std::string_view body);
  Result<std::string> Drain(sdk::Context& ctx, std::string_view body);
  Result<std::string> SetVolume(std::string_view body);
  Result<std::string> SetMute(std::string_view body);
  Result<std::string> Status(std::string_view body);

  // Returns false when the write must wait for ring space.
  bool TryWrite(sdk::Context& ctx, Stream& st, const ipc::Descriptor& req);
  // Returns false when the read must wait for the ADC.
  bool TryRead(sdk::Context& ctx, Stream& st, const ipc::Descriptor& req);
  void ServicePlayback(sdk::Context& ctx);
  void ServiceCapture(sdk::Context& ctx);

  hw::sound::SoundRegs* regs_ = nullptr;  // in the device region the SDK mapped
  std::byte* dma_ = nullptr;
  uint64_t dma_size_ = 0;
  Stream streams_[2];
  uint32_t volume_ = hw::sound::kSoundMaxVolume;
  uint32_t mute_ = 0;

  uint64_t frames_written_ = 0, frames_read_ = 0, late_frames_ = 0, silent_frames_ = 0, interrupts_ = 0;
};

}  // namespace umbra::drivers
