// The disk driver with one test hook: its second instance crashes with
// SIGSEGV on its third data request, while the block shadow is still
// resubmitting what the first instance had in flight (a double fault).
#include <signal.h>

#include "drivers/disk/disk_driver.h"

namespace {

class FaultyDiskDriver : public umbra::drivers::disk::DiskDriver {
 public:
  void OnRequest(umbra::sdk::Context& ctx, const umbra::ipc::Descriptor& req) override {
    if (ctx.device().instance == 2 && ++requests_ == 3) ::raise(SIGSEGV);
    DiskDriver::OnRequest(ctx, req);
  }

 private:
  int requests_ = 0;
};

}  // namespace

UMBRA_DRIVER_MAIN(FaultyDiskDriver)
