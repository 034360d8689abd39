// The built-in default machine: what `umbra tree` shows without a file and
// what `umbra demo` builds. A NIC, a disk, a serial port and a sound card, with one managed
// link and one optional link:
//
//   nic0 ──managed──► disk0      nic0 loads its firmware from disk0: while
//                                disk0's driver recovers, nic0 holds
//   ttyS0 ─optional─► nic0       the console mirrors to the network when it
//                                can; without nic0 it runs degraded
//
//   auto machine = UMBRA_TRY(LoadDefaultMachine());
//   std::string text(DefaultMachineText());   // the same, as a machine file
//
// Thread safety: free functions without shared state.
#pragma once

#include <memory>
#include <string_view>

#include "base/result.h"

namespace umbra::proto {
class Machine;
}  // namespace umbra::proto

namespace umbra::machine {

// The default machine as a machine file (protobuf text format).
std::string_view DefaultMachineText();
// Parsed and validated.
Result<std::unique_ptr<proto::Machine>> LoadDefaultMachine();

}  // namespace umbra::machine
