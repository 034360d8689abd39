#include "drivers/sdk/in_process.h"

#include <poll.h>
#include <unistd.h>

namespace umbra::sdk {

InProcessRunner::InProcessRunner(std::unique_ptr<Driver> driver, Options options)
    : driver_(std::move(driver)), options_(std::move(options)), pool_(new std::byte[options_.pool_bytes]()) {
  completions_.reserve(1024);
}

void InProcessRunner::Complete(const ipc::Descriptor& request, int32_t status, uint32_t length, uint64_t arg) {
  ipc::Descriptor d = request;
  d.status = status;
  d.length = length;
  d.arg = arg;
  completions_.push_back(d);
}

void InProcessRunner::RingDoorbell() {
  if (options_.hw_doorbell_fd < 0) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(options_.hw_doorbell_fd, &one, sizeof one);
}

bool InProcessRunner::PollInterrupt() { return WaitForInterrupt(0); }

bool InProcessRunner::WaitForInterrupt(int64_t timeout_ns) {
  if (options_.hw_interrupt_fd < 0) return false;
  uint64_t v;
  pollfd pfd{options_.hw_interrupt_fd, POLLIN, 0};
  const timespec ts{.tv_sec = timeout_ns / 1'000'000'000, .tv_nsec = timeout_ns % 1'000'000'000};
  if (::ppoll(&pfd, 1, &ts, nullptr) <= 0) return false;
  if (::read(options_.hw_interrupt_fd, &v, sizeof v) != sizeof v) return false;
  driver_->OnInterrupt(*this);
  return true;
}

}  // namespace umbra::sdk
