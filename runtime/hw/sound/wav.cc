#include "runtime/hw/sound/wav.h"

#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <optional>

namespace umbra::hw::sound {
namespace {

constexpr uint16_t kTagPcm = 1;
constexpr uint16_t kTagFloat = 3;
constexpr uint16_t kTagExtensible = 0xFFFE;
constexpr size_t kHeaderBytes = 44;

uint16_t Le16(const std::byte* p) {
  return static_cast<uint16_t>(std::to_integer<uint16_t>(p[0]) | std::to_integer<uint16_t>(p[1]) << 8);
}
uint32_t Le32(const std::byte* p) { return Le16(p) | uint32_t{Le16(p + 2)} << 16; }

void Put16(std::byte* p, uint16_t v) {
  p[0] = std::byte(v & 0xFF);
  p[1] = std::byte(v >> 8);
}
void Put32(std::byte* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v));
  Put16(p + 2, static_cast<uint16_t>(v >> 16));
}

bool IsTag(const std::byte* p, const char* tag) { return std::memcmp(p, tag, 4) == 0; }

std::unexpected<Error> Malformed(const std::string& name, std::string what) {
  return Fail(Errc::kParse, fmt::format("wav {}: {}", name, what));
}

// Maps (tag, bits) to a SoundFormat.
Result<SoundFormat> FormatOf(uint16_t tag, uint16_t bits, const std::string& name) {
  if (tag == kTagPcm && bits == 16) return SoundFormat::kS16Le;
  if (tag == kTagPcm && bits == 32) return SoundFormat::kS32Le;
  if (tag == kTagFloat && bits == 32) return SoundFormat::kFloatLe;
  if (tag != kTagPcm && tag != kTagFloat)
    return Malformed(name, fmt::format("unsupported format tag 0x{:04x} (need PCM 1, float 3 or "
                                       "extensible 0xfffe)",
                                       tag));
  return Malformed(name, fmt::format("unsupported {} bits per sample for format tag {}", bits, tag));
}

struct FmtChunk {
  AudioFormat format;
  uint16_t block_align = 0;
};

Result<FmtChunk> ParseFmt(const std::byte* p, uint32_t size, const std::string& name) {
  if (size < 16) return Malformed(name, fmt::format("fmt chunk is {} bytes, need 16", size));
  uint16_t tag = Le16(p);
  uint16_t channels = Le16(p + 2);
  uint32_t rate = Le32(p + 4);
  uint16_t block_align = Le16(p + 12);
  uint16_t bits = Le16(p + 14);
  if (tag == kTagExtensible) {
    if (size < 40) return Malformed(name, fmt::format("extensible fmt chunk is {} bytes, need 40", size));
    tag = Le16(p + 24);  // the first two bytes of the sub-format GUID
  }
  FmtChunk chunk;
  chunk.format.format = UMBRA_TRY(FormatOf(tag, bits, name));
  if (channels < 1 || channels > kSoundMaxChannels)
    return Malformed(name, fmt::format("{} channels, need 1..{}", channels, kSoundMaxChannels));
  if (rate == 0) return Malformed(name, "sample rate is 0");
  chunk.format.channels = channels;
  chunk.format.rate = rate;
  chunk.block_align = block_align;
  if (block_align != chunk.format.frame_bytes())
    return Malformed(name, fmt::format("block align {} does not match {} channels x {} bytes", block_align, channels,
                                       chunk.format.sample_bytes()));
  return chunk;
}

}  // namespace

const char* SoundFormatName(SoundFormat format) {
  switch (format) {
    case SoundFormat::kS16Le: return "s16le";
    case SoundFormat::kS32Le: return "s32le";
    case SoundFormat::kFloatLe: return "float32le";
  }
  return "unknown";
}

std::string AudioFormat::ToString() const {
  return fmt::format("{} Hz, {} ch, {}", rate, channels, SoundFormatName(format));
}

Result<WavFile> ParseWav(std::span<const std::byte> bytes, const std::string& name) {
  if (bytes.size() < 12) return Malformed(name, fmt::format("{} bytes, too short for a RIFF header", bytes.size()));
  const std::byte* p = bytes.data();
  if (!IsTag(p, "RIFF")) return Malformed(name, "missing RIFF tag at offset 0");
  if (!IsTag(p + 8, "WAVE")) return Malformed(name, "RIFF form type is not WAVE");
  size_t pos = 12;
  std::optional<FmtChunk> header;
  while (pos + 8 <= bytes.size()) {
    const std::byte* chunk = p + pos;
    uint32_t size = Le32(chunk + 4);
    size_t body = pos + 8;
    if (IsTag(chunk, "fmt ")) {
      if (size > bytes.size() - body)
        return Malformed(name, fmt::format("fmt chunk of {} bytes runs past the end of the file", size));
      header = UMBRA_TRY(ParseFmt(chunk + 8, size, name));
    } else if (IsTag(chunk, "data")) {
      if (!header) return Malformed(name, "data chunk before fmt chunk");
      if (size > bytes.size() - body)
        return Malformed(name,
                         fmt::format("data chunk declares {} bytes, only {} in the file", size, bytes.size() - body));
      if (size % header->block_align != 0)
        return Malformed(name, fmt::format("data chunk of {} bytes is not a whole number of {}-byte frames", size,
                                           header->block_align));
      WavFile wav;
      wav.format = header->format;
      wav.data.assign(chunk + 8, chunk + 8 + size);
      return wav;
    }
    if (size > bytes.size() - body) break;
    pos = body + size + (size & 1);  // chunks are padded to even sizes
  }
  if (!header) return Malformed(name, "no fmt chunk");
  return Malformed(name, "no data chunk");
}

Result<WavFile> ReadWav(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Errc::kNotFound, fmt::format("wav {}: cannot open", path));
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseWav(std::as_bytes(std::span<const char>(raw)), path);
}

Result<void> WriteWav(const std::string& path, const WavFile& wav) {
  auto writer = UMBRA_TRY(WavWriter::Create(path, wav.format));
  UMBRA_TRY(writer->Write(wav.data));
  return writer->Finish();
}

Result<std::unique_ptr<WavWriter>> WavWriter::Create(const std::string& path, AudioFormat format) {
  if (format.frame_bytes() == 0 || format.channels > kSoundMaxChannels)
    return Fail(Errc::kInvalidArgument, fmt::format("wav {}: invalid format {}", path, format.ToString()));
  std::FILE* file = std::fopen(path.c_str(), "w+b");
  if (!file) return FailErrno(fmt::format("wav {}: create", path));
  std::unique_ptr<WavWriter> writer(new WavWriter(path, file, format));
  std::setvbuf(file, nullptr, _IOFBF, 1 << 16);
  UMBRA_TRY(writer->WriteHeader());
  return writer;
}

WavWriter::~WavWriter() {
  if (file_) (void)Finish();
}

Result<void> WavWriter::WriteHeader() {
  std::byte h[kHeaderBytes];
  uint64_t data_bytes = frames_written_ * format_.frame_bytes();
  // A RIFF size field is 32 bits: a longer stream keeps the largest value.
  uint32_t data32 = data_bytes > 0xFFFFFFFFull - 36 ? 0xFFFFFFFFu - 36 : static_cast<uint32_t>(data_bytes);
  std::memcpy(h, "RIFF", 4);
  Put32(h + 4, 36 + data32);
  std::memcpy(h + 8, "WAVEfmt ", 8);
  Put32(h + 16, 16);
  Put16(h + 20, format_.format == SoundFormat::kFloatLe ? kTagFloat : kTagPcm);
  Put16(h + 22, static_cast<uint16_t>(format_.channels));
  Put32(h + 24, format_.rate);
  Put32(h + 28, format_.rate * format_.frame_bytes());
  Put16(h + 32, static_cast<uint16_t>(format_.frame_bytes()));
  Put16(h + 34, static_cast<uint16_t>(format_.sample_bytes() * 8));
  std::memcpy(h + 36, "data", 4);
  Put32(h + 40, data32);
  if (std::fseek(file_, 0, SEEK_SET) != 0) return FailErrno(fmt::format("wav {}: seek", path_));
  if (std::fwrite(h, 1, sizeof h, file_) != sizeof h) return FailErrno(fmt::format("wav {}: write header", path_));
  if (std::fseek(file_, 0, SEEK_END) != 0) return FailErrno(fmt::format("wav {}: seek", path_));
  return {};
}

Result<void> WavWriter::Write(std::span<const std::byte> frames) {
  if (!file_) return Fail(Errc::kInvalidArgument, fmt::format("wav {}: already finished", path_));
  if (frames.size() % format_.frame_bytes() != 0)
    return Fail(Errc::kInvalidArgument, fmt::format("wav {}: {} bytes is not whole frames", path_, frames.size()));
  if (std::fwrite(frames.data(), 1, frames.size(), file_) != frames.size())
    return FailErrno(fmt::format("wav {}: write", path_));
  frames_written_ += frames.size() / format_.frame_bytes();
  return {};
}

Result<void> WavWriter::WriteSilence(uint64_t frames) {
  static constexpr std::byte kZeros[4096] = {};
  uint64_t bytes = frames * format_.frame_bytes();
  while (bytes > 0) {
    size_t n = bytes < sizeof kZeros ? bytes : sizeof kZeros;
    if (!file_) return Fail(Errc::kInvalidArgument, fmt::format("wav {}: already finished", path_));
    if (std::fwrite(kZeros, 1, n, file_) != n) return FailErrno(fmt::format("wav {}: write", path_));
    bytes -= n;
  }
  frames_written_ += frames;
  return {};
}

Result<void> WavWriter::Flush() {
  if (!file_) return {};
  UMBRA_TRY(WriteHeader());
  if (std::fflush(file_) != 0) return FailErrno(fmt::format("wav {}: flush", path_));
  return {};
}

Result<void> WavWriter::Finish() {
  if (!file_) return {};
  auto flushed = Flush();
  std::fclose(file_);
  file_ = nullptr;
  return flushed;
}

}  // namespace umbra::hw::sound
