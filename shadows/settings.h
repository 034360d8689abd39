// Typed shadow settings: one definition per class of the settings its factory
// takes (a machine file's "shadow.<key>" device settings), used both to
// register the class (the keys and kinds `umbra validate` checks) and to parse
// the strings into the class's options struct. Errors name the class, the
// setting and the bad value, and list the settings the class takes.
//
//   const SettingsSchema<BlockShadowOptions>& BlockSettings() {
//     static const auto schema =
//         SettingsSchema<BlockShadowOptions>("block").Count("max_requests", &BlockShadowOptions::max_requests);
//     return schema;
//   }
//   // registration:  Add(registry, "block", CreateBlockShadow, BlockSettings().specs());
//   // factory:       BlockShadowOptions o = UMBRA_TRY(BlockSettings().Parse(settings));
//
// Thread safety: build a schema once; Parse and specs are const and may then
// be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"

namespace umbra::shadows {

using ShadowSettings = std::map<std::string, std::string>;

// What a class's setting holds.
enum class SettingKind {
  kCount,   // a whole number, 0 or more
  kNumber,  // a number greater than 0
};
struct SettingSpec {
  std::string key;
  SettingKind kind = SettingKind::kCount;
};

// The spec for `key` among `specs`, or kInvalidArgument naming the key and
// the keys the class takes.
Result<const SettingSpec*> FindSetting(const std::string& class_name, const std::vector<SettingSpec>& specs,
                                       const std::string& key);
// `value` as a count no larger than `max`, or kInvalidArgument naming the
// class, the key and the value.
Result<uint64_t> ParseCount(const std::string& class_name, const std::string& key, const std::string& value,
                            uint64_t max = UINT64_MAX);
// `value` as a number greater than 0, or kInvalidArgument as above.
Result<double> ParseNumber(const std::string& class_name, const std::string& key, const std::string& value);
// Checks every setting against `specs` (known key, value of its kind).
Result<void> CheckSettingsAgainst(const std::string& class_name, const std::vector<SettingSpec>& specs,
                                  const ShadowSettings& settings);

// The settings of one class, bound to the fields of its options struct.
template <class Options>
class SettingsSchema {
 public:
  explicit SettingsSchema(std::string class_name) : class_name_(std::move(class_name)) {}

  template <class Field>
  requires std::is_unsigned_v<Field> SettingsSchema& Count(std::string key, Field Options::*field) {
    Bind(
        std::move(key), SettingKind::kCount,
        [field](Options& o, uint64_t n, double) { o.*field = static_cast<Field>(n); },
        std::numeric_limits<Field>::max());
    return *this;
  }
  SettingsSchema& Number(std::string key, double Options::*field) {
    Bind(
        std::move(key), SettingKind::kNumber, [field](Options& o, uint64_t, double d) { o.*field = d; }, 0);
    return *this;
  }

  const std::string& class_name() const { return class_name_; }
  const std::vector<SettingSpec>& specs() const { return specs_; }

  // `defaults` with every setting applied; the first bad one is the error.
  Result<Options> Parse(const ShadowSettings& settings, Options defaults = {}) const {
    for (const auto& [key, value] : settings) {
      const SettingSpec* spec = UMBRA_TRY(FindSetting(class_name_, specs_, key));
      const Field& f = fields_[static_cast<size_t>(spec - specs_.data())];
      switch (spec->kind) {
        case SettingKind::kCount: f.set(defaults, UMBRA_TRY(ParseCount(class_name_, key, value, f.max)), 0); break;
        case SettingKind::kNumber: f.set(defaults, 0, UMBRA_TRY(ParseNumber(class_name_, key, value))); break;
      }
    }
    return defaults;
  }

 private:
  struct Field {
    std::function<void(Options&, uint64_t, double)> set;
    uint64_t max = 0;
  };
  void Bind(std::string key, SettingKind kind, std::function<void(Options&, uint64_t, double)> set, uint64_t max) {
    specs_.push_back({std::move(key), kind});
    fields_.push_back({std::move(set), max});
  }

  std::string class_name_;
  std::vector<SettingSpec> specs_;  // parallel to fields_
  std::vector<Field> fields_;
};

}  // namespace umbra::shadows
