#include "shadows/registry.h"

namespace umbra::shadows {

Result<void> ShadowRegistry::Register(const std::string& class_name, ShadowFactory factory) {
  if (class_name.empty()) return Fail(Errc::kInvalidArgument, "shadow class needs a name");
  if (!factories_.emplace(class_name, std::move(factory)).second) {
    return Fail(Errc::kAlreadyExists, "shadow class '" + class_name + "' is already registered");
  }
  return {};
}

Result<std::unique_ptr<Shadow>> ShadowRegistry::Create(const std::string& class_name,
                                                       runtime::DriverHost& host,
                                                       const ShadowSettings& settings,
                                                       RecoveryMode mode) const {
  auto it = factories_.find(class_name);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& [name, f] : factories_) known += (known.empty() ? "" : ", ") + name;
    return Fail(Errc::kNotFound, "no shadow class '" + class_name + "' (known: " +
                                     (known.empty() ? "none" : known) + ")");
  }
  return it->second(host, settings, mode);
}

std::vector<std::string> ShadowRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_) out.push_back(name);
  return out;
}

}  // namespace umbra::shadows
