// A disk on a fresh temporary image, with a TestDriver playing its driver.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runtime/hw/disk/disk_device.h"
#include "runtime/hw/disk/disk_test_driver.h"

namespace umbra::hw::disk {

class DiskFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/umbra-disk-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    driver_.reset();
    disk_.reset();
    std::filesystem::remove_all(dir_);
  }

  DiskOptions Options() const {
    DiskOptions o;
    o.image_path = dir_ + "/disk.img";
    o.capacity_blocks = 1024;
    o.block_size = 4096;
    o.dma_size = 2 << 20;
    o.spin_ns = 5'000;
    return o;
  }

  // Creates and starts the disk and enables a queue pair of `depth`.
  void StartDisk(DiskOptions options, uint32_t depth = 32) {
    auto disk = DiskDevice::Create(std::move(options));
    ASSERT_TRUE(disk.has_value()) << disk.error().ToString();
    disk_ = std::move(*disk);
    disk_->Start();
    NewDriver(depth);
  }

  // A fresh driver programming the queues from scratch (as after a Reset).
  void NewDriver(uint32_t depth = 32) {
    const Resources r = disk_->resources();
    driver_ = std::make_unique<TestDriver>(disk_->registers(), disk_->dma(), r.doorbell_fd, r.interrupt_fd);
    ASSERT_TRUE(driver_->Enable(depth));
  }

  void ResetAndReprogram(uint32_t depth = 32) {
    disk_->Reset();
    NewDriver(depth);
  }

  uint32_t Bs() const { return disk_->block_size(); }

  // Fills data buffer `index` with `blocks` blocks of pattern (lba, generation).
  void Fill(uint64_t index, uint64_t lba, uint32_t blocks, uint32_t generation) {
    for (uint32_t b = 0; b < blocks; ++b) {
      std::byte* p = driver_->Buffer(driver_->DataOffset(index + b));
      for (uint32_t i = 0; i < Bs(); i += 16) {
        const uint64_t words[2] = {lba + b, generation + uint64_t{i} * 0x100000000ull};
        std::memcpy(p + i, words, 16);
      }
    }
  }
  std::vector<std::byte> Pattern(uint64_t lba, uint32_t blocks, uint32_t generation) const {
    std::vector<std::byte> out(uint64_t{blocks} * disk_->block_size());
    for (uint32_t b = 0; b < blocks; ++b) {
      for (uint32_t i = 0; i < disk_->block_size(); i += 16) {
        const uint64_t words[2] = {lba + b, generation + uint64_t{i} * 0x100000000ull};
        std::memcpy(out.data() + uint64_t{b} * disk_->block_size() + i, words, 16);
      }
    }
    return out;
  }

  Status Write(uint64_t lba, uint32_t blocks, uint32_t generation, Opcode op = Opcode::kWrite) {
    Fill(0, lba, blocks, generation);
    return *driver_->Run(TestDriver::Io(op, 7, lba, blocks, driver_->DataOffset(0), uint64_t{blocks} * Bs()));
  }
  Status Flush() { return *driver_->Run(TestDriver::Io(Opcode::kFlush, 8, 0, 0, 0, 0)); }
  // Reads through the device into a vector.
  std::vector<std::byte> Read(uint64_t lba, uint32_t blocks) {
    const uint64_t length = uint64_t{blocks} * Bs();
    std::memset(driver_->Buffer(driver_->DataOffset(0)), 0xEE, length);
    auto status = driver_->Run(TestDriver::Io(Opcode::kRead, 9, lba, blocks, driver_->DataOffset(0), length));
    EXPECT_EQ(status, Status::kOk);
    const std::byte* p = driver_->Buffer(driver_->DataOffset(0));
    return {p, p + length};
  }
  std::vector<std::byte> Durable(uint64_t lba, uint32_t blocks) {
    auto r = disk_->ReadDurable(lba, blocks);
    EXPECT_TRUE(r.has_value());
    return r.value_or(std::vector<std::byte>{});
  }
  std::vector<std::byte> Zeros(uint32_t blocks) const {
    return std::vector<std::byte>(uint64_t{blocks} * disk_->block_size());
  }

  std::string dir_;
  std::unique_ptr<DiskDevice> disk_;
  std::unique_ptr<TestDriver> driver_;
};

}  // namespace umbra::hw::disk
