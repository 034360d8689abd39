#include "runtime/model/model.h"

#include <algorithm>
#include <utility>

#include "runtime/model/model_internal.h"

namespace umbra::model {

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
    return Fail(Errc::kInvalidArgument,
                "link " + c->name() + " -> " + c->name() + " would close a cycle: " + c->name() + " -> " + c->name());
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
        return Fail(Errc::kInvalidArgument,
                    "link " + consumer->name() + " -> " + supplier->name() + " would close a cycle: " + cycle);
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
    return Fail(Errc::kInvalidArgument, d->name() + " is " + DeviceStateName(d->state()) + ", not recovering");
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
