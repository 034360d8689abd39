#include "runtime/model/model.h"

#include <algorithm>
#include <utility>

#include "runtime/model/model_internal.h"

namespace umbra::model {

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
    return Fail(Errc::kInvalidArgument, dev->name() + " is not probing (state " + DeviceStateName(dev->state()) + ")");
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
      case DeviceState::kProbing: SetLinkStateLocked(l, LinkState::kConsumerProbe); break;
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
      case DeviceState::kRemoved: SetLinkStateLocked(l, LinkState::kAvailable); break;
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
    case DeviceState::kBound: Post([done = std::move(done)] { done({}); }); break;
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
    case DeviceState::kRemoved: dev->ready_waiters_.push_back(std::move(done)); break;
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
      if (WaitsForLocked(l))
        w.suppliers.push_back(l->supplier_name() + " (" + DeviceStateName(l->supplier_->state()) + ")");
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

}  // namespace umbra::model
