// 4 KiB random read/write IOPS at queue depth 1 and 32 and sequential 1 MiB
// throughput through the emulated disk, driven by a test-driver loop in this
// thread (the device's hardware thread does the I/O). Every figure is also a
// ratio against pread/pwrite of the same sizes and offsets on the same image
// file, measured in the same run:
//
//   vs_pread     = device ops/s ÷ direct pread/pwrite ops/s
//   cpu_vs_pread = process CPU per op (driver loop + hardware thread, spinning
//                  included) ÷ CPU per op of the direct loop
//
// On a loaded machine vs_pread mostly measures scheduling (two threads must
// meet for every handoff); cpu_vs_pread says what the device itself costs.
//
// so the disk is known not to be what limits the block class (its target is
// shadowed ≥ 90% of in-process IOPS at depth 32). Writes run with the
// write cache off (write-through: one pwrite per command, like the baseline)
// and on (absorbed by the cache, written back when it fills).
//
//   bench_hw_disk --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "base/clock.h"
#include "runtime/hw/disk/disk_device.h"
#include "runtime/hw/disk/disk_test_driver.h"

namespace umbra::hw::disk {
namespace {

constexpr uint32_t kBlock = 4096;
constexpr uint64_t kImageBlocks = 64 * 1024;  // 256 MiB: stays in the page cache
constexpr uint64_t kDma = 40u << 20;          // room for 32 buffers of 1 MiB

enum class Op { kRead, kWrite };

int64_t ProcessCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Baseline {
  double ops_per_second;
  double cpu_ns_per_op;
};

uint64_t NextRandom(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// The image every benchmark shares, written once so reads hit real data.
const std::string& ImagePath() {
  static const std::string path = [] {
    char dir[] = "/tmp/umbra-disk-bench-XXXXXX";
    if (mkdtemp(dir) == nullptr) abort();
    std::string p = std::string(dir) + "/disk.img";
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    std::vector<std::byte> chunk(1 << 20, std::byte{0x5A});
    for (uint64_t off = 0; off < kImageBlocks * kBlock; off += chunk.size()) {
      if (::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(off)) < 0) abort();
    }
    ::close(fd);
    std::atexit([] { std::filesystem::remove_all(std::filesystem::path(path).parent_path()); });
    return p;
  }();
  return path;
}

// Offset of the i-th operation: random whole blocks, or sequential runs.
uint64_t NextLba(bool random, uint32_t blocks, uint64_t& state, uint64_t& cursor) {
  if (random) return NextRandom(state) % (kImageBlocks / blocks) * blocks;
  const uint64_t lba = cursor;
  cursor = (cursor + blocks) % kImageBlocks;
  return lba;
}

// Direct pread/pwrite ops/s for the same pattern, measured once per pattern.
Baseline MeasureBaseline(Op op, uint32_t blocks, bool random) {
  static std::map<std::tuple<Op, uint32_t, bool>, Baseline> cache;
  const auto key = std::make_tuple(op, blocks, random);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  int fd = ::open(ImagePath().c_str(), O_RDWR | O_CLOEXEC);
  std::vector<std::byte> buf(uint64_t{blocks} * kBlock, std::byte{1});
  uint64_t state = 88172645463325252ull, cursor = 0, ops = 0;
  const int64_t cpu_start = ProcessCpuNanos();
  const int64_t start = MonotonicNanos();
  int64_t now = start;
  while (now - start < 300'000'000) {
    for (int i = 0; i < 64; ++i, ++ops) {
      const auto off = static_cast<off_t>(NextLba(random, blocks, state, cursor) * kBlock);
      const ssize_t n =
          op == Op::kRead ? ::pread(fd, buf.data(), buf.size(), off) : ::pwrite(fd, buf.data(), buf.size(), off);
      benchmark::DoNotOptimize(n);
    }
    now = MonotonicNanos();
  }
  const int64_t cpu = ProcessCpuNanos() - cpu_start;
  ::close(fd);
  return cache[key] = Baseline{ops * 1e9 / double(now - start), double(cpu) / double(ops)};
}

void BM_DirectFile(benchmark::State& state, Op op, uint32_t blocks, bool random) {
  int fd = ::open(ImagePath().c_str(), O_RDWR | O_CLOEXEC);
  std::vector<std::byte> buf(uint64_t{blocks} * kBlock, std::byte{1});
  uint64_t rng = 88172645463325252ull, cursor = 0;
  for (auto _ : state) {
    const auto off = static_cast<off_t>(NextLba(random, blocks, rng, cursor) * kBlock);
    const ssize_t n =
        op == Op::kRead ? ::pread(fd, buf.data(), buf.size(), off) : ::pwrite(fd, buf.data(), buf.size(), off);
    benchmark::DoNotOptimize(n);
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * int64_t{blocks} * kBlock);
}

// Keeps `depth` commands outstanding (tag i uses buffer i) and resubmits each
// one as it completes. state.range(0): depth; range(1): write cache on (1) or
// off; range(2): how long the driver polls the CQ before it sleeps on the
// interrupt (ns).
void BM_Disk(benchmark::State& state, Op op, uint32_t blocks, bool random) {
  const auto depth = static_cast<uint32_t>(state.range(0));
  const bool cache = state.range(1) != 0;
  const int64_t spin_ns = state.range(2);  // how long the driver loop polls before sleeping
  DiskOptions options;
  options.name = "bench-disk";
  options.image_path = ImagePath();
  options.dma_size = kDma;
  options.write_cache_power_on = cache ? WriteCachePowerOn::kEnabled : WriteCachePowerOn::kDisabled;
  auto created = DiskDevice::Create(std::move(options));
  if (!created) {
    state.SkipWithError(created.error().ToString().c_str());
    return;
  }
  std::unique_ptr<DiskDevice> disk = std::move(*created);
  disk->Start();
  const Resources res = disk->resources();
  TestDriver driver(disk->registers(), disk->dma(), res.doorbell_fd, res.interrupt_fd);
  if (!driver.Enable(depth < kMinQueueDepth ? kMinQueueDepth : depth)) {
    state.SkipWithError("the disk refused the queue configuration");
    return;
  }
  const uint64_t length = uint64_t{blocks} * kBlock;
  const Opcode opcode = op == Op::kRead ? Opcode::kRead : Opcode::kWrite;
  uint64_t rng = 88172645463325252ull, cursor = 0;
  auto submit = [&](uint16_t tag) {
    const uint64_t lba = NextLba(random, blocks, rng, cursor);
    driver.Submit(TestDriver::Io(opcode, tag, lba, blocks, TestDriver::kDataOffset + tag * length, length), false);
  };
  for (uint32_t t = 0; t < depth; ++t) submit(static_cast<uint16_t>(t));
  driver.RingIfWanted();
  std::vector<DiskCompletion> done;
  done.reserve(kMaxQueueDepth);
  uint64_t ops = 0, errors = 0;
  const int64_t cpu_start = ProcessCpuNanos();
  const int64_t start = MonotonicNanos();
  for (auto _ : state) {
    done.clear();
    driver.WaitFor(1, done, 10 * TestDriver::kSecond, spin_ns);
    for (const DiskCompletion& c : done) {
      errors += c.status != 0;
      submit(c.tag);
    }
    driver.RingIfWanted();
    ops += done.size();
  }
  const int64_t elapsed = MonotonicNanos() - start;
  const int64_t cpu = ProcessCpuNanos() - cpu_start;
  done.clear();
  driver.WaitFor(depth, done, 10 * TestDriver::kSecond);
  if (errors != 0) state.SkipWithError("commands failed");
  const double ops_per_second = ops * 1e9 / double(elapsed);
  state.SetItemsProcessed(static_cast<int64_t>(ops));
  state.SetBytesProcessed(static_cast<int64_t>(ops * length));
  state.counters["ops_per_s"] = ops_per_second;
  const Baseline baseline = MeasureBaseline(op, blocks, random);
  state.counters["vs_pread"] = ops_per_second / baseline.ops_per_second;
  state.counters["cpu_vs_pread"] = double(cpu) / double(ops) / baseline.cpu_ns_per_op;
  const DiskCounters c = disk->counters();
  state.counters["cmds_per_batch"] = c.batches ? double(c.reads + c.writes) / double(c.batches) : 0;
  state.counters["cmds_per_irq"] = c.interrupts ? double(c.reads + c.writes) / double(c.interrupts) : 0;
}

void Direct(benchmark::internal::Benchmark* b) { b->UseRealTime()->MinTime(0.3); }
void Depths(benchmark::internal::Benchmark* b) { b->ArgNames({"depth", "cache", "spin"})->UseRealTime()->MinTime(0.3); }

BENCHMARK_CAPTURE(BM_DirectFile, rand_read_4k, Op::kRead, 1, true)->Apply(Direct);
BENCHMARK_CAPTURE(BM_DirectFile, rand_write_4k, Op::kWrite, 1, true)->Apply(Direct);
BENCHMARK_CAPTURE(BM_DirectFile, seq_read_1m, Op::kRead, 256, false)->Apply(Direct);
BENCHMARK_CAPTURE(BM_DirectFile, seq_write_1m, Op::kWrite, 256, false)->Apply(Direct);

BENCHMARK_CAPTURE(BM_Disk, rand_read_4k, Op::kRead, 1, true)
    ->Args({1, 0, 20000})
    ->Args({32, 0, 20000})
    ->Args({1, 0, 0})
    ->Args({32, 0, 0})
    ->Apply(Depths);
BENCHMARK_CAPTURE(BM_Disk, rand_write_4k, Op::kWrite, 1, true)
    ->Args({1, 0, 20000})
    ->Args({32, 0, 20000})
    ->Args({1, 1, 20000})
    ->Args({32, 1, 20000})
    ->Apply(Depths);
BENCHMARK_CAPTURE(BM_Disk, seq_read_1m, Op::kRead, 256, false)->Args({1, 0, 20000})->Args({8, 0, 20000})->Apply(Depths);
BENCHMARK_CAPTURE(BM_Disk, seq_write_1m, Op::kWrite, 256, false)
    ->Args({1, 0, 20000})
    ->Args({8, 0, 20000})
    ->Args({8, 1, 20000})
    ->Apply(Depths);

}  // namespace
}  // namespace umbra::hw::disk

BENCHMARK_MAIN();
