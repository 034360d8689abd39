#include "shadows/block/class.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>

#include "runtime/hw/disk/disk_device.h"
#include "runtime/hw/disk/disk_regs.h"
#include "shadows/block/block_shadow.h"
#include "shadows/block/workloads/disk_workloads.h"

namespace umbra::shadows {

namespace {

using machine::BoolSetting;
using machine::NumberSetting;
using machine::Setting;

class DiskHardware final : public machine::Hardware {
 public:
  explicit DiskHardware(std::unique_ptr<hw::disk::DiskDevice> disk) : disk_(std::move(disk)) {}
  ~DiskHardware() override { disk_->Stop(); }
  hw::Device* device() override { return disk_.get(); }
  ipc::DataChannelOptions data_options() const override {
    return {.ring_entries = 64, .buffer_size = 64 << 10, .buffer_count = 320};
  }

 private:
  std::unique_ptr<hw::disk::DiskDevice> disk_;  // the device and its image file
};

Result<void> CheckDisk(const machine::HardwareSpec& spec) {
  for (const char* key : {"block_size", "blocks", "cache", "writeback_start", "hw_cpu"}) {
    UMBRA_TRY(NumberSetting(spec, key, 0));
  }
  UMBRA_TRY(BoolSetting(spec, "idle_writeback", false));
  return {};
}

Result<std::unique_ptr<machine::Hardware>> CreateDisk(const machine::HardwareSpec& spec) {
  hw::disk::DiskOptions o;
  o.name = spec.device;
  std::filesystem::path image = Setting(spec, "image", spec.device + ".img");
  if (image.is_relative() && !spec.state_dir.empty()) image = std::filesystem::path(spec.state_dir) / image;
  o.image_path = image.string();
  o.block_size = static_cast<uint32_t>(UMBRA_TRY(NumberSetting(spec, "block_size", 4096)));
  std::error_code ec;
  const bool exists = std::filesystem::exists(image, ec);
  o.capacity_blocks = UMBRA_TRY(NumberSetting(spec, "blocks", exists ? 0 : 4096));
  o.cache_bytes = UMBRA_TRY(NumberSetting(spec, "cache", o.cache_bytes));
  o.writeback_start_percent =
      static_cast<uint32_t>(std::min<uint64_t>(UMBRA_TRY(NumberSetting(spec, "writeback_start", 50)), 101));
  o.idle_writeback = UMBRA_TRY(BoolSetting(spec, "idle_writeback", false));
  if (spec.settings.contains("hw_cpu")) {
    o.hw_cpu = static_cast<int>(std::min<uint64_t>(UMBRA_TRY(NumberSetting(spec, "hw_cpu", 0)), INT32_MAX));
  }
  auto disk = UMBRA_TRY(hw::disk::DiskDevice::Create(std::move(o)));
  return std::unique_ptr<machine::Hardware>(new DiskHardware(std::move(disk)));
}

}  // namespace

// The hardware's keys, then its driver's (drivers/disk/), then "failpoints"
// (armed in the driver before probe).
Result<void> RegisterBlockClass(ClassRegistry& registry) {
  UMBRA_TRY(registry.AddHardware(hw::disk::kCompatible, CreateDisk,
                                 {{"image", "blocks", "block_size", "cache", "writeback_start", "idle_writeback",
                                   "hw_cpu", "queue_depth", "payloads", "failpoints"},
                                  CheckDisk}));
  UMBRA_TRY(registry.AddShadow("block", block::CreateBlockShadow, block::BlockSettings().specs()));
  UMBRA_TRY(registry.AddWorkload<faultinject::campaign::DiskVerifierWorkload>());
  UMBRA_TRY(registry.AddWorkload<faultinject::campaign::SqliteTxnWorkload>());
  return {};
}

}  // namespace umbra::shadows
