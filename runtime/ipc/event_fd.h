// EventFd: a doorbell. Signal() wakes a Wait() on the other side.
//
// Doorbells are rung only when the peer may be asleep (see SpscRing's event
// suppression); a busy path costs no system call.
//
// Thread safety: Signal and Wait may be called from different threads and
// processes; that is the point.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/unique_fd.h"

namespace umbra::ipc {

class EventFd {
 public:
  // A new non-blocking, close-on-exec eventfd.
  static Result<EventFd> Create();
  // Wraps a received eventfd.
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
  EventFd() = default;

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }

  // Adds one to the counter; never blocks.
  void Signal() const;
  // Clears the counter; returns how many signals were pending.
  uint64_t Drain() const;
  // Blocks until signalled or `timeout_ns` passes (negative: forever).
  // Returns true when signalled (and drains), false on timeout.
  bool Wait(int64_t timeout_ns) const;

 private:
  UniqueFd fd_;
};

}  // namespace umbra::ipc
