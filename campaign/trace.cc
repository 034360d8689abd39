#include "campaign/trace.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "recorder/trace_file.h"

namespace umbra::faultinject::campaign {
namespace {

constexpr const char* kPartInfix = ".part.";

}  // namespace

std::string TracePartPath(const std::string& file, uint32_t worker) {
  return file + kPartInfix + std::to_string(worker) + "." + std::to_string(getpid());
}

Result<CollectedTrace> CollectTraceParts(const std::string& file) {
  namespace fs = std::filesystem;
  const fs::path target(file);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + kPartInfix;
  std::vector<fs::path> paths;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().starts_with(prefix)) paths.push_back(e.path());
  }
  if (ec) return Fail(Errc::kIo, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(paths.begin(), paths.end());
  CollectedTrace out;
  std::vector<recorder::Trace> parts;
  for (const fs::path& p : paths) {
    auto t = recorder::ReadTrace(p.string());
    if (!t) {
      out.warnings.push_back(t.error().message);
      continue;
    }
    if (t->damage) out.warnings.push_back(t->damage->message);
    parts.push_back(std::move(*t));
  }
  if (parts.empty()) return Fail(Errc::kNotFound, "no worker recorded a trace part for " + file);
  recorder::Trace merged = recorder::MergeTraces(parts);
  UMBRA_TRY(recorder::WriteTrace(merged, file));
  for (const fs::path& p : paths) fs::remove(p, ec);
  out.parts = parts.size();
  out.events = merged.events.size();
  return out;
}

}  // namespace umbra::faultinject::campaign
