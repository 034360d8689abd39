// The machine description: loading a machine file (protobuf text format or
// JSON, schema proto/umbra/machine.proto) and building a Model from it.
//
//   auto machine = LoadMachine("examples/machines/links.textproto");
//   if (!machine) { std::cerr << machine.error().ToString(); return 1; }
//   // "parse: links.textproto:14:3: devices[2].bus: no bus named \"pcie\""
//   auto model = BuildModel(**machine, [](Model& m, const DriverSpec& d) {
//     return std::make_shared<InProcessBackend>(m, InProcessBackend::Completion::kSynchronous);
//   });
//
// Errors name the file, the line and column (text format: always; JSON: for
// syntax errors and, where the field can be found, for schema errors) and the
// field path ("devices[2].bus").
//
// Thread safety: free functions without shared state.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "runtime/model/model.h"

namespace umbra::proto {
class Machine;
}  // namespace umbra::proto

namespace umbra::model {

enum class MachineFormat {
  kAuto,  // by extension (.json; .textproto/.pbtxt/.txtpb), else by content
  kText,
  kJson,
};

// One step of a field's path in a machine: a field, with an index for a
// repeated field ({"devices", 2}) or a key for a map ({"settings", -1, "mac"}).
struct FieldStep {
  std::string field;
  int index = -1;
  std::string key;
};
using FieldPath = std::vector<FieldStep>;
// "devices[2].settings[\"mac\"]"
std::string FieldPathString(const FieldPath& path);

// A check beyond the schema's, by a layer that knows more (which shadow
// classes, hardware and settings exist): the first field it refuses.
struct FieldError {
  FieldPath path;
  std::string message;
};
using MachineCheck = std::function<std::optional<FieldError>(const proto::Machine&)>;

// Reads, parses and validates a machine file; `check`, if given, runs last
// and its error is located like the loader's own.
Result<std::unique_ptr<proto::Machine>> LoadMachine(const std::string& path, const MachineCheck& check = {});
// Parses and validates `content`; `file_name` is used in messages and, with
// kAuto, to pick the format.
Result<std::unique_ptr<proto::Machine>> ParseMachine(std::string_view content, std::string_view file_name,
                                                     MachineFormat format = MachineFormat::kAuto,
                                                     const MachineCheck& check = {});

// Makes the backend for one driver of the machine.
using BackendFactory = std::function<std::shared_ptr<DriverBackend>(Model& model, const DriverSpec& driver)>;

// Adds the machine's buses, devices and links, then its drivers (which probes
// in dependency order), to `model`.
Result<void> PopulateModel(const proto::Machine& machine, Model& model, const BackendFactory& backends);
Result<std::unique_ptr<Model>> BuildModel(const proto::Machine& machine, const BackendFactory& backends);

}  // namespace umbra::model
