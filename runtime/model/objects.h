// The objects of the device model: Device, Driver, Link.
//
// Each object has an immutable identity (name, bus, compatible strings, ...)
// that anyone holding it may read, and state that only the Model changes,
// under its lock. Objects are created and owned by the Model (shared_ptr):
// removal unpublishes an object (it leaves the tree and its handles die)
// while its memory lives until the last holder lets go.
//
//   auto dev = model.Open("nic0");                 // a DeviceHandle
//   dev->Read("state");                            // "bound"
//
// Thread safety: identity accessors and state() may be called from any thread
// on an object one holds; everything else goes through the Model.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "runtime/model/attribute.h"
#include "runtime/model/link_flags.h"
#include "runtime/model/types.h"
#include "runtime/model/work_tracker.h"

namespace umbra::model {

class DriverBackend;
class LinkListener;
class Link;
class Model;
class DeviceHandle;
class Driver;

using Settings = std::map<std::string, std::string>;

// What a device is made of; Model::AddDevice registers one.
struct DeviceSpec {
  std::string name;                     // unique in the model: "nic0"
  std::string bus;                      // "platform"
  std::vector<std::string> compatible;  // most specific first: {"umbra,e1000-emu"}
  std::string device_class;             // "net" (may be empty)
  Settings settings;
};

// What a driver is made of; Model::AddDriver registers one.
struct DriverSpec {
  std::string name;  // unique in the model: "e1000"
  std::string bus;
  std::vector<std::string> compatible;  // the match table
  std::string binary;                   // the driver program (for the runtime)
  Settings settings;
};

class Device : public std::enable_shared_from_this<Device> {
 public:
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const std::string& name() const { return spec_.name; }
  const std::string& bus() const { return spec_.bus; }
  const std::vector<std::string>& compatible() const { return spec_.compatible; }
  const std::string& device_class() const { return spec_.device_class; }
  const Settings& settings() const { return spec_.settings; }
  // "/devices/<bus>/<name>"
  std::string path() const { return "/devices/" + spec_.bus + "/" + spec_.name; }

  // A snapshot; may change as soon as it is read.
  DeviceState state() const { return state_.load(std::memory_order_acquire); }
  // Non-zero while published; zero once removed (handles compare it).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Made by Model::AddDevice only; public for std::make_shared.
  Device(DeviceSpec spec, Model* model, uint64_t generation)
      : generation_(generation), spec_(std::move(spec)), model_(model) {}

 private:
  friend class Model;
  friend class DeviceHandle;

  // The fields that lookups, probing, cycle checks and cascades read for
  // every device they pass come first, the name (in spec_) right after them,
  // so that a visit touches two or three cache lines, not five.
  std::atomic<DeviceState> state_{DeviceState::kUnbound};
  std::atomic<uint64_t> generation_;
  // Guarded by the model's lock.
  bool published_ = true;
  bool degraded_ = false;
  bool driver_deferred_ = false;     // its driver asked to be retried
  Driver* driver_ = nullptr;         // probing, bound, recovering or unbinding; raw: the model keeps it
  int64_t ord_ = 0;                  // position in a topological order: suppliers first
  uint64_t mark_ = 0;                // visit mark for graph searches
  Device* search_parent_ = nullptr;  // the path back in a cycle search
  // Where the last scan of suppliers_ for one still waited for stopped: a
  // retry starts there, so retrying a consumer as each of its k suppliers
  // binds costs O(k) in all, not O(k^2).
  size_t wait_hint_ = 0;
  std::vector<Link*> suppliers_;  // links where this is the consumer; raw: owned by the model
  std::vector<Link*> consumers_;  // links where this is the supplier
  const DeviceSpec spec_;
  std::shared_ptr<LinkListener> listener_;  // guarded; kept alive so it can be called outside the lock

  // Back-pointer; valid while generation_ != 0 (the model revokes every
  // device before it is destroyed).
  Model* const model_;

  // Revocation: handles hold it shared while they use the device; removal
  // clears generation_ first, then takes it exclusively to wait for the uses
  // in progress, so none is running once removal goes on.
  mutable std::shared_mutex revoke_mu_;

  // Guarded by the model's lock.
  std::string last_driver_;
  std::string reason_;  // why it is unbound, deferred or failed
  std::vector<std::function<void(Result<void>)>> ready_waiters_;
  std::map<std::string, Attribute> attributes_;  // added with Model::AddAttribute
};

class Driver {
 public:
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  const std::string& name() const { return spec_.name; }
  const std::string& bus() const { return spec_.bus; }
  const std::vector<std::string>& compatible() const { return spec_.compatible; }
  const std::string& binary() const { return spec_.binary; }
  const Settings& settings() const { return spec_.settings; }
  std::string path() const { return "/bus/" + spec_.bus + "/drivers/" + spec_.name; }
  // In-flight work, deferred callbacks and timers of this driver.
  WorkTracker& work() { return work_; }

  Driver(DriverSpec spec, std::shared_ptr<DriverBackend> backend)
      : spec_(std::move(spec)), backend_(std::move(backend)), work_(spec_.name) {}

 private:
  friend class Model;

  const DriverSpec spec_;
  // Kept alive while the driver is registered so Probe/Remove can be called
  // outside the model's lock. May be null: devices then stay unbound.
  const std::shared_ptr<DriverBackend> backend_;
  WorkTracker work_;

  // Guarded by the model's lock.
  DriverState state_ = DriverState::kLoaded;
  int64_t users_ = 0;  // devices probing, bound, recovering or unbinding with it
  std::map<std::string, Attribute> attributes_;
};

class Link {
 public:
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  const std::string& consumer_name() const { return consumer_name_; }
  const std::string& supplier_name() const { return supplier_name_; }
  LinkFlags flags() const { return flags_; }
  // "<supplier>--<consumer>", as the kernel names devlinks.
  std::string name() const { return supplier_name_ + "--" + consumer_name_; }
  std::string path() const { return "/links/" + name(); }

  Link(Device* consumer, Device* supplier, LinkFlags flags)
      : consumer_(consumer), supplier_(supplier), flags_(flags), consumer_name_(consumer->name()),
        supplier_name_(supplier->name()) {}

 private:
  friend class Model;

  // What graph walks read comes first, in one cache line.
  // Raw: the model deletes a device's links before it drops the device.
  Device* const consumer_;
  Device* const supplier_;
  const LinkFlags flags_;
  // Guarded by the model's lock.
  LinkState state_ = LinkState::kNone;
  bool relaxed_ = false;  // an optional link no longer waited for (deferral timeout)

  const std::string consumer_name_;
  const std::string supplier_name_;
  std::map<std::string, Attribute> attributes_;  // guarded by the model's lock
};

}  // namespace umbra::model
