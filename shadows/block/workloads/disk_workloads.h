// The block class's workloads, over one emulated disk (an image in a scratch
// directory) driven by the disk driver through BlockShadow:
//
//   disk-verifier  the block class's VerifyWorkload: a unit is one random
//                  read, write, FUA write or flush (8 in flight) over a 1 MiB
//                  region; verification reads the region back and checks
//                  every block's address, generation and pattern.
//   sqlite         the block class's SqliteWorkload on BlockVfs: a unit is one
//                  transaction (8 inserts, 4 updates, its log row, COMMIT with
//                  SQLite's syncs as flushes); verification closes the
//                  database, opens it again from the disk and runs
//                  `PRAGMA integrity_check` plus the comparison with the model
//                  of committed transactions.
//
// Every request or transaction that returned an error counts as an error the
// application saw.
//
//   std::unique_ptr<Workload> w = std::make_unique<DiskVerifierWorkload>();
//
// Thread safety: one run's thread.
#pragma once

#include <memory>
#include <string>

#include "shadows/workload.h"
#include "runtime/hw/disk/disk_device.h"
#include "shadows/block/block_shadow.h"

namespace umbra::shadows::block {
class BlockVfs;
class SqliteWorkload;
}  // namespace umbra::shadows::block

namespace umbra::faultinject::campaign {

// The device both block workloads run on.
class DiskWorkload : public SingleDeviceWorkload {
 public:
  ~DiskWorkload() override;

  std::string_view device_class() const override { return "block"; }
  std::string_view driver() const override { return "disk"; }
  Result<void> SetUp(WorkloadContext& ctx) override;
  void TearDown() override;

 protected:
  shadows::block::BlockShadow& disk() { return *shadow_; }

 private:
  std::string dir_;                                      // scratch directory holding the image; removed last
  std::unique_ptr<hw::disk::DiskDevice> device_;         // outlives the run's Supervisor's host, which points at it
  std::unique_ptr<shadows::block::BlockShadow> shadow_;  // the application's disk; watched by the engine
};

class DiskVerifierWorkload final : public DiskWorkload {
 public:
  static constexpr std::string_view kName = "disk-verifier";
  std::string_view name() const override { return kName; }
  uint64_t default_units() const override { return 256; }
  std::vector<SiteUse> sites(uint64_t units) const override;
  WorkResult Run(WorkloadContext& ctx) override;
};

class SqliteTxnWorkload final : public DiskWorkload {
 public:
  static constexpr std::string_view kName = "sqlite";
  SqliteTxnWorkload();
  ~SqliteTxnWorkload() override;
  std::string_view name() const override { return kName; }
  uint64_t default_units() const override { return 8; }
  std::vector<SiteUse> sites(uint64_t units) const override;
  // The disk, then the VFS and the database (created before faults are armed).
  Result<void> SetUp(WorkloadContext& ctx) override;
  WorkResult Run(WorkloadContext& ctx) override;
  void TearDown() override;

 private:
  // Destroyed before the disk (base class members go last): SQLite's files live on it.
  std::unique_ptr<shadows::block::BlockVfs> vfs_;
  std::unique_ptr<shadows::block::SqliteWorkload> db_;
};

}  // namespace umbra::faultinject::campaign
