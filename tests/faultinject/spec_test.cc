#include "faultinject/spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <regex>
#include <string>

namespace umbra::faultinject {
namespace {

Spec MustParse(std::string_view text) {
  Result<Spec> spec = ParseSpec(text);
  if (!spec) throw std::runtime_error(spec.error().message);
  return *spec;
}

// "spec:L:C: …" → {L, C}
std::pair<int, int> ErrorPosition(const Error& error) {
  std::smatch m;
  static const std::regex re("^spec:(\\d+):(\\d+): ");
  if (!std::regex_search(error.message, m, re)) return {-1, -1};
  return {std::stoi(m[1]), std::stoi(m[2])};
}

TEST(SpecParser, ParsesTheFullTermSyntax) {
  Spec spec = MustParse("nic.tx.submit=5+10%2*segfault");
  ASSERT_EQ(spec.rules.size(), 1u);
  const Rule& rule = spec.rules[0];
  EXPECT_EQ(rule.pattern, "nic.tx.submit");
  EXPECT_FALSE(rule.host_side);
  ASSERT_EQ(rule.terms.size(), 1u);
  EXPECT_EQ(rule.terms[0].skip, 5u);
  EXPECT_EQ(rule.terms[0].pct_e4, 100'000u);
  EXPECT_EQ(rule.terms[0].count, 2u);
  EXPECT_EQ(rule.terms[0].action, ActionKind::kSegfault);
  EXPECT_TRUE(rule.terms[0].args.empty());
}

TEST(SpecParser, ParsesChainsRangesGlobsAndSeed) {
  Spec spec = MustParse("seed=1234; disk.*=50%delay(1..20)->abort");
  EXPECT_EQ(spec.seed, 1234u);
  ASSERT_EQ(spec.rules.size(), 1u);
  const Rule& rule = spec.rules[0];
  EXPECT_EQ(rule.pattern, "disk.*");
  ASSERT_EQ(rule.terms.size(), 2u);
  EXPECT_EQ(rule.terms[0].pct_e4, 500'000u);
  EXPECT_EQ(rule.terms[0].action, ActionKind::kDelay);
  ASSERT_EQ(rule.terms[0].args.size(), 1u);
  EXPECT_EQ(rule.terms[0].args[0], Arg::Number(1, 20));
  EXPECT_EQ(rule.terms[1].action, ActionKind::kAbort);
}

TEST(SpecParser, ParsesFiltersAndSeparators) {
  Spec spec = MustParse("[device=nic0, driver=e1000*] nic.rx.?=abort\n"
                        "# a comment line\n"
                        "[driver=hda]snd.*=hang  # trailing comment\n"
                        ";;\n");
  ASSERT_EQ(spec.rules.size(), 2u);
  EXPECT_EQ(spec.rules[0].device, "nic0");
  EXPECT_EQ(spec.rules[0].driver, "e1000*");
  EXPECT_EQ(spec.rules[0].pattern, "nic.rx.?");
  EXPECT_EQ(spec.rules[1].device, "");
  EXPECT_EQ(spec.rules[1].driver, "hda");
  EXPECT_EQ(spec.rules[1].terms[0].action, ActionKind::kHang);
}

TEST(SpecParser, AliasesMapToCanonicalActions) {
  Spec spec = MustParse("a=panic;b=sleep(5);c=slow(1);d=return(EIO);e=unknown_id;f=double_fault");
  ASSERT_EQ(spec.rules.size(), 6u);
  EXPECT_EQ(spec.rules[0].terms[0].action, ActionKind::kAbort);
  EXPECT_EQ(spec.rules[1].terms[0].action, ActionKind::kDelay);
  EXPECT_EQ(spec.rules[2].terms[0].action, ActionKind::kDelay);
  EXPECT_EQ(spec.rules[3].terms[0].action, ActionKind::kError);
  EXPECT_EQ(spec.rules[4].terms[0].action, ActionKind::kForgedId);
  EXPECT_EQ(spec.rules[5].terms[0].action, ActionKind::kKillDuringRecovery);
  EXPECT_EQ(FormatSpec(spec), "a=abort;b=delay(5);c=delay(1);d=error(EIO);e=forged_id;f=kill_during_recovery");
}

TEST(SpecParser, MarksHostSideRules) {
  Spec spec = MustParse("host.request=100+1*sigkill;host.recovery.*=sigstop(5..50)->sigcont;"
                        "host.x=3*off->kill_during_recovery;nic.tx=3*off->abort");
  ASSERT_EQ(spec.rules.size(), 4u);
  EXPECT_TRUE(spec.rules[0].host_side);
  EXPECT_TRUE(spec.rules[1].host_side);
  EXPECT_TRUE(spec.rules[2].host_side);
  EXPECT_FALSE(spec.rules[3].host_side);
}

TEST(SpecParser, ActionCatalogueIsIndexedByKind) {
  int count = 0;
  const ActionInfo* catalogue = ActionCatalogue(&count);
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(static_cast<int>(catalogue[i].kind), i) << catalogue[i].name;
    EXPECT_EQ(FindAction(catalogue[i].name), &catalogue[i]);
  }
}

// Every valid spec prints to a canonical text that parses back to the same
// Spec, and printing that again gives the same text.
class SpecRoundTrip : public testing::TestWithParam<const char*> {};

TEST_P(SpecRoundTrip, PrintsAndParsesBackEqual) {
  Spec spec = MustParse(GetParam());
  std::string canonical = FormatSpec(spec);
  Spec again = MustParse(canonical);
  EXPECT_EQ(again, spec) << canonical;
  EXPECT_EQ(FormatSpec(again), canonical);
}

INSTANTIATE_TEST_SUITE_P(
    Valid, SpecRoundTrip,
    testing::Values("nic.tx.submit=5+10%2*segfault", "disk.*=50%delay(1..20)->abort", "seed=1234;a=off", "seed=0",
                    "seed=18446744073709551615", "", "  ;\n; ", "a=segfault(null)", "a=segfault(wild)", "x.y=abort",
                    "x=hang", "x=deadlock", "x=exit", "x=exit(3)", "x=exit(0..255)", "x=leak(4096,16)",
                    "x=leak(4096..65536,64,abort)", "x=leak(1,1,stop)", "x=corrupt_heap", "x=corrupt_heap(double_free)",
                    "x=corrupt_heap(header)", "x=error", "x=error(5)", "x=error(ETIMEDOUT)", "x=error(1..10)",
                    "x=malformed_reply", "x=forged_id", "x=duplicate_id", "x=wrong_length(-8)", "x=wrong_length(-4..4)",
                    "x=wild_dma", "x=wild_dma(0x100000)", "x=bad_register(0xdeadbeef)", "x=bad_register(0..0xffff)",
                    "x=drop_completion", "x=print", "x=print(hello)", "x=print(\"hello, world\")",
                    "x=print(\"quote \\\" and backslash \\\\\")", "x=print(\"42\")", "x=print(42)", "x=0.5%abort",
                    "x=0.0001%abort", "x=100%abort", "x=0%abort", "x=12.25%3*abort", "x=1+abort",
                    "x=18446744073709551615+abort", "x=3*off->1*print->abort", "a.*.c?=1%segfault->2%abort->hang",
                    "[device=nic0]nic.*=abort", "[driver=e1000]nic.*=abort", "[device=nic?,driver=e1000]nic.*=abort",
                    "[driver=e1000,device=nic1]nic.*=abort", "seed=99\n[device=disk0]disk.write=2*error(EIO)\n",
                    "host.request=100+1*sigkill", "host.r=sigstop(10)->sigcont", "host.r=sigstop",
                    "host.recovery.probe=kill_during_recovery", "ns::site/name-1=abort",
                    "a = 1+ 2% 3* delay ( 1..5 ) -> abort"));

// Random well-formed Specs, built as values: printing then parsing gives them back.
class RandomSpecs {
 public:
  explicit RandomSpecs(uint64_t seed) : rng_(seed) {}

  Spec Next() {
    Spec spec;
    if (Pick(2) == 0) spec.seed = rng_();
    for (int i = Pick(4); i > 0; --i) spec.rules.push_back(NextRule());
    return spec;
  }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % n); }
  template <class T, size_t N>
  const T& OneOf(const T (&items)[N]) {
    return items[Pick(N)];
  }

  Rule NextRule() {
    static const char* const kNames[] = {"", "nic0", "nic?", "disk*", "e1000", "hda"};
    static const char* const kPatterns[] = {"nic.tx.submit", "nic.*", "*", "a?b", "x:y/z-1"};
    Rule rule;
    rule.device = OneOf(kNames);
    rule.driver = OneOf(kNames);
    rule.pattern = OneOf(kPatterns);
    bool host = Pick(4) == 0;
    for (int i = 1 + Pick(3); i > 0; --i) rule.terms.push_back(NextTerm(host));
    for (const Term& term : rule.terms) {
      rule.host_side |= GetActionInfo(term.action).side == ActionSide::kHost;
    }
    return rule;
  }

  Term NextTerm(bool host) {
    int count = 0;
    const ActionInfo* catalogue = ActionCatalogue(&count);
    const ActionInfo* info;
    do {
      info = &catalogue[Pick(count)];
    } while (info->kind != ActionKind::kOff && (info->side == ActionSide::kHost) != host);
    Term term;
    term.action = info->kind;
    if (Pick(2) == 0) term.skip = rng_() >> Pick(64);
    if (Pick(2) == 0) term.pct_e4 = static_cast<uint32_t>(rng_() % (Term::kAlways + 1));
    if (Pick(2) == 0) term.count = 1 + (rng_() >> Pick(64)) % 1000;
    int args = info->required_args + Pick(info->max_args - info->required_args + 1);
    for (int i = 0; i < args; ++i) term.args.push_back(NextArg(*info, info->args[i]));
    return term;
  }

  Arg NextArg(const ActionInfo& info, const ArgSchema& schema) {
    static const char* const kTexts[] = {"hello", "two words", "q\"uote", "back\\slash", "42", "-x", "", "a.b:c/d-e_f"};
    static const char* const kErrnos[] = {"EIO", "ENOMEM", "ETIMEDOUT"};
    switch (schema.type) {
      case ArgType::kNumber: {
        int64_t floor = info.kind == ActionKind::kWrongLength ? -1000 : 0;
        int64_t lo = floor + static_cast<int64_t>(rng_() % 1000);
        int64_t hi = Pick(2) == 0 ? lo : lo + static_cast<int64_t>(rng_() % 1000);
        return Arg::Number(std::min(lo, schema.max_number), std::min(hi, schema.max_number));
      }
      case ArgType::kWord: {
        std::string_view words = schema.words;
        std::string_view word = words.substr(0, words.find('|'));
        if (Pick(2) == 0) word = words.substr(words.find('|') + 1);
        return Arg::Text(std::string(word));
      }
      case ArgType::kText:
        if (Pick(3) == 0) return Arg::Number(7, 7);
        return Arg::Text(OneOf(kTexts));
      case ArgType::kErrno:
        if (Pick(2) == 0) return Arg::Number(1 + Pick(100), 1 + Pick(100) + 100);
        return Arg::Text(OneOf(kErrnos));
    }
    return {};
  }

  std::mt19937_64 rng_;
};

TEST(SpecRoundTrip, RandomSpecsPrintAndParseBackEqual) {
  RandomSpecs specs(2024);
  for (int i = 0; i < 3000; ++i) {
    Spec spec = specs.Next();
    std::string text = FormatSpec(spec);
    Result<Spec> parsed = ParseSpec(text);
    ASSERT_TRUE(parsed.has_value()) << text << "\n" << parsed.error().message;
    ASSERT_EQ(*parsed, spec) << text;
  }
}

// Mutated specs never crash the parser: each either parses (and then round
// trips) or fails with a position inside the text.
TEST(SpecParser, SurvivesMutatedInput) {
  const std::string base = "seed=7;[device=nic0,driver=e1*]nic.tx.*=5+10.5%2*delay(1..20)->"
                           "print(\"a \\\"b\\\"\")->error(EIO)\nhost.r=sigstop(5)";
  const char kAlphabet[] = "=;+%*()[],.-> \n\"\\#?0123456789abz_x";
  std::mt19937_64 rng(99);
  for (int i = 0; i < 20000; ++i) {
    std::string text = base;
    for (int edits = 1 + rng() % 4; edits > 0; --edits) {
      size_t at = rng() % (text.size() + 1);
      char c = kAlphabet[rng() % (sizeof kAlphabet - 1)];
      switch (rng() % 3) {
        case 0: text.insert(at, 1, c); break;
        case 1:
          if (at < text.size()) text.erase(at, 1);
          break;
        default:
          if (at < text.size()) text[at] = c;
          break;
      }
    }
    Result<Spec> spec = ParseSpec(text);
    if (spec) {
      Result<Spec> again = ParseSpec(FormatSpec(*spec));
      ASSERT_TRUE(again.has_value()) << text;
      ASSERT_EQ(*again, *spec) << text;
      continue;
    }
    auto [line, column] = ErrorPosition(spec.error());
    ASSERT_GE(line, 1) << spec.error().message;
    ASSERT_GE(column, 1) << spec.error().message;
  }
}

struct BadSpec {
  const char* text;
  int line;
  int column;
  const char* what;  // a fragment of the message
};

class SpecErrors : public testing::TestWithParam<BadSpec> {};

TEST_P(SpecErrors, ReportsTheExactColumn) {
  const BadSpec& bad = GetParam();
  Result<Spec> spec = ParseSpec(bad.text);
  ASSERT_FALSE(spec.has_value()) << bad.text;
  EXPECT_EQ(spec.error().code, Errc::kParse);
  EXPECT_EQ(ErrorPosition(spec.error()), std::make_pair(bad.line, bad.column)) << spec.error().message;
  EXPECT_NE(spec.error().message.find(bad.what), std::string::npos) << spec.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Invalid, SpecErrors,
    testing::Values(
        BadSpec{"nic.tx.submit=5+10%2*segfalt", 1, 22, "unknown action 'segfalt'"},
        BadSpec{"nic.tx.submit", 1, 14, "expected '='"}, BadSpec{"=abort", 1, 1, "expected a site pattern"},
        BadSpec{"a=", 1, 3, "expected an action"}, BadSpec{"a=5abort", 1, 4, "expected '+'"},
        BadSpec{"a=10%5+abort", 1, 6, "skip count (N+) must come first"},
        BadSpec{"a=2*10%abort", 1, 5, "probability must come before the count"},
        BadSpec{"a=0*abort", 1, 3, "at least 1"}, BadSpec{"a=101%abort", 1, 3, "at most 100%"},
        BadSpec{"a=0.00001%abort", 1, 3, "at most 4 decimals"}, BadSpec{"a=1.5+abort", 1, 3, "whole number"},
        BadSpec{"a=delay", 1, 3, "delay needs 1 argument"}, BadSpec{"a=delay(abc)", 1, 9, "ms must be a number"},
        BadSpec{"a=delay(20..1)", 1, 13, "upper end is below"}, BadSpec{"a=delay(1,2)", 1, 11, "at most 1 argument"},
        BadSpec{"a=abort(1)", 1, 9, "at most 0 argument"}, BadSpec{"a=segfault(maybe)", 1, 12, "one of: null|wild"},
        BadSpec{"a=error(EWHAT)", 1, 9, "errno"}, BadSpec{"a=print(\"open", 1, 9, "unterminated string"},
        BadSpec{"a=delay(5", 1, 10, "expected ',' or ')'"}, BadSpec{"a=abort b=abort", 1, 9, "expected ';'"},
        BadSpec{"a=abort;\nb=abort->\n", 2, 10, "expected an action"},
        BadSpec{"a=abort\n\n  b=segfault->sigkill", 3, 15, "cannot mix host-side"},
        BadSpec{"[device=nic0 x=abort", 1, 14, "expected ',' or ']'"},
        BadSpec{"[vendor=x]x=abort", 1, 2, "expected 'device' or 'driver'"},
        BadSpec{"[device=a,device=b]x=abort", 1, 11, "given twice"},
        BadSpec{"seed=1;seed=2", 1, 8, "seed is given twice"}, BadSpec{"seed=x", 1, 6, "expected a number"},
        BadSpec{"seed=18446744073709551616", 1, 6, "too large"},
        BadSpec{"a=99999999999999999999+abort", 1, 3, "too large"}, BadSpec{"a=wild_dma(0x)", 1, 14, "hex digits"},
        BadSpec{"a=leak(4096)", 1, 8, "leak needs 2 argument"}, BadSpec{"a=leak(-1,4)", 1, 8, "cannot be negative"},
        BadSpec{"a=exit(0..256)", 1, 8, "code is at most 255"},
        BadSpec{"a=leak(1,2000000)", 1, 10, "limit_mib is at most 1048576"}));

TEST(SpecErrors, MessageShowsTheLineWithACaret) {
  Result<Spec> spec = ParseSpec("seed=1\nnic.tx=5+10%2*segfalt\n");
  ASSERT_FALSE(spec.has_value());
  EXPECT_EQ(spec.error().message, "spec:2:15: unknown action 'segfalt'\n"
                                  "  nic.tx=5+10%2*segfalt\n"
                                  "                ^");
}

TEST(SpecErrors, CaretFollowsTabsInTheLine) {
  Result<Spec> spec = ParseSpec("\tx =\tbogus");
  ASSERT_FALSE(spec.has_value());
  EXPECT_EQ(spec.error().message, "spec:1:6: unknown action 'bogus'\n"
                                  "  \tx =\tbogus\n"
                                  "  \t   \t^");
}

TEST(Glob, MatchesStarsAndQuestionMarks) {
  EXPECT_TRUE(GlobMatch("nic.*", "nic.tx.submit"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*.submit", "nic.tx.submit"));
  EXPECT_TRUE(GlobMatch("n?c.*.s*t", "nic.tx.submit"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYbc"));
  EXPECT_FALSE(GlobMatch("nic.*", "disk.write"));
  EXPECT_FALSE(GlobMatch("nic.?", "nic.tx"));
  EXPECT_FALSE(GlobMatch("nic", "nic.tx"));
  EXPECT_FALSE(GlobMatch("", "x"));
}

}  // namespace
}  // namespace umbra::faultinject
