// The states and small value types of the device model.
//
// Every state is an enum with a name for the tree and the event log; see
// docs/device-model.md for the state machines and the function behind each
// transition.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace umbra::model {

// The life of a device in the model.
enum class DeviceState {
  kUnbound,     // registered, no driver (none matches, probe failed, or unbound)
  kProbing,     // a driver's Probe runs; ends with Model::ProbeDone
  kDeferred,    // waits for suppliers (or its driver asked to retry later)
  kBound,       // a driver serves it
  kRecovering,  // its driver crashed; the runtime restarts it (SetRecovering)
  kFailed,      // given up on (SetFailed); stays until removed or re-probed
  kUnbinding,   // its driver's Remove runs
  kRemoved,     // unpublished; handles are dead
};
const char* DeviceStateName(DeviceState state);

// The state of a managed device link, as in the kernel (DL_STATE_*).
enum class LinkState {
  kNone,            // a stateless link: the model does not track it
  kDormant,         // the supplier is not bound
  kAvailable,       // the supplier is bound, the consumer is not
  kConsumerProbe,   // the consumer is probing
  kActive,          // both are bound
  kSupplierUnbind,  // the supplier is unbinding (its consumers go first)
};
// The kernel's spelling: "dormant", "available", "consumer probing", ...
const char* LinkStateName(LinkState state);

enum class DriverState {
  kLoaded,     // matches devices
  kUnloading,  // no new work or matches; draining (Model::UnloadDriver)
  kUnloaded,   // unpublished
};
const char* DriverStateName(DriverState state);

// Who may do what with an attribute, as a sysfs file mode.
enum class AttrMode {
  kReadOnly,
  kReadWrite,
  kWriteOnly,  // an action ("bind", "unbind", "drivers_probe")
};

// Whether a link is a weak dependency; passed to LinkListener.
enum class LinkOptional { kNo, kYes };

// The longest value an attribute accepts: sysfs values are single and short.
inline constexpr size_t kMaxAttributeValue = 256;

// Validates a value written to an attribute: strips one trailing newline (as
// `echo` adds), refuses embedded newlines and values over kMaxAttributeValue.
Result<std::string> NormalizeAttributeValue(std::string_view value);

// Parses a boolean attribute value: 1/0, y/n, yes/no, on/off, true/false.
Result<bool> ParseBoolValue(std::string_view value);

}  // namespace umbra::model
