#include "runtime/hw/sound/sound_card.h"

#include <poll.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <optional>

#include "base/clock.h"
#include "base/spin.h"

namespace umbra::hw::sound {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
// How long the hardware thread keeps polling the registers after serving a
// doorbell before it blocks in poll().
constexpr int64_t kSpinNanos = 30'000;

// Virtual time of frame `frames` of a stream started at 0, rounded up.
int64_t FramesToNanos(uint64_t frames, uint32_t rate) {
  unsigned __int128 n = static_cast<unsigned __int128>(frames) * kNanosPerSecond;
  return static_cast<int64_t>((n + rate - 1) / rate);
}

// Whole frames of the clock in `ns`.
uint64_t NanosToFrames(int64_t ns, uint32_t rate) {
  if (ns <= 0) return 0;
  return static_cast<uint64_t>(static_cast<unsigned __int128>(ns) * rate / kNanosPerSecond);
}

// sample * volume / 100 over `samples` samples at `p` (any alignment), in
// chunks through a local array so that the compiler can vectorise the loop.
template <class Sample, class Wide>
void ScaleSamples(std::byte* p, uint64_t samples, uint32_t volume) {
  constexpr uint64_t kChunk = 256;
  Sample chunk[kChunk];
  const Wide gain = static_cast<Wide>(volume);
  for (uint64_t done = 0; done < samples; done += kChunk) {
    uint64_t n = std::min(kChunk, samples - done);
    std::byte* at = p + done * sizeof(Sample);
    std::memcpy(chunk, at, n * sizeof(Sample));
    for (uint64_t i = 0; i < n; ++i) chunk[i] = static_cast<Sample>(static_cast<Wide>(chunk[i]) * gain / Wide{100});
    std::memcpy(at, chunk, n * sizeof(Sample));
  }
}

}  // namespace

// One stream's volatile state (what the registers were latched into).
struct SoundCard::Stream {
  int index = 0;
  SoundStreamRegs* regs = nullptr;  // inside the region
  SoundStreamState state = SoundStreamState::kStopped;
  AudioFormat format;
  uint32_t frame_bytes = 0;
  uint32_t period_frames = 0;
  uint64_t buffer_offset = 0;  // pool-relative
  uint64_t buffer_frames = 0;
  int64_t start_ns = 0;
  uint64_t period_index = 0;  // periods completed since start
  uint64_t hw_ptr = 0;
  uint64_t xruns = 0;
  uint64_t xrun_frames = 0;
  bool in_xrun = false;
  uint64_t lost_upto = 0;                  // capture: frames before this were counted as lost
  std::optional<int64_t> clock_origin_ns;  // first start since Create(); survives Reset()
  // Playback: the period being played, copied out of the ring at its start.
  std::vector<std::byte> period_buf;
  uint64_t fetched = 0;  // frames of period_buf taken from the ring (or passed: see holes)
  // Frames of the period the DAC had passed before the driver wrote them:
  // silence inside [0, fetched), played as an underrun.
  std::vector<std::pair<uint64_t, uint64_t>> holes;
  bool final_period = false;  // draining: period_buf holds the last frames

  bool running() const { return state != SoundStreamState::kStopped; }
  std::byte* slot(std::byte* dma, uint64_t frame) const {
    return dma + buffer_offset + (frame % buffer_frames) * frame_bytes;
  }
};

Result<std::unique_ptr<SoundCard>> SoundCard::Create(SoundCardOptions options) {
  if (options.dma_size == 0 || options.dma_size > (uint64_t{1} << 32))
    return Fail(Errc::kInvalidArgument, "sound card: dma_size must be in 1..4 GiB");
  if (options.clock == ClockMode::kRealTime && !(options.speed > 0 && std::isfinite(options.speed)))
    return Fail(Errc::kInvalidArgument, "sound card: speed must be a positive number");
  auto mem = UMBRA_TRY(
      DeviceMemory::Create(options.name + "-regs-dma", kSoundRegistersSize, kSoundRegistersSize, options.dma_size));
  auto wake = UMBRA_TRY(ipc::EventFd::Create());
  int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer < 0) return FailErrno("sound card: timerfd_create");
  std::unique_ptr<SoundCard> card(new SoundCard(std::move(options), std::move(mem), std::move(wake), UniqueFd(timer)));
  std::lock_guard lock(card->mu_);
  card->PowerOn();
  return card;
}

SoundCard::SoundCard(SoundCardOptions options, DeviceMemory mem, ipc::EventFd wake, UniqueFd timer)
    : options_(std::move(options)), mem_(std::move(mem)), regs_(new (mem_.region->data()) SoundRegs()),
      wake_(std::move(wake)), timer_(std::move(timer)) {
  for (int i = 0; i < 2; ++i) {
    auto s = std::make_unique<Stream>();
    s->index = i;
    s->regs = &regs_->streams[i];
    streams_.push_back(std::move(s));
  }
}

SoundCard::~SoundCard() { Stop(); }

Resources SoundCard::resources() const { return mem_.resources(); }

void SoundCard::Start() {
  if (options_.clock == ClockMode::kManual || thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    real_base_ns_ = MonotonicNanos();
    running_ = true;
  }
  stop_.store(false);
  thread_ = std::thread([this] { Loop(); });
}

void SoundCard::Stop() {
  if (thread_.joinable()) {
    stop_.store(true);
    wake_.Signal();
    thread_.join();
    std::lock_guard lock(mu_);
    virtual_ns_ = VirtualNowLocked();  // the clock stands still until the next Start()
    running_ = false;
  }
  FlushBackends();
}

void SoundCard::Reset() {
  std::lock_guard lock(mu_);
  const int64_t now = VirtualNowLocked();
  RunUntil(now);  // periods that ended before the reset were played whole
  for (auto& s : streams_) CutPlayback(*s, now);
  PowerOn();
  regs_->control.store(0, std::memory_order_release);
}

void SoundCard::FlushBackends() {
  std::lock_guard lock(mu_);
  if (options_.speaker) options_.speaker->Flush();
}

int64_t SoundCard::now_ns() const {
  std::lock_guard lock(mu_);
  return VirtualNowLocked();
}

Result<void> SoundCard::Advance(uint64_t periods) {
  if (options_.clock != ClockMode::kManual) return Fail(Errc::kInvalidArgument, "sound card: Advance needs kManual");
  std::lock_guard lock(mu_);
  TakeCommands(virtual_ns_);
  const Stream* ref = nullptr;
  for (const auto& s : streams_)
    if (!ref && s->running()) ref = s.get();
  if (!ref || periods == 0) return {};
  int64_t target = ref->start_ns + FramesToNanos((ref->period_index + periods) * ref->period_frames, ref->format.rate);
  virtual_ns_ = std::max(virtual_ns_, target);
  RunUntil(virtual_ns_);
  return {};
}

Result<void> SoundCard::AdvanceTime(int64_t ns) {
  if (options_.clock != ClockMode::kManual)
    return Fail(Errc::kInvalidArgument, "sound card: AdvanceTime needs kManual");
  if (ns < 0) return Fail(Errc::kInvalidArgument, "sound card: time does not run backwards");
  std::lock_guard lock(mu_);
  TakeCommands(virtual_ns_);
  virtual_ns_ += ns;
  RunUntil(virtual_ns_);
  return {};
}

// ---------------------------------------------------------------------------
// The hardware thread.

void SoundCard::Loop() {
  while (!stop_.load(std::memory_order_acquire)) {
    int64_t deadline = -1;
    bool took_commands = false;
    {
      std::lock_guard lock(mu_);
      took_commands = Tick(VirtualNowLocked());
      int64_t next = -1;
      for (const auto& s : streams_) {
        if (!s->running()) continue;
        int64_t b = NextBoundary(*s);
        if (next < 0 || b < next) next = b;
      }
      if (next >= 0) deadline = RealDeadline(next);
    }
    WaitForWork(deadline, took_commands);
  }
}

bool SoundCard::PendingCommands() const {
  if (regs_->control.load(std::memory_order_relaxed) != 0) return true;
  for (const auto& s : streams_)
    if (s->regs->command.load(std::memory_order_relaxed) != 0) return true;
  return false;
}

void SoundCard::WaitForWork(int64_t deadline_ns, bool spin) {
  // Commands tend to come in bursts (configure, start, drain): after taking
  // one, poll the registers briefly before paying for a blocking wait. A
  // wake-up for a period alone goes straight back to sleep.
  Spin poll(spin ? kSpinNanos : 0);
  do {
    if (PendingCommands() || stop_.load(std::memory_order_relaxed)) return;
  } while (poll.Again());
  itimerspec spec{};
  if (deadline_ns >= 0) {
    spec.it_value.tv_sec = deadline_ns / kNanosPerSecond;
    spec.it_value.tv_nsec = deadline_ns % kNanosPerSecond;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  }
  // Absolute deadlines: a late wake-up never delays the periods after it.
  timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
  pollfd fds[3] = {{mem_.doorbell.fd(), POLLIN, 0}, {timer_.get(), POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
  if (::poll(fds, 3, -1) <= 0) return;  // EINTR: the loop re-evaluates
  if (fds[0].revents) mem_.doorbell.Drain();
  if (fds[1].revents) {
    uint64_t expirations;
    [[maybe_unused]] ssize_t n = ::read(timer_.get(), &expirations, sizeof expirations);
  }
  if (fds[2].revents) wake_.Drain();
}

int64_t SoundCard::VirtualNowLocked() const {
  if (options_.clock == ClockMode::kManual || !running_) return virtual_ns_;
  double elapsed = static_cast<double>(MonotonicNanos() - real_base_ns_) * options_.speed;
  return virtual_ns_ + static_cast<int64_t>(elapsed);
}

int64_t SoundCard::RealDeadline(int64_t virtual_ns) const {
  double real = static_cast<double>(virtual_ns - virtual_ns_) / options_.speed;
  return real_base_ns_ + static_cast<int64_t>(std::ceil(real)) + 1;
}

// ---------------------------------------------------------------------------
// The device model (under mu_).

bool SoundCard::Tick(int64_t now) {
  // Periods that ended before the commands were noticed come first.
  RunUntil(now);
  return TakeCommands(now);
}

bool SoundCard::TakeCommands(int64_t now) {
  bool took = TakeControl(now);
  for (auto& s : streams_) took |= TakeCommand(*s, now);
  for (auto& s : streams_) TopUpPlayback(*s, now);
  return took;
}

// The DAC reads a frame of the period in progress when it plays it: frames
// the driver wrote since the period was fetched are played if the DAC has not
// reached them yet; those it has passed stay silent (an underrun).
void SoundCard::TopUpPlayback(Stream& s, int64_t now) {
  if (s.index != static_cast<int>(SoundStream::kPlayback) || s.state != SoundStreamState::kRunning ||
      s.fetched >= s.period_frames) {
    return;
  }
  const uint64_t appl = s.regs->appl_ptr.load(std::memory_order_acquire);
  if (appl <= s.hw_ptr + s.fetched || appl > s.hw_ptr + s.buffer_frames) return;  // nothing new, or refused later
  const int64_t period_start = s.start_ns + FramesToNanos(s.period_index * s.period_frames, s.format.rate);
  const uint64_t passed = std::min<uint64_t>(NanosToFrames(now - period_start, s.format.rate), s.period_frames);
  const uint64_t end = std::min<uint64_t>(appl - s.hw_ptr, s.period_frames);
  const uint64_t first = std::max(s.fetched, passed);
  if (end <= first) return;
  if (first > s.fetched) {
    std::memset(s.period_buf.data() + s.fetched * s.frame_bytes, 0, (first - s.fetched) * s.frame_bytes);
    s.holes.emplace_back(s.fetched, first);
  }
  std::memcpy(s.period_buf.data() + first * s.frame_bytes, s.slot(dma(), s.hw_ptr + first),
              (end - first) * s.frame_bytes);
  s.fetched = end;
}

// Hands frames [0, upto) of the period to the speaker: played frames, and
// the holes in them as underruns. Returns the frames of holes.
uint64_t SoundCard::EmitPeriod(Stream& s, uint64_t upto) {
  uint64_t at = 0, silent = 0;
  for (const auto& [first, end] : s.holes) {
    if (first >= upto) break;
    if (first > at)
      options_.speaker->Play(std::span(s.period_buf).subspan(at * s.frame_bytes, (first - at) * s.frame_bytes));
    const uint64_t hole_end = std::min(end, upto);
    options_.speaker->Underrun(hole_end - first);
    silent += hole_end - first;
    at = hole_end;
  }
  if (upto > at)
    options_.speaker->Play(std::span(s.period_buf).subspan(at * s.frame_bytes, (upto - at) * s.frame_bytes));
  s.holes.clear();
  return silent;
}

bool SoundCard::TakeControl(int64_t now) {
  uint32_t control = regs_->control.load(std::memory_order_acquire);
  if (control == 0) return false;
  if (control & ~kControlReset) Refuse(SoundError::kBadControl, -1, control);
  if (control & kControlReset) {
    for (auto& s : streams_) CutPlayback(*s, now);
    PowerOn();
  }
  // Cleared when done, not when seen: a driver that waits for the reset bit
  // to clear and then unmasks interrupts must not be overwritten by PowerOn.
  regs_->control.store(0, std::memory_order_release);
  return true;
}

bool SoundCard::TakeCommand(Stream& s, int64_t now) {
  uint32_t command = s.regs->command.exchange(0, std::memory_order_acq_rel);
  if (command != 0) ExecuteCommand(s, command, now);
  return command != 0;
}

void SoundCard::ExecuteCommand(Stream& s, uint32_t command, int64_t now) {
  switch (command) {
    case static_cast<uint32_t>(SoundCommand::kNone): return;
    case static_cast<uint32_t>(SoundCommand::kStart):
      if (!s.running()) StartStream(s, now);
      return;
    case static_cast<uint32_t>(SoundCommand::kStop):
      if (s.running()) {
        CutPlayback(s, now);
        StopStream(s);
      }
      return;
    case static_cast<uint32_t>(SoundCommand::kDrain):
      if (!s.running()) return;
      if (s.index == static_cast<int>(SoundStream::kCapture)) return StopStream(s);
      BeginDrain(s);
      return;
  }
  Refuse(SoundError::kBadCommand, s.index, command);
  if (s.running()) StopStream(s);
}

bool SoundCard::LatchConfig(Stream& s) {
  // Each register is read once; only the copies are used.
  uint32_t rate = s.regs->rate.load(std::memory_order_acquire);
  uint32_t channels = s.regs->channels.load(std::memory_order_relaxed);
  uint32_t format = s.regs->format.load(std::memory_order_relaxed);
  uint32_t period_frames = s.regs->period_frames.load(std::memory_order_relaxed);
  uint32_t periods = s.regs->periods.load(std::memory_order_relaxed);
  uint64_t offset = s.regs->buffer_offset.load(std::memory_order_relaxed);
  if (!SoundRateSupported(rate)) return Refuse(SoundError::kBadRate, s.index, rate), false;
  if (channels < 1 || channels > kSoundMaxChannels) return Refuse(SoundError::kBadChannels, s.index, channels), false;
  uint32_t sample_bytes = SoundSampleBytes(format);
  if (sample_bytes == 0) return Refuse(SoundError::kBadFormat, s.index, format), false;
  if (period_frames < kSoundMinPeriodFrames || period_frames > kSoundMaxPeriodFrames)
    return Refuse(SoundError::kBadPeriodFrames, s.index, period_frames), false;
  if (periods < kSoundMinPeriods || periods > kSoundMaxPeriods)
    return Refuse(SoundError::kBadPeriods, s.index, periods), false;
  if (offset % kSoundBufferAlign != 0) return Refuse(SoundError::kBufferMisaligned, s.index, offset), false;
  uint64_t frame_bytes = uint64_t{sample_bytes} * channels;
  uint64_t bytes = uint64_t{period_frames} * periods * frame_bytes;  // < 2^37, no overflow
  if (offset > options_.dma_size || bytes > options_.dma_size - offset)
    return Refuse(SoundError::kBufferOutsidePool, s.index, offset), false;
  s.format = AudioFormat{rate, channels, static_cast<SoundFormat>(format)};
  s.frame_bytes = static_cast<uint32_t>(frame_bytes);
  s.period_frames = period_frames;
  s.buffer_offset = offset;
  s.buffer_frames = uint64_t{period_frames} * periods;
  return true;
}

void SoundCard::BeginDrain(Stream& s) {
  // Playback keeps running until appl_ptr; a short period in flight becomes
  // the last one, topped up with what the driver wrote since it was fetched.
  s.state = SoundStreamState::kDraining;
  s.regs->state.store(static_cast<uint32_t>(s.state), std::memory_order_release);
  if (s.fetched < s.period_frames) FetchPlayback(s);
}

void SoundCard::StartStream(Stream& s, int64_t now) {
  if (!LatchConfig(s)) return;
  s.state = SoundStreamState::kRunning;
  s.start_ns = now;
  s.period_index = 0;
  s.hw_ptr = 0;
  s.xruns = s.xrun_frames = 0;
  s.in_xrun = false;
  s.lost_upto = 0;
  s.fetched = 0;
  s.holes.clear();
  s.final_period = false;
  if (!s.clock_origin_ns) s.clock_origin_ns = now;
  uint64_t start_frame = NanosToFrames(now - *s.clock_origin_ns, s.format.rate);
  SoundStreamRegs& r = *s.regs;
  r.error.store(0, std::memory_order_relaxed);
  r.hw_ptr.store(0, std::memory_order_relaxed);
  r.xruns.store(0, std::memory_order_relaxed);
  r.xrun_frames.store(0, std::memory_order_relaxed);
  r.periods_done.store(0, std::memory_order_relaxed);
  r.start_frame.store(start_frame, std::memory_order_relaxed);
  r.state.store(static_cast<uint32_t>(s.state), std::memory_order_release);
  if (s.index == static_cast<int>(SoundStream::kCapture)) {
    if (options_.microphone) options_.microphone->Begin(s.format, start_frame);
    return;
  }
  s.period_buf.resize(uint64_t{s.period_frames} * s.frame_bytes);
  if (options_.speaker) options_.speaker->Begin(s.format, start_frame);
  FetchPlayback(s);
}

void SoundCard::CutPlayback(Stream& s, int64_t now) {
  if (s.index != static_cast<int>(SoundStream::kPlayback) || !s.running() || s.fetched == 0) return;
  const int64_t period_start = s.start_ns + FramesToNanos(s.period_index * s.period_frames, s.format.rate);
  const uint64_t played = std::min<uint64_t>(s.fetched, NanosToFrames(now - period_start, s.format.rate));
  if (played > 0 && options_.speaker) {
    ReadVolume();
    ApplyVolume(s, played);
    EmitPeriod(s, played);
  }
  s.holes.clear();
  s.fetched = 0;
}

void SoundCard::StopStream(Stream& s) {
  s.state = SoundStreamState::kStopped;
  s.regs->state.store(static_cast<uint32_t>(s.state), std::memory_order_release);
}

int64_t SoundCard::NextBoundary(const Stream& s) const {
  return s.start_ns + FramesToNanos((s.period_index + 1) * s.period_frames, s.format.rate);
}

void SoundCard::RunUntil(int64_t now) {
  for (;;) {
    Stream* next = nullptr;
    int64_t when = 0;
    for (auto& s : streams_) {
      if (!s->running()) continue;
      int64_t b = NextBoundary(*s);
      if (!next || b < when) next = s.get(), when = b;
    }
    if (!next || when > now) return;
    if (next->index == static_cast<int>(SoundStream::kPlayback)) {
      CompletePlayback(*next);
    } else {
      CompleteCapture(*next);
    }
  }
}

void SoundCard::FetchPlayback(Stream& s) {
  uint64_t appl = s.regs->appl_ptr.load(std::memory_order_acquire);
  if (appl > s.hw_ptr + s.buffer_frames) {
    Refuse(SoundError::kBadApplPtr, s.index, appl);
    StopStream(s);
    Raise(kIntStopped);
    return;
  }
  uint64_t avail = appl > s.hw_ptr ? appl - s.hw_ptr : 0;
  uint64_t want = std::min<uint64_t>(avail, s.period_frames);
  // hw_ptr is a multiple of the period while running: a period never wraps.
  if (want > s.fetched)
    std::memcpy(s.period_buf.data() + s.fetched * s.frame_bytes, s.slot(dma(), s.hw_ptr + s.fetched),
                (want - s.fetched) * s.frame_bytes);
  s.fetched = std::max(s.fetched, want);
  s.final_period = s.state == SoundStreamState::kDraining && avail <= s.period_frames;
}

void SoundCard::CompletePlayback(Stream& s) {
  ReadVolume();
  ApplyVolume(s, s.fetched);
  uint32_t bits = kIntPlaybackPeriod;
  uint64_t played = s.final_period ? s.fetched : s.period_frames;
  uint64_t missing = played - s.fetched;
  // Underrun episodes: silent runs (holes, the missing tail) separated by
  // played frames; one that goes on from the previous period is not new.
  bool episode = s.in_xrun;
  uint64_t at = 0;
  for (const auto& [first, end] : s.holes) {
    if (first > at) episode = false;
    if (!episode) ++s.xruns;
    episode = true;
    s.xrun_frames += end - first;
    bits |= kIntUnderrun;
    at = end;
  }
  if (s.fetched > at) episode = false;
  if (options_.speaker && s.fetched) EmitPeriod(s, s.fetched);
  s.holes.clear();
  if (missing) {
    if (options_.speaker) options_.speaker->Underrun(missing);
    s.xrun_frames += missing;
    if (!episode) ++s.xruns;
    episode = true;
    bits |= kIntUnderrun;
  }
  s.in_xrun = episode;
  s.hw_ptr += played;
  ++s.period_index;
  SoundStreamRegs& r = *s.regs;
  r.xruns.store(s.xruns, std::memory_order_relaxed);
  r.xrun_frames.store(s.xrun_frames, std::memory_order_relaxed);
  r.periods_done.store(s.period_index, std::memory_order_relaxed);
  r.state.store(static_cast<uint32_t>(s.state), std::memory_order_relaxed);
  r.hw_ptr.store(s.hw_ptr, std::memory_order_release);
  s.fetched = 0;
  if (s.final_period) {
    StopStream(s);
    bits |= kIntStopped;
  } else if (s.state == SoundStreamState::kDraining && s.regs->appl_ptr.load(std::memory_order_acquire) == s.hw_ptr) {
    StopStream(s);  // drained exactly on a period boundary
    bits |= kIntStopped;
  } else {
    FetchPlayback(s);
  }
  Raise(bits);
}

void SoundCard::CompleteCapture(Stream& s) {
  uint64_t appl = s.regs->appl_ptr.load(std::memory_order_acquire);
  if (appl > s.hw_ptr) {
    Refuse(SoundError::kBadApplPtr, s.index, appl);
    StopStream(s);
    Raise(kIntStopped);
    return;
  }
  std::span<std::byte> period(s.slot(dma(), s.hw_ptr), uint64_t{s.period_frames} * s.frame_bytes);
  if (options_.microphone) {
    options_.microphone->Read(period);
  } else {
    std::memset(period.data(), 0, period.size());
  }
  s.hw_ptr += s.period_frames;
  ++s.period_index;
  uint32_t bits = kIntCapturePeriod;
  // Frames before hw_ptr - buffer_frames were overwritten; count those the
  // driver had not consumed yet.
  uint64_t overwritten = s.hw_ptr > s.buffer_frames ? s.hw_ptr - s.buffer_frames : 0;
  uint64_t lost_from = std::max(appl, s.lost_upto);
  uint64_t lost = overwritten > lost_from ? overwritten - lost_from : 0;
  if (lost) {
    s.xrun_frames += lost;
    s.lost_upto = overwritten;
    if (!s.in_xrun) ++s.xruns;
    bits |= kIntOverrun;
  }
  s.in_xrun = lost != 0;
  SoundStreamRegs& r = *s.regs;
  r.xruns.store(s.xruns, std::memory_order_relaxed);
  r.xrun_frames.store(s.xrun_frames, std::memory_order_relaxed);
  r.periods_done.store(s.period_index, std::memory_order_relaxed);
  r.state.store(static_cast<uint32_t>(s.state), std::memory_order_relaxed);
  r.hw_ptr.store(s.hw_ptr, std::memory_order_release);
  Raise(bits);
}

void SoundCard::ReadVolume() {
  uint32_t volume = regs_->volume.load(std::memory_order_relaxed);
  uint32_t mute = regs_->mute.load(std::memory_order_relaxed);
  if (volume > kSoundMaxVolume) {
    if (volume != refused_volume_) Refuse(SoundError::kBadVolume, -1, volume);
    refused_volume_ = volume;
  } else {
    volume_ = volume;
    refused_volume_ = 0;
  }
  if (mute > 1) {
    if (mute != refused_mute_) Refuse(SoundError::kBadVolume, -1, mute);
    refused_mute_ = mute;
  } else {
    mute_ = mute == 1;
    refused_mute_ = 0;
  }
}

void SoundCard::ApplyVolume(Stream& s, uint64_t frames) {
  std::byte* p = s.period_buf.data();
  uint64_t samples = frames * s.format.channels;
  if (mute_) {
    std::memset(p, 0, frames * s.frame_bytes);
    return;
  }
  if (volume_ == kSoundMaxVolume) return;
  switch (s.format.format) {
    case SoundFormat::kS16Le: return ScaleSamples<int16_t, int32_t>(p, samples, volume_);
    case SoundFormat::kS32Le: return ScaleSamples<int32_t, int64_t>(p, samples, volume_);
    case SoundFormat::kFloatLe: return ScaleSamples<float, float>(p, samples, volume_);
  }
}

void SoundCard::Raise(uint32_t bits) {
  uint32_t before = regs_->int_cause.fetch_or(bits, std::memory_order_acq_rel);
  uint32_t mask = regs_->int_mask.load(std::memory_order_acquire);
  // Event suppression: a cause already pending has already been signalled.
  if (bits & ~before & ~mask) mem_.interrupt.Signal();
}

void SoundCard::Refuse(SoundError error, int stream, uint64_t value) {
  uint64_t count = faults_.fetch_add(1, std::memory_order_relaxed) + 1;
  regs_->faults.store(count, std::memory_order_relaxed);
  if (stream >= 0) {
    streams_[stream]->regs->error.store(static_cast<uint32_t>(error), std::memory_order_relaxed);
  } else {
    regs_->fault_code.store(static_cast<uint32_t>(error), std::memory_order_relaxed);
  }
  Raise(kIntFault);
  if (options_.on_fault) options_.on_fault(SoundFault{error, stream, value});
}

void SoundCard::PowerOn() {
  for (auto& s : streams_) {
    s->state = SoundStreamState::kStopped;
    s->fetched = 0;
    s->holes.clear();
    s->final_period = false;
    SoundStreamRegs& r = *s->regs;
    r.command.store(0, std::memory_order_relaxed);
    r.state.store(0, std::memory_order_relaxed);
    r.error.store(0, std::memory_order_relaxed);
    r.rate.store(0, std::memory_order_relaxed);
    r.channels.store(0, std::memory_order_relaxed);
    r.format.store(0, std::memory_order_relaxed);
    r.period_frames.store(0, std::memory_order_relaxed);
    r.periods.store(0, std::memory_order_relaxed);
    r.buffer_offset.store(0, std::memory_order_relaxed);
    r.hw_ptr.store(0, std::memory_order_relaxed);
    r.appl_ptr.store(0, std::memory_order_relaxed);
    r.xruns.store(0, std::memory_order_relaxed);
    r.xrun_frames.store(0, std::memory_order_relaxed);
    r.start_frame.store(0, std::memory_order_relaxed);
    r.periods_done.store(0, std::memory_order_relaxed);
  }
  volume_ = kSoundMaxVolume;
  mute_ = false;
  refused_volume_ = refused_mute_ = 0;
  regs_->magic.store(kSoundMagic, std::memory_order_relaxed);
  regs_->version.store(kSoundVersion, std::memory_order_relaxed);
  regs_->int_mask.store(kIntAll, std::memory_order_relaxed);
  regs_->int_cause.store(0, std::memory_order_relaxed);
  regs_->volume.store(kSoundMaxVolume, std::memory_order_relaxed);
  regs_->mute.store(0, std::memory_order_relaxed);
  regs_->fault_code.store(0, std::memory_order_relaxed);
  regs_->dma_size.store(options_.dma_size, std::memory_order_relaxed);
  regs_->faults.store(faults_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  regs_->doorbell.store(0, std::memory_order_release);
  mem_.interrupt.Drain();
}

}  // namespace umbra::hw::sound
