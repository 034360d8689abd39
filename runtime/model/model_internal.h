// Private to the model library: the objects the Model keeps without a public
// class (buses, classes) and a resolved tree path.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/model/model.h"

namespace umbra::model {

struct Model::Bus {
  std::string name;
  bool drivers_autoprobe = true;
  std::vector<Device*> devices;  // in registration order; raw: owned by Model::devices_
  std::vector<Driver*> drivers;  // raw: owned by Model::drivers_
  std::map<std::string, Attribute> attributes;
};

struct Model::Class {
  std::string name;
  std::vector<Device*> devices;  // raw: owned by Model::devices_
};

// Where a path leads: a directory or an object with attributes.
struct Model::Node {
  enum class Kind {
    kRoot,
    kDevicesDir,     // /devices
    kDevicesBusDir,  // /devices/<bus>
    kClassDir,       // /class
    kClassEntryDir,  // /class/<class>
    kBusDir,         // /bus
    kBus,            // /bus/<bus>
    kBusDevicesDir,  // /bus/<bus>/devices
    kBusDriversDir,  // /bus/<bus>/drivers
    kLinksDir,       // /links
    kDevice,
    kDriver,
    kLink,
  };
  Kind kind = Kind::kRoot;
  Bus* bus = nullptr;
  Class* cls = nullptr;
  Device* dev = nullptr;
  Driver* drv = nullptr;
  Link* link = nullptr;
};

}  // namespace umbra::model
