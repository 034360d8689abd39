// The built-in workloads, listed explicitly (no static registration): a new
// device class adds its workload here.
#include "shadows/sound/workloads/audio_playback.h"
#include "shadows/block/workloads/disk_workloads.h"
#include "shadows/echo/workloads/echo_stream.h"
#include "shadows/net/workloads/file_transfer_workload.h"
#include "shadows/uart/workloads/uart_echo.h"
#include "shadows/workload.h"

namespace umbra::faultinject::campaign {
namespace {

template <class W>
Result<void> Add(WorkloadRegistry& registry) {
  return registry.Register(std::string(W::kName), [] { return std::make_unique<W>(); });
}

}  // namespace

Result<void> RegisterBuiltinWorkloads(WorkloadRegistry& registry) {
  UMBRA_TRY(Add<EchoStreamWorkload>(registry));
  UMBRA_TRY(Add<FileTransferWorkload>(registry));
  UMBRA_TRY(Add<DiskVerifierWorkload>(registry));
  UMBRA_TRY(Add<SqliteTxnWorkload>(registry));
  UMBRA_TRY(Add<AudioPlaybackWorkload>(registry));
  UMBRA_TRY(Add<UartEchoWorkload>(registry));
  return {};
}

}  // namespace umbra::faultinject::campaign
