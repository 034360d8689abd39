#include "shadows/sound/workloads/audio_playback.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>

#include "runtime/hw/sound/wav.h"
#include "runtime/hw/sound/wav_compare.h"
#include "runtime/hw/sound/wav_speaker.h"
#include "shadows/sound/workloads/sound_apps.h"

namespace umbra::faultinject::campaign {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr double kClockSpeed = 16.0;      // virtual seconds of audio per real second
constexpr uint64_t kDecodedFrame = 1152;  // frames per player write (an MP3 frame)
constexpr hw::sound::AudioFormat kFormat{48000, 2, hw::sound::SoundFormat::kS16Le};
constexpr sound::PcmParams kParams{.period_frames = 480, .periods = 8};
constexpr uint32_t kQueuePeriods = 2;           // SoundShadowOptions::queue_periods
constexpr int64_t kDetectSlackNs = 30'000'000;  // hang to detection: three campaign heartbeats

// Frames the card's clock plays while the driver is down: from detection
// (for a hang: from the heartbeats the watchdog waited for) to passive again.
uint64_t DownFrames(const std::vector<shadows::RecoveryRecord>& recoveries) {
  int64_t down_ns = 0;
  for (const auto& r : recoveries) {
    if (r.passive_ns <= r.detected_ns) continue;
    const bool watchdog = r.detection.reason == runtime::DetectReason::kMissedHeartbeat ||
                          r.detection.reason == runtime::DetectReason::kRequestDeadline;
    down_ns += r.passive_ns - r.detected_ns + (watchdog ? kDetectSlackNs : 0);
  }
  return static_cast<uint64_t>(static_cast<double>(down_ns) * kClockSpeed * kFormat.rate / 1e9);
}

// ": first mismatch: 2 frames shifted by -480 at 9120", or nothing.
std::string FirstMismatch(const hw::sound::CompareReport& cmp) {
  if (cmp.mismatches.empty()) return "";
  const hw::sound::AudioMismatch& m = cmp.mismatches.front();
  return "; first mismatch: " + std::to_string(m.end_frame - m.first_frame) + " frames " +
         hw::sound::MismatchKindName(m.kind) + " by " + std::to_string(m.offset) + " at " +
         std::to_string(m.first_frame);
}

// The player's device: reports each write (one decoded frame) as a unit.
class ProgressPcm final : public sound::Pcm {
 public:
  ProgressPcm(sound::Pcm& inner, WorkloadContext& ctx) : inner_(inner), ctx_(ctx) {}

  Result<void> OpenPlayback(const sound::PcmParams& p) override { return inner_.OpenPlayback(p); }
  Result<void> OpenCapture(const sound::PcmParams& p) override { return inner_.OpenCapture(p); }
  Result<void> Start(sound::Direction d) override { return inner_.Start(d); }
  Result<size_t> Write(std::span<const std::byte> frames) override {
    auto n = inner_.Write(frames);
    ctx_.Progress(++writes_);
    return n;
  }
  Result<size_t> Read(std::span<std::byte> out) override { return inner_.Read(out); }
  uint64_t Position(sound::Direction d) const override { return inner_.Position(d); }
  Result<void> Drain() override { return inner_.Drain(); }
  Result<void> Stop(sound::Direction d) override { return inner_.Stop(d); }
  Result<void> Close(sound::Direction d) override { return inner_.Close(d); }
  Result<void> SetVolume(uint32_t percent) override { return inner_.SetVolume(percent); }
  uint32_t Volume() const override { return inner_.Volume(); }
  Result<void> SetMute(bool mute) override { return inner_.SetMute(mute); }
  bool Muted() const override { return inner_.Muted(); }
  sound::PcmStatus Status(sound::Direction d) const override { return inner_.Status(d); }
  std::vector<sound::FrameRange> CaptureGaps() const override { return inner_.CaptureGaps(); }

  uint64_t writes() const { return writes_; }

 private:
  sound::Pcm& inner_;     // the shadow; outlives this decorator
  WorkloadContext& ctx_;  // the run's
  uint64_t writes_ = 0;
};

}  // namespace

AudioPlaybackWorkload::~AudioPlaybackWorkload() {
  shadow_.reset();
  if (card_) card_->Stop();
  card_.reset();
  if (!speaker_path_.empty()) std::remove(speaker_path_.c_str());
}

std::vector<SiteUse> AudioPlaybackWorkload::sites(uint64_t units) const {
  // Per decoded frame: a write request (split in periods by the shadow) and
  // about 2.4 periods played, each an interrupt. The calls are the player's
  // open, parameters, prepare, start, drain and close.
  const uint64_t periods = units * kDecodedFrame / kParams.period_frames + 1;
  return {{"sdk.request", periods}, {"sdk.request.exit", periods},  {"sdk.complete", periods},
          {"sdk.call", 5},          {"sdk.call.exit", 5},           {"snd.write", periods},
          {"snd.irq", periods},     {std::string(kHostSite), units}};
}

Result<void> AudioPlaybackWorkload::SetUp(WorkloadContext& ctx) {
  static std::atomic<uint64_t> next{0};
  speaker_path_ = (std::filesystem::temp_directory_path() /
                   ("umbra-campaign-speaker-" + std::to_string(::getpid()) + "-" + std::to_string(next++) + ".wav"))
                      .string();
  hw::sound::SoundCardOptions co;
  co.clock = hw::sound::ClockMode::kRealTime;
  co.speed = kClockSpeed;
  co.speaker = UMBRA_TRY(hw::sound::WavSpeaker::Create({.path = speaker_path_}));
  card_ = UMBRA_TRY(hw::sound::SoundCard::Create(std::move(co)));
  card_->Start();
  runtime::DriverHostOptions o;
  o.device_name = "snd0";
  o.device_class = "sound";
  o.compatible = std::string(hw::sound::SoundCard::kCompatible);
  o.driver_binary = "umbra-driver-sound";
  o.data = {.ring_entries = 256, .buffer_size = 4096, .buffer_count = 64};
  o.hw = card_.get();
  host_ = UMBRA_TRY(ctx.AddDevice(std::move(o)));
  shadow_ = UMBRA_TRY(
      sound::SoundShadow::Create(*host_, {.queue_periods = kQueuePeriods, .clock_speed = kClockSpeed}, ctx.mode()));
  UMBRA_TRY(shadow_->Open(5 * kSec));
  UMBRA_TRY(shadow_->WaitUntilPassive(5 * kSec));
  ctx.Watch(*shadow_);
  return {};
}

WorkResult AudioPlaybackWorkload::Run(WorkloadContext& ctx) {
  WorkResult r;
  const hw::sound::WavFile track = hw::sound::GenerateTestSignal(kFormat, ctx.units() * kDecodedFrame);
  ProgressPcm pcm(*shadow_, ctx);
  auto played = sound::workloads::PlayTrack(pcm, track, kParams);
  r.units_done = std::min(pcm.writes(), ctx.units());
  if (!played) {
    r.errors = 1;
    r.first_error = played.error().ToString();
    // A real player closes the device after an error; so does this one.
    (void)shadow_->Close(sound::Direction::kPlayback);
  }
  (void)shadow_->WaitUntilPassive(5 * kSec);
  card_->FlushBackends();
  // The speaker writes its file when the card first plays: no file content
  // means nothing was played (the whole track fell into a recovery gap).
  std::error_code ec;
  auto out = std::filesystem::file_size(speaker_path_, ec) == 0 && !ec
                 ? Result<hw::sound::WavFile>(hw::sound::WavFile{kFormat, {}})
                 : hw::sound::ReadWav(speaker_path_);
  auto cmp =
      out ? hw::sound::CompareAudio(track, *out) : Result<hw::sound::CompareReport>(std::unexpected(out.error()));
  if (!cmp) {
    r.verification = "speaker output unreadable: " + cmp.error().ToString();
    return r;
  }
  // Frames written while the driver was down are dropped, never played: a
  // gap, or at the end of the track a shorter output. So are the frames the
  // dead driver and the shadow held when it died, and those whose time the
  // card's clock passed while it was down (they arrive late and are skipped).
  // More missing would be a stream that never came back.
  const uint64_t dropped = played ? played->dropped_frames : 0;
  const uint64_t lost_bound =
      dropped + DownFrames(shadow_->recoveries()) + uint64_t{kParams.periods + kQueuePeriods} * kParams.period_frames;
  const bool all_written = played && played->frames == track.frames();
  r.verified = all_written && cmp->clean() && cmp->missing_tail <= lost_bound;
  r.wrong_data = cmp->mismatches.size();
  r.verification = std::to_string(played ? played->frames : 0) + "/" + std::to_string(track.frames()) +
                   " frames written, " + std::to_string(dropped) +
                   " dropped; speaker: " + std::to_string(cmp->gaps.size()) + " gaps (" +
                   std::to_string(cmp->gap_frames()) + " frames), " + std::to_string(cmp->mismatches.size()) +
                   " mismatches, " + std::to_string(cmp->missing_tail) + " missing at the end (at most " +
                   std::to_string(lost_bound) + ")" + FirstMismatch(*cmp);
  return r;
}

std::optional<std::string> AudioPlaybackWorkload::Unseen(FaultType fault, const WorkResult& result) const {
  if (fault == FaultType::kDuplicateId && result.errors == 0) {
    // duplicate_id@sdk.request acknowledges a period before the driver has
    // copied it. Write completions carry no length to check (0 bytes
    // produced) and the sound shadow does not check the position a
    // completion reports, so the first acknowledgement looks right; the
    // buffer is reused for the next period and the driver copies that one.
    return "the driver acknowledged a period before it copied its frames: the sound shadow cannot tell it "
           "from a correct acknowledgement and reused the buffer (frames out of place; no error)";
  }
  return ErrorIsTheDriversAnswer(fault, result);
}

void AudioPlaybackWorkload::TearDown() {
  if (!shadow_) return;
  shadow_->shadows::Shadow::Stop();
  shadow_.reset();  // its destructor gives pool buffers back: before the Supervisor stops
}

}  // namespace umbra::faultinject::campaign
