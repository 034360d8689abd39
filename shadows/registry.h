// ShadowRegistry: shadow classes by name.
//
// Filled by one explicit function, RegisterBuiltinShadows (shadows/builtin/),
// which lists every class; a test can build its own registry with a
// replacement. A name registered twice is refused.
//
//   ShadowRegistry registry;
//   RegisterBuiltinShadows(registry);
//   auto shadow = UMBRA_TRY(registry.Create("net", host, settings));
//
// Thread safety: register everything before use; Create may then be called
// from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/base/result.h"
#include "shadows/shadow.h"

namespace umbra::shadows {

using ShadowSettings = std::map<std::string, std::string>;
using ShadowFactory = std::function<Result<std::unique_ptr<Shadow>>(
    runtime::DriverHost& host, const ShadowSettings& settings, RecoveryMode mode)>;

class ShadowRegistry {
 public:
  Result<void> Register(const std::string& class_name, ShadowFactory factory);
  Result<std::unique_ptr<Shadow>> Create(const std::string& class_name, runtime::DriverHost& host,
                                         const ShadowSettings& settings,
                                         RecoveryMode mode = RecoveryMode::kShadow) const;
  bool Has(const std::string& class_name) const { return factories_.count(class_name) > 0; }
  std::vector<std::string> names() const;

 private:
  std::map<std::string, ShadowFactory> factories_;
};

}  // namespace umbra::shadows
