// InProcessBackend: a DriverBackend without a driver process, for tests,
// benchmarks and `umbra tree` previews.
//
//   auto backend = std::make_shared<InProcessBackend>(*model, InProcessBackend::Completion::kOnDemand);
//   model->AddDriver({.name = "e1000", ...}, backend);   // nic0: probing
//   backend->CompleteProbe("nic0");                       // nic0: bound
//   backend->FailNextProbe("nic1", Error{Errc::kUnavailable, "firmware not ready"});
//
// Thread safety: all members may be called from any thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model/driver_backend.h"
#include "runtime/model/model.h"

namespace umbra::model {

class InProcessBackend : public DriverBackend {
 public:
  enum class Completion {
    kSynchronous,  // Probe calls ProbeDone before it returns
    kOnDemand,     // Probe waits for CompleteProbe
  };

  // `model` must outlive the backend's use (the model holds the backend).
  InProcessBackend(Model& model, Completion completion) : model_(model), completion_(completion) {}

  void Probe(Device& device) override;
  void Remove(Device& device) override;

  // The next probe of `device` completes with `error` (both modes).
  void FailNextProbe(std::string device, Error error);
  // Completes a probe waiting in kOnDemand mode; kNotFound if none waits.
  Result<void> CompleteProbe(std::string_view device, Result<void> result = {});
  // Devices whose probe waits for CompleteProbe.
  std::vector<std::string> pending() const;
  // "probe nic0", "remove nic0", in call order.
  std::vector<std::string> calls() const;

 private:
  Model& model_;  // raw: the model owns this backend through its driver
  const Completion completion_;
  mutable std::mutex mu_;
  std::map<std::string, Error> fail_next_;                  // guarded by mu_
  std::map<std::string, std::shared_ptr<Device>> pending_;  // guarded by mu_; keeps probing devices alive
  std::vector<std::string> calls_;                          // guarded by mu_
};

}  // namespace umbra::model
