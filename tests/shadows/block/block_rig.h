// A block-class test rig: an emulated disk on an image in a scratch
// directory, a supervisor, and a BlockShadow over a real driver process.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "runtime/hw/disk/disk_device.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/block/block_shadow.h"
#include "tests/shadows/kill_fixture.h"

namespace umbra::shadows::block {

inline constexpr int64_t kMs = 1'000'000;
inline constexpr int64_t kSec = 1'000'000'000;

class BlockRig {
 public:
  struct Config {
    const char* driver = UMBRA_DISK_DRIVER;
    RecoveryMode mode = RecoveryMode::kShadow;
    uint64_t capacity_blocks = 4096;  // 16 MiB of 4 KiB blocks
    uint32_t block_size = 4096;
    uint64_t cache_bytes = 2 << 20;
    hw::disk::CompletionOrder order = hw::disk::CompletionOrder::kSubmission;
    uint32_t budget = 100000;
    uint32_t max_requests = 256;
    std::string failpoints;
  };

  explicit BlockRig(Config config) : config_(config) {
    char tmpl[] = "/tmp/umbra-block-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    hw::disk::DiskOptions d;
    d.name = "disk" + std::to_string(::getpid());
    d.image_path = dir_ + "/disk0.img";
    d.capacity_blocks = config.capacity_blocks;
    d.block_size = config.block_size;
    d.cache_bytes = config.cache_bytes;
    d.completion_order = config.order;
    disk_ = *hw::disk::DiskDevice::Create(std::move(d));
    disk_->Start();
    runtime::DriverHostOptions o;
    o.device_name = "disk0";
    o.device_class = "block";
    o.compatible = hw::disk::kCompatible;
    o.driver_binary = config.driver;
    o.heartbeat_period_ns = 10 * kMs;
    o.request_deadline_ns = 300 * kMs;
    o.data = {.ring_entries = 64, .buffer_size = 64 << 10, .buffer_count = 320};
    o.restart.budget = config.budget;
    o.restart.backoff_initial_ns = 0;
    o.restart.backoff_max_ns = 1 * kMs;
    o.settings["queue_depth"] = "32";
    o.failpoints = config.failpoints;
    // The driver's own output (and its sanitizer reports) on the test's stderr.
    o.inherit_stdio = std::getenv("UMBRA_BLOCK_TEST_STDIO") != nullptr;
    o.hw = disk_.get();
    host_ = *sup_.AddDevice(std::move(o));
    shadow_ = *BlockShadow::Create(*host_, {.max_requests = config.max_requests}, config.mode);
    shadow_->Start();
    kill_ = std::make_unique<KillFixture>(*host_, *shadow_, KillFixture::Options{});
  }

  ~BlockRig() {
    kill_.reset();
    shadow_.reset();
    sup_.Stop();
    disk_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  BlockShadow& shadow() { return *shadow_; }
  hw::disk::DiskDevice& disk() { return *disk_; }
  runtime::DriverHost& host() { return *host_; }

  // Kills the driver (every way: KillFixture) and waits until it serves again.
  KillFixture& kill() { return *kill_; }
  void KillAndRecover(int sig) { kill_->KillAndRecover(sig); }

 private:
  Config config_;
  std::string dir_;
  std::unique_ptr<hw::disk::DiskDevice> disk_;  // outlives the supervisor, whose host points at it
  runtime::Supervisor sup_;
  runtime::DriverHost* host_ = nullptr;  // owned by sup_
  std::unique_ptr<BlockShadow> shadow_;
  std::unique_ptr<KillFixture> kill_;  // points at host_ and shadow_
};

}  // namespace umbra::shadows::block
