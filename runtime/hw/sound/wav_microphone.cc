#include "runtime/hw/sound/wav_microphone.h"

#include <algorithm>
#include <cstring>

namespace umbra::hw::sound {

Result<std::unique_ptr<WavMicrophone>> WavMicrophone::Create(WavMicrophoneOptions options) {
  WavFile wav = UMBRA_TRY(ReadWav(options.path));
  return FromWav(std::move(wav), options.at_end);
}

std::unique_ptr<WavMicrophone> WavMicrophone::FromWav(WavFile wav, SourceEnd at_end) {
  return std::unique_ptr<WavMicrophone>(new WavMicrophone(std::move(wav), at_end));
}

void WavMicrophone::Begin(const AudioFormat& format, uint64_t position) {
  format_mismatch_ = !(format == wav_.format);
  position_ = position;
}

void WavMicrophone::Read(std::span<std::byte> frames) {
  uint32_t fb = wav_.format.frame_bytes();
  if (format_mismatch_) {
    std::memset(frames.data(), 0, frames.size());
    mismatched_.fetch_add(frames.size() / std::max<uint32_t>(fb, 1), std::memory_order_relaxed);
    return;
  }
  uint64_t total = wav_.frames();
  uint64_t want = frames.size() / fb;
  std::byte* out = frames.data();
  while (want > 0) {
    uint64_t pos = position_;
    if (at_end_ == SourceEnd::kLoop && total > 0) pos %= total;
    if (pos >= total) {
      std::memset(out, 0, want * fb);
      position_ += want;
      return;
    }
    uint64_t n = std::min(want, total - pos);
    std::memcpy(out, wav_.data.data() + pos * fb, n * fb);
    out += n * fb;
    want -= n;
    position_ += n;
  }
}

}  // namespace umbra::hw::sound
