#include "bench/block/bench_env.h"

#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "drivers/disk/disk_driver.h"
#include "drivers/sdk/in_process.h"
#include "base/clock.h"
#include "base/spin.h"

namespace umbra::shadows::block::bench {
namespace {

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
    runtime::Request r{
        .op = io.op, .offset = *buf, .length = len, .capacity = data ? len : 0, .arg = io.lba, .cookie = *buf};
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
}  // namespace

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

std::unique_ptr<Env> Env::Make(int mode, bool warm_standby, bool pinned) {
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

Env::~Env() {
  shadow.reset();
  if (sup) sup->Stop();
  direct.reset();
  disk.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

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

std::unique_ptr<Env>& GapEnvFor(bool standby) {
  static std::unique_ptr<Env> envs[2];
  // Not pinned: recovery is the work of the host, the supervisor and a new
  // driver process at once, which a depth-1 client leaves CPUs for.
  if (!envs[standby]) envs[standby] = Env::Make(2, standby, false);
  (void)PlaceThisThread(false);
  return envs[standby];
}

}  // namespace umbra::shadows::block::bench
