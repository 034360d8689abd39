// WAV (RIFF/WAVE PCM) reading and writing, and the audio format type the
// sound card, its backends and the comparison tools share.
//
//   auto wav = UMBRA_TRY(ReadWav("in.wav"));          // whole file in memory
//   auto out = UMBRA_TRY(WavWriter::Create("out.wav", wav.format));
//   UMBRA_TRY(out->Write(wav.data));
//   UMBRA_TRY(out->WriteSilence(480));
//   UMBRA_TRY(out->Finish());                          // patches the RIFF sizes
//
// Supported: format tag 1 (PCM, 16 or 32 bits), 3 (IEEE float, 32 bits) and
// 0xFFFE (WAVE_FORMAT_EXTENSIBLE with a PCM or float sub-format), 1..8
// channels, any rate. A malformed file is refused with kParse and a message
// naming the file and what is wrong ("fmt chunk is 12 bytes, need 16").
//
// Thread safety: functions are reentrant; a WavWriter is used by one thread
// at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/hw/sound/sound_regs.h"

namespace umbra::hw::sound {

struct AudioFormat {
  uint32_t rate = 48000;
  uint32_t channels = 2;
  SoundFormat format = SoundFormat::kS16Le;

  uint32_t sample_bytes() const { return SoundSampleBytes(static_cast<uint32_t>(format)); }
  uint32_t frame_bytes() const { return sample_bytes() * channels; }
  // "48000 Hz, 2 ch, s16le"
  std::string ToString() const;
  bool operator==(const AudioFormat&) const = default;
};

const char* SoundFormatName(SoundFormat format);

// A whole WAV file in memory: interleaved little-endian frames.
struct WavFile {
  AudioFormat format;
  std::vector<std::byte> data;

  uint64_t frames() const { return format.frame_bytes() ? data.size() / format.frame_bytes() : 0; }
  std::span<const std::byte> frame(uint64_t i) const {
    return std::span<const std::byte>(data).subspan(i * format.frame_bytes(), format.frame_bytes());
  }
};

// Parses a RIFF/WAVE image; `name` is used in error messages.
Result<WavFile> ParseWav(std::span<const std::byte> bytes, const std::string& name);
Result<WavFile> ReadWav(const std::string& path);
Result<void> WriteWav(const std::string& path, const WavFile& wav);

// Streams frames into a WAV file. The header is rewritten by Flush() and
// Finish(), so the file on disk is a valid WAV after each of them.
class WavWriter {
 public:
  static Result<std::unique_ptr<WavWriter>> Create(const std::string& path, AudioFormat format);
  ~WavWriter();
  WavWriter(const WavWriter&) = delete;
  WavWriter& operator=(const WavWriter&) = delete;

  // `frames` must hold whole frames of format().
  Result<void> Write(std::span<const std::byte> frames);
  Result<void> WriteSilence(uint64_t frames);
  // Writes buffered frames and patches the header sizes.
  Result<void> Flush();
  // Flush() and close; later writes fail.
  Result<void> Finish();

  const AudioFormat& format() const { return format_; }
  uint64_t frames_written() const { return frames_written_; }
  const std::string& path() const { return path_; }

 private:
  WavWriter(std::string path, std::FILE* file, AudioFormat format)
      : path_(std::move(path)), file_(file), format_(format) {}
  Result<void> WriteHeader();

  std::string path_;
  std::FILE* file_;  // owned; closed by Finish() or the destructor
  AudioFormat format_;
  uint64_t frames_written_ = 0;
};

}  // namespace umbra::hw::sound
