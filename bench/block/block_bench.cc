// bench/block: IOPS and throughput through the block class in four modes in
// one run, and the recovery gap a client sees.
//
//   BM_RandRead4k/<mode>/<depth>, BM_RandWrite4k/<mode>/<depth>: 4 KiB random
//     I/O over a 256 MiB disk at queue depth 1 and 32 (write cache on).
//   BM_SeqRead1M/<mode>, BM_SeqWrite1M/<mode>: 1 MiB sequential at depth 4.
//   BM_CompareRandRead4k/32, BM_CompareRandWrite4k/32: the four modes at
//     depth 32 in turns of at least 20 ms within one benchmark; counters give
//     each mode's ops/s and its ratio to in-process (the figure to quote: the
//     separate cases above run 0.5 s each, one after the other, and swing
//     with whatever else the machine does meanwhile), and where each mode's
//     CPU went: <mode>_client_us, _driver_us and _device_us (CPU µs per
//     operation of the client thread, the driver process and the disk's
//     hardware thread; in-process the client thread also runs the driver)
//     and <mode>_cpus (CPUs its turns kept busy; the rest idled).
//     mode 0 in-process   — DiskDriver linked into the host (sdk::InProcessRunner)
//     mode 1 isolated     — driver process, DriverHost::Submit directly, no shadow
//     mode 2 shadowed     — block::Disk of the block shadow (passive)
//     mode 3 restart-only — the same shadow in RecoveryMode::kRestartOnly
//   Every case reports `vs_inproc`: its ops/s divided by mode 0's in the same run.
//   BM_RecoveryGap/sig:<signal>/standby:<0|1>: a depth-1 random read/write
//     client on a shadowed disk (with or without a warm standby) while the
//     driver is killed 100 times (env UMBRA_BLOCK_BENCH_CRASHES); per crash,
//     the longest a request waited because of it, median and p99 (µs), the
//     median of each recovery phase (ph_*_us), the p99 of the restart and of
//     kill → passive, and `restarts_under_1ms` (a standby, mostly).
//
// All modes drive the same emulated disk model, so the device's own cost is
// common to all of them. The disk destages its write cache in idle time, as
// disks do (DiskOptions::idle_writeback). In the IOPS cases its hardware
// thread stands for hardware, which has a processor of its own: it runs on
// the last CPU this process may use, and the client, the supervisor and the
// driver processes (which inherit the mask) on the others; every mode runs
// the same way. UMBRA_BENCH_PIN=0 lets the scheduler place them all. The
// recovery-gap cases are never pinned.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "drivers/disk/disk_driver.h"
#include "drivers/sdk/in_process.h"
#include "base/clock.h"
#include "base/spin.h"
#include "runtime/hw/disk/disk_device.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/block/block_shadow.h"

namespace umbra::shadows::block {
namespace {

namespace hwd = hw::disk;
namespace proto = umbra::block;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr uint64_t kCapacity = 1 << 16;  // 256 MiB of 4 KiB blocks
constexpr uint32_t kBs = 4096;
constexpr uint32_t kMaxInFlight = 32;
constexpr uint32_t kSlotBytes = 1 << 20;

const char* const kModeNames[] = {"in-process", "isolated", "shadowed", "restart-only"};

// Where the disks' hardware threads run and where everything else may, for
// the IOPS cases (see the file comment): the last CPU this process may use
// for the hardware, the others for the rest. Decided once, from main before
// any thread starts; hw = -1 when not pinned (UMBRA_BENCH_PIN=0, or a single
// CPU).
struct CpuPlan {
  cpu_set_t all;     // what the process may use
  cpu_set_t client;  // all but hw
  int hw = -1;
};
const CpuPlan& Cpus() {
  static const CpuPlan plan = [] {
    CpuPlan p;
    CPU_ZERO(&p.all);
    if (sched_getaffinity(0, sizeof p.all, &p.all) != 0) return p;
    p.client = p.all;
    const char* pin = std::getenv("UMBRA_BENCH_PIN");
    if ((pin != nullptr && std::string_view(pin) == "0") || CPU_COUNT(&p.all) < 2) return p;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &p.all)) p.hw = c;
    }
    CPU_CLR(p.hw, &p.client);
    return p;
  }();
  return plan;
}
// Confines the calling thread, and the threads and processes it starts from
// now on, to the client CPUs (pinned) or lets it run anywhere. Returns the
// CPU for a new disk's hardware thread (-1: any).
int PlaceThisThread(bool pinned) {
  static int placed = -1;  // 0: anywhere, 1: client CPUs (the benchmarks run on one thread)
  const CpuPlan& p = Cpus();
  const bool pin = pinned && p.hw >= 0;
  if (placed != int{pin}) (void)sched_setaffinity(0, sizeof(cpu_set_t), pin ? &p.client : &p.all);
  placed = int{pin};
  return pin ? p.hw : -1;
}

// The two baselines below share their completion queue: Collect() moves
// what the driver completed into done_; Reap and Run are built on it.
class QueuedDisk : public Disk {
 public:
  Result<size_t> Reap(std::span<IoDone> out, size_t min, int64_t t) override {
    while (done_.size() < min) Collect(t);
    const size_t n = std::min(out.size(), done_.size());
    std::copy_n(done_.begin(), n, out.begin());
    done_.erase(done_.begin(), done_.begin() + static_cast<ptrdiff_t>(n));
    return n;
  }
  Result<void> Run(std::span<const Io> ios, int64_t t) override {
    for (const Io& io : ios) UMBRA_TRY(Submit(io, t));
    IoDone d[kMaxInFlight];
    for (size_t got = 0; got < ios.size();) got += *Reap({d, ios.size() - got}, 1, t);
    return {};
  }

 protected:
  virtual void Collect(int64_t timeout_ns) = 0;
  std::vector<IoDone> done_;
};

// Mode 0: the driver linked into this process. Single-threaded; the calling
// thread plays the SDK loop (PollInterrupt).
class InProcessDisk final : public QueuedDisk {
 public:
  InProcessDisk(hwd::DiskDevice& disk) : disk_(disk) {
    const hw::Resources res = disk.resources();
    sdk::InProcessRunner::Options o;
    o.pool_bytes = uint64_t{kMaxInFlight} * kSlotBytes;
    o.device.settings["queue_depth"] = "32";
    o.hw = sdk::HwView{.registers = reinterpret_cast<std::byte*>(disk.registers()),
                       .registers_size = hwd::kRegisterWindowSize,
                       .dma = disk.dma().data(),
                       .dma_size = disk.dma().size()};
    o.hw_doorbell_fd = res.doorbell_fd;
    o.hw_interrupt_fd = res.interrupt_fd;
    auto driver = std::make_unique<drivers::disk::DiskDriver>();
    driver_ = driver.get();
    run_ = std::make_unique<sdk::InProcessRunner>(std::move(driver), o);
    // As DriverHost does: the device may reach the pool, payloads stay in place.
    disk.MapHostMemory({run_->pool(), run_->pool_size()});
    if (!run_->Probe()) std::abort();
    for (uint32_t i = kMaxInFlight; i > 0; --i) free_.push_back(i - 1);
    user_.resize(kMaxInFlight);
  }
  ~InProcessDisk() override { disk_.MapHostMemory({}); }  // before the pool goes
  Geometry geometry() const override { return driver_->geometry(); }
  uint32_t max_io_blocks() const override { return driver_->geometry().max_io_bytes / kBs; }
  Result<void> Submit(const Io& io, int64_t) override {
    while (free_.empty()) Collect(0);
    const uint32_t slot = free_.back();
    free_.pop_back();
    const uint32_t len = io.op == proto::kFlush ? 0 : io.blocks * kBs;
    if (io.op == proto::kWrite || io.op == proto::kWriteFua) {
      std::memcpy(run_->pool() + uint64_t{slot} * kSlotBytes, io.data, len);
    }
    user_[slot] = io;
    run_->Submit(ipc::Descriptor{.id = slot, .op = io.op, .offset = slot * kSlotBytes, .length = len, .arg = io.lba});
    return {};
  }
  Result<void> SetWriteCache(bool on) override {
    UMBRA_TRY(run_->Call(proto::kSetWriteCache, on ? "1" : "0"));
    return {};
  }

 private:
  // Spins up to 200 µs on the interrupt (taking turns), then sleeps on it:
  // the same policy as DriverHost::Wait, so the baseline waits as the
  // isolated modes do.
  void Collect(int64_t) override {
    Spin spin(200'000, Spin::kTakeTurns);
    for (;;) {
      if (run_->PollInterrupt()) break;
      if (spin.Again()) continue;
      if (run_->WaitForInterrupt(kMs)) break;
    }
    for (const ipc::Descriptor& c : run_->completions()) {
      const auto slot = static_cast<uint32_t>(c.id);
      const Io& io = user_[slot];
      if (io.op == proto::kRead && c.status == 0) {
        std::memcpy(io.data, run_->pool() + uint64_t{slot} * kSlotBytes, c.length);
      }
      done_.push_back(IoDone{.user_data = io.user_data, .status = c.status});
      free_.push_back(slot);
    }
    run_->completions().clear();
  }

  hwd::DiskDevice& disk_;
  std::unique_ptr<sdk::InProcessRunner> run_;
  drivers::disk::DiskDriver* driver_ = nullptr;  // owned by run_
  std::vector<uint32_t> free_;
  std::vector<Io> user_;
};

// Mode 1: the driver process through DriverHost, no shadow. Single-threaded.
class IsolatedDisk final : public QueuedDisk {
 public:
  IsolatedDisk(runtime::DriverHost& host) : host_(host) {
    auto reply = host.Call(proto::kIdentify, "", kSec);
    if (!reply) std::abort();
    geometry_ = *proto::DecodeGeometry(*reply);
    user_.resize(1 << 20);
  }
  Geometry geometry() const override { return geometry_; }
  uint32_t max_io_blocks() const override { return std::min(geometry_.max_io_bytes, host_.buffer_size()) / kBs; }
  Result<void> Submit(const Io& io, int64_t t) override {
    std::optional<uint32_t> buf;
    while (!(buf = host_.AllocBuffer())) Collect(t);
    const uint32_t len = io.op == proto::kFlush ? 0 : io.blocks * kBs;
    if (io.op == proto::kWrite || io.op == proto::kWriteFua) std::memcpy(host_.buffer(*buf), io.data, len);
    const bool data = io.op != proto::kFlush && io.op != proto::kDiscard;
    runtime::Request r{.op = io.op, .offset = *buf, .length = len, .capacity = data ? len : 0, .arg = io.lba,
                       .cookie = *buf};
    user_[*buf / host_.buffer_size()] = io;
    for (;;) {
      auto n = host_.Submit({&r, 1});
      if (!n) return std::unexpected(n.error());
      if (*n == 1) return {};
      Collect(t);
    }
  }
  Result<void> SetWriteCache(bool on) override {
    UMBRA_TRY(host_.Call(proto::kSetWriteCache, on ? "1" : "0", kSec));
    return {};
  }

 private:
  void Collect(int64_t t) override {
    runtime::Completion c[kMaxInFlight];
    const size_t n = host_.Wait(c, t);
    for (size_t i = 0; i < n; ++i) {
      const auto buf = static_cast<uint32_t>(c[i].cookie);
      const Io& io = user_[buf / host_.buffer_size()];
      if (io.op == proto::kRead && c[i].status == 0) std::memcpy(io.data, host_.buffer(buf), c[i].length);
      done_.push_back(IoDone{.user_data = io.user_data, .status = c[i].status});
      host_.FreeBuffer(buf);
    }
  }

  runtime::DriverHost& host_;  // owned by the environment's supervisor
  Geometry geometry_;
  std::vector<Io> user_;
};

// One disk and its client path per mode, kept for the whole run.
struct Env {
  std::string dir;
  std::unique_ptr<hwd::DiskDevice> disk;  // outlives the supervisor, whose host points at it
  std::unique_ptr<runtime::Supervisor> sup;
  std::unique_ptr<BlockShadow> shadow;
  std::unique_ptr<Disk> direct;
  Disk* client = nullptr;

  // `pinned`: the disk's hardware thread on a CPU of its own, and the
  // client, the supervisor and the driver processes on the others.
  static std::unique_ptr<Env> Make(int mode, bool warm_standby, bool pinned) {
    auto e = std::make_unique<Env>();
    char tmpl[] = "/tmp/umbra-block-bench-XXXXXX";
    e->dir = ::mkdtemp(tmpl);
    hwd::DiskOptions d;
    d.name = "bench" + std::to_string(::getpid()) + "-" + std::to_string(mode);
    d.image_path = e->dir + "/disk.img";
    d.capacity_blocks = kCapacity;
    d.dma_size = 40 << 20;
    d.idle_writeback = true;
    d.hw_cpu = PlaceThisThread(pinned);
    e->disk = *hwd::DiskDevice::Create(std::move(d));
    e->disk->Start();
    if (mode == 0) {
      e->direct = std::make_unique<InProcessDisk>(*e->disk);
      e->client = e->direct.get();
      return e;
    }
    e->sup = std::make_unique<runtime::Supervisor>();
    runtime::DriverHostOptions o;
    o.device_name = "disk0";
    o.device_class = "block";
    o.compatible = hwd::kCompatible;
    o.driver_binary = UMBRA_DISK_DRIVER;
    o.heartbeat_period_ns = 100 * kMs;  // a loaded machine can starve a driver for tens of ms
    // Many 1 MiB buffers: only the pages a request touches become resident.
    o.data = {.ring_entries = 64, .buffer_size = kSlotBytes, .buffer_count = 320};
    o.restart.budget = 100000;
    o.restart.backoff_initial_ns = 0;
    o.restart.backoff_max_ns = 1 * kMs;
    o.settings["queue_depth"] = "32";
    o.warm_standby = warm_standby;  // a restart attaches a spare process: no exec on the recovery path
    o.hw = e->disk.get();
    runtime::DriverHost& host = **e->sup->AddDevice(std::move(o));
    if (mode == 1) {
      host.Start();
      if (!host.WaitUntilRunning(10 * kSec)) std::abort();
      e->direct = std::make_unique<IsolatedDisk>(host);
      e->client = e->direct.get();
      return e;
    }
    e->shadow = *BlockShadow::Create(host, {}, mode == 2 ? RecoveryMode::kShadow : RecoveryMode::kRestartOnly);
    e->shadow->Start();
    if (!e->shadow->WaitUntilPassive(10 * kSec)) std::abort();
    e->client = e->shadow.get();
    return e;
  }
  ~Env() {
    shadow.reset();
    if (sup) sup->Stop();
    direct.reset();
    disk.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

// CPU time (ns) each party of a mode has used so far: the client thread
// (in-process, it also runs the driver), the driver process and the disk's
// hardware thread.
struct CpuUse {
  int64_t client = 0;
  int64_t driver = 0;
  int64_t device = 0;
};

// Time on a CPU of the driver's main thread, from /proc/<pid>/schedstat (ns).
int64_t ProcessCpuNs(pid_t pid) {
  if (pid <= 0) return 0;
  char path[64], buf[128] = {};
  std::snprintf(path, sizeof path, "/proc/%d/schedstat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  return n > 0 ? std::strtoll(buf, nullptr, 10) : 0;
}

CpuUse CpuNow(const Env& e) {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  CpuUse u{.client = int64_t{ts.tv_sec} * kSec + ts.tv_nsec, .device = e.disk->thread_cpu_ns()};
  if (e.sup) u.driver = ProcessCpuNs(e.sup->Find("disk0")->driver_pid());
  return u;
}

std::unique_ptr<Env>& EnvFor(int mode) {
  static std::unique_ptr<Env> envs[4];
  if (!envs[mode]) envs[mode] = Env::Make(mode, true, true);
  (void)PlaceThisThread(true);
  return envs[mode];
}

std::map<std::string, double>& Baselines() {
  static std::map<std::string, double> b;
  return b;
}

// Keeps `depth` requests of `blocks` in flight on one disk; random or
// sequential LBAs. Each Step reaps what completed and submits as many.
class IoStream {
 public:
  IoStream(Disk& d, uint16_t op, uint32_t blocks, bool random, uint32_t depth)
      : d_(d), op_(op), blocks_(blocks), random_(random), depth_(depth),
        bufs_(uint64_t{depth} * blocks * kBs, std::byte{0x5A}), done_(depth), rng_(42) {
    for (uint32_t i = 0; i < depth_; ++i) Resubmit(i);
  }
  ~IoStream() {  // drain what is still in flight, outside any measurement
    for (uint32_t left = depth_; left > 0;) {
      left -= static_cast<uint32_t>(d_.Reap(done_, 1, 10 * kSec).value_or(left));
    }
  }
  // Completed operations (0 after an error, which error() then holds).
  size_t Step() {
    auto n = d_.Reap(done_, 1, 10 * kSec);
    if (!n) {
      error_ = n.error().ToString();
      return 0;
    }
    for (size_t i = 0; i < *n; ++i) {
      if (done_[i].status != 0) ++errors_;
      Resubmit(done_[i].user_data);
    }
    return *n;
  }
  const std::string& error() const { return error_; }
  uint64_t errors() const { return errors_; }

 private:
  void Resubmit(uint64_t slot) {
    uint64_t lba;
    if (random_) {
      lba = (rng_() % (kCapacity / blocks_)) * blocks_;
    } else {
      lba = next_seq_;
      next_seq_ = (next_seq_ + blocks_) % (kCapacity - blocks_);
    }
    (void)d_.Submit({.op = op_, .lba = lba, .blocks = blocks_, .data = bufs_.data() + slot * blocks_ * kBs,
                     .user_data = slot},
                    10 * kSec);
  }
  Disk& d_;
  uint16_t op_;
  uint32_t blocks_;
  bool random_;
  uint32_t depth_;
  std::vector<std::byte> bufs_;
  std::vector<IoDone> done_;
  std::mt19937_64 rng_;
  uint64_t next_seq_ = 0;
  uint64_t errors_ = 0;
  std::string error_;
};

void RunIo(benchmark::State& state, const std::string& name, uint16_t op, uint32_t blocks, bool random) {
  const int mode = static_cast<int>(state.range(0));
  const uint32_t depth = static_cast<uint32_t>(state.range(1));
  IoStream io(*EnvFor(mode)->client, op, blocks, random, depth);
  uint64_t ops = 0;
  const int64_t start = MonotonicNanos();
  for (auto _ : state) {
    const size_t n = io.Step();
    if (n == 0 && !io.error().empty()) {
      state.SkipWithError(io.error().c_str());
      break;
    }
    ops += n;
  }
  const double secs = static_cast<double>(MonotonicNanos() - start) / 1e9;
  const double rate = static_cast<double>(ops) / secs;
  state.SetItemsProcessed(static_cast<int64_t>(ops));
  state.SetBytesProcessed(static_cast<int64_t>(ops * blocks * kBs));
  state.counters["ops_per_s"] = rate;
  state.counters["errors"] = static_cast<double>(io.errors());
  const std::string key = name + "/" + std::to_string(depth);
  if (mode == 0) Baselines()[key] = rate;
  if (Baselines().contains(key)) state.counters["vs_inproc"] = rate / Baselines()[key];
  state.SetLabel(kModeNames[mode]);
}

// The four modes in turns of at least 20 ms each, for as long as the library
// runs the benchmark (so that a shared machine's load falls on all of them
// alike, and waking a mode's idle threads at the start of its turn weighs
// little); 4 KiB random I/O at depth 32; reports each mode's ops/s and the
// ratios to the in-process baseline.
void RunCompare(benchmark::State& state, uint16_t op) {
  constexpr int64_t kTurnNs = 20 * kMs;
  constexpr uint32_t kDepth = 32;
  std::array<std::unique_ptr<IoStream>, 4> io;
  for (int mode = 0; mode < 4; ++mode) io[mode] = std::make_unique<IoStream>(*EnvFor(mode)->client, op, 1, true, kDepth);
  std::array<int64_t, 4> ns{};
  std::array<uint64_t, 4> ops{};
  std::array<CpuUse, 4> cpu{};
  for (auto _ : state) {
    for (int mode = 0; mode < 4; ++mode) {
      const CpuUse c0 = CpuNow(*EnvFor(mode));
      const int64_t t0 = MonotonicNanos();
      int64_t now = t0;
      while (now - t0 < kTurnNs) {
        const size_t n = io[mode]->Step();
        if (n == 0 && !io[mode]->error().empty()) {
          state.SkipWithError(io[mode]->error().c_str());
          return;
        }
        ops[mode] += n;
        now = MonotonicNanos();
      }
      ns[mode] += now - t0;
      const CpuUse c1 = CpuNow(*EnvFor(mode));
      cpu[mode].client += c1.client - c0.client;
      cpu[mode].driver += c1.driver - c0.driver;
      cpu[mode].device += c1.device - c0.device;
    }
  }
  std::array<double, 4> rate{};
  for (int mode = 0; mode < 4; ++mode) {
    rate[mode] = ns[mode] > 0 ? static_cast<double>(ops[mode]) * 1e9 / static_cast<double>(ns[mode]) : 0;
  }
  state.counters["inproc_ops"] = rate[0];
  state.counters["isolated_ops"] = rate[1];
  state.counters["shadow_ops"] = rate[2];
  state.counters["restart_only_ops"] = rate[3];
  state.counters["isolated_vs_inproc"] = rate[0] > 0 ? rate[1] / rate[0] : 0;
  state.counters["shadow_vs_inproc"] = rate[0] > 0 ? rate[2] / rate[0] : 0;
  state.counters["restart_only_vs_inproc"] = rate[0] > 0 ? rate[3] / rate[0] : 0;
  state.counters["hw_cpu"] = Cpus().hw;
  // Where each mode's CPU went: µs per operation for each party, and how
  // many CPUs its turns kept busy (the rest of the machine's idled).
  const char* const kKeys[] = {"inproc", "isolated", "shadow", "restart_only"};
  for (int mode = 0; mode < 4; ++mode) {
    if (ops[mode] == 0 || ns[mode] == 0) continue;
    const double n = static_cast<double>(ops[mode]) * 1e3;
    const std::string key = kKeys[mode];
    state.counters[key + "_client_us"] = static_cast<double>(cpu[mode].client) / n;
    if (mode != 0) state.counters[key + "_driver_us"] = static_cast<double>(cpu[mode].driver) / n;
    state.counters[key + "_device_us"] = static_cast<double>(cpu[mode].device) / n;
    state.counters[key + "_cpus"] =
        static_cast<double>(cpu[mode].client + cpu[mode].driver + cpu[mode].device) / static_cast<double>(ns[mode]);
  }
}

void BM_RandRead4k(benchmark::State& s) { RunIo(s, "randread", proto::kRead, 1, true); }
void BM_RandWrite4k(benchmark::State& s) { RunIo(s, "randwrite", proto::kWrite, 1, true); }
void BM_SeqRead1M(benchmark::State& s) { RunIo(s, "seqread", proto::kRead, kSlotBytes / kBs, false); }
void BM_SeqWrite1M(benchmark::State& s) { RunIo(s, "seqwrite", proto::kWrite, kSlotBytes / kBs, false); }
void BM_CompareRandRead4k(benchmark::State& s) { RunCompare(s, proto::kRead); }
void BM_CompareRandWrite4k(benchmark::State& s) { RunCompare(s, proto::kWrite); }

// ---------------- recovery gap ----------------

// A shadowed disk of its own for the gap, with or without a warm standby.
std::unique_ptr<Env>& GapEnvFor(bool standby) {
  static std::unique_ptr<Env> envs[2];
  // Not pinned: recovery is the work of the host, the supervisor and a new
  // driver process at once, which a depth-1 client leaves CPUs for.
  if (!envs[standby]) envs[standby] = Env::Make(2, standby, false);
  (void)PlaceThisThread(false);
  return envs[standby];
}

template <class T>
double Pct(std::vector<T> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))]);
}

// Args: signal, warm standby (0/1). A depth-1 random read/write client on
// the shadowed disk while the driver is killed `UMBRA_BLOCK_BENCH_CRASHES`
// times (default 100), 100-150 ms apart so that the standby (spawned 50 ms
// after a recovery) is ready. Per crash: the longest a request waited
// because of it (the gap), and where the time went, split at the steps of
// the shadow's RecoveryRecord (medians, µs).
void BM_RecoveryGap(benchmark::State& state) {
  const int sig = static_cast<int>(state.range(0));
  const bool standby = state.range(1) != 0;
  const char* env_crashes = std::getenv("UMBRA_BLOCK_BENCH_CRASHES");
  const int crashes = env_crashes ? std::atoi(env_crashes) : 100;
  Env& env = *GapEnvFor(standby);
  BlockShadow& d = *env.shadow;
  std::vector<int64_t> gaps, detect, restart, replay, reopen, resubmit, passive, total;
  uint64_t fast_restarts = 0;  // restart phase under 1 ms: a standby, mostly
  for (auto _ : state) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> errors{0};
    std::thread client([&] {
      std::vector<std::byte> buf(kBs);
      std::mt19937_64 rng(7);
      while (!stop) {
        const uint64_t lba = rng() % kCapacity;
        auto r = (rng() & 1) != 0 ? d.Read(lba, buf) : d.Write(lba, buf);
        if (!r) ++errors;
      }
    });
    std::mt19937 rng(static_cast<uint32_t>(sig));
    (void)d.TakeRecoveryWaits();
    const BlockStats stats0 = d.stats();
    for (int i = 0; i < crashes; ++i) {
      usleep(std::uniform_int_distribution<int>(100'000, 150'000)(rng));
      const size_t before = d.recoveries().size();
      const int64_t kill_ns = MonotonicNanos();
      env.sup->Find("disk0")->Kill(sig);
      const int64_t deadline = MonotonicNanos() + 5 * kSec;
      while (d.recoveries().size() == before && MonotonicNanos() < deadline) usleep(20);
      (void)d.WaitUntilPassive(5 * kSec);
      usleep(2000);  // let the caught requests complete
      auto waits = d.TakeRecoveryWaits();
      if (!waits.empty()) gaps.push_back(*std::max_element(waits.begin(), waits.end()));
      const auto records = d.recoveries();
      if (records.size() != before + 1 || !records.back().succeeded) continue;  // a double fault: not split
      const RecoveryRecord& r = records.back();
      detect.push_back(r.detected_ns - kill_ns);
      restart.push_back(r.restarted_ns - r.detected_ns);
      replay.push_back(r.replayed_ns - r.restarted_ns);
      reopen.push_back(r.reopened_ns - r.replayed_ns);
      resubmit.push_back(r.resubmitted_ns - r.reopened_ns);
      passive.push_back(r.passive_ns - r.resubmitted_ns);
      total.push_back(r.passive_ns - kill_ns);
      fast_restarts += r.restarted_ns - r.detected_ns < 1'000'000;
    }
    stop = true;
    client.join();
    state.counters["client_errors"] = static_cast<double>(errors.load());
    const BlockStats stats1 = d.stats();
    // Acknowledged writes still only in the device's cache, written again
    // after each reset, and requests caught in flight.
    state.counters["replayed_writes_per_crash"] =
        static_cast<double>(stats1.replayed_writes - stats0.replayed_writes) / crashes;
    state.counters["resubmitted_per_crash"] = static_cast<double>(stats1.resubmitted - stats0.resubmitted) / crashes;
  }
  if (gaps.empty()) return;
  state.counters["crashes_measured"] = static_cast<double>(gaps.size());
  state.counters["restarts_under_1ms"] = static_cast<double>(fast_restarts);
  state.counters["gap_median_us"] = Pct(gaps, 0.5) / 1e3;
  state.counters["gap_p99_us"] = Pct(gaps, 0.99) / 1e3;
  state.counters["gap_max_us"] = Pct(gaps, 1.0) / 1e3;
  state.counters["ph_detect_us"] = Pct(detect, 0.5) / 1e3;
  state.counters["ph_restart_us"] = Pct(restart, 0.5) / 1e3;
  state.counters["ph_replay_us"] = Pct(replay, 0.5) / 1e3;
  state.counters["ph_reopen_us"] = Pct(reopen, 0.5) / 1e3;
  state.counters["ph_resubmit_us"] = Pct(resubmit, 0.5) / 1e3;
  state.counters["ph_passive_us"] = Pct(passive, 0.5) / 1e3;
  state.counters["ph_total_us"] = Pct(total, 0.5) / 1e3;
  state.counters["ph_restart_p99_us"] = Pct(restart, 0.99) / 1e3;
  state.counters["ph_total_p99_us"] = Pct(total, 0.99) / 1e3;
  state.SetLabel(sig == SIGKILL ? "SIGKILL" : sig == SIGSEGV ? "SIGSEGV" : sig == SIGABRT ? "SIGABRT" : "SIGSTOP");
}

void Register() {
  for (int depth : {1, 32}) {
    for (int mode = 0; mode < 4; ++mode) {
      benchmark::RegisterBenchmark("BM_RandRead4k", BM_RandRead4k)->Args({mode, depth})->MinTime(0.5)->UseRealTime();
    }
    for (int mode = 0; mode < 4; ++mode) {
      benchmark::RegisterBenchmark("BM_RandWrite4k", BM_RandWrite4k)->Args({mode, depth})->MinTime(0.5)->UseRealTime();
    }
  }
  for (int mode = 0; mode < 4; ++mode) {
    benchmark::RegisterBenchmark("BM_SeqRead1M", BM_SeqRead1M)->Args({mode, 4})->MinTime(0.5)->UseRealTime();
  }
  for (int mode = 0; mode < 4; ++mode) {
    benchmark::RegisterBenchmark("BM_SeqWrite1M", BM_SeqWrite1M)->Args({mode, 4})->MinTime(0.5)->UseRealTime();
  }
  benchmark::RegisterBenchmark("BM_CompareRandRead4k/32", BM_CompareRandRead4k)->MinTime(2)->UseRealTime();
  benchmark::RegisterBenchmark("BM_CompareRandWrite4k/32", BM_CompareRandWrite4k)->MinTime(2)->UseRealTime();
  for (int sig : {SIGKILL, SIGSEGV, SIGABRT, SIGSTOP}) {
    for (int standby : {0, 1}) {
      benchmark::RegisterBenchmark("BM_RecoveryGap", BM_RecoveryGap)
          ->Args({sig, standby})
          ->ArgNames({"sig", "standby"})
          ->Iterations(1)
          ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace umbra::shadows::block

int main(int argc, char** argv) {
  (void)umbra::shadows::block::Cpus();  // before any thread starts
  umbra::shadows::block::Register();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto& e : {0, 1, 2, 3}) umbra::shadows::block::EnvFor(e).reset();
  for (bool standby : {false, true}) umbra::shadows::block::GapEnvFor(standby).reset();
  return 0;
}
