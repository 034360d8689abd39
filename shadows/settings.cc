#include "shadows/settings.h"

#include <charconv>
#include <cstdlib>

namespace umbra::shadows {

namespace {

Error BadValue(const std::string& class_name, const std::string& key, const std::string& value,
               const std::string& wanted) {
  return Error{Errc::kInvalidArgument,
               "the " + class_name + " shadow's setting " + key + " is '" + value + "', not " + wanted};
}

}  // namespace

Result<const SettingSpec*> FindSetting(const std::string& class_name, const std::vector<SettingSpec>& specs,
                                       const std::string& key) {
  for (const SettingSpec& s : specs) {
    if (s.key == key) return &s;
  }
  std::string known;
  for (const SettingSpec& s : specs) known += (known.empty() ? "" : ", ") + s.key;
  return Fail(Errc::kInvalidArgument, "the " + class_name + " shadow has no setting '" + key +
                                          "' (it takes: " + (known.empty() ? "none" : known) + ")");
}

Result<uint64_t> ParseCount(const std::string& class_name, const std::string& key, const std::string& value,
                            uint64_t max) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n > max) {
    return std::unexpected(BadValue(class_name, key, value,
                                    "a whole number" + (max == UINT64_MAX ? "" : " up to " + std::to_string(max))));
  }
  return n;
}

Result<double> ParseNumber(const std::string& class_name, const std::string& key, const std::string& value) {
  char* end = nullptr;
  const double d = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !(d > 0)) {
    return std::unexpected(BadValue(class_name, key, value, "a number greater than 0"));
  }
  return d;
}

Result<void> CheckSettingsAgainst(const std::string& class_name, const std::vector<SettingSpec>& specs,
                                  const ShadowSettings& settings) {
  for (const auto& [key, value] : settings) {
    const SettingSpec* spec = UMBRA_TRY(FindSetting(class_name, specs, key));
    switch (spec->kind) {
      case SettingKind::kCount: UMBRA_TRY(ParseCount(class_name, key, value)); break;
      case SettingKind::kNumber: UMBRA_TRY(ParseNumber(class_name, key, value)); break;
    }
  }
  return {};
}

}  // namespace umbra::shadows
