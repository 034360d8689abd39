#include "shadows/registry.h"

namespace umbra::shadows {

Result<void> ShadowRegistry::Register(const std::string& class_name, ShadowFactory factory,
                                      std::optional<std::vector<SettingSpec>> settings) {
  if (class_name.empty()) return Fail(Errc::kInvalidArgument, "shadow class needs a name");
  if (!factories_.emplace(class_name, Entry{std::move(factory), std::move(settings)}).second) {
    return Fail(Errc::kAlreadyExists, "shadow class '" + class_name + "' is already registered");
  }
  return {};
}

const ShadowRegistry::Entry* ShadowRegistry::Find(const std::string& class_name) const {
  auto it = factories_.find(class_name);
  return it == factories_.end() ? nullptr : &it->second;
}

Result<void> ShadowRegistry::NotFound(const std::string& class_name) const {
  std::string known;
  for (const auto& [name, f] : factories_) known += (known.empty() ? "" : ", ") + name;
  return Fail(Errc::kNotFound,
              "no shadow class '" + class_name + "' (known: " + (known.empty() ? "none" : known) + ")");
}

Result<void> ShadowRegistry::CheckSettings(const std::string& class_name, const ShadowSettings& settings) const {
  const Entry* entry = Find(class_name);
  if (!entry) return NotFound(class_name);
  if (!entry->settings) return {};  // the factory checks them
  return CheckSettingsAgainst(class_name, *entry->settings, settings);
}

Result<std::unique_ptr<Shadow>> ShadowRegistry::Create(const std::string& class_name, runtime::Host& host,
                                                       const ShadowSettings& settings, RecoveryMode mode) const {
  UMBRA_TRY(CheckSettings(class_name, settings));
  return Find(class_name)->factory(host, settings, mode);
}

std::vector<std::string> ShadowRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_) out.push_back(name);
  return out;
}

}  // namespace umbra::shadows
