#include "runtime/model/model.h"

#include <algorithm>
#include <utility>

#include "runtime/model/model_internal.h"

namespace umbra::model {

namespace {

bool IsUp(const Device* d) {
  DeviceState s = d->state();
  return s == DeviceState::kBound || s == DeviceState::kRecovering;
}

bool IsActive(DeviceState s) {
  return s == DeviceState::kProbing || s == DeviceState::kBound || s == DeviceState::kRecovering;
}

Result<void> CheckName(std::string_view what, std::string_view name) {
  if (name.empty()) return Fail(Errc::kInvalidArgument, std::string(what) + " name is empty");
  if (name.size() > 64) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " name \"" + std::string(name) + "\" is longer than 64");
  }
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-' || ch == '.' || ch == '+' || ch == '@';
    if (!ok) {
      return Fail(Errc::kInvalidArgument, std::string(what) + " name \"" + std::string(name) +
                                              "\" may hold only letters, digits and _ - . + @");
    }
  }
  if (name.find("--") != std::string_view::npos) {
    return Fail(Errc::kInvalidArgument,
                std::string(what) + " name \"" + std::string(name) + "\" may not contain \"--\" (it separates link names)");
  }
  return {};
}

template <class T>
void EraseOne(std::vector<T*>& v, const T* item) {
  auto it = std::find(v.begin(), v.end(), item);
  if (it != v.end()) v.erase(it);
}

}  // namespace

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

Device* Model::FindDeviceLocked(std::string_view name) const {
  return devices_.Find(name);
}

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

static Error NoDevice(std::string_view name) {
  return Error{Errc::kNotFound, "no device named \"" + std::string(name) + "\""};
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
    return Fail(Errc::kBusy,
                "driver " + drv->name() + " has " + std::to_string(in_flight) + " operation(s) in flight");
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

// --- matching and probing ---------------------------------------------------------

Driver* Model::MatchLocked(const Device* dev) const {
  auto bus_it = buses_.find(dev->bus());
  if (bus_it == buses_.end()) return nullptr;
  for (const std::string& compat : dev->compatible()) {
    for (Driver* drv : bus_it->second->drivers) {
      if (drv->state_ != DriverState::kLoaded) continue;
      const auto& table = drv->compatible();
      if (std::find(table.begin(), table.end(), compat) != table.end()) return drv;
    }
  }
  return nullptr;
}

// Whether the consumer of `link` must wait for its supplier before probing.
bool Model::WaitsForLocked(const Link* link) const {
  if (!link->flags_.managed()) return false;
  if (link->flags_.optional() && link->relaxed_) return false;
  return link->supplier_->state() != DeviceState::kBound;
}

bool Model::WaitsForAnyLocked(Device* dev) {
  const size_t n = dev->suppliers_.size();
  if (dev->wait_hint_ >= n) dev->wait_hint_ = 0;  // links were deleted since
  // Cyclically from the hint: the links before it were not waited for when
  // the last scan passed them; they are checked again, last.
  for (size_t k = 0, i = dev->wait_hint_; k < n; ++k, i = i + 1 == n ? 0 : i + 1) {
    if (WaitsForLocked(dev->suppliers_[i])) {
      dev->wait_hint_ = i;
      return true;
    }
  }
  return false;
}

void Model::ProbeLocked(Device* dev, Driver* only) {
  if (!dev->published_ || dev->generation() == 0) return;
  DeviceState s = dev->state();
  if (s != DeviceState::kUnbound && s != DeviceState::kDeferred) return;
  Driver* drv = MatchLocked(dev);
  if (only) drv = only;
  if (!drv) return;
  if (WaitsForAnyLocked(dev)) {
    dev->reason_.clear();  // ReasonLocked names the suppliers when asked
    dev->driver_deferred_ = false;
    SetStateLocked(dev, DeviceState::kDeferred);
    return;
  }
  dev->driver_deferred_ = false;
  for (Link* l : dev->suppliers_) {
    if (l->flags_.managed() && IsUp(l->supplier_)) SetLinkStateLocked(l, LinkState::kConsumerProbe);
  }
  dev->driver_ = drv;
  ++drv->users_;
  dev->reason_.clear();
  SetStateLocked(dev, DeviceState::kProbing);
  Post([backend = drv->backend_, keep = dev->shared_from_this()] { backend->Probe(*keep); });
}

Result<void> Model::ProbeDevice(std::string_view device) {
  Lock lk(mu_);
  Device* d = FindDeviceLocked(device);
  if (!d) return std::unexpected(NoDevice(device));
  DeviceState s = d->state();
  if (s != DeviceState::kUnbound && s != DeviceState::kDeferred && s != DeviceState::kFailed) {
    return Fail(Errc::kBusy, d->name() + " is " + DeviceStateName(s) + ", not unbound");
  }
  if (s == DeviceState::kFailed) SetStateLocked(d, DeviceState::kUnbound);
  if (!MatchLocked(d)) return Fail(Errc::kNotFound, "no loaded driver matches " + d->name());
  ProbeLocked(d);
  Dispatch(lk);
  return {};
}

Result<void> Model::ProbeDone(Device& device, Result<void> result) {
  Lock lk(mu_);
  if (device.generation() == 0 || !device.published_) {
    return Fail(Errc::kNoDevice, "probe of " + device.name() + " completed after " + device.name() + " was removed");
  }
  Device* dev = &device;
  if (dev->state() != DeviceState::kProbing) {
    return Fail(Errc::kInvalidArgument,
                dev->name() + " is not probing (state " + DeviceStateName(dev->state()) + ")");
  }
  if (result) {
    BoundLocked(dev);
    Dispatch(lk);
    return {};
  }
  Driver* drv = dev->driver_;
  --drv->users_;
  dev->driver_ = nullptr;
  dev->last_driver_ = drv->name();
  for (Link* l : dev->suppliers_) {
    if (l->flags_.managed()) SetLinkStateLocked(l, SupplierSideStateLocked(l));
  }
  if (result.error().code == Errc::kUnavailable) {
    dev->driver_deferred_ = true;
    driver_deferred_.push_back(dev);
    dev->reason_ = "driver " + drv->name() + " deferred the probe: " + result.error().message;
    SetStateLocked(dev, DeviceState::kDeferred);
  } else {
    dev->reason_ = "probe by " + drv->name() + " failed: " + result.error().ToString();
    SetStateLocked(dev, DeviceState::kUnbound);
  }
  Dispatch(lk);
  return {};
}

void Model::BoundLocked(Device* dev) {
  dev->reason_.clear();
  dev->last_driver_ = dev->driver_->name();
  SetStateLocked(dev, DeviceState::kBound);
  if (!subscribers_.empty()) Emit(EventType::kBind, ObjectKind::kDevice, dev->name(), dev->path(), dev->last_driver_);
  for (Link* l : dev->suppliers_) {
    if (l->flags_.managed()) SetLinkStateLocked(l, IsUp(l->supplier_) ? LinkState::kActive : LinkState::kDormant);
  }
  UpdateDegradedLocked(dev);
  RetryConsumersLocked(dev);
  RetryDriverDeferredLocked();
  FireWaitersLocked(dev, {});
}

void Model::FireWaitersLocked(Device* dev, Result<void> result) {
  if (dev->ready_waiters_.empty()) return;
  Post([waiters = std::move(dev->ready_waiters_), result] {
    for (const auto& w : waiters) w(result);
  });
  dev->ready_waiters_.clear();
}

// `supplier` came up: update its links, probe consumers that were waiting.
void Model::RetryConsumersLocked(Device* supplier) {
  for (Link* l : supplier->consumers_) {
    if (!l->flags_.managed()) continue;
    Device* c = l->consumer_;
    switch (c->state()) {
      case DeviceState::kBound:
      case DeviceState::kRecovering:
        SetLinkStateLocked(l, LinkState::kActive);
        if (l->flags_.optional() && c->degraded_) {
          UpdateDegradedLocked(c);
          NotifyOneLocked(c, supplier, &LinkListener::OnSupplierRecovered);
        }
        break;
      case DeviceState::kProbing:
        SetLinkStateLocked(l, LinkState::kConsumerProbe);
        break;
      case DeviceState::kUnbound:
        SetLinkStateLocked(l, LinkState::kAvailable);
        if (l->flags_.has(LinkFlag::kAutoProbeConsumer)) ProbeLocked(c);
        break;
      case DeviceState::kDeferred:
        SetLinkStateLocked(l, LinkState::kAvailable);
        ProbeLocked(c);
        break;
      case DeviceState::kFailed:
      case DeviceState::kUnbinding:
      case DeviceState::kRemoved:
        SetLinkStateLocked(l, LinkState::kAvailable);
        break;
    }
  }
}

void Model::RetryDriverDeferredLocked() {
  if (driver_deferred_.empty()) return;
  std::vector<Device*> retry;
  retry.swap(driver_deferred_);
  for (Device* d : retry) {
    if (!d->driver_deferred_ || d->state() != DeviceState::kDeferred) continue;
    d->driver_deferred_ = false;
    ProbeLocked(d);
  }
}

void Model::UpdateDegradedLocked(Device* dev) {
  bool degraded = false;
  if (IsActive(dev->state())) {
    for (const Link* l : dev->suppliers_) {
      if (l->flags_.managed() && l->flags_.optional() && !IsUp(l->supplier_)) degraded = true;
    }
  }
  if (degraded == dev->degraded_) return;
  dev->degraded_ = degraded;
  if (!subscribers_.empty()) {
    Emit(EventType::kStateChange, ObjectKind::kDevice, dev->name(), dev->path(),
         degraded ? "degraded: 0 -> 1" : "degraded: 1 -> 0");
  }
}

Result<void> Model::WhenReady(const DeviceHandle& device, std::function<void(Result<void>)> done) {
  Lock lk(mu_);
  const auto& dev = device.device();
  if (!dev || !device.alive() || !dev->published_) {
    return Fail(Errc::kNoDevice, device.name() + " was removed");
  }
  switch (dev->state()) {
    case DeviceState::kBound:
      Post([done = std::move(done)] { done({}); });
      break;
    case DeviceState::kFailed:
      Post([done = std::move(done), msg = dev->name() + " failed: " + dev->reason_] {
        done(Fail(Errc::kDeviceFailed, msg));
      });
      break;
    case DeviceState::kUnbound:
    case DeviceState::kProbing:
    case DeviceState::kDeferred:
    case DeviceState::kRecovering:
    case DeviceState::kUnbinding:
    case DeviceState::kRemoved:
      dev->ready_waiters_.push_back(std::move(done));
      break;
  }
  Dispatch(lk);
  return {};
}

DeferralReport Model::ExpireDeferral() {
  Lock lk(mu_);
  DeferralReport report;
  deferral_expired_ = true;
  links_.ForEach([&](const std::unique_ptr<Link>& l) {
    if (l->flags_.managed() && l->flags_.optional() && !l->relaxed_) {
      l->relaxed_ = true;
      ++report.relaxed_links;
    }
  });
  std::vector<Device*> deferred;
  devices_.ForEach([&](const std::shared_ptr<Device>& d) {
    if (d->state() == DeviceState::kDeferred) deferred.push_back(d.get());
  });
  std::sort(deferred.begin(), deferred.end(), [](Device* a, Device* b) { return a->ord_ < b->ord_; });
  for (Device* d : deferred) ProbeLocked(d);
  Dispatch(lk);
  // What still waits once the retries above (and what they bound) settled.
  std::vector<Device*> still;
  devices_.ForEach([&](const std::shared_ptr<Device>& d) {
    if (d->state() == DeviceState::kDeferred) still.push_back(d.get());
  });
  std::sort(still.begin(), still.end(), [](Device* a, Device* b) { return a->ord_ < b->ord_; });
  for (Device* d : still) {
    DeferralReport::Waiting w{d->name(), {}};
    for (const Link* l : d->suppliers_) {
      if (WaitsForLocked(l)) w.suppliers.push_back(l->supplier_name() + " (" + DeviceStateName(l->supplier_->state()) + ")");
    }
    report.waiting.push_back(std::move(w));
  }
  return report;
}

std::string DeferralReport::ToString() const {
  if (waiting.empty()) return "nothing waits";
  std::string out;
  for (const Waiting& w : waiting) {
    if (!out.empty()) out += "; ";
    out += w.device + " waits for ";
    if (w.suppliers.empty()) {
      out += "its driver";
      continue;
    }
    for (size_t i = 0; i < w.suppliers.size(); ++i) out += (i ? ", " : "") + w.suppliers[i];
  }
  return out;
}

// --- unbinding ------------------------------------------------------------------

// Every device that must unbind before `root` does: the consumers of managed,
// non-optional links, transitively, that are probing, bound or recovering;
// consumers first (reverse topological order).
std::vector<Device*> Model::DependentsLocked(Device* root) {
  uint64_t mark = next_mark_++;
  std::vector<Device*> out;
  std::vector<Device*> stack{root};
  root->mark_ = mark;
  while (!stack.empty()) {
    Device* d = stack.back();
    stack.pop_back();
    for (Link* l : d->consumers_) {
      if (!l->flags_.managed() || l->flags_.optional()) continue;
      Device* c = l->consumer_;
      if (c->mark_ == mark || !IsActive(c->state())) continue;
      c->mark_ = mark;
      out.push_back(c);
      stack.push_back(c);
    }
  }
  std::sort(out.begin(), out.end(), [](Device* a, Device* b) { return a->ord_ > b->ord_; });
  return out;
}

void Model::StartUnbindLocked(Device* dev, std::string reason, NotifyUnbound notify) {
  if (!IsActive(dev->state())) return;
  SetStateLocked(dev, DeviceState::kUnbinding);
  for (Link* l : dev->consumers_) {
    if (l->flags_.managed()) SetLinkStateLocked(l, LinkState::kSupplierUnbind);
  }
  auto keep = dev->shared_from_this();
  Post([backend = dev->driver_->backend_, keep] { backend->Remove(*keep); });
  Post([this, keep, reason = std::move(reason), notify] {
    Lock lk(mu_);
    FinishUnbindLocked(keep.get(), reason, DeviceState::kUnbound, notify);
  });
}

void Model::FinishUnbindLocked(Device* dev, const std::string& reason, DeviceState final_state, NotifyUnbound notify) {
  if (final_state == DeviceState::kUnbound && dev->state() != DeviceState::kUnbinding) return;
  if (Driver* drv = dev->driver_) {
    --drv->users_;
    dev->last_driver_ = drv->name();
    dev->driver_ = nullptr;
  }
  dev->reason_ = reason;
  dev->degraded_ = false;
  if (dev->published_) SetStateLocked(dev, final_state);
  if (!subscribers_.empty()) Emit(EventType::kUnbind, ObjectKind::kDevice, dev->name(), dev->path(), reason);
  // As a consumer.
  std::vector<Link*> suppliers = dev->suppliers_;
  for (Link* l : suppliers) {
    if (!l->flags_.managed()) continue;
    if (l->flags_.has(LinkFlag::kAutoRemoveConsumer)) {
      DeleteLinkLocked(l);
      continue;
    }
    // A supplier that is unbinding settles the link itself when it is done.
    if (l->state_ != LinkState::kSupplierUnbind) SetLinkStateLocked(l, SupplierSideStateLocked(l));
  }
  // As a supplier: consumers still bound here are on optional or stateless links.
  std::vector<Link*> consumers = dev->consumers_;
  for (Link* l : consumers) {
    Device* c = l->consumer_;
    bool consumer_up = IsActive(c->state());
    if (l->flags_.managed()) {
      if (l->flags_.has(LinkFlag::kAutoRemoveSupplier)) {
        DeleteLinkLocked(l);
      } else {
        SetLinkStateLocked(l, LinkState::kDormant);
      }
      if (consumer_up) UpdateDegradedLocked(c);
    }
    if (consumer_up && notify == NotifyUnbound::kYes) NotifyOneLocked(c, dev, &LinkListener::OnSupplierUnbound);
  }
}

Result<void> Model::UnbindDevice(std::string_view device, std::string_view reason) {
  Lock lk(mu_);
  Device* d = FindDeviceLocked(device);
  if (!d) return std::unexpected(NoDevice(device));
  Result<void> r = UnbindLocked(d, reason);
  Dispatch(lk);
  return r;
}

Result<void> Model::UnbindLocked(Device* d, std::string_view reason) {
  if (!IsActive(d->state())) {
    return Fail(Errc::kInvalidArgument, d->name() + " is not bound (state " + DeviceStateName(d->state()) + ")");
  }
  std::string why = reason.empty() ? std::string("unbound") : std::string(reason);
  for (Device* c : DependentsLocked(d)) {
    StartUnbindLocked(c, "supplier " + d->name() + " unbound: " + why, NotifyUnbound::kYes);
  }
  StartUnbindLocked(d, why, NotifyUnbound::kYes);
  return {};
}

// --- links ------------------------------------------------------------------------

Result<void> Model::AddLink(std::string_view consumer, std::string_view supplier, LinkFlags flags) {
  UMBRA_TRY(ValidateLinkFlags(flags));
  Lock lk(mu_);
  Device* c = FindDeviceLocked(consumer);
  if (!c) return std::unexpected(NoDevice(consumer));
  Device* s = FindDeviceLocked(supplier);
  if (!s) return std::unexpected(NoDevice(supplier));
  if (c == s) {
    return Fail(Errc::kInvalidArgument, "link " + c->name() + " -> " + c->name() +
                                            " would close a cycle: " + c->name() + " -> " + c->name());
  }
  if (FindLinkLocked(c, s)) {
    return Fail(Errc::kAlreadyExists, "link " + c->name() + " -> " + s->name() + " exists");
  }
  UMBRA_TRY(CheckCycleLocked(c, s));
  auto owned = std::make_unique<Link>(c, s, flags);
  Link* l = owned.get();
  if (!flags.managed()) {
    l->state_ = LinkState::kNone;
  } else if (s->state() == DeviceState::kUnbinding) {
    l->state_ = LinkState::kSupplierUnbind;
  } else if (!IsUp(s)) {
    l->state_ = LinkState::kDormant;
  } else if (IsUp(c)) {
    l->state_ = LinkState::kActive;
  } else if (c->state() == DeviceState::kProbing) {
    l->state_ = LinkState::kConsumerProbe;
  } else {
    l->state_ = LinkState::kAvailable;
  }
  l->relaxed_ = deferral_expired_ && flags.optional();
  c->suppliers_.push_back(l);
  s->consumers_.push_back(l);
  links_.Insert(std::move(owned));
  if (!subscribers_.empty()) Emit(EventType::kLinkAdd, ObjectKind::kLink, l->name(), l->path(), flags.ToString());
  if (flags.managed()) {
    // Only this link can change it (rescanning every supplier on each add
    // would cost O(k^2) for a consumer of k suppliers).
    if (flags.optional() && !IsUp(s)) UpdateDegradedLocked(c);
    if (IsUp(s) && c->state() == DeviceState::kUnbound && flags.has(LinkFlag::kAutoProbeConsumer)) ProbeLocked(c);
  }
  Dispatch(lk);
  return {};
}

// Keeps `ord_` a topological order (suppliers before consumers) and refuses a
// link that would close a cycle. Pearce-Kelly: only the region between the
// two devices' positions is searched, and nothing when the order already fits.
Result<void> Model::CheckCycleLocked(Device* consumer, Device* supplier) {
  if (supplier->ord_ < consumer->ord_) return {};
  const int64_t upper = supplier->ord_;
  const int64_t lower = consumer->ord_;
  // Forward: devices that depend on `consumer` and sit before `supplier`.
  uint64_t fmark = next_mark_++;
  std::vector<Device*> forward;
  std::vector<Device*> stack{consumer};
  consumer->mark_ = fmark;
  consumer->search_parent_ = nullptr;
  while (!stack.empty()) {
    Device* d = stack.back();
    stack.pop_back();
    forward.push_back(d);
    for (Link* l : d->consumers_) {
      Device* n = l->consumer_;
      if (n == supplier) {
        // supplier -> d -> ... -> consumer (depends on), closed by the new link.
        std::string cycle = consumer->name() + " -> " + supplier->name();
        for (Device* p = d; p; p = p->search_parent_) cycle += " -> " + p->name();
        return Fail(Errc::kInvalidArgument, "link " + consumer->name() + " -> " + supplier->name() +
                                                " would close a cycle: " + cycle);
      }
      if (n->mark_ == fmark || n->ord_ > upper) continue;
      n->mark_ = fmark;
      n->search_parent_ = d;
      stack.push_back(n);
    }
  }
  // Backward: devices `supplier` depends on that sit after `consumer`.
  uint64_t bmark = next_mark_++;
  std::vector<Device*> backward;
  stack.push_back(supplier);
  supplier->mark_ = bmark;
  while (!stack.empty()) {
    Device* d = stack.back();
    stack.pop_back();
    backward.push_back(d);
    for (Link* l : d->suppliers_) {
      Device* n = l->supplier_;
      if (n->mark_ == bmark || n->ord_ < lower) continue;
      n->mark_ = bmark;
      stack.push_back(n);
    }
  }
  auto by_ord = [](Device* a, Device* b) { return a->ord_ < b->ord_; };
  std::sort(forward.begin(), forward.end(), by_ord);
  std::sort(backward.begin(), backward.end(), by_ord);
  std::vector<int64_t> slots;
  slots.reserve(forward.size() + backward.size());
  for (Device* d : backward) slots.push_back(d->ord_);
  for (Device* d : forward) slots.push_back(d->ord_);
  std::sort(slots.begin(), slots.end());
  size_t i = 0;
  for (Device* d : backward) d->ord_ = slots[i++];
  for (Device* d : forward) d->ord_ = slots[i++];
  return {};
}

void Model::DeleteLinkLocked(Link* link) {
  EraseOne(link->consumer_->suppliers_, link);
  EraseOne(link->supplier_->consumers_, link);
  if (!subscribers_.empty()) Emit(EventType::kLinkRemove, ObjectKind::kLink, link->name(), link->path(), "");
  links_.Erase({link->supplier_, link->consumer_});
}

Result<void> Model::RemoveLink(std::string_view consumer, std::string_view supplier) {
  Lock lk(mu_);
  Link* l = FindLinkLocked(consumer, supplier);
  if (!l) return Fail(Errc::kNotFound, "no link " + std::string(consumer) + " -> " + std::string(supplier));
  Device* c = l->consumer_;
  DeleteLinkLocked(l);
  if (c->state() == DeviceState::kDeferred) ProbeLocked(c);
  UpdateDegradedLocked(c);
  Dispatch(lk);
  return {};
}

// --- recovery ---------------------------------------------------------------------

void Model::NotifyOneLocked(Device* consumer, Device* supplier, void (LinkListener::*fn)(const Device&)) {
  if (!consumer->listener_) return;
  Post([listener = consumer->listener_, keep = supplier->shared_from_this(), fn] { ((*listener).*fn)(*keep); });
}

Result<void> Model::SetLinkListener(std::string_view device, std::shared_ptr<LinkListener> listener) {
  Lock lk(mu_);
  Device* d = FindDeviceLocked(device);
  if (!d) return std::unexpected(NoDevice(device));
  d->listener_ = std::move(listener);
  return {};
}

Result<void> Model::SetRecovering(std::string_view device) {
  Lock lk(mu_);
  Device* d = FindDeviceLocked(device);
  if (!d) return std::unexpected(NoDevice(device));
  if (d->state() == DeviceState::kRecovering) return {};  // a double fault: recovery restarts
  if (d->state() != DeviceState::kBound) {
    return Fail(Errc::kInvalidArgument,
                d->name() + " is " + DeviceStateName(d->state()) + ": only a bound device can start recovering");
  }
  SetStateLocked(d, DeviceState::kRecovering);
  for (Link* l : d->consumers_) {
    if (IsActive(l->consumer_->state())) NotifyOneLocked(l->consumer_, d, &LinkListener::OnSupplierRecovering);
  }
  Dispatch(lk);
  return {};
}

Result<void> Model::SetRecovered(std::string_view device) {
  Lock lk(mu_);
  Device* d = FindDeviceLocked(device);
  if (!d) return std::unexpected(NoDevice(device));
  if (d->state() != DeviceState::kRecovering) {
    return Fail(Errc::kInvalidArgument,
                d->name() + " is " + DeviceStateName(d->state()) + ", not recovering");
  }
  SetStateLocked(d, DeviceState::kBound);
  for (Link* l : d->consumers_) {
    if (IsActive(l->consumer_->state())) NotifyOneLocked(l->consumer_, d, &LinkListener::OnSupplierRecovered);
  }
  RetryConsumersLocked(d);
  FireWaitersLocked(d, {});
  Dispatch(lk);
  return {};
}

Result<void> Model::SetFailed(std::string_view device, std::string_view reason) {
  Lock lk(mu_);
  Device* d = FindDeviceLocked(device);
  if (!d) return std::unexpected(NoDevice(device));
  DeviceState s = d->state();
  if (s == DeviceState::kFailed) return {};
  if (s == DeviceState::kUnbinding || s == DeviceState::kRemoved) {
    return Fail(Errc::kBusy, d->name() + " is " + DeviceStateName(s) + "; it cannot fail now");
  }
  std::string why = reason.empty() ? std::string("failed") : std::string(reason);
  // Tell every consumer first, then unbind the ones that cannot do without it.
  for (Link* l : d->consumers_) {
    Device* c = l->consumer_;
    if (!IsActive(c->state()) || !c->listener_) continue;
    LinkOptional optional = l->flags_.optional() ? LinkOptional::kYes : LinkOptional::kNo;
    Post([listener = c->listener_, keep = d->shared_from_this(), optional] {
      listener->OnSupplierFailed(*keep, optional);
    });
  }
  for (Device* c : DependentsLocked(d)) {
    StartUnbindLocked(c, "supplier " + d->name() + " failed: " + why, NotifyUnbound::kYes);
  }
  SetStateLocked(d, DeviceState::kFailed);
  FireWaitersLocked(d, Fail(Errc::kDeviceFailed, d->name() + " failed: " + why));
  // The failed device's own links settle after its consumers have unbound.
  Post([this, keep = d->shared_from_this(), why] {
    Lock lk2(mu_);
    FinishUnbindLocked(keep.get(), why, DeviceState::kFailed, NotifyUnbound::kNo);
  });
  for (Link* l : d->consumers_) {
    if (l->flags_.managed() && l->flags_.optional()) UpdateDegradedLocked(l->consumer_);
  }
  Dispatch(lk);
  return {};
}

// --- removal -----------------------------------------------------------------------

Result<void> Model::RemoveDevice(std::string_view device) {
  Lock lk(mu_);
  Device* d = FindDeviceLocked(device);
  if (!d) return std::unexpected(NoDevice(device));
  if (internal::InAccess(d)) {
    return Fail(Errc::kBusy, "cannot remove " + d->name() + " from inside an Access of its own handle");
  }
  std::shared_ptr<Device> keep = d->shared_from_this();
  lk.unlock();
  // Revoke: new uses fail from here on (before they take the lock, so a stream
  // of users cannot starve us), then wait for the uses in progress.
  if (keep->generation_.exchange(0, std::memory_order_acq_rel) == 0) {
    return Fail(Errc::kNoDevice, keep->name() + " was removed");
  }
  { std::unique_lock rl(keep->revoke_mu_); }
  lk.lock();
  for (Device* c : DependentsLocked(d)) {
    StartUnbindLocked(c, "supplier " + d->name() + " removed", NotifyUnbound::kYes);
  }
  StartUnbindLocked(d, "removed", NotifyUnbound::kYes);
  Post([this, keep] {
    Lock lk2(mu_);
    UnpublishDeviceLocked(keep.get());
  });
  Dispatch(lk);
  return {};
}

void Model::UnpublishDeviceLocked(Device* dev) {
  if (!dev->published_) return;
  if (Driver* drv = dev->driver_) {
    --drv->users_;
    dev->driver_ = nullptr;
  }
  std::vector<Link*> suppliers = dev->suppliers_;
  for (Link* l : suppliers) DeleteLinkLocked(l);
  std::vector<Link*> consumers = dev->consumers_;
  for (Link* l : consumers) {
    Device* c = l->consumer_;
    DeleteLinkLocked(l);
    if (c->state() == DeviceState::kDeferred) ProbeLocked(c);
    UpdateDegradedLocked(c);
  }
  Bus* bus = buses_.find(dev->bus())->second.get();
  EraseOne(bus->devices, dev);
  if (!dev->device_class().empty()) EraseOne(classes_.find(dev->device_class())->second->devices, dev);
  std::erase(driver_deferred_, dev);
  dev->published_ = false;
  dev->degraded_ = false;
  SetStateLocked(dev, DeviceState::kRemoved);
  Emit(EventType::kRemove, ObjectKind::kDevice, dev->name(), dev->path(), "");
  FireWaitersLocked(dev, Fail(Errc::kNoDevice, dev->name() + " was removed"));
  devices_.Erase(dev->name());  // the caller's `keep` holds the memory until it returns
}

}  // namespace umbra::model
