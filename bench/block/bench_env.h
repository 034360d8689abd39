// bench/block's shared set-up: the four client paths to one emulated disk
// (in-process, isolated, shadowed, restart-only), where their threads run, and
// the CPU each party used. See block_bench.cc for what is measured.
#pragma once

#include <sched.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "runtime/hw/disk/disk_device.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/block/block_shadow.h"

namespace umbra::shadows::block::bench {

namespace hwd = hw::disk;
namespace proto = umbra::block;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr uint64_t kCapacity = 1 << 16;  // 256 MiB of 4 KiB blocks
constexpr uint32_t kBs = 4096;
constexpr uint32_t kMaxInFlight = 32;
constexpr uint32_t kSlotBytes = 1 << 20;

inline const char* const kModeNames[] = {"in-process", "isolated", "shadowed", "restart-only"};

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
const CpuPlan& Cpus();

// Confines the calling thread, and the threads and processes it starts from
// now on, to the client CPUs (pinned) or lets it run anywhere. Returns the
// CPU for a new disk's hardware thread (-1: any).
int PlaceThisThread(bool pinned);

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
  static std::unique_ptr<Env> Make(int mode, bool warm_standby, bool pinned);
  ~Env();
};

// CPU time (ns) each party of a mode has used so far: the client thread
// (in-process, it also runs the driver), the driver process and the disk's
// hardware thread.
struct CpuUse {
  int64_t client = 0;
  int64_t driver = 0;
  int64_t device = 0;
};

CpuUse CpuNow(const Env& e);

// The environment of each mode, made on first use and kept for the run.
std::unique_ptr<Env>& EnvFor(int mode);
// A shadowed disk of its own for the recovery gap, with or without a warm standby.
std::unique_ptr<Env>& GapEnvFor(bool standby);

// Registers the recovery-gap cases (recovery_gap.cc).
void RegisterRecoveryGap();

}  // namespace umbra::shadows::block::bench
