// The probe prologue every device driver starts with, as one call: declare
// the driver's failpoint sites, run its "<class>.probe" site (an injected
// error fails the probe), check that the device gave it a register window
// large enough for its register layout, and check the layout's magic and
// version.
//
//   Result<void> DiskDriver::Probe(sdk::Context& ctx) {
//     auto dev = UMBRA_TRY(sdk::MapRegisters<hwd::DiskRegisters>(
//         ctx, {.device = "umbra,disk-emu", .sites = kDiskSites, .probe_site = "disk.probe",
//               .magic = hwd::kMagic, .version = hwd::kVersion}));
//     regs_ = dev.regs;  dma_ = dev.dma;  dma_size_ = dev.dma_size;
//     ...
//
// A device whose identity registers read true only after the driver reset it
// (the sound card, the NIC) asks for Identity::kAfterReset and calls
// CheckIdentity itself once it has. A driver without a device (echo) calls
// ProbePrologue alone.
//
// Thread safety: the driver's thread, from Probe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "drivers/sdk/driver.h"
#include "faultinject/failpoint.h"
#include "base/result.h"

namespace umbra::sdk {

// When MapRegisters checks magic and version.
enum class Identity {
  kOnMap,       // before anything else (the registers are valid at power-on)
  kAfterReset,  // the driver resets the device first, then calls CheckIdentity
};

struct ProbeSpec {
  std::string_view device;                       // the compatible string, for errors
  std::span<const std::string_view> sites = {};  // every failpoint site of the driver
  std::string_view probe_site = {};              // fired once; empty: none
  uint32_t magic = 0;
  uint32_t version = 0;
  Identity identity = Identity::kOnMap;
};

template <class Regs>
struct MappedDevice {
  Regs* regs = nullptr;  // the register window, as the device's layout
  std::byte* dma = nullptr;
  uint64_t dma_size = 0;
  faultinject::Action probe;  // what the probe site asked for (kBadRegister: a value to misprogram)
};

// Declares `spec.sites` and fires `spec.probe_site`: an injected error is
// returned (kIo, naming the site); any other action is handed back.
inline Result<faultinject::Action> ProbePrologue(const ProbeSpec& spec) {
  if (!spec.sites.empty()) faultinject::FailpointRegistry::Global().Declare(spec.sites);
  if (spec.probe_site.empty()) return faultinject::Action{};
  const faultinject::Action a = UMBRA_FAILPOINT(spec.probe_site);
  if (a.fault == faultinject::SiteFault::kError) {
    return Fail(Errc::kIo, std::string(spec.probe_site) + ": injected error");
  }
  return a;
}

// kNoDevice unless the registers carry the layout's magic and version.
template <class Regs>
Result<void> CheckIdentity(const Regs& regs, const ProbeSpec& spec) {
  if (regs.magic.load() != spec.magic || regs.version.load() != spec.version) {
    return Fail(Errc::kNoDevice, "not an " + std::string(spec.device) + " (bad magic or version)");
  }
  return {};
}

// The prologue, then the register window as `Regs` (kNoDevice when there is
// none or it is smaller than `Regs`), with the identity checked per `spec`.
template <class Regs>
Result<MappedDevice<Regs>> MapRegisters(Context& ctx, const ProbeSpec& spec) {
  const faultinject::Action probe = UMBRA_TRY(ProbePrologue(spec));
  const HwView& hw = ctx.hw();
  if (hw.registers == nullptr || hw.registers_size < sizeof(Regs)) {
    return Fail(Errc::kNoDevice, "no " + std::string(spec.device) + " register window");
  }
  MappedDevice<Regs> dev{
      .regs = reinterpret_cast<Regs*>(hw.registers), .dma = hw.dma, .dma_size = hw.dma_size, .probe = probe};
  switch (spec.identity) {
    case Identity::kOnMap: UMBRA_TRY(CheckIdentity(*dev.regs, spec)); break;
    case Identity::kAfterReset: break;
  }
  return dev;
}

}  // namespace umbra::sdk
