// The echo class: the smallest complete shadow class, and the pattern the
// real classes (net, sound, block) follow.
//
// Interface: Echo() sends bytes through the driver and returns them
// transformed; SetTag()/Tag() is a setting. While the driver recovers, Echo()
// waits and resubmits (the queue policy), and Tag() is answered from the
// shadow; SetTag() is logged and replayed into every new driver.
//
//   auto shadow = EchoShadow::Create(host);
//   shadow->Start();
//   std::vector<std::byte> data = ...;
//   UMBRA_TRY(shadow->Echo(data));        // crash-proof
//
// Recording: each Echo() call is one request (op "other"), completed when the
// call returns (docs/recorder.md).
//
// Thread safety: one client thread for Echo; SetTag/Tag from any thread.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "shadows/shadow.h"

namespace umbra::shadows::echo {

class EchoShadow final : public Shadow {
 public:
  // Stops the worker before this object's part is gone (see Shadow::Stop).
  ~EchoShadow() override { Stop(); }

  static std::unique_ptr<EchoShadow> Create(runtime::Host& host, RecoveryMode mode = RecoveryMode::kShadow);

  // Transforms `data` in place through the driver. Never fails because the
  // driver crashed (in shadow mode); fails with kDeviceFailed once given up.
  Result<void> Echo(std::span<std::byte> data, int64_t timeout_ns = 10'000'000'000);
  Result<void> SetTag(std::string tag);
  std::string Tag() const;
  // The tag as the current driver instance holds it (a real driver call).
  Result<std::string> DriverTag();

 private:
  using Shadow::Shadow;
  // Echo without recording: one RoundTrip (shadows/data_path.h).
  Result<void> EchoThroughDriver(std::span<std::byte> data, int64_t timeout_ns);
};

}  // namespace umbra::shadows::echo
