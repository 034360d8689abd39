// Reading and writing whole trace files.
//
//   Result<Trace> trace = ReadTrace("run.trace");
//   if (!trace) return trace.error();          // not a trace at all
//   if (trace->damage) Warn(trace->damage->message);  // the events before it are there
//
// WriteTrace writes a Trace built in memory (tests, merging, conversion) in
// the same format the Recorder produces.
//
// Thread safety: free functions without shared state.
#pragma once

#include <span>
#include <string>

#include "recorder/event.h"
#include "base/result.h"

namespace umbra::recorder {

// Reads a trace file. Fails only when the file cannot be read (kNotFound when
// it does not exist, kIo otherwise) or does not start with a valid trace
// header (kParse). A truncated or corrupt record later in the
// file stops reading there and is described in Trace::damage (what, and at
// which byte offset); every record before it is returned. A file without the
// end record of a clean close is reported as damage too, at its end.
Result<Trace> ReadTrace(const std::string& path);

// Same, from bytes already in memory; `what` names them in error messages.
Result<Trace> ParseTrace(std::string_view bytes, std::string_view what);

// Writes `trace` (header, device table, events, lost count, end record).
Result<void> WriteTrace(const Trace& trace, const std::string& path);

// One trace from several recorded at the same time on one machine (worker
// processes of a campaign): the first header (sampling rate: the largest),
// the device tables joined by name (a device recorded by several parts is one
// device), the events of all parts in time order, the lost counts summed.
// Damage is not carried over: the merged trace holds what the parts held.
Trace MergeTraces(std::span<const Trace> parts);

}  // namespace umbra::recorder
