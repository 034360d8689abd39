// A minimal sound driver for the card's tests: it maps the card's region
// through the memfd, as a driver process does, and programs the card from
// the datasheet header alone.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "runtime/hw/sound/sound_card.h"
#include "runtime/hw/sound/sound_regs.h"
#include "runtime/hw/sound/wav.h"
#include "runtime/ipc/shared_memory.h"

namespace umbra::hw::sound::testing {

// A file in this test process's scratch directory, removed at exit.
inline std::string TempPath(const std::string& name) {
  static const struct Dir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("umbra-sound-test-" + std::to_string(::getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } dir;
  return (dir.path / name).string();
}

class TestDriver {
 public:
  explicit TestDriver(const SoundCard& card) {
    Resources r = card.resources();
    auto region = ipc::SharedMemory::Map(UniqueFd(::dup(r.region_fd)), r.region_size);
    if (!region) throw std::runtime_error(region.error().ToString());
    region_ = std::move(*region);
    regs_ = region_->at<SoundRegs>(r.registers_offset);
    dma_ = region_->data() + r.dma_offset;
    dma_size_ = r.dma_size;
    doorbell_fd_ = r.doorbell_fd;
    interrupt_fd_ = r.interrupt_fd;
  }

  SoundRegs& regs() const { return *regs_; }
  SoundStreamRegs& stream(SoundStream s) const { return regs_->streams[static_cast<int>(s)]; }
  std::byte* dma() const { return dma_; }
  uint64_t dma_size() const { return dma_size_; }

  void Configure(SoundStream s, const AudioFormat& format, uint32_t period_frames, uint32_t periods,
                 uint64_t buffer_offset) {
    SoundStreamRegs& r = stream(s);
    r.rate.store(format.rate);
    r.channels.store(format.channels);
    r.format.store(static_cast<uint32_t>(format.format));
    r.period_frames.store(period_frames);
    r.periods.store(periods);
    r.buffer_offset.store(buffer_offset);
    r.appl_ptr.store(0);
    format_[static_cast<int>(s)] = format;
  }

  void Command(SoundStream s, SoundCommand c) {
    stream(s).command.store(static_cast<uint32_t>(c));
    Ring();
  }

  void Ring() {
    regs_->doorbell.fetch_add(1);
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(doorbell_fd_, &one, sizeof one);
  }

  SoundStreamState state(SoundStream s) const { return static_cast<SoundStreamState>(stream(s).state.load()); }

  // Playback: writes source frame p at stream position p for every position
  // the ring can take; positions the card already passed are skipped (that
  // audio is dropped, never played late). Returns frames written.
  uint64_t FillPlayback(const WavFile& src) {
    SoundStreamRegs& r = stream(SoundStream::kPlayback);
    uint64_t fb = src.format.frame_bytes();
    uint64_t ring = uint64_t{r.period_frames.load()} * r.periods.load();
    if (ring == 0) return 0;
    // A stopped stream restarts at position 0; hw_ptr still shows the old one.
    bool stopped = r.state.load() == static_cast<uint32_t>(SoundStreamState::kStopped);
    uint64_t hw = stopped ? 0 : r.hw_ptr.load(std::memory_order_acquire);
    uint64_t from = std::max(r.appl_ptr.load(), hw);
    uint64_t to = std::min(hw + ring, src.frames());
    if (to <= from) return 0;
    uint64_t base = r.buffer_offset.load();
    for (uint64_t p = from; p < to; ++p) std::memcpy(dma_ + base + (p % ring) * fb, src.data.data() + p * fb, fb);
    r.appl_ptr.store(to, std::memory_order_release);
    return to - from;
  }

  // Capture: appends the frames in [appl_ptr, hw_ptr) to `dst` (placed at
  // their stream positions, silence for frames lost to an overrun).
  void DrainCapture(WavFile& dst) {
    SoundStreamRegs& r = stream(SoundStream::kCapture);
    uint64_t fb = dst.format.frame_bytes();
    uint64_t ring = uint64_t{r.period_frames.load()} * r.periods.load();
    if (ring == 0) return;
    uint64_t hw = r.hw_ptr.load(std::memory_order_acquire);
    uint64_t appl = r.appl_ptr.load();
    uint64_t from = std::max(appl, hw > ring ? hw - ring : 0);
    uint64_t base = r.buffer_offset.load();
    dst.data.resize(hw * fb);
    for (uint64_t p = from; p < hw; ++p) std::memcpy(dst.data.data() + p * fb, dma_ + base + (p % ring) * fb, fb);
    r.appl_ptr.store(hw, std::memory_order_release);
  }

  // Waits for the interrupt eventfd; returns the causes taken (0 on timeout).
  uint32_t WaitInterrupt(int timeout_ms) {
    pollfd pfd{interrupt_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) <= 0) return 0;
    uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(interrupt_fd_, &v, sizeof v);
    return regs_->int_cause.exchange(0);
  }

  // True when the interrupt eventfd has a pending signal (does not consume it).
  bool InterruptPending() const {
    pollfd pfd{interrupt_fd_, POLLIN, 0};
    return ::poll(&pfd, 1, 0) > 0;
  }

 private:
  std::unique_ptr<ipc::SharedMemory> region_;  // our own mapping of the card's memfd
  SoundRegs* regs_ = nullptr;
  std::byte* dma_ = nullptr;
  uint64_t dma_size_ = 0;
  int doorbell_fd_ = -1;   // owned by the card
  int interrupt_fd_ = -1;  // owned by the card
  AudioFormat format_[2];
};

}  // namespace umbra::hw::sound::testing
