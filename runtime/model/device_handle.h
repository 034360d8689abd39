// DeviceHandle: a client's revocable reference to a device.
//
//   Result<DeviceHandle> h = model.Open("disk0");
//   ...                                   // meanwhile disk0 may be removed
//   auto state = h->Read("state");        // kNoDevice "disk0 was removed"
//   h->Access([](Device& d) -> Result<void> { ...; return {}; });
//
// A handle holds the device's memory (so nothing it touches is ever freed
// under it) and the generation it was opened at. Removal clears the device's
// generation while no Access is in progress (it waits for running ones), so
// every use after removal fails with Errc::kNoDevice "… was removed", and a
// use that began before removal finishes before removal goes on (inside it,
// generation() may already read 0, but the device is not yet unbound or
// unpublished).
//
// Thread safety: a handle may be copied and used from any thread. Inside
// Access, do not remove the same device (that is refused with kBusy).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "runtime/model/objects.h"

namespace umbra::model {

class DeviceHandle {
 public:
  DeviceHandle() = default;
  DeviceHandle(std::shared_ptr<Device> device, uint64_t generation)
      : device_(std::move(device)), generation_(generation) {}

  // The device's name, also after removal; empty for a default handle.
  const std::string& name() const;
  // Whether the device is still published (a snapshot).
  bool alive() const;

  Result<DeviceState> state() const;
  // Reads or writes one of the device's attributes ("state", "degraded", ...).
  Result<std::string> Read(std::string_view attribute) const;
  Result<void> Write(std::string_view attribute, std::string_view value) const;
  // Runs `fn` while the device cannot be removed; kNoDevice if it was.
  Result<void> Access(const std::function<Result<void>(Device&)>& fn) const;

  // The device object (for ProbeDone and identity); never null for a handle
  // from Model::Open, possibly removed.
  const std::shared_ptr<Device>& device() const { return device_; }

 private:
  // Keeps the memory alive: a removed device is never freed under a handle.
  std::shared_ptr<Device> device_;
  uint64_t generation_ = 0;
};

namespace internal {
// Whether the calling thread is inside an Access of `device`.
bool InAccess(const Device* device);
}  // namespace internal

}  // namespace umbra::model
