#include "shadows/workload.h"

namespace umbra::faultinject::campaign {

Result<void> WorkloadRegistry::Register(const std::string& name, WorkloadFactory factory) {
  if (name.empty() || !factory) return Fail(Errc::kInvalidArgument, "a workload needs a name and a factory");
  if (Has(name)) return Fail(Errc::kAlreadyExists, "workload '" + name + "' is already registered");
  factories_.emplace(name, std::move(factory));
  return {};
}

Result<std::unique_ptr<Workload>> WorkloadRegistry::Create(const std::string& name) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) return Fail(Errc::kNotFound, "no workload named '" + name + "'");
  return it->second();
}

std::vector<std::string> WorkloadRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

}  // namespace umbra::faultinject::campaign

namespace umbra::faultinject::campaign {

std::optional<std::string> Workload::Unseen(FaultType fault, const WorkResult& result) const {
  return ErrorIsTheDriversAnswer(fault, result);
}

std::optional<std::string> ErrorIsTheDriversAnswer(FaultType fault, const WorkResult& result) {
  if (fault != FaultType::kError || result.errors == 0 || result.wrong_data > 0) return std::nullopt;
  return "the driver answered with an error and the application was told: a shadow hides a driver's "
         "failure, not its answer";
}

}  // namespace umbra::faultinject::campaign
