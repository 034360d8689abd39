#include "faultinject/plan.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace umbra::faultinject::campaign {
namespace {

constexpr std::array<FaultType, kFaultTypeCount> kAll = {
    FaultType::kSegfault,       FaultType::kAbort,       FaultType::kHang,
    FaultType::kDeadlock,       FaultType::kSlow,        FaultType::kExit,
    FaultType::kLeak,           FaultType::kCorruptHeap, FaultType::kError,
    FaultType::kMalformedReply, FaultType::kForgedId,    FaultType::kDuplicateId,
    FaultType::kWrongLength,    FaultType::kWildDma,     FaultType::kDropCompletion,
    FaultType::kSigkill,        FaultType::kSigstop,     FaultType::kKillDuringRecovery,
};

// SplitMix64: a small, well-mixed generator; the plan's only source of choice.
uint64_t Mix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The action text a driver-side injection arms (with its arguments).
std::string_view ActionText(FaultType type) {
  switch (type) {
    case FaultType::kSegfault: return "segfault";
    case FaultType::kAbort: return "abort";
    case FaultType::kHang: return "hang";
    case FaultType::kDeadlock: return "deadlock";
    case FaultType::kSlow: return "delay(1..10)";
    case FaultType::kExit: return "exit(1..255)";
    case FaultType::kLeak: return "leak(4194304,16,abort)";
    case FaultType::kCorruptHeap: return "corrupt_heap";
    case FaultType::kError: return "error(EIO)";
    case FaultType::kMalformedReply: return "malformed_reply";
    case FaultType::kForgedId: return "forged_id";
    case FaultType::kDuplicateId: return "duplicate_id";
    case FaultType::kWrongLength: return "wrong_length";
    case FaultType::kWildDma: return "wild_dma";
    case FaultType::kDropCompletion: return "drop_completion";
    case FaultType::kSigkill: return "sigkill";
    case FaultType::kSigstop: return "sigstop";
    case FaultType::kKillDuringRecovery: return "kill_during_recovery";
  }
  return "off";
}

// Faults that do not end the driver instance: a plan holds one of them, since
// the next injection is armed only in the next instance.
bool OneShot(FaultType type) {
  return type == FaultType::kSlow || type == FaultType::kError || type == FaultType::kSigstop;
}

std::string FormatPercent(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", p);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

Result<Injection> ParseInjection(std::string_view text) {
  const size_t at = text.find('@');
  if (at == std::string_view::npos) return Fail(Errc::kParse, "expected type@site in '" + std::string(text) + "'");
  auto type = FindFaultType(text.substr(0, at));
  if (!type) return Fail(Errc::kParse, "unknown fault type '" + std::string(text.substr(0, at)) + "'");
  std::string_view rest = text.substr(at + 1);
  const size_t mark = rest.find_first_of("+%");
  if (mark == std::string_view::npos || mark == 0) {
    return Fail(Errc::kParse, "expected site+N or site%P in '" + std::string(text) + "'");
  }
  Injection inj{.type = *type, .site = std::string(rest.substr(0, mark))};
  std::string_view num = rest.substr(mark + 1);
  if (rest[mark] == '+') {
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), inj.after);
    if (ec != std::errc() || p != num.data() + num.size()) {
      return Fail(Errc::kParse, "bad hit count in '" + std::string(text) + "'");
    }
    return inj;
  }
  inj.when = When::kRandom;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), inj.percent);
  if (ec != std::errc() || p != num.data() + num.size() || inj.percent <= 0 || inj.percent > 100) {
    return Fail(Errc::kParse, "bad percentage in '" + std::string(text) + "'");
  }
  return inj;
}

}  // namespace

std::string_view FaultTypeName(FaultType type) {
  switch (type) {
    case FaultType::kSegfault: return "segfault";
    case FaultType::kAbort: return "abort";
    case FaultType::kHang: return "hang";
    case FaultType::kDeadlock: return "deadlock";
    case FaultType::kSlow: return "slow";
    case FaultType::kExit: return "exit";
    case FaultType::kLeak: return "leak";
    case FaultType::kCorruptHeap: return "corrupt_heap";
    case FaultType::kError: return "error";
    case FaultType::kMalformedReply: return "malformed_reply";
    case FaultType::kForgedId: return "forged_id";
    case FaultType::kDuplicateId: return "duplicate_id";
    case FaultType::kWrongLength: return "wrong_length";
    case FaultType::kWildDma: return "wild_dma";
    case FaultType::kDropCompletion: return "drop_completion";
    case FaultType::kSigkill: return "sigkill";
    case FaultType::kSigstop: return "sigstop";
    case FaultType::kKillDuringRecovery: return "kill_during_recovery";
  }
  return "?";
}

std::optional<FaultType> FindFaultType(std::string_view name) {
  for (FaultType t : kAll) {
    if (FaultTypeName(t) == name) return t;
  }
  return std::nullopt;
}

std::span<const FaultType> AllFaultTypes() { return kAll; }

bool IsHostSide(FaultType type) {
  return type == FaultType::kSigkill || type == FaultType::kSigstop || type == FaultType::kKillDuringRecovery;
}

bool IsFailStop(FaultType type) {
  switch (type) {
    case FaultType::kSegfault:
    case FaultType::kAbort:
    case FaultType::kHang:
    case FaultType::kDeadlock:
    case FaultType::kExit:
    case FaultType::kLeak:
    case FaultType::kCorruptHeap:
    case FaultType::kSigkill:
    case FaultType::kKillDuringRecovery: return true;
    case FaultType::kSlow:
    case FaultType::kError:
    case FaultType::kMalformedReply:
    case FaultType::kForgedId:
    case FaultType::kDuplicateId:
    case FaultType::kWrongLength:
    case FaultType::kWildDma:
    case FaultType::kDropCompletion:
    case FaultType::kSigstop: return false;
  }
  return false;
}

uint64_t RunSeed(uint64_t campaign_seed, uint64_t index) {
  uint64_t state = campaign_seed ^ (index * 0xd1342543de82ef95ull);
  return Mix(state);
}

std::vector<std::string> CandidateSites(FaultType type) {
  // SDK sites first, then the sample drivers' own (drivers/<name>/*.cc) where
  // the driver gives the fault a meaning; a plan only uses the sites its
  // workload reaches.
  switch (type) {
    case FaultType::kSegfault:
    case FaultType::kAbort:
    case FaultType::kHang:
    case FaultType::kDeadlock:
    case FaultType::kSlow:
    case FaultType::kExit:
    case FaultType::kLeak:
    case FaultType::kCorruptHeap:
      return {"sdk.request", "sdk.request.exit", "sdk.complete", "sdk.call",    "sdk.call.exit", "sdk.heartbeat",
              "nic.tx",      "nic.rx",           "nic.irq",      "disk.submit", "disk.complete", "disk.irq",
              "disk.flush",  "snd.write",        "snd.irq",      "uart.tx",     "uart.rx",       "uart.interrupt"};
    case FaultType::kError:
      return {"sdk.request",   "sdk.call",   "nic.tx",    "nic.rx", "disk.submit",
              "disk.complete", "disk.flush", "snd.write", "uart.tx"};
    case FaultType::kMalformedReply: return {"sdk.request", "sdk.call"};
    case FaultType::kForgedId: return {"sdk.request", "disk.complete"};
    case FaultType::kWildDma: return {"sdk.request", "nic.tx", "nic.rx"};
    case FaultType::kDuplicateId: return {"sdk.request", "sdk.complete", "disk.complete"};
    case FaultType::kWrongLength:
      return {"sdk.request", "sdk.complete", "nic.rx", "disk.complete", "uart.tx", "uart.rx"};
    case FaultType::kDropCompletion:
      return {"sdk.request", "sdk.complete", "sdk.call",      "sdk.heartbeat", "nic.tx",
              "nic.irq",     "disk.submit",  "disk.complete", "disk.irq",      "disk.flush",
              "snd.write",   "snd.irq",      "uart.tx",       "uart.rx",       "uart.interrupt"};
    case FaultType::kSigkill:
    case FaultType::kSigstop:
    case FaultType::kKillDuringRecovery: return {std::string(kHostSite)};
  }
  return {};
}

Result<FaultPlan> MakePlan(uint64_t seed, FaultType type, std::span<const SiteUse> sites) {
  const std::vector<std::string> candidates = CandidateSites(type);
  std::vector<const SiteUse*> usable;
  for (const SiteUse& s : sites) {
    if (std::ranges::find(candidates, s.name) != candidates.end()) usable.push_back(&s);
  }
  if (usable.empty()) {
    return Fail(Errc::kNotFound,
                "the workload reaches no site where " + std::string(FaultTypeName(type)) + " makes sense");
  }
  uint64_t rng = seed;
  FaultPlan plan{.seed = Mix(rng)};
  const size_t count = OneShot(type) ? 1 : 1 + Mix(rng) % 3;
  for (size_t i = 0; i < count; ++i) {
    const SiteUse& site = *usable[Mix(rng) % usable.size()];
    const uint64_t hits = std::max<uint64_t>(site.hits, 1);
    Injection inj{.type = type, .site = site.name};
    // Host-side faults always fire at a unit count; driver sites one time in
    // four at a random point, otherwise after a drawn number of hits.
    if (!IsHostSide(type) && Mix(rng) % 4 == 0) {
      inj.when = When::kRandom;
      // Rounded to the four decimals the spec language keeps.
      inj.percent = std::round(std::clamp(100.0 / static_cast<double>(hits), 0.5, 100.0) * 1e4) / 1e4;
    } else {
      inj.after = Mix(rng) % hits;
    }
    plan.faults.push_back(std::move(inj));
  }
  if (IsHostSide(type)) {
    std::ranges::sort(plan.faults, {}, &Injection::after);
  }
  return plan;
}

std::string DriverSpec(const FaultPlan& plan, size_t i) {
  if (i >= plan.faults.size()) return "";
  const Injection& inj = plan.faults[i];
  if (IsHostSide(inj.type)) return "";
  std::string spec = "seed=" + std::to_string(plan.seed + i) + ";" + inj.site + "=";
  if (inj.when == When::kRandom) {
    spec += FormatPercent(inj.percent) + "%";
  } else {
    spec += std::to_string(inj.after) + "+";
  }
  // A leak keeps leaking on every hit until its limit aborts the driver.
  if (inj.type != FaultType::kLeak) spec += "1*";
  spec += ActionText(inj.type);
  return spec;
}

std::string FormatPlan(const FaultPlan& plan) {
  std::string out = "seed=" + std::to_string(plan.seed);
  for (const Injection& inj : plan.faults) {
    out += ";";
    out += FaultTypeName(inj.type);
    out += "@" + inj.site;
    out += inj.when == When::kRandom ? "%" + FormatPercent(inj.percent) : "+" + std::to_string(inj.after);
  }
  return out;
}

Result<FaultPlan> ParsePlan(std::string_view text) {
  FaultPlan plan;
  bool first = true;
  while (!text.empty()) {
    const size_t semi = text.find(';');
    std::string_view item = text.substr(0, semi);
    text = semi == std::string_view::npos ? std::string_view() : text.substr(semi + 1);
    if (item.empty()) continue;
    if (first && item.starts_with("seed=")) {
      std::string_view num = item.substr(5);
      auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), plan.seed);
      if (ec != std::errc() || p != num.data() + num.size()) {
        return Fail(Errc::kParse, "bad seed in '" + std::string(item) + "'");
      }
      first = false;
      continue;
    }
    first = false;
    plan.faults.push_back(UMBRA_TRY(ParseInjection(item)));
  }
  if (plan.faults.empty()) return Fail(Errc::kParse, "a plan needs at least one type@site injection");
  return plan;
}

}  // namespace umbra::faultinject::campaign
