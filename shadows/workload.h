// Workloads: the applications a campaign runs over shadowed devices.
//
// One Workload per application: "echo-stream", "file-transfer" (net),
// "disk-verifier" and "sqlite" (block), "audio-playback" (sound). A
// workload sets up its device(s) on the run's Supervisor through the
// WorkloadContext, hands each shadow to the engine (Watch), runs a bounded
// amount of work reporting each unit (Progress), and ends with its own
// verification. The engine injects the run's faults and classifies the run by
// what the workload saw.
//
//   WorkloadRegistry registry;
//   RegisterBuiltinWorkloads(registry);   // every class's (shadows/builtin/)
//   std::unique_ptr<Workload> w = UMBRA_TRY(registry.Create("echo-stream"));
//   UMBRA_TRY(w->SetUp(ctx));
//   WorkResult r = w->Run(ctx);
//   w->TearDown();
//
// A class's workloads live in its folder (shadows/<class>/workloads/) and are
// registered by the class (shadows/<class>/class.cc); docs/fault-injection.md
// ("Campaigns") says how a class adds one.
//
// Thread safety: a Workload is used by one thread (its run's). Register every
// workload before use; Create may then be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "faultinject/plan.h"
#include "base/clock.h"
#include "base/result.h"
#include "runtime/supervisor/driver_host.h"
#include "shadows/shadow.h"

namespace umbra::faultinject::campaign {

// What the engine offers a workload during one run.
class WorkloadContext {
 public:
  virtual ~WorkloadContext() = default;
  virtual shadows::RecoveryMode mode() const = 0;
  // The run's seed, for the workload's own data (payloads, orders).
  virtual uint64_t seed() const = 0;
  // Units of work to do in this run.
  virtual uint64_t units() const = 0;
  // Adds a device to the run's Supervisor, with the campaign's supervision
  // settings (heartbeat, deadlines, restart budget) applied over `options`.
  virtual Result<runtime::DriverHost*> AddDevice(runtime::DriverHostOptions options) = 0;
  // Hands a started, passive shadow to the engine: faults are injected into
  // its driver, and its state and recovery records classify the run. The
  // shadow must stay alive until the workload is destroyed.
  virtual void Watch(shadows::Shadow& shadow) = 0;
  // Reports that `done` units are complete; host-side faults fire here.
  virtual void Progress(uint64_t done) = 0;
};

// What the application saw.
struct WorkResult {
  uint64_t units_done = 0;
  uint64_t errors = 0;  // operations that returned an error to the application
  std::string first_error;
  bool verified = false;     // the workload's own end-to-end check passed
  std::string verification;  // what was checked, or what did not match
  // Data the application got back wrong: blocks lost, misdirected or
  // corrupt, rows missing, chunks changed, frames out of place. An error a
  // call returned is not wrong data; a lie that changes data the class
  // could have checked is never by design.
  uint64_t wrong_data = 0;
};

class Workload {
 public:
  virtual ~Workload() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view device_class() const = 0;
  // The sample driver it runs ("echo", "nic", "disk", "sound").
  virtual std::string_view driver() const = 0;
  virtual uint64_t default_units() const = 0;
  // The driver sites a run reaches, with about how often (bounds "after N").
  virtual std::vector<SiteUse> sites(uint64_t units) const = 0;

  // Creates the devices and shadows, starts them, and Watches every shadow.
  virtual Result<void> SetUp(WorkloadContext& ctx) = 0;
  // Does ctx.units() units of work, calling ctx.Progress after each, then verifies.
  virtual WorkResult Run(WorkloadContext& ctx) = 0;
  // Stops the shadows (which shut their drivers down). Called before the
  // run's Supervisor stops, which destroys the DriverHosts: a shadow whose
  // destructor touches its host (BlockShadow gives back pool buffers) is
  // destroyed here too.
  virtual void TearDown() = 0;
  // The devices' drivers, for `umbra failpoints list`.
  virtual std::vector<runtime::DriverHost*> hosts() const = 0;

  // Why this malfunction is by design, when it is: the class's shadow cannot
  // see `fault`'s lie, and `result` shows only what that lie explains (e.g.
  // `error`: the driver answered EIO and the application was told, nothing
  // else went wrong). The engine then records the run as Outcome::kExpected
  // with this reason; nullopt leaves it a malfunction: a bug. The default
  // is the rule every class shares, ErrorIsTheDriversAnswer.
  virtual std::optional<std::string> Unseen(FaultType fault, const WorkResult& result) const;
};

// The reason shared by every class: a driver that is alive and answers a
// request with an error (`error`) is believed; a shadow hides a driver's
// failure, not its answer. For results with errors and no wrong data.
std::optional<std::string> ErrorIsTheDriversAnswer(FaultType fault, const WorkResult& result);

// A workload on one device: keeps that device's DriverHost (owned by the
// run's Supervisor; set in SetUp) and answers hosts() with it.
class SingleDeviceWorkload : public Workload {
 public:
  std::vector<runtime::DriverHost*> hosts() const override {
    if (host_ == nullptr) return {};
    return {host_};
  }

 protected:
  runtime::DriverHost* host_ = nullptr;
};

// Reads something back from the driver for a workload's verification: waits
// until the shadow is passive and retries `read` until it succeeds or
// `timeout_ns` passed. A fault armed in the driver may hit the check itself,
// and a kill posted at the last unit may land during it, before the shadow
// even noticed the kill.
template <class T>
Result<T> ReadFromDriver(shadows::Shadow& shadow, const std::function<Result<T>()>& read,
                         int64_t timeout_ns = 5'000'000'000) {
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  Result<T> out = Fail(Errc::kTimeout, "not read");
  for (bool first = true; !out && MonotonicNanos() < deadline; first = false) {
    if (!first) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    (void)shadow.WaitUntilPassive(timeout_ns);
    out = read();
  }
  return out;
}

using WorkloadFactory = std::function<std::unique_ptr<Workload>()>;

class WorkloadRegistry {
 public:
  // Refuses an empty name or one registered twice (kAlreadyExists).
  Result<void> Register(const std::string& name, WorkloadFactory factory);
  Result<std::unique_ptr<Workload>> Create(const std::string& name) const;
  bool Has(const std::string& name) const { return factories_.count(name) > 0; }
  std::vector<std::string> names() const;

 private:
  std::map<std::string, WorkloadFactory> factories_;
};

}  // namespace umbra::faultinject::campaign
