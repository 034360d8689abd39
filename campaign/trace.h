// Recording a campaign into one trace (`umbra campaign --trace FILE`).
//
// Runs in this process record into one Recorder (RunOptions::recorder). Runs
// in worker processes cannot share it: worker k records into its own part,
// TracePartPath(FILE, k), and once the workers are done the parent merges the
// parts into FILE (recorder::MergeTraces: devices joined by name, events in
// time order — CLOCK_MONOTONIC is one clock for every process of a machine)
// and removes them. A worker that died leaves a part without its end record;
// it is merged up to where it was last flushed, with a warning.
//
//   // worker k:
//   auto rec = UMBRA_TRY(recorder::Recorder::Create({.path = TracePartPath(file, k)}));
//   config.run.recorder = rec.get();
//   // parent, after RunIsolated:
//   CollectedTrace t = UMBRA_TRY(CollectTraceParts(file));
//
// Thread safety: free functions; CollectTraceParts after the workers exited.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace umbra::faultinject::campaign {

// "FILE.part.<worker>.<pid>": unique per worker process, also when a worker
// is replaced after a crash.
std::string TracePartPath(const std::string& file, uint32_t worker);

struct CollectedTrace {
  size_t parts = 0;
  size_t events = 0;
  std::vector<std::string> warnings;  // damaged or unreadable parts
};

// Merges every part of FILE into FILE and removes the parts. kNotFound when
// there is no readable part.
Result<CollectedTrace> CollectTraceParts(const std::string& file);

}  // namespace umbra::faultinject::campaign
