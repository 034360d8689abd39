// The file-transfer workload: the net class's go-back-N file transfer
// (shadows/net/workloads/file_transfer.h) from the NIC, through NetShadow, to
// a peer on the emulated NIC's in-process wire.
//
// A unit is one 1 KiB DATA frame handed to the NIC (retransmissions count,
// so host-side faults fire at a frame count). The file is derived from the
// run's seed. Verification: the sender's FIN was acknowledged (so the
// receiver checked length and FNV-1a checksum) and the bytes the peer
// received equal the file. An error returned by the interface ends the
// transfer, as it would end a real application's.
//
//   std::unique_ptr<Workload> w = std::make_unique<FileTransferWorkload>();
//
// Thread safety: one run's thread, plus the receiver thread Run starts and
// joins.
#pragma once

#include <memory>

#include "shadows/workload.h"
#include "runtime/hw/nic/nic.h"
#include "runtime/hw/nic/wire.h"
#include "shadows/net/net_shadow.h"

namespace umbra::faultinject::campaign {

class FileTransferWorkload : public SingleDeviceWorkload {
 public:
  static constexpr std::string_view kName = "file-transfer";

  ~FileTransferWorkload() override;

  std::string_view name() const override { return kName; }
  std::string_view device_class() const override { return "net"; }
  std::string_view driver() const override { return "nic"; }
  uint64_t default_units() const override { return 64; }
  std::vector<SiteUse> sites(uint64_t units) const override;

  Result<void> SetUp(WorkloadContext& ctx) override;
  WorkResult Run(WorkloadContext& ctx) override;
  void TearDown() override;

 private:
  // Declared first: the emulated NIC and its wire outlive the shadow and the
  // run's Supervisor (RunOne stops it before destroying the workload).
  std::unique_ptr<hw::nic::Nic> nic_;
  std::unique_ptr<hw::nic::PeerEndpoint> peer_;  // the wire's far end: the receiver's side
  std::unique_ptr<net::NetShadow> shadow_;       // the application's interface; watched by the engine
};

}  // namespace umbra::faultinject::campaign
