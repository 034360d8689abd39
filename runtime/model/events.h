// Events: what the model tells shadows, the recorder and the CLI (uevents).
//
//   Subscription sub = model.Subscribe([](const Event& e) {
//     spdlog::info("{} {} {}", EventTypeName(e.type), e.path, e.detail);
//   });
//   // ... events arrive in order; destroying `sub` unsubscribes.
//
// Thread safety: callbacks run on the thread dispatching the model's work
// (usually the supervisor thread), one at a time, in event order, never with
// the model's lock held. Destroying a Subscription waits for a callback that
// is running on another thread, so after the destructor returns the callback
// is never called again (it may be destroyed from inside its own callback).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <memory>
#include <string>

namespace umbra::model {

enum class EventType {
  kAdd,              // an object was published (bus, class, device, driver)
  kRemove,           // an object was unpublished
  kBind,             // a device was bound to a driver (detail: driver)
  kUnbind,           // a device was unbound (detail: reason)
  kStateChange,      // a device changed state (detail: "bound -> recovering")
  kLinkAdd,          // a link was created
  kLinkRemove,       // a link was deleted
  kLinkStateChange,  // a link changed state (detail: "dormant -> available")
};
const char* EventTypeName(EventType type);

enum class ObjectKind { kBus, kClass, kDevice, kDriver, kLink };
const char* ObjectKindName(ObjectKind kind);

struct Event {
  uint64_t seq = 0;  // 1, 2, 3 … in the order the model made them
  EventType type = EventType::kAdd;
  ObjectKind kind = ObjectKind::kDevice;
  std::string name;    // "nic0", "clk0--nic0"
  std::string path;    // "/devices/platform/nic0", "/links/clk0--nic0"
  std::string detail;  // see EventType
};

using EventCallback = std::function<void(const Event&)>;

namespace internal {
// One subscriber; shared by the model's list and the Subscription.
struct Subscriber {
  explicit Subscriber(EventCallback cb) : callback(std::move(cb)) {}
  void Deliver(const Event& event);
  void Cancel();

  // Held while the callback runs; recursive so that a callback may destroy its
  // own Subscription.
  std::recursive_mutex mu;
  std::atomic<bool> active{true};  // written under mu; read without it to prune
  EventCallback callback;
};
}  // namespace internal

// Keeps a subscription alive; unsubscribes when destroyed. Movable.
class Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::shared_ptr<internal::Subscriber> s) : subscriber_(std::move(s)) {}
  Subscription(Subscription&&) noexcept = default;
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      Reset();
      subscriber_ = std::move(other.subscriber_);
    }
    return *this;
  }
  ~Subscription() { Reset(); }

  // Unsubscribes now.
  void Reset() {
    if (subscriber_) subscriber_->Cancel();
    subscriber_.reset();
  }

 private:
  // Shared with the model's subscriber list so that either may go first.
  std::shared_ptr<internal::Subscriber> subscriber_;
};

}  // namespace umbra::model
