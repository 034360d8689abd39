// Fuzzes machine files, in both formats: any bytes either parse and pass
// validation or are refused with an error naming what is wrong.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runtime/model/machine.h"
#include "umbra/machine.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the format, the rest is the file.
  const auto format = (data[0] & 1) ? umbra::model::MachineFormat::kJson : umbra::model::MachineFormat::kText;
  const std::string_view content(reinterpret_cast<const char*>(data + 1), size - 1);
  auto machine = umbra::model::ParseMachine(content, "fuzz.machine", format);
  if (!machine && machine.error().message.empty()) std::abort();
  return 0;
}
