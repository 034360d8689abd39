// Attribute: one named value of a model object, as a sysfs file.
//
//   model.AddAttribute("/devices/pci/nic0", Attribute{
//       .name = "mtu", .mode = AttrMode::kReadWrite,
//       .show = [&] { return Result<std::string>(std::to_string(mtu)); },
//       .store = [&](std::string_view v) -> Result<void> { ... validate ... }});
//   model.Write("/devices/pci/nic0/mtu", "9000");
//
// The model strips one trailing newline and refuses long or multi-line values
// before `store` sees them (NormalizeAttributeValue); `store` validates the
// rest and returns a clear error for bad input.
//
// Thread safety: `show` and `store` run on the reading or writing thread,
// never with the model's lock held, so they may call back into the model.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "runtime/model/types.h"

namespace umbra::model {

struct Attribute {
  std::string name;
  AttrMode mode = AttrMode::kReadOnly;
  // Empty for write-only attributes.
  std::function<Result<std::string>()> show;
  // Empty for read-only attributes.
  std::function<Result<void>(std::string_view value)> store;
};

}  // namespace umbra::model
