#include "shadows/sound/sound_shadow.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "recorder/recorder.h"
#include "base/clock.h"
#include "runtime/supervisor/cookie.h"
#include "protocols/sound/sound_protocol.h"

namespace umbra::sound {

using hw::sound::SoundStream;
using shadows::RecoveryMode;
using shadows::ShadowState;

namespace {

// A request's cookie (runtime::RequestCookie): its buffer offset, tagged with
// its direction.
constexpr uint32_t kWriteTag = 1;
constexpr uint32_t kReadTag = 2;
constexpr int64_t kWaitSliceNs = 1'000'000;
constexpr int64_t kPaceSliceNs = 1'000'000;

// Replay order: volume, then mute.
enum Rank { kRankVolume = 0, kRankMute = 1 };

uint32_t StreamIndex(Direction d) {
  return static_cast<uint32_t>(d == Direction::kPlayback ? SoundStream::kPlayback : SoundStream::kCapture);
}

bool DriverDown(const Error& e) { return e.code == Errc::kInterrupted || e.code == Errc::kUnavailable; }

}  // namespace

const char* DirectionName(Direction d) {
  switch (d) {
    case Direction::kPlayback: return "playback";
    case Direction::kCapture: return "capture";
  }
  return "?";
}

const char* PcmStateName(PcmState s) {
  switch (s) {
    case PcmState::kClosed: return "closed";
    case PcmState::kPrepared: return "prepared";
    case PcmState::kRunning: return "running";
    case PcmState::kStopped: return "stopped";
  }
  return "?";
}

Result<std::unique_ptr<SoundShadow>> SoundShadow::Create(runtime::Host& host, SoundShadowOptions options,
                                                         RecoveryMode mode) {
  if (options.clock_speed <= 0) return Fail(Errc::kInvalidArgument, "clock speed must be positive");
  Options o{.class_name = "sound", .mode = mode, .call_timeout_ns = options.call_timeout_ns};
  auto shadow = std::unique_ptr<SoundShadow>(new SoundShadow(host, std::move(o), options));
  shadow->streams_[1].dir = Direction::kCapture;
  shadow->completions_.resize(256);
  return shadow;
}

SoundShadow::~SoundShadow() { Shadow::Stop(); }

Result<void> SoundShadow::Open(int64_t timeout_ns) {
  Shadow::Start();
  UMBRA_TRY(WaitUntilPassive(timeout_ns));
  std::lock_guard lock(mu_);
  if (!buffers_ready_) {
    buffers_ready_ = true;
    while (auto off = host().AllocBuffer()) pool_free_.push_back(*off);
  }
  live_ = true;
  return {};
}

// ---------------- streams ----------------

Result<void> SoundShadow::OpenPlayback(const PcmParams& params) { return OpenStream(Direction::kPlayback, params); }
Result<void> SoundShadow::OpenCapture(const PcmParams& params) { return OpenStream(Direction::kCapture, params); }

Result<void> SoundShadow::OpenStream(Direction d, const PcmParams& params) {
  UMBRA_TRY(CheckServing());
  if (!hw::sound::SoundRateSupported(params.rate) || params.frame_bytes() == 0 ||
      params.channels > hw::sound::kSoundMaxChannels || params.period_frames < hw::sound::kSoundMinPeriodFrames ||
      params.period_frames > hw::sound::kSoundMaxPeriodFrames || params.periods < hw::sound::kSoundMinPeriods ||
      params.periods > hw::sound::kSoundMaxPeriods) {
    return Fail(Errc::kInvalidArgument, "unsupported PCM parameters");
  }
  std::lock_guard lock(mu_);
  if (!buffers_ready_) return Fail(Errc::kNoDevice, device_name() + " is not open");
  StreamRecord& s = rec(d);
  if (s.state != PcmState::kClosed) return Fail(Errc::kBusy, std::string(DirectionName(d)) + " stream is open");
  const uint32_t fb = params.frame_bytes();
  const uint32_t chunk = std::min<uint32_t>(params.period_frames, host().buffer_size() / fb);
  if (chunk == 0) return Fail(Errc::kInvalidArgument, "a frame does not fit in a pool buffer");
  const uint64_t ring = uint64_t{params.period_frames} * params.periods;
  const uint64_t lead = ring + uint64_t{sound_options_.queue_periods} * params.period_frames;
  const uint32_t need = d == Direction::kPlayback ? static_cast<uint32_t>((lead + chunk - 1) / chunk) + 2 : 1;
  while (s.buffers < need && !pool_free_.empty()) {
    s.free.push_back(pool_free_.back());
    pool_free_.pop_back();
    ++s.buffers;
  }
  if (s.buffers < need) return Fail(Errc::kUnavailable, "data pool too small for this stream");
  StreamRecord fresh;
  fresh.dir = d;
  fresh.free = std::move(s.free);
  fresh.buffers = s.buffers;
  fresh.gaps = std::move(s.gaps);
  s = std::move(fresh);
  s.params = params;
  s.frame_bytes = fb;
  s.ring_frames = ring;
  s.chunk_frames = chunk;
  if (d == Direction::kPlayback) {
    s.history_frames = lead + 2 * uint64_t{chunk};
    s.history.assign(s.history_frames * fb, std::byte{0});
  }
  requests_.resize(std::max<size_t>(requests_.size(), 4));
  s.state = PcmState::kPrepared;
  if (!live_) return {};  // the reopen sets it up in the next driver
  if (auto r = SetUpInDriverLocked(s); !r && !DriverDown(r.error())) {
    s.state = PcmState::kClosed;
    return r;
  }
  return {};
}

// Open, hw_params and prepare, in one batch of calls.
std::vector<runtime::DriverCall> SoundShadow::SetUpCalls(const StreamRecord& s) const {
  const uint32_t index = StreamIndex(s.dir);
  SoundHwParamsBody p{.stream = index,
                      .rate = s.params.rate,
                      .channels = s.params.channels,
                      .format = static_cast<uint32_t>(s.params.format),
                      .period_frames = s.params.period_frames,
                      .periods = s.params.periods};
  return {runtime::DriverCall{.method = kOpen, .body = Encode(SoundStreamBody{.stream = index})},
          runtime::DriverCall{.method = kHwParams, .body = Encode(p)},
          runtime::DriverCall{.method = kPrepare, .body = Encode(SoundStreamBody{.stream = index})}};
}

runtime::DriverCall SoundShadow::StartCall(const StreamRecord& s) const {
  SoundStartBody body{
      .stream = StreamIndex(s.dir), .origin = s.has_origin ? s.origin : kNoOrigin, .position = s.start_position};
  return runtime::DriverCall{.method = kStart, .body = Encode(body)};
}

void SoundShadow::SetUpDoneLocked(StreamRecord& s, uint64_t epoch) {
  if (s.state != PcmState::kRunning) s.start_position = s.position;
  s.setup_epoch = epoch;
}

Result<void> SoundShadow::StartedLocked(StreamRecord& s, uint64_t epoch, const std::string& reply) {
  auto r = Decode<SoundStartReply>(reply);
  if (!r) return Fail(Errc::kProtocol, "driver sent a malformed start reply");
  s.origin = r->origin;
  s.has_origin = true;
  s.base = r->base;
  s.anchor_ns = MonotonicNanos();
  s.started_epoch = epoch;
  s.state = PcmState::kRunning;
  return {};
}

Result<void> SoundShadow::SetUpInDriverLocked(StreamRecord& s) {
  const uint64_t epoch = epoch_.load(std::memory_order_acquire);
  UMBRA_TRY(host().CallBatch(SetUpCalls(s), sound_options_.call_timeout_ns));
  SetUpDoneLocked(s, epoch);
  return {};
}

Result<void> SoundShadow::StartInDriverLocked(StreamRecord& s) {
  const uint64_t epoch = epoch_.load(std::memory_order_acquire);
  const runtime::DriverCall start = StartCall(s);
  auto reply = host().Call(start.method, start.body, sound_options_.call_timeout_ns);
  if (!reply) return std::unexpected(reply.error());
  return StartedLocked(s, epoch, *reply);
}

Result<void> SoundShadow::Start(Direction d) {
  UMBRA_TRY(CheckServing());
  std::lock_guard lock(mu_);
  StreamRecord& s = rec(d);
  if (s.state == PcmState::kClosed) return Fail(Errc::kInvalidArgument, "stream not open");
  if (s.state == PcmState::kRunning) return {};
  if (s.state == PcmState::kStopped) s.has_origin = false;
  if (!live_ || !InDriver(s)) {
    // The reopen starts it; the clock starts counting now.
    s.state = PcmState::kRunning;
    s.anchor_ns = MonotonicNanos();
    s.base = s.start_position;
    return {};
  }
  if (auto r = StartInDriverLocked(s); !r && !DriverDown(r.error())) return r;
  return {};
}

uint64_t SoundShadow::Position(Direction d) const {
  std::lock_guard lock(mu_);
  return rec(d).position;
}

Result<void> SoundShadow::Stop(Direction d) {
  UMBRA_TRY(CheckServing());
  std::lock_guard lock(mu_);
  StreamRecord& s = rec(d);
  if (s.state == PcmState::kClosed) return Fail(Errc::kInvalidArgument, "stream not open");
  if (live_ && InDriver(s)) {
    auto r = host().Call(kStop, Encode(SoundStreamBody{.stream = StreamIndex(d)}), sound_options_.call_timeout_ns);
    if (!r && !DriverDown(r.error())) return std::unexpected(r.error());
    s.setup_epoch = 0;  // the driver needs a prepare before the next start
  }
  s.started_epoch = 0;
  s.has_origin = false;
  s.anchor_ns = 0;
  s.state = PcmState::kStopped;
  PollLocked();
  return {};
}

Result<void> SoundShadow::Drain() {
  UMBRA_TRY(CheckServing());
  std::unique_lock lock(mu_);
  StreamRecord& s = rec(Direction::kPlayback);
  if (s.state == PcmState::kClosed) return Fail(Errc::kInvalidArgument, "stream not open");
  if (s.state != PcmState::kRunning && s.position > s.start_position) {
    // Never started (less than a ring written): start now so it plays.
    if (live_ && InDriver(s)) {
      if (auto r = StartInDriverLocked(s); !r && !DriverDown(r.error())) return r;
    } else {
      s.state = PcmState::kRunning;
      s.anchor_ns = MonotonicNanos();
      s.base = s.start_position;
    }
  }
  // Driver down (or it died while draining): the frames still to play are
  // dropped, except those a recovery in the meantime plays from the history;
  // return when they would have been played.
  while (s.state == PcmState::kRunning) {
    if (live_ && StartedInDriver(s)) {
      const uint64_t queued = s.position > s.start_position ? s.position - s.start_position : 0;
      const int64_t timeout = sound_options_.call_timeout_ns + NanosForFrames(s, std::min(queued, 4 * LeadFrames(s)));
      lock.unlock();
      auto r = host().Call(kDrain, Encode(SoundStreamBody{.stream = StreamIndex(Direction::kPlayback)}), timeout);
      lock.lock();
      if (r) break;
      if (!DriverDown(r.error())) {
        if (mode() != RecoveryMode::kShadow) return std::unexpected(r.error());
        // A drain that fails (the card stopped early): a driver bug, restart it.
        RestartFaultyDriverLocked(static_cast<int32_t>(r.error().code));
      }
    }
    if (s.anchor_ns == 0) break;
    PaceUntil(lock, s, s.position);
    if (ClockPositionLocked(s, MonotonicNanos()) >= s.position) break;  // all of it would have played
  }
  if (live_ && StartedInDriver(s)) {
    (void)host().Call(kStop, Encode(SoundStreamBody{.stream = StreamIndex(Direction::kPlayback)}),
                      sound_options_.call_timeout_ns);
  }
  s.setup_epoch = 0;
  s.started_epoch = 0;
  s.has_origin = false;
  s.anchor_ns = 0;
  s.state = PcmState::kStopped;
  PollLocked();
  return {};
}

Result<void> SoundShadow::Close(Direction d) {
  std::lock_guard lock(mu_);
  StreamRecord& s = rec(d);
  if (s.state == PcmState::kClosed) return {};
  if (live_ && InDriver(s)) {
    (void)host().Call(kClose, Encode(SoundStreamBody{.stream = StreamIndex(d)}), sound_options_.call_timeout_ns);
  }
  PollLocked();
  s.state = PcmState::kClosed;
  s.setup_epoch = s.started_epoch = 0;
  return {};
}

// ---------------- controls ----------------

Result<void> SoundShadow::SetVolume(uint32_t percent) {
  if (percent > hw::sound::kSoundMaxVolume) return Fail(Errc::kInvalidArgument, "volume outside 0..100");
  UMBRA_TRY(ConfigCall("volume", kRankVolume, kSetVolume, Encode(SoundVolumeBody{.volume = percent})));
  volume_ = percent;
  return {};
}

Result<void> SoundShadow::SetMute(bool mute) {
  UMBRA_TRY(ConfigCall("mute", kRankMute, kSetMute, Encode(SoundMuteBody{.mute = mute ? 1u : 0u})));
  mute_ = mute;
  return {};
}

PcmStatus SoundShadow::Status(Direction d) const {
  if (!passive()) const_cast<SoundShadow*>(this)->CountAnswered();
  std::lock_guard lock(mu_);
  const StreamRecord& s = rec(d);
  return PcmStatus{.state = s.state,
                   .params = s.params,
                   .position = s.position,
                   .dropped_frames = s.dropped,
                   .silent_frames = s.silent,
                   .recoveries = recoveries().size()};
}

std::vector<FrameRange> SoundShadow::CaptureGaps() const {
  std::lock_guard lock(mu_);
  return rec(Direction::kCapture).gaps;
}

// ---------------- clock ----------------

uint64_t SoundShadow::ClockPositionLocked(const StreamRecord& s, int64_t now) const {
  if (s.anchor_ns == 0) return s.position;  // not started: nothing plays yet
  const double frames = static_cast<double>(now - s.anchor_ns) * s.params.rate * sound_options_.clock_speed / 1e9;
  return s.base + static_cast<uint64_t>(std::max(0.0, frames));
}

int64_t SoundShadow::NanosForFrames(const StreamRecord& s, uint64_t frames) const {
  return static_cast<int64_t>(static_cast<double>(frames) * 1e9 / (s.params.rate * sound_options_.clock_speed));
}

void SoundShadow::PaceUntil(std::unique_lock<std::mutex>& lock, StreamRecord& s, uint64_t a) {
  for (;;) {
    const uint64_t clock = ClockPositionLocked(s, MonotonicNanos());
    if (clock >= a) return;
    const int64_t ns = std::min(kPaceSliceNs, NanosForFrames(s, a - clock) + 1000);
    lock.unlock();
    usleep(static_cast<useconds_t>(ns / 1000));
    lock.lock();
    if (live_ && InDriver(s)) return;  // back: the caller decides again
  }
}

// ---------------- playback ----------------

void SoundShadow::KeepHistoryLocked(StreamRecord& s, const std::byte* data, uint64_t frames) {
  const uint64_t fb = s.frame_bytes;
  uint64_t a = s.position;
  while (frames > 0) {
    const uint64_t slot = a % s.history_frames;
    const uint64_t run = std::min(frames, s.history_frames - slot);
    std::memcpy(s.history.data() + slot * fb, data, run * fb);
    data += run * fb;
    a += run;
    frames -= run;
  }
}

bool SoundShadow::SubmitWriteLocked(StreamRecord& s, uint64_t a, uint64_t n) {
  if (s.free.empty()) return false;
  const uint32_t off = s.free.back();
  const uint64_t fb = s.frame_bytes;
  std::byte* dst = host().buffer(off);
  for (uint64_t pos = a, left = n; left > 0;) {
    const uint64_t slot = pos % s.history_frames;
    const uint64_t run = std::min(left, s.history_frames - slot);
    std::memcpy(dst, s.history.data() + slot * fb, run * fb);
    dst += run * fb;
    pos += run;
    left -= run;
  }
  const uint32_t bytes = static_cast<uint32_t>(n * fb);
  const runtime::Request req{.op = kWrite,
                             .offset = off,
                             .length = bytes,
                             .capacity = bytes,
                             .arg = a,
                             .cookie = runtime::RequestCookie{.index = off, .tag = kWriteTag}.Encode()};
  auto r = host().Submit({&req, 1});
  if (!r || *r == 0) return false;
  s.free.pop_back();
  RecordSubmittedLocked(req);
  return true;
}

namespace {

// A client's buffer in whole frames, handed to `chunk(byte offset, frames)` at
// most one pool buffer (chunk_frames) at a time; returns the frames done.
template <class Stream, class Chunk>
Result<size_t> InChunks(const Stream& s, size_t bytes, Chunk&& chunk) {
  if (bytes % s.frame_bytes != 0) return Fail(Errc::kInvalidArgument, "not whole frames");
  const uint64_t total = bytes / s.frame_bytes;
  for (uint64_t done = 0; done < total;) {
    const uint64_t n = std::min<uint64_t>(s.chunk_frames, total - done);
    UMBRA_TRY(chunk(static_cast<size_t>(done * s.frame_bytes), n));
    done += n;
  }
  return static_cast<size_t>(total);
}

}  // namespace

Result<size_t> SoundShadow::Write(std::span<const std::byte> frames) {
  UMBRA_TRY(CheckServing());
  std::unique_lock lock(mu_);
  StreamRecord& s = rec(Direction::kPlayback);
  if (s.state == PcmState::kClosed) return Fail(Errc::kInvalidArgument, "playback stream not open");
  return InChunks(s, frames.size(),
                  [&](size_t offset, uint64_t n) { return WriteChunk(lock, s, frames.data() + offset, n); });
}

Result<size_t> SoundShadow::WriteChunk(std::unique_lock<std::mutex>& lock, StreamRecord& s, const std::byte* data,
                                       uint64_t n) {
  KeepHistoryLocked(s, data, n);
  for (;;) {
    if (!live_ || !InDriver(s)) {
      if (mode() == RecoveryMode::kRestartOnly) {
        CountFailed();
        return Fail(Errc::kUnavailable, device_name() + ": playback stream lost");
      }
      const uint64_t target = s.position + n;
      const uint64_t lead = LeadFrames(s);
      if (s.state == PcmState::kRunning && target > lead) PaceUntil(lock, s, target - lead);
      if (live_ && InDriver(s)) continue;  // back while we waited: play it
      // Drop policy: late sound is worse than a gap.
      s.dropped += n;
      CountDropped();
      s.position += n;
      if (s.state != PcmState::kRunning) s.dropped_until = s.position;
      return n;
    }
    if (s.state == PcmState::kStopped) {
      auto r =
          host().Call(kPrepare, Encode(SoundStreamBody{.stream = StreamIndex(s.dir)}), sound_options_.call_timeout_ns);
      if (!r && !DriverDown(r.error())) return std::unexpected(r.error());
      s.start_position = s.position;
      s.state = PcmState::kPrepared;
      if (!r) continue;
    }
    // Like ALSA's default start threshold: start once the ring is full.
    if (!StartedInDriver(s) && s.position + n - s.start_position > s.ring_frames) {
      if (auto r = StartInDriverLocked(s); !r) {
        if (!DriverDown(r.error())) return std::unexpected(r.error());
        continue;
      }
    }
    // Never more than `lead` frames ahead of the clock: that is what the
    // history keeps and what a recovery can play again. (Ring space alone
    // would let the pool buffers waiting in the driver add to it.)
    if (StartedInDriver(s) && s.position + n > ClockPositionLocked(s, MonotonicNanos()) + LeadFrames(s)) {
      PaceUntil(lock, s, s.position + n - LeadFrames(s));
      PollLocked();
      continue;
    }
    if (s.free.empty()) PollLocked();
    if (s.free.empty()) {
      WaitLocked(kWaitSliceNs);
      continue;
    }
    if (!SubmitWriteLocked(s, s.position, n)) continue;  // the driver went down: the frames are kept
    s.position += n;
    return n;
  }
}

// ---------------- capture ----------------

void SoundShadow::AddGapLocked(StreamRecord& s, uint64_t first, uint64_t frames) {
  s.silent += frames;
  if (!s.gaps.empty() && s.gaps.back().end == first) {
    s.gaps.back().end += frames;
  } else {
    s.gaps.push_back(FrameRange{first, first + frames});
  }
  recorder::Recorder& rec = host().recorder();
  rec.RequestCompleted(host().recorder_device(), recorder::RequestOp::kCapture, frames * s.frame_bytes, 0,
                       recorder::RequestOutcome::kInterrupted);
}

Result<size_t> SoundShadow::Read(std::span<std::byte> out) {
  UMBRA_TRY(CheckServing());
  std::unique_lock lock(mu_);
  StreamRecord& s = rec(Direction::kCapture);
  if (s.state == PcmState::kClosed) return Fail(Errc::kInvalidArgument, "capture stream not open");
  return InChunks(s, out.size(), [&](size_t offset, uint64_t n) { return ReadChunk(lock, s, out.data() + offset, n); });
}

Result<void> SoundShadow::ReadChunk(std::unique_lock<std::mutex>& lock, StreamRecord& s, std::byte* out, uint64_t n) {
  const uint64_t a = s.position;
  const uint64_t bytes = n * s.frame_bytes;
  for (;;) {
    if (!live_ || !InDriver(s)) {
      if (mode() == RecoveryMode::kRestartOnly) {
        CountFailed();
        return Fail(Errc::kUnavailable, device_name() + ": capture stream lost");
      }
      if (s.state == PcmState::kRunning) PaceUntil(lock, s, a + n);
      if (live_ && InDriver(s)) continue;
      // The card could not capture these frames: silence, marked as such.
      std::memset(out, 0, bytes);
      AddGapLocked(s, a, n);
      CountAnswered();
      s.position += n;
      return {};
    }
    if (s.state == PcmState::kStopped) {
      auto r =
          host().Call(kPrepare, Encode(SoundStreamBody{.stream = StreamIndex(s.dir)}), sound_options_.call_timeout_ns);
      if (!r && !DriverDown(r.error())) return std::unexpected(r.error());
      s.start_position = s.position;
      s.state = PcmState::kPrepared;
      if (!r) continue;
    }
    if (!StartedInDriver(s)) {
      if (auto r = StartInDriverLocked(s); !r) {
        if (!DriverDown(r.error())) return std::unexpected(r.error());
        continue;
      }
    }
    if (!s.read_in_flight && !s.read_done) {
      const uint32_t off = s.free.front();
      const runtime::Request req{.op = kRead,
                                 .offset = off,
                                 .length = static_cast<uint32_t>(bytes),
                                 .capacity = static_cast<uint32_t>(bytes),
                                 .arg = a,
                                 .cookie = runtime::RequestCookie{.index = off, .tag = kReadTag}.Encode()};
      auto r = host().Submit({&req, 1});
      if (!r || *r == 0) {
        PaceUntil(lock, s, ClockPositionLocked(s, MonotonicNanos()) + 1);
        continue;
      }
      s.read_in_flight = true;
      s.read_bytes = static_cast<uint32_t>(bytes);
      RecordSubmittedLocked(req);
    }
    if (!s.read_done) {
      WaitLocked(kWaitSliceNs);
      continue;
    }
    s.read_done = false;
    if (s.read_status == static_cast<int32_t>(Errc::kInterrupted) ||
        s.read_status == static_cast<int32_t>(Errc::kUnavailable)) {
      continue;  // the driver died under the read: ask the next one
    }
    if (s.read_status != 0) {
      std::memset(out, 0, bytes);
      AddGapLocked(s, a, n);
      s.position += n;
      return {};
    }
    std::memcpy(out, host().buffer(s.free.front()), bytes);
    const uint64_t silent = std::min<uint64_t>(s.read_silent, n);
    if (silent > 0) AddGapLocked(s, a, silent);
    s.position += n;
    return {};
  }
}

// ---------------- completions ----------------

size_t SoundShadow::PollLocked() {
  size_t total = 0;
  for (;;) {
    const size_t got = host().Poll(completions_);
    HandleLocked({completions_.data(), got});
    total += got;
    if (got < completions_.size()) return total;
  }
}

void SoundShadow::WaitLocked(int64_t slice_ns) {
  const size_t got = host().Wait(completions_, slice_ns);
  HandleLocked({completions_.data(), got});
}

// A write completes when the driver put its frames into the card's ring: the
// first one after a crash is when sound flows again. Latency: submit to
// completion (a write waits for ring space, so it follows the sample clock).
void SoundShadow::RecordSubmittedLocked(const runtime::Request& req) {
  recorder::Recorder& rec = host().recorder();
  if (!rec.on()) return;
  const int64_t now = MonotonicNanos();
  const size_t index = req.offset / host().buffer_size();
  if (index >= submitted_.size()) submitted_.resize(index + 1);
  submitted_[index] = Submitted{now, req.length};
  rec.RequestSubmitted(host().recorder_device(),
                       req.op == kWrite ? recorder::RequestOp::kPlayback : recorder::RequestOp::kCapture, req.length,
                       now);
}

void SoundShadow::RecordCompletedLocked(const runtime::Completion& c) {
  recorder::Recorder& rec = host().recorder();
  if (!rec.on()) return;
  const int64_t now = MonotonicNanos();
  const size_t index = runtime::RequestCookie::Decode(c.cookie).index / host().buffer_size();
  const Submitted sub = index < submitted_.size() ? submitted_[index] : Submitted{};
  rec.RequestCompleted(host().recorder_device(),
                       runtime::RequestCookie::Decode(c.cookie).tag == kWriteTag ? recorder::RequestOp::kPlayback
                                                                                 : recorder::RequestOp::kCapture,
                       sub.length, sub.time_ns != 0 ? now - sub.time_ns : 0, recorder::OutcomeOfStatus(c.status), now);
}

void SoundShadow::HandleLocked(std::span<const runtime::Completion> done) {
  for (const runtime::Completion& c : done) {
    RecordCompletedLocked(c);
    const uint32_t off = runtime::RequestCookie::Decode(c.cookie).index;
    if (runtime::RequestCookie::Decode(c.cookie).tag == kWriteTag) {
      StreamRecord& s = rec(Direction::kPlayback);
      s.free.push_back(off);
      if (WriteFailed(c.status)) RestartFaultyDriverLocked(c.status);
      continue;
    }
    StreamRecord& s = rec(Direction::kCapture);
    s.read_in_flight = false;
    s.read_done = true;
    s.read_status = c.status;
    s.read_silent = c.arg;
    // A length other than asked for is a broken driver: the frames are not trusted.
    if (c.status == 0 && c.length != s.read_bytes) s.read_status = static_cast<int32_t>(Errc::kIo);
  }
}

bool SoundShadow::WriteFailed(int32_t status) {
  // Interrupted: the driver died under it; unavailable: the stream was
  // stopped or closed under it. Both are expected; anything else means the
  // frames never reached the ring and the driver cannot say why.
  return status != 0 && status != static_cast<int32_t>(Errc::kInterrupted) &&
         status != static_cast<int32_t>(Errc::kUnavailable);
}

void SoundShadow::RestartFaultyDriverLocked(int32_t status) {
  const uint64_t epoch = epoch_.load(std::memory_order_acquire);
  if (!live_ || killed_epoch_ == epoch || mode() != RecoveryMode::kShadow) return;
  // A failed write is a driver (or device-programming) bug: turn it into a
  // crash, so that there is one recovery path. The frames are in the history
  // and are played again by ResubmitRequests if they are still ahead of the
  // clock.
  killed_epoch_ = epoch;
  spdlog::warn("[{}] sound: a write failed ({}), restarting the driver", device_name(),
               ErrcName(static_cast<Errc>(status)));
  host().Kill(SIGKILL);
}

// ---------------- recovery hooks ----------------

void SoundShadow::OnDriverLost() {
  // Loop thread: no lock (a client may hold mu_ in a driver call that this
  // very detection is about to fail). The epoch makes every stream stale.
  live_.store(false, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
}

Result<void> SoundShadow::ReopenObjects() {
  std::lock_guard lock(mu_);
  // Each stream in one batch (set up, and started when it ran): one wake-up
  // of the driver instead of four.
  for (StreamRecord& s : streams_) {
    if (s.state == PcmState::kClosed) continue;
    const uint64_t epoch = epoch_.load(std::memory_order_acquire);
    std::vector<runtime::DriverCall> calls = SetUpCalls(s);
    const bool running = s.state == PcmState::kRunning;
    if (running) calls.push_back(StartCall(s));
    const std::vector<std::string> replies =
        UMBRA_TRY(host().CallBatch(std::move(calls), sound_options_.call_timeout_ns));
    SetUpDoneLocked(s, epoch);
    if (running) UMBRA_TRY(StartedLocked(s, epoch, replies.back()));
  }
  return {};
}

Result<void> SoundShadow::ResubmitRequests() {
  std::lock_guard lock(mu_);
  PollLocked();  // the requests the crash interrupted come back here
  if (mode() == RecoveryMode::kShadow) {
    StreamRecord& s = rec(Direction::kPlayback);
    if (s.state == PcmState::kRunning || s.state == PcmState::kPrepared) {
      // The kept frames still ahead of the clock: playback resumes with the
      // next period instead of at the application's next write.
      uint64_t from =
          s.position > s.history_frames - s.chunk_frames ? s.position - (s.history_frames - s.chunk_frames) : 0;
      from = std::max(from, s.start_position);
      if (s.state == PcmState::kRunning) from = std::max(from, ClockPositionLocked(s, MonotonicNanos()));
      // Frames dropped before the stream started have no clock to say they
      // are late (a stream started since counts from its start): what the
      // application was told was dropped must not turn up later as sound.
      from = std::max(from, s.dropped_until);
      const uint64_t room = uint64_t{s.chunk_frames} * s.free.size();
      if (s.position > from + room) from = s.position - room;
      for (uint64_t a = from; a < s.position;) {
        const uint64_t n = std::min<uint64_t>(s.chunk_frames, s.position - a);
        if (!SubmitWriteLocked(s, a, n)) return Fail(Errc::kUnavailable, "driver went down while resubmitting");
        CountResubmitted();
        a += n;
      }
    }
  }
  live_.store(true, std::memory_order_release);
  return {};
}

// ---------------- factory ----------------

const shadows::SettingsSchema<SoundShadowOptions>& SoundSettings() {
  static const auto schema = shadows::SettingsSchema<SoundShadowOptions>("sound")
                                 .Count("queue_periods", &SoundShadowOptions::queue_periods)
                                 .Number("clock_speed", &SoundShadowOptions::clock_speed);
  return schema;
}

Result<std::unique_ptr<shadows::Shadow>> CreateSoundShadow(runtime::Host& host, const shadows::ShadowSettings& settings,
                                                           RecoveryMode mode) {
  const SoundShadowOptions o = UMBRA_TRY(SoundSettings().Parse(settings));
  auto s = SoundShadow::Create(host, o, mode);
  if (!s) return std::unexpected(s.error());
  return std::unique_ptr<shadows::Shadow>(std::move(*s));
}

}  // namespace umbra::sound
