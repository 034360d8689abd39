#include "shadows/class_registry.h"

namespace umbra::shadows {

Result<void> ClassRegistry::AddHardware(const std::string& compatible, machine::HardwareFactory factory,
                                        machine::HardwareSettings settings) {
  if (hardware_ == nullptr) return {};
  return hardware_->Register(compatible, std::move(factory), std::move(settings));
}

Result<void> ClassRegistry::AddShadow(const std::string& class_name, ShadowFactory factory,
                                      std::vector<SettingSpec> settings) {
  if (shadows_ == nullptr) return {};
  return shadows_->Register(class_name, std::move(factory), std::move(settings));
}

}  // namespace umbra::shadows
