#include "faultinject/spec.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(FormatSpec(spec),
            "a=abort;b=delay(5);c=delay(1);d=error(EIO);e=forged_id;f=kill_during_recovery");
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
    testing::Values(
        "nic.tx.submit=5+10%2*segfault", "disk.*=50%delay(1..20)->abort", "seed=1234;a=off",
        "seed=0", "seed=18446744073709551615", "", "  ;\n; ", "a=segfault(null)", "a=segfault(wild)", "x.y=abort",
        "x=hang", "x=deadlock", "x=exit", "x=exit(3)", "x=exit(0..255)", "x=leak(4096,16)",
        "x=leak(4096..65536,64,abort)", "x=leak(1,1,stop)", "x=corrupt_heap",
        "x=corrupt_heap(double_free)", "x=corrupt_heap(header)", "x=error", "x=error(5)",
        "x=error(ETIMEDOUT)", "x=error(1..10)", "x=malformed_reply", "x=forged_id",
        "x=duplicate_id", "x=wrong_length(-8)", "x=wrong_length(-4..4)", "x=wild_dma",
        "x=wild_dma(0x100000)", "x=bad_register(0xdeadbeef)", "x=bad_register(0..0xffff)",
        "x=drop_completion", "x=print", "x=print(hello)", "x=print(\"hello, world\")",
        "x=print(\"quote \\\" and backslash \\\\\")", "x=print(\"42\")", "x=print(42)",
        "x=0.5%abort", "x=0.0001%abort", "x=100%abort", "x=0%abort", "x=12.25%3*abort",
        "x=1+abort", "x=18446744073709551615+abort", "x=3*off->1*print->abort",
        "a.*.c?=1%segfault->2%abort->hang", "[device=nic0]nic.*=abort",
        "[driver=e1000]nic.*=abort", "[device=nic?,driver=e1000]nic.*=abort",
        "[driver=e1000,device=nic1]nic.*=abort", "seed=99\n[device=disk0]disk.write=2*error(EIO)\n",
        "host.request=100+1*sigkill", "host.r=sigstop(10)->sigcont", "host.r=sigstop",
        "host.recovery.probe=kill_during_recovery", "ns::site/name-1=abort",
        "a = 1+ 2% 3* delay ( 1..5 ) -> abort"));

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
  EXPECT_EQ(ErrorPosition(spec.error()), std::make_pair(bad.line, bad.column))
      << spec.error().message;
  EXPECT_NE(spec.error().message.find(bad.what), std::string::npos) << spec.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Invalid, SpecErrors,
    testing::Values(
        BadSpec{"nic.tx.submit=5+10%2*segfalt", 1, 22, "unknown action 'segfalt'"},
        BadSpec{"nic.tx.submit", 1, 14, "expected '='"},
        BadSpec{"=abort", 1, 1, "expected a site pattern"},
        BadSpec{"a=", 1, 3, "expected an action"},
        BadSpec{"a=5abort", 1, 4, "expected '+'"},
        BadSpec{"a=10%5+abort", 1, 6, "skip count (N+) must come first"},
        BadSpec{"a=2*10%abort", 1, 5, "probability must come before the count"},
        BadSpec{"a=0*abort", 1, 3, "at least 1"},
        BadSpec{"a=101%abort", 1, 3, "at most 100%"},
        BadSpec{"a=0.00001%abort", 1, 3, "at most 4 decimals"},
        BadSpec{"a=1.5+abort", 1, 3, "whole number"},
        BadSpec{"a=delay", 1, 3, "delay needs 1 argument"},
        BadSpec{"a=delay(abc)", 1, 9, "ms must be a number"},
        BadSpec{"a=delay(20..1)", 1, 13, "upper end is below"},
        BadSpec{"a=delay(1,2)", 1, 11, "at most 1 argument"},
        BadSpec{"a=abort(1)", 1, 9, "at most 0 argument"},
        BadSpec{"a=segfault(maybe)", 1, 12, "one of: null|wild"},
        BadSpec{"a=error(EWHAT)", 1, 9, "errno"},
        BadSpec{"a=print(\"open", 1, 9, "unterminated string"},
        BadSpec{"a=delay(5", 1, 10, "expected ',' or ')'"},
        BadSpec{"a=abort b=abort", 1, 9, "expected ';'"},
        BadSpec{"a=abort;\nb=abort->\n", 2, 10, "expected an action"},
        BadSpec{"a=abort\n\n  b=segfault->sigkill", 3, 15, "cannot mix host-side"},
        BadSpec{"[device=nic0 x=abort", 1, 14, "expected ',' or ']'"},
        BadSpec{"[vendor=x]x=abort", 1, 2, "expected 'device' or 'driver'"},
        BadSpec{"[device=a,device=b]x=abort", 1, 11, "given twice"},
        BadSpec{"seed=1;seed=2", 1, 8, "seed is given twice"},
        BadSpec{"seed=x", 1, 6, "expected a number"},
        BadSpec{"seed=18446744073709551616", 1, 6, "too large"},
        BadSpec{"a=99999999999999999999+abort", 1, 3, "too large"},
        BadSpec{"a=wild_dma(0x)", 1, 14, "hex digits"},
        BadSpec{"a=leak(4096)", 1, 8, "leak needs 2 argument"},
        BadSpec{"a=leak(-1,4)", 1, 8, "cannot be negative"}));

TEST(SpecErrors, MessageShowsTheLineWithACaret) {
  Result<Spec> spec = ParseSpec("seed=1\nnic.tx=5+10%2*segfalt\n");
  ASSERT_FALSE(spec.has_value());
  EXPECT_EQ(spec.error().message,
            "spec:2:15: unknown action 'segfalt'\n"
            "  nic.tx=5+10%2*segfalt\n"
            "                ^");
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
