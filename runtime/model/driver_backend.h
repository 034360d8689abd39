// The interfaces between the model and the rest of the runtime.
//
// DriverBackend is how a driver object reaches its real driver: the runtime
// implements it by starting a driver process; tests use InProcessBackend.
//
//   class ProcessBackend : public DriverBackend {
//     void Probe(Device& dev) override {
//       auto keep = dev.shared_from_this();   // async: keep the device alive
//       Spawn(dev, [this, keep](Result<void> r) { model_->ProbeDone(*keep, r); });
//     }
//     void Remove(Device& dev) override { StopProcess(dev.name()); }
//   };
//
// LinkListener is how a consumer (its shadow) hears about its suppliers.
//
// Thread safety: the model calls both on its dispatching thread and never with
// its lock held, so they may call back into the model (ProbeDone, Read, ...).
// They must not block waiting for another thread that is itself waiting for
// the model to dispatch.
#pragma once

#include "runtime/model/types.h"

namespace umbra::model {

class Device;

class DriverBackend {
 public:
  virtual ~DriverBackend() = default;

  // Starts binding `device`. Completes, now or later, from any thread, with
  // Model::ProbeDone(device, result): ok binds it; an error with
  // Errc::kUnavailable defers it (retried when another device binds); any other
  // error leaves it unbound with the error as its reason. Until then the
  // device shows `probing`.
  virtual void Probe(Device& device) = 0;

  // Stops serving `device` (unbind or removal). The model shows `unbinding`
  // while this runs and `unbound` after it returns.
  virtual void Remove(Device& device) = 0;
};

// What a consumer hears about a supplier it has a link to.
class LinkListener {
 public:
  virtual ~LinkListener() = default;

  // The supplier's driver crashed and is being restarted: hold (queue).
  virtual void OnSupplierRecovering(const Device& supplier) = 0;
  // The supplier serves again (after recovery, or bound after running
  // degraded without it): re-acquire what was taken from it.
  virtual void OnSupplierRecovered(const Device& supplier) = 0;
  // The supplier was given up on. On a managed, non-optional link the model
  // unbinds the consumer next (its reason names the supplier); on an optional
  // link the consumer stays bound and is marked degraded.
  virtual void OnSupplierFailed(const Device& supplier, LinkOptional optional) = 0;
  // The supplier was unbound on purpose while the consumer stays bound (an
  // optional or stateless link); the consumer is degraded on an optional link.
  virtual void OnSupplierUnbound(const Device& supplier) { (void)supplier; }
};

}  // namespace umbra::model
