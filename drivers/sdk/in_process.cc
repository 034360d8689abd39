#include "drivers/sdk/in_process.h"

namespace umbra::sdk {

InProcessRunner::InProcessRunner(std::unique_ptr<Driver> driver, Options options)
    : driver_(std::move(driver)),
      options_(std::move(options)),
      pool_(new std::byte[options_.pool_bytes]()) {
  completions_.reserve(1024);
}

void InProcessRunner::Complete(const ipc::Descriptor& request, int32_t status, uint32_t length,
                               uint64_t arg) {
  ipc::Descriptor d = request;
  d.status = status;
  d.length = length;
  d.arg = arg;
  completions_.push_back(d);
}

}  // namespace umbra::sdk
