// The sysfs-like tree of the model: path resolution, built-in and custom
// attributes, and the text and JSON renderings.
#include <algorithm>
#include <cstdio>

#include "runtime/model/model.h"
#include "runtime/model/model_internal.h"

namespace umbra::model {

namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view seg = path.substr(0, slash);
    if (!seg.empty()) out.push_back(seg);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string NoSuchFile(std::string_view path) { return "no such file: " + std::string(path); }

}  // namespace

Result<Model::Node> Model::ResolveLocked(std::string_view path) const {
  Node n;
  for (std::string_view seg : SplitPath(path)) {
    std::string s(seg);
    switch (n.kind) {
      case Node::Kind::kRoot:
        if (s == "devices")
          n.kind = Node::Kind::kDevicesDir;
        else if (s == "class")
          n.kind = Node::Kind::kClassDir;
        else if (s == "bus")
          n.kind = Node::Kind::kBusDir;
        else if (s == "links")
          n.kind = Node::Kind::kLinksDir;
        else
          return Fail(Errc::kNotFound, NoSuchFile(path));
        continue;
      case Node::Kind::kDevicesDir:
      case Node::Kind::kBusDir: {
        auto it = buses_.find(s);
        if (it == buses_.end()) return Fail(Errc::kNotFound, NoSuchFile(path));
        n.bus = it->second.get();
        n.kind = n.kind == Node::Kind::kDevicesDir ? Node::Kind::kDevicesBusDir : Node::Kind::kBus;
        continue;
      }
      case Node::Kind::kClassDir: {
        auto it = classes_.find(s);
        if (it == classes_.end()) return Fail(Errc::kNotFound, NoSuchFile(path));
        n.cls = it->second.get();
        n.kind = Node::Kind::kClassEntryDir;
        continue;
      }
      case Node::Kind::kDevicesBusDir:
      case Node::Kind::kBusDevicesDir: {
        Device* d = FindDeviceLocked(s);
        if (!d || d->bus() != n.bus->name) return Fail(Errc::kNotFound, NoSuchFile(path));
        n.dev = d;
        n.kind = Node::Kind::kDevice;
        continue;
      }
      case Node::Kind::kClassEntryDir: {
        Device* d = FindDeviceLocked(s);
        if (!d || d->device_class() != n.cls->name) return Fail(Errc::kNotFound, NoSuchFile(path));
        n.dev = d;
        n.kind = Node::Kind::kDevice;
        continue;
      }
      case Node::Kind::kBus:
        if (s == "devices")
          n.kind = Node::Kind::kBusDevicesDir;
        else if (s == "drivers")
          n.kind = Node::Kind::kBusDriversDir;
        else
          return Fail(Errc::kNotFound, NoSuchFile(path));
        continue;
      case Node::Kind::kBusDriversDir: {
        auto it = drivers_.find(s);
        if (it == drivers_.end() || it->second->bus() != n.bus->name) return Fail(Errc::kNotFound, NoSuchFile(path));
        n.drv = it->second.get();
        n.kind = Node::Kind::kDriver;
        continue;
      }
      case Node::Kind::kLinksDir: {
        n.link = FindLinkByNameLocked(s);
        if (!n.link) return Fail(Errc::kNotFound, NoSuchFile(path));
        n.kind = Node::Kind::kLink;
        continue;
      }
      case Node::Kind::kDevice: {
        Link* l = nullptr;
        if (s.starts_with("supplier:"))
          l = FindLinkLocked(n.dev->name(), s.substr(9));
        else if (s.starts_with("consumer:"))
          l = FindLinkLocked(s.substr(9), n.dev->name());
        if (!l) return Fail(Errc::kNotFound, NoSuchFile(path));
        n.link = l;
        n.kind = Node::Kind::kLink;
        continue;
      }
      case Node::Kind::kDriver:
      case Node::Kind::kLink: return Fail(Errc::kNotFound, NoSuchFile(path));
    }
  }
  return n;
}

std::map<std::string, Attribute>* Model::CustomAttributesLocked(const Node& node) const {
  switch (node.kind) {
    case Node::Kind::kDevice: return &node.dev->attributes_;
    case Node::Kind::kDriver: return &node.drv->attributes_;
    case Node::Kind::kLink: return &node.link->attributes_;
    case Node::Kind::kBus: return &node.bus->attributes;
    case Node::Kind::kRoot:
    case Node::Kind::kDevicesDir:
    case Node::Kind::kDevicesBusDir:
    case Node::Kind::kClassDir:
    case Node::Kind::kClassEntryDir:
    case Node::Kind::kBusDir:
    case Node::Kind::kBusDevicesDir:
    case Node::Kind::kBusDriversDir:
    case Node::Kind::kLinksDir: return nullptr;
  }
  return nullptr;
}

std::vector<std::string> Model::BuiltinAttributeNames(const Node& node) const {
  switch (node.kind) {
    case Node::Kind::kDevice:
      return {"bus", "class", "compatible", "degraded", "driver", "generation", "reason", "state", "waiting_for"};
    case Node::Kind::kDriver:
      return {"bind", "binary", "bound", "compatible", "deferred_pending", "in_flight", "state", "unbind"};
    case Node::Kind::kLink: return {"auto_remove_on", "consumer", "flags", "relaxed", "status", "supplier"};
    case Node::Kind::kBus: return {"drivers_autoprobe", "drivers_probe"};
    case Node::Kind::kRoot:
    case Node::Kind::kDevicesDir:
    case Node::Kind::kDevicesBusDir:
    case Node::Kind::kClassDir:
    case Node::Kind::kClassEntryDir:
    case Node::Kind::kBusDir:
    case Node::Kind::kBusDevicesDir:
    case Node::Kind::kBusDriversDir:
    case Node::Kind::kLinksDir: return {};
  }
  return {};
}

std::string Model::WaitingForLocked(const Device* dev) const {
  std::vector<std::string> names;
  if (dev->state() != DeviceState::kDeferred) return "";
  for (const Link* l : dev->suppliers_) {
    if (WaitsForLocked(l)) names.push_back(l->supplier_name());
  }
  return Join(names, ",");
}

static Error ReadOnly(std::string_view attr) {
  return Error{Errc::kInvalidArgument, "attribute " + std::string(attr) + " is read-only"};
}
static Error WriteOnly(std::string_view attr) {
  return Error{Errc::kInvalidArgument, "attribute " + std::string(attr) + " is write-only"};
}

Result<std::string> Model::ReadBuiltinLocked(const Node& node, std::string_view a, bool* found) const {
  *found = true;
  switch (node.kind) {
    case Node::Kind::kDevice: {
      const Device* d = node.dev;
      if (a == "state") return std::string(DeviceStateName(d->state()));
      if (a == "bus") return d->bus();
      if (a == "class") return d->device_class();
      if (a == "compatible") return Join(d->compatible(), " ");
      if (a == "degraded") return std::string(d->degraded_ ? "1" : "0");
      if (a == "driver") return d->driver_ ? d->driver_->name() : std::string();
      if (a == "generation") return std::to_string(d->generation());
      if (a == "reason") return ReasonLocked(d);
      if (a == "waiting_for") return WaitingForLocked(d);
      break;
    }
    case Node::Kind::kDriver: {
      const Driver* drv = node.drv;
      if (a == "bind" || a == "unbind") return std::unexpected(WriteOnly(a));
      if (a == "state") return std::string(DriverStateName(drv->state_));
      if (a == "binary") return drv->binary();
      if (a == "compatible") return Join(drv->compatible(), " ");
      if (a == "in_flight") return std::to_string(drv->work_.in_flight());
      if (a == "deferred_pending") return std::to_string(drv->work_.deferred_pending());
      if (a == "bound") {
        std::vector<std::string> names;
        for (const Device* d : buses_.find(drv->bus())->second->devices) {
          if (d->driver_ == drv) names.push_back(d->name());
        }
        return Join(names, ",");
      }
      break;
    }
    case Node::Kind::kLink: {
      const Link* l = node.link;
      if (a == "status") return std::string(LinkStateName(l->state_));
      if (a == "flags") return l->flags_.ToString();
      if (a == "consumer") return l->consumer_name();
      if (a == "supplier") return l->supplier_name();
      if (a == "relaxed") return std::string(l->relaxed_ ? "1" : "0");
      if (a == "auto_remove_on") {
        if (l->flags_.has(LinkFlag::kAutoRemoveConsumer)) return std::string("consumer unbind");
        if (l->flags_.has(LinkFlag::kAutoRemoveSupplier)) return std::string("supplier unbind");
        return std::string("never");
      }
      break;
    }
    case Node::Kind::kBus:
      if (a == "drivers_autoprobe") return std::string(node.bus->drivers_autoprobe ? "1" : "0");
      if (a == "drivers_probe") return std::unexpected(WriteOnly(a));
      break;
    case Node::Kind::kRoot:
    case Node::Kind::kDevicesDir:
    case Node::Kind::kDevicesBusDir:
    case Node::Kind::kClassDir:
    case Node::Kind::kClassEntryDir:
    case Node::Kind::kBusDir:
    case Node::Kind::kBusDevicesDir:
    case Node::Kind::kBusDriversDir:
    case Node::Kind::kLinksDir: break;
  }
  *found = false;
  return std::string();
}

Result<void> Model::WriteBuiltinLocked(const Node& node, std::string_view a, const std::string& value, bool* found) {
  std::vector<std::string> names = BuiltinAttributeNames(node);
  *found = std::find(names.begin(), names.end(), a) != names.end();
  if (!*found) return {};
  if (node.kind == Node::Kind::kBus && a == "drivers_autoprobe") {
    node.bus->drivers_autoprobe = UMBRA_TRY(ParseBoolValue(value));
    return {};
  }
  if (node.kind == Node::Kind::kBus && a == "drivers_probe") {
    Device* d = FindDeviceLocked(value);
    if (!d || d->bus() != node.bus->name) {
      return Fail(Errc::kInvalidArgument, "drivers_probe: no device \"" + value + "\" on bus " + node.bus->name);
    }
    DeviceState s = d->state();
    if (s != DeviceState::kUnbound && s != DeviceState::kDeferred) {
      return Fail(Errc::kBusy, "drivers_probe: " + d->name() + " is " + DeviceStateName(s));
    }
    ProbeLocked(d);
    return {};
  }
  if (node.kind == Node::Kind::kDriver && (a == "bind" || a == "unbind")) {
    Device* d = FindDeviceLocked(value);
    if (!d || d->bus() != node.drv->bus()) {
      return Fail(Errc::kInvalidArgument, std::string(a) + ": no device \"" + value + "\" on bus " + node.drv->bus());
    }
    if (a == "unbind") {
      if (d->driver_ != node.drv) {
        return Fail(Errc::kInvalidArgument, "unbind: " + d->name() + " is not bound to " + node.drv->name());
      }
      return UnbindLocked(d, "unbound through " + node.drv->path() + "/unbind");
    }
    DeviceState s = d->state();
    if (s != DeviceState::kUnbound && s != DeviceState::kDeferred) {
      return Fail(Errc::kBusy, "bind: " + d->name() + " is " + DeviceStateName(s));
    }
    const auto& table = node.drv->compatible();
    bool matches = std::any_of(d->compatible().begin(), d->compatible().end(), [&](const std::string& c) {
      return std::find(table.begin(), table.end(), c) != table.end();
    });
    if (!matches) return Fail(Errc::kInvalidArgument, "bind: " + node.drv->name() + " does not match " + d->name());
    ProbeLocked(d, node.drv);
    return {};
  }
  return std::unexpected(ReadOnly(a));
}

Result<std::string> Model::Read(std::string_view path) const {
  Lock lk(mu_);
  if (ResolveLocked(path)) return Fail(Errc::kInvalidArgument, std::string(path) + " is a directory");
  size_t slash = path.find_last_of('/');
  std::string_view parent = slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
  std::string_view attr = slash == std::string_view::npos ? path : path.substr(slash + 1);
  Node node = UMBRA_TRY(ResolveLocked(parent));
  bool found = false;
  Result<std::string> builtin = ReadBuiltinLocked(node, attr, &found);
  if (found) return builtin;
  auto* custom = CustomAttributesLocked(node);
  auto it = custom ? custom->find(std::string(attr)) : decltype(custom->begin()){};
  if (!custom || it == custom->end()) return Fail(Errc::kNotFound, NoSuchFile(path));
  if (it->second.mode == AttrMode::kWriteOnly) return std::unexpected(WriteOnly(path));
  auto show = it->second.show;
  lk.unlock();
  return show();
}

Result<void> Model::Write(std::string_view path, std::string_view raw) {
  Lock lk(mu_);
  if (ResolveLocked(path)) return Fail(Errc::kInvalidArgument, std::string(path) + " is a directory");
  size_t slash = path.find_last_of('/');
  std::string_view parent = slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
  std::string_view attr = slash == std::string_view::npos ? path : path.substr(slash + 1);
  Node node = UMBRA_TRY(ResolveLocked(parent));
  auto normalized = NormalizeAttributeValue(raw);
  if (!normalized) {
    return Fail(normalized.error().code, std::string(path) + ": " + normalized.error().message);
  }
  std::string value = std::move(*normalized);
  bool found = false;
  Result<void> builtin = WriteBuiltinLocked(node, attr, value, &found);
  if (found) {
    Dispatch(lk);
    if (!builtin) return Fail(builtin.error().code, std::string(path) + ": " + builtin.error().message);
    return {};
  }
  auto* custom = CustomAttributesLocked(node);
  auto it = custom ? custom->find(std::string(attr)) : decltype(custom->begin()){};
  if (!custom || it == custom->end()) return Fail(Errc::kNotFound, NoSuchFile(path));
  if (it->second.mode == AttrMode::kReadOnly) return std::unexpected(ReadOnly(path));
  auto store = it->second.store;
  lk.unlock();
  Result<void> r = store(value);
  if (!r) return Fail(r.error().code, std::string(path) + ": " + r.error().message);
  return {};
}

Result<std::vector<std::string>> Model::List(std::string_view path) const {
  Lock lk(mu_);
  Node n = UMBRA_TRY(ResolveLocked(path));
  std::vector<std::string> out;
  switch (n.kind) {
    case Node::Kind::kRoot: out = {"bus", "class", "devices", "links"}; break;
    case Node::Kind::kDevicesDir:
    case Node::Kind::kBusDir:
      for (const auto& [name, bus] : buses_) out.push_back(name);
      break;
    case Node::Kind::kDevicesBusDir:
    case Node::Kind::kBusDevicesDir:
      for (const Device* d : n.bus->devices) out.push_back(d->name());
      break;
    case Node::Kind::kClassDir:
      for (const auto& [name, cls] : classes_) out.push_back(name);
      break;
    case Node::Kind::kClassEntryDir:
      for (const Device* d : n.cls->devices) out.push_back(d->name());
      break;
    case Node::Kind::kBus: out = {"devices", "drivers"}; break;
    case Node::Kind::kBusDriversDir:
      for (const Driver* d : n.bus->drivers) out.push_back(d->name());
      break;
    case Node::Kind::kLinksDir:
      links_.ForEach([&](const std::unique_ptr<Link>& link) { out.push_back(link->name()); });
      std::sort(out.begin(), out.end());
      break;
    case Node::Kind::kDevice:
      for (const Link* l : n.dev->suppliers_) out.push_back("supplier:" + l->supplier_name());
      for (const Link* l : n.dev->consumers_) out.push_back("consumer:" + l->consumer_name());
      break;
    case Node::Kind::kDriver:
    case Node::Kind::kLink: break;
  }
  for (auto& a : BuiltinAttributeNames(n)) out.push_back(std::move(a));
  if (auto* custom = CustomAttributesLocked(n)) {
    for (const auto& [name, attr] : *custom) out.push_back(name);
  }
  return out;
}

Result<void> Model::AddAttribute(std::string_view object_path, Attribute attribute) {
  Lock lk(mu_);
  Node n = UMBRA_TRY(ResolveLocked(object_path));
  auto* custom = CustomAttributesLocked(n);
  if (!custom) {
    return Fail(Errc::kInvalidArgument, std::string(object_path) + " is a directory, not an object with attributes");
  }
  if (attribute.name.empty() || attribute.name.find('/') != std::string::npos ||
      attribute.name.find(':') != std::string::npos) {
    return Fail(Errc::kInvalidArgument, "attribute name \"" + attribute.name + "\" is empty or has / or :");
  }
  std::vector<std::string> builtin = BuiltinAttributeNames(n);
  if (custom->contains(attribute.name) || std::find(builtin.begin(), builtin.end(), attribute.name) != builtin.end()) {
    return Fail(Errc::kAlreadyExists, std::string(object_path) + "/" + attribute.name + " exists");
  }
  bool needs_show = attribute.mode != AttrMode::kWriteOnly;
  bool needs_store = attribute.mode != AttrMode::kReadOnly;
  if (needs_show != static_cast<bool>(attribute.show) || needs_store != static_cast<bool>(attribute.store)) {
    return Fail(Errc::kInvalidArgument,
                "attribute " + attribute.name + ": show is needed exactly when readable, store exactly when writable");
  }
  std::string name = attribute.name;
  custom->emplace(std::move(name), std::move(attribute));
  return {};
}

// --- rendering ----------------------------------------------------------------------

namespace {

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", ch);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string JsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + JsonString(items[i]);
  return out + "]";
}

}  // namespace

std::string Model::RenderText() const {
  Lock lk(mu_);
  std::string out;
  for (const auto& [bus_name, bus] : buses_) {
    out += "bus " + bus_name + "  drivers_autoprobe=" + (bus->drivers_autoprobe ? "1" : "0") + "\n";
    for (const Device* d : bus->devices) {
      out += "  device " + d->name() + "  [" + DeviceStateName(d->state()) + "]";
      if (d->driver_) out += "  driver=" + d->driver_->name();
      if (!d->device_class().empty()) out += "  class=" + d->device_class();
      if (d->degraded_) out += "  degraded";
      if (std::string reason = ReasonLocked(d); !reason.empty()) out += "  reason=\"" + reason + "\"";
      out += "\n";
      for (const Link* l : d->suppliers_) {
        out += "    supplier " + l->supplier_name() + "  [" + LinkStateName(l->state_) + "]  " + l->flags_.ToString() +
               (l->relaxed_ ? "  relaxed" : "") + "\n";
      }
      for (const Link* l : d->consumers_) {
        out += "    consumer " + l->consumer_name() + "  [" + LinkStateName(l->state_) + "]  " + l->flags_.ToString() +
               "\n";
      }
    }
    for (const Driver* drv : bus->drivers) {
      std::vector<std::string> bound;
      for (const Device* d : bus->devices) {
        if (d->driver_ == drv) bound.push_back(d->name());
      }
      out += "  driver " + drv->name() + "  [" + DriverStateName(drv->state_) +
             "]  compatible=" + Join(drv->compatible(), ",") + "  bound=" + (bound.empty() ? "-" : Join(bound, ",")) +
             "\n";
    }
  }
  for (const auto& [class_name, cls] : classes_) {
    out += "class " + class_name + "\n";
    for (const Device* d : cls->devices) out += "  " + d->name() + "  [" + DeviceStateName(d->state()) + "]\n";
  }
  return out;
}

std::string Model::RenderJson() const {
  Lock lk(mu_);
  auto link_json = [](const Link* l) {
    return "{\"consumer\":" + JsonString(l->consumer_name()) + ",\"supplier\":" + JsonString(l->supplier_name()) +
           ",\"status\":" + JsonString(LinkStateName(l->state_)) + ",\"flags\":" + JsonString(l->flags_.ToString()) +
           ",\"relaxed\":" + (l->relaxed_ ? "true" : "false") + "}";
  };
  std::string out = "{\"buses\":[";
  bool first_bus = true;
  std::vector<const Link*> all_links;
  for (const auto& [bus_name, bus] : buses_) {
    out += std::string(first_bus ? "" : ",") + "{\"name\":" + JsonString(bus_name) +
           ",\"drivers_autoprobe\":" + (bus->drivers_autoprobe ? "true" : "false") + ",\"devices\":[";
    first_bus = false;
    for (size_t i = 0; i < bus->devices.size(); ++i) {
      const Device* d = bus->devices[i];
      std::vector<std::string> suppliers, consumers;
      for (const Link* l : d->suppliers_) {
        suppliers.push_back(l->supplier_name());
        all_links.push_back(l);
      }
      for (const Link* l : d->consumers_) consumers.push_back(l->consumer_name());
      out += std::string(i ? "," : "") + "{\"name\":" + JsonString(d->name()) +
             ",\"state\":" + JsonString(DeviceStateName(d->state())) +
             ",\"driver\":" + JsonString(d->driver_ ? d->driver_->name() : "") +
             ",\"class\":" + JsonString(d->device_class()) + ",\"compatible\":" + JsonList(d->compatible()) +
             ",\"degraded\":" + (d->degraded_ ? "true" : "false") + ",\"reason\":" + JsonString(ReasonLocked(d)) +
             ",\"suppliers\":" + JsonList(suppliers) + ",\"consumers\":" + JsonList(consumers) + "}";
    }
    out += "],\"drivers\":[";
    for (size_t i = 0; i < bus->drivers.size(); ++i) {
      const Driver* drv = bus->drivers[i];
      std::vector<std::string> bound;
      for (const Device* d : bus->devices) {
        if (d->driver_ == drv) bound.push_back(d->name());
      }
      out += std::string(i ? "," : "") + "{\"name\":" + JsonString(drv->name()) +
             ",\"state\":" + JsonString(DriverStateName(drv->state_)) +
             ",\"compatible\":" + JsonList(drv->compatible()) + ",\"binary\":" + JsonString(drv->binary()) +
             ",\"bound\":" + JsonList(bound) + "}";
    }
    out += "]}";
  }
  out += "],\"classes\":[";
  bool first_class = true;
  for (const auto& [class_name, cls] : classes_) {
    std::vector<std::string> names;
    for (const Device* d : cls->devices) names.push_back(d->name());
    out += std::string(first_class ? "" : ",") + "{\"name\":" + JsonString(class_name) +
           ",\"devices\":" + JsonList(names) + "}";
    first_class = false;
  }
  out += "],\"links\":[";
  for (size_t i = 0; i < all_links.size(); ++i) out += (i ? "," : "") + link_json(all_links[i]);
  return out + "]}";
}

}  // namespace umbra::model
