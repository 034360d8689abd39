// The emulated sound card's datasheet: register window and DMA conventions.
//
// This header is all a driver needs to program the card ("umbra,sound-emu").
// It includes only <atomic> and <cstdint> so that a driver process can use it
// without any other part of Umbra.
//
// Memory map (one shared region, see hw::Resources):
//
//   offset 0            SoundRegs, one 4 KiB page (registers_offset/size)
//   offset 4096         the DMA pool (dma_offset/dma_size); each stream's ring
//                       of periods lives in it at SoundStreamRegs::buffer_offset
//
// Two streams: kPlayback (the DAC, which plays the ring into "the speaker")
// and kCapture (the ADC, which fills the ring from "the microphone"). Both are
// paced by a sample clock the card owns.
//
// Programming a stream (the driver):
//   1. write rate, channels, format, period_frames, periods, buffer_offset;
//   2. playback: fill the first periods of the ring and set appl_ptr to the
//      number of frames written (the card fetches the first period at start;
//      frames written later for the period in progress are played from where
//      the DAC is when the card sees them: ring the doorbell after writing
//      them).
//      Positions of the new stream count from 0: until kStart is taken,
//      hw_ptr still shows where the previous stream stopped;
//   3. write command = kStart, bump `doorbell`, signal the doorbell eventfd;
//   4. on each period interrupt (int_cause bit kIntPlaybackPeriod or
//      kIntCapturePeriod): read hw_ptr, then write (playback) or read
//      (capture) frames and advance appl_ptr.
//
// Pointers are 64-bit frame counters that start at 0 on kStart and never
// wrap in practice. Frame n of the stream lives in the ring at byte
//   buffer_offset + (n % (period_frames * periods)) * frame_bytes.
//
// Positions follow the clock, not the driver: the hardware pointer advances by
// one period per period of the sample clock whether or not the driver kept
// up. Playback: frames in [hw_ptr, appl_ptr) are the driver's; a period the
// driver did not fill (appl_ptr < end of the period) is played with silence
// where data is missing (an underrun: the rest of the stream is neither
// delayed nor shifted). Capture: the ring always holds the latest
// period_frames * periods frames; frames older than hw_ptr - buffer frames
// have been overwritten (an overrun) and must be skipped by the driver.
//
// Interrupts: the card ORs a bit into int_cause and signals the interrupt
// eventfd, unless the bit is set in int_mask or was already pending (event
// suppression). The driver acknowledges with int_cause.exchange(0) (or
// fetch_and(~handled)) and then handles every bit it took. After unmasking a
// bit the driver checks int_cause itself: masked causes are latched, not lost.
//
// Refusals: every value is validated when the card uses it. A refused value
// leaves the stream stopped, sets `error` (SoundError) on the stream (or
// `fault_code` in SoundRegs for global registers), counts `faults`, and raises
// kIntFault. The card keeps serving.
#pragma once

#include <atomic>
#include <cstdint>

namespace umbra::hw::sound {

inline constexpr uint32_t kSoundMagic = 0x444E5355;  // "USND" little-endian
inline constexpr uint32_t kSoundVersion = 1;
inline constexpr uint64_t kSoundRegistersSize = 4096;

// Sample formats (SoundStreamRegs::format). All little-endian, interleaved.
enum class SoundFormat : uint32_t {
  kS16Le = 1,    // signed 16-bit
  kS32Le = 2,    // signed 32-bit
  kFloatLe = 3,  // IEEE 754 binary32, nominal range [-1, 1]
};

// Sample rates the card accepts (Hz).
inline constexpr uint32_t kSoundRates[] = {8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000};
inline constexpr uint32_t kSoundMaxChannels = 8;
inline constexpr uint32_t kSoundMinPeriodFrames = 16;
inline constexpr uint32_t kSoundMaxPeriodFrames = 1u << 16;
inline constexpr uint32_t kSoundMinPeriods = 2;
inline constexpr uint32_t kSoundMaxPeriods = 1024;
// buffer_offset must be a multiple of this (bytes, relative to the pool).
inline constexpr uint64_t kSoundBufferAlign = 16;
inline constexpr uint32_t kSoundMaxVolume = 100;

// SoundStreamRegs::command: written by the driver, cleared by the card when it
// takes the command (it does `command.exchange(0)`). One command at a time: a
// driver waits until `command` reads 0 before writing the next one, or the
// earlier one may be overwritten before the card saw it.
enum class SoundCommand : uint32_t {
  kNone = 0,
  kStart = 1,  // validate the configuration, reset pointers to 0, run
  kStop = 2,   // stop now; hw_ptr keeps its value
  kDrain = 3,  // playback: play up to appl_ptr (even a partial period), then stop
};

// SoundStreamRegs::state: written by the card.
enum class SoundStreamState : uint32_t {
  kStopped = 0,
  kRunning = 1,
  kDraining = 2,
};

// Why the card refused a value (SoundStreamRegs::error, SoundRegs::fault_code).
enum class SoundError : uint32_t {
  kNone = 0,
  kBadRate = 1,            // rate not in kSoundRates
  kBadChannels = 2,        // channels not in 1..kSoundMaxChannels
  kBadFormat = 3,          // format not a SoundFormat
  kBadPeriodFrames = 4,    // period_frames outside [kSoundMinPeriodFrames, kSoundMaxPeriodFrames]
  kBadPeriods = 5,         // periods outside [kSoundMinPeriods, kSoundMaxPeriods]
  kBufferOutsidePool = 6,  // buffer_offset + buffer bytes beyond dma_size
  kBufferMisaligned = 7,   // buffer_offset not a multiple of kSoundBufferAlign
  kBadApplPtr = 8,         // playback: appl_ptr > hw_ptr + buffer frames;
                           // capture: appl_ptr > hw_ptr
  kBadCommand = 9,         // command not a SoundCommand
  kBadVolume = 10,         // volume > kSoundMaxVolume, or mute not 0/1
  kBadControl = 11,        // unknown bits in SoundRegs::control
};

// Interrupt cause / mask bits.
inline constexpr uint32_t kIntPlaybackPeriod = 1u << 0;  // a playback period was played
inline constexpr uint32_t kIntCapturePeriod = 1u << 1;   // a capture period was filled
inline constexpr uint32_t kIntUnderrun = 1u << 2;        // playback period short of data
inline constexpr uint32_t kIntOverrun = 1u << 3;         // capture overwrote unread frames
inline constexpr uint32_t kIntFault = 1u << 4;           // a value was refused
inline constexpr uint32_t kIntStopped = 1u << 5;         // a stream stopped by itself (drain
                                                         // finished, or refused pointer)
inline constexpr uint32_t kIntAll = (1u << 6) - 1;

// SoundRegs::control bits (driver writes, card clears when done).
inline constexpr uint32_t kControlReset = 1u << 0;  // same as hw Reset(): stop, mask, power-on values

enum class SoundStream : uint32_t { kPlayback = 0, kCapture = 1 };

// One stream's registers. "D" = written by the driver, read by the card;
// "C" = written by the card (a driver write there is ignored and overwritten).
struct SoundStreamRegs {
  std::atomic<uint32_t> command;        // D  SoundCommand, taken with exchange(0)
  std::atomic<uint32_t> state;          // C  SoundStreamState
  std::atomic<uint32_t> error;          // C  SoundError of the last refusal on this stream
  std::atomic<uint32_t> rate;           // D  Hz, one of kSoundRates          (latched at kStart)
  std::atomic<uint32_t> channels;       // D  1..kSoundMaxChannels            (latched at kStart)
  std::atomic<uint32_t> format;         // D  SoundFormat                     (latched at kStart)
  std::atomic<uint32_t> period_frames;  // D  frames per period               (latched at kStart)
  std::atomic<uint32_t> periods;        // D  periods in the ring             (latched at kStart)
  std::atomic<uint64_t> buffer_offset;  // D  ring start, bytes from the pool start (latched)
  std::atomic<uint64_t> hw_ptr;         // C  frames played / captured since kStart
  std::atomic<uint64_t> appl_ptr;       // D  frames written (playback) / consumed (capture);
                                        //    read once per period
  std::atomic<uint64_t> xruns;          // C  underrun (playback) / overrun (capture) episodes
  std::atomic<uint64_t> xrun_frames;    // C  frames played as silence / lost to overwrite
  std::atomic<uint64_t> start_frame;    // C  sample-clock frame at which the stream last
                                        //    started (the speaker/microphone position of hw_ptr 0)
  std::atomic<uint64_t> periods_done;   // C  period interrupts raised since kStart
  uint8_t reserved[128 - 88];
};

// The register window at offset 0 of the region.
struct SoundRegs {
  std::atomic<uint32_t> magic;       // C  kSoundMagic
  std::atomic<uint32_t> version;     // C  kSoundVersion
  std::atomic<uint32_t> control;     // D  kControl* command bits; the card clears them
  std::atomic<uint32_t> int_cause;   // C sets, D acks (exchange(0) / fetch_and)
  std::atomic<uint32_t> int_mask;    // D  1 = masked; power-on: kIntAll (all masked)
  std::atomic<uint32_t> volume;      // D  DAC gain in percent, linear: 0..100 (power-on 100);
                                     //    sample * volume / 100, read once per period
  std::atomic<uint32_t> mute;        // D  1 = DAC outputs silence (power-on 0)
  std::atomic<uint32_t> fault_code;  // C  SoundError of the last global refusal
  std::atomic<uint64_t> dma_size;    // C  bytes in the DMA pool
  std::atomic<uint64_t> faults;      // C  values refused since the card was created
  std::atomic<uint32_t> doorbell;    // D  bump (fetch_add 1) before signalling the doorbell
                                     //    eventfd; lets a busy card see work without a syscall
  std::atomic<uint32_t> reserved0;
  uint8_t reserved1[128 - 56];
  SoundStreamRegs streams[2];  // indexed by SoundStream
  uint8_t reserved2[4096 - 384];
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint64_t>) == 8);
static_assert(sizeof(SoundStreamRegs) == 128);
static_assert(sizeof(SoundRegs) == kSoundRegistersSize);
static_assert(__builtin_offsetof(SoundStreamRegs, buffer_offset) == 32);
static_assert(__builtin_offsetof(SoundStreamRegs, hw_ptr) == 40);
static_assert(__builtin_offsetof(SoundStreamRegs, appl_ptr) == 48);
static_assert(__builtin_offsetof(SoundStreamRegs, periods_done) == 80);
static_assert(__builtin_offsetof(SoundRegs, int_cause) == 12);
static_assert(__builtin_offsetof(SoundRegs, dma_size) == 32);
static_assert(__builtin_offsetof(SoundRegs, doorbell) == 48);
static_assert(__builtin_offsetof(SoundRegs, streams) == 128);

// Bytes per sample of a valid format, 0 for an unknown one.
constexpr uint32_t SoundSampleBytes(uint32_t format) {
  switch (format) {
    case static_cast<uint32_t>(SoundFormat::kS16Le): return 2;
    case static_cast<uint32_t>(SoundFormat::kS32Le):
    case static_cast<uint32_t>(SoundFormat::kFloatLe): return 4;
  }
  return 0;
}

constexpr bool SoundRateSupported(uint32_t rate) {
  for (uint32_t r : kSoundRates)
    if (r == rate) return true;
  return false;
}

}  // namespace umbra::hw::sound
