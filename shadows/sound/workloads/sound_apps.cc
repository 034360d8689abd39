#include "shadows/sound/workloads/sound_apps.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "runtime/hw/sound/wav_compare.h"

namespace umbra::sound::workloads {

using hw::sound::AudioFormat;
using hw::sound::WavFile;

namespace {

constexpr uint32_t kMp3FrameSamples = 1152;  // one decoded MPEG-1 layer III frame

AppStats Finish(Pcm& pcm, Direction d, AppStats s) {
  const PcmStatus st = pcm.Status(d);
  s.frames = st.position;
  s.dropped_frames = st.dropped_frames;
  s.silent_frames = st.silent_frames;
  return s;
}

Result<void> WriteAll(Pcm& pcm, std::span<const std::byte> data, size_t step_bytes) {
  for (size_t off = 0; off < data.size(); off += step_bytes) {
    UMBRA_TRY(pcm.Write(data.subspan(off, std::min(step_bytes, data.size() - off))));
  }
  return {};
}

bool Executable(const std::string& name) {
  const std::string cmd = "command -v " + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

}  // namespace

Result<AppStats> PlayTrack(Pcm& pcm, const WavFile& track, PcmParams params) {
  params.rate = track.format.rate;
  params.channels = track.format.channels;
  params.format = track.format.format;
  UMBRA_TRY(pcm.OpenPlayback(params));
  UMBRA_TRY(WriteAll(pcm, track.data, size_t{kMp3FrameSamples} * track.format.frame_bytes()));
  UMBRA_TRY(pcm.Drain());
  AppStats s = Finish(pcm, Direction::kPlayback, {});
  UMBRA_TRY(pcm.Close(Direction::kPlayback));
  return s;
}

Result<AppStats> RecordAudio(Pcm& pcm, uint64_t frames, PcmParams params, WavFile* out) {
  UMBRA_TRY(pcm.OpenCapture(params));
  WavFile wav{AudioFormat{params.rate, params.channels, params.format}, {}};
  wav.data.resize(frames * params.frame_bytes());
  const size_t step = size_t{params.period_frames} * params.frame_bytes();
  for (size_t off = 0; off < wav.data.size(); off += step) {
    UMBRA_TRY(pcm.Read(std::span<std::byte>(wav.data).subspan(off, std::min(step, wav.data.size() - off))));
  }
  AppStats s = Finish(pcm, Direction::kCapture, {});
  UMBRA_TRY(pcm.Close(Direction::kCapture));
  if (out != nullptr) *out = std::move(wav);
  return s;
}

Result<WavFile> SynthesizeSpeech(std::string_view text, const std::string& espeak_binary) {
  const std::string bin = espeak_binary.empty() ? "espeak-ng" : espeak_binary;
  if (!Executable(bin)) return Fail(Errc::kNotFound, bin + " is not installed");
  const std::string cmd = bin + " --stdout " + ShellQuote(text) + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return FailErrno("popen " + bin);
  std::vector<std::byte> bytes;
  std::byte buf[16384];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) bytes.insert(bytes.end(), buf, buf + n);
  const int status = ::pclose(p);
  if (status != 0) return Fail(Errc::kIo, bin + " failed (status " + std::to_string(status) + ")");
  // espeak-ng writes a streaming header (sizes unknown): patch them.
  if (bytes.size() > 44) {
    const uint32_t riff = static_cast<uint32_t>(bytes.size() - 8);
    const uint32_t data = static_cast<uint32_t>(bytes.size() - 44);
    std::memcpy(bytes.data() + 4, &riff, 4);
    std::memcpy(bytes.data() + 40, &data, 4);
  }
  return hw::sound::ParseWav(bytes, bin + " output");
}

Result<AppStats> Speak(Pcm& pcm, std::string_view text, std::string espeak_binary) {
  AppStats s;
  auto speech = SynthesizeSpeech(text, espeak_binary);
  WavFile wav;
  if (speech) {
    wav = std::move(*speech);
  } else {
    s.note = "generated signal instead of speech: " + speech.error().ToString();
    wav = hw::sound::GenerateTestSignal({22050, 1, hw::sound::SoundFormat::kS16Le}, 22050 * 2);
  }
  PcmParams params{.rate = wav.format.rate,
                   .channels = wav.format.channels,
                   .format = wav.format.format,
                   .period_frames = wav.format.rate / 200,
                   .periods = 4};
  UMBRA_TRY(pcm.OpenPlayback(params));
  // Streamed in as a synthesizer produces it: one utterance chunk at a time.
  UMBRA_TRY(WriteAll(pcm, wav.data, size_t{params.period_frames} * 2 * wav.format.frame_bytes()));
  UMBRA_TRY(pcm.Drain());
  s = Finish(pcm, Direction::kPlayback, std::move(s));
  UMBRA_TRY(pcm.Close(Direction::kPlayback));
  return s;
}

Result<AppStats> PlayGame(Pcm& pcm, uint32_t ticks, uint32_t seed, PcmParams params) {
  UMBRA_TRY(pcm.OpenPlayback(params));
  const uint32_t fb = params.frame_bytes();
  const uint32_t tick_frames = params.rate / 100;  // a 10 ms game loop
  const WavFile effect =
      hw::sound::GenerateTestSignal({params.rate, params.channels, params.format}, params.rate / 20);  // 50 ms
  std::vector<std::byte> tick(size_t{tick_frames} * fb);
  std::mt19937 rng(seed);
  uint64_t effect_pos = effect.frames();  // not playing
  AppStats s;
  for (uint32_t t = 0; t < ticks; ++t) {
    if (effect_pos >= effect.frames() && std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
      effect_pos = 0;  // an event: a shot, a jump
      ++s.events;
    }
    std::fill(tick.begin(), tick.end(), std::byte{0});
    if (effect_pos < effect.frames()) {
      const uint64_t n = std::min<uint64_t>(tick_frames, effect.frames() - effect_pos);
      std::memcpy(tick.data(), effect.data.data() + effect_pos * fb, n * fb);
      effect_pos += n;
    }
    UMBRA_TRY(pcm.Write(tick));
  }
  UMBRA_TRY(pcm.Drain());
  s = Finish(pcm, Direction::kPlayback, std::move(s));
  UMBRA_TRY(pcm.Close(Direction::kPlayback));
  return s;
}

}  // namespace umbra::sound::workloads
