// Frames per second through the emulated NIC, driven by a test-driver loop in
// one thread (the device's hardware thread is the other), for 64-byte and
// 1500-byte frames. Every figure is also reported as a ratio against a plain
// memcpy loop doing the same copies, measured in the same run:
//
//   vs_memcpy = NIC frames/s ÷ memcpy frames/s
//
// so the NIC is known not to be what limits the net class's throughput.
//
//   bench_hw_nic --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <poll.h>

#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "base/clock.h"
#include "runtime/hw/nic/nic.h"
#include "runtime/hw/nic/wire.h"
#include "tests/runtime/hw/nic/test_driver.h"

namespace umbra::hw::nic {
namespace {

using testing::MakeFrame;
using testing::TestDriver;

constexpr uint32_t kBatch = 32;
constexpr uint32_t kRing = 256;
constexpr uint64_t kMacA = 0x010000000002;
constexpr uint64_t kMacB = 0x020000000002;

// The same copies the NIC path makes for one frame (driver buffer → DMA pool,
// DMA pool → the other end's storage), with nothing else.
double MemcpyFramesPerSecond(size_t size) {
  static std::map<size_t, double> cache;
  if (auto it = cache.find(size); it != cache.end()) return it->second;
  std::vector<std::byte> src(size, std::byte{1});
  std::vector<std::byte> pool(kRing * size);
  std::vector<std::byte> dst(kRing * size);
  uint64_t frames = 0;
  const int64_t start = MonotonicNanos();
  int64_t now = start;
  while (now - start < 200'000'000) {
    for (uint32_t i = 0; i < kRing; ++i) {
      std::memcpy(pool.data() + i * size, src.data(), size);
      benchmark::ClobberMemory();
      std::memcpy(dst.data() + i * size, pool.data() + i * size, size);
      benchmark::DoNotOptimize(dst.data());
    }
    frames += kRing;
    now = MonotonicNanos();
  }
  return cache[size] = frames * 1e9 / double(now - start);
}

void Report(benchmark::State& state, uint64_t frames, int64_t elapsed_ns, size_t size) {
  const double fps = frames * 1e9 / double(elapsed_ns);
  state.SetItemsProcessed(static_cast<int64_t>(frames));
  state.SetBytesProcessed(static_cast<int64_t>(frames * size));
  state.counters["ns_per_frame"] = double(elapsed_ns) / double(frames);
  state.counters["vs_memcpy"] = fps / MemcpyFramesPerSecond(size);
}

void BM_MemcpyBaseline(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  std::vector<std::byte> src(size, std::byte{1});
  std::vector<std::byte> pool(kRing * size);
  std::vector<std::byte> dst(kRing * size);
  uint64_t frames = 0;
  uint32_t slot = 0;
  const int64_t start = MonotonicNanos();
  for (auto _ : state) {
    for (uint32_t i = 0; i < kBatch; ++i, slot = (slot + 1) % kRing) {
      std::memcpy(pool.data() + slot * size, src.data(), size);
      benchmark::ClobberMemory();
      std::memcpy(dst.data() + slot * size, pool.data() + slot * size, size);
      benchmark::DoNotOptimize(dst.data());
    }
    frames += kBatch;
  }
  Report(state, frames, MonotonicNanos() - start, size);
}

// When the TX ring is full, a driver sleeps until the TX-done interrupt
// instead of spinning (netif_stop_queue until completions): acknowledge the
// cause first so the next completion signals, look again, then wait.
void WaitForTxCompletion(Nic& nic, TestDriver& driver) {
  nic.registers().int_cause.exchange(0, std::memory_order_acq_rel);
  if (driver.ReapTx() > 0) return;
  pollfd pfd{nic.interrupt().fd(), POLLIN, 0};
  if (::poll(&pfd, 1, 1) > 0) nic.interrupt().Drain();
}

struct Bench {
  std::unique_ptr<Nic> nic;
  std::unique_ptr<PeerEndpoint> peer;
  std::unique_ptr<TestDriver> driver;
};

Bench MakeNicWithPeer(bool start = true) {
  auto ports = WirePort::CreatePair();
  Bench b;
  b.nic = std::move(
      *Nic::Create({.name = "bench-nic", .permanent_mac = kMacA, .dma_size = 8u << 20}, std::move(ports->first)));
  b.peer = std::move(*PeerEndpoint::Create(std::move(ports->second), {.queue_frames = 1024}));
  b.driver = std::make_unique<TestDriver>(b.nic->registers(), b.nic->dma(), b.nic->doorbell().fd(),
                                          b.nic->interrupt().fd(), kRing);
  if (start) {
    b.nic->Start();
    b.driver->Open();
  } else {
    b.driver->Open(kNicRxUnicast | kNicRxBroadcast, TestDriver::kAllInterrupts, TestDriver::Wait::kNo);
    b.nic->RunOnce();
  }
  return b;
}

// Driver TX ring → device → wire → peer queue; the loop also drains the peer.
void BM_NicTransmitToPeer(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  Bench b = MakeNicWithPeer();
  auto frame = MakeFrame(kMacB, kMacA, 0x88B5, size - kNicEthHeaderSize);
  uint64_t frames = 0;
  uint64_t seen = 0;
  const int64_t start = MonotonicNanos();
  for (auto _ : state) {
    uint32_t queued = 0;
    while (queued < kBatch) {
      while (queued < kBatch && b.driver->Transmit(frame.data(), frame.size())) ++queued;
      b.driver->Flush();
      if (b.driver->ReapTx() == 0 && queued < kBatch) WaitForTxCompletion(*b.nic, *b.driver);
      seen += b.peer->Drain(kRing, [](FrameView f) { benchmark::DoNotOptimize(f.data()); });
    }
    frames += kBatch;
  }
  while (!b.driver->TxIdle()) b.driver->ReapTx();
  seen += b.peer->Drain(SIZE_MAX, [](FrameView) {});
  Report(state, frames, MonotonicNanos() - start, size);
  state.counters["peer_dropped"] = double(b.peer->dropped());
  state.counters["peer_seen"] = double(seen);
}

// The same path with the device's work run on the driver's thread
// (Nic::RunOnce): the device's own cost per frame, free of the hand-off
// between two threads and of scheduling noise on a busy machine.
void BM_NicTransmitToPeerInline(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  Bench b = MakeNicWithPeer(/*start=*/false);
  auto frame = MakeFrame(kMacB, kMacA, 0x88B5, size - kNicEthHeaderSize);
  uint64_t frames = 0;
  const int64_t start = MonotonicNanos();
  for (auto _ : state) {
    uint32_t queued = 0;
    while (queued < kBatch && b.driver->Transmit(frame.data(), frame.size())) ++queued;
    b.driver->Flush();
    b.nic->RunOnce();
    b.driver->ReapTx();
    b.peer->Drain(kRing, [](FrameView f) { benchmark::DoNotOptimize(f.data()); });
    frames += queued;
  }
  Report(state, frames, MonotonicNanos() - start, size);
  state.counters["peer_dropped"] = double(b.peer->dropped());
}

// Peer → wire → device filter and DMA → driver RX ring, all on the driver's
// thread (the wire delivers synchronously).
void BM_PeerToNicReceive(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  Bench b = MakeNicWithPeer();
  auto frame = MakeFrame(kMacA, kMacB, 0x0800, size - kNicEthHeaderSize);
  std::vector<FrameView> batch(kBatch, FrameView(frame));
  uint64_t frames = 0;
  const int64_t start = MonotonicNanos();
  for (auto _ : state) {
    (void)b.peer->SendBatch(batch);
    uint32_t got = 0;
    while (b.driver->PollRxWith([](const std::byte* p, uint32_t) { benchmark::DoNotOptimize(p); })) {
      ++got;
    }
    frames += got;
  }
  Report(state, frames, MonotonicNanos() - start, size);
  state.counters["missed"] = double(b.nic->stats()[kNicStatRxMissed]);
}

// Two NICs on one wire: driver A's TX ring → A's hardware thread → wire →
// B's RX ring, with one loop driving both.
void BM_NicToNic(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  auto ports = WirePort::CreatePair();
  auto a = std::move(
      *Nic::Create({.name = "bench-a", .permanent_mac = kMacA, .dma_size = 8u << 20}, std::move(ports->first)));
  auto nb = std::move(
      *Nic::Create({.name = "bench-b", .permanent_mac = kMacB, .dma_size = 8u << 20}, std::move(ports->second)));
  TestDriver da(a->registers(), a->dma(), a->doorbell().fd(), a->interrupt().fd(), kRing);
  TestDriver db(nb->registers(), nb->dma(), nb->doorbell().fd(), nb->interrupt().fd(), kRing);
  a->Start();
  nb->Start();
  da.Open();
  db.Open();
  auto frame = MakeFrame(kMacB, kMacA, 0x88B5, size - kNicEthHeaderSize);
  uint64_t frames = 0;
  const int64_t start = MonotonicNanos();
  auto poll_all = [&] {
    uint32_t n = 0;
    while (db.PollRxWith([](const std::byte* p, uint32_t) { benchmark::DoNotOptimize(p); })) ++n;
    return n;
  };
  // Pipelined like a real sender: wait only when A's TX ring is full.
  for (auto _ : state) {
    uint32_t queued = 0;
    while (queued < kBatch) {
      while (queued < kBatch && da.Transmit(frame.data(), frame.size())) ++queued;
      da.Flush();
      if (da.ReapTx() == 0 && queued < kBatch) WaitForTxCompletion(*a, da);
      frames += poll_all();
    }
  }
  // A completes a descriptor only after the wire has put its frame in B's
  // ring (or counted it missed), so an idle TX ring means all arrived.
  while (!da.TxIdle()) {
    if (da.ReapTx() == 0) WaitForTxCompletion(*a, da);
    frames += poll_all();
  }
  frames += poll_all();
  Report(state, frames, MonotonicNanos() - start, size);
  state.counters["missed"] = double(nb->stats()[kNicStatRxMissed]);
}

BENCHMARK(BM_MemcpyBaseline)->Arg(64)->Arg(1500)->UseRealTime();
BENCHMARK(BM_NicTransmitToPeer)->Arg(64)->Arg(1500)->UseRealTime();
BENCHMARK(BM_NicTransmitToPeerInline)->Arg(64)->Arg(1500)->UseRealTime();
BENCHMARK(BM_PeerToNicReceive)->Arg(64)->Arg(1500)->UseRealTime();
BENCHMARK(BM_NicToNic)->Arg(64)->Arg(1500)->UseRealTime();

}  // namespace
}  // namespace umbra::hw::nic

BENCHMARK_MAIN();
