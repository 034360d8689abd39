// `umbra failpoints list`: every failpoint site of a sample driver, with its
// hit and trigger counts after a short workload.
//
//   umbra failpoints list                 # the echo driver
//   umbra failpoints list --driver echo --json
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "campaign/run.h"
#include "shadows/workload.h"

namespace umbra::cli {
namespace {

namespace fc = faultinject::campaign;

struct ListArgs {
  std::string driver = "echo";
  bool json = false;
  uint64_t units = 32;
  std::string spec;
};

int ListFailpoints(const ListArgs& a) {
  spdlog::set_level(spdlog::level::off);
  fc::WorkloadRegistry registry;
  (void)fc::RegisterBuiltinWorkloads(registry);
  const std::vector<std::string> drivers = fc::WorkloadDrivers(registry);
  if (std::ranges::find(drivers, a.driver) == drivers.end()) {
    std::string known;
    for (const auto& d : drivers) known += (known.empty() ? "" : ", ") + d;
    std::fprintf(stderr, "umbra failpoints: unknown driver '%s' (known: %s)\n", a.driver.c_str(), known.c_str());
    return kExitUsage;
  }
  auto sites = fc::ProbeFailpoints(registry, a.driver, a.units, a.spec);
  if (!sites) {
    std::fprintf(stderr, "umbra failpoints: %s\n", sites.error().message.c_str());
    return sites.error().code == Errc::kParse ? kExitDataErr : kExitSoftware;
  }
  if (a.json) {
    std::string out = "{\"driver\":\"" + a.driver + "\",\"sites\":[";
    for (size_t i = 0; i < sites->size(); ++i) {
      const auto& s = (*sites)[i];
      out += (i ? "," : "") + std::string("{\"site\":\"") + s.site + "\",\"hits\":" + std::to_string(s.hits) +
             ",\"triggers\":" + std::to_string(s.triggers) + "}";
    }
    std::printf("%s]}\n", out.c_str());
    return kExitOk;
  }
  size_t width = 4;
  for (const auto& s : *sites) width = std::max(width, s.site.size());
  std::printf("%-*s  %8s  %8s\n", static_cast<int>(width), "SITE", "HITS", "TRIGGERS");
  for (const auto& s : *sites) {
    std::printf("%-*s  %8llu  %8llu\n", static_cast<int>(width), s.site.c_str(),
                static_cast<unsigned long long>(s.hits), static_cast<unsigned long long>(s.triggers));
  }
  return kExitOk;
}

}  // namespace

void AddFailpointsCommand(CLI::App& app, int& exit_code) {
  CLI::App* fp = app.add_subcommand("failpoints", "Failpoint sites of the sample drivers");
  fp->require_subcommand(1);
  auto args = std::make_shared<ListArgs>();
  CLI::App* list = fp->add_subcommand("list", "Every site of a sample driver with its hit and trigger counts");
  list->add_option("--driver", args->driver, "Sample driver (default: echo)");
  list->add_flag("--json", args->json, "Print JSON");
  list->add_option("--units", args->units, "Units of work to run before counting (default 32)");
  list->add_option("--spec", args->spec, "Arm this failpoint spec while running (default: count only)");
  list->callback([args, &exit_code] { exit_code = ListFailpoints(*args); });
}

}  // namespace umbra::cli
