// A device class is one unit: its registration fills the hardware, shadow
// and workload registries it is given, skips the ones it is not, and refuses
// a part registered twice.
#include <gtest/gtest.h>

#include "shadows/builtin/builtin.h"
#include "shadows/class_registry.h"

namespace umbra::shadows {
namespace {

TEST(ClassRegistry, EveryBuiltinClassRegistersItsHardwareShadowAndWorkloads) {
  machine::HardwareRegistry hardware;
  ShadowRegistry shadows;
  faultinject::campaign::WorkloadRegistry workloads;
  ClassRegistry classes(&hardware, &shadows, &workloads);
  ASSERT_TRUE(RegisterBuiltinClasses(classes).has_value());

  EXPECT_EQ(shadows.names(), (std::vector<std::string>{"block", "echo", "net", "sound", "uart"}));
  for (const char* compatible : {"umbra,e1000-emu", "umbra,disk-emu", "umbra,uart-emu"}) {
    EXPECT_TRUE(hardware.Has(compatible)) << compatible;
  }
  EXPECT_EQ(hardware.names().size(), 4u);  // echo has nothing to emulate
  for (const char* name : {"echo-stream", "file-transfer", "disk-verifier", "sqlite", "audio-playback", "uart-echo"}) {
    auto w = workloads.Create(name);
    ASSERT_TRUE(w.has_value()) << name;
    EXPECT_TRUE(shadows.Has(std::string((*w)->device_class()))) << name << " runs on a registered class";
  }
}

TEST(ClassRegistry, OnlyTheRegistriesGivenAreFilled) {
  machine::HardwareRegistry hardware;
  ClassRegistry classes(&hardware, nullptr, nullptr);
  ASSERT_TRUE(RegisterBuiltinClasses(classes).has_value());
  EXPECT_TRUE(hardware.Has("umbra,uart-emu"));

  faultinject::campaign::WorkloadRegistry workloads;
  ASSERT_TRUE(faultinject::campaign::RegisterBuiltinWorkloads(workloads).has_value());
  EXPECT_TRUE(workloads.Has("uart-echo"));
}

TEST(ClassRegistry, AClassRegisteredTwiceIsRefused) {
  ShadowRegistry shadows;
  ClassRegistry classes(nullptr, &shadows, nullptr);
  ASSERT_TRUE(RegisterBuiltinClasses(classes).has_value());
  auto again = RegisterBuiltinClasses(classes);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
}

}  // namespace
}  // namespace umbra::shadows
