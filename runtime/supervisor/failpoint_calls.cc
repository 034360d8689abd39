// Failpoint calls into the running driver: arm a spec, query the counts.
#include "runtime/supervisor/driver_host_impl.h"

#include <boost/asio/post.hpp>

namespace umbra::runtime {

Result<void> DriverHost::SetFailpoints(const std::string& spec, int64_t timeout_ns) {
  // Armed again in every driver started from now on (SendAttach reads it on the loop).
  asio::post(impl_->io_, [this, spec] { impl_->options_.failpoints = spec; });
  return ArmFailpointsInRunningDriver(spec, timeout_ns);
}

Result<void> DriverHost::ArmFailpointsInRunningDriver(const std::string& spec, int64_t timeout_ns) {
  auto r = impl_->SendAndWait(
      [spec](uint64_t id) {
        HostToDriver m;
        m.mutable_set_failpoints()->set_id(id);
        m.mutable_set_failpoints()->set_spec(spec);
        return m;
      },
      timeout_ns, "setting failpoints");
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<std::vector<FailpointCount>> DriverHost::QueryFailpoints(int64_t timeout_ns) {
  auto r = impl_->SendAndWait(
      [](uint64_t id) {
        HostToDriver m;
        m.mutable_query_failpoints()->set_id(id);
        return m;
      },
      timeout_ns, "querying failpoints");
  if (!r) return std::unexpected(r.error());
  proto::FailpointCounts counts;
  if (!counts.ParseFromString(*r)) return Fail(Errc::kProtocol, "bad failpoint counts");
  std::vector<FailpointCount> out;
  for (const auto& site : counts.sites()) {
    if (!Impl::ValidName(site.name())) return Fail(Errc::kProtocol, "bad failpoint site name");
    out.push_back({site.name(), site.hits(), site.triggers()});
  }
  return out;
}

}  // namespace umbra::runtime
