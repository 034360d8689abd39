#include "shadows/registry.h"

#include <charconv>
#include <cstdlib>

namespace umbra::shadows {

namespace {

bool Fits(SettingKind kind, const std::string& value) {
  switch (kind) {
    case SettingKind::kCount: {
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      return ec == std::errc() && end == value.data() + value.size();
    }
    case SettingKind::kNumber: {
      char* end = nullptr;
      const double d = std::strtod(value.c_str(), &end);
      return !value.empty() && end == value.c_str() + value.size() && d > 0;
    }
  }
  return false;
}

const char* KindName(SettingKind kind) {
  switch (kind) {
    case SettingKind::kCount: return "a whole number";
    case SettingKind::kNumber: return "a number greater than 0";
  }
  return "?";
}

}  // namespace

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
  return Fail(Errc::kNotFound, "no shadow class '" + class_name + "' (known: " +
                                   (known.empty() ? "none" : known) + ")");
}

Result<void> ShadowRegistry::CheckSettings(const std::string& class_name, const ShadowSettings& settings) const {
  const Entry* entry = Find(class_name);
  if (!entry) return NotFound(class_name);
  if (!entry->settings) return {};  // the factory checks them
  for (const auto& [key, value] : settings) {
    const SettingSpec* spec = nullptr;
    for (const SettingSpec& s : *entry->settings) {
      if (s.key == key) spec = &s;
    }
    if (!spec) {
      std::string known;
      for (const SettingSpec& s : *entry->settings) known += (known.empty() ? "" : ", ") + s.key;
      return Fail(Errc::kInvalidArgument, "the " + class_name + " shadow has no setting '" + key + "' (it takes: " +
                                              (known.empty() ? "none" : known) + ")");
    }
    if (!Fits(spec->kind, value)) {
      return Fail(Errc::kInvalidArgument, "the " + class_name + " shadow's setting " + key + " is '" + value +
                                              "', not " + KindName(spec->kind));
    }
  }
  return {};
}

Result<std::unique_ptr<Shadow>> ShadowRegistry::Create(const std::string& class_name,
                                                       runtime::Host& host,
                                                       const ShadowSettings& settings,
                                                       RecoveryMode mode) const {
  UMBRA_TRY(CheckSettings(class_name, settings));
  return Find(class_name)->factory(host, settings, mode);
}

std::vector<std::string> ShadowRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_) out.push_back(name);
  return out;
}

}  // namespace umbra::shadows
