// A bounded campaign in the suite: every workload under every fault type, 20
// runs per cell, through `umbra campaign` as a user runs it (runs in worker
// processes, two at a time). It fails on any outcome that is not transparent
// or expected by design (a malfunction, a failed device, a host crash) and on
// any lost or misdirected write, in any cell. The seed is fixed so that a
// failure replays; UMBRA_BOUNDED_CAMPAIGN_SEED runs another one.
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "campaign/campaign.h"
#include "campaign/report.h"

namespace umbra::faultinject::campaign {
namespace {

constexpr uint32_t kRunsPerCell = 20;
constexpr uint64_t kDefaultSeed = 2027;

// The value after every "key=" in `text`, summed (0 when absent).
uint64_t Count(const std::string& text, const std::string& key) {
  uint64_t sum = 0;
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
    if (at > 0 && text[at - 1] != ' ') continue;  // "lost=", not "xlost="
    sum += std::strtoull(text.c_str() + at + key.size(), nullptr, 10);
  }
  return sum;
}

int RunCli(const std::string& args, std::string& out) {
  const std::string cmd = std::string(UMBRA_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(BoundedCampaign, EveryWorkloadAndFaultTypeIsTransparentOrExpectedAndLosesNoWrite) {
  const char* env = std::getenv("UMBRA_BOUNDED_CAMPAIGN_SEED");
  const uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 0) : kDefaultSeed;
  const std::string jsonl = ::testing::TempDir() + "/umbra_bounded_campaign_" + std::to_string(getpid()) + ".jsonl";
  std::string out;
  const int rc = RunCli("campaign --runs " + std::to_string(kRunsPerCell) + " --seed " + std::to_string(seed) +
                            " --jobs 2 --no-recheck --jsonl " + jsonl,
                        out);
  auto records = ReadJsonLines(jsonl);
  std::remove(jsonl.c_str());
  ASSERT_TRUE(records.has_value()) << records.error().message << "\n" << out;

  WorkloadRegistry registry;
  ASSERT_TRUE(RegisterBuiltinWorkloads(registry).has_value());
  EXPECT_EQ(records->size(), registry.names().size() * AllFaultTypes().size() * kRunsPerCell)
      << "every workload x fault type cell, " << kRunsPerCell << " runs each\n"
      << out;
  size_t bad = 0;
  for (const RunRecord& r : *records) {
    const uint64_t lost = Count(r.verification, "lost="), misdirected = Count(r.verification, "misdirected=");
    const bool ok = AsExpected(r.outcome, r.mode) && lost == 0 && misdirected == 0;
    if (ok) continue;
    ++bad;
    ADD_FAILURE() << "run " << r.index << " " << r.workload << "/" << FaultTypeName(r.fault) << ": "
                  << OutcomeName(r.outcome) << ", lost " << lost << ", misdirected " << misdirected << "\n  plan "
                  << r.plan << "\n  " << r.verification << (r.first_error.empty() ? "" : "\n  " + r.first_error)
                  << (r.note.empty() ? "" : "\n  " + r.note) << "\n  replay: umbra campaign " << ReplayArgs(r);
  }
  EXPECT_EQ(rc, bad == 0 ? 0 : 1) << "umbra campaign exits 0 exactly when no run is unexpected\n" << out;
  std::printf("campaign seed %llu: %zu runs, %zu unexpected\n%s", static_cast<unsigned long long>(seed),
              records->size(), bad, out.c_str());
}

}  // namespace
}  // namespace umbra::faultinject::campaign
