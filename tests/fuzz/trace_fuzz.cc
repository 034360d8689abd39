// Fuzzes the trace reader and the analysis behind `umbra report`: any bytes
// are refused, or read up to the first damage (which is described), and
// whatever was read can be analysed without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "recorder/analysis.h"
#include "recorder/trace_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto trace = umbra::recorder::ParseTrace(bytes, "fuzz.trace");
  if (!trace) {
    if (trace.error().message.empty()) std::abort();
    return 0;
  }
  (void)umbra::recorder::Analyze(*trace);
  return 0;
}
