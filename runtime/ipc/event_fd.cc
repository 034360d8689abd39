#include "runtime/ipc/event_fd.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace umbra::ipc {

Result<EventFd> EventFd::Create() {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return FailErrno("eventfd");
  return EventFd(UniqueFd(fd));
}

void EventFd::Signal() const {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: the peer will wake anyway.
  [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof one);
}

uint64_t EventFd::Drain() const {
  uint64_t value = 0;
  if (::read(fd_.get(), &value, sizeof value) != sizeof value) return 0;
  return value;
}

bool EventFd::Wait(int64_t timeout_ns) const {
  pollfd pfd{fd_.get(), POLLIN, 0};
  int timeout_ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999'999) / 1'000'000);
  for (;;) {
    int n = ::poll(&pfd, 1, timeout_ms);
    if (n > 0) {
      Drain();
      return true;
    }
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace umbra::ipc
