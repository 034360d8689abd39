// Failpoints: named sites in driver code where a spec can plant a bug.
//
// A site is one line in the code:
//
//   switch (Action a = UMBRA_FAILPOINT("nic.tx.submit"); a.fault) {
//     case SiteFault::kNone: break;
//     case SiteFault::kDropCompletion: return;  // the bug: never complete
//     case SiteFault::kError: return Fail(Errc::kIo, "injected");
//     ...
//   }
//
// and the process arms its registry from a spec (the driver SDK does this at
// spawn and whenever the host sends a new one):
//
//   FailpointRegistry& fp = FailpointRegistry::Global();
//   fp.Declare(kNicSites);                        // so `list` shows them unhit
//   UMBRA_TRY(fp.Arm(UMBRA_TRY(ParseSpec("seed=7;nic.tx.*=1%segfault")), "nic0", "nic"));
//
// While nothing is armed a failpoint costs one relaxed atomic load. When
// armed, a hit takes the registry's mutex, counts the hit, walks the matching
// rule's terms, and carries the action out: killing, hanging and sleeping
// actions happen inside UMBRA_FAILPOINT (after the mutex is released); the
// site-interpreted ones come back as the Action for the site to act on.
//
// Determinism: every site has its own PRNG seeded from the spec's seed and the
// site's name, and its own term state, so the same seed and the same sequence
// of hits on a site give the same triggers, whatever other sites do.
//
// Thread safety: every method may be called from any thread. Hits on the same
// site from several threads are serialized; their order decides which hit
// triggers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "faultinject/action.h"
#include "faultinject/spec.h"
#include "base/result.h"

namespace umbra::faultinject {

namespace detail {
// Set while the process-wide registry has a spec armed: the fast-path flag.
inline constinit std::atomic<bool> g_global_armed{false};
}  // namespace detail

// A failpoint's decision on one hit, with its arguments resolved (ranges drawn,
// defaults filled in, errno names looked up), before it is carried out.
struct Trigger {
  ActionKind action = ActionKind::kOff;
  int64_t value = 0;   // the first numeric argument (ms, code, bytes, errno, offset …)
  int64_t value2 = 0;  // the second numeric argument (leak: limit in MiB)
  std::string text;    // the word or text argument (segfault: null|wild; print: message)

  bool operator==(const Trigger&) const = default;
};

// One row of `umbra failpoints list`.
struct SiteStats {
  std::string name;
  uint64_t hits = 0;      // hits while armed
  uint64_t triggers = 0;  // hits that produced an action other than off
  bool declared = false;  // listed up front by Declare()
  std::string rule;       // the armed rule that applies (canonical text), or empty
};

// Which rules of a spec a registry arms.
enum class ArmSide {
  kDriver,  // the driver-side rules: a driver process arms these
  kHost,    // the host-side rules (sigkill, sigstop …): the campaign engine's registry
};

// The armed rules of one process and the state of every site it has seen.
//
//   FailpointRegistry registry;  // or FailpointRegistry::Global()
//   UMBRA_TRY(registry.Arm(UMBRA_TRY(ParseSpec("x=2+error")), "nic0", "nic"));
//   registry.Evaluate("x");      // off, off, then error(EIO) on every hit
//
// It acquires nothing that can fail, so it has a plain constructor rather
// than Create().
//
// Thread safety: all methods are thread-safe (one mutex). Actions are carried
// out after the mutex is released, so a hanging site blocks no other.
class FailpointRegistry {
 public:
  // Receives the lines `print` writes. The default writes them to stderr.
  using LogSink = std::function<void(std::string_view line)>;
  // Told of every trigger in Hit(), before it is carried out (a crash may
  // follow at once): a driver reports to its host when its fault struck.
  using TriggerSink = std::function<void(std::string_view site, const Trigger& trigger)>;

  // The process-wide registry UMBRA_FAILPOINT consults. Never destroyed, so
  // failpoints stay usable during static destruction and in forked children.
  static FailpointRegistry& Global();

  // A private registry (tests, the host's campaign engine).
  FailpointRegistry();
  FailpointRegistry(const FailpointRegistry&) = delete;
  FailpointRegistry& operator=(const FailpointRegistry&) = delete;

  // Replaces what is armed by the rules of `spec` on `side` whose filters match
  // `device` and `driver`. Every site's term state and PRNG start afresh; hit
  // and trigger counts carry on. Without a seed in the spec one is drawn at
  // random: read it back with seed() to log it. Fails (kInvalidArgument) on a
  // rule with no pattern or no term, which ParseSpec never produces.
  Result<void> Arm(const Spec& spec, std::string_view device, std::string_view driver, ArmSide side = ArmSide::kDriver);

  // Disarms everything: every failpoint is back to one atomic load.
  void Disarm();

  bool armed() const { return armed_->load(std::memory_order_relaxed); }

  // The seed of the armed spec (0 when disarmed).
  uint64_t seed() const;

  // Lists sites up front so List() shows them before they are first hit.
  void Declare(std::string_view site);
  void Declare(std::span<const std::string_view> sites);
  void Declare(std::initializer_list<std::string_view> sites) {
    Declare(std::span<const std::string_view>(sites.begin(), sites.size()));
  }

  // Counts a hit on `site` and decides, carrying nothing out. Off when disarmed.
  Trigger Evaluate(std::string_view site);

  // Evaluate(), then carry the decision out: may crash, hang, sleep, leak or
  // exit; returns the site-interpreted fault (or none) to the caller.
  // UMBRA_FAILPOINT calls this when armed.
  Action Hit(std::string_view site);

  // Every site seen or declared, sorted by name.
  std::vector<SiteStats> List() const;

  // Zeroes every site's hit and trigger counts.
  void ResetCounts();

  void set_log_sink(LogSink sink);
  void set_trigger_sink(TriggerSink sink);

 private:
  // Per-site counters and the position in its rule's chain.
  struct SiteState {
    uint64_t hits = 0;
    uint64_t triggers = 0;
    bool declared = false;
    int rule = -1;           // index into rules_, -1 when no armed rule matches
    size_t term = 0;         // the term hits go to; == terms.size(): chain used up
    uint64_t term_hits = 0;  // hits on the current term
    uint64_t term_triggers = 0;
    uint64_t rng = 0;  // SplitMix64 state, seeded from seed_ and the name
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  explicit FailpointRegistry(std::atomic<bool>* armed_flag);

  SiteState& FindOrAddLocked(std::string_view site);
  void BindLocked(std::string_view name, SiteState& state);
  Action Execute(std::string_view site, const Trigger& trigger);

  // The flag the fast path loads: the global one for Global(), own_armed_
  // otherwise. Points into static storage or into this object.
  std::atomic<bool>* armed_;
  std::atomic<bool> own_armed_{false};

  mutable std::mutex mu_;
  uint64_t seed_ = 0;                                                              // guarded by mu_
  std::vector<Rule> rules_;                                                        // guarded by mu_: the armed rules
  std::unordered_map<std::string, SiteState, StringHash, std::equal_to<>> sites_;  // guarded by mu_
  LogSink log_sink_;                                                               // guarded by mu_
  TriggerSink trigger_sink_;                                                       // guarded by mu_
};

// The `umbra failpoints list` table: one row per site, columns SITE, HITS,
// TRIGGERS, RULE ("-" when none applies); a site hit but never declared is
// marked with a trailing " (undeclared)".
std::string FormatSiteTable(const std::vector<SiteStats>& rows);

// Carries out an executed action (segfault, abort, hang, deadlock, delay,
// exit, leak, corrupt_heap, print) and returns none, or converts a
// site-interpreted one into its Action. Host-side actions return none.
Action CarryOut(std::string_view site, const Trigger& trigger, const FailpointRegistry::LogSink& log);

}  // namespace umbra::faultinject

// Evaluates to the Action of the failpoint `site` (a string literal): one
// relaxed atomic load when nothing is armed in the process.
#define UMBRA_FAILPOINT(site)                                                                        \
  (__builtin_expect(::umbra::faultinject::detail::g_global_armed.load(std::memory_order_relaxed), 0) \
       ? ::umbra::faultinject::FailpointRegistry::Global().Hit(site)                                 \
       : ::umbra::faultinject::Action{})
