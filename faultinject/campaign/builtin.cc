// The built-in workloads, listed explicitly (no static registration): a new
// device class adds its workload here.
#include "faultinject/campaign/echo_stream.h"
#include "faultinject/campaign/workload.h"

namespace umbra::faultinject::campaign {

Result<void> RegisterBuiltinWorkloads(WorkloadRegistry& registry) {
  UMBRA_TRY(registry.Register(std::string(EchoStreamWorkload::kName),
                              [] { return std::make_unique<EchoStreamWorkload>(); }));
  return {};
}

}  // namespace umbra::faultinject::campaign
