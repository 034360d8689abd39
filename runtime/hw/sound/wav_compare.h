// Audio comparison and test signals: how gaps in played or captured sound are
// measured.
//
//   WavFile in = GenerateTestSignal({48000, 2, SoundFormat::kS16Le}, 48000 * 5);
//   ... play it through the card, the speaker writes out.wav ...
//   WavFile out = UMBRA_TRY(ReadWav("out.wav"));
//   CompareReport r = UMBRA_TRY(CompareAudio(in, out));
//   for (const AudioGap& g : r.gaps) Print(g.first_frame, g.end_frame, g.duration_ms);
//   if (!r.clean()) Print(r.ToString());   // shifted, repeated or corrupted frames
//
// Frame i of the output is compared with frame i of the reference (the
// speaker writes the stream at the position of the sample clock, so a correct
// device never shifts anything). A gap is a run of silent output frames that
// starts at the first missing frame (output silent, reference not) and ends at
// the first restored frame (output equal to a non-silent reference frame
// again). Any other difference is a mismatch, classified by looking the output
// up in the reference: shifted (it is reference content from another
// position), repeated (that content was already played at its own position),
// or corrupted (found nowhere).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/hw/sound/wav.h"

namespace umbra::hw::sound {

// Frames [first_frame, end_frame) of the output were silent where the
// reference had sound.
struct AudioGap {
  uint64_t first_frame = 0;  // the first missing frame
  uint64_t end_frame = 0;    // the first restored frame (or the end of the output)
  double first_ms = 0;
  double duration_ms = 0;
  uint64_t frames() const { return end_frame - first_frame; }
};

enum class MismatchKind {
  kShifted,    // output[i] is reference content from position i + offset
  kRepeated,   // like kShifted with offset < 0, and that content was already played
  kCorrupted,  // content found nowhere in the reference
  kExtra,      // non-silent output beyond the end of the reference
};

const char* MismatchKindName(MismatchKind kind);

struct AudioMismatch {
  MismatchKind kind = MismatchKind::kCorrupted;
  uint64_t first_frame = 0;  // output frames [first_frame, end_frame)
  uint64_t end_frame = 0;
  int64_t offset = 0;  // kShifted/kRepeated: reference position - output position
};

struct CompareReport {
  uint64_t compared_frames = 0;  // min(reference, output) frames
  uint64_t missing_tail = 0;     // reference frames beyond the end of the output
  std::vector<AudioGap> gaps;
  std::vector<AudioMismatch> mismatches;

  // No mismatches: the output equals the reference everywhere outside the gaps.
  bool clean() const { return mismatches.empty(); }
  uint64_t gap_frames() const;
  // Multi-line, human-readable.
  std::string ToString() const;
};

struct CompareOptions {
  // Frames in a lookup window: a mismatching output frame is classified by
  // finding this many consecutive output frames in the reference. The
  // reference is indexed one window in `window_frames` (memory ~ frames /
  // window), so a displaced run shorter than 2 x window_frames - 1 may be
  // reported as corrupted rather than shifted or repeated.
  uint32_t window_frames = 8;
};

// Fails with kInvalidArgument when the formats differ.
Result<CompareReport> CompareAudio(const WavFile& reference, const WavFile& output, CompareOptions options = {});

// A multi-tone signal (three incommensurate tones, a different mix per
// channel) in which every frame is non-silent and every short window of
// frames is unique: the low bits of each sample carry the frame index, so a
// shifted or repeated frame is told apart from a correct one.
WavFile GenerateTestSignal(const AudioFormat& format, uint64_t frames);

// True when every byte of the frame is zero.
bool IsSilentFrame(std::span<const std::byte> frame);

}  // namespace umbra::hw::sound
