// CPU cost of the emulated sound card per second of audio played at 48 kHz,
// stereo, S16, 5 ms periods, as a ratio ("x_memcpy") against a plain memcpy
// of the same second of audio in 5 ms chunks, measured in the same run.
//
//   BM_Memcpy            the baseline: 200 x 960-byte copies out of a ring
//   BM_ManualNullSink    manual clock, no speaker: the card's own data path
//                        (copy-out, volume, pointers, interrupt bits)
//   BM_ManualSpeaker     manual clock, WAV speaker writing to /dev/null
//   BM_ManualVolume      as BM_ManualNullSink with the volume at 50%
//   BM_SpedUpSpeaker     the hardware thread at 50x real time, a driver
//                        thread woken by the period interrupt, WAV speaker to
//                        /dev/null; process CPU time (both threads)
//
// Each iteration is one second of audio; "cpu_ns_per_audio_s" is the CPU time
// it took.
#include <benchmark/benchmark.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "runtime/hw/sound/sound_card.h"
#include "runtime/hw/sound/wav_compare.h"
#include "runtime/hw/sound/wav_speaker.h"

namespace umbra::hw::sound {
namespace {

constexpr AudioFormat kFormat{48000, 2, SoundFormat::kS16Le};
constexpr uint32_t kPeriod = 240;
constexpr uint32_t kPeriods = 16;
constexpr uint32_t kPeriodsPerSecond = 200;

int64_t ProcessCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// CPU nanoseconds of the memcpy baseline for one second of audio, measured
// once per run (the best of several rounds).
double MemcpyNanosPerAudioSecond() {
  static const double nanos = [] {
    const size_t period_bytes = kPeriod * kFormat.frame_bytes();
    std::vector<std::byte> ring(period_bytes * kPeriods, std::byte{1});
    std::vector<std::byte> out(period_bytes);
    double best = 1e18;
    for (int round = 0; round < 50; ++round) {
      int64_t t0 = ThreadCpuNanos();
      for (int rep = 0; rep < 20; ++rep)
        for (uint32_t p = 0; p < kPeriodsPerSecond; ++p) {
          std::memcpy(out.data(), ring.data() + (p % kPeriods) * period_bytes, period_bytes);
          benchmark::DoNotOptimize(out.data());
          benchmark::ClobberMemory();
        }
      best = std::min(best, static_cast<double>(ThreadCpuNanos() - t0) / 20);
    }
    return best;
  }();
  return nanos;
}

void Report(benchmark::State& state, int64_t cpu_ns) {
  double per_second = static_cast<double>(cpu_ns) / static_cast<double>(state.iterations());
  state.counters["cpu_ns_per_audio_s"] = per_second;
  state.counters["x_memcpy"] = per_second / MemcpyNanosPerAudioSecond();
  state.counters["cpu_percent_at_1x"] = per_second / 1e7;
}

void BM_Memcpy(benchmark::State& state) {
  const size_t period_bytes = kPeriod * kFormat.frame_bytes();
  std::vector<std::byte> ring(period_bytes * kPeriods, std::byte{1});
  std::vector<std::byte> out(period_bytes);
  int64_t t0 = ThreadCpuNanos();
  for (auto _ : state) {
    for (uint32_t p = 0; p < kPeriodsPerSecond; ++p) {
      std::memcpy(out.data(), ring.data() + (p % kPeriods) * period_bytes, period_bytes);
      benchmark::DoNotOptimize(out.data());
      benchmark::ClobberMemory();
    }
  }
  Report(state, ThreadCpuNanos() - t0);
}
BENCHMARK(BM_Memcpy);

std::unique_ptr<SoundCard> MakeCard(ClockMode clock, double speed, bool speaker) {
  SoundCardOptions options;
  options.name = "bench";
  options.clock = clock;
  options.speed = speed;
  options.dma_size = 1 << 20;
  if (speaker) options.speaker = std::move(*WavSpeaker::Create({.path = "/dev/null"}));
  auto card = SoundCard::Create(std::move(options));
  if (!card) return nullptr;
  // The ring holds a test signal; the driver only moves appl_ptr.
  WavFile signal = GenerateTestSignal(kFormat, kPeriod * kPeriods);
  std::memcpy((*card)->dma(), signal.data.data(), signal.data.size());
  SoundStreamRegs& r = (*card)->registers()->streams[0];
  r.rate = kFormat.rate;
  r.channels = kFormat.channels;
  r.format = static_cast<uint32_t>(kFormat.format);
  r.period_frames = kPeriod;
  r.periods = kPeriods;
  r.buffer_offset = 0;
  r.appl_ptr = kPeriod * kPeriods;
  return std::move(*card);
}

void RunManual(benchmark::State& state, bool speaker, uint32_t volume) {
  auto card = MakeCard(ClockMode::kManual, 1.0, speaker);
  if (!card) return state.SkipWithError("card");
  SoundRegs* regs = card->registers();
  SoundStreamRegs& r = regs->streams[0];
  regs->volume = volume;
  r.command = static_cast<uint32_t>(SoundCommand::kStart);
  (void)card->Advance(0);
  int64_t t0 = ThreadCpuNanos();
  for (auto _ : state) {
    for (uint32_t p = 0; p < kPeriodsPerSecond; ++p) {
      (void)card->Advance(1);
      r.appl_ptr.store(r.hw_ptr.load(std::memory_order_acquire) + kPeriod * kPeriods, std::memory_order_release);
    }
  }
  Report(state, ThreadCpuNanos() - t0);
  if (r.xruns.load() != 0) state.SkipWithError("underrun");
}

void BM_ManualNullSink(benchmark::State& state) { RunManual(state, false, 100); }
BENCHMARK(BM_ManualNullSink);

void BM_ManualSpeaker(benchmark::State& state) { RunManual(state, true, 100); }
BENCHMARK(BM_ManualSpeaker);

void BM_ManualVolume(benchmark::State& state) { RunManual(state, false, 50); }
BENCHMARK(BM_ManualVolume);

void BM_SpedUpSpeaker(benchmark::State& state) {
  const double kSpeed = 50.0;
  auto card = MakeCard(ClockMode::kRealTime, kSpeed, true);
  if (!card) return state.SkipWithError("card");
  SoundRegs* regs = card->registers();
  SoundStreamRegs& r = regs->streams[0];
  int interrupt_fd = card->resources().interrupt_fd;
  regs->int_mask = kIntAll & ~kIntPlaybackPeriod;
  card->Start();
  r.command = static_cast<uint32_t>(SoundCommand::kStart);
  regs->doorbell.fetch_add(1);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(card->resources().doorbell_fd, &one, sizeof one);
  uint64_t target = 0;
  int64_t t0 = ProcessCpuNanos();
  for (auto _ : state) {
    target += uint64_t{kPeriod} * kPeriodsPerSecond;
    while (r.hw_ptr.load(std::memory_order_acquire) < target) {
      pollfd pfd{interrupt_fd, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      uint64_t v;
      [[maybe_unused]] ssize_t m = ::read(interrupt_fd, &v, sizeof v);
      regs->int_cause.exchange(0);
      r.appl_ptr.store(r.hw_ptr.load(std::memory_order_acquire) + kPeriod * kPeriods, std::memory_order_release);
    }
  }
  Report(state, ProcessCpuNanos() - t0);
  card->Stop();
  state.counters["underruns"] = static_cast<double>(r.xruns.load());
}
BENCHMARK(BM_SpedUpSpeaker)->Iterations(20)->UseRealTime();

}  // namespace
}  // namespace umbra::hw::sound

BENCHMARK_MAIN();
