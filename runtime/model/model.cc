#include "runtime/model/model.h"

#include <algorithm>
#include <utility>

#include "runtime/model/model_internal.h"

namespace umbra::model {

Result<std::unique_ptr<Model>> Model::Create() { return std::unique_ptr<Model>(new Model()); }

Model::~Model() {
  // Revoke every handle first, without our lock: an Access in progress on
  // another thread may be about to take it.
  std::vector<std::shared_ptr<Device>> devices;
  {
    Lock lk(mu_);
    devices.reserve(devices_.size());
    devices_.ForEach([&](const std::shared_ptr<Device>& dev) { devices.push_back(dev); });
    queue_.clear();
  }
  for (auto& dev : devices) {
    std::unique_lock rl(dev->revoke_mu_);
    dev->generation_.store(0, std::memory_order_release);
  }
  Lock lk(mu_);
  links_.Clear();
  for (auto& dev : devices) {
    dev->suppliers_.clear();
    dev->consumers_.clear();
    dev->driver_ = nullptr;
    dev->published_ = false;
    dev->state_.store(DeviceState::kRemoved, std::memory_order_release);
  }
}

// --- dispatching ------------------------------------------------------------

void Model::Post(std::function<void()> fn) { queue_.push_back(std::move(fn)); }

void Model::Dispatch(Lock& lk) {
  if (dispatcher_ != std::thread::id()) return;  // that thread (maybe ours) runs it
  dispatcher_ = std::this_thread::get_id();
  while (!queue_.empty()) {
    auto fn = std::move(queue_.front());
    queue_.pop_front();
    lk.unlock();
    fn();
    lk.lock();
  }
  dispatcher_ = std::thread::id();
}

void Model::Emit(EventType type, ObjectKind kind, std::string name, std::string path, std::string detail) {
  if (subscribers_.empty()) return;
  std::erase_if(subscribers_, [](const auto& s) { return !s->active.load(std::memory_order_acquire); });
  Event event{next_event_seq_++, type, kind, std::move(name), std::move(path), std::move(detail)};
  Post([subs = subscribers_, event = std::move(event)] {
    for (const auto& s : subs) s->Deliver(event);
  });
}

Subscription Model::Subscribe(EventCallback callback) {
  auto sub = std::make_shared<internal::Subscriber>(std::move(callback));
  Lock lk(mu_);
  std::erase_if(subscribers_, [](const auto& s) { return !s->active.load(std::memory_order_acquire); });
  subscribers_.push_back(sub);
  return Subscription(sub);
}

// --- lookups and state --------------------------------------------------------

Device* Model::FindDeviceLocked(std::string_view name) const { return devices_.Find(name); }

Link* Model::FindLinkLocked(const Device* consumer, const Device* supplier) const {
  return links_.Find({supplier, consumer});
}

Link* Model::FindLinkLocked(std::string_view consumer, std::string_view supplier) const {
  const Device* c = FindDeviceLocked(consumer);
  const Device* s = FindDeviceLocked(supplier);
  return c && s ? FindLinkLocked(c, s) : nullptr;
}

Link* Model::FindLinkByNameLocked(std::string_view name) const {
  size_t sep = name.find("--");  // device names never hold "--"
  if (sep == std::string_view::npos) return nullptr;
  return FindLinkLocked(name.substr(sep + 2), name.substr(0, sep));
}

std::string Model::ReasonLocked(const Device* dev) const {
  if (dev->state() == DeviceState::kDeferred && !dev->driver_deferred_) {
    return "waiting for " + WaitingForLocked(dev);
  }
  return dev->reason_;
}

void Model::SetStateLocked(Device* dev, DeviceState state) {
  DeviceState old = dev->state();
  if (old == state) return;
  dev->state_.store(state, std::memory_order_release);
  if (subscribers_.empty()) return;
  Emit(EventType::kStateChange, ObjectKind::kDevice, dev->name(), dev->path(),
       std::string(DeviceStateName(old)) + " -> " + DeviceStateName(state));
}

void Model::SetLinkStateLocked(Link* link, LinkState state) {
  if (link->state_ == state) return;
  LinkState old = link->state_;
  link->state_ = state;
  if (subscribers_.empty()) return;
  Emit(EventType::kLinkStateChange, ObjectKind::kLink, link->name(), link->path(),
       std::string(LinkStateName(old)) + " -> " + LinkStateName(state));
}

// The state of a managed link whose consumer is not bound.
LinkState Model::SupplierSideStateLocked(const Link* link) const {
  return IsUp(link->supplier_) ? LinkState::kAvailable : LinkState::kDormant;
}

Result<DeviceState> Model::device_state(std::string_view device) const {
  Lock lk(mu_);
  Device* d = FindDeviceLocked(device);
  if (!d) return std::unexpected(NoDevice(device));
  return d->state();
}

Result<LinkState> Model::link_state(std::string_view consumer, std::string_view supplier) const {
  Lock lk(mu_);
  Link* l = FindLinkLocked(consumer, supplier);
  if (!l) return Fail(Errc::kNotFound, "no link " + std::string(consumer) + " -> " + std::string(supplier));
  return l->state_;
}

size_t Model::device_count() const {
  Lock lk(mu_);
  return devices_.size();
}

size_t Model::link_count() const {
  Lock lk(mu_);
  return links_.size();
}

// --- buses, classes, devices, drivers -----------------------------------------

Result<void> Model::AddBus(std::string_view name) {
  UMBRA_TRY(CheckName("bus", name));
  Lock lk(mu_);
  if (buses_.contains(name)) return Fail(Errc::kAlreadyExists, "bus \"" + std::string(name) + "\" exists");
  auto bus = std::make_unique<Bus>();
  bus->name = std::string(name);
  buses_.emplace(bus->name, std::move(bus));
  Emit(EventType::kAdd, ObjectKind::kBus, std::string(name), "/bus/" + std::string(name), "");
  Dispatch(lk);
  return {};
}

Result<void> Model::AddClass(std::string_view name) {
  UMBRA_TRY(CheckName("class", name));
  Lock lk(mu_);
  if (classes_.contains(name)) return Fail(Errc::kAlreadyExists, "class \"" + std::string(name) + "\" exists");
  auto cls = std::make_unique<Class>();
  cls->name = std::string(name);
  classes_.emplace(cls->name, std::move(cls));
  Emit(EventType::kAdd, ObjectKind::kClass, std::string(name), "/class/" + std::string(name), "");
  Dispatch(lk);
  return {};
}

Result<DeviceHandle> Model::AddDevice(DeviceSpec spec) {
  UMBRA_TRY(CheckName("device", spec.name));
  if (!spec.device_class.empty()) UMBRA_TRY(CheckName("class", spec.device_class));
  Lock lk(mu_);
  auto bus_it = buses_.find(spec.bus);
  if (bus_it == buses_.end()) {
    return Fail(Errc::kNotFound, "device " + spec.name + ": no bus named \"" + spec.bus + "\"");
  }
  if (devices_.Find(spec.name)) return Fail(Errc::kAlreadyExists, "device \"" + spec.name + "\" exists");
  Bus* bus = bus_it->second.get();
  Class* cls = nullptr;
  if (!spec.device_class.empty()) {
    auto cit = classes_.find(spec.device_class);
    if (cit == classes_.end()) {
      auto c = std::make_unique<Class>();
      c->name = spec.device_class;
      cit = classes_.emplace(c->name, std::move(c)).first;
      Emit(EventType::kAdd, ObjectKind::kClass, spec.device_class, "/class/" + spec.device_class, "");
    }
    cls = cit->second.get();
  }
  uint64_t generation = next_generation_++;
  auto dev = std::make_shared<Device>(std::move(spec), this, generation);
  dev->ord_ = next_ord_++;
  devices_.Insert(dev);
  bus->devices.push_back(dev.get());
  if (cls) cls->devices.push_back(dev.get());
  Emit(EventType::kAdd, ObjectKind::kDevice, dev->name(), dev->path(), "");
  if (bus->drivers_autoprobe) ProbeLocked(dev.get());
  Dispatch(lk);
  return DeviceHandle(dev, generation);
}

Result<DeviceHandle> Model::Open(std::string_view device) const {
  Lock lk(mu_);
  Device* d = FindDeviceLocked(device);
  if (!d) return std::unexpected(NoDevice(device));
  return DeviceHandle(d->shared_from_this(), d->generation());
}

Result<void> Model::AddDriver(DriverSpec spec, std::shared_ptr<DriverBackend> backend) {
  UMBRA_TRY(CheckName("driver", spec.name));
  if (!backend) return Fail(Errc::kInvalidArgument, "driver " + spec.name + " has no backend");
  if (spec.compatible.empty()) {
    return Fail(Errc::kInvalidArgument, "driver " + spec.name + " has an empty match table (compatible)");
  }
  Lock lk(mu_);
  auto bus_it = buses_.find(spec.bus);
  if (bus_it == buses_.end()) {
    return Fail(Errc::kNotFound, "driver " + spec.name + ": no bus named \"" + spec.bus + "\"");
  }
  if (drivers_.contains(spec.name)) return Fail(Errc::kAlreadyExists, "driver \"" + spec.name + "\" is loaded");
  Bus* bus = bus_it->second.get();
  auto drv = std::make_shared<Driver>(std::move(spec), std::move(backend));
  drivers_.emplace(drv->name(), drv);
  bus->drivers.push_back(drv.get());
  Emit(EventType::kAdd, ObjectKind::kDriver, drv->name(), drv->path(), "");
  if (bus->drivers_autoprobe) {
    for (Device* d : bus->devices) {
      DeviceState s = d->state();
      if (s == DeviceState::kUnbound || s == DeviceState::kDeferred) ProbeLocked(d);
    }
  }
  Dispatch(lk);
  return {};
}

Result<std::shared_ptr<Driver>> Model::FindDriver(std::string_view name) const {
  Lock lk(mu_);
  auto it = drivers_.find(name);
  if (it == drivers_.end()) return Fail(Errc::kNotFound, "no driver named \"" + std::string(name) + "\"");
  return it->second;
}

Result<void> Model::CanUnloadLocked(const Driver* drv) const {
  if (drv->users_ > 0) {
    std::string names;
    for (Device* d : buses_.find(drv->bus())->second->devices) {
      if (d->driver_ == drv) names += (names.empty() ? "" : ", ") + d->name();
    }
    return Fail(Errc::kBusy, "driver " + drv->name() + " is bound to " + names + ": unbind first");
  }
  int64_t in_flight = drv->work_.in_flight();
  if (in_flight > 0) {
    return Fail(Errc::kBusy, "driver " + drv->name() + " has " + std::to_string(in_flight) + " operation(s) in flight");
  }
  return {};
}

Result<void> Model::CanUnload(std::string_view driver) const {
  Lock lk(mu_);
  auto it = drivers_.find(driver);
  if (it == drivers_.end()) return Fail(Errc::kNotFound, "no driver named \"" + std::string(driver) + "\"");
  return CanUnloadLocked(it->second.get());
}

Result<void> Model::UnloadDriver(std::string_view driver, std::chrono::milliseconds timeout) {
  Lock lk(mu_);
  auto it = drivers_.find(driver);
  if (it == drivers_.end()) return Fail(Errc::kNotFound, "no driver named \"" + std::string(driver) + "\"");
  std::shared_ptr<Driver> drv = it->second;
  if (drv->state_ != DriverState::kLoaded) return Fail(Errc::kBusy, "driver " + drv->name() + " is unloading");
  UMBRA_TRY(CanUnloadLocked(drv.get()));
  // Atomic with the check above for new tokens: BeginWork fails from here on.
  UMBRA_TRY(drv->work_.BeginUnload());
  drv->state_ = DriverState::kUnloading;
  lk.unlock();
  Result<void> drained = drv->work_.Drain(timeout);
  lk.lock();
  if (!drained) {
    drv->work_.AbortUnload();
    drv->state_ = DriverState::kLoaded;
    return drained;
  }
  drv->state_ = DriverState::kUnloaded;
  EraseOne(buses_.find(drv->bus())->second->drivers, drv.get());
  drivers_.erase(drv->name());
  Emit(EventType::kRemove, ObjectKind::kDriver, drv->name(), drv->path(), "");
  Dispatch(lk);
  return {};
}

}  // namespace umbra::model
