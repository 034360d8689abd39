// The fault-spec language: what to break, where, and how often.
//
//   seed=1234;
//   nic.tx.submit=5+10%2*segfault          # skip 5 hits, then 10%: twice
//   [device=disk*]disk.*=50%delay(1..20)->abort
//   host.request=200+1*sigkill             # a host-side fault
//
// A spec is a list of statements separated by ';' or newlines: an optional
// `seed=N` and rules `[filter]pattern=term->term…`. Each term is
// `[skip+][pct%][count*]action[(args)]`. docs/fault-injection.md has the EBNF
// and the meaning of every action.
//
//   Result<Spec> spec = ParseSpec("nic.*=1%abort");
//   if (!spec) std::cerr << spec.error().message;  // points at the column
//   std::string text = FormatSpec(*spec);           // canonical; parses back equal
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faultinject/action.h"
#include "base/result.h"

namespace umbra::faultinject {

// One argument of an action: a number, a range drawn per trigger, or text.
struct Arg {
  enum class Kind { kNumber, kText };
  Kind kind = Kind::kNumber;
  int64_t lo = 0;    // kNumber: the value, or the low end of lo..hi
  int64_t hi = 0;    // kNumber: == lo for a plain number
  std::string text;  // kText: a word ("wild", "EIO") or a quoted string

  static Arg Number(int64_t lo, int64_t hi) { return Arg{Kind::kNumber, lo, hi, {}}; }
  static Arg Text(std::string text) { return Arg{Kind::kText, 0, 0, std::move(text)}; }
  bool operator==(const Arg&) const = default;
};

// One step of a rule's chain.
struct Term {
  // Probability in units of 1e-4 percent: kAlways is 100%.
  static constexpr uint32_t kAlways = 1'000'000;

  uint64_t skip = 0;          // the first `skip` hits on this term pass through
  uint32_t pct_e4 = kAlways;  // then each hit triggers with this probability
  uint64_t count = 0;         // after `count` triggers move to the next term; 0: never
  ActionKind action = ActionKind::kOff;
  std::vector<Arg> args;

  bool operator==(const Term&) const = default;
};

// `[device=…,driver=…]pattern=term->term…`. Patterns are globs (`*`, `?`).
struct Rule {
  std::string device;   // glob over device names; empty matches every device
  std::string driver;   // glob over driver names; empty matches every driver
  std::string pattern;  // glob over site names
  std::vector<Term> terms;
  // True when the terms name host-side actions (sigkill, sigstop …): the
  // campaign engine carries the rule out; drivers never arm it.
  bool host_side = false;

  bool operator==(const Rule&) const = default;
};

struct Spec {
  std::optional<uint64_t> seed;  // unset: the arming side picks one (and logs it)
  std::vector<Rule> rules;       // later rules win over earlier ones

  bool operator==(const Spec&) const = default;
};

// Parses `text`. A failure is Errc::kParse with the message
// "spec:LINE:COL: what\n  <the line>\n  <caret under COL>", COL 1-based.
Result<Spec> ParseSpec(std::string_view text);

// The canonical text: `seed=N;rule;rule`, aliases replaced by canonical names,
// defaults omitted. ParseSpec(FormatSpec(s)) == s for every parsed s.
std::string FormatSpec(const Spec& spec);
std::string FormatRule(const Rule& rule);
std::string FormatTerm(const Term& term);

// Shell-style glob: `*` any run of characters (dots included), `?` one.
bool GlobMatch(std::string_view pattern, std::string_view name);

// The errno value of a name the spec language accepts ("EIO", "ENOMEM" …), or
// 0 when unknown.
int ErrnoFromName(std::string_view name);

}  // namespace umbra::faultinject
