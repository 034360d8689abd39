// LiveFault: what `umbra inject DEVICE FAULT` does to a running driver,
// decided from the FAULT text alone (so it is checked before anything is
// touched).
//
//   ResolveLiveFault("sigkill", "")   → {kSignal, SIGKILL}
//   ResolveLiveFault("segfault", "")  → {kFailpoint, spec "sdk.heartbeat=1*segfault"}
//   ResolveLiveFault("error(EIO)", "disk.submit") → {kFailpoint, "disk.submit=1*error(EIO)"}
//   ResolveLiveFault("nic.tx=2+1*abort", "")      → {kFailpoint, the spec as given}
//
// Thread safety: a pure function.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace umbra::control {

enum class LiveFaultKind {
  kSignal,              // the host sends `signal` to the driver process
  kKillDuringRecovery,  // SIGKILL, then SIGKILL the driver that replaces it
  kFailpoint,           // `spec` is armed in the running driver only
};

struct LiveFault {
  LiveFaultKind kind = LiveFaultKind::kSignal;
  int signal = 0;
  std::string spec;
};

// The site a catalogue action is armed at when the request names none.
inline constexpr std::string_view kDefaultExecutedSite = "sdk.heartbeat";
inline constexpr std::string_view kDefaultSiteInterpretedSite = "sdk.request";

// kInvalidArgument with a message that lists what is accepted.
Result<LiveFault> ResolveLiveFault(std::string_view fault, std::string_view site);

// "sigkill, sigstop, …, segfault, abort, hang, …": every accepted name.
std::string LiveFaultNames();

}  // namespace umbra::control
