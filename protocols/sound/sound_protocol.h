// The sound class protocol: what the sound shadow and a sound driver say to
// each other. Shared by drivers/sound (the driver side) and shadows/sound (the
// host side); plain structs copied byte for byte, no protobuf.
//
// Positions. Every data-path request names frames by their *application
// position* `a`: the number of frames the application had written (playback)
// or read (capture) on the stream before them. Application position `a`
// belongs at sample-clock frame `origin + a`, where `origin` is the clock
// frame at which the stream first started. A hardware stream started at clock
// frame `start_frame` holds application position `a` at stream position
// `a - base`, with `base = start_frame - origin`; the driver computes `base`
// when it starts the stream (kStart carries the origin, or kNoOrigin on the
// first start, with the application position that starts now) and
// replies with it. This is what keeps a restarted stream
// aligned: no sample is ever shifted, frames that fall before the new stream
// are dropped (playback) or returned as silence (capture).
//
// Data path (runtime::Request / ipc::Descriptor, `arg` = application position):
//   kWrite  offset/length: whole frames in the data pool for positions
//           [arg, arg + frames). The driver copies them into the DMA ring and
//           completes the request once they are there (status 0), so the pool
//           buffer is free again; frames the DAC has already passed are
//           skipped (counted as late). A request that does not fit in the ring
//           yet waits in the driver and is copied after the next period
//           interrupt. Completion `arg` = the stream's clock position
//           (hw_ptr + base) when it completed.
//   kRead   offset/capacity: an empty pool buffer for positions
//           [arg, arg + capacity / frame_bytes). Completed once the ADC has
//           captured them, with length = capacity and `arg` = the number of
//           leading frames that were not captured (before the stream started,
//           or overwritten by an overrun) and are silence.
//
// Control path (DriverHost::Call, body = one of the structs below, by stream):
//   kOpen      SoundStreamBody          claim the stream (kBusy if open)
//   kClose     SoundStreamBody          stop and release it
//   kHwParams  SoundHwParamsBody        rate, channels, format, period size, periods
//   kPrepare   SoundStreamBody          program the card, positions to 0
//   kStart     SoundStartBody  → SoundStartReply   start; base computed from origin
//   kStop      SoundStreamBody          stop now (pending writes are dropped)
//   kDrain     SoundStreamBody          play what was written, then stop
//   kSetVolume SoundVolumeBody          DAC gain 0..100
//   kSetMute   SoundMuteBody            0 or 1
//   kStatus    SoundStreamBody → SoundStatus
//
// Thread safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "protocols/pod_codec.h"

namespace umbra::sound {

enum SoundOp : uint16_t { kWrite = 1, kRead = 2 };
enum SoundMethod : uint32_t {
  kOpen = 1,
  kClose = 2,
  kHwParams = 3,
  kPrepare = 4,
  kStart = 5,
  kStop = 6,
  kDrain = 7,
  kSetVolume = 8,
  kSetMute = 9,
  kStatus = 10,
};

// SoundStartBody::origin on a stream's first start.
inline constexpr uint64_t kNoOrigin = ~uint64_t{0};

struct SoundStreamBody {
  uint32_t stream = 0;  // hw::sound::SoundStream
};
struct SoundHwParamsBody {
  uint32_t stream = 0;
  uint32_t rate = 0;
  uint32_t channels = 0;
  uint32_t format = 0;  // hw::sound::SoundFormat
  uint32_t period_frames = 0;
  uint32_t periods = 0;
};
struct SoundStartBody {
  uint32_t stream = 0;
  uint32_t reserved = 0;
  uint64_t origin = kNoOrigin;  // clock frame of application position 0
  uint64_t position = 0;        // kNoOrigin: the application position that
                                // starts now (origin = start_frame - position)
};
struct SoundStartReply {
  uint64_t start_frame = 0;  // clock frame of stream position 0
  uint64_t origin = 0;       // as given, or start_frame - position
  uint64_t base = 0;         // application position at stream position 0 (start_frame - origin)
};
// Positions are compared modulo 2^64 (origin may be "before" clock frame 0):
// stream position = int64_t(a - base).
struct SoundVolumeBody {
  uint32_t volume = 0;
};
struct SoundMuteBody {
  uint32_t mute = 0;
};

// What the driver reports about one stream.
struct SoundStatus {
  uint32_t open = 0;
  uint32_t state = 0;  // hw::sound::SoundStreamState
  uint32_t prepared = 0;
  uint32_t volume = 0;
  uint32_t mute = 0;
  uint32_t reserved = 0;
  uint64_t hw_ptr = 0;
  uint64_t appl_ptr = 0;
  uint64_t base = 0;
  uint64_t xruns = 0;        // the card's, cleared by a reset
  uint64_t late_frames = 0;  // this instance: written frames the DAC had passed
  uint64_t pending = 0;      // requests waiting for ring space or capture
};

// Bodies are the bytes of one of the structs above (protocols/pod_codec.h).
using ::umbra::ipc::Decode;
using ::umbra::ipc::Encode;

}  // namespace umbra::sound
