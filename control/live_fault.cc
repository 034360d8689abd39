#include "control/live_fault.h"

#include <cctype>
#include <csignal>

#include "faultinject/action.h"
#include "faultinject/spec.h"

namespace umbra::control {
namespace {

struct SignalName {
  std::string_view name;
  int signal;
};

// Signals the catalogue does not name but a person may want to send.
constexpr SignalName kSignals[] = {
    {"sigkill", SIGKILL}, {"sigstop", SIGSTOP}, {"sigsegv", SIGSEGV}, {"sigabrt", SIGABRT}, {"sigterm", SIGTERM},
    {"sigbus", SIGBUS},   {"sigill", SIGILL},   {"sigfpe", SIGFPE},   {"sigcont", SIGCONT},
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<faultinject::Spec> ParseDriverSpec(const std::string& text) {
  auto spec = faultinject::ParseSpec(text);
  if (!spec) return Fail(Errc::kInvalidArgument, "bad fault: " + spec.error().message);
  if (spec->rules.empty()) return Fail(Errc::kInvalidArgument, "the fault spec arms nothing");
  for (const auto& rule : spec->rules) {
    if (rule.host_side) {
      return Fail(Errc::kInvalidArgument, "host-side actions cannot be armed in a driver; give them by name");
    }
  }
  return *spec;
}

// A catalogue action (with its arguments, if any) armed at one site.
Result<LiveFault> FromAction(const std::string& fault, std::string_view site) {
  const std::string name = fault.substr(0, fault.find('('));
  const faultinject::ActionInfo* info = faultinject::FindAction(name);
  if (!info) {
    return Fail(Errc::kInvalidArgument,
                "unknown fault \"" + fault + "\"; one of: " + LiveFaultNames() + ", or a failpoint spec (site=action)");
  }
  switch (info->side) {
    case faultinject::ActionSide::kHost:
      if (info->kind == faultinject::ActionKind::kKillDuringRecovery) {
        return LiveFault{.kind = LiveFaultKind::kKillDuringRecovery, .signal = SIGKILL};
      }
      break;  // the other host actions are signals: handled by the caller's table
    case faultinject::ActionSide::kExecuted:
    case faultinject::ActionSide::kSite: {
      std::string where(site);
      if (where.empty()) {
        where = info->side == faultinject::ActionSide::kExecuted ? kDefaultExecutedSite : kDefaultSiteInterpretedSite;
      }
      const std::string spec = where + "=1*" + fault;
      UMBRA_TRY(ParseDriverSpec(spec));  // arguments and site name checked here, not in the driver
      return LiveFault{.kind = LiveFaultKind::kFailpoint, .spec = spec};
    }
  }
  return Fail(Errc::kInvalidArgument, "fault \"" + fault + "\" is not injectable live");
}

}  // namespace

std::string LiveFaultNames() {
  std::string out;
  for (const auto& s : kSignals) out += (out.empty() ? "" : ", ") + std::string(s.name);
  int count = 0;
  const faultinject::ActionInfo* all = faultinject::ActionCatalogue(&count);
  for (int i = 0; i < count; ++i) {
    if (all[i].kind == faultinject::ActionKind::kOff || all[i].kind == faultinject::ActionKind::kPrint) continue;
    const std::string name(all[i].name);
    if (out.find(name) != std::string::npos) continue;  // sigkill, sigstop …: already listed
    out += ", " + name;
  }
  return out;
}

Result<LiveFault> ResolveLiveFault(std::string_view fault_text, std::string_view site) {
  const std::string fault = Lower(fault_text);
  if (fault.empty()) return Fail(Errc::kInvalidArgument, "no fault given; one of: " + LiveFaultNames());
  for (const auto& s : kSignals) {
    if (fault == s.name) return LiveFault{.kind = LiveFaultKind::kSignal, .signal = s.signal};
  }
  if (fault.find('=') != std::string::npos) {
    if (!site.empty()) return Fail(Errc::kInvalidArgument, "a whole spec names its own sites: drop --site");
    UMBRA_TRY(ParseDriverSpec(std::string(fault_text)));
    return LiveFault{.kind = LiveFaultKind::kFailpoint, .spec = std::string(fault_text)};
  }
  return FromAction(fault, site);
}

}  // namespace umbra::control
