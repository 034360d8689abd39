#include "runtime/model/inprocess_backend.h"

#include <utility>

namespace umbra::model {

void InProcessBackend::Probe(Device& device) {
  Result<void> result;
  {
    std::lock_guard lk(mu_);
    calls_.push_back("probe " + device.name());
    auto it = fail_next_.find(device.name());
    if (it != fail_next_.end()) {
      result = std::unexpected(it->second);
      fail_next_.erase(it);
    } else if (completion_ == Completion::kOnDemand) {
      pending_[device.name()] = device.shared_from_this();
      return;
    }
  }
  (void)model_.ProbeDone(device, std::move(result));
}

void InProcessBackend::Remove(Device& device) {
  std::lock_guard lk(mu_);
  calls_.push_back("remove " + device.name());
  pending_.erase(device.name());
}

void InProcessBackend::FailNextProbe(std::string device, Error error) {
  std::lock_guard lk(mu_);
  fail_next_.insert_or_assign(std::move(device), std::move(error));
}

Result<void> InProcessBackend::CompleteProbe(std::string_view device, Result<void> result) {
  std::shared_ptr<Device> dev;
  {
    std::lock_guard lk(mu_);
    auto it = pending_.find(std::string(device));
    if (it == pending_.end()) return Fail(Errc::kNotFound, "no probe of " + std::string(device) + " is waiting");
    dev = std::move(it->second);
    pending_.erase(it);
  }
  return model_.ProbeDone(*dev, std::move(result));
}

std::vector<std::string> InProcessBackend::pending() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& [name, dev] : pending_) out.push_back(name);
  return out;
}

std::vector<std::string> InProcessBackend::calls() const {
  std::lock_guard lk(mu_);
  return calls_;
}

}  // namespace umbra::model
