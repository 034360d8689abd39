// Private to the model library: the objects the Model keeps without a public
// class (buses, classes) and a resolved tree path.
#pragma once

#include <algorithm>
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

// Shared by the model's source files (model.cc, model_probe.cc, model_links.cc).

inline bool IsUp(const Device* d) {
  DeviceState s = d->state();
  return s == DeviceState::kBound || s == DeviceState::kRecovering;
}

inline bool IsActive(DeviceState s) {
  return s == DeviceState::kProbing || s == DeviceState::kBound || s == DeviceState::kRecovering;
}

inline Result<void> CheckName(std::string_view what, std::string_view name) {
  if (name.empty()) return Fail(Errc::kInvalidArgument, std::string(what) + " name is empty");
  if (name.size() > 64) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " name \"" + std::string(name) + "\" is longer than 64");
  }
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-' || ch == '.' || ch == '+' || ch == '@';
    if (!ok) {
      return Fail(Errc::kInvalidArgument, std::string(what) + " name \"" + std::string(name) +
                                              "\" may hold only letters, digits and _ - . + @");
    }
  }
  if (name.find("--") != std::string_view::npos) {
    return Fail(Errc::kInvalidArgument, std::string(what) + " name \"" + std::string(name) +
                                            "\" may not contain \"--\" (it separates link names)");
  }
  return {};
}

template <class T>
inline void EraseOne(std::vector<T*>& v, const T* item) {
  auto it = std::find(v.begin(), v.end(), item);
  if (it != v.end()) v.erase(it);
}

inline Error NoDevice(std::string_view name) {
  return Error{Errc::kNotFound, "no device named \"" + std::string(name) + "\""};
}

}  // namespace umbra::model
