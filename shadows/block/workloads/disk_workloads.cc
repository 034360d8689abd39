#include "shadows/block/workloads/disk_workloads.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "shadows/block/workloads/sqlite_vfs.h"
#include "shadows/block/workloads/sqlite_workload.h"
#include "shadows/block/workloads/verify_workload.h"

namespace umbra::faultinject::campaign {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr uint64_t kCapacityBlocks = 1024;  // 4 MiB of 4 KiB blocks
constexpr uint64_t kVerifyBlocks = 256;     // the verifier's region: 1 MiB
constexpr uint64_t kOpsPerBatch = 16;       // verifier operations between progress reports

// Sites a disk workload reaches per request (submit, complete) and per
// interrupt, with SDK sites; `flushes` flush requests.
std::vector<SiteUse> DiskSites(uint64_t requests, uint64_t flushes, uint64_t units) {
  const uint64_t irqs = requests / 4 + 1;
  return {{"sdk.request", requests}, {"sdk.request.exit", requests}, {"sdk.complete", requests},
          {"disk.submit", requests}, {"disk.complete", requests},    {"disk.irq", irqs},
          {"disk.flush", flushes},   {std::string(kHostSite), units}};
}

void CountError(WorkResult& r, const std::string& what) {
  if (r.errors == 0) r.first_error = what;
}

}  // namespace

DiskWorkload::~DiskWorkload() {
  shadow_.reset();
  device_.reset();
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
}

Result<void> DiskWorkload::SetUp(WorkloadContext& ctx) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "umbra-campaign-disk-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return FailErrno("mkdtemp " + tmpl);
  dir_ = tmpl;
  hw::disk::DiskOptions d;
  d.name = "disk0";
  d.image_path = dir_ + "/disk0.img";
  d.capacity_blocks = kCapacityBlocks;
  d.cache_bytes = 1 << 20;
  d.spin_ns = 0;  // two cores shared with the driver and the client: sleep, do not poll
  device_ = UMBRA_TRY(hw::disk::DiskDevice::Create(std::move(d)));
  device_->Start();
  runtime::DriverHostOptions o;
  o.device_name = "disk0";
  o.device_class = "block";
  o.compatible = hw::disk::kCompatible;
  o.driver_binary = "umbra-driver-disk";
  o.data = {.ring_entries = 64, .buffer_size = 64 << 10, .buffer_count = 128};
  o.settings["queue_depth"] = "32";
  o.hw = device_.get();
  host_ = UMBRA_TRY(ctx.AddDevice(std::move(o)));
  shadow_ = UMBRA_TRY(shadows::block::BlockShadow::Create(*host_, {.max_requests = 128}, ctx.mode()));
  shadow_->Start();
  UMBRA_TRY(shadow_->WaitUntilPassive(5 * kSec));
  ctx.Watch(*shadow_);
  return {};
}

void DiskWorkload::TearDown() {
  if (!shadow_) return;
  shadow_->Stop();
  shadow_.reset();  // its destructor gives pool buffers back: before the Supervisor stops
}

// ---- disk-verifier ----

std::vector<SiteUse> DiskVerifierWorkload::sites(uint64_t units) const {
  return DiskSites(units, units * 3 / 100 + 1, units);
}

WorkResult DiskVerifierWorkload::Run(WorkloadContext& ctx) {
  WorkResult r;
  shadows::block::VerifyWorkload w(
      disk(), {.blocks = kVerifyBlocks, .queue_depth = 8, .seed = ctx.seed(), .io_timeout_ns = 5 * kSec});
  while (r.units_done < ctx.units()) {
    const uint64_t n = std::min(kOpsPerBatch, ctx.units() - r.units_done);
    const shadows::block::VerifyReport& rep = w.Run(n);
    r.units_done += n;
    ctx.Progress(r.units_done);
    if (rep.errors >= 100) break;  // the verifier gives up too
  }
  (void)disk().WaitUntilPassive(5 * kSec);
  const shadows::block::VerifyReport rep = w.Verify();
  if (rep.errors > 0) CountError(r, rep.first_problem);
  r.errors = rep.errors;
  r.wrong_data = rep.lost + rep.misdirected + rep.corrupt;
  r.verified = rep.clean() && r.units_done == ctx.units();
  r.verification = "disk verifier: " + rep.ToString();
  return r;
}

// ---- sqlite ----

SqliteTxnWorkload::SqliteTxnWorkload() = default;

SqliteTxnWorkload::~SqliteTxnWorkload() {
  db_.reset();
  vfs_.reset();
}

std::vector<SiteUse> SqliteTxnWorkload::sites(uint64_t units) const {
  // Measured with `umbra failpoints list --driver disk`: a transaction in
  // rollback-journal mode writes the journal, syncs, writes the database,
  // syncs and deletes the journal: about a dozen requests, three flushes.
  return DiskSites(units * 12, units * 3, units);
}

Result<void> SqliteTxnWorkload::SetUp(WorkloadContext& ctx) {
  UMBRA_TRY(DiskWorkload::SetUp(ctx));
  // SQLite's VFS names are process-wide, and runs may share a process.
  static std::atomic<uint64_t> next{0};
  const std::string vfs_name = "umbra-campaign-" + std::to_string(next++);
  vfs_ = UMBRA_TRY(shadows::block::BlockVfs::Create(disk(), {.name = vfs_name}));
  db_ = std::make_unique<shadows::block::SqliteWorkload>(
      shadows::block::SqliteWorkloadOptions{.vfs = vfs_name, .seed = ctx.seed()});
  return db_->Open();
}

WorkResult SqliteTxnWorkload::Run(WorkloadContext& ctx) {
  WorkResult r;
  for (; r.units_done < ctx.units(); ctx.Progress(++r.units_done)) (void)db_->Run(1);
  const uint64_t failed = db_->report().failed;
  // From the medium again: a fresh VFS (headers read back) and connection.
  (void)disk().WaitUntilPassive(5 * kSec);
  db_->Close();
  const std::string vfs_name = vfs_->name();
  vfs_.reset();
  auto vfs = shadows::block::BlockVfs::Create(disk(), {.name = vfs_name});
  Result<void> opened = vfs ? Result<void>() : std::unexpected(vfs.error());
  if (vfs) {
    vfs_ = std::move(*vfs);
    opened = db_->Open();
  }
  const shadows::block::SqliteReport rep = opened ? db_->Check() : db_->report();
  if (failed > 0) CountError(r, rep.first_error);
  r.errors = failed;
  if (!opened) {
    CountError(r, "reopening the database: " + opened.error().ToString());
    ++r.errors;
  }
  r.verified = opened && rep.clean();
  if (opened) r.wrong_data = (rep.integrity_ok ? 0 : 1) + rep.missing_txns + rep.missing_rows + rep.wrong_rows;
  r.verification = "sqlite: " + rep.ToString() + (opened ? "" : ", reopen failed");
  return r;
}

void SqliteTxnWorkload::TearDown() {
  if (db_) db_->Close();
  vfs_.reset();  // SQLite's files live on the disk the base class releases
  DiskWorkload::TearDown();
}

}  // namespace umbra::faultinject::campaign
