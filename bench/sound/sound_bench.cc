// bench/sound: the audio gap a driver crash leaves, per fault type, and the
// playback CPU cost of the sound class.
//
//   BM_AudioGap/sig:<signal>/standby:<0|1>: a generated multi-tone signal
//   (48 kHz stereo S16, 5 ms periods, 8 periods in the ring) is played
//   through the sound shadow while the driver is killed every 100-150 ms of
//   real time (so that a warm standby, spawned 50 ms after a recovery, is
//   ready), `--crashes` times (default 100, env UMBRA_SOUND_BENCH_CRASHES),
//   with DriverHostOptions::warm_standby off or on. Afterwards the speaker's
//   WAV is compared with the signal (CompareAudio); each kill is matched with
//   the first gap that ends after the clock frame at which it was sent, and
//   with the first recovery record detected after it. Counters: median and
//   p99 gap in frames and in ms of audio time; `unclean`
//   (shifted/repeated/corrupted runs: must be 0); `restarts_under_1ms`
//   (a standby, mostly); and the median real time of each recovery
//   phase: ph_detect (kill → detected), ph_restart (→ new driver probed:
//   isolate, quiesce, spawn or standby, handshake, probe), ph_replay,
//   ph_reopen (open, hw_params, prepare, start on the card), ph_resubmit,
//   ph_passive, ph_total (kill → serving), and the p99 of ph_restart and
//   ph_total. The card's clock runs at `speed`
//   x real time (env UMBRA_SOUND_BENCH_SPEED, default 1): at speed > 1 the
//   real-time parts of a gap are multiplied by it in audio time; gaps are
//   also given /speed.
//   SIGSTOP is a hang, caught by missed heartbeats (20 ms periods, ~40 ms).
//
//   BM_PlaybackCpu: one second of audio (card at 20x) played by the same
//   SoundDriver in-process (sdk::InProcessRunner, the caller's thread
//   services its interrupts) and isolated behind the sound shadow
//   (host + driver process CPU), interleaved; counters: CPU ms per second
//   of audio for each and the ratio shadowed / in-process.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <random>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "drivers/sdk/in_process.h"
#include "drivers/sound/sound_driver.h"
#include "runtime/hw/sound/wav_compare.h"
#include "protocols/sound/sound_protocol.h"
#include "tests/shadows/sound/sound_rig.h"

namespace umbra::sound {
namespace {

using namespace testing;
using hw::sound::AudioFormat;
using hw::sound::SoundFormat;

constexpr AudioFormat kFormat{48000, 2, SoundFormat::kS16Le};
constexpr PcmParams kParams{.rate = 48000, .channels = 2, .period_frames = 240, .periods = 8};

double EnvOr(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v ? std::atof(v) : fallback;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

// Where the time of one crash went (real nanoseconds), from the kill to the
// shadow serving again, split at the steps of the shadow's RecoveryRecord.
struct CrashPhases {
  double detect = 0;    // kill sent → the host noticed
  double restart = 0;   // noticed → new driver probed (isolate, quiesce, spawn or standby, handshake, probe)
  double replay = 0;    // probed → configuration replayed
  double reopen = 0;    // replayed → streams reopened and restarted on the card
  double resubmit = 0;  // reopened → kept frames resubmitted
  double passive = 0;   // resubmitted → serving
  double total = 0;     // kill sent → serving
};

struct GapRun {
  std::vector<double> gap_frames;   // audio gap per matched crash
  std::vector<CrashPhases> phases;  // per matched crash
  uint64_t unclean = 0;
  uint64_t fast_restarts = 0;  // recoveries whose restart phase took under 1 ms (a standby, mostly)
};

// Plays the signal while the driver is killed `crashes` times by `sig`, and
// matches each kill with its gap in the speaker's file and with its recovery
// record.
Result<GapRun> RunGap(int sig, bool standby, double speed, int crashes) {
  SoundRig rig;
  UMBRA_TRY(rig.Build({.speed = speed, .warm_standby = standby}));
  // Kills 100-150 ms apart, so that the warm standby (spawned 50 ms after a
  // recovery) is ready for the next one.
  const uint64_t frames = static_cast<uint64_t>(crashes * 0.2 * speed * kFormat.rate) + kFormat.rate;
  const auto signal = hw::sound::GenerateTestSignal(kFormat, frames);
  std::atomic<bool> done{false};
  std::vector<uint64_t> kill_frames;
  std::vector<int64_t> kill_ns;
  std::thread killer([&] {
    std::mt19937 rng(static_cast<uint32_t>(sig));
    const auto& regs = rig.card->registers()->streams[0];
    while (!done && regs.state.load() != static_cast<uint32_t>(hw::sound::SoundStreamState::kRunning)) usleep(1000);
    for (int i = 0; i < crashes && !done; ++i) {
      usleep(std::uniform_int_distribution<int>(100'000, 150'000)(rng));
      kill_frames.push_back(rig.PlaybackClockFrame());
      kill_ns.push_back(MonotonicNanos());
      if (!rig.KillAndRecover(sig)) break;
    }
    done = true;
  });
  Pcm& pcm = *rig.shadow;
  Result<void> played = pcm.OpenPlayback(kParams);
  const size_t step = 480 * kFormat.frame_bytes();
  for (size_t off = 0; played && off < signal.data.size() && !done; off += step) {
    auto r = pcm.Write(std::span<const std::byte>(signal.data).subspan(off, step));
    if (!r) played = Fail(r.error().code, "the player saw an error: " + r.error().ToString());
  }
  done = true;
  killer.join();
  UMBRA_TRY(played);
  (void)pcm.Drain();
  rig.card->FlushBackends();
  auto out = UMBRA_TRY(hw::sound::ReadWav(rig.speaker_path));
  auto report = UMBRA_TRY(hw::sound::CompareAudio(signal, out));
  const auto records = rig.shadow->recoveries();
  GapRun run;
  run.unclean = report.mismatches.size();
  size_t g = 0, k = 0;
  for (size_t i = 0; i < kill_frames.size(); ++i) {
    while (g < report.gaps.size() && report.gaps[g].end_frame <= kill_frames[i]) ++g;
    while (k < records.size() && records[k].detected_ns < kill_ns[i]) ++k;
    if (g == report.gaps.size() || k == records.size() || !records[k].succeeded) break;
    const auto& r = records[k];
    run.gap_frames.push_back(static_cast<double>(report.gaps[g].frames()));
    run.phases.push_back(CrashPhases{.detect = double(r.detected_ns - kill_ns[i]),
                                     .restart = double(r.restarted_ns - r.detected_ns),
                                     .replay = double(r.replayed_ns - r.restarted_ns),
                                     .reopen = double(r.reopened_ns - r.replayed_ns),
                                     .resubmit = double(r.resubmitted_ns - r.reopened_ns),
                                     .passive = double(r.passive_ns - r.resubmitted_ns),
                                     .total = double(r.passive_ns - kill_ns[i])});
    run.fast_restarts += r.restarted_ns - r.detected_ns < 1'000'000;
    ++g;
    ++k;
  }
  return run;
}

template <class F>
double PhaseMs(const std::vector<CrashPhases>& v, F field, double p = 0.5) {
  std::vector<double> x;
  for (const auto& c : v) x.push_back(c.*field);
  return Percentile(std::move(x), p) / 1e6;
}

// Args: signal, warm standby (0/1).
void BM_AudioGap(benchmark::State& state) {
  const int sig = static_cast<int>(state.range(0));
  const bool standby = state.range(1) != 0;
  const int crashes = static_cast<int>(EnvOr("UMBRA_SOUND_BENCH_CRASHES", 100));
  const double speed = EnvOr("UMBRA_SOUND_BENCH_SPEED", 1);
  for (auto _ : state) {
    auto run = RunGap(sig, standby, speed, crashes);
    if (!run) {
      state.SkipWithError(run.error().ToString().c_str());
      return;
    }
    const auto& gaps = run->gap_frames;
    const double median = Percentile(gaps, 0.5), p99 = Percentile(gaps, 0.99);
    state.counters["crashes"] = static_cast<double>(gaps.size());
    state.counters["restarts_under_1ms"] = static_cast<double>(run->fast_restarts);
    state.counters["median_frames"] = median;
    state.counters["p99_frames"] = p99;
    state.counters["median_ms"] = median * 1000 / kFormat.rate;
    state.counters["p99_ms"] = p99 * 1000 / kFormat.rate;
    state.counters["median_ms_div_speed"] = median * 1000 / kFormat.rate / speed;
    state.counters["p99_ms_div_speed"] = p99 * 1000 / kFormat.rate / speed;
    state.counters["speed"] = speed;
    state.counters["unclean"] = static_cast<double>(run->unclean);
    // Medians of the phases, real ms.
    state.counters["ph_detect_ms"] = PhaseMs(run->phases, &CrashPhases::detect);
    state.counters["ph_restart_ms"] = PhaseMs(run->phases, &CrashPhases::restart);
    state.counters["ph_replay_ms"] = PhaseMs(run->phases, &CrashPhases::replay);
    state.counters["ph_reopen_ms"] = PhaseMs(run->phases, &CrashPhases::reopen);
    state.counters["ph_resubmit_ms"] = PhaseMs(run->phases, &CrashPhases::resubmit);
    state.counters["ph_passive_ms"] = PhaseMs(run->phases, &CrashPhases::passive);
    state.counters["ph_total_ms"] = PhaseMs(run->phases, &CrashPhases::total);
    state.counters["ph_restart_p99_ms"] = PhaseMs(run->phases, &CrashPhases::restart, 0.99);
    state.counters["ph_total_p99_ms"] = PhaseMs(run->phases, &CrashPhases::total, 0.99);
  }
}
BENCHMARK(BM_AudioGap)
    ->ArgNames({"sig", "standby"})
    ->ArgsProduct({{SIGSEGV, SIGABRT, SIGKILL, SIGSTOP}, {0, 1}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---------------- CPU cost ----------------

int64_t SelfCpuNs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * kSec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1000;
}

int64_t ProcessCpuNs(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  return (utime + stime) * (kSec / sysconf(_SC_CLK_TCK));
}

constexpr double kCpuSpeed = 20;

// One second of audio through the driver linked into this process.
Result<int64_t> PlayInProcess(const std::vector<std::byte>& second) {
  hw::sound::SoundCardOptions co;
  co.clock = hw::sound::ClockMode::kRealTime;
  co.speed = kCpuSpeed;
  auto card = UMBRA_TRY(hw::sound::SoundCard::Create(std::move(co)));
  card->Start();
  const hw::Resources res = card->resources();
  sdk::InProcessRunner run(std::make_unique<drivers::SoundDriver>(),
                           {.pool_bytes = 1 << 20,
                            .hw = {reinterpret_cast<std::byte*>(card->registers()), hw::sound::kSoundRegistersSize,
                                   card->dma(), card->dma_size()},
                            .hw_doorbell_fd = res.doorbell_fd,
                            .hw_interrupt_fd = res.interrupt_fd});
  UMBRA_TRY(run.Probe());
  const SoundStreamBody pb{.stream = 0};
  UMBRA_TRY(run.Call(kOpen, Encode(pb)));
  UMBRA_TRY(run.Call(kHwParams, Encode(SoundHwParamsBody{0, 48000, 2, 1, kParams.period_frames, kParams.periods})));
  UMBRA_TRY(run.Call(kPrepare, Encode(pb)));
  const int64_t cpu0 = SelfCpuNs();
  const uint32_t chunk = kParams.period_frames * kFormat.frame_bytes();
  const uint64_t ring = uint64_t{kParams.period_frames} * kParams.periods;
  uint64_t submitted = 0, completed = 0, a = 0;
  bool started = false;
  for (size_t off = 0; off < second.size(); off += chunk) {
    const uint32_t slot = static_cast<uint32_t>((submitted % 16) * chunk);
    std::memcpy(run.pool() + slot, second.data() + off, chunk);
    run.Submit(ipc::Descriptor{
        .id = submitted, .op = kWrite, .flags = 0, .status = 0, .offset = slot, .length = chunk, .arg = a});
    ++submitted;
    a += kParams.period_frames;
    if (!started && a >= ring) {
      UMBRA_TRY(run.Call(kStart, Encode(SoundStartBody{.stream = 0})));
      started = true;
    }
    for (;;) {
      completed += run.completions().size();
      run.completions().clear();
      if (submitted - completed < 10) break;
      pollfd p{res.interrupt_fd, POLLIN, 0};
      ::poll(&p, 1, 100);
      run.PollInterrupt();
    }
  }
  const int64_t cpu = SelfCpuNs() - cpu0;
  card->Stop();
  return cpu;
}

// The same second through the sound shadow and the driver process.
Result<int64_t> PlayShadowed(const std::vector<std::byte>& second) {
  SoundRig rig;
  UMBRA_TRY(rig.Build({.speed = kCpuSpeed}));
  UMBRA_TRY(rig.shadow->OpenPlayback(kParams));
  const pid_t driver = rig.host->driver_pid();
  const int64_t cpu0 = SelfCpuNs() + ProcessCpuNs(driver);
  UMBRA_TRY(rig.shadow->Write(second));
  return SelfCpuNs() + ProcessCpuNs(driver) - cpu0;
}

void BM_PlaybackCpu(benchmark::State& state) {
  const auto second = hw::sound::GenerateTestSignal(kFormat, kFormat.rate).data;
  int64_t in_process = 0, shadowed = 0, rounds = 0;
  for (auto _ : state) {
    auto a = PlayInProcess(second);
    auto b = PlayShadowed(second);
    if (!a || !b) {
      state.SkipWithError((!a ? a.error() : b.error()).ToString().c_str());
      return;
    }
    in_process += *a;
    shadowed += *b;
    ++rounds;
  }
  state.counters["in_process_cpu_ms_per_audio_s"] = in_process / 1e6 / rounds;
  state.counters["shadowed_cpu_ms_per_audio_s"] = shadowed / 1e6 / rounds;
  state.counters["ratio_shadowed_vs_in_process"] = in_process ? double(shadowed) / double(in_process) : 0;
}
BENCHMARK(BM_PlaybackCpu)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace umbra::sound

BENCHMARK_MAIN();
