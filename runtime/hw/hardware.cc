#include "runtime/hw/hardware.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace umbra::machine {

Result<void> HardwareRegistry::Register(const std::string& compatible, HardwareFactory factory,
                                        HardwareSettings settings) {
  if (!factories_.emplace(compatible, Entry{std::move(factory), std::move(settings)}).second) {
    return Fail(Errc::kAlreadyExists, "hardware for " + compatible + " is registered twice");
  }
  return {};
}

Result<std::unique_ptr<Hardware>> HardwareRegistry::Create(const HardwareSpec& spec) const {
  for (const std::string& c : spec.compatible) {
    auto it = factories_.find(c);
    if (it == factories_.end()) continue;
    auto hw = it->second.factory(spec);
    if (!hw) return Fail(hw.error().code, spec.device + ": " + hw.error().message);
    return hw;
  }
  return std::unique_ptr<Hardware>();
}

Result<void> HardwareRegistry::CheckSettings(const HardwareSpec& spec) const {
  for (const std::string& c : spec.compatible) {
    auto it = factories_.find(c);
    if (it == factories_.end()) continue;
    const HardwareSettings& known = it->second.settings;
    for (const auto& [key, value] : spec.settings) {
      if (std::find(known.keys.begin(), known.keys.end(), key) != known.keys.end()) continue;
      std::string list;
      for (const std::string& k : known.keys) list += (list.empty() ? "" : ", ") + k;
      return Fail(Errc::kInvalidArgument,
                  "unknown setting '" + key + "' for " + c + " (it takes: " + (list.empty() ? "none" : list) + ")");
    }
    if (known.check) return known.check(spec);
    return {};
  }
  return {};
}

std::vector<std::string> HardwareRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

std::string Setting(const HardwareSpec& spec, const std::string& key, std::string fallback) {
  auto it = spec.settings.find(key);
  return it == spec.settings.end() ? fallback : it->second;
}

Result<uint64_t> NumberSetting(const HardwareSpec& spec, const std::string& key, uint64_t fallback) {
  auto it = spec.settings.find(key);
  if (it == spec.settings.end()) return fallback;
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Fail(Errc::kInvalidArgument, "setting " + key + "='" + s + "' is not a number");
  }
  return v;
}

Result<bool> BoolSetting(const HardwareSpec& spec, const std::string& key, bool fallback) {
  auto it = spec.settings.find(key);
  if (it == spec.settings.end()) return fallback;
  const std::string& s = it->second;
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return Fail(Errc::kInvalidArgument, "setting " + key + "='" + s + "' is not true or false");
}

}  // namespace umbra::machine
