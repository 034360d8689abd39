#include "machine/machine_check.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "shadows/builtin/builtin.h"
#include "shadows/registry.h"
#include "umbra/machine.pb.h"

namespace umbra::machine {

namespace {

constexpr std::string_view kShadowPrefix = "shadow.";

using model::FieldError;
using model::FieldPath;

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// " (did you mean "x"?)" when one of `candidates` is a few edits from `word`.
std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  size_t best_distance = 4;  // more edits than this is another word
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = &c;
    }
  }
  return best ? " (did you mean \"" + *best + "\"?)" : "";
}

bool Shares(const google::protobuf::RepeatedPtrField<std::string>& a,
            const google::protobuf::RepeatedPtrField<std::string>& b) {
  return std::any_of(a.begin(), a.end(),
                     [&](const std::string& s) { return std::find(b.begin(), b.end(), s) != b.end(); });
}

std::optional<FieldError> CheckMatches(const proto::Machine& m) {
  std::vector<std::string> driver_compats, device_compats;
  for (const auto& drv : m.drivers())
    driver_compats.insert(driver_compats.end(), drv.compatible().begin(), drv.compatible().end());
  for (const auto& d : m.devices())
    device_compats.insert(device_compats.end(), d.compatible().begin(), d.compatible().end());
  for (int i = 0; i < m.devices_size(); ++i) {
    const auto& d = m.devices(i);
    if (d.compatible().empty()) {
      return FieldError{{{"devices", i}}, "no compatible: no driver can bind " + d.name()};
    }
    if (MatchingDriver(m, d) != nullptr) continue;
    return FieldError{{{"devices", i}, {"compatible", 0}},
                      "no driver on bus \"" + d.bus() + "\" matches \"" + d.compatible(0) + "\"" +
                          DidYouMean(d.compatible(0), driver_compats) + ": " + d.name() + " would stay unbound"};
  }
  for (int i = 0; i < m.drivers_size(); ++i) {
    const auto& drv = m.drivers(i);
    const bool used = std::any_of(m.devices().begin(), m.devices().end(), [&](const proto::MachineDevice& d) {
      return d.bus() == drv.bus() && Shares(d.compatible(), drv.compatible());
    });
    if (used) continue;
    return FieldError{{{"drivers", i}, {"compatible", 0}},
                      "matches no device on bus \"" + drv.bus() + "\"" + DidYouMean(drv.compatible(0), device_compats)};
  }
  return std::nullopt;
}

std::optional<FieldError> CheckSettings(const proto::MachineDevice& d, int i, const shadows::ShadowRegistry& shadows,
                                        const HardwareRegistry& hardware) {
  if (d.device_class().empty()) {
    return FieldError{{{"devices", i}, {"device_class"}},
                      "empty: a device a driver binds needs a class, whose shadow stands in front of it"};
  }
  if (!shadows.Has(d.device_class())) {
    return FieldError{{{"devices", i}, {"device_class"}},
                      shadows.CheckSettings(d.device_class(), {}).error().message +
                          DidYouMean(d.device_class(), shadows.names())};
  }
  for (const auto& [key, value] : d.settings()) {
    const FieldPath at{{"devices", i}, {"settings", -1, key}};
    if (key.starts_with(kShadowPrefix)) {
      auto ok = shadows.CheckSettings(d.device_class(), {{key.substr(kShadowPrefix.size()), value}});
      if (!ok) return FieldError{at, ok.error().message};
      continue;
    }
    HardwareSpec spec{d.name(), {d.compatible().begin(), d.compatible().end()}, {{key, value}}, {}};
    if (auto ok = hardware.CheckSettings(spec); !ok) return FieldError{at, ok.error().message};
  }
  return std::nullopt;
}

}  // namespace

const proto::MachineDriver* MatchingDriver(const proto::Machine& m, const proto::MachineDevice& d) {
  for (const std::string& compat : d.compatible()) {
    for (const auto& drv : m.drivers()) {
      if (drv.bus() != d.bus()) continue;
      if (std::find(drv.compatible().begin(), drv.compatible().end(), compat) != drv.compatible().end()) return &drv;
    }
  }
  return nullptr;
}

std::optional<FieldError> CheckMachine(const proto::Machine& m, const shadows::ShadowRegistry& shadows,
                                       const HardwareRegistry& hardware) {
  if (auto e = CheckMatches(m)) return e;
  for (int i = 0; i < m.devices_size(); ++i) {
    if (auto e = CheckSettings(m.devices(i), i, shadows, hardware)) return e;
  }
  return std::nullopt;
}

model::MachineCheck BuiltinMachineCheck() {
  auto shadows = std::make_shared<shadows::ShadowRegistry>();
  shadows::RegisterBuiltinShadows(*shadows);
  auto hardware = std::make_shared<HardwareRegistry>();
  RegisterBuiltinHardware(*hardware);
  return [shadows, hardware](const proto::Machine& m) { return CheckMachine(m, *shadows, *hardware); };
}

}  // namespace umbra::machine
