// ShadowRegistry: shadow classes by name.
//
// Filled by one explicit function, RegisterBuiltinShadows (shadows/builtin/),
// which lists every class; a test can build its own registry with a
// replacement. A name registered twice is refused. Each class says which
// settings it takes (a machine file's "shadow.<key>" device settings); any
// other key, or a value of the wrong kind, is refused — by CheckSettings
// (`umbra validate`) and by Create alike.
//
//   ShadowRegistry registry;
//   RegisterBuiltinShadows(registry);
//   UMBRA_TRY(registry.CheckSettings("net", {{"rx_buffers", "lots"}}));  // refused
//   auto shadow = UMBRA_TRY(registry.Create("net", host, settings));
//
// Thread safety: register everything before use; Create may then be called
// from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "shadows/settings.h"
#include "shadows/shadow.h"

namespace umbra::shadows {

using ShadowFactory = std::function<Result<std::unique_ptr<Shadow>>(runtime::Host& host, const ShadowSettings& settings,
                                                                    RecoveryMode mode)>;

class ShadowRegistry {
 public:
  // `settings`: the keys the class takes (an empty list: none); nullopt
  // leaves every setting to the factory to check.
  Result<void> Register(const std::string& class_name, ShadowFactory factory,
                        std::optional<std::vector<SettingSpec>> settings = std::nullopt);
  // kNotFound for an unknown class; kInvalidArgument for a key the class does
  // not take or a value of the wrong kind, naming both and the keys it takes.
  Result<void> CheckSettings(const std::string& class_name, const ShadowSettings& settings) const;
  Result<std::unique_ptr<Shadow>> Create(const std::string& class_name, runtime::Host& host,
                                         const ShadowSettings& settings,
                                         RecoveryMode mode = RecoveryMode::kShadow) const;
  bool Has(const std::string& class_name) const { return factories_.count(class_name) > 0; }
  std::vector<std::string> names() const;

 private:
  struct Entry {
    ShadowFactory factory;
    std::optional<std::vector<SettingSpec>> settings;  // nullopt: not checked here
  };
  const Entry* Find(const std::string& class_name) const;
  Result<void> NotFound(const std::string& class_name) const;

  std::map<std::string, Entry> factories_;
};

}  // namespace umbra::shadows
