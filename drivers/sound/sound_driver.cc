#include "drivers/sound/sound_driver.h"

#include <algorithm>
#include <cstring>

#include "drivers/sdk/await.h"
#include "drivers/sdk/probe.h"
#include "faultinject/failpoint.h"
#include "base/clock.h"

namespace umbra::drivers {

using namespace hw::sound;
using faultinject::Action;
using faultinject::SiteFault;

namespace {

constexpr int64_t kCardTimeoutNs = 1'000'000'000;
constexpr int64_t kPollStepNs = 20'000;
constexpr uint32_t kIrqMask = kIntPlaybackPeriod | kIntCapturePeriod | kIntStopped | kIntFault;

int32_t StatusOf(Errc e) { return static_cast<int32_t>(e); }

uint32_t Index(SoundStream s) { return static_cast<uint32_t>(s); }

}  // namespace

// ---------------- bring-up ----------------

Result<void> SoundDriver::Probe(sdk::Context& ctx) {
  const sdk::ProbeSpec spec{.device = "umbra,sound-emu",
                            .sites = kSoundSites,
                            .probe_site = "snd.probe",
                            .magic = kSoundMagic,
                            .version = kSoundVersion,
                            .identity = sdk::Identity::kAfterReset};
  const auto dev = UMBRA_TRY(sdk::MapRegisters<SoundRegs>(ctx, spec));
  regs_ = dev.regs;
  dma_ = dev.dma;
  dma_size_ = dev.dma_size;
  const Action a = dev.probe;
  UMBRA_TRY(ResetCard(ctx));
  UMBRA_TRY(sdk::CheckIdentity(regs(), spec));
  if (dma_size_ < 2 * kSoundBufferAlign) return Fail(Errc::kNoDevice, "DMA pool too small");
  regs().int_mask.store(a.fault == SiteFault::kBadRegister ? static_cast<uint32_t>(a.value) : kIntAll & ~kIrqMask,
                        std::memory_order_release);
  ctx.Log(sdk::LogLevel::kDebug, "sound card probed: " + std::to_string(dma_size_) + " bytes of DMA");
  return {};
}

void SoundDriver::Stop(sdk::Context& ctx) {
  if (regs_ == nullptr) return;
  // Not in a fiber: nothing here may wait for the card (ctx.Sleep). The
  // stop is posted if the card has taken the previous command; the host
  // resets the card after we exit anyway.
  for (uint32_t s = 0; s < 2; ++s) {
    Stream& st = streams_[s];
    if (st.started && sregs(s).command.load(std::memory_order_acquire) == 0) {
      sregs(s).command.store(static_cast<uint32_t>(SoundCommand::kStop), std::memory_order_release);
      regs().doorbell.fetch_add(1, std::memory_order_release);
      ctx.RingDoorbell();
    }
    st.started = false;
    FailPending(ctx, st, Errc::kUnavailable);
  }
}

Result<void> SoundDriver::ResetCard(sdk::Context& ctx) {
  regs().control.store(kControlReset, std::memory_order_release);
  regs().doorbell.fetch_add(1, std::memory_order_release);
  ctx.RingDoorbell();
  UMBRA_TRY(sdk::AwaitDevice(
      ctx, [&] { return (regs().control.load(std::memory_order_acquire) & kControlReset) == 0; }, kCardTimeoutNs,
      "sound card reset did not complete"));
  volume_ = kSoundMaxVolume;
  mute_ = 0;
  return {};
}

// One command at a time: wait until the card took the previous one.
Result<void> SoundDriver::Command(sdk::Context& ctx, uint32_t s, SoundCommand c) {
  auto taken = [&] { return sregs(s).command.load(std::memory_order_acquire) == 0; };
  UMBRA_TRY(sdk::AwaitDevice(ctx, taken, kCardTimeoutNs, "sound card did not take a command"));
  sregs(s).command.store(static_cast<uint32_t>(c), std::memory_order_release);
  regs().doorbell.fetch_add(1, std::memory_order_release);
  ctx.RingDoorbell();
  return sdk::AwaitDevice(ctx, taken, kCardTimeoutNs, "sound card did not take a command");
}

Result<void> SoundDriver::WaitState(sdk::Context& ctx, uint32_t s, SoundStreamState want, int64_t timeout_ns) {
  return sdk::AwaitDevice(
      ctx, [&] { return sregs(s).state.load(std::memory_order_acquire) == static_cast<uint32_t>(want); }, timeout_ns,
      "sound stream did not reach its state");
}

void SoundDriver::StopStream(sdk::Context& ctx, uint32_t s) {
  Stream& st = streams_[s];
  if (st.started) (void)Command(ctx, s, SoundCommand::kStop);
  st.started = false;
  FailPending(ctx, st, Errc::kUnavailable);
}

void SoundDriver::FailPending(sdk::Context& ctx, Stream& st, Errc why) {
  for (const ipc::Descriptor& d : st.pending) ctx.Complete(d, StatusOf(why), 0);
  st.pending.clear();
}

uint64_t SoundDriver::HwPtr(uint32_t s) const {
  return streams_[s].started ? sregs(s).hw_ptr.load(std::memory_order_acquire) : 0;
}

// ---------------- control path ----------------

Result<SoundDriver::Stream*> SoundDriver::StreamFor(std::string_view body, bool need_open) {
  uint32_t s = 0;
  if (body.size() < sizeof s) return Fail(Errc::kInvalidArgument, "malformed sound call");
  std::memcpy(&s, body.data(), sizeof s);
  if (s > Index(SoundStream::kCapture)) return Fail(Errc::kInvalidArgument, "no such stream");
  if (need_open && !streams_[s].open) return Fail(Errc::kInvalidArgument, "stream not open");
  return &streams_[s];
}

Result<std::string> SoundDriver::OnCall(sdk::Context& ctx, uint32_t method, std::string_view body) {
  if (regs_ == nullptr) return Fail(Errc::kUnavailable, "not probed");
  switch (static_cast<sound::SoundMethod>(method)) {
    case sound::kOpen: return Open(body);
    case sound::kClose: return Close(ctx, body);
    case sound::kHwParams: return HwParams(body);
    case sound::kPrepare: return Prepare(ctx, body);
    case sound::kStart: return Start(ctx, body);
    case sound::kStop: return StopCall(ctx, body);
    case sound::kDrain: return Drain(ctx, body);
    case sound::kSetVolume: return SetVolume(body);
    case sound::kSetMute: return SetMute(body);
    case sound::kStatus: return Status(body);
  }
  return Fail(Errc::kInvalidArgument, "method " + std::to_string(method) + " not supported");
}

Result<std::string> SoundDriver::Open(std::string_view body) {
  Stream* st = UMBRA_TRY(StreamFor(body, false));
  if (UMBRA_FAILPOINT("snd.open").fault == SiteFault::kError) return Fail(Errc::kIo, "injected open failure");
  if (st->open) return Fail(Errc::kBusy, "stream already open");
  *st = Stream{};
  st->open = true;
  return std::string();
}

Result<std::string> SoundDriver::Close(sdk::Context& ctx, std::string_view body) {
  Stream* st = UMBRA_TRY(StreamFor(body, true));
  StopStream(ctx, static_cast<uint32_t>(st - streams_));
  *st = Stream{};
  return std::string();
}

Result<std::string> SoundDriver::HwParams(std::string_view body) {
  auto p = sound::Decode<sound::SoundHwParamsBody>(body);
  if (!p) return Fail(Errc::kInvalidArgument, "malformed hw_params");
  Stream* st = UMBRA_TRY(StreamFor(body, true));
  const Action a = UMBRA_FAILPOINT("snd.hw_params");
  if (a.fault == SiteFault::kError) return Fail(Errc::kIo, "injected hw_params failure");
  if (st->started) return Fail(Errc::kBusy, "stream is running");
  if (!SoundRateSupported(p->rate)) return Fail(Errc::kInvalidArgument, "rate not supported");
  if (p->channels == 0 || p->channels > kSoundMaxChannels) return Fail(Errc::kInvalidArgument, "bad channel count");
  if (SoundSampleBytes(p->format) == 0) return Fail(Errc::kInvalidArgument, "bad sample format");
  if (p->period_frames < kSoundMinPeriodFrames || p->period_frames > kSoundMaxPeriodFrames) {
    return Fail(Errc::kInvalidArgument, "bad period size");
  }
  if (p->periods < kSoundMinPeriods || p->periods > kSoundMaxPeriods) {
    return Fail(Errc::kInvalidArgument, "bad period count");
  }
  const uint32_t fb = SoundSampleBytes(p->format) * p->channels;
  const uint64_t ring = uint64_t{p->period_frames} * p->periods;
  const uint64_t half = (dma_size_ / 2) & ~(kSoundBufferAlign - 1);
  if (ring * fb > half) return Fail(Errc::kInvalidArgument, "ring larger than half the DMA pool");
  st->rate = a.fault == SiteFault::kBadRegister ? static_cast<uint32_t>(a.value) : p->rate;
  st->channels = p->channels;
  st->format = p->format;
  st->period_frames = p->period_frames;
  st->periods = p->periods;
  st->frame_bytes = fb;
  st->ring_frames = ring;
  st->ring_offset = st == &streams_[Index(SoundStream::kPlayback)] ? 0 : half;
  st->configured = true;
  st->prepared = false;
  return std::string();
}

Result<std::string> SoundDriver::Prepare(sdk::Context& ctx, std::string_view body) {
  Stream* st = UMBRA_TRY(StreamFor(body, true));
  const uint32_t s = static_cast<uint32_t>(st - streams_);
  if (UMBRA_FAILPOINT("snd.prepare").fault == SiteFault::kError) return Fail(Errc::kIo, "injected prepare failure");
  if (!st->configured) return Fail(Errc::kInvalidArgument, "no hardware parameters");
  StopStream(ctx, s);
  UMBRA_TRY(WaitState(ctx, s, SoundStreamState::kStopped, kCardTimeoutNs));
  SoundStreamRegs& r = sregs(s);
  r.rate.store(st->rate, std::memory_order_relaxed);
  r.channels.store(st->channels, std::memory_order_relaxed);
  r.format.store(st->format, std::memory_order_relaxed);
  r.period_frames.store(st->period_frames, std::memory_order_relaxed);
  r.periods.store(st->periods, std::memory_order_relaxed);
  r.buffer_offset.store(st->ring_offset, std::memory_order_relaxed);
  r.appl_ptr.store(0, std::memory_order_release);
  std::memset(dma_ + st->ring_offset, 0, st->ring_frames * st->frame_bytes);
  st->appl = 0;
  st->base = 0;
  st->prepared = true;
  st->refused = false;
  return std::string();
}

Result<std::string> SoundDriver::Start(sdk::Context& ctx, std::string_view body) {
  auto b = sound::Decode<sound::SoundStartBody>(body);
  if (!b) return Fail(Errc::kInvalidArgument, "malformed start");
  Stream* st = UMBRA_TRY(StreamFor(body, true));
  const uint32_t s = static_cast<uint32_t>(st - streams_);
  if (UMBRA_FAILPOINT("snd.start").fault == SiteFault::kError) return Fail(Errc::kIo, "injected start failure");
  if (!st->prepared) return Fail(Errc::kInvalidArgument, "stream not prepared");
  if (st->started) return Fail(Errc::kBusy, "stream already running");
  UMBRA_TRY(Command(ctx, s, SoundCommand::kStart));
  if (auto r = WaitState(ctx, s, SoundStreamState::kRunning, kCardTimeoutNs); !r) {
    return Fail(Errc::kIo, "card refused the start (error " + std::to_string(sregs(s).error.load()) + ")");
  }
  sound::SoundStartReply reply;
  reply.start_frame = sregs(s).start_frame.load(std::memory_order_acquire);
  // Modulo 2^64: a stream started at application position P has origin
  // start_frame - P and base P.
  reply.origin = b->origin == sound::kNoOrigin ? reply.start_frame - b->position : b->origin;
  reply.base = reply.start_frame - reply.origin;
  st->base = reply.base;
  st->started = true;
  // Writes queued before the start were positioned with base 0: retry them.
  if (s == Index(SoundStream::kPlayback)) ServicePlayback(ctx);
  return sound::Encode(reply);
}

Result<std::string> SoundDriver::StopCall(sdk::Context& ctx, std::string_view body) {
  Stream* st = UMBRA_TRY(StreamFor(body, true));
  StopStream(ctx, static_cast<uint32_t>(st - streams_));
  st->prepared = false;
  return std::string();
}

Result<std::string> SoundDriver::Drain(sdk::Context& ctx, std::string_view body) {
  Stream* st = UMBRA_TRY(StreamFor(body, true));
  const uint32_t s = static_cast<uint32_t>(st - streams_);
  if (UMBRA_FAILPOINT("snd.drain").fault == SiteFault::kError) return Fail(Errc::kIo, "injected drain failure");
  if (!st->started) return std::string();
  // Everything queued must reach the ring first; then the card plays to appl_ptr.
  const int64_t per_ring_ns = static_cast<int64_t>(st->ring_frames * 1'000'000'000 / st->rate);
  const int64_t deadline = MonotonicNanos() + 4 * per_ring_ns + kCardTimeoutNs;
  while (!st->pending.empty()) {
    if (MonotonicNanos() > deadline) return Fail(Errc::kTimeout, "drain: writes did not fit");
    ctx.Sleep(kPollStepNs * 10);
  }
  if (s == Index(SoundStream::kPlayback)) {
    UMBRA_TRY(Command(ctx, s, SoundCommand::kDrain));
    UMBRA_TRY(WaitState(ctx, s, SoundStreamState::kStopped, deadline - MonotonicNanos()));
    // Stopped because it refused a value, not because it played everything.
    if (st->refused || sregs(s).error.load(std::memory_order_acquire) != 0) {
      return Fail(Errc::kIo, "the card stopped the stream before it was drained (error " +
                                 std::to_string(sregs(s).error.load()) + ")");
    }
  } else {
    UMBRA_TRY(Command(ctx, s, SoundCommand::kStop));
  }
  st->started = false;
  st->prepared = false;
  return std::string();
}

Result<std::string> SoundDriver::SetVolume(std::string_view body) {
  auto b = sound::Decode<sound::SoundVolumeBody>(body);
  if (!b || b->volume > kSoundMaxVolume) return Fail(Errc::kInvalidArgument, "volume outside 0..100");
  const Action a = UMBRA_FAILPOINT("snd.volume");
  if (a.fault == SiteFault::kError) return Fail(Errc::kIo, "injected volume failure");
  volume_ = b->volume;
  regs().volume.store(a.fault == SiteFault::kBadRegister ? static_cast<uint32_t>(a.value) : volume_,
                      std::memory_order_release);
  return std::string();
}

Result<std::string> SoundDriver::SetMute(std::string_view body) {
  auto b = sound::Decode<sound::SoundMuteBody>(body);
  if (!b || b->mute > 1) return Fail(Errc::kInvalidArgument, "mute must be 0 or 1");
  if (UMBRA_FAILPOINT("snd.volume").fault == SiteFault::kError) return Fail(Errc::kIo, "injected mute failure");
  mute_ = b->mute;
  regs().mute.store(mute_, std::memory_order_release);
  return std::string();
}

Result<std::string> SoundDriver::Status(std::string_view body) {
  Stream* st = UMBRA_TRY(StreamFor(body, false));
  const uint32_t s = static_cast<uint32_t>(st - streams_);
  sound::SoundStatus out;
  out.open = st->open;
  out.state = sregs(s).state.load(std::memory_order_acquire);
  out.prepared = st->prepared;
  out.volume = volume_;
  out.mute = mute_;
  out.hw_ptr = HwPtr(s);
  out.appl_ptr = st->appl;
  out.base = st->base;
  out.xruns = sregs(s).xruns.load(std::memory_order_relaxed);
  out.late_frames = late_frames_;
  out.pending = st->pending.size();
  return sound::Encode(out);
}

// ---------------- data path ----------------

void SoundDriver::OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) {
  const uint32_t s = req.op == sound::kWrite ? Index(SoundStream::kPlayback) : Index(SoundStream::kCapture);
  Stream& st = streams_[s];
  if (req.op != sound::kWrite && req.op != sound::kRead) {
    ctx.Complete(req, StatusOf(Errc::kInvalidArgument), 0);
    return;
  }
  if (!st.prepared && !st.started) {
    ctx.Complete(req, StatusOf(Errc::kUnavailable), 0);
    return;
  }
  if (st.refused) {
    ctx.Complete(req, StatusOf(Errc::kIo), 0);
    return;
  }
  if (st.frame_bytes == 0 || req.length % st.frame_bytes != 0 || req.length / st.frame_bytes > st.ring_frames ||
      !ctx.InPool(req.offset, req.length)) {
    ctx.Complete(req, StatusOf(Errc::kInvalidArgument), 0);
    return;
  }
  // Keep order: a request behind waiting ones waits too.
  const bool done = st.pending.empty() && (req.op == sound::kWrite ? TryWrite(ctx, st, req) : TryRead(ctx, st, req));
  if (!done) st.pending.push_back(req);
}

bool SoundDriver::TryWrite(sdk::Context& ctx, Stream& st, const ipc::Descriptor& req) {
  const uint32_t s = Index(SoundStream::kPlayback);
  const uint64_t fb = st.frame_bytes;
  const int64_t frames = req.length / fb;
  const int64_t p = static_cast<int64_t>(req.arg - st.base);
  const int64_t hw = static_cast<int64_t>(HwPtr(s));
  const int64_t end = p + frames;
  if (end > hw + static_cast<int64_t>(st.ring_frames)) return false;  // no room yet
  const Action a = UMBRA_FAILPOINT("snd.write");
  if (a.fault == SiteFault::kError) {
    ctx.Complete(req, StatusOf(Errc::kIo), 0);
    return true;
  }
  const int64_t appl = static_cast<int64_t>(st.appl);
  const int64_t first = std::max({p, hw, appl});
  if (first > p) late_frames_ += static_cast<uint64_t>(std::min(first, end) - p);
  std::byte* ring = dma_ + st.ring_offset;
  auto put = [&](int64_t pos, const std::byte* src, int64_t n) {
    while (n > 0) {
      const uint64_t slot = static_cast<uint64_t>(pos) % st.ring_frames;
      const int64_t run = std::min<int64_t>(n, static_cast<int64_t>(st.ring_frames - slot));
      if (src != nullptr) {
        std::memcpy(ring + slot * fb, src, run * fb);
        src += run * fb;
      } else {
        std::memset(ring + slot * fb, 0, run * fb);
      }
      pos += run;
      n -= run;
    }
  };
  // A hole between what the ring holds and these frames is silence, never
  // the stale content of an earlier lap of the ring.
  const int64_t hole = std::max(appl, hw);
  if (first > hole) put(hole, nullptr, first - hole);
  if (end > first) {
    put(first, ctx.pool() + req.offset + (first - p) * fb, end - first);
    frames_written_ += static_cast<uint64_t>(end - first);
  }
  if (end > appl) st.appl = static_cast<uint64_t>(end);
  // The bug: the driver's own appl_ptr is corrupted, and stays so.
  if (a.fault == SiteFault::kBadRegister) st.appl = static_cast<uint64_t>(a.value);
  sregs(s).appl_ptr.store(st.appl, std::memory_order_release);
  // Frames for the period the DAC is playing (right after a start or an
  // underrun): tell the card now, it plays those it has not reached yet.
  if (st.started && first < hw + static_cast<int64_t>(st.period_frames) && end > first) {
    regs().doorbell.fetch_add(1, std::memory_order_release);
    ctx.RingDoorbell();
  }
  if (a.fault == SiteFault::kDropCompletion) return true;
  ctx.Complete(req, 0, 0, HwPtr(s) + st.base);
  return true;
}

bool SoundDriver::TryRead(sdk::Context& ctx, Stream& st, const ipc::Descriptor& req) {
  if (!st.started) return false;
  const uint32_t s = Index(SoundStream::kCapture);
  const uint64_t fb = st.frame_bytes;
  const int64_t frames = req.length / fb;
  const int64_t p = static_cast<int64_t>(req.arg - st.base);
  const int64_t hw = static_cast<int64_t>(HwPtr(s));
  if (p + frames > hw) return false;  // not captured yet
  const Action a = UMBRA_FAILPOINT("snd.read");
  if (a.fault == SiteFault::kError) {
    ctx.Complete(req, StatusOf(Errc::kIo), 0);
    return true;
  }
  if (a.fault == SiteFault::kDropCompletion) return true;
  // The ring holds [hw - ring, hw); the card overwrites the oldest period at
  // the next boundary, so keep one period clear of it.
  const int64_t keep = static_cast<int64_t>(st.ring_frames - st.period_frames);
  const int64_t oldest = std::max<int64_t>(0, hw - keep);
  int64_t silent = std::clamp<int64_t>(oldest - p, 0, frames);
  std::byte* dst = ctx.pool() + req.offset;
  std::memset(dst, 0, silent * fb);
  const std::byte* ring = dma_ + st.ring_offset;
  for (int64_t pos = p + silent; pos < p + frames;) {
    const uint64_t slot = static_cast<uint64_t>(pos) % st.ring_frames;
    const int64_t run = std::min<int64_t>(p + frames - pos, static_cast<int64_t>(st.ring_frames - slot));
    std::memcpy(dst + (pos - p) * fb, ring + slot * fb, run * fb);
    pos += run;
  }
  // A driver held off its CPU for more than a period while it copied (a
  // loaded machine) may have been lapped: what the card wrote over since is
  // a later lap, not these frames. Look again, as ALSA does after a copy,
  // and give those frames up as silence too.
  const int64_t overrun = std::clamp<int64_t>(static_cast<int64_t>(HwPtr(s)) - keep - p, silent, frames);
  if (overrun > silent) {
    std::memset(dst + silent * fb, 0, (overrun - silent) * fb);
    silent = overrun;
  }
  silent_frames_ += static_cast<uint64_t>(silent);
  frames_read_ += static_cast<uint64_t>(frames - silent);
  if (p + frames > static_cast<int64_t>(st.appl)) {
    st.appl = static_cast<uint64_t>(p + frames);
    sregs(s).appl_ptr.store(st.appl, std::memory_order_release);
  }
  const uint32_t length = a.fault == SiteFault::kWrongLength ? req.length + static_cast<uint32_t>(a.value) : req.length;
  ctx.Complete(req, 0, length, static_cast<uint64_t>(silent));
  return true;
}

void SoundDriver::ServicePlayback(sdk::Context& ctx) {
  Stream& st = streams_[Index(SoundStream::kPlayback)];
  while (!st.pending.empty() && TryWrite(ctx, st, st.pending.front())) st.pending.pop_front();
}

void SoundDriver::ServiceCapture(sdk::Context& ctx) {
  Stream& st = streams_[Index(SoundStream::kCapture)];
  while (!st.pending.empty() && TryRead(ctx, st, st.pending.front())) st.pending.pop_front();
}

void SoundDriver::OnInterrupt(sdk::Context& ctx) {
  if (regs_ == nullptr) return;
  const uint32_t cause = regs().int_cause.exchange(0, std::memory_order_acq_rel);
  ++interrupts_;
  if (UMBRA_FAILPOINT("snd.irq").fault == SiteFault::kDropCompletion) return;  // a lost interrupt
  if ((cause & kIntStopped) != 0) {
    // Drain finished or the card stopped a stream it refused: writes and
    // reads waiting for it would wait forever. A refusal (the card's `error`
    // is set) is a programming bug of ours: everything up to the next
    // prepare fails, so the host side can tell and restart us.
    for (uint32_t s = 0; s < 2; ++s) {
      if (streams_[s].started &&
          sregs(s).state.load(std::memory_order_acquire) == static_cast<uint32_t>(SoundStreamState::kStopped)) {
        if (sregs(s).error.load(std::memory_order_relaxed) != 0) {
          streams_[s].refused = true;
          ctx.Log(sdk::LogLevel::kError, "sound card refused a value (error " + std::to_string(sregs(s).error.load()) +
                                             ") and stopped the stream");
        }
        FailPending(ctx, streams_[s], Errc::kIo);
      }
    }
  }
  ServicePlayback(ctx);
  ServiceCapture(ctx);
}

std::map<std::string, uint64_t> SoundDriver::Counters() const {
  return {{"frames_written", frames_written_},
          {"frames_read", frames_read_},
          {"late_frames", late_frames_},
          {"silent_frames", silent_frames_},
          {"interrupts", interrupts_}};
}

}  // namespace umbra::drivers
