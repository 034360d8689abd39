#include "faultinject/failpoint.h"

#include <unistd.h>

#include <algorithm>
#include <random>

#include "faultinject/bugs.h"
#include "base/clock.h"

namespace umbra::faultinject {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

// Uniform in [0, bound) (multiply-shift; the bias is below 2^-32 for our bounds).
uint64_t Below(uint64_t& state, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(SplitMix64(state)) * bound) >> 64);
}

// FNV-1a: a stable hash of the site name (std::hash is not specified to be).
uint64_t HashName(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3;
  }
  return h;
}

uint64_t SiteSeed(uint64_t seed, std::string_view name) {
  uint64_t state = seed ^ HashName(name);
  return SplitMix64(state);
}

uint64_t RandomSeed() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device() ^ static_cast<uint64_t>(MonotonicNanos());
}

int64_t Draw(const Arg& arg, uint64_t& rng) {
  if (arg.hi == arg.lo) return arg.lo;
  uint64_t span = static_cast<uint64_t>(arg.hi) - static_cast<uint64_t>(arg.lo) + 1;
  if (span == 0) return static_cast<int64_t>(SplitMix64(rng));  // the whole int64 range
  return arg.lo + static_cast<int64_t>(Below(rng, span));
}

std::string_view FirstWord(std::string_view words) { return words.substr(0, words.find('|')); }

// Fills a Trigger from a term: numeric arguments into value then value2, the
// word or text argument into text, defaults where an argument is omitted.
Trigger Resolve(const Term& term, uint64_t& rng) {
  const ActionInfo& info = GetActionInfo(term.action);
  Trigger trigger{term.action, 0, 0, {}};
  int numbers = 0;
  for (int i = 0; i < info.max_args; ++i) {
    const ArgSchema& schema = info.args[i];
    const Arg* arg = i < static_cast<int>(term.args.size()) ? &term.args[i] : nullptr;
    int64_t number = schema.default_number;
    switch (schema.type) {
      case ArgType::kNumber:
        if (arg != nullptr) number = Draw(*arg, rng);
        (numbers++ == 0 ? trigger.value : trigger.value2) = number;
        break;
      case ArgType::kErrno:
        if (arg != nullptr) {
          number = arg->kind == Arg::Kind::kText ? ErrnoFromName(arg->text) : Draw(*arg, rng);
        }
        (numbers++ == 0 ? trigger.value : trigger.value2) = number;
        break;
      case ArgType::kWord: trigger.text = arg != nullptr ? arg->text : std::string(FirstWord(schema.words)); break;
      case ArgType::kText:
        if (arg == nullptr) break;
        trigger.text = arg->kind == Arg::Kind::kText ? arg->text : std::to_string(arg->lo);
        break;
    }
  }
  return trigger;
}

void WriteToStderr(std::string_view line) {
  std::string out(line);
  out += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, out.data(), out.size());
  (void)ignored;
}

Action SiteAction(SiteFault fault, int64_t value) { return Action{fault, value}; }

}  // namespace

FailpointRegistry& FailpointRegistry::Global() {
  static FailpointRegistry* const registry = new FailpointRegistry(&detail::g_global_armed);
  return *registry;
}

FailpointRegistry::FailpointRegistry() : armed_(&own_armed_) {}

FailpointRegistry::FailpointRegistry(std::atomic<bool>* armed_flag) : armed_(armed_flag) {}

Result<void> FailpointRegistry::Arm(const Spec& spec, std::string_view device, std::string_view driver, ArmSide side) {
  std::vector<Rule> rules;
  for (const Rule& rule : spec.rules) {
    if (rule.pattern.empty() || rule.terms.empty()) {
      return Fail(Errc::kInvalidArgument, "failpoint rule without a pattern or a term");
    }
    if (rule.host_side != (side == ArmSide::kHost)) continue;
    if (!rule.device.empty() && !GlobMatch(rule.device, device)) continue;
    if (!rule.driver.empty() && !GlobMatch(rule.driver, driver)) continue;
    rules.push_back(rule);
  }
  // Nothing armed needs no seed (and std::random_device costs tens of µs).
  uint64_t seed = rules.empty() ? 0 : spec.seed ? *spec.seed : RandomSeed();
  std::lock_guard lock(mu_);
  rules_ = std::move(rules);
  seed_ = seed;
  for (auto& [name, state] : sites_) BindLocked(name, state);
  armed_->store(!rules_.empty(), std::memory_order_relaxed);
  return {};
}

void FailpointRegistry::Disarm() {
  std::lock_guard lock(mu_);
  armed_->store(false, std::memory_order_relaxed);
  rules_.clear();
  seed_ = 0;
  for (auto& [name, state] : sites_) BindLocked(name, state);
}

uint64_t FailpointRegistry::seed() const {
  std::lock_guard lock(mu_);
  return seed_;
}

void FailpointRegistry::Declare(std::string_view site) {
  std::lock_guard lock(mu_);
  FindOrAddLocked(site).declared = true;
}

void FailpointRegistry::Declare(std::span<const std::string_view> sites) {
  std::lock_guard lock(mu_);
  for (std::string_view site : sites) FindOrAddLocked(site).declared = true;
}

FailpointRegistry::SiteState& FailpointRegistry::FindOrAddLocked(std::string_view site) {
  if (auto it = sites_.find(site); it != sites_.end()) return it->second;
  auto [it, inserted] = sites_.emplace(std::string(site), SiteState{});
  BindLocked(it->first, it->second);
  return it->second;
}

// Points a site at the last armed rule whose pattern matches its name, and
// restarts its chain and PRNG.
void FailpointRegistry::BindLocked(std::string_view name, SiteState& state) {
  state.rule = -1;
  for (int i = static_cast<int>(rules_.size()) - 1; i >= 0; --i) {
    if (GlobMatch(rules_[i].pattern, name)) {
      state.rule = i;
      break;
    }
  }
  state.term = 0;
  state.term_hits = 0;
  state.term_triggers = 0;
  state.rng = SiteSeed(seed_, name);
}

Trigger FailpointRegistry::Evaluate(std::string_view site) {
  std::lock_guard lock(mu_);
  if (!armed()) return {};
  SiteState& state = FindOrAddLocked(site);
  ++state.hits;
  if (state.rule < 0) return {};
  const std::vector<Term>& terms = rules_[state.rule].terms;
  if (state.term >= terms.size()) return {};  // the chain is used up: off
  const Term& term = terms[state.term];
  if (++state.term_hits <= term.skip) return {};
  if (term.pct_e4 != Term::kAlways && Below(state.rng, Term::kAlways) >= term.pct_e4) return {};
  Trigger trigger = Resolve(term, state.rng);
  if (term.count != 0 && ++state.term_triggers >= term.count) {
    ++state.term;
    state.term_hits = 0;
    state.term_triggers = 0;
  }
  if (trigger.action != ActionKind::kOff) ++state.triggers;
  return trigger;
}

Action FailpointRegistry::Hit(std::string_view site) {
  Trigger trigger = Evaluate(site);
  if (trigger.action == ActionKind::kOff) return {};
  LogSink sink;
  TriggerSink told;
  {
    std::lock_guard lock(mu_);
    if (trigger.action == ActionKind::kPrint) sink = log_sink_;
    told = trigger_sink_;
  }
  if (told) told(site, trigger);
  return CarryOut(site, trigger, sink);
}

std::vector<SiteStats> FailpointRegistry::List() const {
  std::vector<SiteStats> rows;
  {
    std::lock_guard lock(mu_);
    rows.reserve(sites_.size());
    for (const auto& [name, state] : sites_) {
      std::string rule = state.rule >= 0 ? FormatRule(rules_[state.rule]) : std::string();
      rows.push_back(SiteStats{name, state.hits, state.triggers, state.declared, std::move(rule)});
    }
  }
  std::sort(rows.begin(), rows.end(), [](const SiteStats& a, const SiteStats& b) { return a.name < b.name; });
  return rows;
}

void FailpointRegistry::ResetCounts() {
  std::lock_guard lock(mu_);
  for (auto& [name, state] : sites_) {
    state.hits = 0;
    state.triggers = 0;
  }
}

void FailpointRegistry::set_log_sink(LogSink sink) {
  std::lock_guard lock(mu_);
  log_sink_ = std::move(sink);
}

void FailpointRegistry::set_trigger_sink(TriggerSink sink) {
  std::lock_guard lock(mu_);
  trigger_sink_ = std::move(sink);
}

std::string FormatSiteTable(const std::vector<SiteStats>& rows) {
  size_t width = 4;  // "SITE"
  for (const SiteStats& row : rows) width = std::max(width, row.name.size());
  auto pad = [](std::string text, size_t to) {
    text.resize(std::max(text.size(), to), ' ');
    return text;
  };
  auto right = [](std::string text, size_t to) {
    return std::string(to > text.size() ? to - text.size() : 0, ' ') + text;
  };
  std::string out = pad("SITE", width) + "  " + right("HITS", 10) + "  " + right("TRIGGERS", 10) + "  RULE\n";
  for (const SiteStats& row : rows) {
    out += pad(row.name, width) + "  " + right(std::to_string(row.hits), 10) + "  " +
           right(std::to_string(row.triggers), 10) + "  " + (row.rule.empty() ? "-" : row.rule);
    if (!row.declared) out += " (undeclared)";
    out += '\n';
  }
  return out;
}

Action CarryOut(std::string_view site, const Trigger& trigger, const FailpointRegistry::LogSink& log) {
  switch (trigger.action) {
    case ActionKind::kOff: return {};
    case ActionKind::kPrint: {
      std::string line = "failpoint " + std::string(site) + " hit";
      if (!trigger.text.empty()) line += ": " + trigger.text;
      if (log) {
        log(line);
      } else {
        WriteToStderr(line);
      }
      return {};
    }
    case ActionKind::kSegfault:
      if (trigger.text == "wild") bugs::SegfaultWild();
      bugs::SegfaultNull();
    case ActionKind::kAbort: bugs::Abort();
    case ActionKind::kHang: bugs::Hang();
    case ActionKind::kDeadlock: bugs::Deadlock();
    case ActionKind::kDelay: bugs::Delay(trigger.value); return {};
    case ActionKind::kExit: bugs::Exit(static_cast<int>(trigger.value));
    case ActionKind::kLeak:
      bugs::Leak(static_cast<size_t>(trigger.value), static_cast<size_t>(trigger.value2) << 20,
                 trigger.text == "abort" ? bugs::AtLimit::kAbort : bugs::AtLimit::kStop);
      return {};
    case ActionKind::kCorruptHeap:
      if (trigger.text == "header") bugs::ClobberHeaderThenFree();
      bugs::DoubleFree();
    case ActionKind::kError: return SiteAction(SiteFault::kError, trigger.value);
    case ActionKind::kMalformedReply: return SiteAction(SiteFault::kMalformedReply, trigger.value);
    case ActionKind::kForgedId: return SiteAction(SiteFault::kForgedId, trigger.value);
    case ActionKind::kDuplicateId: return SiteAction(SiteFault::kDuplicateId, trigger.value);
    case ActionKind::kWrongLength: return SiteAction(SiteFault::kWrongLength, trigger.value);
    case ActionKind::kWildDma: return SiteAction(SiteFault::kWildDma, trigger.value);
    case ActionKind::kBadRegister: return SiteAction(SiteFault::kBadRegister, trigger.value);
    case ActionKind::kDropCompletion: return SiteAction(SiteFault::kDropCompletion, trigger.value);
    case ActionKind::kSigkill:
    case ActionKind::kSigstop:
    case ActionKind::kSigcont:
    case ActionKind::kKillDuringRecovery: return {};  // host-side: the campaign engine carries these out
  }
  return {};
}

}  // namespace umbra::faultinject
