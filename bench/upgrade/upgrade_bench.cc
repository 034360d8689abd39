// The gap a live update causes, per class, against a warm-standby crash
// recovery (SIGKILL) of the same driver under the same workload, measured in
// the same run: the shadow's gap (the driver told to stop, or the crash
// detected → the shadow passive again) and the operations the application
// saw fail.
//
//   build/default/bench/upgrade/upgrade_bench [RUNS]      (default 15 per class and kind)
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "campaign/action_context.h"

namespace {

namespace fs = std::filesystem;
namespace fc = umbra::faultinject::campaign;
using umbra::runtime::DriverHost;
using umbra::runtime::UpgradeResult;

struct Sample {
  std::vector<double> gaps_ms;
  uint64_t errors = 0;
  int unverified = 0;
  int incomplete = 0;  // the action did not land or did not work
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

void RunOnce(const fc::WorkloadRegistry& registry, const std::string& name, const fc::ActionContext::Action& action,
             Sample& out) {
  auto workload = *registry.Create(name);
  fc::ActionContext ctx(10 * workload->default_units(), action);
  if (!workload->SetUp(ctx)) {
    ++out.incomplete;
    return;
  }
  const fc::WorkResult work = workload->Run(ctx);
  auto outcome = ctx.Outcome();
  (void)ctx.shadow()->WaitUntilPassive(5'000'000'000);
  const auto records = ctx.shadow()->recoveries();
  workload->TearDown();
  ctx.supervisor().Stop();
  out.errors += work.errors;
  out.unverified += !work.verified;
  if (!outcome || records.empty() || !records.back().succeeded) {
    ++out.incomplete;
    return;
  }
  const auto& r = records.back();
  out.gaps_ms.push_back(static_cast<double>(r.passive_ns - r.detected_ns) / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  const int runs = argc > 1 ? std::atoi(argv[1]) : 15;
  fc::WorkloadRegistry registry;
  (void)fc::RegisterBuiltinWorkloads(registry);
  const fs::path dir = fs::temp_directory_path() / ("umbra-upgrade-bench." + std::to_string(getpid()));
  fs::create_directories(dir);
  auto upgrade = [&](DriverHost& host) -> umbra::Result<UpgradeResult> {
    const fs::path binary = host.driver_info().binary;
    const fs::path build = dir / (binary.filename().string() + "-new");
    fs::copy_file(binary, build, fs::copy_options::overwrite_existing);
    auto r = host.Upgrade({.binary = build.string(), .probation_ns = 50'000'000});
    if (r && !r->upgraded) return umbra::Fail(umbra::Errc::kInternal, r->reason);
    return r;
  };
  auto crash = [](DriverHost& host) -> umbra::Result<UpgradeResult> {
    host.Kill(SIGKILL);
    return UpgradeResult{};
  };
  std::printf("%-15s %-8s %5s %10s %10s %10s %7s %10s\n", "workload", "kind", "runs", "gap p50", "gap p90", "gap max",
              "errors", "unverified");
  for (const char* name : {"file-transfer", "disk-verifier", "audio-playback", "uart-echo"}) {
    Sample up, kill;
    for (int i = 0; i < runs; ++i) {
      RunOnce(registry, name, upgrade, up);
      RunOnce(registry, name, crash, kill);
    }
    for (auto [kind, s] : {std::pair{"upgrade", &up}, std::pair{"sigkill", &kill}}) {
      std::printf("%-15s %-8s %5zu %8.3f ms %7.3f ms %7.3f ms %7llu %10d%s\n", name, kind, s->gaps_ms.size(),
                  Percentile(s->gaps_ms, 0.5), Percentile(s->gaps_ms, 0.9), Percentile(s->gaps_ms, 1.0),
                  static_cast<unsigned long long>(s->errors), s->unverified,
                  s->incomplete ? (" (" + std::to_string(s->incomplete) + " incomplete)").c_str() : "");
    }
    std::printf("%-15s upgrade p50 / sigkill p50 = %.2f\n", name,
                Percentile(up.gaps_ms, 0.5) / std::max(1e-9, Percentile(kill.gaps_ms, 0.5)));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
