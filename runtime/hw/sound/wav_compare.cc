#include "runtime/hw/sound/wav_compare.h"

#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <numbers>
#include <optional>
#include <unordered_map>

namespace umbra::hw::sound {
namespace {

uint64_t HashBytes(const std::byte* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= std::to_integer<uint64_t>(p[i]);
    h *= 1099511628211ull;
  }
  return h;
}

double FramesToMs(uint64_t frames, uint32_t rate) { return static_cast<double>(frames) * 1000.0 / rate; }

// Finds where a window of output frames occurs in the reference. Only windows
// starting at multiples of the window length are indexed (memory: one entry
// per window, not per frame); a lookup tries every alignment instead.
class ReferenceIndex {
 public:
  ReferenceIndex(const WavFile& reference, uint64_t window) : ref_(reference), window_(window) {}

  // Reference position of the `window` frames starting at `p`, when that
  // position is a multiple of the window, or nullopt.
  std::optional<uint64_t> FindAligned(const std::byte* p) {
    Build();
    size_t bytes = window_ * ref_.format.frame_bytes();
    auto it = index_.find(HashBytes(p, bytes));
    if (it == index_.end()) return std::nullopt;
    if (std::memcmp(ref_.data.data() + it->second * ref_.format.frame_bytes(), p, bytes) != 0) return std::nullopt;
    return it->second;
  }

 private:
  void Build() {
    if (built_) return;
    built_ = true;
    uint32_t fb = ref_.format.frame_bytes();
    index_.reserve(ref_.frames() / window_ + 1);
    for (uint64_t j = 0; j + window_ <= ref_.frames(); j += window_)
      index_.try_emplace(HashBytes(ref_.data.data() + j * fb, window_ * fb), j);
  }

  const WavFile& ref_;
  uint64_t window_;
  bool built_ = false;
  std::unordered_map<uint64_t, uint64_t> index_;  // window hash -> first position
};

class Comparator {
 public:
  Comparator(const WavFile& ref, const WavFile& out, CompareOptions options)
      : ref_(ref), out_(out), fb_(ref.format.frame_bytes()),
        window_(std::max<uint64_t>(1, std::min<uint64_t>(options.window_frames, ref.frames()))), index_(ref, window_) {}

  CompareReport Run() {
    uint64_t n = std::min(ref_.frames(), out_.frames());
    report_.compared_frames = n;
    for (uint64_t i = 0; i < n; ++i) Step(i);
    if (gap_start_) CloseGap(n);
    CloseRun();
    for (uint64_t i = n; i < out_.frames(); ++i) {
      if (IsSilentFrame(out_.frame(i))) {
        CloseRun();
        continue;
      }
      Extend(MismatchKind::kExtra, 0, i);
    }
    CloseRun();
    if (ref_.frames() > out_.frames()) report_.missing_tail = ref_.frames() - out_.frames();
    return std::move(report_);
  }

 private:
  bool Equal(uint64_t i) const { return std::memcmp(ref_.data.data() + i * fb_, out_.data.data() + i * fb_, fb_) == 0; }

  void Step(uint64_t i) {
    bool out_silent = IsSilentFrame(out_.frame(i));
    if (Equal(i)) {
      // A silent reference frame inside a gap does not restore anything.
      if (gap_start_ && out_silent) return;
      CloseRun();
      if (gap_start_) CloseGap(i);
      return;
    }
    if (out_silent) {
      CloseRun();
      if (!gap_start_) gap_start_ = i;
      return;
    }
    if (gap_start_) CloseGap(i);
    Classify(i);
  }

  void Classify(uint64_t i) {
    std::optional<uint64_t> j = Locate(i);
    if (!j) return Extend(MismatchKind::kCorrupted, 0, i);
    int64_t offset = static_cast<int64_t>(*j) - static_cast<int64_t>(i);
    bool played_before = offset < 0 && *j < out_.frames() && Equal(*j);
    Extend(played_before ? MismatchKind::kRepeated : MismatchKind::kShifted, offset, i);
  }

  // Where output frame i's content sits in the reference. Inside a run the
  // previous frame's offset is tried first; otherwise a window of output
  // frames that contains i is looked up at every alignment.
  std::optional<uint64_t> Locate(uint64_t i) {
    if (run_ && run_->end_frame == i && run_->kind != MismatchKind::kCorrupted) {
      int64_t j = static_cast<int64_t>(i) + run_->offset;
      if (j >= 0 && static_cast<uint64_t>(j) < ref_.frames() &&
          std::memcmp(ref_.data.data() + j * fb_, out_.data.data() + i * fb_, fb_) == 0)
        return static_cast<uint64_t>(j);
    }
    if (window_ > out_.frames()) return std::nullopt;
    uint64_t last_start = out_.frames() - window_;
    uint64_t first = i >= window_ - 1 ? i - (window_ - 1) : 0;
    for (uint64_t start = first; start <= i && start <= last_start; ++start) {
      if (auto found = index_.FindAligned(out_.data.data() + start * fb_)) return *found + (i - start);
    }
    // Near a run's start, windows that begin after i; they do not contain
    // frame i, so the frame itself must match too.
    for (uint64_t start = i + 1; start < i + window_ && start <= last_start; ++start) {
      auto found = index_.FindAligned(out_.data.data() + start * fb_);
      if (!found || *found < start - i) continue;
      uint64_t j = *found - (start - i);
      if (std::memcmp(ref_.data.data() + j * fb_, out_.data.data() + i * fb_, fb_) == 0) return j;
    }
    return std::nullopt;
  }

  void Extend(MismatchKind kind, int64_t offset, uint64_t i) {
    if (run_ && run_->kind == kind && run_->offset == offset && run_->end_frame == i) {
      run_->end_frame = i + 1;
      return;
    }
    CloseRun();
    run_ = AudioMismatch{kind, i, i + 1, offset};
  }

  void CloseRun() {
    if (run_) report_.mismatches.push_back(*run_);
    run_.reset();
  }

  void CloseGap(uint64_t end) {
    uint32_t rate = ref_.format.rate;
    AudioGap gap{*gap_start_, end, FramesToMs(*gap_start_, rate), FramesToMs(end - *gap_start_, rate)};
    report_.gaps.push_back(gap);
    gap_start_.reset();
  }

  const WavFile& ref_;
  const WavFile& out_;
  uint32_t fb_;
  uint64_t window_;
  ReferenceIndex index_;
  CompareReport report_;
  std::optional<uint64_t> gap_start_;
  std::optional<AudioMismatch> run_;
};

}  // namespace

const char* MismatchKindName(MismatchKind kind) {
  switch (kind) {
    case MismatchKind::kShifted: return "shifted";
    case MismatchKind::kRepeated: return "repeated";
    case MismatchKind::kCorrupted: return "corrupted";
    case MismatchKind::kExtra: return "extra";
  }
  return "unknown";
}

bool IsSilentFrame(std::span<const std::byte> frame) {
  for (std::byte b : frame)
    if (b != std::byte{0}) return false;
  return true;
}

uint64_t CompareReport::gap_frames() const {
  uint64_t total = 0;
  for (const AudioGap& g : gaps) total += g.frames();
  return total;
}

std::string CompareReport::ToString() const {
  std::string s = fmt::format("compared {} frames, {} gap(s) totalling {} frames, {} mismatch run(s)", compared_frames,
                              gaps.size(), gap_frames(), mismatches.size());
  if (missing_tail) s += fmt::format(", output {} frames short", missing_tail);
  s += "\n";
  for (const AudioGap& g : gaps)
    s += fmt::format("  gap      frames [{}, {})  at {:.3f} ms for {:.3f} ms\n", g.first_frame, g.end_frame, g.first_ms,
                     g.duration_ms);
  for (const AudioMismatch& m : mismatches)
    s += fmt::format("  {:9} frames [{}, {})  offset {}\n", MismatchKindName(m.kind), m.first_frame, m.end_frame,
                     m.offset);
  return s;
}

Result<CompareReport> CompareAudio(const WavFile& reference, const WavFile& output, CompareOptions options) {
  if (!(reference.format == output.format))
    return Fail(Errc::kInvalidArgument,
                fmt::format("cannot compare {} with {}", reference.format.ToString(), output.format.ToString()));
  if (reference.format.frame_bytes() == 0) return Fail(Errc::kInvalidArgument, "invalid audio format");
  return Comparator(reference, output, options).Run();
}

WavFile GenerateTestSignal(const AudioFormat& format, uint64_t frames) {
  WavFile wav;
  wav.format = format;
  wav.data.resize(frames * format.frame_bytes());
  constexpr double kTau = 2 * std::numbers::pi;
  const double f1 = 441.7 / format.rate, f2 = 1013.3 / format.rate, f3 = 2977.1 / format.rate;
  std::byte* p = wav.data.data();
  for (uint64_t i = 0; i < frames; ++i) {
    for (uint32_t c = 0; c < format.channels; ++c) {
      double n = static_cast<double>(i);
      double tone = (std::sin(kTau * f1 * n + c) + 0.6 * std::sin(kTau * f2 * n + 2.0 * c) +
                     0.3 * std::sin(kTau * f3 * n + 3.0 * c)) /
                    1.9 * 0.5;
      // The frame index, in the low bits: channel c carries the next 7 (15)
      // bits of it, so a stereo frame alone names its position modulo 2^14.
      uint64_t tag16 = c < 4 ? i >> (7 * c) : i + 29u * c;
      uint64_t tag32 = c < 4 ? i >> (15 * c) : i + 29u * c;
      uint64_t tag = i + 29u * c;
      switch (format.format) {
        case SoundFormat::kS16Le: {
          int32_t hi = static_cast<int32_t>(std::lround(tone * 127));
          uint16_t v = static_cast<uint16_t>((hi << 8) | 0x80 | (tag16 & 0x7F));
          std::memcpy(p, &v, 2);
          p += 2;
          break;
        }
        case SoundFormat::kS32Le: {
          int32_t hi = static_cast<int32_t>(std::lround(tone * 32767));
          uint32_t v = (static_cast<uint32_t>(hi) << 16) | 0x8000 | (tag32 & 0x7FFF);
          std::memcpy(p, &v, 4);
          p += 4;
          break;
        }
        case SoundFormat::kFloatLe: {
          float v =
              static_cast<float>(std::round(tone * 4096) / 4096 + static_cast<double>(tag % 1024 + 1) / (1 << 22));
          std::memcpy(p, &v, 4);
          p += 4;
          break;
        }
      }
    }
  }
  return wav;
}

}  // namespace umbra::hw::sound
