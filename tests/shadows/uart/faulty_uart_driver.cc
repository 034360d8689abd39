// The uart driver with one test hook: it aborts while a shadow replays the
// line settings into the instances listed in the "crash_set_line_on"
// setting ("2,3"), a double fault during recovery.
#include <cstdlib>
#include <string>

#include "drivers/uart/uart_driver.h"

namespace {

class FaultyUartDriver : public umbra::drivers::uart::UartDriver {
 public:
  umbra::Result<std::string> OnCall(umbra::sdk::Context& ctx, uint32_t method, std::string_view body) override {
    auto it = ctx.device().settings.find("crash_set_line_on");
    if (method == umbra::drivers::uart::kSetLine && it != ctx.device().settings.end()) {
      const std::string list = "," + it->second + ",";
      if (list.find("," + std::to_string(ctx.device().instance) + ",") != std::string::npos) std::abort();
    }
    return UartDriver::OnCall(ctx, method, body);
  }
};

}  // namespace

UMBRA_DRIVER_MAIN(FaultyUartDriver)
