// Fault plans: what one campaign run breaks, where and when.
//
// A run's plan is derived from its seed alone (plus the workload's sites and
// the fault type of its cell), so a seed replays a run exactly:
//
//   uint64_t seed = RunSeed(campaign_seed, run_index);
//   FaultPlan plan = MakePlan(seed, FaultType::kSegfault, workload.sites());
//   FormatPlan(plan);   // "segfault@sdk.request+12;segfault@sdk.complete+3"
//   UMBRA_TRY(ParsePlan(FormatPlan(plan))) == plan;
//
// A plan holds one to three injections of the cell's fault type. Driver-side
// injections are armed one per driver instance, in order: the first in the
// instance the workload starts with, the next in the instance that replaces
// it, and so on. Host-side injections (sigkill, sigstop, kill_during_recovery)
// are carried out by the engine when the workload reports a unit of work.
//
// Thread safety: pure functions and plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace umbra::faultinject::campaign {

// Every fault type a campaign injects: the driver-meaningful actions of the
// failpoint catalogue plus the host-side ones.
enum class FaultType {
  kSegfault,
  kAbort,
  kHang,
  kDeadlock,
  kSlow,
  kExit,
  kLeak,
  kCorruptHeap,
  kError,
  kMalformedReply,
  kForgedId,
  kDuplicateId,
  kWrongLength,
  kWildDma,
  kDropCompletion,
  kSigkill,
  kSigstop,
  kKillDuringRecovery,
};
inline constexpr int kFaultTypeCount = 18;

// "segfault", "kill_during_recovery" ...
std::string_view FaultTypeName(FaultType type);
std::optional<FaultType> FindFaultType(std::string_view name);
// All fault types, in enum order.
std::span<const FaultType> AllFaultTypes();
// Host-side faults are carried out by the engine (signals), not by a failpoint.
bool IsHostSide(FaultType type);
// Whether the fault stops the driver (it dies or is killed): a shadow should
// hide it completely. Errors and slowness are not fail-stop.
bool IsFailStop(FaultType type);

// The site name at which the engine carries out host-side faults: the count
// of units of work the workload has reported.
inline constexpr std::string_view kHostSite = "host.unit";

// A site the workload reaches, and about how often per driver instance.
struct SiteUse {
  std::string name;
  uint64_t hits = 1;  // expected hits in one run (bounds "after N")
};

// When an injection fires.
enum class When {
  kAfterHits,  // after `after` hits on the site (then once)
  kRandom,     // each hit with probability `percent`, once (seeded by the plan)
};

struct Injection {
  FaultType type = FaultType::kSegfault;
  std::string site;
  When when = When::kAfterHits;
  uint64_t after = 0;    // kAfterHits: hits that pass first
  double percent = 100;  // kRandom: probability per hit
  bool operator==(const Injection&) const = default;
};

struct FaultPlan {
  uint64_t seed = 0;  // seeds random points and drawn arguments
  std::vector<Injection> faults;
  bool operator==(const FaultPlan&) const = default;
};

// The seed of run `index` of a campaign seeded with `campaign_seed`.
uint64_t RunSeed(uint64_t campaign_seed, uint64_t index);

// The sites where `type` makes sense, among the SDK's sites.
std::vector<std::string> CandidateSites(FaultType type);

// Derives a plan from the run's seed. The sites are those of `sites` where
// `type` makes sense; fails with kNotFound when there is none.
Result<FaultPlan> MakePlan(uint64_t seed, FaultType type, std::span<const SiteUse> sites);

// The failpoint spec that arms injection `i` in a driver ("seed=…;site=12+1*segfault").
std::string DriverSpec(const FaultPlan& plan, size_t i);

// Text form: "seed=N;" then injections joined by ';', each "type@site+after"
// or "type@site%percent".
std::string FormatPlan(const FaultPlan& plan);
Result<FaultPlan> ParsePlan(std::string_view text);

}  // namespace umbra::faultinject::campaign
