// Fuzzes the failpoint spec language: any text either parses or is refused
// with an error; a spec that parses prints canonically and parses back to
// itself (FormatSpec's promise), and its globs match without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "faultinject/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = umbra::faultinject::ParseSpec(text);
  if (!spec) {
    if (spec.error().message.empty()) std::abort();  // a refusal must say why
    return 0;
  }
  const std::string canonical = umbra::faultinject::FormatSpec(*spec);
  auto again = umbra::faultinject::ParseSpec(canonical);
  if (!again || !(*again == *spec)) std::abort();
  for (const auto& rule : spec->rules) (void)umbra::faultinject::GlobMatch(rule.pattern, text);
  return 0;
}
