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

#include <string>

#include "recorder/event.h"
#include "runtime/base/result.h"

namespace umbra::recorder {

// Reads a trace file. Fails only when the file cannot be read or does not
// start with a valid trace header. A truncated or corrupt record later in the
// file stops reading there and is described in Trace::damage (what, and at
// which byte offset); every record before it is returned. A file without the
// end record of a clean close is reported as damage too, at its end.
Result<Trace> ReadTrace(const std::string& path);

// Same, from bytes already in memory; `what` names them in error messages.
Result<Trace> ParseTrace(std::string_view bytes, std::string_view what);

// Writes `trace` (header, device table, events, lost count, end record).
Result<void> WriteTrace(const Trace& trace, const std::string& path);

}  // namespace umbra::recorder
