#include "runtime/hw/sound/wav_speaker.h"

#include <fmt/format.h>
#include <fstream>

namespace umbra::hw::sound {

const char* SilenceReasonName(SilenceReason reason) {
  switch (reason) {
    case SilenceReason::kUnderrun: return "underrun";
    case SilenceReason::kStopped: return "stopped";
    case SilenceReason::kFormatMismatch: return "format-mismatch";
  }
  return "unknown";
}

Result<std::unique_ptr<WavSpeaker>> WavSpeaker::Create(WavSpeakerOptions options) {
  if (options.path.empty()) return Fail(Errc::kInvalidArgument, "speaker: empty path");
  // Fail early on an unwritable path; the file is rewritten at the first Begin().
  std::ofstream probe(options.path, std::ios::binary | std::ios::trunc);
  if (!probe) return Fail(Errc::kIo, fmt::format("speaker: cannot create {}", options.path));
  return std::unique_ptr<WavSpeaker>(new WavSpeaker(std::move(options)));
}

void WavSpeaker::Begin(const AudioFormat& format, uint64_t position) {
  if (!writer_) {
    auto writer = WavWriter::Create(options_.path, format);
    if (!writer) return Check(std::unexpected(writer.error()));
    writer_ = std::move(*writer);
    position = 0;  // the file starts with the first stream
  }
  format_mismatch_ = !(format == writer_->format());
  stream_frame_bytes_ = format.frame_bytes();
  uint64_t now = frames();
  if (position > now) AddSilence(position - now, SilenceReason::kStopped);
}

void WavSpeaker::Play(std::span<const std::byte> frames) {
  if (!writer_) return;
  uint64_t n = frames.size() / stream_frame_bytes_;
  if (format_mismatch_) return AddSilence(n, SilenceReason::kFormatMismatch);
  Check(writer_->Write(frames));
  frames_.fetch_add(n, std::memory_order_relaxed);
}

void WavSpeaker::Underrun(uint64_t frames) {
  if (!writer_ || frames == 0) return;
  AddSilence(frames, format_mismatch_ ? SilenceReason::kFormatMismatch : SilenceReason::kUnderrun);
}

void WavSpeaker::AddSilence(uint64_t frames, SilenceReason reason) {
  uint64_t first = this->frames();
  Check(writer_->WriteSilence(frames));
  frames_.fetch_add(frames, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (!silences_.empty() && silences_.back().end_frame == first && silences_.back().reason == reason) {
    silences_.back().end_frame = first + frames;
    return;
  }
  silences_.push_back({first, first + frames, reason});
}

void WavSpeaker::Flush() {
  if (writer_) Check(writer_->Flush());
  if (options_.silence_log_path.empty()) return;
  std::ofstream log(options_.silence_log_path, std::ios::trunc);
  for (const SilenceRange& r : silences())
    log << r.first_frame << ' ' << r.end_frame << ' ' << SilenceReasonName(r.reason) << '\n';
  if (!log) Check(Fail(Errc::kIo, fmt::format("speaker: cannot write {}", options_.silence_log_path)));
}

void WavSpeaker::Check(Result<void> r) {
  if (r) return;
  std::lock_guard lock(mu_);
  if (!error_) error_ = r.error();
}

std::vector<SilenceRange> WavSpeaker::silences() const {
  std::lock_guard lock(mu_);
  return silences_;
}

std::optional<Error> WavSpeaker::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

}  // namespace umbra::hw::sound
