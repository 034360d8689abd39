// ActionContext: runs one workload outside a campaign, on a Supervisor of its
// own with warm-standby drivers, and does something to the first device once
// a third of the units are done, on a thread of its own so that the
// application keeps going meanwhile (the live-update tests and bench: an
// upgrade, or for comparison a SIGKILL).
//
//   ActionContext ctx(units, [](runtime::DriverHost& h) { h.Kill(SIGKILL); return UpgradeResult{}; });
//   UMBRA_TRY(workload->SetUp(ctx));
//   WorkResult work = workload->Run(ctx);
//   auto outcome = ctx.Outcome();   // what the action returned
//   workload->TearDown();
//
// Thread safety: used by the workload's thread; the action runs on another.
#pragma once

#include <functional>
#include <future>
#include <vector>

#include "shadows/builtin/builtin.h"  // RegisterBuiltinWorkloads
#include "shadows/workload.h"
#include "runtime/supervisor/supervisor.h"

namespace umbra::faultinject::campaign {

class ActionContext : public WorkloadContext {
 public:
  using Action = std::function<Result<runtime::UpgradeResult>(runtime::DriverHost&)>;

  ActionContext(uint64_t units, Action action) : units_(units), action_(std::move(action)) {}
  ~ActionContext() override {
    if (done_.valid()) done_.wait();
  }

  shadows::RecoveryMode mode() const override { return shadows::RecoveryMode::kShadow; }
  uint64_t seed() const override { return 1234; }
  uint64_t units() const override { return units_; }
  Result<runtime::DriverHost*> AddDevice(runtime::DriverHostOptions o) override {
    o.warm_standby = true;
    auto host = sup_.AddDevice(std::move(o));
    if (host) hosts_.push_back(*host);
    return host;
  }
  void Watch(shadows::Shadow& shadow) override { shadows_.push_back(&shadow); }
  void Progress(uint64_t done) override {
    if (done < units_ / 3 || hosts_.empty() || done_.valid()) return;
    runtime::DriverHost* host = hosts_.front();
    done_ = std::async(std::launch::async, [this, host] { return action_(*host); });
  }

  // What the action returned (waits for it); kNotFound when it never ran.
  Result<runtime::UpgradeResult> Outcome() {
    if (!done_.valid()) return Fail(Errc::kNotFound, "the action never ran: the workload did too few units");
    return done_.get();
  }
  runtime::DriverHost* host() const { return hosts_.empty() ? nullptr : hosts_.front(); }
  shadows::Shadow* shadow() const { return shadows_.empty() ? nullptr : shadows_.front(); }
  runtime::Supervisor& supervisor() { return sup_; }

 private:
  uint64_t units_;
  Action action_;
  runtime::Supervisor sup_;  // before the futures: the action uses its hosts
  std::vector<runtime::DriverHost*> hosts_;
  std::vector<shadows::Shadow*> shadows_;
  std::future<Result<runtime::UpgradeResult>> done_;
};

}  // namespace umbra::faultinject::campaign
