#include "runtime/model/types.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "runtime/model/device_handle.h"
#include "runtime/model/events.h"
#include "runtime/model/link_flags.h"
#include "runtime/model/model.h"

namespace umbra::model {

const char* DeviceStateName(DeviceState state) {
  switch (state) {
    case DeviceState::kUnbound: return "unbound";
    case DeviceState::kProbing: return "probing";
    case DeviceState::kDeferred: return "deferred";
    case DeviceState::kBound: return "bound";
    case DeviceState::kRecovering: return "recovering";
    case DeviceState::kFailed: return "failed";
    case DeviceState::kUnbinding: return "unbinding";
    case DeviceState::kRemoved: return "removed";
  }
  return "?";
}

const char* LinkStateName(LinkState state) {
  switch (state) {
    case LinkState::kNone: return "not tracked";
    case LinkState::kDormant: return "dormant";
    case LinkState::kAvailable: return "available";
    case LinkState::kConsumerProbe: return "consumer probing";
    case LinkState::kActive: return "active";
    case LinkState::kSupplierUnbind: return "supplier unbinding";
  }
  return "?";
}

const char* DriverStateName(DriverState state) {
  switch (state) {
    case DriverState::kLoaded: return "loaded";
    case DriverState::kUnloading: return "unloading";
    case DriverState::kUnloaded: return "unloaded";
  }
  return "?";
}

const char* EventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdd: return "add";
    case EventType::kRemove: return "remove";
    case EventType::kBind: return "bind";
    case EventType::kUnbind: return "unbind";
    case EventType::kStateChange: return "change";
    case EventType::kLinkAdd: return "link-add";
    case EventType::kLinkRemove: return "link-remove";
    case EventType::kLinkStateChange: return "link-change";
  }
  return "?";
}

const char* ObjectKindName(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kBus: return "bus";
    case ObjectKind::kClass: return "class";
    case ObjectKind::kDevice: return "device";
    case ObjectKind::kDriver: return "driver";
    case ObjectKind::kLink: return "link";
  }
  return "?";
}

Result<std::string> NormalizeAttributeValue(std::string_view value) {
  if (!value.empty() && value.back() == '\n') value.remove_suffix(1);
  if (value.find('\n') != std::string_view::npos) {
    return Fail(Errc::kInvalidArgument, "attributes hold a single value: the value has a newline inside");
  }
  if (value.size() > kMaxAttributeValue) {
    return Fail(Errc::kInvalidArgument, "value too long (" + std::to_string(value.size()) + " bytes, at most " +
                                            std::to_string(kMaxAttributeValue) +
                                            "): attributes hold single short values");
  }
  return std::string(value);
}

Result<bool> ParseBoolValue(std::string_view value) {
  std::string v(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "1" || v == "y" || v == "yes" || v == "on" || v == "true") return true;
  if (v == "0" || v == "n" || v == "no" || v == "off" || v == "false") return false;
  return Fail(Errc::kInvalidArgument,
              "\"" + std::string(value) + "\" is not a boolean (use 1/0, y/n, yes/no, on/off, true/false)");
}

// --- link flags -----------------------------------------------------------

namespace {
constexpr LinkFlag kAllFlags[] = {LinkFlag::kStateless,          LinkFlag::kManaged,
                                  LinkFlag::kAutoRemoveConsumer, LinkFlag::kAutoRemoveSupplier,
                                  LinkFlag::kAutoProbeConsumer,  LinkFlag::kOptional};
}  // namespace

const char* LinkFlagName(LinkFlag flag) {
  switch (flag) {
    case LinkFlag::kStateless: return "stateless";
    case LinkFlag::kManaged: return "managed";
    case LinkFlag::kAutoRemoveConsumer: return "auto-remove-consumer";
    case LinkFlag::kAutoRemoveSupplier: return "auto-remove-supplier";
    case LinkFlag::kAutoProbeConsumer: return "auto-probe-consumer";
    case LinkFlag::kOptional: return "optional";
  }
  return "?";
}

Result<LinkFlag> LinkFlags::ParseOne(std::string_view name) {
  for (LinkFlag f : kAllFlags) {
    if (name == LinkFlagName(f)) return f;
  }
  std::string known;
  for (LinkFlag f : kAllFlags) known += std::string(known.empty() ? "" : ", ") + LinkFlagName(f);
  return Fail(Errc::kNotFound, "unknown link flag \"" + std::string(name) + "\" (known: " + known + ")");
}

Result<LinkFlags> LinkFlags::Parse(std::string_view text) {
  LinkFlags flags;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (part.empty()) continue;
    LinkFlag f = UMBRA_TRY(ParseOne(part));
    flags = flags | f;
  }
  return flags;
}

std::string LinkFlags::ToString() const {
  std::string out = managed() ? "managed" : "stateless";
  for (LinkFlag f : kAllFlags) {
    if (f == LinkFlag::kManaged || f == LinkFlag::kStateless || !has(f)) continue;
    out += ",";
    out += LinkFlagName(f);
  }
  return out;
}

Result<void> ValidateLinkFlags(LinkFlags flags) {
  if ((flags.bits() & ~LinkFlags::kAllBits) != 0) {
    return Fail(
        Errc::kInvalidArgument, "unknown link flag bits 0x" + [&] {
          char buf[16];
          std::snprintf(buf, sizeof buf, "%x", flags.bits() & ~LinkFlags::kAllBits);
          return std::string(buf);
        }());
  }
  if (flags.has(LinkFlag::kStateless) && flags.has(LinkFlag::kManaged)) {
    return Fail(Errc::kInvalidArgument, "invalid link flags stateless,managed: a link is either stateless or managed");
  }
  if (flags.has(LinkFlag::kStateless)) {
    for (LinkFlag f : {LinkFlag::kAutoRemoveConsumer, LinkFlag::kAutoRemoveSupplier, LinkFlag::kAutoProbeConsumer,
                       LinkFlag::kOptional}) {
      if (flags.has(f)) {
        return Fail(Errc::kInvalidArgument, std::string("invalid link flags stateless,") + LinkFlagName(f) + ": " +
                                                LinkFlagName(f) +
                                                " needs a managed link (the model does not track a stateless one)");
      }
    }
  }
  if (flags.has(LinkFlag::kAutoRemoveConsumer) && flags.has(LinkFlag::kAutoRemoveSupplier)) {
    return Fail(Errc::kInvalidArgument,
                "invalid link flags auto-remove-consumer,auto-remove-supplier: a link is auto-removed on one "
                "side's unbind, not both");
  }
  if (flags.has(LinkFlag::kAutoProbeConsumer) &&
      (flags.has(LinkFlag::kAutoRemoveConsumer) || flags.has(LinkFlag::kAutoRemoveSupplier))) {
    LinkFlag other =
        flags.has(LinkFlag::kAutoRemoveConsumer) ? LinkFlag::kAutoRemoveConsumer : LinkFlag::kAutoRemoveSupplier;
    return Fail(Errc::kInvalidArgument, std::string("invalid link flags auto-probe-consumer,") + LinkFlagName(other) +
                                            ": auto-probe-consumer keeps the link to probe the consumer when the "
                                            "supplier binds again, so it cannot be auto-removed");
  }
  return {};
}

// --- events ---------------------------------------------------------------

namespace internal {
void Subscriber::Deliver(const Event& event) {
  std::lock_guard lk(mu);
  if (active) callback(event);
}

void Subscriber::Cancel() {
  std::lock_guard lk(mu);
  active = false;
}
}  // namespace internal

// --- handles --------------------------------------------------------------

namespace {
// The devices the calling thread is inside an Access of.
thread_local std::vector<const Device*> t_accessing;

Error Removed(const std::string& name) { return Error{Errc::kNoDevice, name + " was removed"}; }
}  // namespace

namespace internal {
bool InAccess(const Device* device) {
  return std::find(t_accessing.begin(), t_accessing.end(), device) != t_accessing.end();
}
}  // namespace internal

const std::string& DeviceHandle::name() const {
  static const std::string kEmpty;
  return device_ ? device_->name() : kEmpty;
}

bool DeviceHandle::alive() const { return device_ && generation_ != 0 && device_->generation() == generation_; }

Result<void> DeviceHandle::Access(const std::function<Result<void>(Device&)>& fn) const {
  if (!device_) return Fail(Errc::kNoDevice, "empty device handle");
  // Checked before the lock (removal clears it first, so it is never starved
  // by users) and again under it (removal waits for holders of the lock).
  if (device_->generation() != generation_) return std::unexpected(Removed(device_->name()));
  std::shared_lock lk(device_->revoke_mu_);
  if (device_->generation() != generation_) return std::unexpected(Removed(device_->name()));
  t_accessing.push_back(device_.get());
  Result<void> r = fn(*device_);
  t_accessing.pop_back();
  return r;
}

Result<DeviceState> DeviceHandle::state() const {
  DeviceState s = DeviceState::kRemoved;
  UMBRA_TRY(Access([&](Device& d) -> Result<void> {
    s = d.state();
    return {};
  }));
  return s;
}

Result<std::string> DeviceHandle::Read(std::string_view attribute) const {
  Result<std::string> out = Fail(Errc::kInternal, "unset");
  UMBRA_TRY(Access([&](Device& d) -> Result<void> {
    out = d.model_->Read(d.path() + "/" + std::string(attribute));
    return {};
  }));
  return out;
}

Result<void> DeviceHandle::Write(std::string_view attribute, std::string_view value) const {
  return Access([&](Device& d) { return d.model_->Write(d.path() + "/" + std::string(attribute), value); });
}

}  // namespace umbra::model
