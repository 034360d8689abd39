// Model: the device model — buses, devices, drivers, classes, device links,
// attributes and events — a user-space counterpart of the Linux driver model.
//
//   auto model = Model::Create().value();
//   model->AddBus("platform");
//   model->AddDevice({.name = "clk0", .bus = "platform", .compatible = {"umbra,clk"}});
//   model->AddDevice({.name = "nic0", .bus = "platform", .compatible = {"umbra,e1000"},
//                     .device_class = "net"});
//   model->AddLink("nic0", "clk0", LinkFlag::kManaged);   // nic0 needs clk0
//   model->AddDriver({.name = "e1000", .bus = "platform", .compatible = {"umbra,e1000"}},
//                    backend);        // nic0 defers: clk0 is not bound yet
//   model->AddDriver({.name = "clk", ...}, clk_backend);  // clk0 binds, then nic0
//   model->Read("/class/net/nic0/state");                 // "bound"
//   model->SetRecovering("clk0");   // nic0's LinkListener: OnSupplierRecovering
//   std::cout << model->RenderText();
//
// How work runs (the lock rule): every public call takes the model's lock,
// changes state, and queues what must run outside the lock — backend Probe and
// Remove, LinkListener calls, event callbacks, custom attribute functions are
// never called with the lock held. Queued work runs in order on one thread at
// a time: the calling thread, unless another thread is already dispatching (or
// the call comes from inside a callback), in which case that thread runs it.
// So on the supervisor thread a call returns with its effects done (for a
// synchronous backend); a call from another thread may return before its
// callbacks ran. Callbacks may call back into the model; they must not wait
// for another thread that is waiting for the model.
//
// Thread safety: all members may be called from any thread. Device handles
// take the device's revocation lock before the model's lock; the model never
// waits for a revocation lock while holding its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.h"
#include "runtime/model/attribute.h"
#include "runtime/model/device_handle.h"
#include "runtime/model/driver_backend.h"
#include "runtime/model/events.h"
#include "runtime/model/flat_index.h"
#include "runtime/model/link_flags.h"
#include "runtime/model/objects.h"
#include "runtime/model/types.h"

namespace umbra::model {

// What ExpireDeferral found still waiting after relaxing optional links.
struct DeferralReport {
  struct Waiting {
    std::string device;
    std::vector<std::string> suppliers;  // "clk0 (failed)"; empty: its driver deferred
  };
  std::vector<Waiting> waiting;
  size_t relaxed_links = 0;

  // "nic0 waits for clk0 (unbound); dsp0 waits for its driver" or "nothing waits".
  std::string ToString() const;
};

class Model {
 public:
  static Result<std::unique_ptr<Model>> Create();
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // --- objects ---------------------------------------------------------------
  Result<void> AddBus(std::string_view name);
  Result<void> AddClass(std::string_view name);
  // device_register: publishes it under /devices/<bus>/<name> (and its class,
  // created if needed), then matches and probes it. Returns a handle.
  Result<DeviceHandle> AddDevice(DeviceSpec spec);
  // Unbinds it (its consumers first), deletes its links, unpublishes it,
  // revokes its handles and fails its pending operations with kNoDevice.
  // Waits for handle Access calls in progress on other threads.
  Result<void> RemoveDevice(std::string_view name);
  // driver_register: publishes it and probes every unbound device it matches.
  Result<void> AddDriver(DriverSpec spec, std::shared_ptr<DriverBackend> backend);
  // Whether UnloadDriver would start: kBusy while bound or with work in flight.
  Result<void> CanUnload(std::string_view driver) const;
  // Refused like CanUnload; otherwise stops matching, cancels the driver's
  // timers, runs its queued deferred callbacks and waits for running ones (the
  // barrier) up to `timeout` (kTimeout, and the driver stays loaded), then
  // unpublishes it.
  Result<void> UnloadDriver(std::string_view driver, std::chrono::milliseconds timeout);
  // The driver object (for its WorkTracker); kNotFound when not loaded.
  Result<std::shared_ptr<Driver>> FindDriver(std::string_view name) const;

  // --- handles, probing, binding -------------------------------------------
  Result<DeviceHandle> Open(std::string_view device) const;
  // Completes a Probe (see DriverBackend::Probe). kNoDevice if the device was
  // removed meanwhile; kInvalidArgument if it is not probing.
  Result<void> ProbeDone(Device& device, Result<void> result);
  // Probes an unbound or deferred device now (bus drivers_probe).
  Result<void> ProbeDevice(std::string_view device);
  // Unbinds a device: its managed consumers first (reverse topological order).
  Result<void> UnbindDevice(std::string_view device, std::string_view reason);
  // Calls `done` once the device is bound (now, if it is): ok; or with
  // kNoDevice when it is removed first, or kDeviceFailed when it fails.
  Result<void> WhenReady(const DeviceHandle& device, std::function<void(Result<void>)> done);
  // The deferral timeout passed: relax optional links (consumers no longer
  // wait for them), retry deferred devices, report what still waits.
  DeferralReport ExpireDeferral();

  // --- links -----------------------------------------------------------------
  // `consumer` depends on `supplier`. Refuses invalid flags, duplicates, and a
  // link that would close a cycle ("a -> b -> c -> a", arrows: depends on).
  Result<void> AddLink(std::string_view consumer, std::string_view supplier, LinkFlags flags);
  Result<void> RemoveLink(std::string_view consumer, std::string_view supplier);
  Result<LinkState> link_state(std::string_view consumer, std::string_view supplier) const;

  // --- recovery (called by the runtime) ---------------------------------------
  // bound -> recovering; consumers' listeners: OnSupplierRecovering. Again
  // while recovering (a double fault) is accepted and tells no one twice.
  Result<void> SetRecovering(std::string_view device);
  // recovering -> bound; consumers' listeners: OnSupplierRecovered.
  Result<void> SetRecovered(std::string_view device);
  // -> failed: listeners hear OnSupplierFailed; managed non-optional consumers
  // are unbound (their consumers first) with a reason naming this device;
  // optional consumers stay bound, degraded.
  Result<void> SetFailed(std::string_view device, std::string_view reason);
  Result<void> SetLinkListener(std::string_view device, std::shared_ptr<LinkListener> listener);

  // --- the tree --------------------------------------------------------------
  // "/devices/platform/nic0/state", "/class/net/nic0/driver",
  // "/bus/platform/drivers/e1000/bind", "/links/clk0--nic0/status",
  // "/devices/platform/nic0/supplier:clk0/status".
  Result<std::string> Read(std::string_view path) const;
  Result<void> Write(std::string_view path, std::string_view value);
  // The entries of a directory or object (sub-directories and attributes).
  Result<std::vector<std::string>> List(std::string_view path) const;
  // Adds a custom attribute to the object at `object_path`.
  Result<void> AddAttribute(std::string_view object_path, Attribute attribute);
  // The whole tree, indented, with states and links; or as JSON.
  std::string RenderText() const;
  std::string RenderJson() const;

  Result<DeviceState> device_state(std::string_view device) const;
  Subscription Subscribe(EventCallback callback);
  size_t device_count() const;
  size_t link_count() const;

 private:
  struct Bus;
  struct Class;
  struct Node;
  using Lock = std::unique_lock<std::mutex>;

  Model() = default;

  // Queues `fn` to run outside the lock. Requires mu_.
  void Post(std::function<void()> fn);
  // Runs queued work unless another thread (or an outer frame) is. Requires
  // `lk` held; returns with it held.
  void Dispatch(Lock& lk);
  void Emit(EventType type, ObjectKind kind, std::string name, std::string path, std::string detail);

  enum class NotifyUnbound { kNo, kYes };

  Device* FindDeviceLocked(std::string_view name) const;
  Link* FindLinkLocked(std::string_view consumer, std::string_view supplier) const;
  Link* FindLinkLocked(const Device* consumer, const Device* supplier) const;
  // "supplier--consumer"
  Link* FindLinkByNameLocked(std::string_view name) const;
  // Why the device is unbound, deferred or failed.
  std::string ReasonLocked(const Device* dev) const;
  void SetStateLocked(Device* dev, DeviceState state);
  void SetLinkStateLocked(Link* link, LinkState state);
  LinkState SupplierSideStateLocked(const Link* link) const;
  Result<void> CanUnloadLocked(const Driver* drv) const;
  Driver* MatchLocked(const Device* dev) const;
  bool WaitsForLocked(const Link* link) const;
  // Whether any supplier link of `dev` is waited for (WaitsForLocked).
  bool WaitsForAnyLocked(Device* dev);
  // Probes `dev` if it is unbound or deferred and a driver (`only`, if given)
  // matches; defers it while a supplier it waits for is not bound.
  void ProbeLocked(Device* dev, Driver* only = nullptr);
  void BoundLocked(Device* dev);
  void FireWaitersLocked(Device* dev, Result<void> result);
  void RetryConsumersLocked(Device* supplier);
  void RetryDriverDeferredLocked();
  void UpdateDegradedLocked(Device* dev);
  std::vector<Device*> DependentsLocked(Device* root);
  Result<void> UnbindLocked(Device* dev, std::string_view reason);
  void StartUnbindLocked(Device* dev, std::string reason, NotifyUnbound notify);
  void FinishUnbindLocked(Device* dev, const std::string& reason, DeviceState final_state, NotifyUnbound notify);
  void NotifyOneLocked(Device* consumer, Device* supplier, void (LinkListener::*fn)(const Device&));
  Result<void> CheckCycleLocked(Device* consumer, Device* supplier);
  void DeleteLinkLocked(Link* link);
  void UnpublishDeviceLocked(Device* dev);

  Result<Node> ResolveLocked(std::string_view path) const;
  Result<std::string> ReadBuiltinLocked(const Node& node, std::string_view attr, bool* found) const;
  Result<void> WriteBuiltinLocked(const Node& node, std::string_view attr, const std::string& value, bool* found);
  std::map<std::string, Attribute>* CustomAttributesLocked(const Node& node) const;
  std::vector<std::string> BuiltinAttributeNames(const Node& node) const;
  std::string WaitingForLocked(const Device* dev) const;

  mutable std::mutex mu_;
  // Guarded by mu_ from here on.
  std::map<std::string, std::unique_ptr<Bus>, std::less<>> buses_;
  std::map<std::string, std::unique_ptr<Class>, std::less<>> classes_;
  // The model owns devices, drivers and links; handles share devices.
  struct DeviceByName {
    using Key = std::string_view;
    static Key KeyOf(const std::shared_ptr<Device>& d) { return d->name(); }
    static uint64_t Hash(Key k) { return std::hash<Key>{}(k); }
  };
  FlatIndex<std::shared_ptr<Device>, DeviceByName> devices_;
  std::map<std::string, std::shared_ptr<Driver>, std::less<>> drivers_;
  struct LinkByEnds {
    using Key = std::pair<const Device*, const Device*>;  // (supplier, consumer)
    static Key KeyOf(const std::unique_ptr<Link>& l) { return {l->supplier_, l->consumer_}; }
    static uint64_t Hash(const Key& k) {
      // splitmix64 over both addresses: raw pointers share their low bits.
      uint64_t x = reinterpret_cast<uintptr_t>(k.first) * 0x9e3779b97f4a7c15ull ^ reinterpret_cast<uintptr_t>(k.second);
      x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
      x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
      return x ^ (x >> 31);
    }
  };
  FlatIndex<std::unique_ptr<Link>, LinkByEnds> links_;
  std::deque<std::function<void()>> queue_;
  std::thread::id dispatcher_;
  std::vector<std::shared_ptr<internal::Subscriber>> subscribers_;
  uint64_t next_event_seq_ = 1;
  uint64_t next_generation_ = 1;
  int64_t next_ord_ = 0;
  uint64_t next_mark_ = 1;
  bool deferral_expired_ = false;
  std::vector<Device*> driver_deferred_;  // devices whose driver asked to retry; unpublish erases
};

}  // namespace umbra::model
